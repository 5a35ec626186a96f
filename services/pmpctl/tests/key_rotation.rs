//! `pmpctl platform-key` and `pmpctl token-key`: rotations of the platform signing key and
//! of the registry's token key driven from the command line against real services (list,
//! add, activate), and their refusals.

mod common;

use certificate_store::x509::{PlatformSigner, pem_string};
use common::{Platform, arg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rotates_the_platform_signing_key_from_the_command_line() {
    // The authority's platform PKI: the test keeps the root key to certify the next key.
    let authority = PlatformSigner::generate().expect("platform PKI");
    let keys = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, content: String| {
        let path = keys.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    };
    let root = write(
        "root.pem",
        pem_string(&authority.root_certificate).expect("pem"),
    );
    let signing = write(
        "signing.pem",
        authority.signer.certificate_pem().expect("pem"),
    );
    let signing_key = write(
        "signing-key.pem",
        authority.signer.private_key_pem().expect("pem"),
    );
    let platform = Platform::start_with_store(Box::new(move |settings| {
        settings.platform.root_certificate_file = root;
        settings.platform.signing_certificate_file = signing;
        settings.platform.signing_key_file = signing_key;
        settings.platform.generate = false;
    }))
    .await;

    let next = PlatformSigner::generate().expect("next key").signer;
    let next_key = write("next-key.pem", next.private_key_pem().expect("pem"));
    let next_certificate = PlatformSigner::issue_signing_certificate(
        &authority.root_certificate,
        &authority.root_private_key,
        &next.certificate.public_key().expect("public key"),
    )
    .expect("issued");
    let next_certificate_file = write("next.pem", pem_string(&next_certificate).expect("pem"));
    let foreign = PlatformSigner::generate().expect("foreign PKI");
    let foreign_file = write(
        "foreign.pem",
        foreign.signer.certificate_pem().expect("pem"),
    );

    let admin = platform.user();
    admin.become_admin().await;
    let root_out = keys.path().join("published-root.pem");
    let listed = admin
        .run(&[
            "platform-key",
            "list",
            "--root",
            &arg(&root_out),
            "-o",
            "json",
        ])
        .await
        .json();
    let keys_of = |listed: &serde_json::Value| -> Vec<(String, String)> {
        listed["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| {
                (
                    key["key_id"].as_str().expect("id").to_owned(),
                    key["state"].as_str().expect("state").to_owned(),
                )
            })
            .collect()
    };
    let before = keys_of(&listed);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1, "ACTIVE");
    assert_eq!(
        std::fs::read_to_string(&root_out).expect("root written"),
        pem_string(&authority.root_certificate).expect("pem")
    );

    // Refused: a certificate of another root; an unknown key id; a partner.
    admin
        .run(&[
            "platform-key",
            "add",
            &arg(std::path::Path::new(&foreign_file)),
            "--key-path",
            &next_key,
        ])
        .await
        .fails_with(5, &["INVALID_ARGUMENT", "PMS_COR_001", "platform root"]);
    admin
        .run(&["platform-key", "activate", "no-such-key"])
        .await
        .fails_with(4, &["NOT_FOUND", "KER-PCM-012"]);

    let added = admin
        .run(&[
            "platform-key",
            "add",
            &arg(std::path::Path::new(&next_certificate_file)),
            "--key-path",
            &next_key,
            "-q",
        ])
        .await;
    let next_id = added.ok().trim().to_owned();
    assert_eq!(next_id.len(), 64, "the key id: {next_id}");
    let activated = admin
        .run(&["platform-key", "activate", &next_id, "-o", "json"])
        .await
        .json();
    assert_eq!(activated["state"], "ACTIVE");
    let after = keys_of(
        &admin
            .run(&["platform-key", "list", "-o", "json"])
            .await
            .json(),
    );
    assert_eq!(
        after,
        [
            (before[0].0.clone(), "PREVIOUS".to_owned()),
            (next_id.clone(), "ACTIVE".to_owned())
        ]
    );
    let table = admin.run(&["platform-key", "list"]).await;
    assert!(table.ok().contains("PUBLISHED UNTIL"), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rotates_the_token_signing_key_from_the_command_line() {
    let platform = Platform::start().await;
    let admin = platform.user();
    admin.become_admin().await;
    let states = |listed: &serde_json::Value| -> Vec<String> {
        let keys = match listed.as_array() {
            Some(keys) => keys.clone(),
            None => vec![listed.clone()],
        };
        keys.iter()
            .map(|key| key["state"].as_str().expect("state").to_owned())
            .collect()
    };
    let before = admin.run(&["token-key", "list", "-o", "json"]).await.json();
    assert_eq!(states(&before), ["ACTIVE"]);

    let directory = tempfile::tempdir().expect("tempdir");
    let key_file = directory.path().join("tokens-2027.pem");
    let key = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve"),
    )
    .expect("key");
    std::fs::write(&key_file, key.private_key_to_pem().expect("pem")).expect("write");

    admin
        .run(&["token-key", "add", "--key-path", "/no/such/key.pem"])
        .await
        .fails_with(5, &["INVALID_ARGUMENT", "PMS_COR_001"]);
    let added = admin
        .run(&["token-key", "add", "--key-path", &arg(&key_file), "-q"])
        .await;
    let key_id = added.ok().trim().to_owned();
    assert!(!key_id.is_empty());
    admin
        .run(&["token-key", "activate", "no-such-key"])
        .await
        .fails_with(4, &["NOT_FOUND", "PMS_KEY_NOT_FOUND"]);
    admin.run(&["token-key", "activate", &key_id]).await.ok();
    let after = admin.run(&["token-key", "list", "-o", "json"]).await.json();
    assert_eq!(states(&after), ["PREVIOUS", "ACTIVE"]);
    // The admin's saved token came from the old key and still works.
    admin.run(&["token-key", "list"]).await.ok();
}
