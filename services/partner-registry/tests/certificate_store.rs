//! The registry's certificate path end to end through a real certificate store (both
//! in-process, each with its own database), on SQLite and on PostgreSQL: the store fetches
//! the registry's token keys, the registry calls the store as a service with the partner's
//! registered organisation, and deactivation flips trust in the store.

use tonic::Code;
use tonic::transport::Channel;

use partner_registry::testing::TEST_ADMIN_PASSWORD;
use pmp_common::db::testing::backends;
use pmp_common::testing::{assert_error, with_token};
use pmp_dev_certs::{CertificateSpec, Issued};
use pmp_e2e::inprocess::{InProcessPlatform, Options};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::{UploadCaCertificateRequest, VerifyCertificateTrustRequest};
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::*;

const ORG: &str = "ACME Chips Ltd";

/// The platform harness (`pmp_e2e::inprocess`) with a real store.
struct Platform {
    registry: PartnerRegistryClient<Channel>,
    store: CertificateStoreClient<Channel>,
    _services: InProcessPlatform,
}

async fn platform(backend: &'static str) -> Platform {
    let services = InProcessPlatform::start(Options::on(backend))
        .await
        .expect("platform");
    Platform {
        registry: services.registry(),
        store: services.store(),
        _services: services,
    }
}

impl Platform {
    async fn login(&self, username: &str, password: &str) -> String {
        self.registry
            .clone()
            .login(LoginRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    async fn upload(
        &self,
        token: &str,
        partner_id: &str,
        certificate: &Issued,
    ) -> Result<UploadPartnerCertificateResponse, tonic::Status> {
        let request = UploadPartnerCertificateRequest {
            partner_id: partner_id.into(),
            certificate_data: certificate.pem().expect("pem"),
            partner_domain: "FTM".into(),
        };
        self.registry
            .clone()
            .upload_partner_certificate(with_token(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn trusted(&self, token: &str, certificate: &Issued) -> bool {
        let request = VerifyCertificateTrustRequest {
            certificate_data: certificate.pem().expect("pem"),
            partner_domain: "FTM".into(),
        };
        self.store
            .clone()
            .verify_certificate_trust(with_token(request, token))
            .await
            .expect("verify")
            .into_inner()
            .trusted
    }
}

fn registration(partner_id: &str, organisation: &str) -> RegisterPartnerRequest {
    RegisterPartnerRequest {
        partner_id: partner_id.into(),
        password: "partner-password".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        organization_name: organisation.into(),
        partner_type: "FTM_Provider".into(),
        address: "1 Main Street".into(),
        email: format!("{partner_id}@acme.example"),
        phone: "+1 555 0100".into(),
        lang_code: "eng".into(),
    }
}

#[tokio::test]
async fn partner_certificate_activates_the_partner_and_follows_its_status() {
    for backend in backends() {
        let platform = platform(backend).await;
        let admin = platform.login("admin", TEST_ADMIN_PASSWORD).await;
        let root = CertificateSpec::ca("FTM Root")
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        let intermediate = CertificateSpec::ca("FTM Intermediate")
            .valid_for_days(1800)
            .issued_by(&root)
            .expect("intermediate");
        let bundle = format!(
            "{}{}",
            root.pem().expect("pem"),
            intermediate.pem().expect("pem")
        );
        let upload = UploadCaCertificateRequest {
            certificate_data: bundle,
            partner_domain: "FTM".into(),
        };
        platform
            .store
            .clone()
            .upload_ca_certificate(with_token(upload, &admin))
            .await
            .expect("CA upload with a registry token");

        platform
            .registry
            .clone()
            .register_partner(registration("acme", ORG))
            .await
            .expect("registered");
        let partner = platform.login("acme", "partner-password").await;
        let wrong_org = CertificateSpec::leaf("acme")
            .organisation("Someone Else")
            .issued_by(&intermediate)
            .expect("cert");
        assert_error(
            platform.upload(&partner, "acme", &wrong_org).await,
            Code::InvalidArgument,
            "KER-PCM-008",
        );
        let foreign_root = CertificateSpec::ca("Foreign")
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        let foreign = CertificateSpec::leaf("acme")
            .organisation(ORG)
            .issued_by(&foreign_root)
            .expect("cert");
        assert_error(
            platform.upload(&partner, "acme", &foreign).await,
            Code::FailedPrecondition,
            "KER-PCM-006",
        );

        let certificate = CertificateSpec::leaf("acme")
            .organisation(ORG)
            .issued_by(&intermediate)
            .expect("cert");
        let accepted = platform
            .upload(&partner, "acme", &certificate)
            .await
            .expect("accepted");
        let activated = accepted.partner.expect("partner");
        assert_eq!(activated.status(), PartnerStatus::Active, "{backend}");
        assert_eq!(activated.certificate_id, accepted.certificate_id);
        assert!(
            accepted
                .signed_certificate_data
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            platform.trusted(&partner, &certificate).await,
            "{backend}: trusted once the registry recorded it"
        );

        let bundle = platform
            .registry
            .clone()
            .get_partner_certificate(with_token(
                GetPartnerCertificateRequest {
                    partner_id: "acme".into(),
                },
                &partner,
            ))
            .await
            .expect("bundle")
            .into_inner();
        assert_eq!(bundle.certificate_id, accepted.certificate_id);
        assert_eq!(
            bundle.ca_signed_certificate_pem,
            certificate.pem().expect("pem")
        );

        let deactivate = SetPartnerActiveRequest {
            partner_id: "acme".into(),
            active: false,
        };
        let deactivated = platform
            .registry
            .clone()
            .set_partner_active(with_token(deactivate, &admin))
            .await
            .expect("deactivated");
        assert_eq!(
            deactivated.into_inner().status(),
            PartnerStatus::Deactivated
        );
        assert!(
            !platform.trusted(&partner, &certificate).await,
            "{backend}: untrusted while deactivated"
        );
        assert_error(
            platform.upload(&partner, "acme", &certificate).await,
            Code::FailedPrecondition,
            "PMS_PMP_016",
        );

        let reactivate = SetPartnerActiveRequest {
            partner_id: "acme".into(),
            active: true,
        };
        let reactivated = platform
            .registry
            .clone()
            .set_partner_active(with_token(reactivate, &admin))
            .await
            .expect("active");
        assert_eq!(reactivated.into_inner().status(), PartnerStatus::Active);
        assert!(
            platform.trusted(&partner, &certificate).await,
            "{backend}: trusted again"
        );
    }
}
