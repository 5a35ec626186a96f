//! Domain types of the certificate store; storage and the trust store speak only these.

use chrono::{DateTime, Utc};

pub use pmp_common::audit::AuditEvent;

/// Root (self-signed) or intermediate CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaType {
    Root,
    Intermediate,
}

impl CaType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaType::Root => "ROOT",
            CaType::Intermediate => "INTERMEDIATE",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ROOT" => Some(CaType::Root),
            "INTERMEDIATE" => Some(CaType::Intermediate),
            _ => None,
        }
    }
}

/// What a partner-side certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// A partner's own certificate: trusted once accepted.
    Partner,
    /// An FTM chip certificate: trusted only while its FTM is approved.
    FtmChip,
}

impl CertificateKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Partner => "PARTNER",
            CertificateKind::FtmChip => "FTM_CHIP",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "PARTNER" => Some(CertificateKind::Partner),
            "FTM_CHIP" => Some(CertificateKind::FtmChip),
            _ => None,
        }
    }

    /// Whether certificates of this kind are trusted as soon as they are accepted.
    pub fn trusted_on_acceptance(self) -> bool {
        matches!(self, CertificateKind::Partner)
    }
}

/// A CA certificate of the trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    pub certificate_id: String,
    /// Upper-case domain, e.g. `FTM`.
    pub partner_domain: String,
    pub ca_type: CaType,
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    pub thumbprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub upload_time: DateTime<Utc>,
    pub certificate_pem: String,
    /// The issuing CA's id; a root names itself.
    pub issuer_certificate_id: String,
}

/// A partner or FTM chip certificate with its platform-signed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCertificate {
    pub certificate_id: String,
    /// Partner id or FTM id.
    pub owner_id: String,
    pub partner_domain: String,
    pub kind: CertificateKind,
    pub organization_name: String,
    pub thumbprint: String,
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// basicConstraints CA:TRUE: the certificate may appear as an issuer in chains.
    pub is_ca: bool,
    pub ca_signed_pem: String,
    pub platform_signed_pem: String,
    /// The CA path at upload time, leaf first.
    pub chain_pem: Vec<String>,
    pub trusted: bool,
    pub upload_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// Filters of `ListCaCertificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaFilter {
    pub partner_domain: Option<String>,
    pub ca_type: Option<CaType>,
}

/// What the in-memory trust store is built from, read in one go with its version.
#[derive(Debug, Clone, Default)]
pub struct TrustData {
    pub version: i64,
    /// (domain, PEM) of every CA certificate.
    pub ca_certificates: Vec<(String, String)>,
    /// Every partner/FTM certificate the store holds.
    pub partner_certificates: Vec<PartnerTrustEntry>,
}

/// The trust-relevant facts of one stored partner/FTM certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTrustEntry {
    pub partner_domain: String,
    pub thumbprint: String,
    pub trusted: bool,
    /// PEM, kept only for trusted CA certificates (usable as issuers in chains).
    pub issuer_pem: Option<String>,
}
