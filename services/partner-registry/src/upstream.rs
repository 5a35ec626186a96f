//! Calls to the certificate store, the one service the registry depends on.
//!
//! Every call carries a deadline, this service's token and the end user's token (for the
//! store's audit), and runs in a `grpc.client` span whose context is propagated. Failures
//! come back as the store's status; the service relays them with their reason.

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use tonic::transport::Channel;

use pmp_common::auth::{ServiceIdentity, User};
use pmp_common::client::call;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;

use crate::domain::{Partner, PartnerStatus};

/// The certificate store, as the registry calls it.
#[derive(Clone)]
pub struct CertificateStore {
    client: CertificateStoreClient<Channel>,
    identity: Arc<ServiceIdentity>,
    deadline: Duration,
}

impl CertificateStore {
    /// A client over `channel`, authenticating as `identity`, with `deadline` per call.
    pub fn new(channel: Channel, identity: Arc<ServiceIdentity>, deadline: Duration) -> Self {
        CertificateStore {
            client: CertificateStoreClient::new(channel),
            identity,
            deadline,
        }
    }

    /// `UploadPartnerCertificate` of a partner's own certificate: validated against the
    /// partner's registered organisation and stored untrusted.
    pub async fn upload(
        &self,
        user: Option<&User>,
        partner: &Partner,
        certificate_data: String,
        partner_domain: String,
    ) -> Result<store::UploadPartnerCertificateResponse, Status> {
        let message = store::UploadPartnerCertificateRequest {
            owner_id: partner.partner_id.clone(),
            organization_name: partner.organization_name.clone(),
            certificate_data,
            partner_domain,
            owner_type: store::OwnerType::Partner as i32,
            partner_id: partner.partner_id.clone(),
        };
        call(
            "mosip.pms.certstore.v1.CertificateStore/UploadPartnerCertificate",
            self.client.clone(),
            message,
            &self.identity,
            user,
            self.deadline,
            |mut client, request| async move { client.upload_partner_certificate(request).await },
        )
        .await
    }

    /// `GetPartnerCertificate`.
    pub async fn certificate(
        &self,
        user: Option<&User>,
        certificate_id: String,
    ) -> Result<store::CertificateBundle, Status> {
        let message = store::GetPartnerCertificateRequest { certificate_id };
        call(
            "mosip.pms.certstore.v1.CertificateStore/GetPartnerCertificate",
            self.client.clone(),
            message,
            &self.identity,
            user,
            self.deadline,
            |mut client, request| async move { client.get_partner_certificate(request).await },
        )
        .await
    }

    /// `SetCertificateTrusted` of one of `partner_id`'s certificates.
    pub async fn set_trusted(
        &self,
        user: Option<&User>,
        partner_id: &str,
        certificate_id: &str,
        trusted: bool,
    ) -> Result<(), Status> {
        let message = store::SetCertificateTrustedRequest {
            certificate_id: certificate_id.to_owned(),
            trusted,
            partner_id: partner_id.to_owned(),
        };
        call(
            "mosip.pms.certstore.v1.CertificateStore/SetCertificateTrusted",
            self.client.clone(),
            message,
            &self.identity,
            user,
            self.deadline,
            |mut client, request| async move { client.set_certificate_trusted(request).await },
        )
        .await
        .map(|_| ())
    }

    /// `SetPartnerDeactivated`: while deactivated, the partner's certificates and its FTMs'
    /// chip certificates are untrusted in the store.
    pub async fn set_deactivated(
        &self,
        user: Option<&User>,
        partner_id: &str,
        deactivated: bool,
    ) -> Result<(), Status> {
        let message = store::SetPartnerDeactivatedRequest {
            partner_id: partner_id.to_owned(),
            deactivated,
        };
        call(
            "mosip.pms.certstore.v1.CertificateStore/SetPartnerDeactivated",
            self.client.clone(),
            message,
            &self.identity,
            user,
            self.deadline,
            |mut client, request| async move { client.set_partner_deactivated(request).await },
        )
        .await
        .map(|_| ())
    }

    /// Makes the store reflect the partner's record: deactivated exactly when the partner
    /// is, and its current certificate marked trusted. Idempotent; the reconciler's repair.
    /// A partner without a certificate has nothing in the store (no trusted certificate,
    /// no FTMs), so nothing is sent.
    pub async fn apply(&self, user: Option<&User>, partner: &Partner) -> Result<(), Status> {
        let Some(certificate_id) = &partner.certificate_id else {
            return Ok(());
        };
        let deactivated = partner.status == PartnerStatus::Deactivated;
        self.set_deactivated(user, &partner.partner_id, deactivated)
            .await?;
        self.set_trusted(user, &partner.partner_id, certificate_id, true)
            .await
    }
}
