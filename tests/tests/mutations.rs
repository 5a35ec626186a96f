//! A mutation corpus through every upload and verify RPC of a real in-process platform, on
//! SQLite and PostgreSQL: valid certificates and bundles with bytes flipped, cut or inserted
//! (generated from a fixed seed, so a failure reproduces), sent as PEM, base64 DER and
//! PKCS#7. Every answer must be a success or an error with a contract reason — never
//! `INTERNAL`, `UNKNOWN` or `UNAVAILABLE` — and no refused call may change any database.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, Status};

use base64::Engine;
use certificate_store::x509::certs_to_p7b_der;
use pmp_common::db::testing::backends;
use pmp_common::error::reason_of;
use pmp_common::testing::with_token;
use pmp_dev_certs::attacks::pem_of;
use pmp_dev_certs::{CertificateSpec, Issued, KeySpec};
use pmp_e2e::inprocess::{InProcessPlatform, Options};
use pmp_proto::certstore::v1 as store;

/// Mutated inputs per backend (each through five RPCs).
const CASES: usize = 200;
const ORG: &str = "Mutant Chips";

/// What every mutation starts from.
struct Seeds {
    /// DER certificates: root, intermediate, partner-style leaves, a chip.
    certificates: Vec<Vec<u8>>,
    /// DER PKCS#7 bundles.
    bundles: Vec<Vec<u8>>,
    root: Issued,
    intermediate: Issued,
}

fn seeds() -> Seeds {
    let root = CertificateSpec::ca("Mutation Root")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_for_days(3650)
        .self_signed()
        .expect("root");
    let intermediate = CertificateSpec::ca("Mutation CA")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_for_days(1800)
        .issued_by(&root)
        .expect("intermediate");
    let leaves: Vec<Issued> = [KeySpec::EcP256, KeySpec::Rsa(2048), KeySpec::EcP384]
        .into_iter()
        .enumerate()
        .map(|(index, key)| {
            CertificateSpec::leaf(&format!("leaf {index}"))
                .organisation(ORG)
                .key(key)
                .issued_by(&intermediate)
                .expect("leaf")
        })
        .collect();
    let mut certificates = vec![root.der().expect("der"), intermediate.der().expect("der")];
    certificates.extend(leaves.iter().map(|leaf| leaf.der().expect("der")));
    let bundles = vec![
        certs_to_p7b_der(&[root.certificate.clone(), intermediate.certificate.clone()])
            .expect("p7b"),
        certs_to_p7b_der(&[
            leaves[0].certificate.clone(),
            intermediate.certificate.clone(),
        ])
        .expect("p7b"),
    ];
    Seeds {
        certificates,
        bundles,
        root,
        intermediate,
    }
}

/// Flips, cuts or inserts bytes.
fn mutate(random: &mut StdRng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..random.random_range(1..=3) {
        if bytes.is_empty() {
            bytes.push(random.random());
            continue;
        }
        let at = random.random_range(0..bytes.len());
        match random.random_range(0..4) {
            0 => bytes[at] ^= 1 << random.random_range(0..8),
            1 => bytes[at] = random.random(),
            2 => bytes.truncate(at),
            _ => {
                let inserted: Vec<u8> = (0..random.random_range(1..8))
                    .map(|_| random.random())
                    .collect();
                bytes.splice(at..at, inserted);
            }
        }
    }
    bytes
}

/// The text of one request: a mutated certificate or bundle in one of the accepted forms,
/// sometimes with an intact certificate next to it.
fn case(random: &mut StdRng, seeds: &Seeds) -> String {
    let standard = base64::engine::general_purpose::STANDARD;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let certificate = &seeds.certificates[random.random_range(0..seeds.certificates.len())];
    let bundle = &seeds.bundles[random.random_range(0..seeds.bundles.len())];
    match random.random_range(0..7) {
        0 | 1 => pem_of(&mutate(random, certificate)),
        2 => format!(
            "{}{}",
            pem_of(&mutate(random, certificate)),
            pem_of(&seeds.certificates[1])
        ),
        3 => standard.encode(mutate(random, certificate)),
        4 => url_safe.encode(mutate(random, bundle)),
        5 => format!(
            "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
            standard.encode(mutate(random, bundle))
        ),
        _ => {
            let text = pem_of(certificate);
            String::from_utf8_lossy(&mutate(random, text.as_bytes())).into_owned()
        }
    }
}

/// Row counts and states of every table a refused call could have touched.
async fn state(platform: &InProcessPlatform) -> Vec<String> {
    let mut facts = Vec::new();
    for (connection, queries) in [
        (
            &platform
                .store_database
                .as_ref()
                .expect("a real store")
                .connection,
            &[
                "SELECT COUNT(*) FROM ca_certificates",
                "SELECT COUNT(*) FROM partner_certificates",
                "SELECT COUNT(*) FROM audit_events",
                "SELECT MAX(version) FROM trust_versions",
            ][..],
        ),
        (
            &platform.registry_database.connection,
            &[
                "SELECT COUNT(*) FROM audit_events",
                "SELECT COUNT(*) FROM partners WHERE certificate_id IS NOT NULL",
            ][..],
        ),
        (
            &platform.ftm_database.connection,
            &[
                "SELECT COUNT(*) FROM audit_events",
                "SELECT COUNT(*) FROM ftms WHERE certificate_id IS NOT NULL",
            ][..],
        ),
    ] {
        for query in queries {
            facts.push(format!("{query} = {}", scalar(connection, query).await));
        }
    }
    facts
}

async fn scalar(connection: &DatabaseConnection, query: &str) -> i64 {
    let row = connection
        .query_one_raw(Statement::from_string(
            connection.get_database_backend(),
            query,
        ))
        .await
        .expect("query")
        .expect("row");
    row.try_get_by_index::<i64>(0).expect("integer")
}

/// Codes a refused call may have: the contract's, never a failure of the platform itself.
fn assert_contract_error(status: &Status, rpc: &str, input: &str) {
    assert!(
        !matches!(
            status.code(),
            Code::Internal | Code::Unknown | Code::Unavailable | Code::DeadlineExceeded
        ),
        "{rpc} answered {status:?} for input {input:?}"
    );
    let reason = reason_of(status).unwrap_or_default();
    assert!(
        reason.starts_with("KER-") || reason.starts_with("PMS_") || reason.starts_with("PMP_"),
        "{rpc}: no contract reason in {status:?} for input {input:?}"
    );
    assert_ne!(reason, "PMS_INTERNAL", "{rpc} for input {input:?}");
}

/// One RPC of the corpus: answered with success, or a contract error after which nothing
/// changed; `refused` tells a success that refused everything (a bundle whose every
/// certificate failed), after which nothing may have changed either. Returns whether the
/// call was accepted.
async fn check<T>(
    platform: &InProcessPlatform,
    rpc: &str,
    input: &str,
    call: impl std::future::Future<Output = Result<T, Status>>,
    refused: impl FnOnce(&T) -> bool,
) -> bool {
    let before = state(platform).await;
    match call.await {
        Ok(answer) if refused(&answer) => {
            assert_eq!(
                state(platform).await,
                before,
                "{rpc} refused every certificate of {input:?} but changed the databases"
            );
            false
        }
        Ok(_) => true,
        Err(status) => {
            assert_contract_error(&status, rpc, input);
            assert_eq!(
                state(platform).await,
                before,
                "{rpc} refused {input:?} ({status:?}) but changed the databases"
            );
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_certificates_get_contract_errors_and_change_nothing() {
    let seeds = seeds();
    for backend in backends() {
        let platform = InProcessPlatform::start(Options::on(backend))
            .await
            .expect("platform");
        let admin = platform.admin().await;
        let bundle = format!(
            "{}{}",
            seeds.root.pem().expect("pem"),
            seeds.intermediate.pem().expect("pem")
        );
        platform
            .upload_ca(&admin, &bundle, "FTM")
            .await
            .expect("CAs");
        let partner = platform.register("mutant", "FTM_Provider", ORG).await;
        let certificate = CertificateSpec::leaf("mutant partner")
            .organisation(ORG)
            .key(KeySpec::EcP256)
            .issued_by(&seeds.intermediate)
            .expect("partner certificate");
        platform
            .upload_partner_certificate(&partner, "mutant", &certificate.pem().expect("pem"))
            .await
            .expect("partner certificate");
        let mut ftm_id = platform
            .create_ftm(&partner, "mutant", "M0")
            .await
            .expect("FTM")
            .ftm_id;
        let service = platform.service_keys.signer("ftm-management");

        let mut random = StdRng::seed_from_u64(0x7275_7374);
        let mut accepted = 0;
        for index in 0..CASES {
            let input = case(&mut random, &seeds);
            check(
                &platform,
                "VerifyCertificateTrust",
                &input,
                platform.verify(&input, "FTM"),
                |_| false,
            )
            .await;
            if check(
                &platform,
                "UploadCaCertificate",
                &input,
                platform.upload_ca(&admin, &input, "FTM"),
                |answer| answer.status() == store::UploadStatus::UploadFailed,
            )
            .await
            {
                accepted += 1;
            }
            check(
                &platform,
                "PartnerRegistry/UploadPartnerCertificate",
                &input,
                platform.upload_partner_certificate(&partner, "mutant", &input),
                |_| false,
            )
            .await;
            let direct = store::UploadPartnerCertificateRequest {
                owner_id: format!("ftm-direct-{index}"),
                organization_name: ORG.into(),
                certificate_data: input.clone(),
                partner_domain: "FTM".into(),
                owner_type: store::OwnerType::Ftm as i32,
                partner_id: "mutant".into(),
            };
            let token = service
                .token_for("certificate-store")
                .expect("service token");
            check(
                &platform,
                "CertificateStore/UploadPartnerCertificate",
                &input,
                platform
                    .store()
                    .upload_partner_certificate(with_token(direct, &token)),
                |_| false,
            )
            .await;
            if check(
                &platform,
                "UploadFtmCertificate",
                &input,
                platform.upload_chip(&partner, &ftm_id, &input),
                |_| false,
            )
            .await
            {
                ftm_id = platform
                    .create_ftm(&partner, "mutant", &format!("M{}", index + 1))
                    .await
                    .expect("FTM")
                    .ftm_id;
            }
        }
        eprintln!(
            "{backend}: {CASES} mutated inputs through 5 RPCs, {accepted} CA uploads accepted"
        );
    }
}
