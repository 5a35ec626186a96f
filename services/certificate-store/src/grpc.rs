//! The tonic face of the certificate store: each RPC authenticates its caller, checks the
//! caller may make the request, decodes it (see `convert.rs`), calls the service API
//! and encodes the answer. Nothing else happens here.

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use pmp_common::auth::{Caller, FTM_MANAGEMENT, PARTNER_REGISTRY, ServiceAccess, caller};
use pmp_proto::certstore::v1 as proto;
use pmp_proto::certstore::v1::certificate_store_server::CertificateStore;

use crate::error::StoreError;
use crate::service::{CertificateStoreService, Input};

/// Which platform services may call which RPCs; everything else refuses service callers.
/// Which owner's certificates a service may upload and (un)trust follows from the service
/// (see `service::owner_type_of`), never from a request field.
pub(crate) const SERVICE_CALLERS: ServiceAccess = ServiceAccess(&[
    (
        "UploadPartnerCertificate",
        &[PARTNER_REGISTRY, FTM_MANAGEMENT],
    ),
    ("GetPartnerCertificate", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
    ("SetCertificateTrusted", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
    ("SetPartnerDeactivated", &[PARTNER_REGISTRY]),
    (
        "VerifyCertificateTrust",
        &[PARTNER_REGISTRY, FTM_MANAGEMENT],
    ),
    ("WatchTrustChanges", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
    ("GetCrl", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
]);

/// The `CertificateStore` gRPC server. It only translates between the wire and the service
/// API, which holds every rule of the store and knows nothing of tonic.
pub struct StoreGrpc {
    api: CertificateStoreService,
}

impl StoreGrpc {
    pub(crate) fn new(api: CertificateStoreService) -> Self {
        StoreGrpc { api }
    }
}

/// The caller of `rpc` and its decoded request. The caller's access is checked before the
/// request is decoded, so that a caller without the right is refused whatever it sent.
async fn accept<P, I>(request: Request<P>, rpc: &str) -> Result<(Caller, I), Status>
where
    I: Input + TryFrom<P, Error = StoreError>,
{
    let caller = caller(&request, rpc).await?;
    I::ACCESS.check(&caller)?;
    Ok((caller, I::try_from(request.into_inner())?))
}

/// The wire form of a trust feed: the service's messages, converted as they are sent.
pub type TrustChangeStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<proto::TrustChange, Status>> + Send + 'static>,
>;

#[tonic::async_trait]
impl CertificateStore for StoreGrpc {
    type WatchTrustChangesStream = TrustChangeStream;

    async fn watch_trust_changes(
        &self,
        request: Request<proto::WatchTrustChangesRequest>,
    ) -> Result<Response<TrustChangeStream>, Status> {
        let (caller, input) = accept(request, "WatchTrustChanges").await?;
        let receiver = self.api.watch_trust(&caller, input)?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver).map(|message| {
            message
                .map(crate::convert::feed_message)
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn revoke_certificate(
        &self,
        request: Request<proto::RevokeCertificateRequest>,
    ) -> Result<Response<proto::RevokeCertificateResponse>, Status> {
        let (caller, input) = accept(request, "RevokeCertificate").await?;
        Ok(Response::new(self.api.revoke(&caller, input).await?.into()))
    }

    async fn get_crl(
        &self,
        request: Request<proto::GetCrlRequest>,
    ) -> Result<Response<proto::GetCrlResponse>, Status> {
        let (caller, input) = accept(request, "GetCrl").await?;
        Ok(Response::new(self.api.crl(&caller, input).await?.into()))
    }

    async fn list_expiring_certificates(
        &self,
        request: Request<proto::ListExpiringCertificatesRequest>,
    ) -> Result<Response<proto::ListExpiringCertificatesResponse>, Status> {
        let (caller, input) = accept(request, "ListExpiringCertificates").await?;
        Ok(Response::new(
            self.api.list_expiring(&caller, input).await?.into(),
        ))
    }

    async fn upload_ca_certificate(
        &self,
        request: Request<proto::UploadCaCertificateRequest>,
    ) -> Result<Response<proto::UploadCaCertificateResponse>, Status> {
        let (caller, input) = accept(request, "UploadCaCertificate").await?;
        Ok(Response::new(
            self.api.upload_ca(&caller, input).await?.into(),
        ))
    }

    async fn list_ca_certificates(
        &self,
        request: Request<proto::ListCaCertificatesRequest>,
    ) -> Result<Response<proto::ListCaCertificatesResponse>, Status> {
        let (caller, input) = accept(request, "ListCaCertificates").await?;
        Ok(Response::new(
            self.api.list_ca(&caller, input).await?.into(),
        ))
    }

    async fn get_ca_certificate(
        &self,
        request: Request<proto::GetCaCertificateRequest>,
    ) -> Result<Response<proto::CaCertificate>, Status> {
        let (caller, input) = accept(request, "GetCaCertificate").await?;
        Ok(Response::new(
            self.api.find_ca(&caller, &input).await?.into(),
        ))
    }

    async fn get_ca_trust_path(
        &self,
        request: Request<proto::GetCaTrustPathRequest>,
    ) -> Result<Response<proto::TrustPath>, Status> {
        let (caller, input) = accept(request, "GetCaTrustPath").await?;
        Ok(Response::new(
            self.api.trust_path(&caller, input).await?.into(),
        ))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let (caller, input) = accept(request, "UploadPartnerCertificate").await?;
        Ok(Response::new(
            self.api.upload_partner(&caller, input).await?.into(),
        ))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<proto::GetPartnerCertificateRequest>,
    ) -> Result<Response<proto::CertificateBundle>, Status> {
        let (caller, input) = accept(request, "GetPartnerCertificate").await?;
        Ok(Response::new(
            self.api.partner_certificate(&caller, input).await?.into(),
        ))
    }

    async fn set_certificate_trusted(
        &self,
        request: Request<proto::SetCertificateTrustedRequest>,
    ) -> Result<Response<proto::SetCertificateTrustedResponse>, Status> {
        let (caller, input) = accept(request, "SetCertificateTrusted").await?;
        Ok(Response::new(
            self.api.set_trusted(&caller, input).await?.into(),
        ))
    }

    async fn set_partner_deactivated(
        &self,
        request: Request<proto::SetPartnerDeactivatedRequest>,
    ) -> Result<Response<proto::SetPartnerDeactivatedResponse>, Status> {
        let (caller, input) = accept(request, "SetPartnerDeactivated").await?;
        Ok(Response::new(
            self.api
                .set_partner_deactivated(&caller, input)
                .await?
                .into(),
        ))
    }

    async fn verify_certificate_trust(
        &self,
        request: Request<proto::VerifyCertificateTrustRequest>,
    ) -> Result<Response<proto::VerifyCertificateTrustResponse>, Status> {
        let (caller, input) = accept(request, "VerifyCertificateTrust").await?;
        let verdict = self.api.verify(&caller, input).await?;
        Ok(Response::new(crate::convert::verify_response(&verdict)))
    }

    async fn add_platform_signing_key(
        &self,
        request: Request<proto::AddPlatformSigningKeyRequest>,
    ) -> Result<Response<proto::PlatformSigningKey>, Status> {
        let (caller, input) = accept(request, "AddPlatformSigningKey").await?;
        let added = self.api.platform_keys().add(&caller, input).await?;
        Ok(Response::new(added.into()))
    }

    async fn activate_platform_signing_key(
        &self,
        request: Request<proto::ActivatePlatformSigningKeyRequest>,
    ) -> Result<Response<proto::PlatformSigningKey>, Status> {
        let (caller, input) = accept(request, "ActivatePlatformSigningKey").await?;
        let activated = self.api.platform_keys().activate(&caller, input).await?;
        Ok(Response::new(activated.into()))
    }

    async fn list_platform_signing_keys(
        &self,
        request: Request<proto::ListPlatformSigningKeysRequest>,
    ) -> Result<Response<proto::ListPlatformSigningKeysResponse>, Status> {
        let (caller, input) = accept(request, "ListPlatformSigningKeys").await?;
        let published = self.api.platform_keys().list(&caller, input).await?;
        Ok(Response::new(published.into()))
    }
}
