//! Calls to the partner registry and the certificate store.
//!
//! The generated clients run over [`PeerChannel`], which gives every call a deadline, this
//! service's token, the end user's token (for the callee's audit), a `grpc.client` span
//! propagated as W3C `traceparent`, and retries. Failures come back as the callee's status,
//! wrapped as [`FtmError::Registry`] or [`FtmError::CertificateStore`] so the service relays
//! them with their reason (see [`crate::error`]). Answers are reduced to the few domain
//! values the service needs, so the protobuf messages of the two services stay here.

use chrono::{DateTime, Utc};
use tonic::{Code, Response};

use pmp_common::auth::User;
use pmp_common::client::{self, PeerChannel};
use pmp_common::time::from_timestamp;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use crate::domain::{FTM_DOMAIN, Ftm};
use crate::error::FtmError;

/// Clients of the two services FTM management depends on.
#[derive(Clone)]
pub struct Upstream {
    registry: PartnerRegistryClient<PeerChannel>,
    store: CertificateStoreClient<PeerChannel>,
}

/// What FTM management needs of a registry partner: whether it may own FTMs, and the
/// organisation name its FTMs and chip certificates carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provider {
    pub(crate) organization_name: String,
    /// Canonical partner type code, e.g. `FTM_Provider`.
    pub(crate) partner_type: String,
    /// Whether the partner is ACTIVE (neither still in progress nor deactivated).
    pub(crate) active: bool,
}

impl From<registry::Partner> for Provider {
    fn from(partner: registry::Partner) -> Self {
        Provider {
            active: partner.status == registry::PartnerStatus::Active as i32,
            organization_name: partner.organization_name,
            partner_type: partner.partner_type,
        }
    }
}

/// A chip certificate the store accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredCertificate {
    /// Empty only if the store misbehaves.
    pub(crate) certificate_id: String,
    pub(crate) not_after: Option<DateTime<Utc>>,
}

/// Both forms of a stored chip certificate, as the store keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateBundle {
    pub(crate) certificate_id: String,
    /// As uploaded, signed by the provider's CA.
    pub(crate) ca_signed_certificate_pem: String,
    /// The copy re-signed by the platform signing certificate.
    pub(crate) platform_signed_certificate_pem: String,
    pub(crate) not_before: Option<DateTime<Utc>>,
    pub(crate) not_after: Option<DateTime<Utc>>,
    pub(crate) expired: bool,
}

impl From<store::CertificateBundle> for CertificateBundle {
    fn from(bundle: store::CertificateBundle) -> Self {
        CertificateBundle {
            certificate_id: bundle.certificate_id,
            ca_signed_certificate_pem: bundle.ca_signed_certificate_pem,
            platform_signed_certificate_pem: bundle.platform_signed_certificate_pem,
            not_before: bundle.not_before.as_ref().and_then(from_timestamp),
            not_after: bundle.not_after.as_ref().and_then(from_timestamp),
            expired: bundle.expired,
        }
    }
}

impl Upstream {
    /// The registry and the store as `registry` and `store` reach them.
    pub fn new(registry: PeerChannel, store: PeerChannel) -> Self {
        Upstream {
            registry: PartnerRegistryClient::new(registry),
            store: CertificateStoreClient::new(store),
        }
    }

    /// `PartnerRegistry/GetPartner`; `None` when the registry does not know the partner.
    pub(crate) async fn get_partner(
        &self,
        user: Option<&User>,
        partner_id: &str,
    ) -> Result<Option<Provider>, FtmError> {
        let message = registry::GetPartnerRequest {
            partner_id: partner_id.to_owned(),
        };
        match self
            .registry
            .clone()
            .get_partner(client::request(message, user))
            .await
        {
            Ok(response) => Ok(Some(response.into_inner().into())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(FtmError::Registry(status)),
        }
    }

    /// `CertificateStore/UploadPartnerCertificate` of `ftm`'s chip certificate: domain FTM,
    /// the FTM as owner (the store answers the same certificate id for the same owner,
    /// certificate and domain, so a retry reuses it) and its provider as partner.
    pub(crate) async fn upload_chip_certificate(
        &self,
        user: Option<&User>,
        ftm: &Ftm,
        organization_name: String,
        certificate_data: String,
    ) -> Result<StoredCertificate, FtmError> {
        let message = store::UploadPartnerCertificateRequest {
            owner_id: ftm.ftm_id.clone(),
            organization_name,
            certificate_data,
            partner_domain: FTM_DOMAIN.to_owned(),
            // The store keeps the chip certificate untrusted until ApproveFtm marks it, and
            // untrusts it whenever the provider partner is deactivated.
            owner_type: store::OwnerType::Ftm as i32,
            partner_id: ftm.partner_id.clone(),
        };
        let stored = self
            .store
            .clone()
            .upload_partner_certificate(client::request(message, user))
            .await
            .map_err(FtmError::CertificateStore)?
            .into_inner();
        Ok(StoredCertificate {
            certificate_id: stored.certificate_id,
            not_after: stored.not_after.as_ref().and_then(from_timestamp),
        })
    }

    /// `CertificateStore/SetCertificateTrusted` for a chip certificate of `partner_id`'s FTM
    /// (the store links chip certificates stored before it knew their partner).
    pub(crate) async fn set_trusted(
        &self,
        user: Option<&User>,
        certificate_id: &str,
        partner_id: &str,
        trusted: bool,
    ) -> Result<(), FtmError> {
        let message = store::SetCertificateTrustedRequest {
            certificate_id: certificate_id.to_owned(),
            trusted,
            partner_id: partner_id.to_owned(),
        };
        self.store
            .clone()
            .set_certificate_trusted(client::request(message, user))
            .await
            .map(drop)
            .map_err(FtmError::CertificateStore)
    }

    /// `CertificateStore/GetPartnerCertificate`.
    pub(crate) async fn get_certificate(
        &self,
        user: Option<&User>,
        certificate_id: &str,
    ) -> Result<CertificateBundle, FtmError> {
        let message = store::GetPartnerCertificateRequest {
            certificate_id: certificate_id.to_owned(),
        };
        self.store
            .clone()
            .get_partner_certificate(client::request(message, user))
            .await
            .map(|response| Response::into_inner(response).into())
            .map_err(FtmError::CertificateStore)
    }
}
