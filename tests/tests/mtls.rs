//! The three service binaries on mutual TLS: every listener requires a client certificate
//! of the platform CA, every call between the services presents the caller's certificate,
//! and a certificate naming a platform service is that service's identity.

mod support;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use pmp_common::auth::PLATFORM_SERVICES;
use pmp_common::testing::{assert_error, with_token};
use pmp_e2e::{Platform, TlsFiles, client_tls};
use pmp_proto::partner::v1 as partner;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use support::{Clients, approved_ftm, ftm_pki, onboard_partner};

/// `GetPartner` of `partner_id` on a fresh connection through `endpoint`, with `token`.
async fn get_partner(
    endpoint: Endpoint,
    partner_id: &str,
    token: Option<&str>,
) -> Result<partner::Partner, Status> {
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|error| Status::unavailable(format!("connect: {error}")))?;
    let message = partner::GetPartnerRequest {
        partner_id: partner_id.into(),
    };
    let request = match token {
        Some(token) => with_token(message, token),
        None => tonic::Request::new(message),
    };
    PartnerRegistryClient::new(channel)
        .get_partner(request)
        .await
        .map(tonic::Response::into_inner)
}

fn endpoint(address: &str, tls: Option<ClientTlsConfig>) -> Endpoint {
    let endpoint = Endpoint::from_shared(address.to_owned()).expect("address");
    match tls {
        Some(tls) => endpoint.tls_config(tls).expect("TLS"),
        None => endpoint,
    }
}

/// A refusal before any RPC runs: the TLS handshake (or the plain-text attempt) fails.
#[track_caller]
fn assert_refused_by_transport(result: Result<partner::Partner, Status>, what: &str) {
    match result {
        Ok(partner) => panic!("{what}: got {partner:?}"),
        Err(status) => assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
            ) && pmp_common::error::reason_of(&status).is_none(),
            "{what}: refused by the transport, not by an RPC: {status:?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_runs_on_mutual_tls_and_refuses_clients_without_a_valid_certificate() {
    let directory = tempfile::tempdir().expect("directory");
    let tls = TlsFiles::generate(&directory.path().join("tls"), &PLATFORM_SERVICES).expect("TLS");
    let platform = Platform::start_tls("sqlite", &tls).await.expect("platform");
    assert!(platform.registry.address.starts_with("https://"));

    // The whole workflow: the registry calls the store, FTM management calls both, and the
    // store and FTM management fetch the registry's token keys, all over mutual TLS.
    let clients = Clients::connect(&platform).await;
    let pki = ftm_pki();
    let (admin, partner_token) = onboard_partner(&clients, &pki).await;
    let (_, chip) = approved_ftm(&clients, &pki, &admin, &partner_token, "TLS Chip").await;
    assert!(clients.trusted(&admin, &chip).await);

    let address = platform.registry.address.clone();
    let plain_address = address.replacen("https://", "http://", 1);
    assert_refused_by_transport(
        get_partner(endpoint(&plain_address, None), "acme-ftm", Some(&admin)).await,
        "plain text",
    );
    let anonymous_tls = ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(tls.ca_file()).expect("CA")),
    );
    assert_refused_by_transport(
        get_partner(
            endpoint(&address, Some(anonymous_tls)),
            "acme-ftm",
            Some(&admin),
        )
        .await,
        "TLS without a client certificate",
    );
    let rogue =
        TlsFiles::generate(&directory.path().join("rogue"), &["ftm-management"]).expect("rogue CA");
    let rogue_client = ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(tls.ca_file()).expect("CA"),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(rogue.certificate_file("ftm-management")).expect("cert"),
            std::fs::read(rogue.key_file("ftm-management")).expect("key"),
        ));
    assert_refused_by_transport(
        get_partner(endpoint(&address, Some(rogue_client)), "acme-ftm", None).await,
        "a certificate naming ftm-management from another CA",
    );

    // A platform certificate naming a service is that service, no token needed: FTM
    // management may read partners, the store may not; a certificate naming no service
    // is only a TLS client, and still needs a token.
    let as_certificate =
        |name: &str| endpoint(&address, Some(client_tls(&tls, name).expect("TLS")));
    let read = get_partner(as_certificate("ftm-management"), "acme-ftm", None)
        .await
        .expect("ftm-management reads partners by its certificate");
    assert_eq!(read.partner_id, "acme-ftm");
    assert_error(
        get_partner(as_certificate("certificate-store"), "acme-ftm", None).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        get_partner(
            as_certificate(pmp_e2e::HARNESS_CERTIFICATE),
            "acme-ftm",
            None,
        )
        .await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    get_partner(
        as_certificate(pmp_e2e::HARNESS_CERTIFICATE),
        "acme-ftm",
        Some(&partner_token),
    )
    .await
    .expect("an end user over TLS with a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmpctl_talks_mutual_tls_with_a_client_certificate_and_not_without() {
    let directory = tempfile::tempdir().expect("directory");
    let tls = TlsFiles::generate(&directory.path().join("tls"), &PLATFORM_SERVICES).expect("TLS");
    let platform = Platform::start_tls("sqlite", &tls).await.expect("platform");
    tls.issue("operator", &["URI:spiffe://pmp/operator"])
        .expect("operator certificate");
    let path = |path: std::path::PathBuf| path.display().to_string();
    let pmpctl = |with_certificate: bool, arguments: &[&str]| {
        let mut command =
            std::process::Command::new(pmp_e2e::binary_directory().expect("bin").join("pmpctl"));
        command
            .env("XDG_CONFIG_HOME", directory.path())
            .args(["--registry", &platform.registry.address])
            .args(["--certstore", &platform.certstore.address])
            .args(["--ftm", &platform.ftm.address])
            .args(["--ca-file", &path(tls.ca_file())]);
        if with_certificate {
            command
                .args(["--cert-file", &path(tls.certificate_file("operator"))])
                .args(["--key-file", &path(tls.key_file("operator"))]);
        }
        command.args(arguments).output().expect("pmpctl runs")
    };
    let healthy = pmpctl(true, &["health"]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let login = pmpctl(
        true,
        &[
            "login",
            "admin",
            "--password",
            pmp_e2e::ADMIN_PASSWORD,
            "--print-token",
        ],
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&login.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );

    let refused = pmpctl(false, &["health"]);
    assert_eq!(
        refused.status.code(),
        Some(7),
        "UNAVAILABLE without a client certificate: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
