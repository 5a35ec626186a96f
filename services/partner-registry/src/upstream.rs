//! Calls to the certificate store, the one service the registry depends on.
//!
//! Every call carries a deadline, this service's token and the end user's token (for the
//! store's audit), and runs in a `grpc.client` span whose context is propagated. Failures
//! come back as the store's status; the service relays them with their reason.

use tonic::Status;

use pmp_common::auth::User;
use pmp_common::client::Peer;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;

use crate::domain::{Partner, PartnerStatus};

/// The certificate store, as the registry calls it.
#[derive(Clone)]
pub struct CertificateStore {
    peer: Peer,
}

impl CertificateStore {
    /// The store as `peer` reaches it.
    pub fn new(peer: Peer) -> Self {
        CertificateStore { peer }
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
        self.peer
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

    /// `GetPartnerCertificate`.
    pub async fn certificate(
        &self,
        user: Option<&User>,
        certificate_id: String,
    ) -> Result<store::CertificateBundle, Status> {
        let message = store::GetPartnerCertificateRequest { certificate_id };
        self.peer
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
        self.peer
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
        self.peer
            .call(
                "mosip.pms.certstore.v1.CertificateStore/SetPartnerDeactivated",
                message,
                user,
                |channel, request| async move {
                    CertificateStoreClient::new(channel)
                        .set_partner_deactivated(request)
                        .await
                },
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
