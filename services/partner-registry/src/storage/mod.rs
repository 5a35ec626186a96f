//! Persistence of the registry behind a repository trait; the service sees domain types only.

pub mod entities;
mod events;
mod sql;
mod token_keys;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pmp_common::lease::LeaseStore;

pub use sql::SqlPartnerRepository;
pub use token_keys::{SqlTokenKeyRepository, TokenKeyRecord, TokenKeyRepository};

use crate::domain::{AuditEvent, Partner, PartnerFilter, PartnerStatus};
use crate::error::RegistryError;

/// Credentials of a user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name; a partner's equals its partner id.
    pub username: String,
    /// argon2 PHC string of the password.
    pub password_hash: String,
    /// Upper-case roles carried into the user's access tokens, e.g. `FTM_PROVIDER`.
    pub roles: Vec<String>,
}

/// A partner to bulk-load with its user account (see [`PartnerRepository::import`]).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPartner {
    /// The partner record, stored as given.
    pub partner: Partner,
    /// argon2 PHC string of the account's password (any string when nobody logs in).
    pub password_hash: String,
    /// Upper-case roles of the account, as [`PartnerRepository::create_partner`] takes them.
    pub roles: Vec<String>,
}

/// One page of partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerPage {
    /// Partners of this page, in partner-id order.
    pub partners: Vec<Partner>,
    /// Whether more partners follow the last one returned.
    pub has_more: bool,
    /// Partners matching the filter across all pages.
    pub total_size: u64,
}

/// Storage operations of the registry. Every state change writes its audit row in the same
/// transaction as the change itself.
#[async_trait]
pub trait PartnerRepository: LeaseStore<Error = RegistryError> {
    /// The canonical code of an active partner type matching `requested` case-insensitively.
    async fn canonical_partner_type(
        &self,
        requested: &str,
    ) -> Result<Option<String>, RegistryError>;

    /// Inserts the user and the partner; `DuplicatePartnerId` / `DuplicateEmail` when the
    /// database refuses them (also when a concurrent registration won).
    async fn create_partner(
        &self,
        partner: &Partner,
        password_hash: &str,
        roles: &[String],
        audit: AuditEvent,
    ) -> Result<(), RegistryError>;

    #[cfg(feature = "testing")]
    /// Inserts many partners and their user accounts in multi-row statements, in one
    /// transaction and without audit rows: bulk loading of records migrated from an existing
    /// MOSIP installation, and load tests. A taken or repeated partner id refuses the whole
    /// import with `DuplicatePartnerId`, a taken or repeated e-mail with `DuplicateEmail`.
    async fn import(&self, partners: &[ImportedPartner]) -> Result<(), RegistryError>;

    /// The partner with this id, if registered.
    async fn find_partner(&self, partner_id: &str) -> Result<Option<Partner>, RegistryError>;

    /// Partners ordered by id, starting after `after`.
    async fn list_partners(
        &self,
        filter: &PartnerFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<PartnerPage, RegistryError>;

    /// The user account of this login name, for `Login` and the admin bootstrap.
    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, RegistryError>;

    /// Creates a user that is not a partner (the bootstrap admin) unless it exists; returns
    /// whether it was created.
    async fn ensure_user(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError>;

    /// Sets a user's password hash and roles (the bootstrap admin's, from configuration);
    /// returns whether the user exists.
    async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError>;

    /// Records an accepted certificate: stores its id and makes an IN_PROGRESS partner ACTIVE
    /// — only while the step holds the partner's lease `token` (`Interrupted` otherwise).
    /// Recording the certificate already recorded changes nothing and writes no audit row.
    async fn attach_certificate(
        &self,
        partner_id: &str,
        certificate_id: &str,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError>;

    /// Sets the partner's status while the step holds the lease `token`; the same status
    /// again changes nothing and writes no audit row.
    async fn set_status(
        &self,
        partner_id: &str,
        status: PartnerStatus,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError>;

    /// Takes the partner's lease for a step that spans the certificate store, unless another
    /// step holds a lease that has not expired; returns whether it was taken.
    async fn acquire_lease(
        &self,
        partner_id: &str,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryError>;

    #[cfg(feature = "testing")]
    /// Audit rows of one entity, oldest first.
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, RegistryError>;
}
