//! Calls to the partner registry and the certificate store.
//!
//! Every call carries a deadline, this service's token and the end user's token (for the
//! callee's audit), and runs in a `grpc.client` span whose context is injected as W3C
//! `traceparent`, so a trace shows the hop. Failures come back as the callee's status; the
//! service relays them with their reason (see [`crate::error`]).

use tonic::Status;

use pmp_common::auth::User;
use pmp_common::client::Peer;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

/// Clients of the two services FTM management depends on.
#[derive(Clone)]
pub struct Upstream {
    registry: Peer,
    store: Peer,
}

impl Upstream {
    /// The registry and the store as `registry` and `store` reach them.
    pub fn new(registry: Peer, store: Peer) -> Self {
        Upstream { registry, store }
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
        self.registry
            .call(
                "mosip.pms.partner.v1.PartnerRegistry/GetPartner",
                message,
                user,
                |channel, request| async move {
                    PartnerRegistryClient::new(channel)
                        .get_partner(request)
                        .await
                },
            )
            .await
    }

    /// `CertificateStore/UploadPartnerCertificate`.
    pub async fn upload_certificate(
        &self,
        user: Option<&User>,
        message: store::UploadPartnerCertificateRequest,
    ) -> Result<store::UploadPartnerCertificateResponse, Status> {
        self.store
            .call(
                "mosip.pms.certstore.v1.CertificateStore/UploadPartnerCertificate",
                message,
                user,
                |channel, request| async move {
                    CertificateStoreClient::new(channel)
                        .upload_partner_certificate(request)
                        .await
                },
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
        self.store
            .call(
                "mosip.pms.certstore.v1.CertificateStore/SetCertificateTrusted",
                message,
                user,
                |channel, request| async move {
                    CertificateStoreClient::new(channel)
                        .set_certificate_trusted(request)
                        .await
                },
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
        self.store
            .call(
                "mosip.pms.certstore.v1.CertificateStore/GetPartnerCertificate",
                message,
                user,
                |channel, request| async move {
                    CertificateStoreClient::new(channel)
                        .get_partner_certificate(request)
                        .await
                },
            )
            .await
    }
}
