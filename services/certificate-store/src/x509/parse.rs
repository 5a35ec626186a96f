//! Turning uploaded text into certificates, with the contract's error classes:
//! blank or not PEM/P7B → KER-PCM-001, PEM armour around undecodable content → KER-KMS-013.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use openssl::x509::X509;

use super::CertError;
use super::pkcs7::p7b_der_to_certs;

/// Standard alphabet, padding optional.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe alphabet (MOSIP's P7B transport encoding), padding optional.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// PEM labels that hold one DER certificate (`TRUSTED CERTIFICATE` appends OpenSSL trust
/// settings after the certificate, which the DER parser ignores).
const CERTIFICATE_LABELS: &[&str] = &["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];
/// PEM labels that hold a PKCS#7 / CMS SignedData.
const PKCS7_LABELS: &[&str] = &["PKCS7", "PKCS #7 SIGNED DATA", "CMS"];

/// What a PEM block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Certificate,
    Pkcs7,
    Other,
}

/// One `-----BEGIN x-----` … `-----END x-----` block.
struct PemBlock<'a> {
    kind: BlockKind,
    body: &'a str,
}

/// Splits `data` into PEM blocks; `Ok(None)` when there is no armour at all, an error when a
/// block is opened but never closed (armour present, content broken).
fn pem_blocks(data: &str) -> Result<Option<Vec<PemBlock<'_>>>, CertError> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    if !data.contains(BEGIN) {
        return Ok(None);
    }
    let mut blocks = Vec::new();
    let mut rest = data;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let label_end = after_begin
            .find(DASHES)
            .ok_or_else(|| CertError::Unparsable {
                detail: "PEM header is not terminated".into(),
            })?;
        let label = &after_begin[..label_end];
        let body_and_rest = &after_begin[label_end + DASHES.len()..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_and_rest
            .find(&end_marker)
            .ok_or_else(|| CertError::Unparsable {
                detail: format!("PEM block \"{}\" has no END line", label.trim()),
            })?;
        let label = label.trim();
        let kind = if CERTIFICATE_LABELS.contains(&label) {
            BlockKind::Certificate
        } else if PKCS7_LABELS.contains(&label) {
            BlockKind::Pkcs7
        } else {
            BlockKind::Other
        };
        blocks.push(PemBlock {
            kind,
            body: &body_and_rest[..body_end],
        });
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    Ok(Some(blocks))
}

/// Decodes a PEM body (standard base64 with line breaks; padding optional).
fn pem_body_der(body: &str, what: &str) -> Result<Vec<u8>, CertError> {
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD_LENIENT
        .decode(compact.as_bytes())
        .map_err(|_| CertError::Unparsable {
            detail: format!("{what} is not valid base64"),
        })
}

/// Parses one certificate's DER, mapping failure to KER-KMS-013 with our own wording.
fn certificate_from_der(der: &[u8], what: &str) -> Result<X509, CertError> {
    X509::from_der(der).map_err(|_| CertError::Unparsable {
        detail: format!("{what} is not a valid X.509 certificate"),
    })
}

/// Certificates of every certificate and PKCS#7 block, in order.
fn certificates_of_blocks(blocks: &[PemBlock<'_>]) -> Result<Vec<X509>, CertError> {
    let mut out = Vec::new();
    let total = blocks.len();
    for (i, block) in blocks.iter().enumerate() {
        let what = format!("PEM block {} of {total}", i + 1);
        match block.kind {
            BlockKind::Certificate => {
                let der = pem_body_der(block.body, &what)?;
                out.push(certificate_from_der(&der, &what)?);
            }
            BlockKind::Pkcs7 => {
                let der = pem_body_der(block.body, &what)?;
                let certs = p7b_der_to_certs(&der).map_err(|_| CertError::Unparsable {
                    detail: format!("{what} is not a valid PKCS#7 certificate bundle"),
                })?;
                out.extend(certs);
            }
            BlockKind::Other => {}
        }
    }
    Ok(out)
}

/// Decodes un-armoured base64 (standard or URL-safe, padding optional, white space
/// ignored) and reads it as a PKCS#7 bundle, or failing that as one DER certificate.
/// Every failure is "not PEM/P7B" (KER-PCM-001), as in MOSIP.
fn certificates_of_base64(data: &str) -> Result<Vec<X509>, CertError> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = URL_SAFE_LENIENT
        .decode(compact.as_bytes())
        .or_else(|_| STANDARD_LENIENT.decode(compact.as_bytes()))
        .map_err(|_| CertError::NotPemOrP7b)?;
    match p7b_der_to_certs(&der) {
        Ok(certs) => Ok(certs),
        Err(_) => X509::from_der(&der)
            .map(|cert| vec![cert])
            .map_err(|_| CertError::NotPemOrP7b),
    }
}

fn not_blank(data: &str) -> Result<&str, CertError> {
    let trimmed = data.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.is_empty() {
        Err(CertError::Blank)
    } else {
        Ok(trimmed)
    }
}

/// Parses a CA upload: one PEM certificate, several concatenated PEM certificates, a
/// PEM-armoured PKCS#7 (`-----BEGIN PKCS7-----`), or base64 / URL-safe base64 DER of a
/// PKCS#7 bundle (or of a single certificate), with or without padding. Certificates come
/// back in input order; [`super::order_bundle`] puts roots first.
///
/// Errors: blank → [`CertError::Blank`]; neither PEM nor decodable base64 DER →
/// [`CertError::NotPemOrP7b`]; armour whose content does not decode →
/// [`CertError::Unparsable`]; a bundle without any certificate → [`CertError::NoCertificate`].
pub fn parse_ca_bundle(data: &str) -> Result<Vec<X509>, CertError> {
    let data = not_blank(data)?;
    let certs = match pem_blocks(data)? {
        Some(blocks) => {
            if blocks.iter().all(|b| b.kind == BlockKind::Other) {
                return Err(CertError::NoCertificate);
            }
            certificates_of_blocks(&blocks)?
        }
        None => certificates_of_base64(data)?,
    };
    if certs.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(certs)
}

/// Parses a partner/FTM upload: exactly one PEM certificate (MOSIP accepts only PEM here).
///
/// Errors: blank → [`CertError::Blank`]; no certificate PEM block →
/// [`CertError::NotPemOrP7b`]; several certificates →
/// [`CertError::ExpectedSingleCertificate`] (rather than silently using the first, which
/// would let a pasted chain be misread); undecodable content → [`CertError::Unparsable`].
pub fn parse_partner_certificate(data: &str) -> Result<X509, CertError> {
    let data = not_blank(data)?;
    let blocks = pem_blocks(data)?.ok_or(CertError::NotPemOrP7b)?;
    let certificate_blocks: Vec<&PemBlock<'_>> = blocks
        .iter()
        .filter(|b| b.kind == BlockKind::Certificate)
        .collect();
    match certificate_blocks.as_slice() {
        [] => Err(CertError::NotPemOrP7b),
        [block] => {
            let der = pem_body_der(block.body, "the PEM certificate")?;
            certificate_from_der(&der, "the PEM certificate")
        }
        several => Err(CertError::ExpectedSingleCertificate {
            found: several.len(),
        }),
    }
}

/// Parses the data of `VerifyCertificateTrust`: the certificate to verify first, optionally
/// followed by untrusted intermediates that may help build the path. Accepts the same forms
/// as [`parse_ca_bundle`] and keeps the input order (for a PKCS#7 bundle, its order).
pub fn parse_chain(data: &str) -> Result<Vec<X509>, CertError> {
    parse_ca_bundle(data)
}
