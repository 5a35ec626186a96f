//! Persistence of the certificate store behind a repository trait. Every write that changes
//! what is trusted also moves the trust-store version in the same transaction, so every
//! replica's in-memory trust store notices it, and stamps the changed certificate row with
//! that version (or, for changes a row cannot express, moves the structural version), so a
//! replica can catch up by reading only what moved.

pub mod entities;
mod feed;
mod sql;

use async_trait::async_trait;

pub use sql::SqlCertificateRepository;

use chrono::{DateTime, Utc};

use crate::domain::{
    AuditEvent, CaCertificate, CaFilter, CertificateKind, ExpiringCertificate, ExpiringFilter,
    ExpiryNotice, PartnerCertificate, PlatformKeyRecord, RecordedTrustEvent, Revocation,
    TrustChanges, TrustData,
};
use crate::error::StoreError;

/// One page of CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPage {
    /// CA certificates of this page, in certificate-id order.
    pub ca_certificates: Vec<CaCertificate>,
    /// Whether more match after the last one, i.e. a next page token is due.
    pub has_more: bool,
    /// CA certificates matching the filter across all pages.
    pub total_size: u64,
}

/// Revocations, the trust feed's outbox and expiry notices. Every write here that changes
/// what is trusted, or is announced on the feed, moves the trust-store version and writes
/// its event in one transaction.
#[async_trait]
pub trait TrustFeedRepository: Send + Sync {
    /// Records a revocation with its audit row and feed event; `Revoked` when the
    /// certificate was revoked before. Returns the trust-store version it moved to.
    async fn revoke(&self, revocation: &Revocation, audit: AuditEvent) -> Result<i64, StoreError>;

    /// Every revoked partner/FTM certificate of a domain with its platform-signed copy (PEM),
    /// oldest revocation first (what a CRL lists).
    async fn revoked_copies(
        &self,
        partner_domain: &str,
    ) -> Result<Vec<(Revocation, String)>, StoreError>;

    /// Up to `limit` feed events after `version`, in version order.
    async fn trust_events_after(
        &self,
        version: i64,
        limit: u64,
    ) -> Result<Vec<RecordedTrustEvent>, StoreError>;

    /// The oldest version still kept in the outbox, if any.
    async fn oldest_trust_event(&self) -> Result<Option<i64>, StoreError>;

    /// Deletes feed events written before `before`; returns how many.
    async fn prune_trust_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A page of certificates (CA and partner/FTM) expiring in the filter's window, soonest
    /// first, after `cursor` (the last page's `(not_after, certificate_id)`), with how many
    /// match in all.
    async fn expiring_certificates(
        &self,
        filter: &ExpiringFilter,
        cursor: Option<&(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<(Vec<ExpiringCertificate>, u64), StoreError>;

    /// Records that `notice` was announced and writes its feed event, unless it was
    /// announced before; returns whether it was new.
    async fn record_expiry_notice(&self, notice: &ExpiryNotice) -> Result<bool, StoreError>;

    /// How many certificates expire in `(after, until]`, per domain and kind.
    async fn expiring_counts(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, CertificateKind, u64)>, StoreError>;
}

/// Storage operations of the certificate store.
#[async_trait]
pub trait CertificateRepository: TrustFeedRepository + Send + Sync {
    /// Whether a CA with this identity (SHA-256 of its `tbsCertificate`) is stored for the
    /// domain.
    async fn ca_exists(&self, partner_domain: &str, identity: &str) -> Result<bool, StoreError>;

    /// Stores accepted CA certificates and their audit rows in one transaction;
    /// `DuplicateCa` when a concurrent upload stored one of them first.
    async fn insert_ca_certificates(
        &self,
        certificates: &[CaCertificate],
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError>;

    /// The CA certificate with this id, if stored.
    async fn find_ca(&self, certificate_id: &str) -> Result<Option<CaCertificate>, StoreError>;

    /// The CA certificate of `partner_domain` with this identity.
    async fn find_ca_by_identity(
        &self,
        partner_domain: &str,
        identity: &str,
    ) -> Result<Option<CaCertificate>, StoreError>;

    /// CA certificates ordered by id, after `after`.
    async fn list_ca(
        &self,
        filter: &CaFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<CaPage, StoreError>;

    /// The partner/FTM certificate with this id, if stored.
    async fn find_partner_certificate(
        &self,
        certificate_id: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError>;

    /// The partner/FTM certificate of `partner_domain` with this identity, whoever holds it.
    async fn find_partner_certificate_by_identity(
        &self,
        partner_domain: &str,
        identity: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError>;

    /// Stores a partner/FTM certificate (with its audit row) and returns it; when the domain
    /// already holds a certificate of the same identity (a concurrent upload won), returns
    /// that one instead, so the caller can tell a repeat from another owner's claim.
    async fn insert_partner_certificate(
        &self,
        certificate: &PartnerCertificate,
        audit: AuditEvent,
    ) -> Result<PartnerCertificate, StoreError>;

    /// Sets the trust flag and, for a chip certificate stored before owners were linked to
    /// partners, records `link_partner` as its partner; `None` when the id is unknown,
    /// `PartnerMismatch` when the certificate belongs to another partner.
    async fn set_trusted(
        &self,
        certificate_id: &str,
        trusted: bool,
        link_partner: Option<&str>,
        actor: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError>;

    /// Records that `partner_id` is deactivated (or not any more); returns whether that
    /// changed anything. Audited, and moves the trust-store version when it changes.
    async fn set_partner_deactivated(
        &self,
        partner_id: &str,
        deactivated: bool,
        actor: &str,
    ) -> Result<bool, StoreError>;

    /// Whether `partner_id` is recorded as deactivated.
    async fn is_partner_deactivated(&self, partner_id: &str) -> Result<bool, StoreError>;

    /// The current trust-store version (cheap: one row).
    async fn trust_version(&self) -> Result<i64, StoreError>;

    /// Everything the in-memory trust store is built from, with the version it reflects.
    async fn trust_data(&self) -> Result<TrustData, StoreError>;

    /// What changed after `since` (a snapshot's version): the versions, and unless a
    /// structural change came after `since`, the stored certificates whose trust facts were
    /// written in `(since, version]`. Cheap when little changed (an indexed range read).
    async fn trust_changes(&self, since: i64) -> Result<TrustChanges, StoreError>;

    /// The audit rows written about `entity_id`, for tests to check what was recorded.
    #[cfg(feature = "testing")]
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, StoreError>;

    /// Every platform signing key, oldest first.
    async fn platform_keys(&self) -> Result<Vec<PlatformKeyRecord>, StoreError>;

    /// Records the configured key as the active one when no key is recorded yet (the first
    /// start of a store, or of its first release with rotation); otherwise does nothing.
    /// Several replicas may do this at once.
    async fn adopt_initial_platform_key(&self, key: &PlatformKeyRecord) -> Result<(), StoreError>;

    /// Adds a key (state `NEXT`) with its audit row; `DuplicateCa` when it was added before.
    async fn insert_platform_key(
        &self,
        key: &PlatformKeyRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Makes `key_id` the active key at `now`, the active one `PREVIOUS`, in one transaction
    /// with `audit` (written only when something changed); `CertificateNotFound` for an
    /// unknown key. Returns the key.
    async fn activate_platform_key(
        &self,
        key_id: &str,
        now: chrono::DateTime<chrono::Utc>,
        audit: AuditEvent,
    ) -> Result<PlatformKeyRecord, StoreError>;
}
