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

use std::sync::Arc;
use std::time::{Duration, Instant};

use pmp_common::auth::Caller;
use pmp_common::pagination::{self, PageError};

use crate::domain::{
    self, Action, AuditAction, AuditEvent, CertificateUpload, Cursor, FTM_PROVIDER_PARTNER_TYPE,
    Ftm, FtmChange, FtmFilter, FtmListing, FtmRef, FtmSearch, FtmStatus, ListQuery,
    MAX_FILTER_CHARS, NewFtm, Ordering, ROLE_FTM_PROVIDER, Rejection, check_transition, new_ftm_id,
    search_key,
};
use crate::error::FtmError;
use crate::storage::FtmRepository;
use crate::upstream::{CertificateBundle, Provider, StoredCertificate, Upstream};

/// The FTM management use cases over their dependencies.
pub(crate) struct FtmService {
    repository: Arc<dyn FtmRepository>,
    upstream: Upstream,
    lease: Duration,
    lease_wait: Duration,
}

/// Dependencies of [`FtmService`].
pub(crate) struct FtmParts {
    pub(crate) repository: Arc<dyn FtmRepository>,
    pub(crate) upstream: Upstream,
    /// How long a step may hold an FTM's lease.
    pub(crate) lease: Duration,
    /// How long a request waits for another step on the same FTM.
    pub(crate) lease_wait: Duration,
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

// ---- create

impl FtmService {
    /// `CreateFtm`: a new FTM of a usable provider, waiting for its chip certificate.
    pub(crate) async fn create(&self, caller: &Caller, input: NewFtm) -> Result<Ftm, FtmError> {
        authorize_create(caller, &input.partner_id)?;
        let provider = self.provider(caller, &input.partner_id).await?;
        let now = domain::now();
        let ftm = Ftm {
            ftm_id: new_ftm_id(),
            partner_id: input.partner_id,
            organization_name: provider.organization_name,
            make: input.make,
            model: input.model,
            status: FtmStatus::PendingCertUpload,
            certificate_id: None,
            certificate_expiry_time: None,
            reject_reason: None,
            create_time: now,
            update_time: now,
        };
        let audit = audit(
            caller,
            AuditAction::Created,
            &ftm.ftm_id,
            None,
            Some(ftm.status),
        );
        self.repository.create(&ftm, audit).await?;
        tracing::info!(ftm_id = %ftm.ftm_id, partner_id = %ftm.partner_id, "FTM created");
        Ok(ftm)
    }
}

/// `CreateFtm`: an FTM provider for itself, or an admin (or a platform service).
fn authorize_create(caller: &Caller, partner_id: &str) -> Result<(), FtmError> {
    match caller {
        Caller::User(user)
            if user.is_admin()
                || (user.has_role(ROLE_FTM_PROVIDER) && user.partner_id == partner_id) =>
        {
            Ok(())
        }
        Caller::Service { .. } => Ok(()),
        Caller::User(_) => Err(caller.denied().into()),
    }
}

// ---- lease

/// A lease held by the current request.
struct Lease {
    ftm_id: String,
    token: String,
}

/// A fresh random lease token.
pub(crate) fn lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `now + duration`, saturating.
pub(crate) fn later(
    now: chrono::DateTime<chrono::Utc>,
    duration: Duration,
) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(now)
}

impl FtmService {
    /// Takes the FTM's lease for `action`, waiting (up to `lease_wait`) while another step
    /// holds it, and re-checking existence, ownership and the state machine on every
    /// attempt, so a request that lost a race answers with the now-current state's reason.
    async fn begin(
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
        let token = lease_token();
        let now = domain::now();
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
    async fn end_failed(&self, lease: &Lease, trust_touched: bool) {
        let result = if trust_touched {
            self.repository
                .abandon_lease(&lease.ftm_id, &lease.token, domain::now())
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
    async fn finish(
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
    async fn store_step<T>(
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

// ---- upload

impl FtmService {
    /// `UploadFtmCertificate`: a first chip certificate, or a renewal of an APPROVED FTM's;
    /// either way the FTM then waits for approval.
    pub(crate) async fn upload(
        &self,
        caller: &Caller,
        input: CertificateUpload,
    ) -> Result<Ftm, FtmError> {
        let ftm = self.load(&input.ftm_id).await?;
        authorize_owner(caller, &ftm)?;
        let action = Action::UploadCertificate;
        check_transition(ftm.status, ftm.certificate_id.is_some(), action)?;
        let provider = self.provider(caller, &ftm.partner_id).await?;
        let (ftm, lease) = self.begin(caller, &input.ftm_id, action, true).await?;
        let stored = self
            .store_certificate(caller, &lease, &ftm, provider, input.certificate_data)
            .await?;
        let trust_touched = self.untrust_previous(caller, &lease, &ftm).await?;
        let change = FtmChange {
            status: FtmStatus::PendingApproval,
            certificate_id: Some(stored.certificate_id),
            certificate_expiry_time: stored.not_after.map(domain::truncate_to_micros),
            reject_reason: None,
        };
        self.finish(caller, &lease, &ftm, action, change, trust_touched)
            .await
    }

    /// Hands the chip certificate to the store (which validates it) under the lease.
    async fn store_certificate(
        &self,
        caller: &Caller,
        lease: &Lease,
        ftm: &Ftm,
        provider: Provider,
        certificate_data: String,
    ) -> Result<StoredCertificate, FtmError> {
        let uploaded = self
            .upstream
            .upload_chip_certificate(
                caller.user(),
                ftm,
                provider.organization_name,
                certificate_data,
            )
            .await;
        let stored = self.store_step(lease, false, uploaded).await?;
        if stored.certificate_id.is_empty() {
            self.end_failed(lease, false).await;
            return Err(FtmError::Internal(
                "certificate store answered without a certificate id".into(),
            ));
        }
        Ok(stored)
    }

    /// For a renewal, the old certificate stops being trusted before the FTM leaves
    /// APPROVED (if this fails, the FTM stays APPROVED, "not trusted yet"). Answers whether
    /// a trust change was sent.
    async fn untrust_previous(
        &self,
        caller: &Caller,
        lease: &Lease,
        ftm: &Ftm,
    ) -> Result<bool, FtmError> {
        let Some(previous) = &ftm.certificate_id else {
            return Ok(false);
        };
        if ftm.status != FtmStatus::Approved {
            return Ok(false);
        }
        let untrusted = self
            .upstream
            .set_trusted(caller.user(), previous, &ftm.partner_id, false)
            .await;
        self.store_step(lease, true, untrusted).await?;
        Ok(true)
    }
}

// ---- review

impl FtmService {
    /// `ApproveFtm`: the certificate becomes trusted, then the FTM APPROVED.
    pub(crate) async fn approve(&self, caller: &Caller, target: FtmRef) -> Result<Ftm, FtmError> {
        authorize_admin(caller)?;
        let (ftm, lease) = self
            .begin(caller, &target.ftm_id, Action::Approve, false)
            .await?;
        let Some(certificate_id) = ftm.certificate_id.clone() else {
            self.end_failed(&lease, false).await;
            return Err(FtmError::CertificateMissing);
        };
        // A deactivated (or otherwise unusable) provider's FTMs cannot be approved: its
        // certificates are untrusted, and approving would queue trust for its return.
        if let Err(error) = self.provider(caller, &ftm.partner_id).await {
            self.end_failed(&lease, false).await;
            return Err(error);
        }
        let trusted = self
            .upstream
            .set_trusted(caller.user(), &certificate_id, &ftm.partner_id, true)
            .await;
        self.store_step(&lease, true, trusted).await?;
        let change = FtmChange {
            status: FtmStatus::Approved,
            certificate_id: Some(certificate_id),
            certificate_expiry_time: ftm.certificate_expiry_time,
            reject_reason: None,
        };
        self.finish(caller, &lease, &ftm, Action::Approve, change, true)
            .await
    }

    /// `RejectFtm`: admins only.
    pub(crate) async fn reject(
        &self,
        caller: &Caller,
        rejection: Rejection,
    ) -> Result<Ftm, FtmError> {
        authorize_admin(caller)?;
        self.retire(
            caller,
            &rejection.ftm_id,
            Action::Reject,
            Some(rejection.reason),
        )
        .await
    }

    /// `DeactivateFtm`: the owner or an admin.
    pub(crate) async fn deactivate(
        &self,
        caller: &Caller,
        target: FtmRef,
    ) -> Result<Ftm, FtmError> {
        self.retire(caller, &target.ftm_id, Action::Deactivate, None)
            .await
    }

    /// `RejectFtm` and `DeactivateFtm`: the certificate is made untrusted first, then the
    /// terminal status is written.
    async fn retire(
        &self,
        caller: &Caller,
        ftm_id: &str,
        action: Action,
        reject_reason: Option<String>,
    ) -> Result<Ftm, FtmError> {
        let owner_may_act = action == Action::Deactivate;
        let (ftm, lease) = self.begin(caller, ftm_id, action, owner_may_act).await?;
        let mut trust_touched = false;
        if let Some(certificate_id) = &ftm.certificate_id {
            trust_touched = true;
            let untrusted = self
                .upstream
                .set_trusted(caller.user(), certificate_id, &ftm.partner_id, false)
                .await;
            self.store_step(&lease, true, untrusted).await?;
        }
        let change = FtmChange {
            status: action.target(),
            certificate_id: ftm.certificate_id.clone(),
            certificate_expiry_time: ftm.certificate_expiry_time,
            reject_reason,
        };
        self.finish(caller, &lease, &ftm, action, change, trust_touched)
            .await
    }
}

// ---- query

impl FtmService {
    /// `GetFtm`: the owner or an admin.
    pub(crate) async fn get(&self, caller: &Caller, target: FtmRef) -> Result<Ftm, FtmError> {
        let ftm = self.load(&target.ftm_id).await?;
        authorize_owner(caller, &ftm)?;
        Ok(ftm)
    }

    /// `GetFtmCertificate`: the FTM's current chip certificate, as the store keeps it.
    pub(crate) async fn certificate(
        &self,
        caller: &Caller,
        target: FtmRef,
    ) -> Result<CertificateBundle, FtmError> {
        let ftm = self.get(caller, target).await?;
        let certificate_id = ftm.certificate_id.ok_or(FtmError::CertificateMissing)?;
        self.upstream
            .get_certificate(caller.user(), &certificate_id)
            .await
    }

    /// `ListFtms`: one page, within what the caller may see.
    pub(crate) async fn list(
        &self,
        caller: &Caller,
        search: FtmSearch,
    ) -> Result<FtmListing, FtmError> {
        let (scope, partner_id) = list_scope(caller, search.partner_id)?;
        let filter = FtmFilter {
            partner_id,
            status: search.status.map(|status| status.as_str().to_owned()),
            make: text_filter("make", &search.make)?,
            model: text_filter("model", &search.model)?,
            organization_name: text_filter("organization_name", &search.organization_name)?,
        };
        let ordering = search.ordering;
        // The token is bound to everything that defines the result set and its order.
        let fingerprint = serde_json::to_string(&("ftms-v1", &scope, &filter, &ordering))
            .map_err(|error| FtmError::Internal(error.to_string()))?;
        let after = resume_after(&search.page_token, &fingerprint, ordering)?;
        let query = ListQuery {
            filter,
            ordering,
            after,
            limit: search.limit,
        };
        let page = self.repository.list(&query).await?;
        let next_page_token = match (page.has_more, page.ftms.last()) {
            (true, Some(last)) => {
                pagination::encode_token(&Cursor::after(last, ordering.field), &fingerprint)
            }
            _ => String::new(),
        };
        Ok(FtmListing {
            ftms: page.ftms,
            next_page_token,
            total_size: page.total_size,
        })
    }
}

/// What `caller` may list, as a scope name for the page token and the partner filter:
/// admins (and platform services) everything, others only their own FTMs.
fn list_scope(
    caller: &Caller,
    requested: Option<String>,
) -> Result<(String, Option<String>), FtmError> {
    match caller {
        Caller::User(user) if !user.is_admin() => {
            if requested.is_some_and(|partner_id| partner_id != user.partner_id) {
                return Err(caller.denied().into());
            }
            Ok((
                format!("partner:{}", user.partner_id),
                Some(user.partner_id.clone()),
            ))
        }
        _ => Ok(("all".to_owned(), requested)),
    }
}

/// A substring filter as its search key; `None` when blank.
fn text_filter(field: &'static str, value: &str) -> Result<Option<String>, FtmError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(FtmError::InvalidField {
            field,
            message: format!("{field} must be at most {MAX_FILTER_CHARS} characters"),
        });
    }
    Ok(Some(search_key(value)))
}

/// The position a page token continues after (`None` for the first page); `PMS_PRT_362`
/// for a token of another query or ordering.
fn resume_after(
    token: &str,
    fingerprint: &str,
    ordering: Ordering,
) -> Result<Option<Cursor>, FtmError> {
    let after: Option<Cursor> = pagination::decode_token(token, fingerprint)?;
    if after
        .as_ref()
        .is_some_and(|cursor| !cursor.fits(ordering.field))
    {
        return Err(PageError::InvalidPageToken.into());
    }
    Ok(after)
}
