//! Benchmark of a relying service's in-process verifier (`pmp-trust-client`), next to the
//! store's own numbers (`benches/verify.rs`): a mirror fed by a real in-process store over
//! `WatchTrustChanges` answering from its cache and on a miss, and how long a change on
//! the store takes to reach it. Prints figures; timings live here, never in tests.

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use certificate_store::domain::TrustPolicy;
use pmp_dev_certs::{CertificateSpec, KeySpec};
use pmp_e2e::inprocess::{InProcessPlatform, Options};
use pmp_trust_client::{MirrorSettings, TrustMirror};

fn report(label: &str, operations: u32, elapsed: Duration) {
    let per_operation = elapsed / operations;
    let per_second = f64::from(operations) / elapsed.as_secs_f64();
    println!("{label:<48} {per_operation:>12?}/op {per_second:>12.0} op/s");
}

#[tokio::main]
async fn main() {
    // MOSIP's `chain` policy, as in the store's benchmark: what is measured is path
    // validation and the cache, not registration.
    let platform = InProcessPlatform::start(Options {
        ftm_policy: TrustPolicy::Chain,
        ..Options::on("sqlite")
    })
    .await
    .expect("platform");
    let admin = platform.admin().await;
    let root = CertificateSpec::ca("Bench Root")
        .key(KeySpec::EcP256)
        .valid_for_days(3650)
        .self_signed()
        .expect("root");
    let intermediate = CertificateSpec::ca("Bench CA")
        .key(KeySpec::EcP256)
        .valid_for_days(1800)
        .issued_by(&root)
        .expect("ca");
    for ca in [&root, &intermediate] {
        platform
            .upload_ca(&admin, &ca.pem().expect("pem"), "FTM")
            .await
            .expect("CA upload");
    }
    let signer = platform.service_keys.signer("ftm-management");
    let channel = Channel::from_shared(platform.store_address.clone())
        .expect("address")
        .connect_lazy();
    let mut settings = MirrorSettings::for_domains(&["FTM"]);
    settings.cache_bytes = 256 * 1024 * 1024;
    let mirror = TrustMirror::start(
        channel,
        move || {
            signer
                .token_for("certificate-store")
                .map(|token| format!("Bearer {token}"))
                .map_err(|error| error.to_string())
        },
        settings,
    );
    mirror
        .ready(Duration::from_secs(30))
        .await
        .expect("mirror ready");

    let devices: Vec<String> = (0..2000)
        .map(|index| {
            CertificateSpec::leaf(&format!("device-{index}"))
                .key(KeySpec::EcP256)
                .issued_by(&intermediate)
                .expect("device")
                .pem()
                .expect("pem")
        })
        .collect();
    let started = Instant::now();
    for device in &devices {
        assert!(mirror.verify(device, "FTM").expect("verify").trusted);
    }
    report(
        "mirror verify, cache miss (path validation)",
        devices.len() as u32,
        started.elapsed(),
    );
    let rounds = 50;
    let started = Instant::now();
    for _ in 0..rounds {
        for device in &devices {
            assert!(mirror.verify(device, "FTM").expect("verify").trusted);
        }
    }
    report(
        "mirror verify, cache hit",
        rounds * devices.len() as u32,
        started.elapsed(),
    );

    let changes = 20;
    let mut total = Duration::ZERO;
    for index in 0..changes {
        let extra = CertificateSpec::ca(&format!("Extra {index}"))
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed()
            .expect("root")
            .pem()
            .expect("pem");
        let target = mirror.version() + 1;
        let started = Instant::now();
        platform
            .upload_ca(&admin, &extra, "FTM")
            .await
            .expect("upload");
        assert!(
            mirror
                .wait_for_version(target, Duration::from_secs(5))
                .await
        );
        total += started.elapsed();
    }
    report("CA upload until the mirror has it", changes, total);
}
