//! A test double of the repository that delegates to the real one but fails chosen writes,
//! as a database that goes away between the store call and the local write would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use ftm_management::RepositoryWrapper;
use ftm_management::domain::{AuditEvent, Ftm, FtmChange, FtmPage, FtmStatus, ListQuery};
use ftm_management::error::FtmError;
use ftm_management::storage::FtmRepository;
use pmp_common::lease::{LeaseStore, StaleLease};

/// How many of the next calls of each write fail.
#[derive(Default)]
pub struct Failures {
    /// `complete`: the local write of a step, after its store calls.
    pub complete: AtomicUsize,
    /// `abandon_lease` and `release_lease`: ending the lease after a failure.
    pub end_lease: AtomicUsize,
}

impl Failures {
    pub fn fail_complete(&self, times: usize) {
        self.complete.store(times, Ordering::SeqCst);
    }

    pub fn fail_end_lease(&self, times: usize) {
        self.end_lease.store(times, Ordering::SeqCst);
    }
}

fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

fn connection_lost() -> FtmError {
    FtmError::Database(sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal(
        "connection to the database lost (injected)".into(),
    )))
}

pub struct FailingRepository {
    inner: Arc<dyn FtmRepository>,
    failures: Arc<Failures>,
}

/// A wrapper for `spawn_with_repository` and the handle that controls it.
pub fn failing() -> (RepositoryWrapper, Arc<Failures>) {
    let failures = Arc::new(Failures::default());
    let handle = Arc::clone(&failures);
    let wrapper: RepositoryWrapper = Box::new(move |inner| {
        Arc::new(FailingRepository { inner, failures }) as Arc<dyn FtmRepository>
    });
    (wrapper, handle)
}

#[async_trait]
impl FtmRepository for FailingRepository {
    async fn create(&self, ftm: &Ftm, audit: AuditEvent) -> Result<(), FtmError> {
        self.inner.create(ftm, audit).await
    }

    async fn import(&self, ftms: &[Ftm]) -> Result<(), FtmError> {
        self.inner.import(ftms).await
    }

    async fn find(&self, ftm_id: &str) -> Result<Option<Ftm>, FtmError> {
        self.inner.find(ftm_id).await
    }

    async fn list(&self, query: &ListQuery) -> Result<FtmPage, FtmError> {
        self.inner.list(query).await
    }

    async fn acquire_lease(
        &self,
        ftm_id: &str,
        status: FtmStatus,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, FtmError> {
        self.inner
            .acquire_lease(ftm_id, status, token, expires_at, now)
            .await
    }

    async fn complete(
        &self,
        ftm_id: &str,
        token: &str,
        expected: FtmStatus,
        change: &FtmChange,
        audit: AuditEvent,
    ) -> Result<Option<Ftm>, FtmError> {
        if take(&self.failures.complete) {
            return Err(connection_lost());
        }
        self.inner
            .complete(ftm_id, token, expected, change, audit)
            .await
    }

    async fn sync_marker(&self, ftm_id: &str) -> Result<Option<StaleLease>, FtmError> {
        self.inner.sync_marker(ftm_id).await
    }

    async fn status_counts(&self) -> Result<Vec<(FtmStatus, u64)>, FtmError> {
        self.inner.status_counts().await
    }

    async fn sync_marker_count(&self) -> Result<u64, FtmError> {
        self.inner.sync_marker_count().await
    }

    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, FtmError> {
        self.inner.audit_events(entity_id).await
    }
}

#[async_trait]
impl LeaseStore for FailingRepository {
    type Error = FtmError;

    async fn release_lease(&self, ftm_id: &str, token: &str) -> Result<bool, FtmError> {
        if take(&self.failures.end_lease) {
            return Err(connection_lost());
        }
        self.inner.release_lease(ftm_id, token).await
    }

    async fn abandon_lease(
        &self,
        ftm_id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, FtmError> {
        if take(&self.failures.end_lease) {
            return Err(connection_lost());
        }
        self.inner.abandon_lease(ftm_id, token, now).await
    }

    async fn stale_leases(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StaleLease>, FtmError> {
        self.inner.stale_leases(now, limit).await
    }

    async fn take_over_lease(
        &self,
        marker: &StaleLease,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, FtmError> {
        self.inner
            .take_over_lease(marker, token, expires_at, now)
            .await
    }
}
