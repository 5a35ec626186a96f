//! Token keys and account edges across the running platform (in-process, on SQLite and on
//! PostgreSQL): the registry's signing key rotates while the certificate store and FTM
//! management keep running, and a deactivated partner cannot log in.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::{Code, Status};

use pmp_common::db::testing::backends;
use pmp_common::testing::{assert_error, with_token};
use pmp_dev_certs::{CertificateSpec, KeySpec};
use pmp_e2e::inprocess::{InProcessPlatform, Options, PARTNER_PASSWORD};
use pmp_proto::certstore::v1 as store;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as partner;

/// An admin call on the store and one on FTM management, as `token`.
async fn use_token(platform: &InProcessPlatform, token: &str) -> Result<(), Status> {
    platform
        .store()
        .list_ca_certificates(with_token(
            store::ListCaCertificatesRequest::default(),
            token,
        ))
        .await?;
    platform
        .ftm()
        .list_ftms(with_token(ftm::ListFtmsRequest::default(), token))
        .await?;
    Ok(())
}

/// Waits (bounded) until both services accept `token`: a new key reaches them on their next
/// refresh, which an unknown key id triggers at most every few seconds.
async fn until_accepted(platform: &InProcessPlatform, token: &str) {
    let mut last = None;
    for _ in 0..300 {
        match use_token(platform, token).await {
            Ok(()) => return,
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                last = Some(status);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the new key never reached the services: {last:?}");
}

/// The `kid` header of a JWT.
fn key_id(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64")).expect("json");
    json["kid"].as_str().expect("kid").to_owned()
}

/// The key ids the registry publishes as JWKS.
async fn published_key_ids(platform: &InProcessPlatform) -> Vec<String> {
    let keys = platform
        .registry()
        .get_token_verification_keys(partner::GetTokenVerificationKeysRequest::default())
        .await
        .expect("keys")
        .into_inner();
    let jwks: serde_json::Value = serde_json::from_str(&keys.jwks).expect("JWKS");
    let mut ids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Writes a new signing key to `directory/name` and returns its path.
fn new_key(directory: &Path, name: &str) -> String {
    let path = directory.join(name);
    let key = pmp_common::keys::generate_ec_private_key_pem().expect("key");
    std::fs::write(&path, key).expect("write key");
    path.display().to_string()
}

/// Writes the public half of the private key at `private_key_file` next to it.
fn public_half(private_key_file: &str) -> String {
    let private = std::fs::read(private_key_file).expect("key");
    let public = pmp_common::keys::public_key_pem(&private).expect("public key");
    let path = format!("{private_key_file}.pub");
    std::fs::write(&path, public).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_key_rotates_without_restarting_the_other_services() {
    for backend in backends() {
        let mut platform = InProcessPlatform::start(Options::on(backend))
            .await
            .expect("platform");
        let directory = platform.directory.path().to_owned();
        let first_key = directory
            .join("token-signing-key.pem")
            .display()
            .to_string();
        let first_token = platform.admin().await;
        use_token(&platform, &first_token)
            .await
            .expect("first key works");

        // Rotation: a new signing key, the old one's public half still published.
        let second_key = new_key(&directory, "second-key.pem");
        let first_public = public_half(&first_key);
        platform
            .restart_registry(|settings| {
                settings.tokens.signing_key_file = second_key.clone();
                settings.tokens.previous_public_key_files = vec![first_public.clone()];
            })
            .await
            .expect("registry restarted");
        let second_token = platform.admin().await;
        assert_ne!(key_id(&second_token), key_id(&first_token));
        let mut expected = vec![key_id(&first_token), key_id(&second_token)];
        expected.sort();
        assert_eq!(published_key_ids(&platform).await, expected);
        until_accepted(&platform, &second_token).await;
        use_token(&platform, &first_token)
            .await
            .expect("tokens of the previous key stay valid during the rotation");

        // The old key retired: once the services refreshed, its tokens are refused.
        let third_key = new_key(&directory, "third-key.pem");
        platform
            .restart_registry(|settings| {
                settings.tokens.signing_key_file = third_key.clone();
                settings.tokens.previous_public_key_files = Vec::new();
            })
            .await
            .expect("registry restarted");
        let third_token = platform.admin().await;
        assert_eq!(
            published_key_ids(&platform).await,
            vec![key_id(&third_token)]
        );
        until_accepted(&platform, &third_token).await;
        for retired in [&first_token, &second_token] {
            assert_error(
                use_token(&platform, retired).await,
                Code::Unauthenticated,
                "KER-ATH-401",
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_partner_cannot_log_in_until_reactivated() {
    for backend in backends() {
        let platform = InProcessPlatform::start(Options::on(backend))
            .await
            .expect("platform");
        let admin = platform.admin().await;
        let root = CertificateSpec::ca("Accounts Root")
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        platform
            .upload_ca(&admin, &root.pem().expect("pem"), "FTM")
            .await
            .expect("CA");
        let token = platform
            .register("carol", "FTM_Provider", "Carol Chips")
            .await;
        let certificate = CertificateSpec::leaf("carol")
            .organisation("Carol Chips")
            .key(KeySpec::EcP256)
            .issued_by(&root)
            .expect("leaf");
        platform
            .upload_partner_certificate(&token, "carol", &certificate.pem().expect("pem"))
            .await
            .expect("activated");
        platform
            .set_partner_active(&admin, "carol", false)
            .await
            .expect("deactivated");
        assert_error(
            platform.login("carol", PARTNER_PASSWORD).await,
            Code::FailedPrecondition,
            "PMS_PMP_016",
        );
        assert_error(
            platform.login("carol", "wrong-password").await,
            Code::Unauthenticated,
            "KER-ATH-401",
        );
        platform
            .set_partner_active(&admin, "carol", true)
            .await
            .expect("reactivated");
        platform
            .login("carol", PARTNER_PASSWORD)
            .await
            .expect("an active partner logs in");
    }
}
