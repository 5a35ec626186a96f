//! Calls to the certificate store, the one service the registry depends on.
//!
//! The generated client runs over [`PeerChannel`] (identity, forwarded user, deadline,
//! trace propagation, retries). Failures come back as [`RegistryError::CertificateStore`]
//! holding the store's status, which the service relays with its reason.

use tonic::Response;

use pmp_common::auth::User;
use pmp_common::client::{self, PeerChannel};
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;

use crate::domain::{Partner, PartnerStatus};
use crate::error::RegistryError;

/// A stored certificate as the store describes it: `GetPartnerCertificate` relays it as is.
pub use store::CertificateBundle;

/// A partner certificate the store validated and keeps (untrusted until marked trusted).
#[derive(Debug, Clone)]
pub struct StoredCertificate {
    /// The store's id of the certificate, recorded on the partner once accepted.
    pub certificate_id: String,
    /// The certificate as re-signed by the platform.
    pub platform_signed_certificate_pem: String,
}

/// The certificate store, as the registry calls it.
#[derive(Clone)]
pub struct CertificateStore {
    client: CertificateStoreClient<PeerChannel>,
}

impl CertificateStore {
    /// The store as `channel` reaches it.
    pub fn new(channel: PeerChannel) -> Self {
        CertificateStore {
            client: CertificateStoreClient::new(channel),
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
    ) -> Result<StoredCertificate, RegistryError> {
        let message = store::UploadPartnerCertificateRequest {
            owner_id: partner.partner_id.clone(),
            organization_name: partner.organization_name.clone(),
            certificate_data,
            partner_domain,
            owner_type: store::OwnerType::Partner as i32,
            partner_id: partner.partner_id.clone(),
        };
        self.client
            .clone()
            .upload_partner_certificate(client::request(message, user))
            .await
            .map(|response| {
                let response = response.into_inner();
                StoredCertificate {
                    certificate_id: response.certificate_id,
                    platform_signed_certificate_pem: response.platform_signed_certificate_pem,
                }
            })
            .map_err(RegistryError::CertificateStore)
    }

    /// `GetPartnerCertificate`.
    pub async fn certificate(
        &self,
        user: Option<&User>,
        certificate_id: String,
    ) -> Result<CertificateBundle, RegistryError> {
        let message = store::GetPartnerCertificateRequest { certificate_id };
        self.client
            .clone()
            .get_partner_certificate(client::request(message, user))
            .await
            .map(Response::into_inner)
            .map_err(RegistryError::CertificateStore)
    }

    /// `SetCertificateTrusted` of one of `partner_id`'s certificates.
    pub async fn set_trusted(
        &self,
        user: Option<&User>,
        partner_id: &str,
        certificate_id: &str,
        trusted: bool,
    ) -> Result<(), RegistryError> {
        let message = store::SetCertificateTrustedRequest {
            certificate_id: certificate_id.to_owned(),
            trusted,
            partner_id: partner_id.to_owned(),
        };
        self.client
            .clone()
            .set_certificate_trusted(client::request(message, user))
            .await
            .map(Response::into_inner)
            .map(|_| ())
            .map_err(RegistryError::CertificateStore)
    }

    /// `SetPartnerDeactivated`: while deactivated, the partner's certificates and its FTMs'
    /// chip certificates are untrusted in the store.
    pub async fn set_deactivated(
        &self,
        user: Option<&User>,
        partner_id: &str,
        deactivated: bool,
    ) -> Result<(), RegistryError> {
        let message = store::SetPartnerDeactivatedRequest {
            partner_id: partner_id.to_owned(),
            deactivated,
        };
        self.client
            .clone()
            .set_partner_deactivated(client::request(message, user))
            .await
            .map(Response::into_inner)
            .map(|_| ())
            .map_err(RegistryError::CertificateStore)
    }

    /// Makes the store reflect the partner's record: deactivated exactly when the partner
    /// is, and its current certificate marked trusted. Idempotent; the reconciler's repair.
    /// A partner without a certificate has nothing in the store (no trusted certificate,
    /// no FTMs), so nothing is sent.
    pub async fn apply(&self, user: Option<&User>, partner: &Partner) -> Result<(), RegistryError> {
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
