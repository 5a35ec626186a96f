//! Leases on records whose change spans another service, and the reconciler that repairs
//! what an interrupted change left behind.
//!
//! A service that must change its own record *and* another service's state (the registry
//! and FTM management telling the certificate store what is trusted) cannot do both in one
//! transaction. It takes a lease on its record (a token and an expiry in two columns of the
//! record's row), calls the other service, then writes its record and removes the lease in
//! one local transaction. A step that fails after the other service may have applied its
//! call leaves the lease behind, expired: a *marker* saying "the other service may not
//! match this record". The [`Reconciler`] takes such markers over one by one (a
//! compare-and-set, so any number of replicas may run it), re-applies the record, which is
//! the source of truth, to the other service, and removes the marker.
//!
//! [`LeaseColumns`] holds the SQL of those compare-and-sets once for every table that has
//! the two columns; a service's repository calls it with its own entity.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::time::SharedClock;

/// An expired lease found by [`LeaseColumns::stale`]: the record and the token left on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleLease {
    /// The record's primary key.
    pub id: String,
    /// The token of the step that left it.
    pub token: String,
    /// When it expired.
    pub expires_at: DateTime<Utc>,
}

/// A fresh lease token: random, so a step recognises its own lease and nobody else's.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `now + duration`, saturating at `now` when out of range.
pub fn later(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(now)
}

/// The lease columns of one table: its primary key, the token and the expiry (both NULL
/// while no lease or marker exists).
#[derive(Debug, Clone, Copy)]
pub struct LeaseColumns<E: EntityTrait> {
    /// The primary key (text).
    pub id: E::Column,
    /// The lease token, NULL without a lease.
    pub token: E::Column,
    /// The lease expiry, NULL without a lease.
    pub expires_at: E::Column,
}

impl<E: EntityTrait> LeaseColumns<E> {
    /// Removes the lease `token` of record `id`; returns whether it was still held.
    pub async fn release(
        &self,
        connection: &impl ConnectionTrait,
        id: &str,
        token: &str,
    ) -> Result<bool, DbErr> {
        let result = E::update_many()
            .col_expr(self.token, Expr::value(Option::<String>::None))
            .col_expr(self.expires_at, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(self.id.eq(id.to_owned()))
            .filter(self.token.eq(token.to_owned()))
            .exec(connection)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Keeps the lease `token` of record `id` as a marker, expired at `now`: the step failed
    /// after the other service may have applied it, and a retry may take it over at once.
    pub async fn abandon(
        &self,
        connection: &impl ConnectionTrait,
        id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let result = E::update_many()
            .col_expr(self.expires_at, Expr::value(now))
            .filter(self.id.eq(id.to_owned()))
            .filter(self.token.eq(token.to_owned()))
            .exec(connection)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records whose lease expired at or before `now`, oldest first, at most `limit`.
    pub async fn stale(
        &self,
        connection: &impl ConnectionTrait,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StaleLease>, DbErr> {
        let rows: Vec<(String, Option<String>, Option<DateTime<Utc>>)> = E::find()
            .select_only()
            .column(self.id)
            .column(self.token)
            .column(self.expires_at)
            .filter(self.token.is_not_null())
            .filter(self.expires_at.lte(now))
            .order_by_asc(self.expires_at)
            .limit(limit)
            .into_tuple()
            .all(connection)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, token, expires_at)| {
                Some(StaleLease {
                    id,
                    token: token?,
                    expires_at: expires_at?,
                })
            })
            .collect())
    }

    /// Takes over the expired lease `stale` for `token` until `expires_at`, unless someone
    /// else took it (or it was renewed) since it was read. Returns whether it was taken.
    pub async fn take_over(
        &self,
        connection: &impl ConnectionTrait,
        stale: &StaleLease,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let result = E::update_many()
            .col_expr(self.token, Expr::value(token.to_owned()))
            .col_expr(self.expires_at, Expr::value(expires_at))
            .filter(self.id.eq(stale.id.clone()))
            .filter(self.token.eq(stale.token.clone()))
            .filter(self.expires_at.lte(now))
            .exec(connection)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

/// What re-applying one record to the other service did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reapplied {
    /// The other service now matches the record (or needed nothing): the marker goes.
    Done,
    /// The record no longer exists: nothing to repair.
    Gone,
    /// The other service could not be told this time; the marker stays for the next pass.
    Deferred(String),
}

/// The records of a service that carry leases: implemented by its repository (over
/// [`LeaseColumns`]), and by test doubles that fail on purpose.
#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync {
    /// The service's error (a failing database).
    type Error: std::fmt::Display + Send;

    /// Records whose lease expired at or before `now`, oldest first, at most `limit`.
    async fn stale_leases(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StaleLease>, Self::Error>;

    /// See [`LeaseColumns::take_over`].
    async fn take_over_lease(
        &self,
        stale: &StaleLease,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Self::Error>;

    /// See [`LeaseColumns::release`].
    async fn release_lease(&self, id: &str, token: &str) -> Result<bool, Self::Error>;

    /// See [`LeaseColumns::abandon`].
    async fn abandon_lease(
        &self,
        id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Self::Error>;
}

/// A repository whose records keep their leases in [`LeaseColumns`] of one table: it is a
/// [`LeaseStore`] without further code.
pub trait SqlLeases: Send + Sync {
    /// The table.
    type Entity: EntityTrait;
    /// The service's error, which database errors convert into.
    type Error: From<DbErr> + std::fmt::Display + Send;
    /// The table's lease columns.
    const COLUMNS: LeaseColumns<Self::Entity>;
    /// The connection the repository was given.
    fn connection(&self) -> &sea_orm::DatabaseConnection;
}

#[async_trait::async_trait]
impl<T: SqlLeases> LeaseStore for T
where
    <T::Entity as EntityTrait>::Column: Send + Sync,
{
    type Error = T::Error;

    async fn stale_leases(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StaleLease>, T::Error> {
        Ok(T::COLUMNS.stale(self.connection(), now, limit).await?)
    }

    async fn take_over_lease(
        &self,
        stale: &StaleLease,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, T::Error> {
        let columns = T::COLUMNS;
        Ok(columns
            .take_over(self.connection(), stale, token, expires_at, now)
            .await?)
    }

    async fn release_lease(&self, id: &str, token: &str) -> Result<bool, T::Error> {
        Ok(T::COLUMNS.release(self.connection(), id, token).await?)
    }

    async fn abandon_lease(
        &self,
        id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, T::Error> {
        Ok(T::COLUMNS
            .abandon(self.connection(), id, token, now)
            .await?)
    }
}

/// How a service brings the other service back in line with one of its records.
#[async_trait::async_trait]
pub trait Reapply: Send + Sync {
    /// The service's error (a failing database).
    type Error: std::fmt::Display + Send;

    /// Re-applies the current local record `id` to the other service.
    async fn reapply(&self, id: &str) -> Result<Reapplied, Self::Error>;
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Records re-applied (or that needed nothing) and whose marker was removed.
    pub repaired: u64,
    /// Records whose marker someone else took first, or that no longer exist.
    pub skipped: u64,
    /// Records the other service could not be told about this time (next pass).
    pub failed: u64,
}

/// Repairs the records left with an expired lease, at start-up and periodically.
pub struct Reconciler<R: Reapply> {
    leases: Arc<dyn LeaseStore<Error = R::Error>>,
    repair: R,
    clock: SharedClock,
    lease: Duration,
    batch_size: u64,
    outcomes: Option<prometheus::IntCounterVec>,
}

impl<R: Reapply> Reconciler<R> {
    /// A reconciler over the records of `leases`, repaired by `repair`, that holds each
    /// record's lease for at most `lease` and looks at `batch_size` records per round,
    /// reading the time from `clock` (tests move it instead of waiting for leases to
    /// expire).
    pub fn new(
        leases: Arc<dyn LeaseStore<Error = R::Error>>,
        repair: R,
        clock: SharedClock,
        lease: Duration,
        batch_size: u64,
    ) -> Self {
        Reconciler {
            leases,
            repair,
            clock,
            lease,
            batch_size: batch_size.max(1),
            outcomes: None,
        }
    }

    /// Counts what each pass did in `counter` (label `outcome`).
    pub fn with_outcome_counter(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.outcomes = Some(counter);
        self
    }

    /// One pass over every record whose lease has expired.
    pub async fn run_once(&self) -> Result<ReconcileReport, R::Error> {
        let mut report = ReconcileReport::default();
        loop {
            let stale = self
                .leases
                .stale_leases(self.clock.now(), self.batch_size)
                .await?;
            let full_batch = stale.len() as u64 >= self.batch_size;
            let failed_before = report.failed;
            for lease in stale {
                self.repair(&lease, &mut report).await?;
            }
            // Stop when the backlog is drained, or when something failed (it would only be
            // selected again right away).
            if !full_batch || report.failed > failed_before {
                return Ok(report);
            }
        }
    }

    async fn repair(
        &self,
        stale: &StaleLease,
        report: &mut ReconcileReport,
    ) -> Result<(), R::Error> {
        let token = new_token();
        let now = self.clock.now();
        let expires_at = later(now, self.lease);
        if !self
            .leases
            .take_over_lease(stale, &token, expires_at, now)
            .await?
        {
            report.skipped += 1;
            return Ok(());
        }
        match self.repair.reapply(&stale.id).await? {
            Reapplied::Done => {
                self.leases.release_lease(&stale.id, &token).await?;
                report.repaired += 1;
            }
            Reapplied::Gone => report.skipped += 1,
            Reapplied::Deferred(reason) => {
                tracing::warn!(id = %stale.id, %reason, "reconciliation deferred");
                self.leases
                    .abandon_lease(&stale.id, &token, self.clock.now())
                    .await?;
                report.failed += 1;
            }
        }
        Ok(())
    }

    fn count(&self, report: &ReconcileReport) {
        if let Some(outcomes) = &self.outcomes {
            for (outcome, value) in [
                ("repaired", report.repaired),
                ("skipped", report.skipped),
                ("failed", report.failed),
            ] {
                outcomes.with_label_values(&[outcome]).inc_by(value);
            }
        }
    }

    /// Runs a pass now and then every `interval` until `stop` changes or its sender is
    /// dropped.
    pub async fn run(self, interval: Duration, mut stop: tokio::sync::watch::Receiver<()>) {
        loop {
            match self.run_once().await {
                Ok(report) if report != ReconcileReport::default() => {
                    self.count(&report);
                    tracing::info!(?report, "reconciliation pass");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "reconciliation pass failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::time::{Clock, ManualClock};

    /// Records in memory: id → (token, expiry), and whether the other service is reachable.
    #[derive(Default)]
    struct Memory {
        leases: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
        reachable: Mutex<bool>,
        reapplied: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl LeaseStore for Memory {
        type Error = String;

        async fn stale_leases(
            &self,
            now: DateTime<Utc>,
            limit: u64,
        ) -> Result<Vec<StaleLease>, String> {
            let leases = self.leases.lock().map_err(|error| error.to_string())?;
            let mut stale: Vec<StaleLease> = leases
                .iter()
                .filter(|(_, (_, expires_at))| *expires_at <= now)
                .map(|(id, (token, expires_at))| StaleLease {
                    id: id.clone(),
                    token: token.clone(),
                    expires_at: *expires_at,
                })
                .collect();
            stale.sort_by_key(|lease| lease.expires_at);
            stale.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(stale)
        }

        async fn take_over_lease(
            &self,
            stale: &StaleLease,
            token: &str,
            expires_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<bool, String> {
            let mut leases = self.leases.lock().map_err(|error| error.to_string())?;
            match leases.get_mut(&stale.id) {
                Some(lease) if lease.0 == stale.token && lease.1 <= now => {
                    *lease = (token.to_owned(), expires_at);
                    Ok(true)
                }
                _ => Ok(false),
            }
        }

        async fn release_lease(&self, id: &str, token: &str) -> Result<bool, String> {
            let mut leases = self.leases.lock().map_err(|error| error.to_string())?;
            let held = leases.get(id).is_some_and(|lease| lease.0 == token);
            if held {
                leases.remove(id);
            }
            Ok(held)
        }

        async fn abandon_lease(
            &self,
            id: &str,
            token: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, String> {
            let mut leases = self.leases.lock().map_err(|error| error.to_string())?;
            match leases.get_mut(id) {
                Some(lease) if lease.0 == token => {
                    lease.1 = now;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
    }

    #[async_trait::async_trait]
    impl Reapply for Arc<Memory> {
        type Error = String;

        async fn reapply(&self, id: &str) -> Result<Reapplied, String> {
            if !*self.reachable.lock().map_err(|error| error.to_string())? {
                return Ok(Reapplied::Deferred("unreachable".into()));
            }
            self.reapplied
                .lock()
                .map_err(|error| error.to_string())?
                .push(id.to_owned());
            Ok(Reapplied::Done)
        }
    }

    fn memory_with(clock: &ManualClock, leases: &[(&str, i64)]) -> Arc<Memory> {
        let memory = Arc::new(Memory::default());
        *memory.reachable.lock().expect("lock") = true;
        for (id, seconds) in leases {
            let expires_at = clock.now() + chrono::Duration::seconds(*seconds);
            memory
                .leases
                .lock()
                .expect("lock")
                .insert((*id).to_owned(), (format!("step-{id}"), expires_at));
        }
        memory
    }

    #[tokio::test]
    async fn live_leases_are_left_alone_until_the_clock_passes_them() {
        let clock = Arc::new(ManualClock::starting_now());
        let memory = memory_with(&clock, &[("a", 30), ("b", -1)]);
        let reconciler = Reconciler::new(
            memory.clone(),
            memory.clone(),
            clock.clone(),
            Duration::from_secs(30),
            10,
        );
        let first = reconciler.run_once().await.expect("pass");
        assert_eq!(first.repaired, 1);
        assert_eq!(
            *memory.reapplied.lock().expect("lock"),
            vec!["b".to_owned()]
        );
        clock.advance(Duration::from_secs(31));
        let second = reconciler.run_once().await.expect("pass");
        assert_eq!(second.repaired, 1);
        assert!(memory.leases.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_service_keeps_the_marker_for_the_next_pass() {
        let clock = Arc::new(ManualClock::starting_now());
        let memory = memory_with(&clock, &[("a", -5)]);
        *memory.reachable.lock().expect("lock") = false;
        let reconciler = Reconciler::new(
            memory.clone(),
            memory.clone(),
            clock.clone(),
            Duration::from_secs(30),
            10,
        );
        let report = reconciler.run_once().await.expect("pass");
        assert_eq!(report.failed, 1);
        assert_eq!(memory.leases.lock().expect("lock").len(), 1, "marker kept");
        *memory.reachable.lock().expect("lock") = true;
        let retried = reconciler.run_once().await.expect("pass");
        assert_eq!(retried.repaired, 1);
    }

    #[tokio::test]
    async fn a_backlog_larger_than_a_batch_is_drained_in_one_pass() {
        let clock = Arc::new(ManualClock::starting_now());
        let ids: Vec<String> = (0..7).map(|index| format!("r{index}")).collect();
        let leases: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), -1)).collect();
        let memory = memory_with(&clock, &leases);
        let reconciler = Reconciler::new(
            memory.clone(),
            memory.clone(),
            clock,
            Duration::from_secs(30),
            3,
        );
        assert_eq!(reconciler.run_once().await.expect("pass").repaired, 7);
    }

    #[test]
    fn later_saturates() {
        let now = Utc::now();
        assert_eq!(later(now, Duration::MAX), now);
        assert_eq!(
            later(now, Duration::from_secs(2)),
            now + chrono::Duration::seconds(2)
        );
    }
}
