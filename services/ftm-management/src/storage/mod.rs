//! Persistence of FTM management behind a repository trait; the service sees domain types
//! only, and tests can wrap the trait to inject failures.

pub mod entities;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use sql::SqlFtmRepository;

use pmp_common::lease::LeaseStore;

use crate::domain::{AuditEvent, Ftm, FtmChange, FtmPage, FtmStatus, ListQuery};
use crate::error::FtmError;

/// Storage operations of the service. Every state change writes its audit row in the same
/// transaction as the change itself.
///
/// Changes that span the certificate store run under a per-FTM *lease* (`sync_token`,
/// `sync_expires_at`): it serialises such steps for one FTM and, while it exists, marks the
/// FTM as one whose trust in the store may disagree with its status. A completed step
/// removes it together with the change; a failed step leaves it behind (expired), and the
/// reconciler repairs the store and removes it.
#[async_trait]
pub trait FtmRepository: LeaseStore<Error = FtmError> {
    /// Inserts a new FTM with its audit row. `DuplicateMakeModel` when the database refuses
    /// it because a live FTM (not REJECTED or DEACTIVATED) of the partner has the same make
    /// and model ignoring case and white space — also when a concurrent create won.
    async fn create(&self, ftm: &Ftm, audit: AuditEvent) -> Result<(), FtmError>;

    #[cfg(feature = "testing")]
    /// Inserts many FTMs in multi-row statements, in one transaction and without audit rows:
    /// bulk loading of records migrated from an existing MOSIP installation, and load tests.
    /// The uniqueness rule applies as for [`FtmRepository::create`].
    async fn import(&self, ftms: &[Ftm]) -> Result<(), FtmError>;

    /// The FTM with this id, whatever its status.
    async fn find(&self, ftm_id: &str) -> Result<Option<Ftm>, FtmError>;

    /// One page in the query's order, after its cursor, with the total number of matches.
    async fn list(&self, query: &ListQuery) -> Result<FtmPage, FtmError>;

    /// Takes the FTM's lease for `token` until `expires_at` if the FTM is in `status` and
    /// no other step holds an unexpired lease on it. Returns whether it was taken.
    async fn acquire_lease(
        &self,
        ftm_id: &str,
        status: FtmStatus,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, FtmError>;

    /// Applies `change` and writes `audit`, in one transaction, and removes the lease — only
    /// if the FTM is still in `expected` and the lease is still `token` (compare-and-set).
    /// `None` when it is not (the lease was taken over); nothing is written then.
    async fn complete(
        &self,
        ftm_id: &str,
        token: &str,
        expected: FtmStatus,
        change: &FtmChange,
        audit: AuditEvent,
    ) -> Result<Option<Ftm>, FtmError>;

    #[cfg(feature = "testing")]
    /// The FTM's lease or marker, if any.
    async fn sync_marker(
        &self,
        ftm_id: &str,
    ) -> Result<Option<pmp_common::lease::StaleLease>, FtmError>;

    /// Number of FTMs in each status that has any (for the metrics endpoint).
    async fn status_counts(&self) -> Result<Vec<(FtmStatus, u64)>, FtmError>;

    /// Number of FTMs carrying a lease or a marker: steps in flight plus FTMs awaiting
    /// reconciliation (for the metrics endpoint).
    async fn sync_marker_count(&self) -> Result<u64, FtmError>;

    #[cfg(feature = "testing")]
    /// Audit rows of one FTM, oldest first.
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, FtmError>;
}
