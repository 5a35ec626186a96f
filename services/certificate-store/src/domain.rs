//! Domain types of the certificate store; storage and the trust store speak only these.

use chrono::{DateTime, Utc};

pub use pmp_common::audit::AuditEvent;

/// Root (self-signed) or intermediate CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaType {
    /// Self-signed: a trust anchor of its domain.
    Root,
    /// Issued by a CA of the domain (or of the same upload): part of the issuer pool.
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

/// Who holds a partner-side certificate. Owners are typed so that a partner and an FTM can
/// never be confused, whatever their ids look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerType {
    /// A partner's own certificate (the owner id is the partner id).
    Partner,
    /// An FTM chip certificate (the owner id is the FTM id).
    Ftm,
}

impl OwnerType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Partner => "PARTNER",
            OwnerType::Ftm => "FTM",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "PARTNER" => Some(OwnerType::Partner),
            "FTM" => Some(OwnerType::Ftm),
            _ => None,
        }
    }
}

/// The typed owner of a stored partner-side certificate and the partner it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Whether the holder is a partner or an FTM, so that equal ids never collide.
    pub owner_type: OwnerType,
    /// Partner id or FTM id, by `owner_type`.
    pub owner_id: String,
    /// The partner whose deactivation untrusts the certificate: the owner itself for a
    /// partner certificate, the FTM's provider for a chip certificate. Empty only for chip
    /// certificates stored before owners were linked to partners, until ftm-management
    /// links them.
    pub partner_id: String,
}

impl Owner {
    /// A partner's own certificate.
    pub fn partner(partner_id: &str) -> Self {
        Owner {
            owner_type: OwnerType::Partner,
            owner_id: partner_id.to_owned(),
            partner_id: partner_id.to_owned(),
        }
    }

    /// The chip certificate of FTM `ftm_id`, provided by partner `partner_id`.
    pub fn ftm(ftm_id: &str, partner_id: &str) -> Self {
        Owner {
            owner_type: OwnerType::Ftm,
            owner_id: ftm_id.to_owned(),
            partner_id: partner_id.to_owned(),
        }
    }

    /// Whether `other` is the same owner (type and id; the partner link may be filled in
    /// later for legacy chip certificates).
    pub fn same_holder(&self, other: &Owner) -> bool {
        self.owner_type == other.owner_type && self.owner_id == other.owner_id
    }
}

/// A CA certificate of the trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    /// Store-assigned id (UUIDv7), the key of lookups and trust paths.
    pub certificate_id: String,
    /// Upper-case domain, e.g. `FTM`.
    pub partner_domain: String,
    /// Anchor (root) or issuer pool member (intermediate) of the domain's trust store.
    pub ca_type: CaType,
    /// Subject distinguished name, for display.
    pub subject: String,
    /// Issuer distinguished name, for display.
    pub issuer: String,
    /// Serial number as issued by the CA, for display.
    pub serial_number: String,
    /// SHA-256 of the DER, for display.
    pub thumbprint: String,
    /// SHA-256 of the `tbsCertificate`: duplicates are detected by it.
    pub identity: String,
    /// Start of the certificate's validity.
    pub not_before: DateTime<Utc>,
    /// End of the certificate's validity; chains through it fail afterwards.
    pub not_after: DateTime<Utc>,
    /// When the store accepted it.
    pub upload_time: DateTime<Utc>,
    /// The certificate as uploaded, PEM: what the trust store is built from.
    pub certificate_pem: String,
    /// The issuing CA's id; a root names itself.
    pub issuer_certificate_id: String,
}

/// A partner or FTM chip certificate with its platform-signed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCertificate {
    /// Store-assigned id (UUIDv7), which the owning service records and marks trusted by.
    pub certificate_id: String,
    /// The partner or FTM holding it, and the partner whose deactivation untrusts it.
    pub owner: Owner,
    /// Upper-case domain whose CAs it chains to, e.g. `FTM`.
    pub partner_domain: String,
    /// Organisation named at upload, which the certificate's subject `O` had to match
    /// (KER-PCM-008).
    pub organization_name: String,
    /// SHA-256 of the `tbsCertificate`: one owner per identity and domain.
    pub identity: String,
    /// SHA-256 of the DER, for display.
    pub thumbprint: String,
    /// Subject distinguished name, for display.
    pub subject: String,
    /// Issuer distinguished name, for display.
    pub issuer: String,
    /// Serial number as issued by the CA, for display.
    pub serial_number: String,
    /// Start of the certificate's validity.
    pub not_before: DateTime<Utc>,
    /// End of the certificate's validity; it stops verifying afterwards.
    pub not_after: DateTime<Utc>,
    /// basicConstraints CA:TRUE: the certificate may appear as an issuer in chains.
    pub is_ca: bool,
    /// The certificate as uploaded (signed by the domain's CA), PEM.
    pub ca_signed_pem: String,
    /// The copy re-signed by the platform signing certificate (MOSIP's "PMS"-signed
    /// certificate), PEM, returned with every upload and lookup.
    pub platform_signed_pem: String,
    /// The CA path at upload time, leaf first.
    pub chain_pem: Vec<String>,
    /// Marked trusted by the owning service (partner certificate recorded by the registry,
    /// chip certificate approved); trusted in effect only while its partner is not
    /// deactivated as well.
    pub trusted: bool,
    /// When the store accepted it.
    pub upload_time: DateTime<Utc>,
    /// When it was last changed (trust flag set, partner linked).
    pub update_time: DateTime<Utc>,
}

/// Filters of `ListCaCertificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaFilter {
    /// Only CAs of this upper-case domain; `None` for every domain.
    pub partner_domain: Option<String>,
    /// Only roots or only intermediates; `None` for both.
    pub ca_type: Option<CaType>,
}

pub use pmp_trust::model::{
    RevokedCertificate, StoredTrustChange, StoredTrustEntry, TrustChanges, TrustData, TrustPolicy,
};

pub use pmp_common::signing::{KeyLocation, KeyState as PlatformKeyState};

/// A platform signing certificate and where its key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformKeyRecord {
    /// Hex SHA-256 of the certificate's DER.
    pub key_id: String,
    /// The signing certificate, PEM.
    pub certificate_pem: String,
    /// Where its private key is.
    pub location: KeyLocation,
    /// Its state.
    pub state: PlatformKeyState,
    /// The certificate's `notAfter`.
    pub not_after: DateTime<Utc>,
    /// When it was added.
    pub added_at: DateTime<Utc>,
    /// When it last became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When another key replaced it.
    pub retired_at: Option<DateTime<Utc>>,
}

/// What kind of certificate a revocation, an expiry or a listing is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateKind {
    /// A CA certificate of a domain's trust store.
    Ca,
    /// A partner's own certificate.
    Partner,
    /// An FTM chip certificate.
    Ftm,
}

impl CertificateKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Ca => "CA",
            CertificateKind::Partner => "PARTNER",
            CertificateKind::Ftm => "FTM",
        }
    }

    /// The kind of a stored partner/FTM certificate held by `owner`.
    pub fn of_owner(owner: &Owner) -> Self {
        match owner.owner_type {
            OwnerType::Partner => CertificateKind::Partner,
            OwnerType::Ftm => CertificateKind::Ftm,
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            CertificateKind::Ca,
            CertificateKind::Partner,
            CertificateKind::Ftm,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// An RFC 5280 `CRLReason` that may revoke a certificate for good: every code but
/// certificateHold (6, which is temporary), 7 (unassigned) and removeFromCRL (8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct RevocationReason(u8);

impl RevocationReason {
    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for RevocationReason {
    type Error = String;

    fn try_from(code: u8) -> Result<Self, Self::Error> {
        match code {
            0..=5 | 9 | 10 => Ok(RevocationReason(code)),
            other => Err(format!(
                "revocation reason {other} is not offered: use an RFC 5280 reason other than certificateHold (6) and removeFromCRL (8)"
            )),
        }
    }
}

impl From<RevocationReason> for u8 {
    fn from(reason: RevocationReason) -> u8 {
        reason.0
    }
}

/// A revoked certificate and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    /// Upper-case domain it was revoked in.
    pub partner_domain: String,
    /// SHA-256 of its `tbsCertificate`.
    pub identity: String,
    /// The CA certificate id or the partner/FTM certificate id.
    pub certificate_id: String,
    /// What it is.
    pub kind: CertificateKind,
    /// Serial number of the certificate's platform-signed copy (hex, as stored), empty for a
    /// CA certificate.
    pub serial_number: String,
    /// Why, as RFC 5280 says.
    pub reason: RevocationReason,
    /// The admin's comment.
    pub comment: String,
    /// Who revoked it.
    pub revoked_by: String,
    /// When.
    pub revoked_at: DateTime<Utc>,
}

/// One change of the trust store, as written to the feed's outbox in the transaction that
/// made it. Each sets a fact (rather than describing a delta), so applying one twice, or on
/// data that already holds it, changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrustEvent {
    /// A CA certificate joined a domain's trust store.
    CaCertificateAdded {
        /// Upper-case domain.
        partner_domain: String,
        /// The certificate, PEM.
        certificate_pem: String,
    },
    /// A stored partner/FTM certificate's trust facts now.
    StoredCertificate(StoredTrustEntry),
    /// A partner's deactivation state now.
    Partner {
        /// The partner.
        partner_id: String,
        /// Whether it is deactivated.
        deactivated: bool,
    },
    /// A certificate was revoked.
    Revoked(Revocation),
    /// A certificate crossed an expiry threshold.
    Expiring(ExpiryNotice),
}

/// A certificate that crossed an expiry threshold, announced once per threshold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpiryNotice {
    /// Upper-case domain.
    pub partner_domain: String,
    /// The CA or partner/FTM certificate id.
    pub certificate_id: String,
    /// What it is.
    pub kind: CertificateKind,
    /// Its `notAfter`.
    pub expiry_time: DateTime<Utc>,
    /// The threshold crossed, in days.
    pub threshold_days: u32,
}

/// A trust feed event as stored: the version it moved the trust store to, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTrustEvent {
    /// The trust-store version of the change.
    pub version: i64,
    /// When it committed.
    pub time: DateTime<Utc>,
    /// What changed.
    pub event: TrustEvent,
}

/// A certificate that expires soon (`ListExpiringCertificates`, the expiry sweep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringCertificate {
    /// The CA or partner/FTM certificate id.
    pub certificate_id: String,
    /// What it is.
    pub kind: CertificateKind,
    /// Upper-case domain.
    pub partner_domain: String,
    /// The partner, for partner/FTM certificates; empty for CA certificates.
    pub partner_id: String,
    /// The partner or FTM id, for partner/FTM certificates; empty for CA certificates.
    pub owner_id: String,
    /// Subject DN.
    pub subject: String,
    /// Its `notAfter`.
    pub not_after: DateTime<Utc>,
}

/// Filters of `ListExpiringCertificates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringFilter {
    /// Only certificates expiring after this instant (now: expired ones are left out)...
    pub after: DateTime<Utc>,
    /// ...and at or before this one.
    pub until: DateTime<Utc>,
    /// Only this upper-case domain.
    pub partner_domain: Option<String>,
    /// Only this kind.
    pub kind: Option<CertificateKind>,
}
