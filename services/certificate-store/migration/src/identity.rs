//! The certificate identity the store keys certificates by (SHA-256 of the DER
//! `tbsCertificate`), computed here for rows written before identities existed. The store
//! computes the same value at run time; a test of the store checks that both agree.

use openssl::hash::MessageDigest;
use openssl::x509::X509;

/// `(header length, content length)` of the DER element at the start of `input`.
fn header(input: &[u8]) -> Option<(usize, usize)> {
    let first = usize::from(*input.get(1)?);
    if first < 0x80 {
        return Some((2, first));
    }
    let count = first & 0x7F;
    if count == 0 || count > 4 {
        return None;
    }
    let length = input
        .get(2..2 + count)?
        .iter()
        .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
    Some((2 + count, length))
}

/// Lower-case hex SHA-256 of the `tbsCertificate` of the PEM certificate `pem`; `None` when
/// it does not parse.
pub fn identity_of_pem(pem: &str) -> Option<String> {
    let der = X509::from_pem(pem.as_bytes()).ok()?.to_der().ok()?;
    let (outer_header, _) = header(&der)?;
    let inner = der.get(outer_header..)?;
    let (tbs_header, tbs_length) = header(inner)?;
    let tbs = inner.get(..tbs_header + tbs_length)?;
    let digest = openssl::hash::hash(MessageDigest::sha256(), tbs).ok()?;
    Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}
