//! Reconciliation of the certificate store with the partner records.
//!
//! A step that changed (or may have changed) the store but could not finish leaves an
//! expired lease on the partner (see the `service` module); so does the trust-model
//! migration for every partner with a certificate or deactivated. The shared
//! [`pmp_common::lease::Reconciler`] takes each such lease over and asks [`StoreRepair`] to
//! re-apply the partner's record to the store — the deactivation fact exactly while
//! DEACTIVATED, the current certificate marked trusted — then removes the marker. The local
//! record is the source of truth. It runs at start-up and then periodically; every replica
//! may run it, since taking a lease over is a compare-and-set.

use std::sync::Arc;
use std::time::Duration;

use pmp_common::lease::{Reapplied, Reapply};
use pmp_common::time::SharedClock;

use crate::error::RegistryError;
use crate::storage::PartnerRepository;
use crate::upstream::CertificateStore;

pub use pmp_common::lease::ReconcileReport;

/// The reconciler of the registry.
pub type Reconciler = pmp_common::lease::Reconciler<StoreRepair>;

/// A reconciler over `repository`, telling `store`; it holds each partner's lease for at
/// most `lease` and looks at `batch_size` partners per round.
pub fn reconciler(
    repository: Arc<dyn PartnerRepository>,
    store: CertificateStore,
    clock: SharedClock,
    lease: Duration,
    batch_size: u64,
) -> Reconciler {
    let repair = StoreRepair {
        repository: Arc::clone(&repository),
        store,
    };
    Reconciler::new(repository, repair, clock, lease, batch_size)
}

/// How the store is brought back in line with a partner record.
pub struct StoreRepair {
    repository: Arc<dyn PartnerRepository>,
    store: CertificateStore,
}

#[async_trait::async_trait]
impl Reapply for StoreRepair {
    type Error = RegistryError;

    async fn reapply(&self, partner_id: &str) -> Result<Reapplied, RegistryError> {
        let Some(partner) = self.repository.find_partner(partner_id).await? else {
            return Ok(Reapplied::Gone);
        };
        if let Err(error) = self.store.apply(None, &partner).await {
            return Ok(Reapplied::Deferred(error.to_string()));
        }
        tracing::info!(
            partner_id,
            status = partner.status.as_str(),
            certificate_id = partner.certificate_id.as_deref().unwrap_or_default(),
            "reconciled the certificate store with the partner record"
        );
        Ok(Reapplied::Done)
    }
}
