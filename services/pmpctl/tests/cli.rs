//! The built `pmpctl` binary against a real partner registry and certificate store:
//! registration and login, the certificate workflow, JSON output, and the documented exit
//! codes of each class of failure.

mod common;

use common::{PARTNER_PASSWORD, Platform, UNREACHABLE, arg, dev_certs};

const ORG: &str = "ACME Chips Ltd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_and_show_the_partner() {
    let platform = Platform::start().await;
    let partner = platform.user();

    let registered = partner.register("acme-chips", ORG).await;
    assert!(
        registered.ok().contains("acme-chips"),
        "{}",
        registered.stdout
    );
    assert!(registered.stdout.contains("IN_PROGRESS"));

    let login = partner.login("acme-chips", PARTNER_PASSWORD).await;
    login.ok();
    assert!(
        !login.stdout.contains(PARTNER_PASSWORD),
        "password echoed: {}",
        login.stdout
    );
    assert!(partner.token_file().exists(), "no token file");
    #[cfg(unix)]
    assert_eq!(common::mode(&partner.token_file()), 0o600);

    // Without an id, `partner show` shows the logged-in partner.
    let shown = partner.run(&["partner", "show"]).await;
    assert!(shown.ok().contains("acme-chips"), "{}", shown.stdout);
    assert!(shown.stdout.contains("PARTNER ID"));
    assert!(shown.stdout.contains(ORG));

    let whoami = partner.run(&["whoami", "--quiet"]).await;
    assert_eq!(whoami.ok().trim(), "acme-chips");

    let logout = partner.run(&["logout"]).await;
    logout.ok();
    assert!(!partner.token_file().exists(), "token file left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_has_the_documented_fields() {
    let platform = Platform::start().await;
    let partner = platform.user();
    let registered = partner
        .run_with(
            &[
                "register",
                "--output",
                "json",
                "--partner-id",
                "json-partner",
                "--password",
                PARTNER_PASSWORD,
                "--first-name",
                "Grace",
                "--last-name",
                "Hopper",
                "--organisation",
                ORG,
                "--address",
                "2 Main Street",
                "--email",
                "grace@acme.example",
                "--phone",
                "+1 555 0101",
            ],
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(registered["partner_id"], "json-partner");
    assert_eq!(registered["status"], "IN_PROGRESS");
    assert_eq!(registered["partner_type"], "FTM_Provider");
    assert_eq!(registered["organization_name"], ORG);
    assert!(registered["certificate_id"].is_null());
    let created = registered["create_time"].as_str().expect("create_time");
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");

    partner.login("json-partner", PARTNER_PASSWORD).await.ok();
    let shown = partner
        .run(&["partner", "show", "json-partner", "-o", "json"])
        .await
        .json();
    for key in [
        "partner_id",
        "first_name",
        "last_name",
        "organization_name",
        "partner_type",
        "address",
        "email",
        "phone",
        "lang_code",
        "status",
        "certificate_id",
        "create_time",
        "update_time",
    ] {
        assert!(shown.get(key).is_some(), "missing {key}: {shown}");
    }

    // --quiet prints only the id of what was created.
    let quiet = partner
        .run_with(
            &[
                "register",
                "--quiet",
                "--partner-id",
                "quiet-partner",
                "--password-stdin",
                "--first-name",
                "Q",
                "--last-name",
                "Uiet",
                "--organization",
                ORG,
                "--address",
                "3 Main Street",
                "--email",
                "quiet@acme.example",
                "--phone",
                "+1 555 0102",
            ],
            &[],
            Some(PARTNER_PASSWORD),
        )
        .await;
    assert_eq!(quiet.ok(), "quiet-partner\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_workflow_activates_the_partner_and_verifies_trust() {
    let platform = Platform::start().await;
    let admin = platform.user();
    let partner = platform.user();
    let certs = platform.directory.path().join("certs");

    let generated = dev_certs(&partner, ORG, &certs).await;
    assert!(
        generated.ok().contains("DEVELOPMENT ONLY"),
        "{}",
        generated.stdout
    );
    assert!(generated.stderr.contains("DEVELOPMENT ONLY"));
    for file in [
        "root.pem",
        "intermediate.pem",
        "ca-bundle.pem",
        "partner.pem",
        "partner-key.pem",
        "ftm-chip.pem",
        "ftm-chip-key.pem",
    ] {
        assert!(certs.join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    {
        assert_eq!(common::mode(&certs.join("partner-key.pem")), 0o600);
        assert_eq!(common::mode(&certs.join("ftm-chip-key.pem")), 0o600);
    }
    // Existing files are kept unless --force.
    dev_certs(&partner, ORG, &certs)
        .await
        .fails_with(2, &["--force"]);

    // The admin loads the FTM domain's CAs.
    admin.become_admin().await;
    let uploaded = admin
        .run(&[
            "ca",
            "upload",
            &arg(&certs.join("ca-bundle.pem")),
            "--domain",
            "FTM",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(uploaded["status"], "UPLOAD_SUCCESS", "{uploaded}");
    let results = uploaded["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    let root_id = results
        .iter()
        .find(|result| result["ca_type"] == "ROOT")
        .and_then(|result| result["certificate_id"].as_str())
        .expect("root id")
        .to_owned();
    let intermediate_id = results
        .iter()
        .find(|result| result["ca_type"] == "INTERMEDIATE")
        .and_then(|result| result["certificate_id"].as_str())
        .expect("intermediate id")
        .to_owned();

    let listed = admin.run(&["ca", "list", "--domain", "FTM"]).await;
    assert!(listed.ok().contains(&root_id), "{}", listed.stdout);
    assert!(listed.stdout.contains(&intermediate_id));
    assert!(listed.stdout.contains("2 of 2"));
    let shown = admin
        .run(&["ca", "show", &intermediate_id, "-o", "json"])
        .await
        .json();
    assert_eq!(shown["ca_type"], "INTERMEDIATE");
    assert_eq!(shown["issuer_certificate_id"], root_id.as_str());
    let p7b = certs.join("path.p7b");
    let path = admin
        .run(&["ca", "trust-path", &intermediate_id, "--p7b", &arg(&p7b)])
        .await;
    assert_eq!(path.ok().matches("-----BEGIN CERTIFICATE-----").count(), 2);
    let bundle =
        openssl::pkcs7::Pkcs7::from_der(&std::fs::read(&p7b).expect("p7b")).expect("DER PKCS#7");
    let signed = bundle.signed().expect("signed data");
    assert_eq!(signed.certificates().map_or(0, |stack| stack.len()), 2);

    // The partner uploads its certificate through the registry and becomes ACTIVE.
    partner.become_partner("acme-chips", ORG).await;
    let certificate = partner
        .run(&[
            "partner",
            "cert",
            "upload",
            &arg(&certs.join("partner.pem")),
            "--quiet",
        ])
        .await;
    let certificate_id = certificate.ok().trim().to_owned();
    assert!(!certificate_id.is_empty());
    let active = partner.run(&["partner", "show"]).await;
    assert!(active.ok().contains("ACTIVE"), "{}", active.stdout);
    assert!(active.stdout.contains(&certificate_id));
    let bundle = partner
        .run(&["partner", "cert", "show", "-o", "json"])
        .await
        .json();
    assert_eq!(bundle["certificate_id"], certificate_id.as_str());
    assert_eq!(bundle["expired"], false);
    let pem = partner
        .run(&["partner", "cert", "show", "--platform-pem"])
        .await;
    assert!(pem.ok().starts_with("-----BEGIN CERTIFICATE-----"));

    // Verification, with the trace id on stderr under --verbose.
    let verified = partner
        .run(&["verify", &arg(&certs.join("partner.pem")), "--verbose"])
        .await;
    assert!(verified.ok().contains("TRUSTED"), "{}", verified.stdout);
    assert!(verified.stdout.contains("yes"));
    assert!(
        verified.stderr.contains("trace_id=")
            && verified
                .stderr
                .contains("CertificateStore/VerifyCertificateTrust OK"),
        "{}",
        verified.stderr
    );
    let quiet = partner
        .run(&["verify", &arg(&certs.join("partner.pem")), "-q"])
        .await;
    assert_eq!(quiet.ok().trim(), "trusted");

    // A binary DER certificate is converted before sending.
    let der_path = certs.join("partner.cer");
    let pem_text = std::fs::read(certs.join("partner.pem")).expect("pem");
    let der = openssl::x509::X509::from_pem(&pem_text)
        .expect("x509")
        .to_der()
        .expect("der");
    std::fs::write(&der_path, der).expect("write der");
    let verified_der = partner
        .run(&["verify", &arg(&der_path), "-o", "json"])
        .await
        .json();
    assert_eq!(verified_der["trusted"], true);

    // The admin lists partners and deactivates, then re-activates this one.
    let partners = admin
        .run(&["partner", "list", "--status", "active", "-q"])
        .await;
    assert_eq!(partners.ok().trim(), "acme-chips");
    let deactivated = admin
        .run(&["partner", "deactivate", "acme-chips", "-o", "json"])
        .await
        .json();
    assert_eq!(deactivated["status"], "DEACTIVATED");
    let activated = admin
        .run(&["partner", "activate", "acme-chips", "-o", "json"])
        .await
        .json();
    assert_eq!(activated["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_their_documented_exit_codes() {
    let platform = Platform::start().await;
    let partner = platform.user();
    partner.register("dup-partner", ORG).await.ok();

    // Conflict: 6.
    partner
        .register("dup-partner", ORG)
        .await
        .fails_with(6, &["error: ALREADY_EXISTS PMS_PRT_051:"]);

    // No token: 3.
    let anonymous = platform.user();
    anonymous
        .run(&["partner", "show", "dup-partner"])
        .await
        .fails_with(3, &["UNAUTHENTICATED KER-ATH-401", "pmpctl login"]);
    // Wrong password: 3, and no token file.
    anonymous
        .login("dup-partner", "not-the-password")
        .await
        .fails_with(3, &["KER-ATH-401"]);
    assert!(!anonymous.token_file().exists());

    // Not found: 4.
    let admin = platform.user();
    admin.become_admin().await;
    admin
        .run(&["partner", "show", "nobody-here"])
        .await
        .fails_with(4, &["NOT_FOUND PMS_PRT_005"]);

    // Permission: 3 (a partner listing partners).
    partner.login("dup-partner", PARTNER_PASSWORD).await.ok();
    partner
        .run(&["partner", "list"])
        .await
        .fails_with(3, &["PERMISSION_DENIED KER-ATH-403"]);

    // Invalid input: 5.
    partner
        .run_with(
            &[
                "register",
                "--partner-id",
                "weak",
                "--password",
                "short",
                "--first-name",
                "A",
                "--last-name",
                "B",
                "--organization",
                ORG,
                "--address",
                "x",
                "--email",
                "weak@acme.example",
                "--phone",
                "1",
            ],
            &[],
            None,
        )
        .await
        .fails_with(5, &["INVALID_ARGUMENT PMS_PRT_014"]);

    // Unavailable: 7.
    partner
        .run(&["partner", "show", "--registry", UNREACHABLE])
        .await
        .fails_with(
            7,
            &["UNAVAILABLE", "partner registry at http://127.0.0.1:9"],
        );

    // A service that accepts connections but never answers: the deadline ends it, 7.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_address = format!("http://{}", silent.local_addr().expect("address"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    partner
        .run(&[
            "partner",
            "show",
            "dup-partner",
            "--timeout",
            "1",
            "--registry",
            &silent_address,
        ])
        .await
        .fails_with(7, &["DEADLINE_EXCEEDED"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    holder.abort();

    // Usage: 2 (clap), and a missing password.
    partner
        .run(&["partner", "frobnicate"])
        .await
        .fails_with(2, &["frobnicate"]);
    partner
        .run_with(&["login", "dup-partner", "--password-stdin"], &[], Some(""))
        .await
        .fails_with(2, &["password"]);

    // A bundle the store keeps nothing of: 6 after printing the per-certificate reasons.
    let certs = platform.directory.path().join("certs");
    dev_certs(&partner, ORG, &certs).await.ok();
    let bundle = arg(&certs.join("ca-bundle.pem"));
    admin.run(&["ca", "upload", &bundle]).await.ok();
    let again = admin.run(&["ca", "upload", &bundle]).await;
    again.fails_with(6, &["UPLOAD_FAILED"]);
    assert!(again.stdout.contains("KER-PCM-003"), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_addresses_come_from_options_environment_and_config_file() {
    let platform = Platform::start().await;
    let admin = platform.user();

    // `login --print-token` prints instead of saving; PMPCTL_TOKEN then authenticates.
    let printed = admin
        .run_with(
            &["login", "admin", "--password-stdin", "--print-token"],
            &[],
            Some(common::TEST_ADMIN_PASSWORD),
        )
        .await;
    let token = printed.ok().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
    assert!(!admin.token_file().exists());
    let listed = admin
        .run_with(&["partner", "list"], &[("PMPCTL_TOKEN", &token)], None)
        .await;
    assert!(listed.ok().contains("0 of 0"), "{}", listed.stdout);

    // Addresses from config.toml when neither option nor environment names them.
    std::fs::create_dir_all(admin.config_directory()).expect("config dir");
    std::fs::write(
        admin.config_directory().join("config.toml"),
        format!("registry = \"{}\"\n", platform.registry_address),
    )
    .expect("config");
    let from_file = admin
        .run_with(
            &["partner", "list", "--token", &token],
            &[("PMPCTL_REGISTRY", "")],
            None,
        )
        .await;
    from_file.ok();
    // ... and an option beats both.
    admin
        .run(&[
            "partner",
            "list",
            "--token",
            &token,
            "--registry",
            UNREACHABLE,
        ])
        .await
        .fails_with(7, &["UNAVAILABLE"]);
}
