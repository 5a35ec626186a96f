//! Re-encodings of real certificates that an attacker can make without any private key:
//! the inputs of the trust model's attack tests.
//!
//! * [`malleated_copy`]: an ECDSA signature `(r, s)` is equally valid as `(r, n − s)`, so
//!   anyone can turn a certificate into a different byte string (a different SHA-256 of the
//!   DER) that every verifier still accepts.
//! * [`with_long_form_length`], [`with_trailing_data`]: the same certificate in encodings
//!   that are valid BER but not canonical DER.

use openssl::bn::{BigNum, BigNumContext};
use openssl::x509::X509;

use crate::{DevCertError, Result};

fn malformed(what: &str) -> DevCertError {
    DevCertError::InvalidSpec(format!("not a DER certificate: {what}"))
}

/// One DER element: (tag, header length, content length).
fn header(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = usize::from(*input.get(1)?);
    if first < 0x80 {
        return Some((tag, 2, first));
    }
    let count = first & 0x7F;
    let length = input
        .get(2..2 + count)?
        .iter()
        .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
    Some((tag, 2 + count, length))
}

/// The elements of a constructed value's contents, each whole (header included).
fn elements(mut content: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, head, length) = header(content)?;
        let (element, rest) = content.split_at_checked(head + length)?;
        out.push(element);
        content = rest;
    }
    Some(out)
}

fn contents(element: &[u8]) -> Option<&[u8]> {
    let (_, head, length) = header(element)?;
    element.get(head..head + length)
}

/// DER length octets.
fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = vec![0x80 | (bytes.len() - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// A positive DER INTEGER.
fn integer(value: &BigNum) -> Vec<u8> {
    let mut bytes = value.to_vec();
    if bytes.first().is_none_or(|first| first & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    encode(0x02, &bytes)
}

/// `certificate` with its ECDSA signature `(r, s)` replaced by `(r, n − s)`, where `n` is
/// the order of the curve of `issuer`'s key: the same signed content, a different DER, and
/// a signature that still verifies.
pub fn malleated_copy(certificate: &X509, issuer: &X509) -> Result<X509> {
    let der = certificate.to_der()?;
    let outer = contents(&der).ok_or_else(|| malformed("outer"))?;
    let parts = elements(outer).ok_or_else(|| malformed("parts"))?;
    let [tbs, algorithm, signature] = parts.as_slice() else {
        return Err(malformed("three parts"));
    };
    let bits = contents(signature).ok_or_else(|| malformed("signature"))?;
    let (_, value) = bits.split_first().ok_or_else(|| malformed("bit string"))?;
    let pair = elements(contents(value).ok_or_else(|| malformed("ECDSA-Sig-Value"))?)
        .ok_or_else(|| malformed("r, s"))?;
    let [r, s] = pair.as_slice() else {
        return Err(malformed("r and s"));
    };
    let s = BigNum::from_slice(contents(s).ok_or_else(|| malformed("s"))?)?;
    let key = issuer.public_key()?.ec_key()?;
    let mut order = BigNum::new()?;
    let mut context = BigNumContext::new()?;
    key.group().order(&mut order, &mut context)?;
    let mut flipped = BigNum::new()?;
    flipped.checked_sub(&order, &s)?;
    let mut pair = r.to_vec();
    pair.extend(integer(&flipped));
    let mut bit_string = vec![0u8];
    bit_string.extend(encode(0x30, &pair));
    let mut certificate = tbs.to_vec();
    certificate.extend_from_slice(algorithm);
    certificate.extend(encode(0x03, &bit_string));
    Ok(X509::from_der(&encode(0x30, &certificate))?)
}

/// The DER of `certificate` with its outer length in a needlessly long form (valid BER,
/// not DER): the same certificate, other bytes.
pub fn with_long_form_length(certificate: &X509) -> Result<Vec<u8>> {
    let der = certificate.to_der()?;
    let (_, head, content_length) = header(&der).ok_or_else(|| malformed("outer"))?;
    let mut out = vec![0x30, 0x84];
    out.extend_from_slice(
        &u32::try_from(content_length)
            .map_err(|_| malformed("size"))?
            .to_be_bytes(),
    );
    out.extend_from_slice(&der[head..]);
    Ok(out)
}

/// The DER of `certificate` followed by `extra` bytes.
pub fn with_trailing_data(certificate: &X509, extra: &[u8]) -> Result<Vec<u8>> {
    let mut der = certificate.to_der()?;
    der.extend_from_slice(extra);
    Ok(der)
}

/// The DER of `certificate` (with an EC key) with its public key replaced by bytes of the
/// same length that are not a point of the curve: it still parses, its key does not.
pub fn with_corrupted_public_key(certificate: &X509) -> Result<Vec<u8>> {
    let key = certificate.public_key()?.ec_key()?;
    let mut context = BigNumContext::new()?;
    let point = key.public_key().to_bytes(
        key.group(),
        openssl::ec::PointConversionForm::UNCOMPRESSED,
        &mut context,
    )?;
    let mut der = certificate.to_der()?;
    let at = der
        .windows(point.len())
        .position(|window| window == point.as_slice())
        .ok_or_else(|| malformed("public key not found"))?;
    let half = point.len() / 2;
    for byte in &mut der[at + 1..at + half] {
        *byte = 0xFF;
    }
    Ok(der)
}

/// The DER of `certificate` with one bit of its signature value flipped.
pub fn with_corrupted_signature(certificate: &X509) -> Result<Vec<u8>> {
    let mut der = certificate.to_der()?;
    let last = der.len() - 1;
    der[last - 4] ^= 0x01;
    Ok(der)
}

/// PEM armour (64-column base64) around arbitrary bytes labelled `CERTIFICATE`.
pub fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateSpec, KeySpec};

    #[test]
    fn a_malleated_copy_differs_and_still_verifies() {
        let issuer = CertificateSpec::ca("issuer")
            .key(KeySpec::EcP256)
            .self_signed()
            .expect("issuer");
        let leaf = CertificateSpec::leaf("leaf")
            .key(KeySpec::EcP256)
            .issued_by(&issuer)
            .expect("leaf");
        let copy = malleated_copy(&leaf.certificate, &issuer.certificate).expect("copy");
        assert_ne!(
            copy.to_der().expect("der"),
            leaf.certificate.to_der().expect("der")
        );
        let key = issuer.certificate.public_key().expect("key");
        assert!(copy.verify(&key).expect("verify"), "n − s verifies too");
        assert_eq!(
            copy.serial_number().to_bn().expect("bn"),
            leaf.certificate.serial_number().to_bn().expect("bn")
        );
        // Twice is the original again.
        let back = malleated_copy(&copy, &issuer.certificate).expect("back");
        assert_eq!(
            back.to_der().expect("der"),
            leaf.certificate.to_der().expect("der")
        );
    }

    #[test]
    fn non_canonical_encodings_still_parse_in_openssl() {
        let leaf = CertificateSpec::leaf("leaf")
            .key(KeySpec::EcP256)
            .self_signed()
            .expect("leaf");
        let long = with_long_form_length(&leaf.certificate).expect("long");
        assert_ne!(long, leaf.certificate.to_der().expect("der"));
        assert!(X509::from_der(&long).is_ok());
        let trailing = with_trailing_data(&leaf.certificate, b"xx").expect("trailing");
        assert!(X509::from_der(&trailing).is_ok());
    }
}
