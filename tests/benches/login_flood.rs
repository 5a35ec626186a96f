//! Peak memory of the partner registry under a flood of concurrent logins (run with `make
//! bench`, which builds the release binaries first): the figure the Helm chart's memory
//! limit of the registry is set from.
//!
//! Each login runs argon2id (19 MiB of memory per hash). The registry hashes on a fixed
//! number of threads (`limits.hashing_threads`) with a bounded queue, so its peak memory
//! must not grow with the number of concurrent callers. The flood comes from unknown user
//! names with the per-address failure limit lifted, as a distributed attack from many
//! addresses would look: every attempt reaches the hasher.

use std::time::{Duration, Instant};

use tonic::Code;

use pmp_e2e::Platform;
use pmp_proto::partner::v1::LoginRequest;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

/// Concurrent logins per wave.
const CONCURRENT: usize = 200;
/// Waves.
const WAVES: usize = 5;

/// A line of `/proc/<pid>/status` in KiB (VmRSS: now, VmHWM: peak).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or_default()
}

async fn flood(
    client: &PartnerRegistryClient<tonic::transport::Channel>,
    wave: usize,
) -> [usize; 3] {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..CONCURRENT {
        let mut client = client.clone();
        tasks.spawn(async move {
            client
                .login(LoginRequest {
                    username: format!("flood-{wave}-{index}"),
                    password: "not-the-password".into(),
                })
                .await
        });
    }
    let mut outcomes = [0; 3];
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task").map_err(|status| status.code()) {
            Err(Code::Unauthenticated) => outcomes[0] += 1,
            Err(Code::ResourceExhausted) => outcomes[1] += 1,
            _ => outcomes[2] += 1,
        }
    }
    outcomes
}

#[tokio::main]
async fn main() {
    let threads = std::env::var("PMP_BENCH_HASHING_THREADS").unwrap_or_else(|_| "2".into());
    let platform = Platform::start_with(
        "sqlite",
        &[
            ("PMP_REGISTRY__LIMITS__FAILURES_PER_ADDRESS", "100000000"),
            ("PMP_REGISTRY__LIMITS__FAILURES_PER_USER", "100000000"),
            ("PMP_REGISTRY__LIMITS__HASHING_THREADS", threads.as_str()),
            ("RUST_LOG", "warn"),
        ],
    )
    .await
    .expect("platform");
    let pid = platform.registry.pid();
    let channel = platform.registry.channel().await.expect("channel");
    let client = PartnerRegistryClient::new(channel);
    let idle = memory_kib(pid, "VmRSS:");
    let started = Instant::now();
    let mut totals = [0; 3];
    for wave in 0..WAVES {
        let outcomes = flood(&client, wave).await;
        for (total, count) in totals.iter_mut().zip(outcomes) {
            *total += count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let peak = memory_kib(pid, "VmHWM:");
    println!(
        "registry login flood: {WAVES} waves of {CONCURRENT} concurrent logins, {threads} hashing threads"
    );
    println!("  answered 401 (hashed)        {:>8}", totals[0]);
    println!("  answered RESOURCE_EXHAUSTED  {:>8}", totals[1]);
    println!("  anything else                {:>8}", totals[2]);
    println!("  duration                     {elapsed:>8.2?}");
    println!("  resident memory idle         {:>8} KiB", idle);
    println!("  resident memory peak (HWM)   {:>8} KiB", peak);
}
