//! Schema of the partner registry's own database: users (credentials and roles), partners,
//! the partner-type seed list, the token signing keys (for rotation), the event outbox of
//! `WatchPartnerEvents`, and the audit trail.

pub use sea_orm_migration::prelude::*;

mod m20261130_000001_initial;
mod m20261202_000002_trust_sync;
mod m20261207_000003_status_index;
mod m20261209_000004_token_signing_keys;
mod m20261210_000005_event_outbox;

/// Applies the registry's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261130_000001_initial::Migration),
            Box::new(m20261202_000002_trust_sync::Migration),
            Box::new(m20261207_000003_status_index::Migration),
            Box::new(m20261209_000004_token_signing_keys::Migration),
            Box::new(m20261210_000005_event_outbox::Migration),
        ]
    }
}
