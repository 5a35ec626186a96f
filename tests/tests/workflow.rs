//! The seed workflow across three real service processes, each with its own database, on
//! SQLite and on PostgreSQL: self-registration → CA certificates for FTM → partner
//! certificate (partner ACTIVE) → FTM details → FTM chip certificate → untrusted until the
//! admin approves → trusted → deactivated → untrusted; and the reject path.

mod support;

use tonic::Code;

use pmp_common::db::testing::backends;
use pmp_common::testing::with_token;
use pmp_e2e::Platform;
use pmp_proto::ftm::v1 as ftm;

use support::{Clients, ORG, chip, ftm_pki, onboard_partner};

#[tokio::test]
async fn seed_workflow_across_three_processes() {
    for backend in backends() {
        let mut platform = Platform::start(backend).await.expect("platform");
        let clients = Clients::connect(&platform).await;
        let pki = ftm_pki();
        let (admin, partner_token) = onboard_partner(&clients, &pki).await;

        // Step 4-5: FTM details, then the chip certificate.
        let created = clients
            .create_ftm(&partner_token, "acme-ftm", "  ACME  ", "Secure   Element 1")
            .await;
        assert_eq!(
            created.status(),
            ftm::FtmStatus::PendingCertUpload,
            "{backend}"
        );
        assert_eq!(
            (created.make.as_str(), created.model.as_str()),
            ("ACME", "Secure Element 1")
        );
        assert_eq!(created.organization_name, ORG);
        let chip_certificate = chip(&pki, "chip-1");
        let uploaded = clients
            .upload_chip(&partner_token, &created.ftm_id, &chip_certificate)
            .await
            .expect("chip");
        assert_eq!(
            uploaded.status(),
            ftm::FtmStatus::PendingApproval,
            "{backend}"
        );
        assert!(!uploaded.certificate_id.is_empty());
        assert!(
            !clients.trusted(&partner_token, &chip_certificate).await,
            "{backend}: untrusted before approval"
        );

        // Step 6: approval makes the FTM active and its chip trusted.
        let approve = ftm::ApproveFtmRequest {
            ftm_id: created.ftm_id.clone(),
        };
        let denied = clients
            .ftm
            .clone()
            .approve_ftm(with_token(approve.clone(), &partner_token))
            .await;
        assert_eq!(
            denied.expect_err("partners cannot approve").code(),
            Code::PermissionDenied
        );
        let approved = clients
            .ftm
            .clone()
            .approve_ftm(with_token(approve, &admin))
            .await
            .expect("approve")
            .into_inner();
        assert_eq!(approved.status(), ftm::FtmStatus::Approved, "{backend}");
        assert!(
            clients.trusted(&partner_token, &chip_certificate).await,
            "{backend}: trusted once approved"
        );

        let bundle = clients
            .ftm
            .clone()
            .get_ftm_certificate(with_token(
                ftm::GetFtmCertificateRequest {
                    ftm_id: created.ftm_id.clone(),
                },
                &partner_token,
            ))
            .await
            .expect("certificate")
            .into_inner();
        assert_eq!(
            bundle.ca_signed_certificate_pem,
            chip_certificate.pem().expect("pem")
        );

        // Later deactivation: untrusted again.
        let deactivate = ftm::DeactivateFtmRequest {
            ftm_id: created.ftm_id.clone(),
        };
        let deactivated = clients
            .ftm
            .clone()
            .deactivate_ftm(with_token(deactivate, &partner_token))
            .await
            .expect("deactivate")
            .into_inner();
        assert_eq!(
            deactivated.status(),
            ftm::FtmStatus::Deactivated,
            "{backend}"
        );
        assert!(
            !clients.trusted(&partner_token, &chip_certificate).await,
            "{backend}: untrusted once deactivated"
        );

        // The reject path.
        let second = clients
            .create_ftm(&partner_token, "acme-ftm", "ACME", "Secure Element 2")
            .await;
        let second_chip = chip(&pki, "chip-2");
        clients
            .upload_chip(&partner_token, &second.ftm_id, &second_chip)
            .await
            .expect("chip");
        let reject = ftm::RejectFtmRequest {
            ftm_id: second.ftm_id.clone(),
            reason: "certificate names the wrong model".into(),
        };
        let rejected = clients
            .ftm
            .clone()
            .reject_ftm(with_token(reject, &admin))
            .await
            .expect("reject")
            .into_inner();
        assert_eq!(rejected.status(), ftm::FtmStatus::Rejected, "{backend}");
        assert_eq!(rejected.reject_reason, "certificate names the wrong model");
        assert!(
            !clients.trusted(&partner_token, &second_chip).await,
            "{backend}: rejected chips stay untrusted"
        );

        let listed = clients
            .ftm
            .clone()
            .list_ftms(with_token(ftm::ListFtmsRequest::default(), &partner_token))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.total_size, 2, "{backend}");

        for process in [
            &mut platform.ftm,
            &mut platform.certstore,
            &mut platform.registry,
        ] {
            let status = process
                .terminate()
                .await
                .unwrap_or_else(|error| panic!("{error}\n{}", process.log()));
            assert!(
                status.success(),
                "{backend}: {} exited with {status} on SIGTERM\n{}",
                process.name,
                process.log()
            );
        }
    }
}

/// grpcurl and other reflection clients can decode every error's `ErrorInfo` (its reason)
/// and `BadRequest`/`RetryInfo` details: each binary serves the `google.rpc` descriptors
/// alongside its own API.
#[tokio::test]
async fn reflection_serves_the_error_detail_descriptors() {
    let platform = Platform::start("sqlite").await.expect("platform");
    for (process, service) in [
        (
            &platform.registry,
            pmp_proto::service_names::PARTNER_REGISTRY,
        ),
        (
            &platform.certstore,
            pmp_proto::service_names::CERTIFICATE_STORE,
        ),
        (&platform.ftm, pmp_proto::service_names::FTM_MANAGEMENT),
    ] {
        for (symbol, file) in [
            ("google.rpc.ErrorInfo", "error_details.proto"),
            ("google.rpc.BadRequest", "error_details.proto"),
            ("google.rpc.RetryInfo", "error_details.proto"),
            (service, ""),
        ] {
            let channel = process.channel().await.expect("channel");
            let files = pmp_common::testing::reflection_files_of(channel, symbol)
                .await
                .unwrap_or_else(|error| panic!("{}: {symbol}: {error}", process.name));
            assert!(
                files.iter().any(|name| file.is_empty() || name == file),
                "{}: {symbol} in {files:?}",
                process.name
            );
        }
    }
}
