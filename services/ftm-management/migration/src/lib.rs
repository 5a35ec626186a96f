//! Schema of the ftm-management service's own database: the FTMs (chips) with their review
//! state and cross-service synchronisation marker, the event outbox of `WatchFtmEvents`, and
//! the audit trail.

pub use sea_orm_migration::prelude::*;

mod m20261201_000001_initial;
mod m20261202_000002_resync_chip_trust;
mod m20261207_000003_status_filter_indexes;
mod m20261210_000004_event_outbox;

/// Applies the service's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_initial::Migration),
            Box::new(m20261202_000002_resync_chip_trust::Migration),
            Box::new(m20261207_000003_status_filter_indexes::Migration),
            Box::new(m20261210_000004_event_outbox::Migration),
        ]
    }
}
