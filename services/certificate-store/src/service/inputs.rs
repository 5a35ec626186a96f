//! The requests of the use cases, decoded from the wire (see `crate::convert`): required
//! fields present, enums known. Everything that needs the store's configuration or data is
//! checked by the use cases.

use super::Access;
use crate::domain::{CaType, CertificateKind, Owner, RevocationReason};
use crate::error::StoreError;

/// A request of a use case, with who may make it.
pub(crate) trait Input {
    /// Checked before the request is decoded and again by its use case.
    const ACCESS: Access;
}

/// `UploadCaCertificate`: one CA certificate or a bundle of them for one domain.
#[derive(Debug, Clone)]
pub(crate) struct UploadCa {
    /// As sent: PEM, PKCS#7 or base64 DER (see [`crate::x509::parse_ca_bundle`]).
    pub(crate) certificate_data: String,
    /// As sent; canonicalised against the allowed domains by the use case.
    pub(crate) partner_domain: String,
}

/// `ListCaCertificates`.
#[derive(Debug)]
pub(crate) struct ListCa {
    pub(crate) page_size: u64,
    /// Blank for every domain.
    pub(crate) partner_domain: String,
    /// `None` for both types. Kept decoded-or-refused, because the contract reports an
    /// unknown domain before an unknown type.
    pub(crate) ca_type: Result<Option<CaType>, StoreError>,
    pub(crate) page_token: String,
}

/// `GetCaCertificate` and `GetCaTrustPath`.
#[derive(Debug, Clone)]
pub(crate) struct CaLookup {
    pub(crate) certificate_id: String,
}

/// `UploadPartnerCertificate`.
#[derive(Debug, Clone)]
pub(crate) struct UploadPartner {
    pub(crate) owner: Owner,
    /// Must match the certificate's organisation (KER-PCM-008).
    pub(crate) organization_name: String,
    pub(crate) certificate_data: String,
    pub(crate) partner_domain: String,
}

/// `GetPartnerCertificate`.
#[derive(Debug, Clone)]
pub(crate) struct PartnerLookup {
    pub(crate) certificate_id: String,
}

/// `SetCertificateTrusted`.
#[derive(Debug, Clone)]
pub(crate) struct SetTrusted {
    pub(crate) certificate_id: String,
    pub(crate) trusted: bool,
    /// The partner to link a legacy chip certificate to, when given.
    pub(crate) link_partner: Option<String>,
}

/// `SetPartnerDeactivated`, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartnerDeactivation {
    /// Trimmed.
    pub(crate) partner_id: String,
    pub(crate) deactivated: bool,
}

/// `VerifyCertificateTrust`.
#[derive(Debug, Clone)]
pub(crate) struct VerifyTrust {
    pub(crate) certificate_data: String,
    pub(crate) partner_domain: String,
}

/// `RevokeCertificate`.
#[derive(Debug, Clone)]
pub(crate) struct Revoke {
    /// A CA certificate id or a partner/FTM certificate id.
    pub(crate) certificate_id: String,
    pub(crate) reason: RevocationReason,
    /// At most 1024 characters.
    pub(crate) comment: String,
}

/// `WatchTrustChanges`.
#[derive(Debug, Clone)]
pub(crate) struct WatchTrust {
    /// As sent; canonicalised by the use case. Empty for every domain.
    pub(crate) partner_domains: Vec<String>,
    /// The last version the consumer applied; 0 for a snapshot first.
    pub(crate) from_version: i64,
}

/// `GetCrl`.
#[derive(Debug, Clone)]
pub(crate) struct CrlRequest {
    pub(crate) partner_domain: String,
}

/// `ListExpiringCertificates`.
#[derive(Debug, Clone)]
pub(crate) struct ListExpiring {
    /// Positive, at most ten years.
    pub(crate) within: chrono::Duration,
    /// Blank for every domain.
    pub(crate) partner_domain: String,
    pub(crate) kind: Option<CertificateKind>,
    pub(crate) page_size: u64,
    pub(crate) page_token: String,
}

impl Input for Revoke {
    const ACCESS: Access = Access::Admin;
}

impl Input for WatchTrust {
    const ACCESS: Access = Access::ServiceOrAdmin;
}

impl Input for CrlRequest {
    const ACCESS: Access = Access::Any;
}

impl Input for ListExpiring {
    const ACCESS: Access = Access::Admin;
}

impl Input for UploadCa {
    const ACCESS: Access = Access::Admin;
}

impl Input for ListCa {
    const ACCESS: Access = Access::Admin;
}

impl Input for CaLookup {
    const ACCESS: Access = Access::Admin;
}

impl Input for UploadPartner {
    const ACCESS: Access = Access::Service;
}

impl Input for PartnerLookup {
    const ACCESS: Access = Access::ServiceOrAdmin;
}

impl Input for SetTrusted {
    const ACCESS: Access = Access::Service;
}

impl Input for PartnerDeactivation {
    const ACCESS: Access = Access::Service;
}

impl Input for VerifyTrust {
    const ACCESS: Access = Access::Any;
}
