//! The scenarios of one backend, each next to the limit it is judged against:
//! `Health/Check` on the same server for the gRPC stack, in-process OpenSSL for certificate
//! validation, a single-row insert+commit loop on the same database for writes. The list
//! RPCs at 100,000 rows are in [`crate::lists`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use pmp_dev_certs::{CertificateSpec, DevPki, Issued, KeySpec};
use pmp_e2e::{ADMIN_PASSWORD, Platform, Process};
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use crate::lists;
use crate::load::{self, Measured, Shape};
use crate::report::{Report, Row};
use crate::{Scale, Selection};

const ORG: &str = "Bench Chips";
const PARTNER: &str = "bench-provider";
const PASSWORD: &str = "bench-provider-password";

/// A request with a bearer token.
pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Resident memory of a process in MiB: `VmRSS` (now) or `VmHWM` (peak).
fn memory_mib(process: &Process, field: &str) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", process.pid())).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_default()
        / 1024.0
}

/// `count` channels (one HTTP/2 connection each) to `address`.
async fn channels(address: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(Platform::channel(address).await?);
    }
    Ok(channels)
}

/// Runs the selected scenario groups on `backend`.
pub async fn run(
    backend: &str,
    scale: Scale,
    selection: &Selection,
    report: &mut Report,
) -> anyhow::Result<()> {
    println!("\n== {backend}: starting the release binaries");
    // The harness generates the platform PKI (which production mounts) once per process:
    // before the clock starts, so the figure is the services' own start-up.
    certificate_store::testing::provision_platform_pki(tempfile::tempdir()?.path())?;
    let started = Instant::now();
    let platform = Platform::start_with(
        backend,
        &[
            ("PMP_REGISTRY__LIMITS__REGISTRATIONS_PER_ADDRESS", "1000000"),
            ("PMP_REGISTRY__LIMITS__FAILURES_PER_ADDRESS", "1000000"),
        ],
    )
    .await?;
    let serving_ms = started.elapsed().as_secs_f64() * 1000.0;
    let startup = selection.includes("startup");
    if startup {
        report.push(
            Row::figure(
                backend,
                "start-up: exec → all three SERVING",
                serving_ms,
                "ms",
            )
            .target("≤ 1000 ms", serving_ms <= 1000.0),
        );
    }
    let services = [
        ("partner-registry", &platform.registry),
        ("certificate-store", &platform.certstore),
        ("ftm-management", &platform.ftm),
    ];
    let idle: Vec<f64> = services
        .iter()
        .map(|(_, process)| memory_mib(process, "VmRSS"))
        .collect();
    if startup {
        for ((name, _), rss) in services.iter().zip(&idle) {
            report.push(
                Row::figure(backend, &format!("idle RSS: {name}"), *rss, "MiB")
                    .target("≤ 30 MiB", *rss <= 30.0),
            );
        }
    }

    let world = World::prepare(&platform).await?;
    if selection.includes("certificates") {
        let health = health_limit(backend, scale, &platform, report).await?;
        let chips = onboarding(backend, scale, &platform, &world, report).await?;
        verify_cached(backend, scale, &platform, &world, &chips, health, report).await?;
        verify_distinct(backend, scale, &platform, &world, report).await?;
    }
    if selection.includes("login") {
        login(backend, scale, &platform, report).await?;
    }
    if selection.includes("list-ftms") {
        lists::ftms(backend, scale, &platform, &world.admin, report).await?;
    }
    if selection.includes("list-partners") {
        lists::partners(backend, scale, &platform, &world.admin, report).await?;
    }

    if startup {
        for ((name, process), idle) in services.iter().zip(&idle) {
            let after = memory_mib(process, "VmRSS");
            report.push(
                Row::figure(
                    backend,
                    &format!("RSS after the load: {name}"),
                    after,
                    "MiB",
                )
                .against("2 × idle", 2.0 * idle)
                .target("≤ 2 × idle", after <= 2.0 * idle),
            );
        }
    }
    Ok(())
}

/// The trust domain's CAs, an active FTM provider and the tokens.
struct World {
    admin: String,
    partner: String,
    pki: DevPki,
}

impl World {
    async fn prepare(platform: &Platform) -> anyhow::Result<World> {
        let mut registry = PartnerRegistryClient::new(platform.registry.channel().await?);
        let mut store = CertificateStoreClient::new(platform.certstore.channel().await?);
        let admin = login_token(&mut registry, "admin", ADMIN_PASSWORD).await?;
        let pki = DevPki::generate(ORG)?;
        upload_ca(&mut store, &admin, &pki.ca_bundle_pem()?).await?;
        registry
            .register_partner(registry::RegisterPartnerRequest {
                partner_id: PARTNER.into(),
                password: PASSWORD.into(),
                first_name: "Bench".into(),
                last_name: "Provider".into(),
                organization_name: ORG.into(),
                partner_type: "FTM_Provider".into(),
                address: "1 Bench Street".into(),
                email: "bench@example.org".into(),
                phone: "+1 555 0100".into(),
                lang_code: "eng".into(),
            })
            .await?;
        let partner = login_token(&mut registry, PARTNER, PASSWORD).await?;
        registry
            .upload_partner_certificate(authorized(
                registry::UploadPartnerCertificateRequest {
                    partner_id: PARTNER.into(),
                    certificate_data: pki.partner.pem()?,
                    partner_domain: "FTM".into(),
                },
                &partner,
            ))
            .await?;
        Ok(World {
            admin,
            partner,
            pki,
        })
    }
}

async fn login_token(
    registry: &mut PartnerRegistryClient<Channel>,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    Ok(registry
        .login(registry::LoginRequest {
            username: username.into(),
            password: password.into(),
        })
        .await?
        .into_inner()
        .access_token)
}

async fn upload_ca(
    store: &mut CertificateStoreClient<Channel>,
    admin: &str,
    bundle: &str,
) -> anyhow::Result<()> {
    let uploaded = store
        .upload_ca_certificate(authorized(
            store::UploadCaCertificateRequest {
                certificate_data: bundle.to_owned(),
                partner_domain: "FTM".into(),
            },
            admin,
        ))
        .await?
        .into_inner();
    anyhow::ensure!(
        uploaded.status() == store::UploadStatus::UploadSuccess,
        "CA upload: {uploaded:?}"
    );
    Ok(())
}

/// 4 connections × 32 in flight: the shape of the `Health/Check` limit and of the cached
/// `VerifyCertificateTrust` run compared with it, which must be the same.
fn saturating(scale: Scale) -> Shape {
    Shape {
        connections: 4,
        in_flight: 32,
        warmup: scale.duration(1.0),
        duration: scale.duration(5.0),
    }
}

/// `Health/Check` of the certificate store: what the gRPC stack itself costs.
async fn health_limit(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    report: &mut Report,
) -> anyhow::Result<f64> {
    let channels = Arc::new(channels(&platform.certstore.address, 4).await?);
    let shape = saturating(scale);
    let measured = load::closed_loop(shape, move |connection, _| {
        let mut client =
            tonic_health::pb::health_client::HealthClient::new(channels[connection].clone());
        async move {
            client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
        }
    })
    .await;
    let throughput = measured.throughput();
    report.push(Row::load(
        backend,
        "Health/Check, 4 connections × 32 (limit)",
        &measured,
    ));
    Ok(throughput)
}

/// `count` chip certificates under `issuer`, all sharing `key` (the store judges
/// certificates, not keys; generating a key per certificate would dominate).
fn issue_leaves(
    issuer: &Issued,
    prefix: &str,
    key: &PKey<Private>,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    (0..count)
        .map(|index| {
            Ok(CertificateSpec::ftm_chip(&format!("{prefix} {index}"), ORG)
                .sign(key.clone(), Some(issuer))?
                .pem()?)
        })
        .collect()
}

/// CreateFtm → UploadFtmCertificate → ApproveFtm for N FTMs, 8 clients, against the
/// database's own commit rate. Returns the approved chips' certificates.
async fn onboarding(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    world: &World,
    report: &mut Report,
) -> anyhow::Result<Vec<String>> {
    let count = scale.count(400, 16);
    let key = KeySpec::EcP256.generate()?;
    let chips = Arc::new(issue_leaves(
        &world.pki.intermediate,
        "Bench Chip",
        &key,
        count,
    )?);
    let commits = commit_rate(backend, scale).await?;
    report.push(Row::figure(
        backend,
        "single-row insert+commit loop (write limit)",
        commits,
        "commits/s",
    ));
    let clients = 8;
    let ftm_channel = platform.ftm.channel().await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client_index in 0..clients {
        let channel = ftm_channel.clone();
        let chips = Arc::clone(&chips);
        let partner = world.partner.clone();
        let admin = world.admin.clone();
        tasks.spawn(async move {
            let mut client = FtmManagementClient::new(channel);
            let mut measured = Measured::empty();
            for index in (client_index..chips.len()).step_by(clients) {
                let begun = Instant::now();
                let outcome =
                    onboard_one(&mut client, &partner, &admin, index, &chips[index]).await;
                measured.record(begun, outcome);
            }
            measured
        });
    }
    let mut total = Measured::empty();
    while let Some(joined) = tasks.join_next().await {
        total.merge(&joined?);
    }
    total.elapsed = started.elapsed();
    let rate = total.throughput();
    report.push(
        Row {
            unit: "FTMs/s".into(),
            ..Row::load(
                backend,
                &format!("onboarding: {count} FTMs, 8 clients"),
                &total,
            )
        }
        .against("commit rate", commits)
        .target("≥ 100 FTMs/s", rate >= 100.0),
    );
    Ok(Arc::try_unwrap(chips).unwrap_or_else(|shared| (*shared).clone()))
}

async fn onboard_one(
    client: &mut FtmManagementClient<Channel>,
    partner: &str,
    admin: &str,
    index: usize,
    chip: &str,
) -> Result<(), Status> {
    let created = client
        .create_ftm(authorized(
            ftm::CreateFtmRequest {
                partner_id: PARTNER.into(),
                make: "Bench".into(),
                model: format!("Model {index}"),
            },
            partner,
        ))
        .await?
        .into_inner();
    client
        .upload_ftm_certificate(authorized(
            ftm::UploadFtmCertificateRequest {
                ftm_id: created.ftm_id.clone(),
                certificate_data: chip.to_owned(),
            },
            partner,
        ))
        .await?;
    client
        .approve_ftm(authorized(
            ftm::ApproveFtmRequest {
                ftm_id: created.ftm_id,
            },
            admin,
        ))
        .await?;
    Ok(())
}

/// Commits per second of single-row inserts on a fresh database of `backend`, through the
/// services' own connection settings.
async fn commit_rate(backend: &str, scale: Scale) -> anyhow::Result<f64> {
    use sea_orm::ConnectionTrait;
    let database = pmp_common::db::testing::TestDatabase::new(backend).await?;
    let connection = pmp_common::db::connect(&database.settings).await?;
    connection
        .execute_unprepared("CREATE TABLE bench_commits (id BIGINT PRIMARY KEY, value VARCHAR(40))")
        .await?;
    let duration = scale.duration(3.0);
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < duration {
        connection
            .execute_unprepared(&format!(
                "INSERT INTO bench_commits (id, value) VALUES ({count}, 'row {count}')"
            ))
            .await?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// `VerifyCertificateTrust` over the approved chips (every answer from the cache after the
/// first round): throughput against `Health/Check`, then latency at half that rate.
async fn verify_cached(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    world: &World,
    chips: &[String],
    health: f64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let chips = Arc::new(chips.to_vec());
    let token = Arc::new(world.admin.clone());
    let verify = move |channel: Channel, number: u64| {
        let chips = Arc::clone(&chips);
        let token = Arc::clone(&token);
        async move {
            let certificate = &chips[(number % chips.len() as u64) as usize];
            let mut client = CertificateStoreClient::new(channel);
            let answer = client
                .verify_certificate_trust(authorized(
                    store::VerifyCertificateTrustRequest {
                        certificate_data: certificate.clone(),
                        partner_domain: "FTM".into(),
                    },
                    &token,
                ))
                .await?
                .into_inner();
            if answer.trusted {
                Ok(())
            } else {
                Err(Status::new(Code::FailedPrecondition, answer.reason))
            }
        }
    };
    let verify = Arc::new(verify);
    let connections = Arc::new(channels(&platform.certstore.address, 4).await?);
    {
        let verify = Arc::clone(&verify);
        let connections = Arc::clone(&connections);
        let shape = saturating(scale);
        let measured = load::closed_loop(shape, move |connection, number| {
            verify(connections[connection].clone(), number)
        })
        .await;
        let rate = measured.throughput();
        report.push(
            Row::load(
                backend,
                "VerifyCertificateTrust cached, 4 connections × 32",
                &measured,
            )
            .against("Health/Check", health)
            .target("≥ 0.7 × Health/Check", rate >= 0.7 * health),
        );
    }
    // Latency at half the throughput each concurrency reaches on one connection.
    for in_flight in [1usize, 8, 32] {
        let channel = connections[0].clone();
        let shape = Shape {
            connections: 1,
            in_flight,
            warmup: scale.duration(0.5),
            duration: scale.duration(2.0),
        };
        let closed = {
            let verify = Arc::clone(&verify);
            let channel = channel.clone();
            load::closed_loop(shape, move |_, number| verify(channel.clone(), number)).await
        };
        report.push(Row::load(
            backend,
            &format!("VerifyCertificateTrust cached, 1 connection × {in_flight}"),
            &closed,
        ));
        let rate = closed.throughput() / 2.0;
        let verify = Arc::clone(&verify);
        let measured = load::paced(
            rate,
            in_flight,
            scale.duration(0.5),
            scale.duration(3.0),
            move |number| verify(channel.clone(), number),
        )
        .await;
        let p99 = measured.quantile_ms(0.99);
        let p999 = measured.quantile_ms(0.999);
        report.push(
            Row::load(
                backend,
                &format!("  … paced at half that ({rate:.0}/s), ≤ {in_flight} in flight"),
                &measured,
            )
            .target("p99 ≤ 2 ms, p999 ≤ 5 ms", p99 <= 2.0 && p999 <= 5.0),
        );
    }
    Ok(())
}

/// `VerifyCertificateTrust` of a certificate never seen before on every call (RSA-2048 and
/// P-256 chains), against in-process OpenSSL parsing and verifying the same chains on the
/// same number of cores.
async fn verify_distinct(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    world: &World,
    report: &mut Report,
) -> anyhow::Result<()> {
    let ec_root = CertificateSpec::ca("Bench EC Root")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(3650)
        .self_signed()?;
    let ec_intermediate = CertificateSpec::ca("Bench EC Intermediate")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .path_len(0)
        .valid_from_days(-1)
        .valid_for_days(1825)
        .issued_by(&ec_root)?;
    let mut store = CertificateStoreClient::new(platform.certstore.channel().await?);
    upload_ca(
        &mut store,
        &world.admin,
        &format!("{}{}", ec_root.pem()?, ec_intermediate.pem()?),
    )
    .await?;
    let duration = scale.duration(2.0);
    let chains = [
        (
            "RSA-2048",
            &world.pki.root,
            &world.pki.intermediate,
            KeySpec::Rsa(2048).generate()?,
        ),
        (
            "P-256",
            &ec_root,
            &ec_intermediate,
            KeySpec::EcP256.generate()?,
        ),
    ];
    for (name, root, intermediate, key) in chains {
        let sample = Arc::new(issue_leaves(
            intermediate,
            &format!("Sample {name}"),
            &key,
            200,
        )?);
        let limit = openssl_limit(root, intermediate, &sample, scale.duration(2.0))?;
        report.push(Row::figure(
            backend,
            &format!("in-process OpenSSL parse+verify, {name}, 2 threads (limit)"),
            limit,
            "verifies/s",
        ));
        // Enough certificates that none is asked twice: the service cannot outrun OpenSSL
        // on the same cores.
        let count = ((limit * duration.as_secs_f64() * 1.3) as usize).max(100);
        let leaves = Arc::new(issue_leaves(
            intermediate,
            &format!("Distinct {name}"),
            &key,
            count,
        )?);
        let channels = Arc::new(channels(&platform.certstore.address, 4).await?);
        let token = Arc::new(world.admin.clone());
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shape = Shape {
            connections: 4,
            in_flight: 8,
            warmup: Duration::ZERO,
            duration,
        };
        let measured = load::closed_loop(shape, move |connection, _| {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let leaves = Arc::clone(&leaves);
            let token = Arc::clone(&token);
            let mut client = CertificateStoreClient::new(channels[connection].clone());
            async move {
                let Some(certificate) = leaves.get(index) else {
                    // Every certificate was used once: stop measuring a cache.
                    return Err(Status::new(Code::OutOfRange, "corpus exhausted"));
                };
                client
                    .verify_certificate_trust(authorized(
                        store::VerifyCertificateTrustRequest {
                            certificate_data: certificate.clone(),
                            partner_domain: "FTM".into(),
                        },
                        &token,
                    ))
                    .await
                    .map(|_| ())
            }
        })
        .await;
        let rate = measured.throughput();
        report.push(
            Row::load(
                backend,
                &format!("VerifyCertificateTrust distinct, {name}, 4 × 8"),
                &measured,
            )
            .against("OpenSSL", limit)
            .target("≥ 0.5 × OpenSSL", rate >= 0.5 * limit),
        );
    }
    Ok(())
}

/// Verifications per second of `leaves` (PEM parse + path validation to `root` through
/// `intermediate`) on two threads.
fn openssl_limit(
    root: &Issued,
    intermediate: &Issued,
    leaves: &Arc<Vec<String>>,
    duration: Duration,
) -> anyhow::Result<f64> {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509, X509StoreContext};
    let mut builder = X509StoreBuilder::new()?;
    builder.add_cert(X509::from_pem(root.pem()?.as_bytes())?)?;
    let trust = Arc::new(builder.build());
    let intermediate = X509::from_pem(intermediate.pem()?.as_bytes())?;
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let trust = Arc::clone(&trust);
            let leaves = Arc::clone(leaves);
            let intermediate = intermediate.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut count = 0u64;
                let mut index = worker;
                while started.elapsed() < duration {
                    let leaf = X509::from_pem(leaves[index % leaves.len()].as_bytes())?;
                    let mut chain = Stack::new()?;
                    chain.push(intermediate.clone())?;
                    let mut context = X509StoreContext::new()?;
                    let valid =
                        context.init(&trust, &leaf, &chain, |context| context.verify_cert())?;
                    anyhow::ensure!(valid, "the reference chain does not verify");
                    count += 1;
                    index += 2;
                }
                Ok(count)
            })
        })
        .collect();
    let mut total = 0u64;
    for worker in workers {
        total += worker
            .join()
            .map_err(|_| anyhow::anyhow!("an OpenSSL worker panicked"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Logins: throughput within the hashing queue, then a flood of 200 at once (refusals
/// expected) and the registry's peak memory.
async fn login(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    report: &mut Report,
) -> anyhow::Result<()> {
    let channel = platform.registry.channel().await?;
    let shape = Shape {
        connections: 1,
        in_flight: 4,
        warmup: scale.duration(0.5),
        duration: scale.duration(4.0),
    };
    let login_channel = channel.clone();
    let measured = load::closed_loop(shape, move |_, _| {
        let mut client = PartnerRegistryClient::new(login_channel.clone());
        async move {
            client
                .login(registry::LoginRequest {
                    username: PARTNER.into(),
                    password: PASSWORD.into(),
                })
                .await
                .map(|_| ())
        }
    })
    .await;
    report.push(Row::load(backend, "Login, 4 in flight", &measured));

    let mut refused = 0u64;
    let mut failed = 0u64;
    for wave in 0..scale.count(3, 1) {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..200 {
            let mut client = PartnerRegistryClient::new(channel.clone());
            tasks.spawn(async move {
                client
                    .login(registry::LoginRequest {
                        username: format!("flood-{wave}-{index}"),
                        password: "not-the-password".into(),
                    })
                    .await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined?.map_err(|status| status.code()) {
                Err(Code::Unauthenticated) => {}
                Err(Code::ResourceExhausted) => refused += 1,
                _ => failed += 1,
            }
        }
    }
    let peak = memory_mib(&platform.registry, "VmHWM");
    report.push(
        Row {
            errors: failed,
            ..Row::figure(
                backend,
                &format!("registry peak RSS, 200 logins at once ({refused} refused)"),
                peak,
                "MiB",
            )
        }
        .target("bounded (≤ 160 MiB chart limit)", peak <= 160.0),
    );
    Ok(())
}
