//! Several processes of one service, as Kubernetes runs them: replicas starting at the same
//! moment against one fresh database migrate it once and all serve; the `migrate` command
//! a Helm Job runs is idempotent; and a trust change made through one certificate-store
//! replica reaches another through the shared database.

mod support;

use std::time::{Duration, Instant};

use pmp_common::db::testing::{TestDatabase, backends};
use pmp_common::testing::with_token;
use pmp_e2e::{Platform, Process};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;

use support::{Clients, approved_ftm, ftm_pki, onboard_partner, trusted_in_ftm};

/// Migrations of the partner registry, as its log reports them.
const REGISTRY_MIGRATIONS: usize = 3;

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
