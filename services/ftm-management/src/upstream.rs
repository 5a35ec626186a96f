//! Calls to the partner registry and the certificate store.
//!
//! The generated clients run over [`PeerChannel`], which gives every call a deadline, this
//! service's token, the end user's token (for the callee's audit), a `grpc.client` span
//! propagated as W3C `traceparent`, and retries. Failures come back as the callee's status;
//! the service relays them with their reason (see [`crate::error`]).

use tonic::{Response, Status};

use pmp_common::auth::User;
use pmp_common::client::{self, PeerChannel};
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

/// Clients of the two services FTM management depends on.
#[derive(Clone)]
pub struct Upstream {
    registry: PartnerRegistryClient<PeerChannel>,
    store: CertificateStoreClient<PeerChannel>,
}

impl Upstream {
    /// The registry and the store as `registry` and `store` reach them.
    pub fn new(registry: PeerChannel, store: PeerChannel) -> Self {
        Upstream {
            registry: PartnerRegistryClient::new(registry),
            store: CertificateStoreClient::new(store),
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
        self.registry
            .clone()
            .get_partner(client::request(message, user))
            .await
            .map(Response::into_inner)
    }

    /// `CertificateStore/UploadPartnerCertificate`.
    pub async fn upload_certificate(
        &self,
        user: Option<&User>,
        message: store::UploadPartnerCertificateRequest,
    ) -> Result<store::UploadPartnerCertificateResponse, Status> {
        self.store
            .clone()
            .upload_partner_certificate(client::request(message, user))
            .await
            .map(Response::into_inner)
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
            .clone()
            .set_certificate_trusted(client::request(message, user))
            .await
            .map(Response::into_inner)
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
            .clone()
            .get_partner_certificate(client::request(message, user))
            .await
            .map(Response::into_inner)
    }
}
