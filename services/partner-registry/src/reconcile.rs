//! Reconciliation of the certificate store with the partner records.
//!
//! A step that changed (or may have changed) the store but could not finish leaves an
//! expired lease on the partner (see the `service` module); so does the trust-model
//! migration for every partner with a certificate or deactivated. The reconciler takes each
//! such lease over, re-applies the partner's record to the store — the deactivation fact
//! exactly while DEACTIVATED, the current certificate marked trusted — and removes the
//! marker. The local record is the source of truth. It runs at start-up and then
//! periodically; every replica may run it, since taking a lease over is a compare-and-set.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::error::RegistryError;
use crate::service::{later, lease_token};
use crate::storage::{PartnerRepository, SyncMarker};
use crate::upstream::CertificateStore;

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Partners re-applied to the store and whose marker was removed.
    pub repaired: u64,
    /// Partners whose marker someone else took first.
    pub skipped: u64,
    /// Partners the store could not be told about this time (retried on the next pass).
    pub failed: u64,
}

/// Repairs partners left with a stale lease.
#[derive(Clone)]
pub struct Reconciler {
    repository: Arc<dyn PartnerRepository>,
    store: CertificateStore,
    lease: Duration,
    batch_size: u64,
}

impl Reconciler {
    /// A reconciler over `repository`, telling `store`; it holds each partner's lease for at
    /// most `lease` and looks at `batch_size` partners per round.
    pub fn new(
        repository: Arc<dyn PartnerRepository>,
        store: CertificateStore,
        lease: Duration,
        batch_size: u64,
    ) -> Self {
        Reconciler {
            repository,
            store,
            lease,
            batch_size: batch_size.max(1),
        }
    }

    /// One pass over every partner whose lease has expired.
    pub async fn run_once(&self) -> Result<ReconcileReport, RegistryError> {
        let mut report = ReconcileReport::default();
        loop {
            let markers = self
                .repository
                .stale_leases(Utc::now(), self.batch_size)
                .await?;
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
    ) -> Result<(), RegistryError> {
        let token = lease_token();
        let now = Utc::now();
        if !self
            .repository
            .take_over_lease(marker, &token, later(now, self.lease), now)
            .await?
        {
            report.skipped += 1;
            return Ok(());
        }
        let Some(partner) = self.repository.find_partner(&marker.partner_id).await? else {
            report.skipped += 1;
            return Ok(());
        };
        if let Err(error) = self.store.apply(None, &partner).await {
            tracing::warn!(partner_id = %partner.partner_id, %error, "reconciliation deferred: certificate store call failed");
            self.repository
                .abandon_lease(&partner.partner_id, &token, Utc::now())
                .await?;
            report.failed += 1;
            return Ok(());
        }
        tracing::info!(
            partner_id = %partner.partner_id,
            status = partner.status.as_str(),
            certificate_id = partner.certificate_id.as_deref().unwrap_or_default(),
            "reconciled the certificate store with the partner record"
        );
        self.repository
            .release_lease(&partner.partner_id, &token)
            .await?;
        report.repaired += 1;
        Ok(())
    }

    /// Runs a pass now and then every `interval` until `stop` fires or its sender is dropped.
    pub async fn run(self, interval: Duration, mut stop: tokio::sync::watch::Receiver<()>) {
        loop {
            match self.run_once().await {
                Ok(report) if report != ReconcileReport::default() => {
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
