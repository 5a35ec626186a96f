//! What the trust decision is made from: the data a trust store (the certificate store's,
//! or a relying service's mirror of it) holds, and the changes that move it.

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
    /// Revoked CA and partner/FTM certificates.
    pub revoked: Vec<RevokedCertificate>,
}

/// The trust-relevant facts of one stored partner/FTM certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The policy a configuration name (or the feed) names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "registered" => Some(TrustPolicy::Registered),
            "chain" => Some(TrustPolicy::Chain),
            _ => None,
        }
    }

    /// Configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustPolicy::Registered => "registered",
            TrustPolicy::Chain => "chain",
        }
    }
}

/// A revoked certificate of a domain, by identity. Revocation is for good: a revoked
/// stored certificate stays untrusted whatever its flag or its partner's state, and a
/// revoked CA certificate issues nothing that verifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RevokedCertificate {
    /// Upper-case domain it was revoked in.
    pub partner_domain: String,
    /// SHA-256 of its `tbsCertificate`.
    pub identity: String,
}
