//! Workflow steps shared by the end-to-end tests.
#![allow(dead_code)]

use tonic::transport::Channel;

use pmp_common::testing::with_token;
use pmp_dev_certs::{CertificateSpec, Issued, KeySpec};
use pmp_e2e::{ADMIN_PASSWORD, Platform};
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as partner;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

pub const ORG: &str = "ACME Secure Chips";

/// Clients of the three services.
pub struct Clients {
    pub registry: PartnerRegistryClient<Channel>,
    pub store: CertificateStoreClient<Channel>,
    pub ftm: FtmManagementClient<Channel>,
}

impl Clients {
    pub async fn connect(platform: &Platform) -> Clients {
        Clients {
            registry: PartnerRegistryClient::new(
                platform.registry.channel().await.expect("registry"),
            ),
            store: CertificateStoreClient::new(platform.certstore.channel().await.expect("store")),
            ftm: FtmManagementClient::new(platform.ftm.channel().await.expect("ftm")),
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let request = partner::LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.registry
            .clone()
            .login(request)
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    pub async fn trusted(&self, token: &str, certificate: &Issued) -> bool {
        trusted_in_ftm(&self.store, token, &certificate.pem().expect("pem")).await
    }

    pub async fn upload_chip(
        &self,
        token: &str,
        ftm_id: &str,
        certificate: &Issued,
    ) -> Result<ftm::Ftm, tonic::Status> {
        let request = ftm::UploadFtmCertificateRequest {
            ftm_id: ftm_id.into(),
            certificate_data: certificate.pem().expect("pem"),
        };
        self.ftm
            .clone()
            .upload_ftm_certificate(with_token(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn create_ftm(
        &self,
        token: &str,
        partner_id: &str,
        make: &str,
        model: &str,
    ) -> ftm::Ftm {
        let request = ftm::CreateFtmRequest {
            partner_id: partner_id.into(),
            make: make.into(),
            model: model.into(),
        };
        self.ftm
            .clone()
            .create_ftm(with_token(request, token))
            .await
            .expect("create FTM")
            .into_inner()
    }
}

/// `VerifyCertificateTrust` of `pem` in domain FTM through `store`.
pub async fn verify_in_ftm(
    store: &CertificateStoreClient<Channel>,
    token: &str,
    pem: &str,
) -> Result<store::VerifyCertificateTrustResponse, tonic::Status> {
    let request = store::VerifyCertificateTrustRequest {
        certificate_data: pem.to_owned(),
        partner_domain: "FTM".into(),
    };
    store
        .clone()
        .verify_certificate_trust(with_token(request, token))
        .await
        .map(tonic::Response::into_inner)
}

/// Whether the store behind `store` trusts `pem` in domain FTM now.
pub async fn trusted_in_ftm(
    store: &CertificateStoreClient<Channel>,
    token: &str,
    pem: &str,
) -> bool {
    verify_in_ftm(store, token, pem)
        .await
        .expect("verify")
        .trusted
}

/// Root and intermediate of the FTM domain.
pub struct FtmPki {
    pub root: Issued,
    pub intermediate: Issued,
}

pub fn ftm_pki() -> FtmPki {
    let root = CertificateSpec::ca("FTM Root CA")
        .organisation("Trust Authority")
        .valid_for_days(3650)
        .self_signed()
        .expect("root");
    let intermediate = CertificateSpec::ca("FTM Issuing CA")
        .organisation("Trust Authority")
        .valid_for_days(1800)
        .issued_by(&root)
        .expect("intermediate");
    FtmPki { root, intermediate }
}

pub fn chip(pki: &FtmPki, name: &str) -> Issued {
    CertificateSpec::leaf(name)
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&pki.intermediate)
        .expect("chip")
}

/// Steps 1-3: a registered, ACTIVE FTM provider with its partner certificate; returns
/// (admin token, partner token).
pub async fn onboard_partner(clients: &Clients, pki: &FtmPki) -> (String, String) {
    let registration = partner::RegisterPartnerRequest {
        partner_id: "acme-ftm".into(),
        password: "acme-password-1".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        organization_name: ORG.into(),
        partner_type: "FTM_Provider".into(),
        address: "1 Main Street, Springfield".into(),
        email: "ada@acme.example".into(),
        phone: "+1 555 0100".into(),
        lang_code: "eng".into(),
    };
    let registered = clients
        .registry
        .clone()
        .register_partner(registration)
        .await
        .expect("register")
        .into_inner();
    assert_eq!(registered.status(), partner::PartnerStatus::InProgress);

    let admin = clients.login("admin", ADMIN_PASSWORD).await;
    let bundle = format!(
        "{}{}",
        pki.intermediate.pem().expect("pem"),
        pki.root.pem().expect("pem")
    );
    let upload = store::UploadCaCertificateRequest {
        certificate_data: bundle,
        partner_domain: "ftm".into(),
    };
    let uploaded = clients
        .store
        .clone()
        .upload_ca_certificate(with_token(upload, &admin))
        .await
        .expect("CA")
        .into_inner();
    assert_eq!(uploaded.status(), store::UploadStatus::UploadSuccess);

    let partner_token = clients.login("acme-ftm", "acme-password-1").await;
    let partner_certificate = CertificateSpec::leaf("acme-ftm")
        .organisation(ORG)
        .issued_by(&pki.intermediate)
        .expect("cert");
    let request = partner::UploadPartnerCertificateRequest {
        partner_id: "acme-ftm".into(),
        certificate_data: partner_certificate.pem().expect("pem"),
        partner_domain: "FTM".into(),
    };
    let accepted = clients
        .registry
        .clone()
        .upload_partner_certificate(with_token(request, &partner_token))
        .await
        .expect("cert")
        .into_inner();
    assert_eq!(
        accepted.partner.expect("partner").status(),
        partner::PartnerStatus::Active
    );
    (admin, partner_token)
}

/// Steps 4-6: an FTM of acme-ftm with chip certificate `chip_name`, approved by `admin`;
/// returns the FTM and its chip certificate.
pub async fn approved_ftm(
    clients: &Clients,
    pki: &FtmPki,
    admin: &str,
    partner_token: &str,
    chip_name: &str,
) -> (ftm::Ftm, Issued) {
    let created = clients
        .create_ftm(partner_token, "acme-ftm", "ACME", chip_name)
        .await;
    let chip = chip(pki, chip_name);
    clients
        .upload_chip(partner_token, &created.ftm_id, &chip)
        .await
        .expect("chip certificate");
    let request = ftm::ApproveFtmRequest {
        ftm_id: created.ftm_id.clone(),
    };
    let approved = clients
        .ftm
        .clone()
        .approve_ftm(with_token(request, admin))
        .await
        .expect("approved")
        .into_inner();
    (approved, chip)
}
