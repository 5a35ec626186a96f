//! Benchmark of the VerifyCertificateTrust hot path (run with `make bench`): the in-memory
//! trust store answering from its cache, verifying on a miss, and rebuilding after a change.
//! Prints operations per second; timings live here, never in pass/fail tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm_migration::MigratorTrait;

use certificate_store::domain::{AuditEvent, CaCertificate, CaType, TrustPolicy};
use certificate_store::storage::{CertificateRepository, SqlCertificateRepository};
use certificate_store::trust::{TrustSettings, TrustStore};
use certificate_store::x509::{CertificateFacts, pem_string};
use pmp_common::db::testing::TestDatabase;
use pmp_dev_certs::{CertificateSpec, Issued, KeySpec};

fn record(issued: &Issued, ca_type: CaType) -> CaCertificate {
    let facts = CertificateFacts::of(&issued.certificate).expect("facts");
    let id = uuid::Uuid::new_v4().to_string();
    CaCertificate {
        certificate_id: id.clone(),
        partner_domain: "FTM".into(),
        ca_type,
        subject: facts.subject,
        issuer: facts.issuer,
        serial_number: facts.serial_number,
        thumbprint: facts.thumbprint,
        identity: facts.identity,
        not_before: facts.not_before,
        not_after: facts.not_after,
        upload_time: chrono::Utc::now(),
        certificate_pem: pem_string(&issued.certificate).expect("pem"),
        issuer_certificate_id: id,
    }
}

fn report(label: &str, operations: u32, elapsed: Duration) {
    let per_operation = elapsed / operations;
    let per_second = f64::from(operations) / elapsed.as_secs_f64();
    println!("{label:<48} {per_operation:>12?}/op {per_second:>12.0} op/s");
}

#[tokio::main]
async fn main() {
    let database = TestDatabase::sqlite().await.expect("database");
    certificate_store_migration::Migrator::up(&database.connection, None)
        .await
        .expect("migrate");
    let repository: Arc<dyn CertificateRepository> =
        Arc::new(SqlCertificateRepository::new(database.connection.clone()));
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
    let audit = || AuditEvent::now("bench", "CA_CERTIFICATE_UPLOADED", "bench", None, None);
    repository
        .insert_ca_certificates(
            &[
                record(&root, CaType::Root),
                record(&intermediate, CaType::Intermediate),
            ],
            vec![audit()],
        )
        .await
        .expect("insert");
    // MOSIP's `chain` policy: the devices are not registered, and what is measured here is
    // path validation and the cache.
    let settings = TrustSettings {
        domains: vec!["FTM".into()],
        policies: [("FTM".to_owned(), TrustPolicy::Chain)]
            .into_iter()
            .collect(),
        cache_bytes: 256 * 1024 * 1024,
    };
    let store = TrustStore::load(Arc::clone(&repository), settings)
        .await
        .expect("trust store");

    let devices: Vec<String> = (0..2000)
        .map(|index| {
            let device = CertificateSpec::leaf(&format!("device-{index}"))
                .key(KeySpec::EcP256)
                .issued_by(&intermediate);
            device.expect("device").pem().expect("pem")
        })
        .collect();

    let started = Instant::now();
    for device in &devices {
        assert!(store.verify("FTM", device).await.expect("verify").trusted);
    }
    report(
        "verify, cache miss (path validation)",
        devices.len() as u32,
        started.elapsed(),
    );

    let rounds = 50;
    let started = Instant::now();
    for _ in 0..rounds {
        for device in &devices {
            assert!(store.verify("FTM", device).await.expect("verify").trusted);
        }
    }
    report(
        "verify, cache hit",
        rounds * devices.len() as u32,
        started.elapsed(),
    );

    let started = Instant::now();
    let rebuilds = 20;
    for index in 0..rebuilds {
        let extra = CertificateSpec::ca(&format!("Extra {index}"))
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed();
        repository
            .insert_ca_certificates(
                &[record(&extra.expect("root"), CaType::Root)],
                vec![audit()],
            )
            .await
            .expect("insert");
        store.refresh().await.expect("refresh");
    }
    report(
        "trust store rebuild after a CA upload",
        rebuilds,
        started.elapsed(),
    );
    let (hits, misses) = store.cache_statistics();
    println!("cache: {hits} hits, {misses} misses");
}
