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

/// What the in-memory trust store is built from, read in one go with its version.
#[derive(Debug, Clone, Default)]
pub struct TrustData {
    /// The trust-store version this data reflects, compared by the poller to spot changes.
    pub version: i64,
    /// (domain, PEM) of every CA certificate.
    pub ca_certificates: Vec<(String, String)>,
    /// Every partner/FTM certificate the store holds.
    pub stored_certificates: Vec<StoredTrustEntry>,
    /// Partners whose certificates (and their FTMs' chip certificates) are untrusted.
    pub deactivated_partners: Vec<String>,
}

/// The trust-relevant facts of one stored partner/FTM certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrustEntry {
    /// Upper-case domain the certificate is stored in.
    pub partner_domain: String,
    /// SHA-256 of its `tbsCertificate`, by which verification recognises it.
    pub identity: String,
    /// The partner whose deactivation untrusts it.
    pub partner_id: String,
    /// The flag set by the owning service.
    pub trusted: bool,
    /// PEM, kept only for marked-trusted CA certificates (usable as issuers in chains).
    pub issuer_pem: Option<String>,
}

/// What moved in the trust store after a replica's snapshot version: enough to bring the
/// snapshot up to date without reading every stored certificate again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustChanges {
    /// The trust-store version now.
    pub version: i64,
    /// The last version at which something changed that [`Self::changed`] cannot express
    /// (CA certificates, a CA-capable stored certificate, partner deactivation).
    pub structural_version: i64,
    /// Stored certificates whose trust facts changed after the snapshot's version, up to
    /// [`Self::version`]; empty when `structural_version` is newer than the snapshot.
    pub changed: Vec<StoredTrustChange>,
}

/// The trust facts of one stored partner/FTM certificate as of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrustChange {
    /// Upper-case domain the certificate is stored in.
    pub partner_domain: String,
    /// SHA-256 of its `tbsCertificate`.
    pub identity: String,
    /// The partner whose deactivation untrusts it.
    pub partner_id: String,
    /// The flag set by the owning service.
    pub trusted: bool,
    /// Whether it may issue certificates (a change to one alters the issuer pool).
    pub is_ca: bool,
    /// The version at which these facts were written.
    pub trust_version: i64,
}

/// How a domain decides whether a certificate the store has not registered is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustPolicy {
    /// Trusted only if a trusted stored partner/FTM certificate is on the validated path
    /// (the leaf itself, or an issuer such as an approved chip certificate): the platform's
    /// approvals gate verification. The default.
    #[default]
    Registered,
    /// MOSIP's rule: a certificate the store has never seen is judged by its chain alone.
    Chain,
}

impl TrustPolicy {
    /// Configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustPolicy::Registered => "registered",
            TrustPolicy::Chain => "chain",
        }
    }
}

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
