//! The complete seed workflow across the three real services, in-process: an admin uploads
//! the FTM domain's CAs, an FTM provider registers and gets ACTIVE through its partner
//! certificate, creates an FTM, uploads the chip certificate, the admin approves, the
//! provider renews and finally deactivates — with the chip certificate's trust checked in
//! the certificate store (`VerifyCertificateTrust`) at every step.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use partner_registry::testing::TEST_ADMIN_PASSWORD;
use pmp_common::db::testing::TestDatabase;
use pmp_common::testing::{Spawned, assert_error, wait_until_serving, with_token};
use pmp_dev_certs::{CertificateSpec, DevPki, KeySpec};
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as proto;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::service_names::{CERTIFICATE_STORE, FTM_MANAGEMENT, PARTNER_REGISTRY};

const ORG: &str = "ACME Chips";

/// The three services. The registry and the store each need the other's address, so the
/// registry's port is bound first and the store started against it.
struct Services {
    _directory: tempfile::TempDir,
    _databases: Vec<TestDatabase>,
    _store: Spawned,
    _ftm: Spawned,
    registry_stop: Option<tokio::sync::oneshot::Sender<()>>,
    registry: PartnerRegistryClient<Channel>,
    store: CertificateStoreClient<Channel>,
    ftm: FtmManagementClient<Channel>,
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(stop) = self.registry_stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn channel(address: &str) -> Channel {
    Channel::from_shared(address.to_owned())
        .expect("address")
        .connect()
        .await
        .expect("connect")
}

impl Services {
    async fn start() -> Services {
        let directory = tempfile::tempdir().expect("tempdir");
        let secret = pmp_common::auth::testing::ServiceKeyFiles::generate(
            &directory.path().join("identities"),
        )
        .expect("service keys");
        let registry_database = TestDatabase::sqlite().await.expect("database");
        let store_database = TestDatabase::sqlite().await.expect("database");
        let ftm_database = TestDatabase::sqlite().await.expect("database");

        let registry_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let registry_address = format!(
            "http://{}",
            registry_listener.local_addr().expect("address")
        );
        let store_directory = directory.path().join("store");
        std::fs::create_dir_all(&store_directory).expect("store directory");
        let store_settings = certificate_store::testing::settings(
            &store_directory,
            store_database.settings.clone(),
            &registry_address,
            &secret,
        )
        .expect("store settings");
        let store = certificate_store::testing::spawn(store_settings)
            .await
            .expect("store");
        let registry_settings = partner_registry::testing::settings(
            directory.path(),
            registry_database.settings.clone(),
            &store.address,
            &secret,
        )
        .expect("registry settings");
        let (registry_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(partner_registry::run(
            registry_settings,
            registry_listener,
            async {
                let _ = stopped.await;
            },
        ));
        let ftm_settings = ftm_management::testing::settings(
            ftm_database.settings.clone(),
            &registry_address,
            &store.address,
            &secret,
        )
        .expect("ftm settings");
        let ftm = ftm_management::testing::spawn(ftm_settings)
            .await
            .expect("ftm");
        for (address, service) in [
            (&registry_address, PARTNER_REGISTRY),
            (&store.address, CERTIFICATE_STORE),
            (&ftm.address, FTM_MANAGEMENT),
        ] {
            wait_until_serving(address, service, Duration::from_secs(60))
                .await
                .unwrap_or_else(|error| panic!("{service}: {error}"));
        }
        Services {
            registry: PartnerRegistryClient::new(channel(&registry_address).await),
            store: CertificateStoreClient::new(channel(&store.address).await),
            ftm: FtmManagementClient::new(channel(&ftm.address).await),
            _directory: directory,
            _databases: vec![registry_database, store_database, ftm_database],
            _store: store,
            _ftm: ftm,
            registry_stop: Some(registry_stop),
        }
    }

    async fn login(&self, username: &str, password: &str) -> String {
        self.registry
            .clone()
            .login(registry::LoginRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    async fn trusted(&self, token: &str, pem: &str) -> bool {
        let verdict = self
            .store
            .clone()
            .verify_certificate_trust(with_token(
                store::VerifyCertificateTrustRequest {
                    certificate_data: pem.into(),
                    partner_domain: "FTM".into(),
                },
                token,
            ))
            .await
            .expect("verify")
            .into_inner();
        verdict.trusted
    }

    async fn upload_chip(
        &self,
        token: &str,
        ftm_id: &str,
        pem: &str,
    ) -> Result<proto::Ftm, tonic::Status> {
        self.ftm
            .clone()
            .upload_ftm_certificate(with_token(
                proto::UploadFtmCertificateRequest {
                    ftm_id: ftm_id.into(),
                    certificate_data: pem.into(),
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn chip(pki: &DevPki, name: &str, org: &str) -> String {
    CertificateSpec::leaf(name)
        .organisation(org)
        .organisational_unit("FTM")
        .country("IN")
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(730)
        .issued_by(&pki.intermediate)
        .expect("chip certificate")
        .pem()
        .expect("pem")
}

#[tokio::test]
async fn seed_workflow_across_the_three_services() {
    let services = Services::start().await;
    let admin = services.login("admin", TEST_ADMIN_PASSWORD).await;
    let pki = DevPki::generate(ORG).expect("dev PKI");

    // Step 2: the admin uploads the FTM domain's root and intermediate CA.
    let uploaded = services
        .store
        .clone()
        .upload_ca_certificate(with_token(
            store::UploadCaCertificateRequest {
                certificate_data: pki.ca_bundle_pem().expect("bundle"),
                partner_domain: "FTM".into(),
            },
            &admin,
        ))
        .await
        .expect("CA upload")
        .into_inner();
    assert_eq!(uploaded.status(), store::UploadStatus::UploadSuccess);

    // Step 1 and 3: the provider registers (IN_PROGRESS: no FTMs yet), then its partner
    // certificate makes it ACTIVE.
    services
        .registry
        .clone()
        .register_partner(registry::RegisterPartnerRequest {
            partner_id: "acme".into(),
            password: "acme-password".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            organization_name: ORG.into(),
            partner_type: "FTM_Provider".into(),
            address: "1 Main Street".into(),
            email: "ada@acme.example".into(),
            phone: "+1 555 0100".into(),
            lang_code: String::new(),
        })
        .await
        .expect("registered");
    let acme = services.login("acme", "acme-password").await;
    let create = |make: &str, model: &str| {
        let mut client = services.ftm.clone();
        let request = with_token(
            proto::CreateFtmRequest {
                partner_id: "acme".into(),
                make: make.into(),
                model: model.into(),
            },
            &acme,
        );
        async move {
            client
                .create_ftm(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_error(
        create("Chip", "M1").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    let partner = services
        .registry
        .clone()
        .upload_partner_certificate(with_token(
            registry::UploadPartnerCertificateRequest {
                partner_id: "acme".into(),
                certificate_data: pki.partner.pem().expect("pem"),
                partner_domain: "FTM".into(),
            },
            &acme,
        ))
        .await
        .expect("partner certificate")
        .into_inner();
    assert_eq!(
        partner.partner.expect("partner").status(),
        registry::PartnerStatus::Active
    );

    // Step 4: the FTM.
    let ftm = create("ACME  Secure Element", " SE-1 ")
        .await
        .expect("created");
    assert_eq!(ftm.status(), proto::FtmStatus::PendingCertUpload);
    assert_eq!(ftm.make, "ACME Secure Element");
    assert_eq!(ftm.organization_name, ORG);

    // Step 5: the chip certificate, stored but not trusted yet.
    let chip_pem = pki.ftm_chip.pem().expect("pem");
    let pending = services
        .upload_chip(&acme, &ftm.ftm_id, &chip_pem)
        .await
        .expect("chip uploaded");
    assert_eq!(pending.status(), proto::FtmStatus::PendingApproval);
    assert!(!pending.certificate_id.is_empty());
    let expiry = pending.certificate_expiry_time.expect("expiry");
    let expected_expiry = pki.ftm_chip.certificate.not_after();
    let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("epoch");
    let difference = epoch.diff(expected_expiry).expect("diff");
    let expected_seconds = i64::from(difference.days) * 86_400 + i64::from(difference.secs);
    assert_eq!(
        expiry.seconds, expected_seconds,
        "expiry is the certificate's notAfter"
    );
    assert!(
        !services.trusted(&acme, &chip_pem).await,
        "untrusted until approved"
    );
    let bundle = services
        .ftm
        .clone()
        .get_ftm_certificate(with_token(
            proto::GetFtmCertificateRequest {
                ftm_id: ftm.ftm_id.clone(),
            },
            &acme,
        ))
        .await
        .expect("certificate")
        .into_inner();
    assert_eq!(bundle.certificate_id, pending.certificate_id);
    assert!(
        bundle
            .ca_signed_certificate_pem
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        bundle
            .platform_signed_certificate_pem
            .contains("BEGIN CERTIFICATE")
    );
    // Certificates the store refuses keep their reason.
    let foreign = chip(&pki, "foreign chip", "Someone Else");
    let second = create("ACME Secure Element", "SE-2")
        .await
        .expect("second FTM");
    assert_error(
        services.upload_chip(&acme, &second.ftm_id, &foreign).await,
        Code::InvalidArgument,
        "KER-PCM-008",
    );
    let unrelated = DevPki::generate(ORG)
        .expect("other PKI")
        .ftm_chip
        .pem()
        .expect("pem");
    assert_error(
        services
            .upload_chip(&acme, &second.ftm_id, &unrelated)
            .await,
        Code::FailedPrecondition,
        "KER-PCM-006",
    );

    // Step 6: approval makes the chip certificate trusted.
    let approve = |ftm_id: String| {
        let mut client = services.ftm.clone();
        let request = with_token(proto::ApproveFtmRequest { ftm_id }, &admin);
        async move {
            client
                .approve_ftm(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let approved = approve(ftm.ftm_id.clone()).await.expect("approved");
    assert_eq!(approved.status(), proto::FtmStatus::Approved);
    assert!(
        services.trusted(&acme, &chip_pem).await,
        "trusted once APPROVED"
    );

    // Renewal: the old certificate stops being trusted, the new one waits for approval.
    let renewed_pem = chip(&pki, "ACME FTM Chip 2", ORG);
    let renewed = services
        .upload_chip(&acme, &ftm.ftm_id, &renewed_pem)
        .await
        .expect("renewed");
    assert_eq!(renewed.status(), proto::FtmStatus::PendingApproval);
    assert_ne!(renewed.certificate_id, pending.certificate_id);
    assert!(
        !services.trusted(&acme, &chip_pem).await,
        "old certificate untrusted"
    );
    assert!(
        !services.trusted(&acme, &renewed_pem).await,
        "new one not yet trusted"
    );
    approve(ftm.ftm_id.clone()).await.expect("approved again");
    assert!(services.trusted(&acme, &renewed_pem).await);
    assert!(!services.trusted(&acme, &chip_pem).await);

    // Step 7: deactivation ends the trust.
    let deactivated = services
        .ftm
        .clone()
        .deactivate_ftm(with_token(
            proto::DeactivateFtmRequest {
                ftm_id: ftm.ftm_id.clone(),
            },
            &acme,
        ))
        .await
        .expect("deactivated")
        .into_inner();
    assert_eq!(deactivated.status(), proto::FtmStatus::Deactivated);
    assert!(
        !services.trusted(&acme, &renewed_pem).await,
        "untrusted after deactivation"
    );
    assert_error(
        services.upload_chip(&acme, &ftm.ftm_id, &renewed_pem).await,
        Code::FailedPrecondition,
        "PMP_AUT_039",
    );

    // A deactivated provider cannot create FTMs any more.
    services
        .registry
        .clone()
        .set_partner_active(with_token(
            registry::SetPartnerActiveRequest {
                partner_id: "acme".into(),
                active: false,
            },
            &admin,
        ))
        .await
        .expect("partner deactivated");
    assert_error(
        create("Chip", "M9").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
}
