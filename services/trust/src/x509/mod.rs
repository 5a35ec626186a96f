//! Pure X.509 logic of the certificate store: parsing uploads, extracting facts, validating
//! certificates in the contract's order, building and verifying chains, re-signing partner
//! certificates with the platform key, and encoding PKCS#7 bundles.
//!
//! Everything here is synchronous, CPU-bound and database-free, so the service can call it
//! from `tokio::task::spawn_blocking` and unit-test it without any storage. Every rule has
//! its own [`CertError`] variant whose [`CertError::reason`] is the contract's `ErrorInfo`
//! reason, so that a certificate with exactly one fault always gets that fault's reason.
//!
//! Typical CA upload: [`parse_ca_bundle`] → [`order_bundle`] → per certificate: duplicate
//! check (caller) → [`validate_ca_certificate`] → for non-roots [`chain_to_domain_root`].
//! Typical partner upload: [`parse_partner_certificate`] → [`validate_partner_upload`]
//! (which runs [`validate_partner_certificate`], the chain and [`check_organisation`]) →
//! [`PlatformSigner::resign`].

mod chain;
mod crl;
mod der;
mod error;
mod facts;
mod parse;
mod pkcs7;
mod sign;
mod validate;

pub use chain::{
    ChainError, ChainOptions, TrustMaterial, chain_to_domain_root, is_issued_by_root_or_chain,
    order_bundle,
};
pub use crl::{CrlValidity, RevokedEntry};
pub use error::{CertError, ErrorClass};
pub use facts::{CertificateFacts, KeyKind, identity_of, is_ca, is_self_signed, not_after_of};
pub use parse::{
    MAX_CHAIN_CERTIFICATES, chain_key, parse_ca_bundle, parse_chain, parse_partner_certificate,
};
pub use pkcs7::{certs_to_p7b_base64url, certs_to_p7b_der, p7b_der_to_certs};
pub use sign::{GeneratedPlatformPki, PlatformSigner};
pub use validate::{
    ValidationPolicy, check_organisation, validate_ca_certificate, validate_partner_certificate,
    validate_partner_upload,
};

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509Ref;

/// Empties this thread's OpenSSL error queue. OpenSSL records why a call failed in a
/// per-thread queue; calls that answer "no" without failing (a signature that does not
/// verify, a path that does not validate) leave their entries behind, and the next
/// unrelated error read on the same (pooled) thread would carry them. Every function here
/// that can leave entries calls this before it returns.
pub fn clear_error_queue() {
    let _ = openssl::error::ErrorStack::get();
}

/// Runs `work` with an empty OpenSSL error queue before and after: the wrapper for every
/// piece of certificate work the service hands to a pooled thread.
pub fn isolated<T>(work: impl FnOnce() -> T) -> T {
    clear_error_queue();
    let result = work();
    clear_error_queue();
    result
}

/// The certificate as PEM text (`-----BEGIN CERTIFICATE-----`), the form the API returns
/// and the database stores.
pub fn pem_string(cert: &X509Ref) -> Result<String, CertError> {
    String::from_utf8(cert.to_pem()?)
        .map_err(|e| CertError::Internal(format!("PEM output is not UTF-8: {e}")))
}

/// Converts an ASN.1 time to UTC; OpenSSL exposes no direct accessor, so the difference to
/// the Unix epoch is taken.
pub(crate) fn asn1_to_utc(time: &Asn1TimeRef) -> Result<DateTime<Utc>, CertError> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(time)?;
    let seconds = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| CertError::Internal(format!("certificate time out of range: {seconds}")))
}

/// Converts a UTC instant to an ASN.1 time (second precision).
pub(crate) fn utc_to_asn1(time: DateTime<Utc>) -> Result<Asn1Time, CertError> {
    Ok(Asn1Time::from_unix(time.timestamp())?)
}

#[cfg(test)]
mod tests;
