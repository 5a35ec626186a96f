//! What the store records and checks about a certificate, extracted once.

use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::{X509NameRef, X509Ref};

use super::der;
use super::{CertError, asn1_to_utc};

/// DER contents of the basicConstraints OID 2.5.29.19.
pub(crate) const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
/// DER contents of the keyUsage OID 2.5.29.15.
pub(crate) const OID_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
/// DER contents of the extendedKeyUsage OID 2.5.29.37.
pub(crate) const OID_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25];

/// The kind of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// rsaEncryption.
    Rsa,
    /// id-RSASSA-PSS (an RSA key restricted to PSS).
    RsaPss,
    /// id-ecPublicKey.
    Ec,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// DSA.
    Dsa,
    /// Anything else, by OpenSSL's key id.
    Other(i32),
}

impl KeyKind {
    fn of(id: Id) -> KeyKind {
        match id {
            Id::RSA => KeyKind::Rsa,
            Id::RSA_PSS => KeyKind::RsaPss,
            Id::EC => KeyKind::Ec,
            Id::ED25519 => KeyKind::Ed25519,
            Id::ED448 => KeyKind::Ed448,
            Id::DSA => KeyKind::Dsa,
            other => KeyKind::Other(other.as_raw()),
        }
    }
}

/// The facts the store persists and the validation rules read, computed once per
/// certificate so that the rules and the database agree on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Lower-case hex SHA-256 of the DER (the contract's thumbprint, for display).
    pub thumbprint: String,
    /// Lower-case hex SHA-256 of the DER `tbsCertificate`: what identifies the certificate
    /// in the store, whatever its encoding or signature bytes.
    pub identity: String,
    /// Subject as a one-line RFC 4514 string, most specific first ("CN=x,O=y,C=z").
    pub subject: String,
    /// Issuer, same format.
    pub issuer: String,
    /// Serial number as upper-case hex (a leading '-' if a non-conforming CA made it
    /// negative).
    pub serial_number: String,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// X.509 version, 1 to 3.
    pub version: u8,
    /// Subject equals issuer and the signature verifies with the certificate's own key.
    pub is_self_signed: bool,
    /// basicConstraints present with `cA` TRUE.
    pub is_ca: bool,
    /// basicConstraints `pathLenConstraint`, when present.
    pub path_len: Option<u64>,
    /// Public key kind.
    pub key_kind: KeyKind,
    /// Public key size in bits as OpenSSL reports it (modulus size for RSA, field size for
    /// EC).
    pub key_bits: u32,
    /// Signature algorithm.
    pub signature_algorithm: Nid,
    /// Signature algorithm name (OpenSSL long name, or the dotted OID if unknown).
    pub signature_algorithm_name: String,
    /// Every subject O value, in encoding order.
    pub organisations: Vec<String>,
}

impl CertificateFacts {
    /// Extracts the facts of `cert`. A certificate whose key, serial or validity cannot be
    /// read is [`CertError::Unparsable`] (hostile input, KER-KMS-013); only a failure to
    /// re-encode or hash a parsed certificate is internal.
    pub fn of(cert: &X509Ref) -> Result<Self, CertError> {
        let der = cert.to_der()?;
        let thumbprint = hex::encode(openssl::hash::hash(MessageDigest::sha256(), &der)?);
        let identity = der::identity(&der).ok_or_else(|| unreadable("its structure"))?;
        let serial_number = cert
            .serial_number()
            .to_bn()
            .and_then(|serial| serial.to_hex_str().map(|hex| hex.to_string()))
            .map_err(|_| unreadable("its serial number"))?;
        let key = cert
            .public_key()
            .map_err(|_| unreadable("its public key"))?;
        let not_before = asn1_to_utc(cert.not_before()).map_err(|_| unreadable("its validity"))?;
        let not_after = asn1_to_utc(cert.not_after()).map_err(|_| unreadable("its validity"))?;
        let algorithm = cert.signature_algorithm().object();
        let constraints = basic_constraints(&der);
        let facts = CertificateFacts {
            thumbprint,
            identity,
            subject: one_line_name(cert.subject_name()),
            issuer: one_line_name(cert.issuer_name()),
            serial_number,
            not_before,
            not_after,
            version: version_of(cert),
            is_self_signed: is_self_signed(cert),
            is_ca: constraints.is_ca,
            path_len: constraints.path_len,
            key_kind: KeyKind::of(key.id()),
            key_bits: key.bits(),
            signature_algorithm: algorithm.nid(),
            signature_algorithm_name: algorithm_name(algorithm),
            organisations: organisations(cert),
        };
        super::clear_error_queue();
        Ok(facts)
    }
}

/// The certificate's identity alone (SHA-256 of its `tbsCertificate`). The verification
/// path recognises stored certificates by it on every cache miss, where the rest of
/// [`CertificateFacts`] (names, key decoding, a self-signature check) would cost as much
/// as the path validation itself.
pub fn identity_of(cert: &X509Ref) -> Result<String, CertError> {
    let der = cert.to_der()?;
    der::identity(&der).ok_or_else(|| unreadable("its structure"))
}

/// When the certificate stops being valid.
pub fn not_after_of(cert: &X509Ref) -> Result<DateTime<Utc>, CertError> {
    asn1_to_utc(cert.not_after()).map_err(|_| unreadable("its validity"))
}

fn unreadable(what: &str) -> CertError {
    CertError::Unparsable {
        detail: format!("{what} cannot be read"),
    }
}

/// The X.509 version, 1 to 3 (OpenSSL counts from 0); out-of-range values are clamped so
/// that a malformed version never looks like v3.
pub(crate) fn version_of(cert: &X509Ref) -> u8 {
    match cert.version() {
        0 => 1,
        1 => 2,
        2 => 3,
        _ => 0,
    }
}

/// A root in the contract's sense: subject equals issuer *and* the signature verifies with
/// the certificate's own public key (a subject==issuer test alone would let a self-issued
/// but foreign-signed certificate pass as a trust anchor).
pub fn is_self_signed(cert: &X509Ref) -> bool {
    let names_equal = matches!(
        cert.subject_name().try_cmp(cert.issuer_name()),
        Ok(std::cmp::Ordering::Equal)
    );
    let verified = names_equal
        && cert
            .public_key()
            .is_ok_and(|key| matches!(cert.verify(&key), Ok(true)));
    // A signature that does not verify leaves errors on the thread's queue.
    super::clear_error_queue();
    verified
}

/// basicConstraints `cA` is TRUE. The Rust bindings expose no accessor, so the extension is
/// read from the DER; an undecodable certificate counts as not a CA.
pub fn is_ca(cert: &X509Ref) -> bool {
    cert.to_der().is_ok_and(|der| basic_constraints(&der).is_ca)
}

/// The decoded basicConstraints extension (absent: not a CA, no path length).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BasicConstraintsFacts {
    pub is_ca: bool,
    pub path_len: Option<u64>,
}

/// Decodes basicConstraints from a DER certificate: `cA` (DEFAULT FALSE; non-zero
/// booleans count as TRUE, as in OpenSSL) and `pathLenConstraint`.
pub(crate) fn basic_constraints(cert_der: &[u8]) -> BasicConstraintsFacts {
    fn inner(cert_der: &[u8]) -> Option<BasicConstraintsFacts> {
        let extension = der::extension(cert_der, OID_BASIC_CONSTRAINTS)?;
        let constraints = der::expect(&extension.value, der::SEQUENCE)?;
        let mut facts = BasicConstraintsFacts::default();
        for field in der::children(constraints.content)? {
            match field.tag {
                der::BOOLEAN => facts.is_ca = field.content.iter().any(|b| *b != 0),
                der::INTEGER if field.content.len() <= 8 => {
                    facts.path_len = Some(
                        field
                            .content
                            .iter()
                            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
                    );
                }
                _ => {}
            }
        }
        Some(facts)
    }
    inner(cert_der).unwrap_or_default()
}

/// Every subject O value, in encoding order (values converted to UTF-8, interior NULs kept
/// so that "Acme\0x" never equals "Acme").
pub(crate) fn organisations(cert: &X509Ref) -> Vec<String> {
    cert.subject_name()
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .map(|e| entry_value(e.data()))
        .collect()
}

fn entry_value(data: &openssl::asn1::Asn1StringRef) -> String {
    data.to_string()
        .unwrap_or_else(|_| String::from_utf8_lossy(data.as_slice()).into_owned())
}

fn algorithm_name(object: &openssl::asn1::Asn1ObjectRef) -> String {
    match object.nid().long_name() {
        Ok(name) if object.nid() != Nid::UNDEF => name.to_owned(),
        _ => object.to_string(),
    }
}

/// A one-line RFC 4514 rendering, most specific RDN first ("CN=x,O=y,C=z"), with short
/// attribute names (dotted OID for unknown ones) and RFC 4514 escaping, so that names with
/// commas cannot be confused with other names.
pub(crate) fn one_line_name(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|entry| {
            let object = entry.object();
            let key = match object.nid().short_name() {
                Ok(short) if object.nid() != Nid::UNDEF => short.to_owned(),
                _ => object.to_string(),
            };
            format!("{key}={}", escape_value(&entry_value(entry.data())))
        })
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_value;

    #[test]
    fn rfc4514_escaping() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(escape_value("#1"), "\\#1");
        assert_eq!(escape_value("a\0b"), "a\\00b");
        assert_eq!(escape_value("plain"), "plain");
    }
}
