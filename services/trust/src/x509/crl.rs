//! Certificate revocation lists (RFC 5280 §5) signed by the platform signing key.
//!
//! rust-openssl has no CRL builder, so the `TBSCertList` is written here in DER and signed
//! through [`PrivateKey`] (in memory or in an HSM, like the platform-signed copies); the
//! result is parsed and verified by OpenSSL before it is returned.

use chrono::{DateTime, Datelike, Utc};
use openssl::bn::BigNumRef;
use openssl::x509::X509Crl;
use pmp_common::signing::KeyAlgorithm;

use super::CertError;
use super::der;
use super::sign::PlatformSigner;

use super::der::{BIT_STRING, CONTEXT_0, INTEGER, OCTET_STRING, OID};

const NULL: u8 = 0x05;
const ENUMERATED: u8 = 0x0A;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]` primitive (implicit): the key identifier of an authority key identifier.
const KEY_IDENTIFIER: u8 = 0x80;

/// OID contents (after tag and length).
const SHA256_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
const ECDSA_WITH_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
const ECDSA_WITH_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
const CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
const REASON_CODE: &[u8] = &[0x55, 0x1D, 0x15];
const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1D, 0x23];

/// One revoked certificate on a CRL.
#[derive(Debug, Clone)]
pub struct RevokedEntry<'a> {
    /// The certificate's serial number.
    pub serial: &'a BigNumRef,
    /// When it was revoked.
    pub revoked_at: DateTime<Utc>,
    /// RFC 5280 `CRLReason`; 0 (unspecified) is left out, as RFC 5280 recommends.
    pub reason: u8,
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone, Copy)]
pub struct CrlValidity {
    /// `thisUpdate`.
    pub this_update: DateTime<Utc>,
    /// `nextUpdate`: when relying parties should fetch a new one.
    pub next_update: DateTime<Utc>,
    /// The monotonically increasing CRL number.
    pub number: u64,
}

impl PlatformSigner {
    /// A v2 CRL listing `entries`, issued and signed by this signer (the issuer of the
    /// platform-signed copies it lists), as DER.
    pub fn sign_crl(
        &self,
        entries: &[RevokedEntry<'_>],
        validity: CrlValidity,
    ) -> Result<Vec<u8>, CertError> {
        let algorithm = algorithm_identifier(self.key_algorithm());
        let mut tbs = Vec::new();
        der::write(INTEGER, &[0x01], &mut tbs);
        tbs.extend(&algorithm);
        tbs.extend(self.certificate.subject_name().to_der()?);
        tbs.extend(time(validity.this_update));
        tbs.extend(time(validity.next_update));
        if !entries.is_empty() {
            let mut list = Vec::new();
            for entry in entries {
                der::write(der::SEQUENCE, &revoked_entry(entry), &mut list);
            }
            der::write(der::SEQUENCE, &list, &mut tbs);
        }
        der::write(
            CONTEXT_0,
            &der::encode(der::SEQUENCE, &self.crl_extensions(validity.number)),
            &mut tbs,
        );
        let tbs = der::encode(der::SEQUENCE, &tbs);
        let signature = self.sign_bytes(&tbs)?;
        let mut bit_string = vec![0x00];
        bit_string.extend(signature);
        let mut content = tbs;
        content.extend(algorithm);
        der::write(BIT_STRING, &bit_string, &mut content);
        let crl = der::encode(der::SEQUENCE, &content);
        let parsed = X509Crl::from_der(&crl)?;
        let public_key = self.certificate.public_key()?;
        if !parsed.verify(&public_key)? {
            return Err(CertError::Internal(
                "the signing key produced a CRL signature that does not verify".into(),
            ));
        }
        Ok(crl)
    }

    /// CRL number and authority key identifier (when the signing certificate has a subject
    /// key identifier), each an `Extension`.
    fn crl_extensions(&self, number: u64) -> Vec<u8> {
        let mut extensions = extension(
            CRL_NUMBER,
            &der::encode(INTEGER, &unsigned(&number.to_be_bytes())),
        );
        if let Some(key_id) = self.certificate.subject_key_id() {
            let identifier = der::encode(KEY_IDENTIFIER, key_id.as_slice());
            extensions.extend(extension(
                AUTHORITY_KEY_IDENTIFIER,
                &der::encode(der::SEQUENCE, &identifier),
            ));
        }
        extensions
    }
}

/// `SEQUENCE { serial, revocationDate, [crlEntryExtensions] }` contents.
fn revoked_entry(entry: &RevokedEntry<'_>) -> Vec<u8> {
    let mut content = der::encode(INTEGER, &unsigned(&entry.serial.to_vec()));
    content.extend(time(entry.revoked_at));
    if entry.reason != 0 {
        let reason = extension(REASON_CODE, &der::encode(ENUMERATED, &[entry.reason]));
        der::write(der::SEQUENCE, &reason, &mut content);
    }
    content
}

/// A non-critical `Extension` with the DER `value` as its `extnValue`.
fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    let mut content = der::encode(OID, oid);
    der::write(OCTET_STRING, value, &mut content);
    der::encode(der::SEQUENCE, &content)
}

/// The contents of a DER INTEGER holding the unsigned big-endian `magnitude`: minimal, with
/// a leading zero when the top bit is set.
fn unsigned(magnitude: &[u8]) -> Vec<u8> {
    let significant: Vec<u8> = magnitude
        .iter()
        .copied()
        .skip_while(|byte| *byte == 0)
        .collect();
    match significant.first() {
        None => vec![0x00],
        Some(first) if first & 0x80 != 0 => [&[0x00], significant.as_slice()].concat(),
        Some(_) => significant,
    }
}

/// `UTCTime` through 2049, `GeneralizedTime` after (RFC 5280 §5.1.2.4).
fn time(instant: DateTime<Utc>) -> Vec<u8> {
    if instant.year() < 2050 {
        der::encode(
            UTC_TIME,
            instant.format("%y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    } else {
        der::encode(
            GENERALIZED_TIME,
            instant.format("%Y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    }
}

/// The `AlgorithmIdentifier` of the signatures a key of `algorithm` makes.
fn algorithm_identifier(algorithm: KeyAlgorithm) -> Vec<u8> {
    let mut content = Vec::new();
    match algorithm {
        KeyAlgorithm::Rsa { .. } => {
            der::write(OID, SHA256_WITH_RSA, &mut content);
            der::write(NULL, &[], &mut content);
        }
        KeyAlgorithm::EcP256 => der::write(OID, ECDSA_WITH_SHA256, &mut content),
        KeyAlgorithm::EcP384 => der::write(OID, ECDSA_WITH_SHA384, &mut content),
    }
    der::encode(der::SEQUENCE, &content)
}
