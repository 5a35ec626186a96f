//! No secret reaches a log: the three binaries run a full workflow at `debug` level — with a
//! failed login, a refused token and a service-to-service call on every step — and their
//! logs are searched for every password, token and private key involved.

mod support;

use pmp_common::testing::with_token;
use pmp_e2e::{ADMIN_PASSWORD, Platform};
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as partner;

use support::{Clients, approved_ftm, ftm_pki, onboard_partner};

/// The base64 lines of every PEM private key under `directory` (recursively).
fn private_key_lines(directory: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(directory).expect("directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            lines.extend(private_key_lines(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("PRIVATE KEY-----") {
            lines.extend(
                text.lines()
                    .filter(|line| !line.starts_with("-----") && line.len() >= 32)
                    .map(str::to_owned),
            );
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_or_private_key_appears_in_any_log() {
    let platform = Platform::start_with("sqlite", &[("RUST_LOG", "debug")])
        .await
        .expect("platform");
    let clients = Clients::connect(&platform).await;
    let pki = ftm_pki();
    let (admin, partner_token) = onboard_partner(&clients, &pki).await;
    let (created, chip) = approved_ftm(&clients, &pki, &admin, &partner_token, "Quiet Chip").await;
    assert!(clients.trusted(&admin, &chip).await);
    let wrong_password = "wrong-guess-Password-77";
    let failed = clients
        .registry
        .clone()
        .login(partner::LoginRequest {
            username: "acme-ftm".into(),
            password: wrong_password.into(),
        })
        .await;
    assert!(failed.is_err());
    let tampered = format!("{partner_token}x");
    let refused = clients
        .ftm
        .clone()
        .get_ftm(with_token(
            ftm::GetFtmRequest {
                ftm_id: created.ftm_id.clone(),
            },
            &tampered,
        ))
        .await;
    assert!(refused.is_err());

    let mut secrets: Vec<String> = vec![
        ADMIN_PASSWORD.to_owned(),
        "acme-password-1".to_owned(),
        wrong_password.to_owned(),
        admin.clone(),
        partner_token.clone(),
        // Every JWT starts with a base64 JSON header: no token of any kind (user, service,
        // forwarded) may be logged, whole or in part.
        "eyJ".to_owned(),
    ];
    for token in [&admin, &partner_token] {
        secrets.push(token.rsplit('.').next().expect("signature").to_owned());
    }
    let key_lines = private_key_lines(platform.directory.path());
    assert!(
        key_lines.len() >= 4,
        "the service identities, token and platform keys were found"
    );
    secrets.extend(key_lines);

    assert!(
        platform.registry.log().contains("acme-ftm") && platform.ftm.log().contains("DEBUG"),
        "the logs cover the workflow"
    );
    for process in [&platform.registry, &platform.certstore, &platform.ftm] {
        let log = process.log();
        assert!(
            log.lines().count() > 20,
            "{} logged the workflow at debug level",
            process.name
        );
        assert!(
            !log.contains('\u{1b}'),
            "{} wrote terminal colour codes into a log file",
            process.name
        );
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "{}'s log contains a secret ({}…):\n{}",
                process.name,
                &secret[..secret.len().min(6)],
                log.lines()
                    .filter(|line| line.contains(secret.as_str()))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
