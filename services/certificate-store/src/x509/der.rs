//! A minimal DER reader and writer for the few structures OpenSSL's Rust bindings do not
//! expose: the basicConstraints `cA` flag, the RSASSA-PSS hash parameter, and the
//! certificates-only PKCS#7 `SignedData` we emit. Written in safe Rust so the workspace can
//! keep `unsafe_code = "forbid"`; it only reads certificates OpenSSL has already parsed.

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (only low-tag-number form is supported).
    pub tag: u8,
    /// The contents octets.
    pub content: &'a [u8],
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
/// Context-specific constructed `[0]`.
pub(crate) const CONTEXT_0: u8 = 0xA0;
/// Context-specific constructed `[3]`.
pub(crate) const CONTEXT_3: u8 = 0xA3;

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
    let (content, rest) = rest.split_at_checked(len)?;
    Some((Tlv { tag, content }, rest))
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
            assert!(rest.is_empty());
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
}
