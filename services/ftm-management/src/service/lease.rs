//! The per-FTM lease around every step that calls the certificate store, and the step's
//! final local write (see the module documentation of [`super`]).

use std::time::{Duration, Instant};

use pmp_common::auth::Caller;
use pmp_common::lease::{later, new_token};

use super::{FtmService, audit, authorize_owner};
use crate::domain::{Action, Ftm, FtmChange, check_transition};
use crate::error::FtmError;

/// A lease held by the current request.
pub(super) struct Lease {
    ftm_id: String,
    token: String,
}

impl FtmService {
    /// Takes the FTM's lease for `action`, waiting (up to `lease_wait`) while another step
    /// holds it, and re-checking existence, ownership and the state machine on every
    /// attempt, so a request that lost a race answers with the now-current state's reason.
    pub(super) async fn begin(
        &self,
        caller: &Caller,
        ftm_id: &str,
        action: Action,
        owner_may_act: bool,
    ) -> Result<(Ftm, Lease), FtmError> {
        let give_up = Instant::now() + self.lease_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(held) = self
                .try_lease(caller, ftm_id, action, owner_may_act)
                .await?
            {
                return Ok(held);
            }
            if Instant::now() >= give_up {
                return Err(FtmError::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// One attempt of [`Self::begin`]: `None` while another step holds the lease.
    async fn try_lease(
        &self,
        caller: &Caller,
        ftm_id: &str,
        action: Action,
        owner_may_act: bool,
    ) -> Result<Option<(Ftm, Lease)>, FtmError> {
        let ftm = self.load(ftm_id).await?;
        if owner_may_act {
            authorize_owner(caller, &ftm)?;
        }
        check_transition(ftm.status, ftm.certificate_id.is_some(), action)?;
        let token = new_token();
        let now = self.clock.now();
        let expires = later(now, self.lease);
        if !self
            .repository
            .acquire_lease(&ftm.ftm_id, ftm.status, &token, expires, now)
            .await?
        {
            return Ok(None);
        }
        let lease = Lease {
            ftm_id: ftm.ftm_id,
            token,
        };
        // Re-read under the lease: another step may have passed through this status and
        // back since the first read.
        let held = self.load(ftm_id).await.and_then(|held| {
            check_transition(held.status, held.certificate_id.is_some(), action).map(|_| held)
        });
        match held {
            Ok(held) => Ok(Some((held, lease))),
            Err(error) => {
                self.end_failed(&lease, false).await;
                Err(error)
            }
        }
    }

    /// Ends a failed step's lease: removed when no trust change was sent, kept as an expired
    /// marker for the reconciler (and claimable by a retry) when one may have been applied.
    /// If this write fails too, the lease expires by itself.
    pub(super) async fn end_failed(&self, lease: &Lease, trust_touched: bool) {
        let result = if trust_touched {
            self.repository
                .abandon_lease(&lease.ftm_id, &lease.token, self.clock.now())
                .await
        } else {
            self.repository
                .release_lease(&lease.ftm_id, &lease.token)
                .await
        };
        if let Err(error) = result {
            tracing::warn!(ftm_id = %lease.ftm_id, %error, "could not end the lease; it will expire");
        }
    }

    /// The step's local write: change, audit row and lease removal in one transaction.
    pub(super) async fn finish(
        &self,
        caller: &Caller,
        lease: &Lease,
        before: &Ftm,
        action: Action,
        change: FtmChange,
        trust_touched: bool,
    ) -> Result<Ftm, FtmError> {
        let audit = audit(
            caller,
            action.audit_action(),
            &before.ftm_id,
            Some(before.status),
            Some(change.status),
        );
        match self
            .repository
            .complete(&before.ftm_id, &lease.token, before.status, &change, audit)
            .await
        {
            Ok(Some(updated)) => {
                tracing::info!(
                    ftm_id = %updated.ftm_id,
                    from = before.status.as_str(),
                    to = updated.status.as_str(),
                    "FTM status changed"
                );
                Ok(updated)
            }
            Ok(None) => {
                tracing::warn!(ftm_id = %before.ftm_id, "lease was taken over before the step completed");
                Err(FtmError::Interrupted)
            }
            Err(error) => {
                self.end_failed(lease, trust_touched).await;
                Err(error)
            }
        }
    }

    /// A store call inside a step: on failure the lease is ended and the status relayed.
    pub(super) async fn store_step<T>(
        &self,
        lease: &Lease,
        trust_touched: bool,
        result: Result<T, FtmError>,
    ) -> Result<T, FtmError> {
        if result.is_err() {
            self.end_failed(lease, trust_touched).await;
        }
        result
    }
}
