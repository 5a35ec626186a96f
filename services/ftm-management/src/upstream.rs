//! Calls to the partner registry and the certificate store.
//!
//! Every call carries a deadline, this service's token and the end user's token (for the
//! callee's audit), and runs in a `grpc.client` span whose context is injected as W3C
//! `traceparent`, so a trace shows the hop. Failures come back as the callee's status; the
//! service relays them with their reason (see [`crate::error`]).

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use tonic::transport::Channel;

use pmp_common::auth::{ServiceIdentity, User};
use pmp_common::client::call;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

/// Clients of the two services FTM management depends on.
#[derive(Clone)]
pub struct Upstream {
    registry: PartnerRegistryClient<Channel>,
    store: CertificateStoreClient<Channel>,
    identity: Arc<ServiceIdentity>,
    registry_deadline: Duration,
    store_deadline: Duration,
}

impl Upstream {
    /// Clients over `registry` and `store` channels, authenticating as `identity`.
    pub fn new(
        registry: Channel,
        store: Channel,
        identity: Arc<ServiceIdentity>,
        registry_deadline: Duration,
        store_deadline: Duration,
    ) -> Self {
        Upstream {
            registry: PartnerRegistryClient::new(registry),
            store: CertificateStoreClient::new(store),
            identity,
            registry_deadline,
            store_deadline,
        }
    }

    /// `PartnerRegistry/GetPartner`.
    pub async fn get_partner(
        &self,
        user: Option<&User>,
        partner_id: &str,
    ) -> Result<registry::Partner, Status> {
        let message = registry::GetPartnerRequest {
            partner_id: partner_id.to_owned(),
        };
        call(
            "mosip.pms.partner.v1.PartnerRegistry/GetPartner",
            self.registry.clone(),
            message,
            &self.identity,
            user,
            self.registry_deadline,
            |mut client, request| async move { client.get_partner(request).await },
        )
        .await
    }

    /// `CertificateStore/UploadPartnerCertificate`.
    pub async fn upload_certificate(
        &self,
        user: Option<&User>,
        message: store::UploadPartnerCertificateRequest,
    ) -> Result<store::UploadPartnerCertificateResponse, Status> {
        call(
            "mosip.pms.certstore.v1.CertificateStore/UploadPartnerCertificate",
            self.store.clone(),
            message,
            &self.identity,
            user,
            self.store_deadline,
            |mut client, request| async move { client.upload_partner_certificate(request).await },
        )
        .await
    }

    /// `CertificateStore/SetCertificateTrusted` for a chip certificate of `partner_id`'s FTM
    /// (the store links chip certificates stored before it knew their partner).
    pub async fn set_trusted(
        &self,
        user: Option<&User>,
        certificate_id: &str,
        partner_id: &str,
        trusted: bool,
    ) -> Result<store::SetCertificateTrustedResponse, Status> {
        let message = store::SetCertificateTrustedRequest {
            certificate_id: certificate_id.to_owned(),
            trusted,
            partner_id: partner_id.to_owned(),
        };
        call(
            "mosip.pms.certstore.v1.CertificateStore/SetCertificateTrusted",
            self.store.clone(),
            message,
            &self.identity,
            user,
            self.store_deadline,
            |mut client, request| async move { client.set_certificate_trusted(request).await },
        )
        .await
    }

    /// `CertificateStore/GetPartnerCertificate`.
    pub async fn get_certificate(
        &self,
        user: Option<&User>,
        certificate_id: &str,
    ) -> Result<store::CertificateBundle, Status> {
        let message = store::GetPartnerCertificateRequest {
            certificate_id: certificate_id.to_owned(),
        };
        call(
            "mosip.pms.certstore.v1.CertificateStore/GetPartnerCertificate",
            self.store.clone(),
            message,
            &self.identity,
            user,
            self.store_deadline,
            |mut client, request| async move { client.get_partner_certificate(request).await },
        )
        .await
    }
}
