//! The contract's certificate rules, each its own error, checked in the contract's order so
//! that a certificate with exactly one fault always gets that fault's reason.

use chrono::{DateTime, Months, Utc};
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::{X509, X509Ref};

use super::chain::TrustMaterial;
use super::der;
use super::facts::{is_ca, is_self_signed, organisations, version_of};
use super::{CertError, asn1_to_utc};

/// DER contents of the SHA-256, SHA-384 and SHA-512 OIDs (2.16.840.1.101.3.4.2.{1,2,3}),
/// the hashes accepted inside RSASSA-PSS parameters.
const PSS_ACCEPTED_HASHES: [&[u8]; 3] = [
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
];

/// Configurable thresholds of the rules (defaults are the contract's values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// CA certificates must stay valid at least this many months (KER-PCM-017); 12.
    pub ca_min_validity_months: u32,
    /// Partner/FTM certificates must stay valid at least this many whole days
    /// (KER-KMS-021); 335 (MOSIP: 1 year × 365 − 30 days grace).
    pub partner_min_validity_days: i64,
    /// Minimum RSA modulus (KER-PCM-013); 2048.
    pub min_rsa_bits: u32,
    /// Minimum EC field size (KER-PCM-013); 256.
    pub min_ec_bits: u32,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        ValidationPolicy {
            ca_min_validity_months: 12,
            partner_min_validity_days: 335,
            min_rsa_bits: 2048,
            min_ec_bits: 256,
        }
    }
}

fn require_v3(cert: &X509Ref) -> Result<(), CertError> {
    match version_of(cert) {
        3 => Ok(()),
        version => Err(CertError::NotVersion3 { version }),
    }
}

/// notBefore ≤ now ≤ notAfter, as KER-PMS-020 then KER-PCM-004 (bounds inclusive).
fn require_current(
    cert: &X509Ref,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), CertError> {
    let not_before = asn1_to_utc(cert.not_before())?;
    let not_after = asn1_to_utc(cert.not_after())?;
    if not_before > now {
        return Err(CertError::NotYetValid { not_before });
    }
    if not_after < now {
        return Err(CertError::Expired { not_after });
    }
    Ok((not_before, not_after))
}

/// Rules of a CA upload, in the contract's order: X.509 v3 (KER-PCM-007), basicConstraints
/// CA:TRUE (KER-PCM-019), key size (KER-PCM-013), signature algorithm (KER-PCM-014), not
/// yet valid (KER-PMS-020), expired (KER-PCM-004), less than `ca_min_validity_months` left
/// (KER-PCM-017). The caller checks duplicates (KER-PCM-003) before and, for
/// intermediates, the chain (KER-PCM-005) after.
pub fn validate_ca_certificate(
    cert: &X509Ref,
    now: DateTime<Utc>,
    policy: &ValidationPolicy,
) -> Result<(), CertError> {
    require_v3(cert)?;
    if !is_ca(cert) {
        return Err(CertError::NotCa);
    }
    check_key(cert, policy)?;
    check_signature_algorithm(cert)?;
    let (_, not_after) = require_current(cert, now)?;
    let too_short = match now.checked_add_months(Months::new(policy.ca_min_validity_months)) {
        Some(threshold) => not_after < threshold,
        // Only reachable near the end of chrono's range: nothing can be valid that long.
        None => true,
    };
    if too_short {
        return Err(CertError::CaValidityTooShort {
            min_months: policy.ca_min_validity_months,
        });
    }
    Ok(())
}

/// Rules of a partner/FTM upload that need no trust store, in the contract's order:
/// X.509 v3 (KER-PCM-007), key size (KER-PCM-013), signature algorithm (KER-PCM-014,
/// explicit, so a weak digest never surfaces as a chain error), not yet valid (KER-PMS-020),
/// expired (KER-PCM-004), less than `partner_min_validity_days` whole days left
/// (KER-KMS-021), self-signed (KER-PCM-015). Chain (KER-PCM-006) and organisation
/// (KER-PCM-008) follow; [`validate_partner_upload`] runs all of them.
pub fn validate_partner_certificate(
    cert: &X509Ref,
    now: DateTime<Utc>,
    policy: &ValidationPolicy,
) -> Result<(), CertError> {
    require_v3(cert)?;
    check_key(cert, policy)?;
    check_signature_algorithm(cert)?;
    let (_, not_after) = require_current(cert, now)?;
    let days_left = (not_after - now).num_days();
    if days_left < policy.partner_min_validity_days {
        return Err(CertError::PartnerValidityTooShort {
            days_left,
            min_days: policy.partner_min_validity_days,
        });
    }
    if is_self_signed(cert) {
        return Err(CertError::SelfSigned);
    }
    Ok(())
}

/// Every rule of a partner/FTM upload in the contract's order:
/// [`validate_partner_certificate`], then the chain to a CA of the domain's `trust`
/// (KER-PCM-006, evaluated at `now`), then [`check_organisation`] (KER-PCM-008). Returns the
/// chain, leaf first, root last.
pub fn validate_partner_upload(
    cert: &X509,
    organisation: &str,
    trust: &TrustMaterial,
    now: DateTime<Utc>,
    policy: &ValidationPolicy,
) -> Result<Vec<X509>, CertError> {
    validate_partner_certificate(cert, now, policy)?;
    let chain = trust
        .verify(cert, &[], Some(now))
        .map_err(|e| CertError::ChainNotFound { detail: e.reason })?;
    check_organisation(cert, organisation)?;
    Ok(chain)
}

/// RSA (and RSA-PSS) ≥ `min_rsa_bits`, EC ≥ `min_ec_bits`, Ed25519/Ed448 accepted (fixed,
/// strong sizes); any other key type (DSA, ...) is refused under the same reason because its
/// strength is not assessed.
fn check_key(cert: &X509Ref, policy: &ValidationPolicy) -> Result<(), CertError> {
    let key = cert.public_key().map_err(|_| CertError::Unparsable {
        detail: "its public key cannot be read".into(),
    })?;
    let bits = key.bits();
    let (ok, kind) = match key.id() {
        Id::RSA => (bits >= policy.min_rsa_bits, "RSA"),
        Id::RSA_PSS => (bits >= policy.min_rsa_bits, "RSA-PSS"),
        Id::EC => (bits >= policy.min_ec_bits, "EC"),
        Id::ED25519 | Id::ED448 => (true, "EdDSA"),
        Id::DSA => (false, "DSA"),
        _ => (false, "unsupported key type"),
    };
    if ok {
        Ok(())
    } else {
        Err(CertError::WeakKey {
            key: format!("{kind} {bits} bits"),
        })
    }
}

/// SHA-256/384/512 with RSA (PKCS#1 v1.5), ECDSA, or RSASSA-PSS whose hash parameter is
/// one of those (the PSS default hash is SHA-1, so absent parameters are refused).
fn check_signature_algorithm(cert: &X509Ref) -> Result<(), CertError> {
    let object = cert.signature_algorithm().object();
    let accepted = match object.nid() {
        Nid::SHA256WITHRSAENCRYPTION
        | Nid::SHA384WITHRSAENCRYPTION
        | Nid::SHA512WITHRSAENCRYPTION
        | Nid::ECDSA_WITH_SHA256
        | Nid::ECDSA_WITH_SHA384
        | Nid::ECDSA_WITH_SHA512 => true,
        Nid::RSASSAPSS => cert.to_der().is_ok_and(|d| pss_hash_accepted(&d)),
        _ => false,
    };
    if accepted {
        return Ok(());
    }
    let algorithm = match object.nid().long_name() {
        Ok(name) if object.nid() != Nid::UNDEF => name.to_owned(),
        _ => object.to_string(),
    };
    Err(CertError::UnsupportedSignatureAlgorithm { algorithm })
}

/// Reads `Certificate.signatureAlgorithm.parameters.hashAlgorithm` (RFC 4055
/// RSASSA-PSS-params, `[0]` EXPLICIT, DEFAULT sha1) and accepts SHA-256/384/512.
fn pss_hash_accepted(cert_der: &[u8]) -> bool {
    fn inner(cert_der: &[u8]) -> Option<bool> {
        let cert = der::expect(cert_der, der::SEQUENCE)?;
        let parts = der::children(cert.content)?;
        let algorithm = parts.get(1).filter(|p| p.tag == der::SEQUENCE)?;
        let fields = der::children(algorithm.content)?;
        let params = fields.get(1).filter(|p| p.tag == der::SEQUENCE)?;
        let hash = der::children(params.content)?
            .into_iter()
            .find(|p| p.tag == der::CONTEXT_0)?;
        let hash_algorithm = der::expect(hash.content, der::SEQUENCE)?;
        let oid = der::children(hash_algorithm.content)?.into_iter().next()?;
        Some(oid.tag == der::OID && PSS_ACCEPTED_HASHES.contains(&oid.content))
    }
    inner(cert_der).unwrap_or(false)
}

/// KER-PCM-008: the subject has exactly one O and it equals `expected` exactly
/// (case-sensitive, untrimmed, as MOSIP). A missing O, several O values (ambiguous), or any
/// difference is a mismatch.
pub fn check_organisation(cert: &X509Ref, expected: &str) -> Result<(), CertError> {
    match organisations(cert).as_slice() {
        [only] if only == expected => Ok(()),
        _ => Err(CertError::OrganisationMismatch),
    }
}
