//! Persistence of the registry behind a repository trait; the service sees domain types only.

pub mod entities;
mod sql;

use async_trait::async_trait;

pub use sql::SqlPartnerRepository;

use crate::domain::{AuditEvent, Partner, PartnerFilter, PartnerStatus};
use crate::error::RegistryError;

/// Credentials of a user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<String>,
}

/// One page of partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerPage {
    pub partners: Vec<Partner>,
    /// Whether more partners follow the last one returned.
    pub has_more: bool,
    pub total_size: u64,
}

/// Storage operations of the registry. Every state change writes its audit row in the same
/// transaction as the change itself.
#[async_trait]
pub trait PartnerRepository: Send + Sync {
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

    async fn find_partner(&self, partner_id: &str) -> Result<Option<Partner>, RegistryError>;

    /// Partners ordered by id, starting after `after`.
    async fn list_partners(
        &self,
        filter: &PartnerFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<PartnerPage, RegistryError>;

    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, RegistryError>;

    /// Creates a user that is not a partner (the bootstrap admin) unless it exists; returns
    /// whether it was created.
    async fn ensure_user(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError>;

    /// Records an accepted certificate: stores its id and makes an IN_PROGRESS partner ACTIVE.
    async fn attach_certificate(
        &self,
        partner_id: &str,
        certificate_id: &str,
        audit: AuditEvent,
    ) -> Result<Partner, RegistryError>;

    /// Sets the partner's status.
    async fn set_status(
        &self,
        partner_id: &str,
        status: PartnerStatus,
        audit: AuditEvent,
    ) -> Result<Partner, RegistryError>;

    /// Audit rows of one entity, oldest first.
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, RegistryError>;
}
