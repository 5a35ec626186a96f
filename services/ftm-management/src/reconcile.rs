//! Reconciliation of certificate trust with FTM review states.
//!
//! A step that changed (or may have changed) a certificate's trust in the store but could
//! not record its outcome locally leaves an expired lease on the FTM (see
//! `crate::service`). The shared [`pmp_common::lease::Reconciler`] takes each such lease
//! over and asks [`TrustRepair`] to re-apply `SetCertificateTrusted(certificate, status ==
//! APPROVED)` from the FTM's recorded status — the local status is the source of truth —
//! then removes the marker. It runs at start-up and then periodically; every replica may
//! run it, the lease take-over is a compare-and-set.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use pmp_common::lease::{Reapplied, Reapply};
use pmp_common::time::SharedClock;

use crate::error::FtmError;
use crate::storage::FtmRepository;
use crate::upstream::Upstream;

pub use pmp_common::lease::ReconcileReport;

/// The reconciler of FTM management.
pub type Reconciler = pmp_common::lease::Reconciler<TrustRepair>;

/// A reconciler over `repository`, telling the store through `upstream`; it holds each
/// FTM's lease for at most `lease` and looks at `batch_size` FTMs per round.
pub fn reconciler(
    repository: Arc<dyn FtmRepository>,
    upstream: Upstream,
    clock: SharedClock,
    lease: Duration,
    batch_size: u64,
) -> Reconciler {
    let repair = TrustRepair {
        repository: Arc::clone(&repository),
        upstream,
    };
    Reconciler::new(repository, repair, clock, lease, batch_size)
}

/// How the store's trust of an FTM's certificate is brought back in line with the FTM.
pub struct TrustRepair {
    repository: Arc<dyn FtmRepository>,
    upstream: Upstream,
}

#[async_trait::async_trait]
impl Reapply for TrustRepair {
    type Error = FtmError;

    async fn reapply(&self, ftm_id: &str) -> Result<Reapplied, FtmError> {
        let Some(ftm) = self.repository.find(ftm_id).await? else {
            return Ok(Reapplied::Gone);
        };
        let Some(certificate_id) = &ftm.certificate_id else {
            return Ok(Reapplied::Done);
        };
        let trusted = ftm.status.trusts_certificate();
        match self
            .upstream
            .set_trusted(None, certificate_id, &ftm.partner_id, trusted)
            .await
        {
            Ok(()) => {
                tracing::warn!(
                    ftm_id,
                    certificate_id = %certificate_id,
                    status = ftm.status.as_str(),
                    trusted,
                    "reconciled certificate trust with the FTM status"
                );
                Ok(Reapplied::Done)
            }
            Err(FtmError::CertificateStore(status)) if status.code() == Code::NotFound => {
                tracing::warn!(ftm_id, certificate_id = %certificate_id, "certificate unknown to the store: nothing to reconcile");
                Ok(Reapplied::Done)
            }
            Err(error) => Ok(Reapplied::Deferred(error.to_string())),
        }
    }
}
