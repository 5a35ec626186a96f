//! The seed workflow with every private key in a PKCS#11 token (SoftHSM2): the services'
//! identity keys, the registry's token key and the platform signing key are generated in
//! the token, every signature is made there, and no private key reaches the disk. Also the
//! start-up failure modes: a wrong PIN is refused (and never logged), an unreachable token
//! keeps the service NOT_SERVING while it waits.

mod support;

use std::path::Path;
use std::time::Duration;

use openssl::x509::X509;
use tonic_health::pb::health_check_response::ServingStatus;

use pmp_common::signing::testing::SoftHsm;
use pmp_common::testing::with_token;
use pmp_e2e::Platform;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as partner;

use support::{Clients, approved_ftm, ftm_pki, onboard_partner};

/// Every file under `directory`, recursively.
fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).expect("directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn the_seed_workflow_runs_with_every_key_in_the_hsm_and_none_on_disk() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    let platform = Platform::start_hsm("sqlite", &hsm.settings)
        .await
        .expect("platform on HSM keys");
    let clients = Clients::connect(&platform).await;
    let pki = ftm_pki();
    let (admin, partner_token) = onboard_partner(&clients, &pki).await;
    let (approved, chip) = approved_ftm(&clients, &pki, &admin, &partner_token, "HSM Chip").await;
    assert_eq!(approved.status(), ftm::FtmStatus::Approved);
    assert!(
        clients.trusted(&admin, &chip).await,
        "trusted once approved"
    );

    // The platform-signed copy was signed by the token's key, under the platform root.
    let bundle = clients
        .ftm
        .clone()
        .get_ftm_certificate(with_token(
            ftm::GetFtmCertificateRequest {
                ftm_id: approved.ftm_id.clone(),
            },
            &partner_token,
        ))
        .await
        .expect("certificate")
        .into_inner();
    let copy = X509::from_pem(bundle.platform_signed_certificate_pem.as_bytes()).expect("copy");
    let signing_certificate = std::fs::read(platform.directory.path().join("platform-signing.pem"))
        .expect("platform signing certificate");
    let signing_certificate = X509::from_pem(&signing_certificate).expect("certificate");
    let token_key = pmp_common::signing::Pkcs11Key::open(&hsm.settings, "platform-signing")
        .expect("the token holds the platform key");
    use pmp_common::signing::PrivateKey;
    assert!(
        signing_certificate
            .public_key()
            .expect("key")
            .public_eq(token_key.public_key())
    );
    assert!(copy.verify(token_key.public_key()).expect("verify"));

    // Tokens are signed by the token's key: the published keys verify them.
    let published = clients
        .registry
        .clone()
        .get_token_verification_keys(partner::GetTokenVerificationKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let registry_key = pmp_common::signing::Pkcs11Key::open(&hsm.settings, "registry-tokens")
        .expect("the token holds the token key");
    let registry_public =
        String::from_utf8(registry_key.public_key().public_key_to_pem().expect("pem"))
            .expect("utf-8");
    assert_eq!(published.public_keys_pem, [registry_public]);

    for process in [&platform.registry, &platform.certstore, &platform.ftm] {
        assert!(
            process.log().contains("is in the HSM"),
            "{}: {}",
            process.name,
            process.log()
        );
    }
    let mut private_keys = Vec::new();
    for file in files_under(platform.directory.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        if bytes.windows(11).any(|window| window == b"PRIVATE KEY") {
            private_keys.push(file);
        }
    }
    assert!(
        private_keys.is_empty(),
        "private keys on disk: {private_keys:?}"
    );
}

#[tokio::test]
async fn a_wrong_pin_is_refused_at_start_up_and_an_unreachable_token_keeps_a_service_waiting() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    let platform = Platform::start_hsm("sqlite", &hsm.settings)
        .await
        .expect("platform on HSM keys");

    let wrong = hsm.with_wrong_pin().expect("wrong PIN file");
    let mut refused = platform
        .spawn_replica(
            "certificate-store",
            &[("PMP_CERTSTORE__HSM__PIN_FILE", wrong.pin_file.as_str())],
        )
        .expect("replica");
    let status = refused
        .exit_within(Duration::from_secs(30))
        .await
        .expect("waited")
        .expect("a wrong PIN stops the start-up");
    assert!(!status.success());
    let log = refused.log();
    assert!(log.contains("refused the configured PIN"), "{log}");
    assert!(
        !log.contains("not-the-pin"),
        "the PIN is never logged: {log}"
    );

    let waiting = platform
        .spawn_replica(
            "certificate-store",
            &[("PMP_CERTSTORE__HSM__TOKEN_LABEL", "a-token-not-plugged-in")],
        )
        .expect("replica");
    let mut logged = false;
    for _ in 0..100 {
        if waiting.log().contains("HSM unreachable") {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged, "{}", waiting.log());
    let channel = waiting.channel().await.expect("the process serves health");
    let own = pmp_common::testing::health_status(
        channel.clone(),
        pmp_proto::service_names::CERTIFICATE_STORE,
    )
    .await
    .expect("health");
    assert_eq!(own, ServingStatus::NotServing, "not ready without its key");
    let liveness =
        pmp_common::testing::health_status(channel, pmp_common::server::LIVENESS_SERVICE)
            .await
            .expect("health");
    assert_eq!(liveness, ServingStatus::Serving, "alive while it waits");
}
