//! The `PartnerRegistry` gRPC service: a thin adapter over the service API. Each RPC
//! authenticates the caller (`RegisterPartner`, `Login` and `GetTokenVerificationKeys`
//! need none), decodes the request (`convert.rs`), calls the service and encodes its
//! answer. What only the raw request knows (the client address) is read
//! here and passed on as a plain value.

use tonic::{Request, Response, Status};

use pmp_common::auth::{CERTIFICATE_STORE, FTM_MANAGEMENT, ServiceAccess, caller};
use pmp_common::event_feed;
use pmp_proto::certstore::v1 as store;
use pmp_proto::partner::v1 as proto;
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistry;

use crate::domain::RegistrationInput;
use crate::service::{
    Activation, CertificateUpload, Credentials, EventWatch, PartnerLookup, PartnerQuery,
    RegistryService, TokenKeys,
};

/// Which platform services may call which RPCs; everything else refuses service callers.
/// FTM management reads providers (`GetPartner`) on its users' behalf; the platform
/// services may follow partner changes (`WatchPartnerEvents`).
pub const SERVICE_CALLERS: ServiceAccess = ServiceAccess(&[
    ("GetPartner", &[FTM_MANAGEMENT]),
    ("WatchPartnerEvents", &[FTM_MANAGEMENT, CERTIFICATE_STORE]),
]);

/// The registry's RPCs, served by [`crate::PartnerRegistry`].
pub struct RegistryGrpc {
    api: RegistryService,
    token_keys: std::sync::Arc<TokenKeys>,
}

impl RegistryGrpc {
    pub(crate) fn new(api: RegistryService, token_keys: std::sync::Arc<TokenKeys>) -> Self {
        RegistryGrpc { api, token_keys }
    }
}

/// The caller's IP address, the key of per-address limits.
fn client_address<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |address| address.ip().to_string())
}

#[tonic::async_trait]
impl PartnerRegistry for RegistryGrpc {
    type WatchPartnerEventsStream =
        futures::stream::BoxStream<'static, Result<proto::PartnerEvent, Status>>;

    async fn register_partner(
        &self,
        request: Request<proto::RegisterPartnerRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let address = client_address(&request);
        let input = RegistrationInput::from(request.into_inner());
        let partner = self.api.register(input, &address).await?;
        Ok(Response::new(partner.into()))
    }

    async fn login(
        &self,
        request: Request<proto::LoginRequest>,
    ) -> Result<Response<proto::LoginResponse>, Status> {
        let address = client_address(&request);
        let credentials = Credentials::try_from(request.into_inner())?;
        let token = self.api.login(credentials, &address).await?;
        Ok(Response::new(token.into()))
    }

    async fn get_partner(
        &self,
        request: Request<proto::GetPartnerRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request, "GetPartner").await?;
        let lookup = PartnerLookup::try_from(request.into_inner())?;
        let partner = self.api.partner(&caller, lookup).await?;
        Ok(Response::new(partner.into()))
    }

    async fn list_partners(
        &self,
        request: Request<proto::ListPartnersRequest>,
    ) -> Result<Response<proto::ListPartnersResponse>, Status> {
        let caller = caller(&request, "ListPartners").await?;
        let query = PartnerQuery::from(request.into_inner());
        let list = self.api.list(&caller, query).await?;
        Ok(Response::new(list.into()))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let caller = caller(&request, "UploadPartnerCertificate").await?;
        let upload = CertificateUpload::try_from(request.into_inner())?;
        let uploaded = self.api.upload_certificate(&caller, upload).await?;
        Ok(Response::new(uploaded.into()))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<proto::GetPartnerCertificateRequest>,
    ) -> Result<Response<store::CertificateBundle>, Status> {
        let caller = caller(&request, "GetPartnerCertificate").await?;
        let lookup = PartnerLookup::try_from(request.into_inner())?;
        let bundle = self.api.certificate(&caller, lookup).await?;
        Ok(Response::new(bundle))
    }

    async fn set_partner_active(
        &self,
        request: Request<proto::SetPartnerActiveRequest>,
    ) -> Result<Response<proto::Partner>, Status> {
        let caller = caller(&request, "SetPartnerActive").await?;
        let change = Activation::from(request.into_inner());
        let partner = self.api.set_active(&caller, change).await?;
        Ok(Response::new(partner.into()))
    }

    async fn get_token_verification_keys(
        &self,
        _request: Request<proto::GetTokenVerificationKeysRequest>,
    ) -> Result<Response<proto::GetTokenVerificationKeysResponse>, Status> {
        Ok(Response::new(self.api.verification_keys().into()))
    }

    async fn add_token_signing_key(
        &self,
        request: Request<proto::AddTokenSigningKeyRequest>,
    ) -> Result<Response<proto::TokenSigningKey>, Status> {
        let caller = caller(&request, "AddTokenSigningKey").await?;
        caller
            .require_admin()
            .map_err(crate::error::RegistryError::from)?;
        let location = crate::convert::key_location(request.into_inner())?;
        let added = self.token_keys.add(&caller, location).await?;
        Ok(Response::new(crate::convert::token_key(
            added,
            self.token_keys.lifetime(),
        )))
    }

    async fn activate_token_signing_key(
        &self,
        request: Request<proto::ActivateTokenSigningKeyRequest>,
    ) -> Result<Response<proto::TokenSigningKey>, Status> {
        let caller = caller(&request, "ActivateTokenSigningKey").await?;
        let key_id = request.into_inner().key_id;
        let activated = self.token_keys.activate(&caller, &key_id).await?;
        Ok(Response::new(crate::convert::token_key(
            activated,
            self.token_keys.lifetime(),
        )))
    }

    async fn list_token_signing_keys(
        &self,
        request: Request<proto::ListTokenSigningKeysRequest>,
    ) -> Result<Response<proto::ListTokenSigningKeysResponse>, Status> {
        let caller = caller(&request, "ListTokenSigningKeys").await?;
        let lifetime = self.token_keys.lifetime();
        let keys = self.token_keys.list(&caller).await?;
        Ok(Response::new(proto::ListTokenSigningKeysResponse {
            keys: keys
                .into_iter()
                .map(|key| crate::convert::token_key(key, lifetime))
                .collect(),
        }))
    }

    async fn watch_partner_events(
        &self,
        request: Request<proto::WatchPartnerEventsRequest>,
    ) -> Result<Response<Self::WatchPartnerEventsStream>, Status> {
        let caller = caller(&request, "WatchPartnerEvents").await?;
        let watch = EventWatch::try_from(request.into_inner())?;
        let events = self.api.watch_events(&caller, watch)?;
        Ok(Response::new(event_feed::response_stream(
            events,
            crate::convert::partner_event,
        )))
    }
}
