//! The `PartnerRegistry` gRPC service.
//!
//! # Consistency with the certificate store
//!
//! The store holds, for every partner, what the registry's record says: its current
//! certificate marked trusted, any certificate it replaced not, and a deactivation fact
//! exactly while the partner is DEACTIVATED (which untrusts the partner's certificates and
//! its FTMs' chip certificates in one write). Every step that calls the store first takes
//! the partner's *lease* in the local database (a compare-and-set: no live lease), so steps
//! on one partner never interleave, and orders its calls so that a failure anywhere leaves
//! a certificate "not trusted yet", never "trusted but not recorded":
//!
//! * `UploadPartnerCertificate`: store upload (stored untrusted; idempotent for the same
//!   partner and certificate) → untrust the certificate it replaces → local write (record
//!   the certificate, IN_PROGRESS → ACTIVE, audit) → mark the new certificate trusted.
//! * `SetPartnerActive(false)`: store deactivation fact → local write DEACTIVATED.
//! * `SetPartnerActive(true)`: local write ACTIVE (IN_PROGRESS without a certificate) →
//!   remove the deactivation fact and re-mark the current certificate trusted.
//!
//! A failed store call is answered with the store's status (relayed) and the step's lease
//! is left behind as an expired marker when the store may have changed; a retry takes it
//! again and completes the step (every store call is idempotent), and otherwise the
//! reconciler ([`crate::reconcile`]) re-applies the partner's record to the store within
//! `consistency.reconcile_interval_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tonic::{Request, Response, Status};

use pmp_common::auth::{Caller, FTM_MANAGEMENT, ServiceAccess, TokenIssuer, caller};
use pmp_common::pagination;
use pmp_common::security::{self, SecurityEventKind};
use pmp_proto::certstore::v1 as store;
use pmp_proto::partner::v1 as proto;
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistry;

use crate::config::RegistrationSettings;
use crate::convert::status_filter;
use crate::domain::{
    AuditEvent, Partner, PartnerFilter, PartnerStatus, RegistrationInput, check_password_length,
    role_of_partner_type,
};
use crate::error::RegistryError;
use crate::limits::Limits;
use crate::password::PasswordHasher;
use crate::storage::PartnerRepository;
use crate::upstream::CertificateStore;

/// Which platform services may call which RPCs; everything else refuses service callers.
/// FTM management reads providers (`GetPartner`) on its users' behalf.
pub const SERVICE_CALLERS: ServiceAccess = ServiceAccess(&[("GetPartner", &[FTM_MANAGEMENT])]);

/// Everything the registry's RPCs need.
pub struct RegistryService {
    repository: Arc<dyn PartnerRepository>,
    tokens: Arc<TokenIssuer>,
    registration: RegistrationSettings,
    store: CertificateStore,
    lease: Duration,
    lease_wait: Duration,
    hasher: PasswordHasher,
    limits: Arc<Limits>,
    /// The bootstrap admin's user name, which nobody may register.
    admin_username: String,
    /// Hash checked when the user does not exist, so that a failed login takes as long
    /// whether or not the user name is known.
    dummy_hash: String,
}

/// Dependencies of [`RegistryService`].
pub struct RegistryParts {
    pub repository: Arc<dyn PartnerRepository>,
    pub tokens: Arc<TokenIssuer>,
    pub registration: RegistrationSettings,
    pub store: CertificateStore,
    /// How long a step may hold a partner's lease.
    pub lease: Duration,
    /// How long a request waits for another step on the same partner.
    pub lease_wait: Duration,
    pub hasher: PasswordHasher,
    pub limits: Arc<Limits>,
    /// The bootstrap admin's user name (reserved).
    pub admin_username: String,
}

/// A partner's lease, held by the current request.
struct Lease {
    partner_id: String,
    token: String,
}

/// A fresh random lease token.
pub(crate) fn lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `now + duration`, saturating.
pub(crate) fn later(now: chrono::DateTime<Utc>, duration: Duration) -> chrono::DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(now)
}

impl RegistryService {
    /// Builds the service (hashes the timing-equaliser password once).
    pub async fn new(parts: RegistryParts) -> Result<Self, RegistryError> {
        let dummy_hash = parts.hasher.hash(uuid::Uuid::new_v4().to_string()).await?;
        Ok(RegistryService {
            repository: parts.repository,
            tokens: parts.tokens,
            registration: parts.registration,
            store: parts.store,
            lease: parts.lease,
            lease_wait: parts.lease_wait,
            hasher: parts.hasher,
            limits: parts.limits,
            admin_username: parts.admin_username,
            dummy_hash,
        })
    }

    fn audit(
        &self,
        actor: &str,
        action: &str,
        entity_id: &str,
        before: Option<PartnerStatus>,
        after: PartnerStatus,
    ) -> AuditEvent {
        AuditEvent::now(
            actor,
            action,
            entity_id,
            before.map(PartnerStatus::as_str),
            Some(after.as_str()),
        )
    }

    async fn existing_partner(&self, partner_id: &str) -> Result<Partner, RegistryError> {
        self.repository
            .find_partner(partner_id)
            .await?
            .ok_or(RegistryError::PartnerNotFound)
    }

    async fn register(
        &self,
        input: RegistrationInput,
        address: &str,
    ) -> Result<Partner, RegistryError> {
        let registration = input.validate(
            &self.registration.languages,
            &self.registration.default_language,
        )?;
        let now = Instant::now();
        let registrations = &self.limits.registrations_by_address;
        if let Err(retry_after) = registrations.check(address, now) {
            security::record(
                SecurityEventKind::LockedOut,
                &format!("anonymous@{address}"),
            );
            return Err(RegistryError::LockedOut { retry_after });
        }
        registrations.record(address, now);
        if registration
            .partner_id
            .eq_ignore_ascii_case(&self.admin_username)
        {
            return Err(RegistryError::DuplicatePartnerId);
        }
        let partner_type = self
            .repository
            .canonical_partner_type(&registration.partner_type)
            .await?
            .ok_or(RegistryError::UnknownPartnerType)?;
        if self
            .repository
            .find_user(&registration.partner_id)
            .await?
            .is_some()
        {
            return Err(RegistryError::DuplicatePartnerId);
        }
        let password_hash = self.hasher.hash(registration.password.clone()).await?;
        let now = Utc::now();
        let partner = Partner {
            partner_id: registration.partner_id,
            first_name: registration.first_name,
            last_name: registration.last_name,
            organization_name: registration.organization_name,
            partner_type,
            address: registration.address,
            email: registration.email,
            phone: registration.phone,
            lang_code: registration.lang_code,
            status: PartnerStatus::InProgress,
            certificate_id: None,
            create_time: now,
            update_time: now,
        };
        let audit = self.audit(
            &partner.partner_id,
            "PARTNER_REGISTERED",
            &partner.partner_id,
            None,
            partner.status,
        );
        self.repository
            .create_partner(
                &partner,
                &password_hash,
                &roles_of(&partner.partner_type),
                audit,
            )
            .await?;
        tracing::info!(partner_id = %partner.partner_id, partner_type = %partner.partner_type, "partner registered");
        Ok(partner)
    }

    async fn login(
        &self,
        username: String,
        password: String,
        address: &str,
    ) -> Result<proto::LoginResponse, RegistryError> {
        if username.is_empty() || password.is_empty() {
            return Err(RegistryError::InvalidField {
                field: if username.is_empty() {
                    "username"
                } else {
                    "password"
                },
                message: "username and password are required".into(),
            });
        }
        check_password_length(&password)?;
        let limits = &self.limits;
        let now = Instant::now();
        if let Err(retry_after) = limits
            .failures_by_user
            .check(&username, now)
            .and(limits.failures_by_address.check(address, now))
        {
            security::record(SecurityEventKind::LockedOut, &username);
            return Err(RegistryError::LockedOut { retry_after });
        }
        let user = self.repository.find_user(&username).await?;
        let hash = user.as_ref().map_or_else(
            || self.dummy_hash.clone(),
            |user| user.password_hash.clone(),
        );
        let matches = self.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| matches) else {
            limits.failures_by_user.record(&username, now);
            limits.failures_by_address.record(address, now);
            security::record(SecurityEventKind::LoginFailed, &username);
            return Err(RegistryError::InvalidCredentials);
        };
        limits.failures_by_user.clear(&username);
        if let Some(partner) = self.repository.find_partner(&user.username).await?
            && partner.status == PartnerStatus::Deactivated
        {
            return Err(RegistryError::PartnerNotActive);
        }
        let access_token = self
            .tokens
            .issue(&user.username, &user.roles)
            .map_err(|error| RegistryError::Internal(error.to_string()))?;
        Ok(proto::LoginResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: i64::try_from(self.tokens.lifetime().as_secs()).unwrap_or(i64::MAX),
            roles: user.roles,
        })
    }

    async fn upload_certificate(
        &self,
        caller: &Caller,
        request: proto::UploadPartnerCertificateRequest,
    ) -> Result<proto::UploadPartnerCertificateResponse, RegistryError> {
        require_field("partner_id", &request.partner_id)?;
        caller.require_owner_or_admin(&request.partner_id)?;
        require_field("certificate_data", &request.certificate_data)?;
        require_field("partner_domain", &request.partner_domain)?;
        let (partner, lease) = self.begin(&request.partner_id).await?;
        if partner.status == PartnerStatus::Deactivated {
            self.release(&lease).await;
            return Err(RegistryError::PartnerNotActive);
        }
        let uploaded = self
            .store
            .upload(
                caller.user(),
                &partner,
                request.certificate_data,
                request.partner_domain,
            )
            .await;
        let stored = match uploaded {
            Ok(stored) => stored,
            Err(status) => {
                self.release(&lease).await;
                return Err(RegistryError::CertificateStore(status));
            }
        };
        if let Some(previous) = partner
            .certificate_id
            .as_deref()
            .filter(|previous| *previous != stored.certificate_id)
        {
            // The replaced certificate stops being trusted before the new one is recorded.
            let untrusted = self
                .store
                .set_trusted(caller.user(), &partner.partner_id, previous, false)
                .await;
            self.after_store_call(&lease, untrusted).await?;
        }
        let audit = self.audit(
            &caller.actor(),
            "PARTNER_CERTIFICATE_UPLOADED",
            &partner.partner_id,
            Some(partner.status),
            if partner.status == PartnerStatus::InProgress {
                PartnerStatus::Active
            } else {
                partner.status
            },
        );
        let recorded = self
            .repository
            .attach_certificate(
                &partner.partner_id,
                &stored.certificate_id,
                audit,
                &lease.token,
            )
            .await;
        let updated = self.after_local_write(&lease, recorded).await?;
        let trusted = self
            .store
            .set_trusted(
                caller.user(),
                &partner.partner_id,
                &stored.certificate_id,
                true,
            )
            .await;
        self.after_store_call(&lease, trusted).await?;
        self.release(&lease).await;
        tracing::info!(partner_id = %updated.partner_id, certificate_id = %stored.certificate_id, "partner certificate accepted and trusted");
        Ok(proto::UploadPartnerCertificateResponse {
            certificate_id: stored.certificate_id,
            signed_certificate_data: stored.platform_signed_certificate_pem,
            partner: Some(updated.into()),
        })
    }

    async fn certificate(
        &self,
        caller: &Caller,
        partner_id: &str,
    ) -> Result<store::CertificateBundle, RegistryError> {
        require_field("partner_id", partner_id)?;
        caller.require_owner_or_admin(partner_id)?;
        let partner = self.existing_partner(partner_id).await?;
        let certificate_id = partner
            .certificate_id
            .ok_or(RegistryError::CertificateNotFound)?;
        self.store
            .certificate(caller.user(), certificate_id)
            .await
            .map_err(RegistryError::CertificateStore)
    }

    async fn set_active(
        &self,
        caller: &Caller,
        partner_id: &str,
        active: bool,
    ) -> Result<Partner, RegistryError> {
        caller.require_admin()?;
        require_field("partner_id", partner_id)?;
        let (partner, lease) = self.begin(partner_id).await?;
        let target = match (active, &partner.certificate_id) {
            (false, _) => PartnerStatus::Deactivated,
            (true, Some(_)) => PartnerStatus::Active,
            (true, None) => PartnerStatus::InProgress,
        };
        let action = if active {
            "PARTNER_ACTIVATED"
        } else {
            "PARTNER_DEACTIVATED"
        };
        // A partner without a certificate has nothing in the store to (un)trust: it never
        // had a trusted certificate, nor FTMs (only ACTIVE partners create them).
        let in_store = partner.certificate_id.is_some();
        if !active && in_store {
            // Untrusted in the store first: the failure mode is "not trusted yet".
            let deactivated = self
                .store
                .set_deactivated(caller.user(), partner_id, true)
                .await;
            self.after_store_call(&lease, deactivated).await?;
        }
        let audit = self.audit(
            &caller.actor(),
            action,
            partner_id,
            Some(partner.status),
            target,
        );
        let written = self
            .repository
            .set_status(partner_id, target, audit, &lease.token)
            .await;
        let updated = self.after_local_write(&lease, written).await?;
        if active && in_store {
            let restored = self.store.apply(caller.user(), &updated).await;
            self.after_store_call(&lease, restored).await?;
        }
        self.release(&lease).await;
        tracing::info!(
            partner_id,
            status = updated.status.as_str(),
            "partner status set"
        );
        Ok(updated)
    }

    /// Takes the partner's lease, waiting (up to `lease_wait`) while another step holds it;
    /// returns the partner as read under the lease.
    async fn begin(&self, partner_id: &str) -> Result<(Partner, Lease), RegistryError> {
        let give_up = Instant::now() + self.lease_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            self.existing_partner(partner_id).await?;
            let token = lease_token();
            let now = Utc::now();
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
    async fn release(&self, lease: &Lease) {
        if let Err(error) = self
            .repository
            .release_lease(&lease.partner_id, &lease.token)
            .await
        {
            tracing::warn!(partner_id = %lease.partner_id, %error, "could not end the lease; it will expire");
        }
    }

    /// The outcome of a store call that may have changed trust: on failure the lease is
    /// left as an expired marker for the reconciler (and a retry), and the status relayed.
    async fn after_store_call<T>(
        &self,
        lease: &Lease,
        result: Result<T, Status>,
    ) -> Result<T, RegistryError> {
        match result {
            Ok(value) => Ok(value),
            Err(status) => {
                self.abandon(lease).await;
                Err(RegistryError::CertificateStore(status))
            }
        }
    }

    /// The outcome of the step's local write, after store calls: on failure the lease is
    /// left as an expired marker.
    async fn after_local_write(
        &self,
        lease: &Lease,
        result: Result<Partner, RegistryError>,
    ) -> Result<Partner, RegistryError> {
        if result.is_err() {
            self.abandon(lease).await;
        }
        result
    }

    async fn abandon(&self, lease: &Lease) {
        if let Err(error) = self
            .repository
            .abandon_lease(&lease.partner_id, &lease.token, Utc::now())
            .await
        {
            tracing::warn!(partner_id = %lease.partner_id, %error, "could not mark the lease for reconciliation; it will expire");
        }
    }

    async fn list(
        &self,
        caller: &Caller,
        request: proto::ListPartnersRequest,
    ) -> Result<proto::ListPartnersResponse, RegistryError> {
        caller.require_admin()?;
        let page_size = pagination::page_size(request.page_size)?;
        let status = status_filter(request.status)?;
        let partner_type = match request.partner_type.trim() {
            "" => None,
            requested => Some(
                self.repository
                    .canonical_partner_type(requested)
                    .await?
                    .ok_or(RegistryError::UnknownPartnerType)?,
            ),
        };
        let filter = PartnerFilter {
            partner_type,
            status,
        };
        let query = format!(
            "{:?}|{:?}",
            filter.partner_type,
            filter.status.map(PartnerStatus::as_str)
        );
        let after: Option<String> = pagination::decode_token(&request.page_token, &query)?;
        let page = self
            .repository
            .list_partners(&filter, after.as_deref(), page_size)
            .await?;
        let next_page_token = match (page.has_more, page.partners.last()) {
            (true, Some(last)) => pagination::encode_token(&last.partner_id, &query),
            _ => String::new(),
        };
        Ok(proto::ListPartnersResponse {
            partners: page.partners.into_iter().map(Into::into).collect(),
            next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        })
    }
}

/// The caller's IP address, the key of per-address limits.
fn client_address<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |address| address.ip().to_string())
}

/// Roles granted to a self-registered partner. Self-registration never grants
/// `PARTNER_ADMIN`: administrators come from configuration (or the identity provider).
fn roles_of(partner_type: &str) -> Vec<String> {
    let role = role_of_partner_type(partner_type);
    if role == pmp_common::auth::ROLE_PARTNER_ADMIN {
        Vec::new()
    } else {
        vec![role]
    }
}

fn require_field(field: &'static str, value: &str) -> Result<(), RegistryError> {
    if value.trim().is_empty() {
        return Err(RegistryError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    Ok(())
}

#[tonic::async_trait]
impl PartnerRegistry for RegistryService {
    async fn register_partner(
        &self,
        request: Request<proto::RegisterPartnerRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let address = client_address(&request);
        let partner = self.register(request.into_inner().into(), &address).await?;
        Ok(Response::new(partner.into()))
    }

    async fn login(
        &self,
        request: Request<proto::LoginRequest>,
    ) -> Result<Response<proto::LoginResponse>, Status> {
        let address = client_address(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.login(request.username, request.password, &address)
                .await?,
        ))
    }

    async fn get_partner(
        &self,
        request: Request<proto::GetPartnerRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request, "GetPartner").await?;
        let partner_id = request.into_inner().partner_id;
        require_field("partner_id", &partner_id)?;
        caller.require_owner_or_admin(&partner_id)?;
        Ok(Response::new(
            self.existing_partner(&partner_id).await?.into(),
        ))
    }

    async fn list_partners(
        &self,
        request: Request<proto::ListPartnersRequest>,
    ) -> Result<Response<proto::ListPartnersResponse>, Status> {
        let caller = caller(&request, "ListPartners").await?;
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let caller = caller(&request, "UploadPartnerCertificate").await?;
        Ok(Response::new(
            self.upload_certificate(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<proto::GetPartnerCertificateRequest>,
    ) -> Result<Response<store::CertificateBundle>, Status> {
        let caller = caller(&request, "GetPartnerCertificate").await?;
        Ok(Response::new(
            self.certificate(&caller, &request.into_inner().partner_id)
                .await?,
        ))
    }

    async fn set_partner_active(
        &self,
        request: Request<proto::SetPartnerActiveRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request, "SetPartnerActive").await?;
        let request = request.into_inner();
        Ok(Response::new(
            self.set_active(&caller, &request.partner_id, request.active)
                .await?
                .into(),
        ))
    }

    async fn get_token_verification_keys(
        &self,
        _request: Request<proto::GetTokenVerificationKeysRequest>,
    ) -> Result<Response<proto::GetTokenVerificationKeysResponse>, Status> {
        Ok(Response::new(proto::GetTokenVerificationKeysResponse {
            public_keys_pem: self.tokens.public_keys_pem(),
            issuer: self.tokens.issuer().to_owned(),
            audience: self.tokens.audience().to_owned(),
            jwks: self.tokens.jwks(),
        }))
    }
}
