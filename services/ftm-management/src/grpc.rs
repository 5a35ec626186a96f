//! The `FtmManagement` gRPC service: a thin adapter over [`FtmService`]. Each RPC
//! authenticates the caller, decodes the request into its domain input (see
//! [`crate::convert`]), runs the use case and encodes its answer; failures become statuses
//! through [`FtmError`](crate::error::FtmError).

use tonic::{Request, Response, Status};

use pmp_common::auth::{CERTIFICATE_STORE, PARTNER_REGISTRY, ServiceAccess, caller};
use pmp_common::event_feed;
use pmp_proto::certstore::v1 as store;
use pmp_proto::ftm::v1 as proto;
use pmp_proto::ftm::v1::ftm_management_server::FtmManagement;

use crate::domain::{CertificateUpload, EventWatch, FtmRef, FtmSearch, NewFtm, Rejection};
use crate::service::FtmService;

/// Which platform services may call which RPCs: the platform services may follow FTM
/// changes (`WatchFtmEvents`); every other RPC here is for end users.
pub(crate) const SERVICE_CALLERS: ServiceAccess =
    ServiceAccess(&[("WatchFtmEvents", &[PARTNER_REGISTRY, CERTIFICATE_STORE])]);

/// The FTM management service as the tonic server serves it.
pub struct FtmGrpc {
    api: FtmService,
}

impl FtmGrpc {
    /// Serves `api`.
    pub(crate) fn new(api: FtmService) -> Self {
        FtmGrpc { api }
    }
}

#[tonic::async_trait]
impl FtmManagement for FtmGrpc {
    type WatchFtmEventsStream =
        futures::stream::BoxStream<'static, Result<proto::FtmEvent, Status>>;

    async fn create_ftm(
        &self,
        request: Request<proto::CreateFtmRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "CreateFtm").await?;
        let input = NewFtm::try_from(request.into_inner())?;
        let ftm = self.api.create(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn upload_ftm_certificate(
        &self,
        request: Request<proto::UploadFtmCertificateRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "UploadFtmCertificate").await?;
        let input = CertificateUpload::try_from(request.into_inner())?;
        let ftm = self.api.upload(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn approve_ftm(
        &self,
        request: Request<proto::ApproveFtmRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "ApproveFtm").await?;
        let input = FtmRef::try_from(request.into_inner())?;
        let ftm = self.api.approve(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn reject_ftm(
        &self,
        request: Request<proto::RejectFtmRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "RejectFtm").await?;
        let input = Rejection::try_from(request.into_inner())?;
        let ftm = self.api.reject(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn deactivate_ftm(
        &self,
        request: Request<proto::DeactivateFtmRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "DeactivateFtm").await?;
        let input = FtmRef::try_from(request.into_inner())?;
        let ftm = self.api.deactivate(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn get_ftm(
        &self,
        request: Request<proto::GetFtmRequest>,
    ) -> Result<Response<proto::Ftm>, Status> {
        let caller = caller(&request, "GetFtm").await?;
        let input = FtmRef::try_from(request.into_inner())?;
        let ftm = self.api.get(&caller, input).await?;
        Ok(Response::new(ftm.into()))
    }

    async fn list_ftms(
        &self,
        request: Request<proto::ListFtmsRequest>,
    ) -> Result<Response<proto::ListFtmsResponse>, Status> {
        let caller = caller(&request, "ListFtms").await?;
        let input = FtmSearch::try_from(request.into_inner())?;
        let listing = self.api.list(&caller, input).await?;
        Ok(Response::new(listing.into()))
    }

    async fn get_ftm_certificate(
        &self,
        request: Request<proto::GetFtmCertificateRequest>,
    ) -> Result<Response<store::CertificateBundle>, Status> {
        let caller = caller(&request, "GetFtmCertificate").await?;
        let input = FtmRef::try_from(request.into_inner())?;
        let bundle = self.api.certificate(&caller, input).await?;
        Ok(Response::new(bundle.into()))
    }

    async fn watch_ftm_events(
        &self,
        request: Request<proto::WatchFtmEventsRequest>,
    ) -> Result<Response<Self::WatchFtmEventsStream>, Status> {
        let caller = caller(&request, "WatchFtmEvents").await?;
        let watch = EventWatch::try_from(request.into_inner())?;
        let events = self.api.watch_events(&caller, watch)?;
        Ok(Response::new(event_feed::response_stream(
            events,
            crate::convert::ftm_event,
        )))
    }
}
