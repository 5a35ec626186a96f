//! Several processes of one service, as Kubernetes runs them: replicas starting at the same
//! moment against one fresh database migrate it once and all serve; the `migrate` command
//! a Helm Job runs is idempotent; and a trust change made through one certificate-store
//! replica reaches another through the shared database.

mod support;

use std::time::{Duration, Instant};

use tonic_health::pb::health_check_response::ServingStatus;

use pmp_common::db::testing::{TestDatabase, backends};
use pmp_common::testing::with_token;
use pmp_e2e::{Platform, Process};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;

use support::{Clients, approved_ftm, ftm_pki, onboard_partner, trusted_in_ftm, verify_in_ftm};

/// Migrations of the partner registry, as its log reports them.
const REGISTRY_MIGRATIONS: usize = 5;

/// How many migrations each process's log says it applied.
fn applied_counts(logs: &[String]) -> Vec<usize> {
    logs.iter()
        .map(|log| {
            log.lines()
                .filter(|line| line.contains("database migrated"))
                .filter_map(|line| line.split("applied=").nth(1))
                .filter_map(|count| count.trim().parse::<usize>().ok())
                .sum()
        })
        .collect()
}

#[tokio::test]
async fn replicas_starting_at_once_on_a_fresh_database_migrate_it_once_and_all_serve() {
    if !backends().contains(&"postgres") {
        eprintln!("PMP_TEST_POSTGRES_URL is not set: the migration lock is PostgreSQL's");
        return;
    }
    let platform = Platform::start("postgres").await.expect("platform");
    let fresh = TestDatabase::postgres().await.expect("fresh database");
    let url = fresh.settings.url.clone();
    let overrides = [("PMP_REGISTRY__DATABASE__URL", url.as_str())];
    let replicas: Vec<Process> = (0..4)
        .map(|_| {
            platform
                .spawn_replica("partner-registry", &overrides)
                .expect("replica")
        })
        .collect();
    for replica in &replicas {
        replica.wait_serving().await.expect("every replica serves");
    }
    let logs: Vec<String> = replicas.iter().map(Process::log).collect();
    let mut counts = applied_counts(&logs);
    counts.sort_unstable();
    assert_eq!(
        counts,
        [0, 0, 0, REGISTRY_MIGRATIONS],
        "one replica migrates, the others wait and find nothing pending:\n{}",
        logs.join("\n---\n")
    );

    // The Helm Job's command: idempotent, and it reports what it did.
    let (status, output) = platform
        .run_command("partner-registry", &["migrate"], &overrides)
        .expect("migrate runs");
    assert!(status.success(), "{output}");
    assert_eq!(
        applied_counts(std::slice::from_ref(&output)),
        [0],
        "{output}"
    );
    let second = TestDatabase::postgres().await.expect("second database");
    let (status, output) = platform
        .run_command(
            "partner-registry",
            &["migrate"],
            &[("PMP_REGISTRY__DATABASE__URL", second.settings.url.as_str())],
        )
        .expect("migrate runs");
    assert!(status.success(), "{output}");
    assert_eq!(
        applied_counts(std::slice::from_ref(&output)),
        [REGISTRY_MIGRATIONS],
        "{output}"
    );
}

/// Waits until the store behind `client` answers `expected` for `pem`; returns how long it
/// took, or panics after `patience`.
async fn until_trust_is(
    client: &CertificateStoreClient<tonic::transport::Channel>,
    token: &str,
    pem: &str,
    expected: bool,
    patience: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if trusted_in_ftm(client, token, pem).await == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < patience,
            "the other replica still answers trusted = {} after {patience:?}",
            !expected
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_trust_change_through_one_store_replica_reaches_the_other() {
    for backend in backends() {
        let platform = Platform::start(backend).await.expect("platform");
        // A second store process on the same database, polling every 500 ms; it starts
        // before any CA or chip exists, so everything below reaches it only by polling.
        let replica = platform
            .spawn_replica(
                "certificate-store",
                &[(
                    "PMP_CERTSTORE__CERTIFICATES__TRUST_REFRESH_INTERVAL_MS",
                    "500",
                )],
            )
            .expect("replica");
        replica.wait_serving().await.expect("replica serves");
        let other = CertificateStoreClient::new(replica.channel().await.expect("channel"));

        let clients = Clients::connect(&platform).await;
        let pki = ftm_pki();
        let (admin, partner_token) = onboard_partner(&clients, &pki).await;
        let (approved, chip) =
            approved_ftm(&clients, &pki, &admin, &partner_token, "Replica Chip").await;
        assert_eq!(approved.status(), ftm::FtmStatus::Approved, "{backend}");
        let pem = chip.pem().expect("pem");
        assert!(
            clients.trusted(&admin, &chip).await,
            "{backend}: trusted on the replica that was written to"
        );
        // Generous bounds: they only tell a poller that works from one that does not; the
        // interval itself is the store's own test's business.
        let patience = Duration::from_secs(15);
        until_trust_is(&other, &admin, &pem, true, patience).await;

        let request = ftm::DeactivateFtmRequest {
            ftm_id: approved.ftm_id.clone(),
        };
        clients
            .ftm
            .clone()
            .deactivate_ftm(with_token(request, &admin))
            .await
            .expect("deactivated");
        assert!(!clients.trusted(&admin, &chip).await, "{backend}");
        until_trust_is(&other, &admin, &pem, false, patience).await;
    }
}

/// The state of `service` at the process behind `channel`.
async fn health(channel: tonic::transport::Channel, service: &str) -> ServingStatus {
    pmp_common::testing::health_status(channel, service)
        .await
        .expect("health answers")
}

#[tokio::test]
async fn after_sigterm_a_replica_reports_not_serving_yet_answers_every_call_until_it_drains() {
    let platform = Platform::start("sqlite").await.expect("platform");
    let mut replica = platform
        .spawn_replica(
            "certificate-store",
            &[("PMP_CERTSTORE__SERVER__SHUTDOWN_DELAY_SECONDS", "3")],
        )
        .expect("replica");
    replica.wait_serving().await.expect("replica serves");
    let clients = Clients::connect(&platform).await;
    let admin = clients.login("admin", pmp_e2e::ADMIN_PASSWORD).await;
    let pem = support::chip(&ftm_pki(), "Shutdown Chip")
        .pem()
        .expect("pem");
    let existing = replica.channel().await.expect("channel");
    let store = CertificateStoreClient::new(existing.clone());

    // Load on one long-lived connection and on a new connection per call.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for fresh_connections in [false, true] {
        let (stop, store, admin, pem) = (stop.clone(), store.clone(), admin.clone(), pem.clone());
        let address = replica.address.clone();
        load.spawn(async move {
            let (mut succeeded, mut failed) = (0_u32, 0_u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ok = if fresh_connections {
                    match Platform::channel(&address).await {
                        Ok(channel) => {
                            verify_in_ftm(&CertificateStoreClient::new(channel), &admin, &pem)
                                .await
                                .is_ok()
                        }
                        Err(_) => false,
                    }
                } else {
                    verify_in_ftm(&store, &admin, &pem).await.is_ok()
                };
                if ok { succeeded += 1 } else { failed += 1 }
            }
            (succeeded, failed)
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    replica.send_sigterm().expect("SIGTERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        health(
            existing.clone(),
            pmp_proto::service_names::CERTIFICATE_STORE
        )
        .await,
        ServingStatus::NotServing,
        "readiness fails at once, so endpoints drop the replica"
    );
    assert_eq!(
        health(existing.clone(), pmp_common::server::LIVENESS_SERVICE).await,
        ServingStatus::Serving,
        "liveness holds through the shutdown"
    );
    // Well inside the 3 s delay: calls keep coming, on old and new connections.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(joined) = load.join_next().await {
        let (succeeded, failed) = joined.expect("load task");
        assert!(succeeded > 0, "the load ran");
        assert_eq!(failed, 0, "no call failed during the delay");
    }
    let status = replica.terminate().await.expect("the replica stops");
    assert!(status.success(), "{status:?}\n{}", replica.log());
    assert!(
        replica.log().contains("still accepting calls"),
        "{}",
        replica.log()
    );
}

/// Calls the FTM service's `GetFtmCertificate` (which reads the store) until `stop`; returns
/// (succeeded, failed with their statuses).
async fn read_certificates_until(
    ftm_service: pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient<
        tonic::transport::Channel,
    >,
    token: String,
    ftm_id: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u32, Vec<tonic::Status>) {
    let (mut succeeded, mut failed) = (0, Vec::new());
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let request = ftm::GetFtmCertificateRequest {
            ftm_id: ftm_id.clone(),
        };
        match ftm_service
            .clone()
            .get_ftm_certificate(with_token(request, &token))
            .await
        {
            Ok(_) => succeeded += 1,
            Err(status) => failed.push(status),
        }
    }
    (succeeded, failed)
}

/// How many successful `GetPartnerCertificate` calls a store process's access log records.
fn certificate_reads(process: &Process) -> usize {
    process
        .log()
        .lines()
        .filter(|line| line.contains("CertificateStore/GetPartnerCertificate code=Ok"))
        .count()
}

#[tokio::test]
async fn a_client_spreads_calls_over_store_replicas_and_loses_none_when_they_go() {
    let platform = Platform::start("sqlite").await.expect("platform");
    let clients = Clients::connect(&platform).await;
    let pki = ftm_pki();
    let (admin, partner_token) = onboard_partner(&clients, &pki).await;
    let (approved, _) = approved_ftm(&clients, &pki, &admin, &partner_token, "Spread Chip").await;

    // Two more store processes on the store's database, and an FTM service process that
    // knows all three stores.
    let delay = [("PMP_CERTSTORE__SERVER__SHUTDOWN_DELAY_SECONDS", "1")];
    let mut killed = platform
        .spawn_replica("certificate-store", &delay)
        .expect("replica");
    let mut drained = platform
        .spawn_replica("certificate-store", &delay)
        .expect("replica");
    for replica in [&killed, &drained] {
        replica.wait_serving().await.expect("replica serves");
    }
    let stores = [&platform.certstore, &killed, &drained]
        .map(|store| store.address.as_str())
        .join(",");
    let balanced = platform
        .spawn_replica(
            "ftm-management",
            &[("PMP_FTM__CERTIFICATE_STORE__ADDRESS", stores.as_str())],
        )
        .expect("FTM service");
    balanced.wait_serving().await.expect("FTM service serves");
    let ftm_service = pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient::new(
        balanced.channel().await.expect("channel"),
    );
    let stores_before = [&platform.certstore, &killed, &drained].map(certificate_reads);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        load.spawn(read_certificates_until(
            ftm_service.clone(),
            partner_token.clone(),
            approved.ftm_id.clone(),
            stop.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spread = [&platform.certstore, &killed, &drained].map(certificate_reads);
    for (index, (before, after)) in stores_before.iter().zip(spread).enumerate() {
        assert!(
            after > *before,
            "store process {index} served none of the calls ({before} before, {after} after)\n{}",
            [&platform.certstore, &killed, &drained][index].log()
        );
    }

    // One replica dies abruptly, another shuts down as Kubernetes stops a pod.
    killed.kill().expect("SIGKILL");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = drained.terminate().await.expect("drained replica stops");
    assert!(status.success(), "{status:?}\n{}", drained.log());
    let survivor_before = certificate_reads(&platform.certstore);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut succeeded, mut failed) = (0, Vec::new());
    while let Some(joined) = load.join_next().await {
        let (ok, errors) = joined.expect("load task");
        succeeded += ok;
        failed.extend(errors);
    }
    assert!(succeeded > 0, "the load ran");
    assert!(
        failed.is_empty(),
        "calls failed: {failed:?}\n{}",
        balanced.log()
    );
    assert!(
        certificate_reads(&platform.certstore) > survivor_before,
        "the surviving replica took the calls"
    );
}
