//! Certificates-only PKCS#7 ("P7B"), the bundle format of trust paths and MOSIP's chains.
//!
//! The Rust bindings cannot build a SignedData without a signer, so the tiny degenerate
//! structure that `openssl crl2pkcs7 -nocrl` emits is encoded by hand (safe Rust, no FFI):
//!
//! ```text
//! ContentInfo ::= SEQUENCE {
//!   contentType  OID signedData (1.2.840.113549.1.7.2),
//!   content [0] EXPLICIT SignedData ::= SEQUENCE {
//!     version INTEGER 1, digestAlgorithms SET {}, encapContentInfo SEQUENCE { OID data },
//!     certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} } }
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::pkcs7::Pkcs7;
use openssl::x509::X509;

use super::CertError;
use super::der;

/// DER contents of OID 1.2.840.113549.1.7.2 (signedData).
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
/// DER contents of OID 1.2.840.113549.1.7.1 (data).
const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];

/// Encodes `certs` as a DER certificates-only PKCS#7 SignedData, keeping their order (the
/// trust path is leaf first; the certificates field is encoded like OpenSSL does, without
/// re-sorting, so consumers that rely on order see it unchanged).
pub fn certs_to_p7b_der(certs: &[X509]) -> Result<Vec<u8>, CertError> {
    let mut certificates = Vec::new();
    for cert in certs {
        certificates.extend_from_slice(&cert.to_der()?);
    }
    let mut signed_data = Vec::new();
    der::write(der::INTEGER, &[0x01], &mut signed_data);
    der::write(der::SET, &[], &mut signed_data);
    der::write(
        der::SEQUENCE,
        &der::encode(der::OID, OID_DATA),
        &mut signed_data,
    );
    der::write(der::CONTEXT_0, &certificates, &mut signed_data);
    der::write(der::SET, &[], &mut signed_data);

    let mut content_info = der::encode(der::OID, OID_SIGNED_DATA);
    der::write(
        der::CONTEXT_0,
        &der::encode(der::SEQUENCE, &signed_data),
        &mut content_info,
    );
    Ok(der::encode(der::SEQUENCE, &content_info))
}

/// [`certs_to_p7b_der`] as URL-safe base64 without padding, MOSIP's transport form.
pub fn certs_to_p7b_base64url(certs: &[X509]) -> Result<String, CertError> {
    Ok(URL_SAFE_NO_PAD.encode(certs_to_p7b_der(certs)?))
}

/// Reads the certificates of a DER PKCS#7 SignedData (any signers or content ignored).
/// Errors: not PKCS#7 → [`CertError::Unparsable`]; not SignedData or no certificates →
/// [`CertError::NoCertificate`].
pub fn p7b_der_to_certs(der: &[u8]) -> Result<Vec<X509>, CertError> {
    let p7 = Pkcs7::from_der(der).map_err(|_| CertError::Unparsable {
        detail: "not a PKCS#7 structure".into(),
    })?;
    let certs = p7
        .signed()
        .and_then(|signed| signed.certificates())
        .ok_or(CertError::NoCertificate)?;
    let certs: Vec<X509> = certs.iter().map(|c| c.to_owned()).collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(certs)
}
