//! Service-specific Prometheus metrics, next to the request metrics every platform service
//! exports (see `pmp_common::metrics`): FTMs by status, FTMs whose certificate trust may
//! disagree with their status (steps in flight or awaiting reconciliation), and what the
//! reconciler did. Database-backed gauges are refreshed when `/metrics` is scraped.

use std::sync::Arc;

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};

use pmp_common::metrics::Metrics;

use crate::domain::FtmStatus;
use crate::storage::FtmRepository;

/// Registers the FTM gauges on `metrics` and returns the reconciliation counter (label
/// `outcome`: `repaired`, `skipped`, `failed`) for the [`crate::reconcile::Reconciler`].
pub fn register(
    metrics: &Metrics,
    repository: Arc<dyn FtmRepository>,
) -> Result<IntCounterVec, prometheus::Error> {
    let by_status = IntGaugeVec::new(Opts::new("ftms", "FTMs by review status"), &["status"])?;
    let markers = IntGauge::new(
        "ftm_sync_markers",
        "FTMs whose certificate trust may disagree with their status: steps in flight and \
         FTMs awaiting reconciliation",
    )?;
    let reconciled = IntCounterVec::new(
        Opts::new(
            "ftm_reconciliations_total",
            "FTMs looked at by the reconciler, by outcome",
        ),
        &["outcome"],
    )?;
    metrics.registry().register(Box::new(by_status.clone()))?;
    metrics.registry().register(Box::new(markers.clone()))?;
    metrics.registry().register(Box::new(reconciled.clone()))?;
    metrics.on_scrape(move || {
        let repository = Arc::clone(&repository);
        let by_status = by_status.clone();
        let markers = markers.clone();
        async move {
            match repository.status_counts().await {
                Ok(counts) => {
                    for status in FtmStatus::ALL {
                        let count = counts
                            .iter()
                            .find(|(counted, _)| *counted == status)
                            .map_or(0, |(_, count)| *count);
                        by_status
                            .with_label_values(&[status.as_str()])
                            .set(i64::try_from(count).unwrap_or(i64::MAX));
                    }
                }
                Err(error) => tracing::warn!(%error, "counting FTMs for metrics failed"),
            }
            match repository.sync_marker_count().await {
                Ok(count) => markers.set(i64::try_from(count).unwrap_or(i64::MAX)),
                Err(error) => tracing::warn!(%error, "counting sync markers failed"),
            }
        }
    });
    Ok(reconciled)
}
