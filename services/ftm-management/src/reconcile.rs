//! Reconciliation of certificate trust with FTM review states.
//!
//! A step that changed (or may have changed) a certificate's trust in the store but could
//! not record its outcome locally leaves an expired lease on the FTM (see the `service`
//! module). The reconciler takes each such lease over, re-applies
//! `SetCertificateTrusted(certificate, status == APPROVED)` from the FTM's recorded status —
//! the local status is the source of truth — and removes the marker. It runs at start-up and
//! then periodically; every replica may run it, the lease take-over is a compare-and-set.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use crate::domain::{self, SyncMarker};
use crate::error::FtmError;
use crate::service::{later, lease_token};
use crate::storage::FtmRepository;
use crate::upstream::Upstream;

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// FTMs whose trust was re-applied (or that needed nothing) and whose marker was removed.
    pub repaired: u64,
    /// FTMs whose marker someone else took first.
    pub skipped: u64,
    /// FTMs the store could not be told about this time (retried on the next pass).
    pub failed: u64,
}

/// Repairs FTMs left with a stale lease.
#[derive(Clone)]
pub struct Reconciler {
    repository: Arc<dyn FtmRepository>,
    upstream: Upstream,
    lease: Duration,
    batch_size: u64,
    outcomes: Option<prometheus::IntCounterVec>,
}

impl Reconciler {
    /// A reconciler over `repository`, telling the store through `upstream`; it holds each
    /// FTM's lease for at most `lease` and looks at `batch_size` FTMs per round.
    pub fn new(
        repository: Arc<dyn FtmRepository>,
        upstream: Upstream,
        lease: Duration,
        batch_size: u64,
    ) -> Self {
        Reconciler {
            repository,
            upstream,
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

    /// One pass over every FTM whose lease has expired.
    pub async fn run_once(&self) -> Result<ReconcileReport, FtmError> {
        let mut report = ReconcileReport::default();
        loop {
            let now = domain::now();
            let markers = self.repository.stale_leases(now, self.batch_size).await?;
            let full_batch = markers.len() as u64 >= self.batch_size;
            let failed_before = report.failed;
            for marker in markers {
                self.repair(&marker, &mut report).await?;
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
        marker: &SyncMarker,
        report: &mut ReconcileReport,
    ) -> Result<(), FtmError> {
        let token = lease_token();
        let now = domain::now();
        if !self
            .repository
            .take_over_lease(marker, &token, later(now, self.lease), now)
            .await?
        {
            report.skipped += 1;
            return Ok(());
        }
        let Some(ftm) = self.repository.find(&marker.ftm_id).await? else {
            report.skipped += 1;
            return Ok(());
        };
        if let Some(certificate_id) = &ftm.certificate_id {
            let trusted = ftm.status.trusts_certificate();
            match self
                .upstream
                .set_trusted(None, certificate_id, &ftm.partner_id, trusted)
                .await
            {
                Ok(()) => {
                    tracing::warn!(
                        ftm_id = %ftm.ftm_id,
                        certificate_id = %certificate_id,
                        status = ftm.status.as_str(),
                        trusted,
                        "reconciled certificate trust with the FTM status"
                    );
                }
                Err(FtmError::CertificateStore(status)) if status.code() == Code::NotFound => {
                    tracing::warn!(ftm_id = %ftm.ftm_id, certificate_id = %certificate_id, "certificate unknown to the store: nothing to reconcile");
                }
                Err(error) => {
                    tracing::warn!(ftm_id = %ftm.ftm_id, %error, "reconciliation deferred: certificate store call failed");
                    self.repository
                        .abandon_lease(&ftm.ftm_id, &token, domain::now())
                        .await?;
                    report.failed += 1;
                    return Ok(());
                }
            }
        }
        self.repository.release_lease(&ftm.ftm_id, &token).await?;
        report.repaired += 1;
        Ok(())
    }

    /// Runs a pass now and then every `interval` until `stop` fires or its sender is dropped.
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
