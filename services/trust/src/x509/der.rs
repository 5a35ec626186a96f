//! A minimal DER reader and writer for what OpenSSL's Rust bindings do not expose: the
//! signed part of a certificate (its identity), the raw value of an extension, the
//! RSASSA-PSS hash parameter, the certificates-only PKCS#7 `SignedData` we emit, and the
//! check that an uploaded encoding is canonical DER. Written in safe Rust so the workspace
//! can keep `unsafe_code = "forbid"`.

use openssl::hash::MessageDigest;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (only low-tag-number form is supported).
    pub tag: u8,
    /// The contents octets.
    pub content: &'a [u8],
    /// The whole encoding: identifier, length and contents.
    pub raw: &'a [u8],
}

/// `SEQUENCE` (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;
/// `SET` (constructed).
pub(crate) const SET: u8 = 0x31;
/// `INTEGER`.
pub(crate) const INTEGER: u8 = 0x02;
/// `OBJECT IDENTIFIER`.
pub(crate) const OID: u8 = 0x06;
/// `BOOLEAN`.
pub(crate) const BOOLEAN: u8 = 0x01;
/// `OCTET STRING`.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// `BIT STRING`.
pub(crate) const BIT_STRING: u8 = 0x03;
/// Context-specific constructed `[0]`.
pub(crate) const CONTEXT_0: u8 = 0xA0;
/// Context-specific constructed `[3]`.
pub(crate) const CONTEXT_3: u8 = 0xA3;

/// Nesting deeper than this is refused by [`check_canonical`]; real certificates nest
/// about ten levels, and the bound keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 32;

/// Reads one element from the front of `input`; `None` on any malformed or unsupported
/// encoding (high tag numbers, indefinite length, lengths beyond the input).
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let header = input.len() - rest.len();
    let (content, rest) = rest.split_at_checked(len)?;
    let raw = &input[..header + len];
    Some((Tlv { tag, content, raw }, rest))
}

/// All elements of a constructed value's contents, in order; `None` if any is malformed.
pub(crate) fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (tlv, after) = read(rest)?;
        out.push(tlv);
        rest = after;
    }
    Some(out)
}

/// Reads exactly one element of the expected tag spanning `input` (trailing bytes allowed,
/// as OpenSSL allows them after a certificate).
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<Tlv<'_>> {
    let (tlv, _) = read(input)?;
    (tlv.tag == tag).then_some(tlv)
}

/// Why an encoding is not canonical DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotCanonical {
    /// Malformed: truncated, indefinite length, high tag number, nested too deep.
    Malformed,
    /// A length in long form where the short form fits, or with leading zero octets.
    NonMinimalLength,
    /// A string type in constructed form (BER only).
    ConstructedString,
    /// A BOOLEAN other than 0x00 or 0xFF.
    NonCanonicalBoolean,
    /// An INTEGER with redundant leading octets, or empty.
    NonMinimalInteger,
    /// Bytes after the single top-level element.
    TrailingData,
}

impl NotCanonical {
    /// Our own wording for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NotCanonical::Malformed => "malformed DER",
            NotCanonical::NonMinimalLength => "a DER length is not minimally encoded",
            NotCanonical::ConstructedString => "a string is in constructed (BER) form",
            NotCanonical::NonCanonicalBoolean => "a BOOLEAN is not canonical",
            NotCanonical::NonMinimalInteger => "an INTEGER is not minimally encoded",
            NotCanonical::TrailingData => "data follows the certificate",
        }
    }
}

/// Checks that `input` is exactly one element in canonical DER (X.690 §10): definite,
/// minimal lengths; primitive strings; canonical BOOLEAN and INTEGER contents; nothing
/// after it. A certificate that is only BER-valid can be re-encoded in many ways; accepting
/// one canonical form keeps one certificate one byte string.
pub(crate) fn check_canonical(input: &[u8]) -> Result<(), NotCanonical> {
    let (element, rest) = read_canonical(input)?;
    if !rest.is_empty() {
        return Err(NotCanonical::TrailingData);
    }
    check_element(element, 0)
}

fn read_canonical(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), NotCanonical> {
    let (tlv, rest) = read(input).ok_or(NotCanonical::Malformed)?;
    let length_octets = tlv.raw.len() - tlv.content.len() - 1;
    let minimal = match tlv.content.len() {
        len if len < 0x80 => 1,
        len => 1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize,
    };
    if length_octets != minimal {
        return Err(NotCanonical::NonMinimalLength);
    }
    Ok((tlv, rest))
}

fn check_element(element: Tlv<'_>, depth: usize) -> Result<(), NotCanonical> {
    if depth > MAX_DEPTH {
        return Err(NotCanonical::Malformed);
    }
    let constructed = element.tag & 0x20 != 0;
    let universal = element.tag & 0xC0 == 0;
    if universal && constructed && element.tag != SEQUENCE && element.tag != SET {
        return Err(NotCanonical::ConstructedString);
    }
    match element.tag {
        BOOLEAN if !matches!(element.content, [0x00] | [0xFF]) => {
            return Err(NotCanonical::NonCanonicalBoolean);
        }
        INTEGER if !minimal_integer(element.content) => {
            return Err(NotCanonical::NonMinimalInteger);
        }
        _ => {}
    }
    if constructed {
        let mut rest = element.content;
        while !rest.is_empty() {
            let (child, after) = read_canonical(rest)?;
            check_element(child, depth + 1)?;
            rest = after;
        }
    }
    Ok(())
}

fn minimal_integer(content: &[u8]) -> bool {
    match content {
        [] => false,
        [0x00, next, ..] => *next >= 0x80,
        [0xFF, next, ..] => *next < 0x80,
        _ => true,
    }
}

/// The `tbsCertificate` element (the signed part) of a DER certificate, whole.
pub(crate) fn tbs_certificate(cert_der: &[u8]) -> Option<&[u8]> {
    let cert = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = read(cert.content)?;
    (tbs.tag == SEQUENCE).then_some(tbs.raw)
}

/// Lower-case hex SHA-256 of the `tbsCertificate`: the certificate's identity, the same for
/// every encoding or signature of the same signed content (an ECDSA signature with `s`
/// replaced by `n−s` does not make a new certificate).
pub(crate) fn identity(cert_der: &[u8]) -> Option<String> {
    let tbs = tbs_certificate(cert_der)?;
    openssl::hash::hash(MessageDigest::sha256(), tbs)
        .ok()
        .map(hex::encode)
}

/// A certificate extension as encoded: whether it is critical, and its `extnValue` contents
/// (the DER of the extension's own structure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawExtension {
    pub critical: bool,
    pub value: Vec<u8>,
}

/// The extension with OID contents `oid` (e.g. `55 1D 13` for basicConstraints) of a DER
/// certificate, if present.
pub(crate) fn extension(cert_der: &[u8], oid: &[u8]) -> Option<RawExtension> {
    let cert = expect(cert_der, SEQUENCE)?;
    let tbs = expect(cert.content, SEQUENCE)?;
    let fields = children(tbs.content)?;
    let extensions = fields.iter().find(|f| f.tag == CONTEXT_3)?;
    let list = expect(extensions.content, SEQUENCE)?;
    for extension in children(list.content)? {
        let parts = children(extension.content)?;
        let Some(first) = parts.first() else { continue };
        if first.tag != OID || first.content != oid {
            continue;
        }
        let critical = parts
            .iter()
            .find(|p| p.tag == BOOLEAN)
            .is_some_and(|flag| flag.content.iter().any(|b| *b != 0));
        let value = parts.iter().find(|p| p.tag == OCTET_STRING)?;
        return Some(RawExtension {
            critical,
            value: value.content.to_vec(),
        });
    }
    None
}

/// Appends a DER length.
fn write_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        // Fits in 7 bits, so the cast cannot truncate.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        // At most size_of::<usize>() (8) octets, so the count fits in 7 bits.
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Appends one element with the given tag and contents.
pub(crate) fn write(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    write_len(content.len(), out);
    out.extend_from_slice(content);
}

/// Returns one element with the given tag and contents.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    write(tag, content, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 1 << 20] {
            let content = vec![7u8; len];
            let encoded = encode(OCTET_STRING, &content);
            let (tlv, rest) = read(&encoded).expect("read back");
            assert_eq!(tlv.tag, OCTET_STRING);
            assert_eq!(tlv.content.len(), len);
            assert_eq!(tlv.raw, &encoded[..]);
            assert!(rest.is_empty());
            assert_eq!(check_canonical(&encoded), Ok(()));
        }
    }

    #[test]
    fn malformed_input_is_rejected() {
        assert!(read(&[]).is_none());
        assert!(read(&[0x30]).is_none());
        assert!(read(&[0x30, 0x05, 0x00]).is_none());
        assert!(read(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[0x1F, 0x01, 0x00]).is_none());
        assert!(read(&[0x30, 0x82, 0xFF]).is_none());
        assert!(children(&[0x02, 0x01, 0x00, 0x02]).is_none());
    }

    #[test]
    fn non_canonical_encodings_are_named() {
        // Long form for a short length, and a leading zero length octet.
        assert_eq!(
            check_canonical(&[0x04, 0x81, 0x01, 0x00]),
            Err(NotCanonical::NonMinimalLength)
        );
        let mut padded = vec![0x04, 0x82, 0x00, 0x80];
        padded.extend_from_slice(&[0u8; 0x80]);
        assert_eq!(
            check_canonical(&padded),
            Err(NotCanonical::NonMinimalLength)
        );
        // ... also when nested.
        assert_eq!(
            check_canonical(&[0x30, 0x04, 0x04, 0x81, 0x01, 0x00]),
            Err(NotCanonical::NonMinimalLength)
        );
        assert_eq!(
            check_canonical(&[0x02, 0x01, 0x05, 0x00]),
            Err(NotCanonical::TrailingData)
        );
        assert_eq!(
            check_canonical(&[0x24, 0x03, 0x04, 0x01, 0x00]),
            Err(NotCanonical::ConstructedString)
        );
        assert_eq!(
            check_canonical(&[0x01, 0x01, 0x01]),
            Err(NotCanonical::NonCanonicalBoolean)
        );
        assert_eq!(
            check_canonical(&[0x02, 0x02, 0x00, 0x05]),
            Err(NotCanonical::NonMinimalInteger)
        );
        assert_eq!(
            check_canonical(&[0x02, 0x02, 0xFF, 0x85]),
            Err(NotCanonical::NonMinimalInteger)
        );
        assert_eq!(check_canonical(&[0x02, 0x02, 0x00, 0x85]), Ok(()));
        assert_eq!(
            check_canonical(&[0x30, 0x80, 0x00, 0x00]),
            Err(NotCanonical::Malformed)
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let mut nested = vec![0x05, 0x00];
        for _ in 0..10_000 {
            nested = encode(SEQUENCE, &nested);
        }
        assert_eq!(check_canonical(&nested), Err(NotCanonical::Malformed));
    }
}
