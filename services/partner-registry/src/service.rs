//! The `PartnerRegistry` gRPC service.
//!
//! Cross-service steps and how they stay consistent:
//! * `UploadPartnerCertificate`: the certificate store validates and stores the certificate
//!   first (idempotent for the same partner and certificate), then the registry records the
//!   certificate id and activates the partner in one local transaction. If the local write
//!   fails the certificate is stored but unreferenced; the client's retry gets the same id
//!   back and completes the step.
//! * `SetPartnerActive(false)`: the certificate is made untrusted in the store *before* the
//!   partner is marked deactivated, so a failure in between leaves an untrusted certificate
//!   (safe) and a retry completes. `SetPartnerActive(true)` writes the status first and trusts
//!   the certificate last, so the failure mode is again "not trusted yet".

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use pmp_common::auth::{Caller, ServiceIdentity, TokenIssuer, caller};
use pmp_common::pagination;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1 as proto;
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistry;

use crate::config::RegistrationSettings;
use crate::convert::status_filter;
use crate::domain::{
    AuditEvent, Partner, PartnerFilter, PartnerStatus, RegistrationInput, role_of_partner_type,
};
use crate::error::RegistryError;
use crate::password;
use crate::storage::PartnerRepository;

/// Public half of the token signing key, as published to other services.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    pub public_keys_pem: Vec<String>,
    pub issuer: String,
    pub audience: String,
}

/// Everything the registry's RPCs need.
pub struct RegistryService {
    repository: Arc<dyn PartnerRepository>,
    tokens: Arc<TokenIssuer>,
    token_keys: TokenKeys,
    registration: RegistrationSettings,
    store: CertificateStoreClient<Channel>,
    identity: Arc<ServiceIdentity>,
    store_deadline: Duration,
    /// Hash checked when the user does not exist, so that a failed login takes as long
    /// whether or not the user name is known.
    dummy_hash: String,
}

/// Dependencies of [`RegistryService`].
pub struct RegistryParts {
    pub repository: Arc<dyn PartnerRepository>,
    pub tokens: Arc<TokenIssuer>,
    pub token_keys: TokenKeys,
    pub registration: RegistrationSettings,
    pub store: CertificateStoreClient<Channel>,
    pub identity: Arc<ServiceIdentity>,
    pub store_deadline: Duration,
}

impl RegistryService {
    /// Builds the service (hashes the timing-equaliser password once).
    pub async fn new(parts: RegistryParts) -> Result<Self, RegistryError> {
        let dummy_hash = password::hash(uuid::Uuid::new_v4().to_string()).await?;
        Ok(RegistryService {
            repository: parts.repository,
            tokens: parts.tokens,
            token_keys: parts.token_keys,
            registration: parts.registration,
            store: parts.store,
            identity: parts.identity,
            store_deadline: parts.store_deadline,
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

    async fn register(&self, input: RegistrationInput) -> Result<Partner, RegistryError> {
        let registration = input.validate(
            &self.registration.languages,
            &self.registration.default_language,
        )?;
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
        let password_hash = password::hash(registration.password.clone()).await?;
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
        let user = self.repository.find_user(&username).await?;
        let hash = user.as_ref().map_or_else(
            || self.dummy_hash.clone(),
            |user| user.password_hash.clone(),
        );
        let matches = password::verify(password, hash).await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                tracing::info!("failed login");
                return Err(RegistryError::InvalidCredentials);
            }
        };
        let access_token = self
            .tokens
            .issue(&user.username, &user.roles)
            .map_err(RegistryError::Internal)?;
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
        caller
            .require_owner_or_admin(&request.partner_id)
            .map_err(|_| RegistryError::PermissionDenied)?;
        require_field("certificate_data", &request.certificate_data)?;
        require_field("partner_domain", &request.partner_domain)?;
        let partner = self.existing_partner(&request.partner_id).await?;
        if partner.status == PartnerStatus::Deactivated {
            return Err(RegistryError::PartnerNotActive);
        }
        let message = store::UploadPartnerCertificateRequest {
            owner_id: partner.partner_id.clone(),
            organization_name: partner.organization_name.clone(),
            certificate_data: request.certificate_data,
            partner_domain: request.partner_domain,
            certificate_kind: store::CertificateKind::Partner as i32,
        };
        let stored = self
            .call_store(
                "mosip.pms.certstore.v1.CertificateStore/UploadPartnerCertificate",
                message,
                caller,
                |mut store, request| async move { store.upload_partner_certificate(request).await },
            )
            .await?;
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
        let updated = self
            .repository
            .attach_certificate(&partner.partner_id, &stored.certificate_id, audit)
            .await?;
        tracing::info!(partner_id = %updated.partner_id, certificate_id = %stored.certificate_id, "partner certificate accepted");
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
        caller
            .require_owner_or_admin(partner_id)
            .map_err(|_| RegistryError::PermissionDenied)?;
        let partner = self.existing_partner(partner_id).await?;
        let certificate_id = partner
            .certificate_id
            .ok_or(RegistryError::CertificateNotFound)?;
        let message = store::GetPartnerCertificateRequest { certificate_id };
        self.call_store(
            "mosip.pms.certstore.v1.CertificateStore/GetPartnerCertificate",
            message,
            caller,
            |mut store, request| async move { store.get_partner_certificate(request).await },
        )
        .await
    }

    async fn set_active(
        &self,
        caller: &Caller,
        partner_id: &str,
        active: bool,
    ) -> Result<Partner, RegistryError> {
        caller
            .require_admin()
            .map_err(|_| RegistryError::PermissionDenied)?;
        require_field("partner_id", partner_id)?;
        let partner = self.existing_partner(partner_id).await?;
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
        if !active {
            self.set_trusted(caller, &partner, false).await?;
        }
        let updated = if partner.status == target {
            partner.clone()
        } else {
            let audit = self.audit(
                &caller.actor(),
                action,
                partner_id,
                Some(partner.status),
                target,
            );
            self.repository
                .set_status(partner_id, target, audit)
                .await?
        };
        if active {
            self.set_trusted(caller, &updated, true).await?;
        }
        tracing::info!(
            partner_id,
            status = updated.status.as_str(),
            "partner status set"
        );
        Ok(updated)
    }

    async fn set_trusted(
        &self,
        caller: &Caller,
        partner: &Partner,
        trusted: bool,
    ) -> Result<(), RegistryError> {
        let Some(certificate_id) = partner.certificate_id.clone() else {
            return Ok(());
        };
        let message = store::SetCertificateTrustedRequest {
            certificate_id,
            trusted,
        };
        self.call_store(
            "mosip.pms.certstore.v1.CertificateStore/SetCertificateTrusted",
            message,
            caller,
            |mut store, request| async move { store.set_certificate_trusted(request).await },
        )
        .await?;
        Ok(())
    }

    async fn list(
        &self,
        caller: &Caller,
        request: proto::ListPartnersRequest,
    ) -> Result<proto::ListPartnersResponse, Status> {
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

    /// One call to the certificate store, in a client span, as this service on behalf of
    /// the caller, with the configured deadline.
    async fn call_store<T, R, F, Fut>(
        &self,
        rpc: &'static str,
        message: T,
        caller: &Caller,
        send: F,
    ) -> Result<R, RegistryError>
    where
        F: FnOnce(CertificateStoreClient<Channel>, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<R>, Status>>,
    {
        pmp_common::client::call(
            rpc,
            self.store.clone(),
            message,
            &self.identity,
            caller.user(),
            self.store_deadline,
            send,
        )
        .await
        .map_err(RegistryError::CertificateStore)
    }
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
        let partner = self.register(request.into_inner().into()).await?;
        Ok(Response::new(partner.into()))
    }

    async fn login(
        &self,
        request: Request<proto::LoginRequest>,
    ) -> Result<Response<proto::LoginResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            self.login(request.username, request.password).await?,
        ))
    }

    async fn get_partner(
        &self,
        request: Request<proto::GetPartnerRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request)?;
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
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.upload_certificate(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<proto::GetPartnerCertificateRequest>,
    ) -> Result<Response<store::CertificateBundle>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.certificate(&caller, &request.into_inner().partner_id)
                .await?,
        ))
    }

    async fn set_partner_active(
        &self,
        request: Request<proto::SetPartnerActiveRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request)?;
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
            public_keys_pem: self.token_keys.public_keys_pem.clone(),
            issuer: self.token_keys.issuer.clone(),
            audience: self.token_keys.audience.clone(),
        }))
    }
}
