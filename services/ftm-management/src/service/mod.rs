//! The FTM management service API: the use cases behind the `FtmManagement` RPCs, free of
//! gRPC. Each takes the authenticated [`Caller`] and a validated request (see
//! [`crate::domain`]) and answers domain values or an [`FtmError`]; the adapter in
//! [`crate::grpc`] authenticates, decodes and encodes around them.
//!
//! # Authorisation
//!
//! * `CreateFtm`: a user with the `FTM_PROVIDER` role creating for their own partner id, or a
//!   `PARTNER_ADMIN`.
//! * `UploadFtmCertificate`, `DeactivateFtm`, `GetFtm`, `GetFtmCertificate`: the owner (the
//!   FTM's `partner_id` is the caller's partner id) or an admin. A non-owner learns that an
//!   FTM exists (`PERMISSION_DENIED`) but nothing else about it; an unknown id is
//!   `NOT_FOUND` for everybody.
//! * `ApproveFtm`, `RejectFtm`: admins only.
//! * `ListFtms`: admins see every FTM; everybody else only their own (asking for another
//!   partner's FTMs is `PERMISSION_DENIED`).
//!
//! A platform service calling with its service token is trusted to have authorised its own
//! caller (as in every platform service); admin-only RPCs still need an admin user.
//!
//! # Consistency with the certificate store
//!
//! The FTM's review state lives here; whether its chip certificate is trusted lives in the
//! certificate store. The rule is: **a chip certificate is trusted only while its FTM is
//! APPROVED**, and the two databases never disagree for good. The design:
//!
//! 1. **Per-FTM lease.** Every step that calls the store first takes the FTM's lease in the
//!    local database (a compare-and-set on the status it read: `UPDATE ftms SET sync_token
//!    = ? WHERE ftm_id = ? AND status = ? AND (no live lease)`). The lease serialises such
//!    steps on one FTM (a concurrent request waits for it, then re-checks the now-current
//!    state and answers with that state's reason, e.g. `PMS_FTM_ERROR_012` for a second
//!    approval), and while it exists it marks the FTM as "store trust may disagree".
//! 2. **Ordering: store first, local write last.** The step makes its store calls, then writes
//!    the new status, the certificate fields, the audit row and the lease removal in one local
//!    transaction, conditional on still holding the lease in the status it read. Trust is
//!    only ever *raised* by `ApproveFtm`; every step that leaves APPROVED lowers it *before*
//!    the local write:
//!    * `UploadFtmCertificate`: registry `GetPartner` (active, FTM_Provider, organisation
//!      name) → store `UploadPartnerCertificate` (domain FTM, `owner_id` = FTM id; the store
//!      answers the same certificate id for the same owner, certificate and domain, so a
//!      retry after a lost reply reuses it; sent as owner type FTM with the provider as its
//!      partner, the certificate is stored untrusted and untrusted again whenever the
//!      partner is deactivated) → for a renewal of an APPROVED FTM,
//!      `SetCertificateTrusted(old, false)` → local write PENDING_APPROVAL + certificate id +
//!      expiry (the store's `not_after`).
//!    * `ApproveFtm`: registry `GetPartner` (the provider must be usable: `PMP_AUT_030`
//!      while it is deactivated) → `SetCertificateTrusted(certificate, true)` → local write
//!      APPROVED.
//!    * `RejectFtm` / `DeactivateFtm`: `SetCertificateTrusted(certificate, false)` → local
//!      write REJECTED (with the reason) / DEACTIVATED.
//! 3. **Failures.** A failed store or registry call is answered with the relayed status
//!    (`UNAVAILABLE` / `DEADLINE_EXCEEDED` for transport failures, the business reason
//!    otherwise) and changes nothing locally: the FTM keeps its status and gets no audit row.
//!    If the step had not yet sent a trust change, the lease is simply removed. Otherwise it
//!    is kept as an expired *marker*, because the store may or may not have applied the
//!    change. A retry of the same request takes the lease again at once and completes the
//!    step (every store call is idempotent). The same holds when the local write itself
//!    fails after the store calls (the marker then stays because the lease was already in
//!    the database before any store call — even a crash leaves it, expiring by itself).
//! 4. **Reconciliation.** A background task (at start-up and every
//!    `consistency.reconcile_interval_seconds`) takes over every expired lease and re-applies
//!    `SetCertificateTrusted(certificate, status == APPROVED)` from the local status, then
//!    removes the marker. So the only time a certificate can be trusted while its FTM is not
//!    APPROVED is inside an `ApproveFtm`, between the store's confirmation and the local
//!    commit; if that commit fails (or the store's reply is lost) the window stays open until
//!    the retry or the next reconciliation pass, at most `reconcile_interval_seconds` later
//!    (plus `lease_seconds` if the process died mid-step). The reverse windows ("APPROVED
//!    but not trusted yet", after a failed renewal or deactivation) are safe and repaired the
//!    same way. Leases outlive the store deadlines several times over, and deadlines are
//!    propagated to the store, so a step's store calls have ended before anyone else may
//!    take its lease over; a step whose lease was nevertheless taken over writes nothing and
//!    answers `UNAVAILABLE` (retry).
//!
//! `ApproveFtm` on an FTM that is already APPROVED answers `PMS_FTM_ERROR_012` as the
//! contract says, also for a retry whose first attempt succeeded but whose reply was lost:
//! the state is then already right (APPROVED was written only after the store confirmed the
//! trust).

mod create;
mod lease;
mod query;
mod review;
mod upload;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use pmp_common::auth::Caller;
use pmp_common::event_feed::EventFeed;
use pmp_common::time::SharedClock;

use crate::domain::{AuditAction, AuditEvent, FTM_PROVIDER_PARTNER_TYPE, Ftm, FtmStatus};
use crate::error::FtmError;
use crate::storage::{FtmRepository, SqlFtmRepository};
use crate::upstream::{Provider, Upstream};

/// The FTM management use cases over their dependencies, one module per group of RPCs:
/// `create`, `upload`, `review` (approve, reject, deactivate), `query` and `watch`; `lease` holds
/// the consistency machinery the state-changing steps share.
pub(crate) struct FtmService {
    repository: Arc<dyn FtmRepository>,
    upstream: Upstream,
    lease: Duration,
    lease_wait: Duration,
    clock: SharedClock,
    events: EventFeed<SqlFtmRepository>,
}

/// Dependencies of [`FtmService`].
pub(crate) struct FtmParts {
    pub(crate) repository: Arc<dyn FtmRepository>,
    pub(crate) upstream: Upstream,
    /// How long a step may hold an FTM's lease.
    pub(crate) lease: Duration,
    /// How long a request waits for another step on the same FTM.
    pub(crate) lease_wait: Duration,
    /// Where lease times come from.
    pub(crate) clock: SharedClock,
    /// The streams of `WatchFtmEvents`.
    pub(crate) events: EventFeed<SqlFtmRepository>,
}

fn authorize_owner(caller: &Caller, ftm: &Ftm) -> Result<(), FtmError> {
    Ok(caller.require_owner_or_admin(&ftm.partner_id)?)
}

fn authorize_admin(caller: &Caller) -> Result<(), FtmError> {
    Ok(caller.require_admin()?)
}

/// Whether the registry's partner may own FTMs.
fn usable_provider(provider: &Provider) -> bool {
    provider.active
        && provider
            .partner_type
            .eq_ignore_ascii_case(FTM_PROVIDER_PARTNER_TYPE)
}

/// The audit row of a change made by `caller` (written in the change's own transaction).
fn audit(
    caller: &Caller,
    action: AuditAction,
    ftm_id: &str,
    before: Option<FtmStatus>,
    after: Option<FtmStatus>,
) -> AuditEvent {
    AuditEvent::now(
        &caller.actor(),
        action.as_str(),
        ftm_id,
        before.map(FtmStatus::as_str),
        after.map(FtmStatus::as_str),
    )
}

impl FtmService {
    /// Builds the service.
    pub(crate) fn new(parts: FtmParts) -> Self {
        FtmService {
            repository: parts.repository,
            upstream: parts.upstream,
            lease: parts.lease,
            lease_wait: parts.lease_wait,
            clock: parts.clock,
            events: parts.events,
        }
    }

    async fn load(&self, ftm_id: &str) -> Result<Ftm, FtmError> {
        self.repository
            .find(ftm_id)
            .await?
            .ok_or(FtmError::FtmNotFound)
    }

    /// The provider partner, from the registry: it must exist, be ACTIVE and be of type
    /// FTM_Provider (`PMP_AUT_030`).
    async fn provider(&self, caller: &Caller, partner_id: &str) -> Result<Provider, FtmError> {
        match self.upstream.get_partner(caller.user(), partner_id).await? {
            Some(provider) if usable_provider(&provider) => Ok(provider),
            Some(provider) => {
                tracing::info!(partner_id, active = provider.active, partner_type = %provider.partner_type, "partner cannot own FTMs");
                Err(FtmError::ProviderNotUsable)
            }
            None => Err(FtmError::ProviderNotUsable),
        }
    }
}
