//! Certificate arguments are file paths. The API takes text: PEM (one certificate, a chain
//! or `-----BEGIN PKCS7-----`) or base64 DER PKCS#7. Files in those forms are sent as they
//! are; a binary DER file is turned into text here: a single X.509 certificate becomes PEM
//! (the only form partner and FTM uploads accept), anything else (a `.p7b` bundle) is
//! base64-encoded for the store to read as PKCS#7.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;

use crate::failure::CliError;

/// Reads `path` and returns the text to send as `certificate_data`.
pub fn read_certificate(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    certificate_text(&bytes)
        .map_err(|error| CliError::Usage(format!("{}: {error}", path.display())))
}

/// The `certificate_data` for a file's content (see the module documentation).
pub fn certificate_text(bytes: &[u8]) -> Result<String, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".to_owned());
    }
    let without_bom = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(without_bom)
        && is_text(text)
    {
        return Ok(text.to_owned());
    }
    binary_der_as_text(without_bom)
}

/// PEM (possibly with non-ASCII explanatory text around the blocks, as `openssl x509 -text`
/// writes) or base64: binary DER is neither, since its length octets are not printable.
fn is_text(text: &str) -> bool {
    text.contains("-----BEGIN ")
        || text
            .chars()
            .all(|character| character.is_ascii_graphic() || character.is_ascii_whitespace())
}

fn binary_der_as_text(der: &[u8]) -> Result<String, String> {
    if let Ok(certificate) = X509::from_der(der) {
        let pem = certificate
            .to_pem()
            .map_err(|error| format!("cannot convert the DER certificate to PEM: {error}"))?;
        return String::from_utf8(pem).map_err(|error| error.to_string());
    }
    if der.first() == Some(&0x30) {
        return Ok(STANDARD.encode(der));
    }
    Err("neither PEM, base64 nor DER (is it a certificate file?)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pki() -> pmp_dev_certs::DevPki {
        pmp_dev_certs::DevPki::generate("Test Org").expect("pki")
    }

    #[test]
    fn pem_is_sent_as_is() {
        let pem = pki().partner.pem().expect("pem");
        assert_eq!(certificate_text(pem.as_bytes()).expect("text"), pem);
    }

    #[test]
    fn pem_with_non_ascii_comments_is_text() {
        let pem = format!(
            "subject=O = Zürich AG\n{}",
            pki().partner.pem().expect("pem")
        );
        assert_eq!(certificate_text(pem.as_bytes()).expect("text"), pem);
    }

    #[test]
    fn binary_der_certificate_becomes_pem() {
        let pki = pki();
        let der = pki.partner.der().expect("der");
        let text = certificate_text(&der).expect("text");
        assert_eq!(text, pki.partner.pem().expect("pem"));
    }

    #[test]
    fn binary_pkcs7_becomes_base64() {
        use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
        use openssl::stack::Stack;
        let pki = pki();
        let mut certificates = Stack::new().expect("stack");
        certificates
            .push(pki.root.certificate.clone())
            .expect("push");
        // A certificates-only bundle, as `openssl crl2pkcs7 -nocrl` writes.
        let bundle = Pkcs7::sign(
            &pki.root.certificate,
            &pki.root.private_key,
            &certificates,
            b"",
            Pkcs7Flags::DETACHED | Pkcs7Flags::NOSMIMECAP,
        )
        .expect("pkcs7");
        let der = bundle.to_der().expect("der");
        let text = certificate_text(&der).expect("text");
        assert_eq!(STANDARD.decode(&text).expect("base64"), der);
    }

    #[test]
    fn empty_and_garbage_files_are_refused() {
        assert!(certificate_text(b"  \n").is_err());
        assert!(certificate_text(&[0x01, 0xff, 0x00]).is_err());
    }
}
