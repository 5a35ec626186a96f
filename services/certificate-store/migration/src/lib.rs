//! Schema of the certificate store's own database: the CA trust store, partner and FTM chip
//! certificates with their identity, owner and trust flag, the deactivated partners, the
//! trust-store version that replicas poll (with the version at which each certificate's
//! trust last changed, for incremental refresh), the platform signing keys (for rotation),
//! revocations, the trust change feed's outbox, expiry notices, and the audit trail.

pub use sea_orm_migration::prelude::*;

pub mod identity;
mod m20261130_000001_initial;
mod m20261202_000002_trust_model;
mod m20261208_000003_trust_change_versions;
mod m20261209_000004_platform_signing_keys;
mod m20261210_000005_revocations_and_trust_feed;

/// Applies the certificate store's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261130_000001_initial::Migration),
            Box::new(m20261202_000002_trust_model::Migration),
            Box::new(m20261208_000003_trust_change_versions::Migration),
            Box::new(m20261209_000004_platform_signing_keys::Migration),
            Box::new(m20261210_000005_revocations_and_trust_feed::Migration),
        ]
    }
}
