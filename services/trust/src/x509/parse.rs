//! Turning uploaded text into certificates, with the contract's error classes:
//! blank or not PEM/P7B → KER-PCM-001, PEM armour around undecodable content → KER-KMS-013.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use openssl::x509::X509;

use super::pkcs7::p7b_der_to_certs;
use super::{CertError, CertificateFacts};

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

/// KER-KMS-013 unless `der` is exactly one element in canonical DER: a certificate has one
/// encoding, so that no re-encoded copy can pass for a different certificate.
fn require_canonical(der: &[u8], what: &str) -> Result<(), CertError> {
    super::der::check_canonical(der).map_err(|problem| CertError::Unparsable {
        detail: format!("{what} is not canonical DER: {}", problem.describe()),
    })
}

/// Parses one certificate's DER, mapping failure to KER-KMS-013 with our own wording: the
/// encoding must be canonical, and everything the rules read later (key, validity, serial)
/// must be readable now, so that a corrupted certificate is refused as unparsable instead
/// of failing deep inside a later step.
fn certificate_from_der(der: &[u8], what: &str) -> Result<X509, CertError> {
    require_canonical(der, what)?;
    let certificate = X509::from_der(der).map_err(|_| CertError::Unparsable {
        detail: format!("{what} is not a valid X.509 certificate"),
    })?;
    readable(certificate, what)
}

/// The certificate, once its facts are known to be readable (KER-KMS-013 otherwise).
fn readable(certificate: X509, what: &str) -> Result<X509, CertError> {
    match CertificateFacts::of(&certificate) {
        Ok(_) => Ok(certificate),
        Err(CertError::Unparsable { detail }) => Err(CertError::Unparsable {
            detail: format!("{what}: {detail}"),
        }),
        Err(other) => Err(other),
    }
}

/// The certificates OpenSSL read from the DER PKCS#7 bundle `der`, once the bundle is known
/// to be canonical DER (which covers every certificate inside) and each readable.
fn checked_pkcs7(der: &[u8], certificates: Vec<X509>, what: &str) -> Result<Vec<X509>, CertError> {
    require_canonical(der, what)?;
    certificates
        .into_iter()
        .map(|certificate| readable(certificate, what))
        .collect()
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
                out.extend(checked_pkcs7(&der, certs, &what)?);
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
    if let Ok(certs) = p7b_der_to_certs(&der) {
        return checked_pkcs7(&der, certs, "the PKCS#7 bundle");
    }
    if X509::from_der(&der).is_err() {
        return Err(CertError::NotPemOrP7b);
    }
    certificate_from_der(&der, "the DER certificate").map(|cert| vec![cert])
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

/// Most certificates one `VerifyCertificateTrust` request may carry (the leaf plus helpers):
/// the work of a request stays bounded whatever a caller sends.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;

/// Parses the data of `VerifyCertificateTrust`: the certificate to verify first, optionally
/// followed by untrusted intermediates that may help build the path. Accepts the same forms
/// as [`parse_ca_bundle`] and keeps the input order (for a PKCS#7 bundle, its order). More
/// than [`MAX_CHAIN_CERTIFICATES`] is [`CertError::TooManyCertificates`], counted before
/// any certificate is parsed where the form allows it.
pub fn parse_chain(data: &str) -> Result<Vec<X509>, CertError> {
    let too_many = |found| CertError::TooManyCertificates {
        found,
        max: MAX_CHAIN_CERTIFICATES,
    };
    if let Some(blocks) = pem_blocks(not_blank(data)?)? {
        let found = blocks.iter().filter(|b| b.kind != BlockKind::Other).count();
        if found > MAX_CHAIN_CERTIFICATES {
            return Err(too_many(found));
        }
    }
    let certificates = parse_ca_bundle(data)?;
    if certificates.len() > MAX_CHAIN_CERTIFICATES {
        return Err(too_many(certificates.len()));
    }
    Ok(certificates)
}

/// The verdict-cache key of a `VerifyCertificateTrust` request: SHA-256 over the domain and
/// the request's exact text. The verdict is a function of that text alone (for one trust
/// snapshot, until the verdict's own expiry), so equal keys can share it whatever the text
/// holds — PEM, PKCS#7 or base64 — and a request the parser refuses is never cached at all.
/// It is computed without parsing anything: this is the hot path of every relying service.
/// The same certificates with other line breaks get another key and are verified once more.
pub fn chain_key(domain: &str, data: &str) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update(&[0]);
    hasher.update(data.as_bytes());
    hasher.finish()
}
