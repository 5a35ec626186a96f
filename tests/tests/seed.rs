//! The complete seed workflow across the three real services, in-process (the platform
//! harness's [`InProcessPlatform`]), on SQLite and PostgreSQL: an admin uploads
//! the FTM domain's CAs, an FTM provider registers and gets ACTIVE through its partner
//! certificate, creates an FTM, uploads the chip certificate, the admin approves, the
//! provider renews and finally deactivates — with the chip certificate's trust checked in
//! the certificate store (`VerifyCertificateTrust`) at every step.

use tonic::Code;

use partner_registry::testing::TEST_ADMIN_PASSWORD;
use pmp_common::db::testing::backends;
use pmp_common::testing::{assert_error, with_token};
use pmp_dev_certs::{CertificateSpec, DevPki};
use pmp_e2e::inprocess::{InProcessPlatform, Options};
use pmp_proto::certstore::v1 as store;
use pmp_proto::ftm::v1 as proto;
use pmp_proto::partner::v1 as registry;

const ORG: &str = "ACME Chips";

fn chip(pki: &DevPki, name: &str, org: &str) -> String {
    CertificateSpec::ftm_chip(name, org)
        .issued_by(&pki.intermediate)
        .expect("chip certificate")
        .pem()
        .expect("pem")
}

#[tokio::test]
async fn seed_workflow_in_process_with_renewal_and_deactivation() {
    for backend in backends() {
        seed_workflow(backend).await;
    }
}

async fn seed_workflow(backend: &'static str) {
    let services = InProcessPlatform::start(Options::on(backend))
        .await
        .expect("platform");
    let admin = services
        .login("admin", TEST_ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let pki = DevPki::generate(ORG).expect("dev PKI");

    // Step 2: the admin uploads the FTM domain's root and intermediate CA.
    let uploaded = services
        .store()
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
        .registry()
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
    let acme = services
        .login("acme", "acme-password")
        .await
        .expect("acme login");
    let create = |make: &str, model: &str| {
        let mut client = services.ftm();
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
        .registry()
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
        !services.trusted(&chip_pem).await,
        "untrusted until approved"
    );
    let bundle = services
        .ftm()
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
        let mut client = services.ftm();
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
    assert!(services.trusted(&chip_pem).await, "trusted once APPROVED");

    // Renewal: the old certificate stops being trusted, the new one waits for approval.
    let renewed_pem = chip(&pki, "ACME FTM Chip 2", ORG);
    let renewed = services
        .upload_chip(&acme, &ftm.ftm_id, &renewed_pem)
        .await
        .expect("renewed");
    assert_eq!(renewed.status(), proto::FtmStatus::PendingApproval);
    assert_ne!(renewed.certificate_id, pending.certificate_id);
    assert!(
        !services.trusted(&chip_pem).await,
        "old certificate untrusted"
    );
    assert!(
        !services.trusted(&renewed_pem).await,
        "new one not yet trusted"
    );
    approve(ftm.ftm_id.clone()).await.expect("approved again");
    assert!(services.trusted(&renewed_pem).await);
    assert!(!services.trusted(&chip_pem).await);

    // Step 7: deactivation ends the trust.
    let deactivated = services
        .ftm()
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
        !services.trusted(&renewed_pem).await,
        "untrusted after deactivation"
    );
    assert_error(
        services.upload_chip(&acme, &ftm.ftm_id, &renewed_pem).await,
        Code::FailedPrecondition,
        "PMP_AUT_039",
    );

    // A deactivated provider cannot create FTMs any more.
    services
        .registry()
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
