//! The trust feed survives a crash of the certificate store: the store process is killed
//! with SIGKILL in the middle of a burst of changes (some committed and not yet delivered,
//! some never committed), started again on the same database, and a consumer that resumes
//! from the last version it applied gets every committed change exactly once, none that
//! was not committed, and ends with exactly the store's data. A `pmp-trust-client` mirror
//! on the same address recovers by itself.

use std::collections::BTreeSet;
use std::time::Duration;

use tonic::transport::Channel;

use pmp_common::db::testing::backends;
use pmp_common::testing::with_token;
use pmp_dev_certs::{CertificateSpec, KeySpec};
use pmp_e2e::{ADMIN_PASSWORD, Platform};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::trust_change::Change;
use pmp_proto::certstore::v1::{TrustChange, UploadCaCertificateRequest, WatchTrustChangesRequest};
use pmp_proto::partner::v1 as partner;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_trust_client::{MirrorSettings, TrustMirror};

/// Roots uploaded; the store is killed after `KILL_AFTER` of them answered, with three more
/// in flight.
const BURST: usize = 12;
const KILL_AFTER: usize = 5;

/// What a consumer has applied: the CA certificates it knows and the last version.
#[derive(Default)]
struct Consumer {
    version: i64,
    cas: BTreeSet<String>,
    /// Every event version received, in order (snapshots excluded).
    versions: Vec<i64>,
}

impl Consumer {
    /// Applies messages until the feed breaks, or, with `until_idle`, until a heartbeat
    /// says it is caught up.
    async fn follow(
        &mut self,
        client: &mut CertificateStoreClient<Channel>,
        admin: &str,
        until_idle: bool,
    ) {
        let request = WatchTrustChangesRequest {
            partner_domains: vec!["FTM".into()],
            from_version: self.version,
        };
        let Ok(response) = client.watch_trust_changes(with_token(request, admin)).await else {
            return;
        };
        let mut stream = response.into_inner();
        loop {
            let message =
                match tokio::time::timeout(Duration::from_secs(20), stream.message()).await {
                    Ok(Ok(Some(message))) => message,
                    _ => return,
                };
            let idle = self.apply(message);
            if idle && until_idle {
                return;
            }
        }
    }

    /// Applies one message; whether it was a heartbeat.
    fn apply(&mut self, message: TrustChange) -> bool {
        match message.change {
            Some(Change::Snapshot(part)) => {
                // A resumed consumer must never be sent a snapshot in this test.
                assert_eq!(
                    self.version, 0,
                    "snapshot sent to a consumer that could resume"
                );
                self.cas.extend(
                    part.ca_certificates
                        .into_iter()
                        .map(|ca| ca.certificate_pem),
                );
                self.version = message.version;
                false
            }
            Some(Change::CaCertificateAdded(ca)) => {
                assert!(
                    message.version > self.version,
                    "version {} after {}: duplicated or out of order",
                    message.version,
                    self.version
                );
                self.versions.push(message.version);
                self.version = message.version;
                assert!(
                    self.cas.insert(ca.certificate_pem),
                    "the same CA delivered twice"
                );
                false
            }
            Some(Change::Heartbeat(_)) => true,
            other => panic!("unexpected change {other:?}"),
        }
    }
}

async fn admin_token(platform: &Platform) -> String {
    let mut registry =
        PartnerRegistryClient::new(platform.registry.channel().await.expect("registry"));
    registry
        .login(partner::LoginRequest {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("admin login")
        .into_inner()
        .access_token
}

fn root_pem(index: usize) -> String {
    CertificateSpec::ca(&format!("Crash Test Root {index}"))
        .organisation("Crash Test")
        .key(KeySpec::EcP256)
        .valid_for_days(3650)
        .self_signed()
        .expect("root")
        .pem()
        .expect("pem")
}

#[tokio::test]
async fn a_consumer_resuming_after_a_store_crash_loses_and_duplicates_nothing() {
    for backend in backends() {
        let mut platform = Platform::start(backend).await.expect("platform");
        let admin = admin_token(&platform).await;
        let address = platform.certstore.address.clone();
        let lazy = Channel::from_shared(address.clone())
            .expect("address")
            .connect_lazy();
        let mut store = CertificateStoreClient::new(lazy.clone());
        let mut settings = MirrorSettings::for_domains(&["FTM"]);
        settings.staleness_bound = Duration::from_secs(60);
        settings.reconnect_delay = Duration::from_millis(200);
        let mirror_token = admin.clone();
        let mirror = TrustMirror::start(
            lazy.clone(),
            move || Ok(format!("Bearer {mirror_token}")),
            settings,
        );
        mirror
            .ready(Duration::from_secs(20))
            .await
            .expect("mirror synchronised");

        let uploader = store.clone();
        let upload = |pem: String| {
            let mut store = uploader.clone();
            let admin = admin.clone();
            async move {
                let request = UploadCaCertificateRequest {
                    certificate_data: pem,
                    partner_domain: "FTM".into(),
                };
                store
                    .upload_ca_certificate(with_token(request, &admin))
                    .await
                    .is_ok()
            }
        };
        let roots: Vec<String> = (0..BURST).map(root_pem).collect();
        let mut consumer = Consumer::default();
        consumer.follow(&mut store, &admin, true).await;
        assert!(
            consumer.version > 0 || consumer.cas.is_empty(),
            "{backend}: snapshot taken"
        );
        // Delivered: the first roots. Committed but never delivered: the next ones, since
        // the consumer has left; then the store crashes while more uploads are in flight.
        for pem in &roots[..2] {
            assert!(
                upload(pem.clone()).await,
                "{backend}: upload before the crash"
            );
        }
        consumer.follow(&mut store, &admin, true).await;
        let delivered_before_crash = consumer.versions.len();
        assert_eq!(delivered_before_crash, 2, "{backend}");
        for pem in &roots[2..KILL_AFTER] {
            assert!(
                upload(pem.clone()).await,
                "{backend}: upload before the crash"
            );
        }
        let in_flight: Vec<_> = roots[KILL_AFTER..KILL_AFTER + 3]
            .iter()
            .map(|pem| tokio::spawn(upload(pem.clone())))
            .collect();
        platform
            .crash_and_restart_certstore()
            .await
            .expect("store restarted");
        let mut accepted: Vec<String> = roots[..KILL_AFTER].to_vec();
        for (task, pem) in in_flight.into_iter().zip(&roots[KILL_AFTER..]) {
            if task.await.expect("upload task") {
                accepted.push(pem.clone());
            }
        }
        for pem in &roots[KILL_AFTER + 3..] {
            assert!(
                upload(pem.clone()).await,
                "{backend}: upload after the restart"
            );
            accepted.push(pem.clone());
        }

        consumer.follow(&mut store, &admin, true).await;
        assert!(
            consumer.versions.len() >= BURST - 3,
            "{backend}: the resumed feed delivered the undelivered and later changes: {:?}",
            consumer.versions
        );
        assert!(
            consumer
                .versions
                .windows(2)
                .all(|pair| pair[1] == pair[0] + 1),
            "{backend}: every version exactly once: {:?}",
            consumer.versions
        );
        for pem in &accepted {
            assert!(
                consumer.cas.contains(pem),
                "{backend}: an accepted CA was lost"
            );
        }

        // Nothing invented: a fresh snapshot holds exactly what the consumer built.
        let mut fresh = Consumer::default();
        fresh.follow(&mut store, &admin, true).await;
        assert_eq!(fresh.version, consumer.version, "{backend}");
        assert_eq!(
            fresh.cas, consumer.cas,
            "{backend}: same data as a fresh snapshot"
        );

        // The mirror reconnected to the restarted store by itself and caught up.
        assert!(
            mirror
                .wait_for_version(fresh.version, Duration::from_secs(20))
                .await,
            "{backend}: mirror at {} of {}",
            mirror.version(),
            fresh.version
        );
    }
}
