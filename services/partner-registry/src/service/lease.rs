//! A partner's lease: the compare-and-set that keeps steps on one partner from
//! interleaving, and how a step ends it (released, or left as an expired marker for the
//! reconciler).

use std::time::{Duration, Instant};

use pmp_common::lease::{later, new_token};

use super::RegistryService;
use crate::domain::Partner;
use crate::error::RegistryError;

/// A partner's lease, held by the current request.
pub(super) struct Lease {
    partner_id: String,
    pub(super) token: String,
}

impl RegistryService {
    /// Takes the partner's lease, waiting (up to `lease_wait`) while another step holds it;
    /// returns the partner as read under the lease.
    pub(super) async fn begin(&self, partner_id: &str) -> Result<(Partner, Lease), RegistryError> {
        let give_up = Instant::now() + self.lease_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            self.existing_partner(partner_id).await?;
            let token = new_token();
            let now = self.clock.now();
            if self
                .repository
                .acquire_lease(partner_id, &token, later(now, self.lease), now)
                .await?
            {
                let lease = Lease {
                    partner_id: partner_id.to_owned(),
                    token,
                };
                return match self.existing_partner(partner_id).await {
                    Ok(partner) => Ok((partner, lease)),
                    Err(error) => {
                        self.release(&lease).await;
                        Err(error)
                    }
                };
            }
            if Instant::now() >= give_up {
                return Err(RegistryError::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Ends a step that finished: the lease is removed. If that write fails, the lease
    /// expires by itself and the reconciler re-applies the (already consistent) state.
    pub(super) async fn release(&self, lease: &Lease) {
        if let Err(error) = self
            .repository
            .release_lease(&lease.partner_id, &lease.token)
            .await
        {
            tracing::warn!(partner_id = %lease.partner_id, %error, "could not end the lease; it will expire");
        }
    }

    /// The outcome of a store call that may have changed trust, or of the step's local
    /// write after such calls: on failure the lease is left as an expired marker for the
    /// reconciler (and a retry), and the error returned.
    pub(super) async fn marked_on_failure<T>(
        &self,
        lease: &Lease,
        result: Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        if result.is_err() {
            self.abandon(lease).await;
        }
        result
    }

    async fn abandon(&self, lease: &Lease) {
        if let Err(error) = self
            .repository
            .abandon_lease(&lease.partner_id, &lease.token, self.clock.now())
            .await
        {
            tracing::warn!(partner_id = %lease.partner_id, %error, "could not mark the lease for reconciliation; it will expire");
        }
    }
}
