//! The certificate store's repository and in-memory trust store, run once on SQLite and once
//! on PostgreSQL (when `PMP_TEST_POSTGRES_URL` names a server): same test functions on both
//! backends. Every certificate is generated at test time.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use certificate_store::domain::{
    AuditEvent, CaCertificate, CaFilter, CaType, CertificateKind, ExpiringFilter, KeyLocation,
    Owner, PartnerCertificate, PlatformKeyRecord, PlatformKeyState, Revocation, RevocationReason,
    TrustEvent, TrustPolicy,
};
use certificate_store::error::StoreError;
use certificate_store::storage::{
    CertificateRepository, SqlCertificateRepository, TrustFeedRepository,
};
use certificate_store::trust::{TrustSettings, TrustStore, Verdict};
use certificate_store::x509::{CertificateFacts, PlatformSigner, pem_string};
use certificate_store_migration::Migrator;
use pmp_common::db::testing::{TestDatabase, backends};
use pmp_dev_certs::{CertificateSpec, DevPki, Issued, KeySpec};

/// Generated once per test binary: RSA key generation is the slowest part of these tests.
struct Fixture {
    /// Root, intermediate (path length 0), partner and FTM chip certificates of "Acme Chips".
    pki: DevPki,
    /// Issues the platform-signed copies stored with partner certificates.
    signer: PlatformSigner,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture {
    pki: DevPki::generate("Acme Chips").expect("dev PKI"),
    signer: PlatformSigner::generate().expect("platform PKI").signer,
});

const ORG: &str = "Acme Chips";

fn domains() -> Vec<String> {
    vec!["FTM".into(), "DEVICE".into()]
}

async fn repository(backend: &str) -> (TestDatabase, Arc<SqlCertificateRepository>) {
    let database = TestDatabase::new(backend).await.expect("database");
    Migrator::up(&database.connection, None)
        .await
        .expect("migrate");
    let repository = Arc::new(SqlCertificateRepository::new(database.connection.clone()));
    (database, repository)
}

/// A second repository on the same database over its own connection pool (another replica).
async fn replica_repository(database: &TestDatabase) -> Arc<SqlCertificateRepository> {
    let connection = pmp_common::db::connect(&database.settings)
        .await
        .expect("second connection");
    Arc::new(SqlCertificateRepository::new(connection))
}

/// A trust store over `repository` whose domains all follow MOSIP's `chain` policy (the
/// path-building tests below); the `registered` policy has tests of its own.
async fn trust_store(repository: &Arc<SqlCertificateRepository>) -> Arc<TrustStore> {
    trust_store_with(repository, TrustPolicy::Chain).await
}

async fn trust_store_with(
    repository: &Arc<SqlCertificateRepository>,
    policy: TrustPolicy,
) -> Arc<TrustStore> {
    let repository: Arc<dyn CertificateRepository> = repository.clone();
    let settings = TrustSettings {
        domains: domains(),
        policies: domains()
            .into_iter()
            .map(|domain| (domain, policy))
            .collect(),
        cache_bytes: 16 * 1024 * 1024,
    };
    TrustStore::load(repository, settings)
        .await
        .expect("trust store")
}

fn partner_owner(partner: &str) -> Owner {
    Owner::partner(partner)
}

fn chip_owner(ftm: &str, partner: &str) -> Owner {
    Owner::ftm(ftm, partner)
}

/// Second precision: PostgreSQL keeps microseconds only, and round trips compare whole records.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn facts(issued: &Issued) -> CertificateFacts {
    CertificateFacts::of(&issued.certificate).expect("facts")
}

fn pem(issued: &Issued) -> String {
    pem_string(&issued.certificate).expect("pem")
}

/// An EC self-signed root (fast to generate), unrelated to everything else.
fn ec_root(name: &str) -> Issued {
    CertificateSpec::ca(name)
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(3650)
        .self_signed()
        .expect("root")
}

fn ec_leaf(name: &str, issuer: &Issued) -> Issued {
    CertificateSpec::leaf(name)
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(365)
        .issued_by(issuer)
        .expect("leaf")
}

/// A CA record as the service builds it: a root when `issuer_id` is `None` (naming itself).
fn ca_record(issued: &Issued, domain: &str, issuer_id: Option<&str>) -> CaCertificate {
    let facts = facts(issued);
    let certificate_id = Uuid::new_v4().to_string();
    CaCertificate {
        ca_type: if issuer_id.is_some() {
            CaType::Intermediate
        } else {
            CaType::Root
        },
        issuer_certificate_id: issuer_id.map_or_else(|| certificate_id.clone(), str::to_owned),
        certificate_id,
        partner_domain: domain.into(),
        subject: facts.subject,
        issuer: facts.issuer,
        serial_number: facts.serial_number,
        thumbprint: facts.thumbprint,
        identity: facts.identity,
        not_before: facts.not_before,
        not_after: facts.not_after,
        upload_time: now(),
        certificate_pem: pem(issued),
    }
}

/// A partner/FTM record with its platform-signed copy; the chain is `certificate` then
/// `issuers`.
fn partner_record(
    owner: Owner,
    domain: &str,
    certificate: &Issued,
    issuers: &[&Issued],
    trusted: bool,
) -> PartnerCertificate {
    let facts = facts(certificate);
    let ca_signed_pem = pem(certificate);
    let platform_signed = FIXTURE
        .signer
        .resign(&certificate.certificate)
        .expect("resign");
    let mut chain_pem = vec![ca_signed_pem.clone()];
    chain_pem.extend(issuers.iter().copied().map(pem));
    let time = now();
    PartnerCertificate {
        certificate_id: Uuid::new_v4().to_string(),
        owner,
        partner_domain: domain.into(),
        organization_name: facts.organisations.first().cloned().unwrap_or_default(),
        identity: facts.identity,
        thumbprint: facts.thumbprint,
        subject: facts.subject,
        issuer: facts.issuer,
        serial_number: facts.serial_number,
        not_before: facts.not_before,
        not_after: facts.not_after,
        is_ca: facts.is_ca,
        ca_signed_pem,
        platform_signed_pem: pem_string(&platform_signed).expect("pem"),
        chain_pem,
        trusted,
        upload_time: time,
        update_time: time,
    }
}

fn audit(action: &str, entity: &str, after: &str) -> AuditEvent {
    AuditEvent {
        actor: "tester".into(),
        action: action.into(),
        entity_id: entity.into(),
        before_state: None,
        after_state: Some(after.into()),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn uploads(certificates: &[&CaCertificate]) -> Vec<AuditEvent> {
    certificates
        .iter()
        .map(|certificate| {
            audit(
                "CA_CERTIFICATE_UPLOADED",
                &certificate.certificate_id,
                certificate.ca_type.as_str(),
            )
        })
        .collect()
}

/// Stores `certificates` as one batch with an upload audit row each.
async fn insert_cas(
    repository: &SqlCertificateRepository,
    certificates: &[&CaCertificate],
) -> Result<(), StoreError> {
    let owned: Vec<CaCertificate> = certificates.iter().copied().cloned().collect();
    repository
        .insert_ca_certificates(&owned, uploads(certificates))
        .await
}

/// Stores the Acme root and intermediate for `domain`; returns (root, intermediate).
async fn insert_acme_cas(
    repository: &SqlCertificateRepository,
    domain: &str,
) -> (CaCertificate, CaCertificate) {
    let root = ca_record(&FIXTURE.pki.root, domain, None);
    let intermediate = ca_record(
        &FIXTURE.pki.intermediate,
        domain,
        Some(&root.certificate_id),
    );
    insert_cas(repository, &[&root, &intermediate])
        .await
        .expect("CAs stored");
    (root, intermediate)
}

async fn insert_partner(
    repository: &SqlCertificateRepository,
    certificate: &PartnerCertificate,
) -> PartnerCertificate {
    repository
        .insert_partner_certificate(
            certificate,
            audit(
                "CERTIFICATE_UPLOADED",
                &certificate.certificate_id,
                if certificate.trusted {
                    "TRUSTED"
                } else {
                    "UNTRUSTED"
                },
            ),
        )
        .await
        .expect("partner certificate stored")
}

async fn verify(store: &TrustStore, domain: &str, data: &str) -> Verdict {
    Verdict::clone(&store.verify(domain, data).await.expect("verification"))
}

fn assert_trusted(verdict: &Verdict, chain: &[String], context: &str) {
    assert!(verdict.trusted, "{context}: {verdict:?}");
    let path: Vec<&str> = verdict.chain_pem.iter().map(|pem| &**pem).collect();
    assert_eq!(path, chain, "{context}: verified path");
    assert!(verdict.reason.is_empty(), "{context}: {verdict:?}");
}

fn assert_untrusted(verdict: &Verdict, context: &str) {
    assert!(!verdict.trusted, "{context}: {verdict:?}");
    assert!(verdict.chain_pem.is_empty(), "{context}: {verdict:?}");
    assert!(!verdict.reason.is_empty(), "{context}: a reason is given");
}

/// Leaf, intermediate and root PEMs of the Acme PKI: the path of a trusted Acme leaf.
fn acme_path(leaf: &Issued) -> Vec<String> {
    vec![
        pem(leaf),
        pem(&FIXTURE.pki.intermediate),
        pem(&FIXTURE.pki.root),
    ]
}

fn ids(certificates: &[CaCertificate]) -> Vec<&str> {
    certificates
        .iter()
        .map(|certificate| certificate.certificate_id.as_str())
        .collect()
}

#[tokio::test]
async fn ca_certificates_store_find_reject_duplicates_atomically_and_page() {
    let other_root = ec_root("Other Root CA");
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let initial = repository.trust_version().await.expect("version");
        repository
            .insert_ca_certificates(&[], Vec::new())
            .await
            .expect("empty batch");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            initial,
            "{backend}: an empty batch changes nothing"
        );

        let (root, intermediate) = insert_acme_cas(&repository, "FTM").await;
        assert_eq!(
            repository.trust_version().await.expect("version"),
            initial + 2,
            "{backend}: one version step (and one feed event) per certificate of the batch"
        );
        for stored in [&root, &intermediate] {
            assert_eq!(
                repository
                    .find_ca(&stored.certificate_id)
                    .await
                    .expect("query")
                    .as_ref(),
                Some(stored),
                "{backend}: find by id round-trips the record"
            );
            assert_eq!(
                repository
                    .find_ca_by_identity("FTM", &stored.identity)
                    .await
                    .expect("query")
                    .as_ref(),
                Some(stored),
                "{backend}: find by identity"
            );
            assert!(
                repository
                    .ca_exists("FTM", &stored.identity)
                    .await
                    .expect("query"),
                "{backend}"
            );
            assert!(
                !repository
                    .ca_exists("DEVICE", &stored.identity)
                    .await
                    .expect("query"),
                "{backend}: exists per domain"
            );
        }
        assert_eq!(root.issuer_certificate_id, root.certificate_id);
        assert_eq!(intermediate.issuer_certificate_id, root.certificate_id);
        assert!(
            repository
                .find_ca(&Uuid::new_v4().to_string())
                .await
                .expect("query")
                .is_none(),
            "{backend}"
        );
        assert!(
            repository
                .find_ca_by_identity("FTM", &"0".repeat(64))
                .await
                .expect("query")
                .is_none(),
            "{backend}"
        );

        // [new, duplicate of the stored root]: refused as a whole.
        let version = repository.trust_version().await.expect("version");
        let fresh = ca_record(&other_root, "FTM", None);
        let duplicate = ca_record(&FIXTURE.pki.root, "FTM", None);
        let refused = insert_cas(&repository, &[&fresh, &duplicate]).await;
        assert!(
            matches!(refused, Err(StoreError::DuplicateCa)),
            "{backend}: {refused:?}"
        );
        for certificate in [&fresh, &duplicate] {
            assert!(
                repository
                    .find_ca(&certificate.certificate_id)
                    .await
                    .expect("query")
                    .is_none(),
                "{backend}: nothing of a refused batch is stored"
            );
            assert!(
                repository
                    .audit_events(&certificate.certificate_id)
                    .await
                    .expect("audit")
                    .is_empty(),
                "{backend}: no audit row for a refused batch"
            );
        }
        assert!(
            !repository
                .ca_exists("FTM", &fresh.identity)
                .await
                .expect("query"),
            "{backend}: the new certificate of a refused batch is not stored"
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version,
            "{backend}: a refused batch does not move the version"
        );

        // The same certificate in another domain is another trust store entry.
        let device_root = ca_record(&FIXTURE.pki.root, "DEVICE", None);
        insert_cas(&repository, &[&device_root])
            .await
            .expect("same thumbprint, other domain");
        assert!(
            repository
                .ca_exists("DEVICE", &device_root.identity)
                .await
                .expect("query"),
            "{backend}"
        );
        // The new certificate of the refused batch can still be stored on its own.
        insert_cas(&repository, &[&fresh])
            .await
            .expect("stored on its own");

        // Listing: FTM {root, intermediate, fresh}, DEVICE {device_root}.
        let mut ftm_ids = vec![
            root.certificate_id.clone(),
            intermediate.certificate_id.clone(),
            fresh.certificate_id.clone(),
        ];
        ftm_ids.sort();
        let ftm = CaFilter {
            partner_domain: Some("FTM".into()),
            ca_type: None,
        };
        let first = repository.list_ca(&ftm, None, 2).await.expect("page");
        assert_eq!(first.total_size, 3, "{backend}");
        assert!(first.has_more, "{backend}");
        assert_eq!(ids(&first.ca_certificates), ftm_ids[..2], "{backend}");
        let second = repository
            .list_ca(&ftm, Some(ftm_ids[1].as_str()), 2)
            .await
            .expect("page");
        assert_eq!(second.total_size, 3, "{backend}: total of the filter");
        assert!(!second.has_more, "{backend}");
        assert_eq!(ids(&second.ca_certificates), ftm_ids[2..], "{backend}");
        let exact = repository.list_ca(&ftm, None, 3).await.expect("page");
        assert!(!exact.has_more, "{backend}: a full last page has no more");
        assert_eq!(ids(&exact.ca_certificates), ftm_ids, "{backend}");
        let past_end = repository
            .list_ca(&ftm, Some(ftm_ids[2].as_str()), 2)
            .await
            .expect("page");
        assert!(past_end.ca_certificates.is_empty(), "{backend}");
        assert!(!past_end.has_more, "{backend}");

        let roots = CaFilter {
            partner_domain: None,
            ca_type: Some(CaType::Root),
        };
        let page = repository.list_ca(&roots, None, 10).await.expect("page");
        assert_eq!(page.total_size, 3, "{backend}");
        assert!(
            page.ca_certificates
                .iter()
                .all(|certificate| certificate.ca_type == CaType::Root),
            "{backend}"
        );
        let ftm_intermediates = CaFilter {
            partner_domain: Some("FTM".into()),
            ca_type: Some(CaType::Intermediate),
        };
        let page = repository
            .list_ca(&ftm_intermediates, None, 10)
            .await
            .expect("page");
        assert_eq!(page.total_size, 1, "{backend}");
        assert_eq!(
            page.ca_certificates,
            std::slice::from_ref(&intermediate),
            "{backend}"
        );
        let everything = repository
            .list_ca(&CaFilter::default(), None, 10)
            .await
            .expect("page");
        assert_eq!(everything.total_size, 4, "{backend}");
        let none = repository
            .list_ca(
                &CaFilter {
                    partner_domain: Some("AUTH".into()),
                    ca_type: None,
                },
                None,
                10,
            )
            .await
            .expect("page");
        assert_eq!(none.total_size, 0, "{backend}");
        assert!(none.ca_certificates.is_empty() && !none.has_more);

        for stored in [&root, &intermediate] {
            let events = repository
                .audit_events(&stored.certificate_id)
                .await
                .expect("audit");
            assert_eq!(
                events,
                uploads(&[stored]),
                "{backend}: one row per certificate"
            );
        }
    }
}

#[tokio::test]
async fn partner_certificates_store_find_and_are_idempotent() {
    let pki = &FIXTURE.pki;
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let record = partner_record(
            partner_owner("acme"),
            "FTM",
            &pki.partner,
            &[&pki.intermediate, &pki.root],
            true,
        );
        let version = repository.trust_version().await.expect("version");
        let stored = insert_partner(&repository, &record).await;
        assert_eq!(stored, record, "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}: an upload moves the version"
        );
        let found = repository
            .find_partner_certificate(&record.certificate_id)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(found, record, "{backend}: round trip");
        assert_eq!(found.chain_pem, acme_path(&pki.partner), "{backend}");
        assert_eq!(found.owner, partner_owner("acme"));
        assert_eq!(found.organization_name, ORG);
        assert!(!found.is_ca, "{backend}");
        assert_ne!(found.platform_signed_pem, found.ca_signed_pem);
        assert_eq!(
            repository
                .find_partner_certificate_by_identity("FTM", &record.identity)
                .await
                .expect("query")
                .as_ref(),
            Some(&record),
            "{backend}"
        );
        assert!(
            repository
                .find_partner_certificate_by_identity("DEVICE", &record.identity)
                .await
                .expect("query")
                .is_none(),
            "{backend}: per domain"
        );
        assert!(
            repository
                .find_partner_certificate(&Uuid::new_v4().to_string())
                .await
                .expect("query")
                .is_none(),
            "{backend}"
        );

        // A second upload of the same certificate by the same owner (the loser of a race):
        // the first record is returned and nothing of the second is written.
        let mut again = partner_record(
            partner_owner("acme"),
            "FTM",
            &pki.partner,
            &[&pki.intermediate],
            true,
        );
        again.upload_time = record.upload_time + chrono::Duration::seconds(5);
        let version = repository.trust_version().await.expect("version");
        let winner = insert_partner(&repository, &again).await;
        assert_eq!(winner, record, "{backend}: the first stored record wins");
        assert!(
            repository
                .find_partner_certificate(&again.certificate_id)
                .await
                .expect("query")
                .is_none(),
            "{backend}"
        );
        assert!(
            repository
                .audit_events(&again.certificate_id)
                .await
                .expect("audit")
                .is_empty(),
            "{backend}: no audit row for the losing upload"
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version,
            "{backend}: the losing upload does not move the version"
        );
        assert_eq!(
            repository
                .audit_events(&record.certificate_id)
                .await
                .expect("audit")
                .len(),
            1,
            "{backend}"
        );

        // The same certificate for another owner: one owner per certificate and domain, so
        // the database keeps the first holder and answers with it.
        let mut claim = partner_record(
            chip_owner("ftm-1", "mallory"),
            "FTM",
            &pki.partner,
            &[],
            false,
        );
        claim.organization_name = "Other".into();
        let holder = insert_partner(&repository, &claim).await;
        assert_eq!(holder, record, "{backend}: the first holder keeps it");
        assert!(
            repository
                .find_partner_certificate(&claim.certificate_id)
                .await
                .expect("query")
                .is_none(),
            "{backend}: nothing of the claim is written"
        );

        // The same certificate in another domain is another record; an empty chain
        // round-trips as an empty list.
        let chip = partner_record(
            chip_owner("ftm-1", "acme"),
            "DEVICE",
            &pki.partner,
            &[],
            false,
        );
        assert_eq!(insert_partner(&repository, &chip).await, chip, "{backend}");
        let found = repository
            .find_partner_certificate(&chip.certificate_id)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(found.chain_pem, [pem(&pki.partner)], "{backend}");
        assert_eq!(found.owner, chip_owner("ftm-1", "acme"), "{backend}");
        assert!(!found.trusted, "{backend}");
    }
}

#[tokio::test]
async fn set_trusted_flips_the_flag_bumps_the_version_and_audits() {
    let pki = &FIXTURE.pki;
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let chip = partner_record(
            chip_owner("ftm-1", "acme"),
            "FTM",
            &pki.ftm_chip,
            &[&pki.intermediate, &pki.root],
            false,
        );
        insert_partner(&repository, &chip).await;
        let id = chip.certificate_id.as_str();

        let version = repository.trust_version().await.expect("version");
        let unknown = Uuid::new_v4().to_string();
        assert_eq!(
            repository
                .set_trusted(&unknown, true, None, "ftm-management")
                .await
                .expect("query"),
            None,
            "{backend}"
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version,
            "{backend}: unknown id changes nothing"
        );
        assert!(
            repository
                .audit_events(&unknown)
                .await
                .expect("audit")
                .is_empty(),
            "{backend}"
        );

        let trusted = repository
            .set_trusted(id, true, None, "ftm-management")
            .await
            .expect("query")
            .expect("known");
        assert!(trusted.trusted, "{backend}");
        assert!(trusted.update_time >= chip.update_time, "{backend}");
        assert_eq!(trusted.upload_time, chip.upload_time, "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}"
        );
        let events = repository.audit_events(id).await.expect("audit");
        assert_eq!(events.len(), 2, "{backend}: upload + trust: {events:?}");
        assert_eq!(events[1].action, "CERTIFICATE_TRUSTED", "{backend}");
        assert_eq!(events[1].actor, "ftm-management", "{backend}");
        assert_eq!(events[1].before_state.as_deref(), Some("UNTRUSTED"));
        assert_eq!(events[1].after_state.as_deref(), Some("TRUSTED"));

        // Same value again: answered, but no version step and no audit row.
        let same = repository
            .set_trusted(id, true, None, "ftm-management")
            .await
            .expect("query")
            .expect("known");
        assert!(same.trusted, "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}: no change, no version step"
        );
        assert_eq!(
            repository.audit_events(id).await.expect("audit").len(),
            2,
            "{backend}: no change, no audit row"
        );

        let untrusted = repository
            .set_trusted(id, false, None, "admin")
            .await
            .expect("query")
            .expect("known");
        assert!(!untrusted.trusted, "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 2,
            "{backend}"
        );
        let events = repository.audit_events(id).await.expect("audit");
        let last = events.last().expect("event");
        assert_eq!(last.action, "CERTIFICATE_UNTRUSTED", "{backend}");
        assert_eq!(last.actor, "admin", "{backend}");
        assert_eq!(last.before_state.as_deref(), Some("TRUSTED"));
        assert_eq!(last.after_state.as_deref(), Some("UNTRUSTED"));
        let stored = repository
            .find_partner_certificate(id)
            .await
            .expect("query")
            .expect("known");
        assert!(!stored.trusted, "{backend}: persisted");
        assert_eq!(stored.chain_pem, chip.chain_pem, "{backend}: untouched");
    }
}

#[tokio::test]
async fn trust_data_lists_cas_and_partner_entries() {
    let pki = &FIXTURE.pki;
    let device_root = ec_root("Device Root CA");
    // CA-capable partner certificates (basicConstraints CA:TRUE) and plain leaves.
    let sub_ca = CertificateSpec::ca("Acme Partner Sub CA")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&pki.intermediate)
        .expect("sub CA");
    let untrusted_sub_ca = CertificateSpec::ca("Acme Untrusted Sub CA")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&pki.intermediate)
        .expect("sub CA");
    assert!(facts(&sub_ca).is_ca && !facts(&pki.partner).is_ca);
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let (root, intermediate) = insert_acme_cas(&repository, "FTM").await;
        let device = ca_record(&device_root, "DEVICE", None);
        insert_cas(&repository, &[&device]).await.expect("stored");

        let leaf = partner_record(
            partner_owner("acme"),
            "FTM",
            &pki.partner,
            &[&pki.intermediate, &pki.root],
            true,
        );
        let trusted_ca = partner_record(
            partner_owner("acme"),
            "FTM",
            &sub_ca,
            &[&pki.intermediate, &pki.root],
            true,
        );
        let untrusted_ca = partner_record(
            chip_owner("ftm-1", "acme"),
            "FTM",
            &untrusted_sub_ca,
            &[&pki.intermediate, &pki.root],
            false,
        );
        let chip = partner_record(
            chip_owner("ftm-1", "acme"),
            "DEVICE",
            &pki.ftm_chip,
            &[&pki.intermediate, &pki.root],
            false,
        );
        for record in [&leaf, &trusted_ca, &untrusted_ca, &chip] {
            insert_partner(&repository, record).await;
        }

        let data = repository.trust_data().await.expect("trust data");
        assert_eq!(
            data.version,
            repository.trust_version().await.expect("version"),
            "{backend}"
        );
        let cas: BTreeSet<(String, String)> = data.ca_certificates.iter().cloned().collect();
        let expected: BTreeSet<(String, String)> = [
            ("FTM".to_owned(), root.certificate_pem.clone()),
            ("FTM".to_owned(), intermediate.certificate_pem.clone()),
            ("DEVICE".to_owned(), device.certificate_pem.clone()),
        ]
        .into_iter()
        .collect();
        assert_eq!(cas, expected, "{backend}");
        assert_eq!(data.ca_certificates.len(), 3, "{backend}");

        assert_eq!(data.stored_certificates.len(), 4, "{backend}");
        let entry = |record: &PartnerCertificate| {
            data.stored_certificates
                .iter()
                .find(|entry| {
                    entry.partner_domain == record.partner_domain
                        && entry.identity == record.identity
                })
                .cloned()
                .expect("entry of every stored certificate")
        };
        let leaf_entry = entry(&leaf);
        assert!(leaf_entry.trusted, "{backend}");
        assert_eq!(leaf_entry.issuer_pem, None, "{backend}: not a CA");
        let ca_entry = entry(&trusted_ca);
        assert!(ca_entry.trusted, "{backend}");
        assert_eq!(
            ca_entry.issuer_pem.as_deref(),
            Some(trusted_ca.ca_signed_pem.as_str()),
            "{backend}: a trusted CA may issue"
        );
        let untrusted_entry = entry(&untrusted_ca);
        assert!(!untrusted_entry.trusted, "{backend}");
        assert_eq!(untrusted_entry.issuer_pem, None, "{backend}: untrusted CA");
        let chip_entry = entry(&chip);
        assert!(!chip_entry.trusted, "{backend}");
        assert_eq!(chip_entry.issuer_pem, None, "{backend}");

        repository
            .set_trusted(&untrusted_ca.certificate_id, true, None, "ftm-management")
            .await
            .expect("query")
            .expect("known");
        let data = repository.trust_data().await.expect("trust data");
        let now_trusted = data
            .stored_certificates
            .iter()
            .find(|entry| entry.identity == untrusted_ca.identity)
            .expect("entry");
        assert!(now_trusted.trusted, "{backend}");
        assert_eq!(
            now_trusted.issuer_pem.as_deref(),
            Some(untrusted_ca.ca_signed_pem.as_str()),
            "{backend}: issuer once trusted"
        );
        assert_eq!(
            data.version,
            repository.trust_version().await.expect("version"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn trust_store_verifies_chains_flags_and_domains() {
    let pki = &FIXTURE.pki;
    let foreign_root = ec_root("Foreign Root CA");
    let foreign_leaf = ec_leaf("Foreign Partner", &foreign_root);
    let expired = CertificateSpec::leaf("Acme Expired")
        .organisation(ORG)
        .valid_from_days(-400)
        .valid_for_days(30)
        .issued_by(&pki.intermediate)
        .expect("expired leaf");
    let partner_pem = pem(&pki.partner);
    let chip_pem = pem(&pki.ftm_chip);
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        insert_acme_cas(&repository, "FTM").await;
        let store = trust_store(&repository).await;
        assert_eq!(
            store.snapshot().version,
            repository.trust_version().await.expect("version"),
            "{backend}"
        );
        assert_eq!(store.snapshot().size(), (2, 0), "{backend}");

        let verdict = verify(&store, "FTM", &partner_pem).await;
        assert_trusted(
            &verdict,
            &acme_path(&pki.partner),
            &format!("{backend}: Acme leaf"),
        );
        assert_untrusted(
            &verify(&store, "FTM", &pem(&foreign_leaf)).await,
            &format!("{backend}: leaf of a foreign root"),
        );

        // Repeated questions are answered from the cache.
        let (hits, misses) = store.cache_statistics();
        let again = verify(&store, "FTM", &partner_pem).await;
        let once_more = verify(&store, "FTM", &partner_pem).await;
        assert_eq!(again, verdict, "{backend}");
        assert_eq!(once_more, verdict, "{backend}");
        assert_eq!(
            store.cache_statistics(),
            (hits + 2, misses),
            "{backend}: two cache hits, no new miss"
        );

        let expired_verdict = verify(&store, "FTM", &pem(&expired)).await;
        assert_untrusted(&expired_verdict, &format!("{backend}: expired leaf"));
        assert!(
            expired_verdict.reason.contains("expired"),
            "{backend}: {expired_verdict:?}"
        );

        // Not stored yet: judged by its chain alone.
        assert_trusted(
            &verify(&store, "FTM", &chip_pem).await,
            &acme_path(&pki.ftm_chip),
            &format!("{backend}: unknown chip certificate"),
        );
        // Stored untrusted (FTM not approved yet): untrusted despite a valid chain.
        let chip = partner_record(
            chip_owner("ftm-1", "acme"),
            "FTM",
            &pki.ftm_chip,
            &[&pki.intermediate, &pki.root],
            false,
        );
        insert_partner(&repository, &chip).await;
        store.refresh().await.expect("refresh");
        assert_eq!(
            store.snapshot().version,
            repository.trust_version().await.expect("version"),
            "{backend}"
        );
        assert_untrusted(
            &verify(&store, "FTM", &chip_pem).await,
            &format!("{backend}: stored untrusted chip certificate"),
        );
        // Sent along with its issuers: still untrusted.
        let bundle = format!("{chip_pem}{}", pem(&pki.intermediate));
        assert_untrusted(
            &verify(&store, "FTM", &bundle).await,
            &format!("{backend}: stored untrusted chip certificate with chain"),
        );
        // The other Acme leaf is unaffected.
        assert_trusted(
            &verify(&store, "FTM", &partner_pem).await,
            &acme_path(&pki.partner),
            &format!("{backend}: Acme leaf after the rebuild"),
        );

        repository
            .set_trusted(&chip.certificate_id, true, None, "ftm-management")
            .await
            .expect("query")
            .expect("known");
        store.refresh().await.expect("refresh");
        assert_trusted(
            &verify(&store, "FTM", &chip_pem).await,
            &acme_path(&pki.ftm_chip),
            &format!("{backend}: approved chip certificate"),
        );

        // DEVICE has no CAs: nothing chains there.
        assert_untrusted(
            &verify(&store, "DEVICE", &chip_pem).await,
            &format!("{backend}: chip certificate in DEVICE"),
        );
        assert_untrusted(
            &verify(&store, "DEVICE", &partner_pem).await,
            &format!("{backend}: partner certificate in DEVICE"),
        );
        // With only the root in DEVICE, the intermediate must be sent along.
        insert_cas(&repository, &[&ca_record(&pki.root, "DEVICE", None)])
            .await
            .expect("stored");
        store.refresh().await.expect("refresh");
        assert_untrusted(
            &verify(&store, "DEVICE", &partner_pem).await,
            &format!("{backend}: DEVICE without the intermediate"),
        );
        assert_trusted(
            &verify(
                &store,
                "DEVICE",
                &format!("{partner_pem}{}", pem(&pki.intermediate)),
            )
            .await,
            &acme_path(&pki.partner),
            &format!("{backend}: DEVICE with the intermediate supplied"),
        );

        let unknown = store.verify("NOPE", &partner_pem).await;
        assert!(
            matches!(unknown, Err(StoreError::InvalidDomain)),
            "{backend}: {unknown:?}"
        );
    }
}

#[tokio::test]
async fn trusted_partner_ca_lends_its_signature_only_while_trusted() {
    // A PKI without path length limits so that a partner CA can sit below the intermediate.
    let root = ec_root("Open Root CA");
    let intermediate = CertificateSpec::ca("Open Intermediate CA")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&root)
        .expect("intermediate");
    let partner_ca = CertificateSpec::ca("Acme Partner CA")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&intermediate)
        .expect("partner CA");
    let device = ec_leaf("Acme Device", &partner_ca);
    let device_pem = pem(&device);
    let full_path = vec![
        device_pem.clone(),
        pem(&partner_ca),
        pem(&intermediate),
        pem(&root),
    ];
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let root_record = ca_record(&root, "FTM", None);
        let intermediate_record =
            ca_record(&intermediate, "FTM", Some(&root_record.certificate_id));
        insert_cas(&repository, &[&root_record, &intermediate_record])
            .await
            .expect("stored");
        let store = trust_store(&repository).await;
        assert_untrusted(
            &verify(&store, "FTM", &device_pem).await,
            &format!("{backend}: issuer unknown to the store"),
        );

        let record = partner_record(
            partner_owner("acme"),
            "FTM",
            &partner_ca,
            &[&intermediate, &root],
            true,
        );
        insert_partner(&repository, &record).await;
        store.refresh().await.expect("refresh");
        assert_trusted(
            &verify(&store, "FTM", &device_pem).await,
            &full_path,
            &format!("{backend}: issued by a trusted partner CA"),
        );

        repository
            .set_trusted(&record.certificate_id, false, None, "admin")
            .await
            .expect("query")
            .expect("known");
        store.refresh().await.expect("refresh");
        assert_untrusted(
            &verify(&store, "FTM", &device_pem).await,
            &format!("{backend}: partner CA no longer trusted"),
        );
        assert_untrusted(
            &verify(&store, "FTM", &format!("{device_pem}{}", pem(&partner_ca))).await,
            &format!("{backend}: untrusted partner CA supplied by the caller"),
        );
    }
}

#[tokio::test]
async fn replicas_see_changes_after_refresh_and_through_the_poller() {
    let pki = &FIXTURE.pki;
    let partner_pem = pem(&pki.partner);
    let second_root = ec_root("Second Root CA");
    let second_leaf = ec_leaf("Second Partner", &second_root);
    let second_leaf_pem = pem(&second_leaf);
    for backend in backends() {
        let (database, repository_a) = repository(backend).await;
        let repository_b = replica_repository(&database).await;
        let store_a = trust_store(&repository_a).await;
        let store_b = trust_store(&repository_b).await;
        assert_untrusted(
            &verify(&store_b, "FTM", &partner_pem).await,
            &format!("{backend}: B before any CA"),
        );

        insert_acme_cas(&repository_a, "FTM").await;
        store_a.refresh().await.expect("refresh A");
        assert_trusted(
            &verify(&store_a, "FTM", &partner_pem).await,
            &acme_path(&pki.partner),
            &format!("{backend}: A after its own write"),
        );
        let stored = repository_b.trust_version().await.expect("version");
        assert_eq!(
            stored,
            repository_a.trust_version().await.expect("version"),
            "{backend}: both repositories read the same database"
        );
        assert!(
            store_b.snapshot().version < stored,
            "{backend}: B has not rebuilt yet"
        );
        assert_untrusted(
            &verify(&store_b, "FTM", &partner_pem).await,
            &format!("{backend}: B before its refresh"),
        );
        store_b.refresh().await.expect("refresh B");
        assert_eq!(store_b.snapshot().version, stored, "{backend}");
        assert_trusted(
            &verify(&store_b, "FTM", &partner_pem).await,
            &acme_path(&pki.partner),
            &format!("{backend}: B after its refresh"),
        );

        // The poller of B picks up a change written through A.
        assert_untrusted(
            &verify(&store_b, "FTM", &second_leaf_pem).await,
            &format!("{backend}: second root not stored yet"),
        );
        let poller = store_b.spawn_poller(Duration::from_millis(100));
        insert_cas(&repository_a, &[&ca_record(&second_root, "FTM", None)])
            .await
            .expect("stored");
        let expected = repository_a.trust_version().await.expect("version");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let verdict = loop {
            if store_b.snapshot().version == expected {
                break verify(&store_b, "FTM", &second_leaf_pem).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: the poller did not rebuild B within 5 s (B at {}, database at {expected})",
                store_b.snapshot().version
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_trusted(
            &verdict,
            &[second_leaf_pem.clone(), pem(&second_root)],
            &format!("{backend}: B after the poller's rebuild"),
        );
        poller.abort();
    }
}

/// Asserts that `store` answers every one of `presented` exactly as a store freshly loaded
/// from all the data does, at the same version.
async fn assert_answers_as_a_rebuild(
    store: &TrustStore,
    repository: &Arc<SqlCertificateRepository>,
    presented: &[String],
    context: &str,
) {
    let rebuilt = trust_store_with(repository, TrustPolicy::Registered).await;
    assert_eq!(
        store.snapshot().version,
        rebuilt.snapshot().version,
        "{context}: same version"
    );
    assert_eq!(
        store.snapshot().size(),
        rebuilt.snapshot().size(),
        "{context}"
    );
    for (index, data) in presented.iter().enumerate() {
        assert_eq!(
            verify(store, "FTM", data).await,
            verify(&rebuilt, "FTM", data).await,
            "{context}: chip {index}"
        );
    }
}

/// Trust flag changes reach a snapshot as the changed rows alone, and the advanced snapshot
/// answers exactly as one rebuilt from all the data; changes a row cannot express, and
/// version steps no row accounts for, fall back to the full rebuild.
#[tokio::test]
async fn trust_flag_changes_advance_the_snapshot_exactly_as_a_rebuild_would() {
    use sea_orm::ConnectionTrait;
    let pki = &FIXTURE.pki;
    let chips: Vec<Issued> = (0..6)
        .map(|index| ec_leaf(&format!("Incremental Chip {index}"), &pki.intermediate))
        .collect();
    let presented: Vec<String> = chips.iter().map(pem).collect();
    let partner_of = |index: usize| {
        if index.is_multiple_of(2) {
            "acme"
        } else {
            "other"
        }
    };
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        insert_acme_cas(&repository, "FTM").await;
        let store = trust_store_with(&repository, TrustPolicy::Registered).await;
        let lagging = trust_store_with(&repository, TrustPolicy::Registered).await;
        let since = store.snapshot().version;
        let records: Vec<PartnerCertificate> = chips
            .iter()
            .enumerate()
            .map(|(index, chip)| {
                let owner = chip_owner(&format!("ftm-{index}"), partner_of(index));
                partner_record(owner, "FTM", chip, &[&pki.intermediate, &pki.root], false)
            })
            .collect();
        for record in &records {
            insert_partner(&repository, record).await;
            store.refresh().await.expect("refresh");
        }
        for record in &records[..4] {
            repository
                .set_trusted(&record.certificate_id, true, None, "ftm-management")
                .await
                .expect("trusted");
            store.refresh().await.expect("refresh");
        }
        let counts = store.refresh_counts();
        assert_eq!(
            (counts.advanced, counts.rebuilt),
            (10, 0),
            "{backend}: every flag change and chip upload applied from its row"
        );
        for (index, data) in presented.iter().enumerate() {
            assert_eq!(
                verify(&store, "FTM", data).await.trusted,
                index < 4,
                "{backend}: chip {index} trusted once approved"
            );
        }
        assert_answers_as_a_rebuild(&store, &repository, &presented, backend).await;

        let changes = repository.trust_changes(since).await.expect("changes");
        assert_eq!(changes.version, since + 10, "{backend}");
        assert!(
            changes.structural_version <= since,
            "{backend}: {changes:?}"
        );
        let mut stamps: Vec<i64> = changes
            .changed
            .iter()
            .map(|row| row.trust_version)
            .collect();
        stamps.sort_unstable();
        assert_eq!(
            stamps,
            [5, 6, 7, 8, 9, 10].map(|step| since + step),
            "{backend}: each row keeps the stamp of its last change"
        );
        // Steps 1 to 4 belong to rows that changed again: a replica that missed them
        // cannot tell what they were, and reads everything.
        lagging.refresh().await.expect("refresh");
        assert_eq!(lagging.refresh_counts().rebuilt, 1, "{backend}");
        assert_answers_as_a_rebuild(&lagging, &repository, &presented, backend).await;

        // Deactivating a partner is structural; a flag change of its chip while it is
        // deactivated is a row again, and stays untrusted in effect.
        repository
            .set_partner_deactivated("acme", true, "partner-registry")
            .await
            .expect("deactivated");
        store.refresh().await.expect("refresh");
        assert_eq!(store.refresh_counts().rebuilt, 1, "{backend}: structural");
        repository
            .set_trusted(&records[4].certificate_id, true, None, "ftm-management")
            .await
            .expect("trusted");
        store.refresh().await.expect("refresh");
        assert_eq!(store.refresh_counts().advanced, 11, "{backend}");
        let verdict = verify(&store, "FTM", &presented[4]).await;
        assert_eq!(
            verdict.reason,
            certificate_store::trust::REASON_NOT_TRUSTED,
            "{backend}: its partner is deactivated"
        );
        assert_answers_as_a_rebuild(&store, &repository, &presented, backend).await;

        // A version step written without a row stamp (an older release) is not guessed at.
        database
            .connection
            .execute_unprepared("UPDATE trust_versions SET version = version + 1 WHERE id = 1")
            .await
            .expect("bare step");
        store.refresh().await.expect("refresh");
        assert_eq!(
            store.refresh_counts().rebuilt,
            2,
            "{backend}: unexplained step"
        );
        assert_answers_as_a_rebuild(&store, &repository, &presented, backend).await;
        let current = store.snapshot().version;
        let nothing = repository.trust_changes(current).await.expect("changes");
        assert_eq!(
            (nothing.version, nothing.changed.len()),
            (current, 0),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verification_during_rebuilds_is_always_trusted() {
    const BATCHES: usize = 20;
    const READERS: usize = 4;
    const VERIFICATIONS: usize = 200;
    let pki = &FIXTURE.pki;
    let partner_pem = pem(&pki.partner);
    let path = acme_path(&pki.partner);
    let unrelated: Vec<Issued> = (0..BATCHES)
        .map(|index| ec_root(&format!("Unrelated Root {index}")))
        .collect();
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        insert_acme_cas(&repository, "FTM").await;
        let store = trust_store(&repository).await;
        assert_trusted(
            &verify(&store, "FTM", &partner_pem).await,
            &path,
            &format!("{backend}: before the writes"),
        );
        let start_version = store.snapshot().version;

        let writer = {
            let repository = Arc::clone(&repository);
            let store = Arc::clone(&store);
            let roots: Vec<CaCertificate> = unrelated
                .iter()
                .map(|root| ca_record(root, "FTM", None))
                .collect();
            tokio::spawn(async move {
                for root in &roots {
                    insert_cas(&repository, &[root]).await.expect("stored");
                    store.refresh().await.expect("refresh");
                }
            })
        };
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let partner_pem = partner_pem.clone();
                tokio::spawn(async move {
                    let mut answers = Vec::with_capacity(VERIFICATIONS);
                    let mut versions = BTreeSet::new();
                    for _ in 0..VERIFICATIONS {
                        versions.insert(store.snapshot().version);
                        answers.push(store.verify("FTM", &partner_pem).await);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    (answers, versions)
                })
            })
            .collect();
        writer.await.expect("writer");
        let mut seen_versions = BTreeSet::new();
        for reader in readers {
            let (answers, versions) = reader.await.expect("reader");
            assert_eq!(answers.len(), VERIFICATIONS, "{backend}");
            for answer in answers {
                let verdict = answer.expect("verification");
                assert_trusted(&verdict, &path, &format!("{backend}: during rebuilds"));
            }
            seen_versions.extend(versions);
        }
        eprintln!(
            "{backend}: readers saw {} trust-store versions",
            seen_versions.len()
        );
        assert_eq!(
            store.snapshot().version,
            start_version + i64::try_from(BATCHES).expect("small"),
            "{backend}: every batch rebuilt the store"
        );
        assert_eq!(store.snapshot().size(), (2 + BATCHES, 0), "{backend}");
        assert_trusted(
            &verify(&store, "FTM", &partner_pem).await,
            &path,
            &format!("{backend}: after the writes"),
        );
    }
}

#[tokio::test]
async fn migrations_roll_back_and_forward() {
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        Migrator::up(&database.connection, None).await.expect("up");
        let repository = SqlCertificateRepository::new(database.connection.clone());
        assert_eq!(
            repository.trust_version().await.expect("version"),
            2,
            "{backend}: seeded version row, moved by the trust-model migration"
        );
        Migrator::down(&database.connection, None)
            .await
            .expect("down");
        assert!(
            repository.trust_version().await.is_err(),
            "{backend}: tables dropped"
        );
        assert!(
            repository
                .list_ca(&CaFilter::default(), None, 10)
                .await
                .is_err(),
            "{backend}: tables dropped"
        );
        Migrator::up(&database.connection, None)
            .await
            .expect("up again");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            2,
            "{backend}: seeded again"
        );
        let page = repository
            .list_ca(&CaFilter::default(), None, 10)
            .await
            .expect("page");
        assert_eq!(page.total_size, 0, "{backend}");
        assert!(
            repository
                .trust_data()
                .await
                .expect("data")
                .ca_certificates
                .is_empty(),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_the_same_certificate_return_the_first_record() {
    const RACERS: usize = 6;
    let pki = &FIXTURE.pki;
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let version = repository.trust_version().await.expect("version");
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let repository = Arc::clone(&repository);
                let record = partner_record(
                    partner_owner("acme"),
                    "FTM",
                    &pki.partner,
                    &[&pki.intermediate, &pki.root],
                    true,
                );
                tokio::spawn(async move {
                    let event = audit("CERTIFICATE_UPLOADED", &record.certificate_id, "TRUSTED");
                    repository.insert_partner_certificate(&record, event).await
                })
            })
            .collect();
        let mut winners = BTreeSet::new();
        for racer in racers {
            let stored = racer
                .await
                .expect("racer")
                .expect("every racer is answered");
            winners.insert(stored.certificate_id);
        }
        assert_eq!(
            winners.len(),
            1,
            "{backend}: one record for all: {winners:?}"
        );
        let winner = winners.first().expect("winner");
        let stored = repository
            .find_partner_certificate_by_identity("FTM", &facts(&pki.partner).identity)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(&stored.certificate_id, winner, "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}: only the winner moved the version"
        );
        assert_eq!(
            repository.audit_events(winner).await.expect("audit").len(),
            1,
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_set_trusted_on_different_certificates_all_succeed() {
    const CERTIFICATES: usize = 8;
    const ROUNDS: usize = 10;
    let pki = &FIXTURE.pki;
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let mut ids = Vec::new();
        for index in 0..CERTIFICATES {
            let record = partner_record(
                chip_owner(&format!("ftm-{index}"), "acme"),
                "FTM",
                &ec_leaf(&format!("chip {index}"), &pki.intermediate),
                &[],
                false,
            );
            insert_partner(&repository, &record).await;
            ids.push(record.certificate_id);
        }
        let version = repository.trust_version().await.expect("version");
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let repository = Arc::clone(&repository);
                let id = id.clone();
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    for round in 0..ROUNDS {
                        let trusted = round % 2 == 0;
                        if let Err(error) =
                            repository.set_trusted(&id, trusted, None, "admin").await
                        {
                            errors.push(error.to_string());
                        }
                    }
                    errors
                })
            })
            .collect();
        let mut errors = Vec::new();
        for task in tasks {
            errors.extend(task.await.expect("task"));
        }
        assert!(
            errors.is_empty(),
            "{backend}: {} of {} concurrent set_trusted calls failed, e.g. {:?}",
            errors.len(),
            CERTIFICATES * ROUNDS,
            errors.first()
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + i64::try_from(CERTIFICATES * ROUNDS).expect("small"),
            "{backend}: every flip moved the version once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_set_trusted_changes_and_audits_once() {
    const ROUNDS: usize = 10;
    const CALLERS: usize = 6;
    let pki = &FIXTURE.pki;
    // Collected over both backends so that one run shows every backend's behaviour.
    let mut problems = Vec::new();
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        for round in 0..ROUNDS {
            let record = partner_record(
                chip_owner(&format!("ftm-{round}"), "acme"),
                "FTM",
                &ec_leaf(&format!("chip {round}"), &pki.intermediate),
                &[],
                false,
            );
            insert_partner(&repository, &record).await;
            let version = repository.trust_version().await.expect("version");
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let repository = Arc::clone(&repository);
                    let id = record.certificate_id.clone();
                    tokio::spawn(async move {
                        repository
                            .set_trusted(&id, true, None, "ftm-management")
                            .await
                    })
                })
                .collect();
            for caller in callers {
                match caller.await.expect("caller") {
                    Ok(answer) => assert!(answer.expect("known").trusted, "{backend}"),
                    Err(error) => problems.push(format!("{backend} round {round}: {error}")),
                }
            }
            let trusted_events = repository
                .audit_events(&record.certificate_id)
                .await
                .expect("audit")
                .iter()
                .filter(|event| event.action == "CERTIFICATE_TRUSTED")
                .count();
            let steps = repository.trust_version().await.expect("version") - version;
            if trusted_events != 1 || steps != 1 {
                problems.push(format!(
                    "{backend} round {round}: {trusted_events} CERTIFICATE_TRUSTED audit rows \
                     and {steps} version steps for one change"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Inserts a row of the first schema's `partner_certificates`.
async fn old_partner_row(
    database: &TestDatabase,
    id: &str,
    owner: &str,
    kind: &str,
    certificate: &Issued,
    trusted: bool,
) {
    use sea_orm::ConnectionTrait;
    let facts = facts(certificate);
    let pem = pem(certificate);
    database
        .connection
        .execute_unprepared(&format!(
            "INSERT INTO partner_certificates (certificate_id, owner_id, partner_domain, \
             certificate_kind, organization_name, thumbprint, subject, issuer, serial_number, \
             not_before, not_after, is_ca, ca_signed_pem, platform_signed_pem, chain_pem, \
             trusted, upload_time, update_time) VALUES ('{id}', '{owner}', 'FTM', '{kind}', \
             '{ORG}', '{}', 'CN=x', 'CN=y', '01', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, FALSE, \
             '{pem}', '{pem}', '{pem}', {trusted}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            facts.thumbprint
        ))
        .await
        .expect("old-style partner certificate");
}

/// Inserts a row of the first schema's `ca_certificates`.
async fn old_ca_row(database: &TestDatabase, id: &str, certificate_pem: &str, thumbprint: &str) {
    use sea_orm::ConnectionTrait;
    database
        .connection
        .execute_unprepared(&format!(
            "INSERT INTO ca_certificates (certificate_id, partner_domain, ca_type, subject, \
             issuer, serial_number, thumbprint, not_before, not_after, upload_time, \
             certificate_pem, issuer_certificate_id) VALUES ('{id}', 'FTM', 'ROOT', 'CN=x', \
             'CN=x', '01', '{thumbprint}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, \
             CURRENT_TIMESTAMP, '{certificate_pem}', '{id}')"
        ))
        .await
        .expect("old-style CA certificate");
}

/// The trust-model migration on data the first schema wrote: identities computed, owners
/// typed, the later holders of a certificate several owners held quarantined (and audited),
/// partner certificates' marks cleared for the registry to re-apply, chip marks kept; and
/// back down to the first schema, and up again.
#[tokio::test]
async fn the_trust_model_migration_moves_data_of_the_first_schema() {
    use sea_orm::ConnectionTrait;
    let pki = &FIXTURE.pki;
    let root = ec_root("Migration Root");
    let chip = ec_leaf("Migration Chip", &root);
    let malleated_root =
        pmp_dev_certs::attacks::malleated_copy(&root.certificate, &root.certificate).expect("copy");
    let malleated_root = Issued {
        certificate: malleated_root,
        private_key: root.private_key.clone(),
    };
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        Migrator::up(&database.connection, Some(1))
            .await
            .expect("first schema");
        // Ids are UUIDv7-like: ordered by time, as the service writes them.
        old_ca_row(
            &database,
            "00000000-0000-7000-8000-000000000001",
            &pem(&root),
            &facts(&root).thumbprint,
        )
        .await;
        old_ca_row(
            &database,
            "00000000-0000-7000-8000-000000000002",
            &pem(&malleated_root),
            &facts(&malleated_root).thumbprint,
        )
        .await;
        old_partner_row(
            &database,
            "00000000-0000-7000-8000-000000000011",
            "victim",
            "PARTNER",
            &pki.partner,
            true,
        )
        .await;
        old_partner_row(
            &database,
            "00000000-0000-7000-8000-000000000012",
            "ftm-1",
            "FTM_CHIP",
            &chip,
            true,
        )
        .await;
        old_partner_row(
            &database,
            "00000000-0000-7000-8000-000000000013",
            "mallory",
            "PARTNER",
            &pki.partner,
            true,
        )
        .await;
        old_partner_row(
            &database,
            "00000000-0000-7000-8000-000000000014",
            "ftm-2",
            "FTM_CHIP",
            &chip,
            false,
        )
        .await;

        Migrator::up(&database.connection, None)
            .await
            .expect("trust model");
        let repository = SqlCertificateRepository::new(database.connection.clone());
        let find = |id: &'static str| {
            let repository = repository.clone();
            async move {
                repository
                    .find_partner_certificate(id)
                    .await
                    .expect("query")
                    .expect("kept")
            }
        };
        let victim = find("00000000-0000-7000-8000-000000000011").await;
        assert_eq!(victim.identity, facts(&pki.partner).identity, "{backend}");
        assert_eq!(victim.owner, Owner::partner("victim"), "{backend}");
        assert!(
            !victim.trusted,
            "{backend}: re-marked by the registry at its start"
        );
        let chip_row = find("00000000-0000-7000-8000-000000000012").await;
        assert_eq!(
            chip_row.owner,
            Owner::ftm("ftm-1", ""),
            "{backend}: partner linked later"
        );
        assert!(
            chip_row.trusted,
            "{backend}: approved chips keep their mark"
        );
        for quarantined in [
            "00000000-0000-7000-8000-000000000013",
            "00000000-0000-7000-8000-000000000014",
        ] {
            let row = find(quarantined).await;
            assert_eq!(row.identity, format!("conflict:{quarantined}"), "{backend}");
            assert!(!row.trusted, "{backend}");
            let events = repository.audit_events(quarantined).await.expect("audit");
            assert_eq!(
                events.last().map(|event| event.action.as_str()),
                Some("CERTIFICATE_QUARANTINED"),
                "{backend}"
            );
        }
        assert_eq!(
            repository
                .find_partner_certificate_by_identity("FTM", &facts(&pki.partner).identity)
                .await
                .expect("query")
                .map(|row| row.certificate_id),
            Some(victim.certificate_id.clone()),
            "{backend}: the first holder keeps it"
        );
        let ca = repository
            .find_ca("00000000-0000-7000-8000-000000000001")
            .await
            .expect("query")
            .expect("root");
        assert_eq!(ca.identity, facts(&root).identity, "{backend}");
        let copy = repository
            .find_ca("00000000-0000-7000-8000-000000000002")
            .await
            .expect("query")
            .expect("copy");
        assert!(copy.identity.starts_with("conflict:"), "{backend}");
        // The trust store builds from the migrated data.
        let store = trust_store(&Arc::new(repository.clone())).await;
        assert_eq!(store.snapshot().size().0, 2, "{backend}");

        // Back to the first schema: this migration and every later one.
        let later = u32::try_from(Migrator::migrations().len() - 1).expect("few migrations");
        Migrator::down(&database.connection, Some(later))
            .await
            .expect("down");
        let kinds = database
            .connection
            .query_all_raw(sea_orm::Statement::from_string(
                database.connection.get_database_backend(),
                "SELECT certificate_kind FROM partner_certificates ORDER BY certificate_id",
            ))
            .await
            .expect("first schema again")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("kind"))
            .collect::<Vec<_>>();
        assert_eq!(
            kinds,
            ["PARTNER", "FTM_CHIP", "PARTNER", "FTM_CHIP"],
            "{backend}"
        );
        Migrator::up(&database.connection, None)
            .await
            .expect("up again");
    }
}

/// Chip certificates stored before they were linked to a partner are linked by the first
/// trust call that names one, and never re-linked; partner deactivation facts are audited,
/// move the version only when they change, and reach the trust data.
#[tokio::test]
async fn partners_are_linked_once_and_their_deactivation_is_recorded() {
    let pki = &FIXTURE.pki;
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let legacy = partner_record(chip_owner("ftm-1", ""), "FTM", &pki.ftm_chip, &[], true);
        insert_partner(&repository, &legacy).await;
        let id = legacy.certificate_id.as_str();
        let version = repository.trust_version().await.expect("version");
        let linked = repository
            .set_trusted(id, true, Some("acme"), "ftm-management")
            .await
            .expect("query")
            .expect("known");
        assert_eq!(linked.owner.partner_id, "acme", "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}: linking is a trust change"
        );
        let again = repository
            .set_trusted(id, true, Some("acme"), "ftm-management")
            .await
            .expect("query")
            .expect("known");
        assert_eq!(again.owner.partner_id, "acme", "{backend}");
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}: nothing changed"
        );
        let mismatch = repository
            .set_trusted(id, false, Some("mallory"), "ftm-management")
            .await;
        assert!(
            matches!(mismatch, Err(StoreError::PartnerMismatch)),
            "{backend}: {mismatch:?}"
        );
        let kept = repository
            .find_partner_certificate(id)
            .await
            .expect("query")
            .expect("known");
        assert!(kept.trusted, "{backend}: a refused call changes nothing");

        assert!(
            !repository
                .is_partner_deactivated("acme")
                .await
                .expect("query")
        );
        let version = repository.trust_version().await.expect("version");
        assert!(
            repository
                .set_partner_deactivated("acme", true, "partner-registry")
                .await
                .expect("query"),
            "{backend}: recorded"
        );
        assert!(
            !repository
                .set_partner_deactivated("acme", true, "partner-registry")
                .await
                .expect("query"),
            "{backend}: idempotent"
        );
        assert!(
            repository
                .is_partner_deactivated("acme")
                .await
                .expect("query")
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            version + 1,
            "{backend}"
        );
        let data = repository.trust_data().await.expect("trust data");
        assert_eq!(data.deactivated_partners, ["acme"], "{backend}");
        let store = trust_store_with(&repository, TrustPolicy::Chain).await;
        insert_acme_cas(&repository, "FTM").await;
        store.refresh().await.expect("refresh");
        assert_untrusted(
            &verify(&store, "FTM", &pem(&pki.ftm_chip)).await,
            &format!("{backend}: marked trusted, but its partner is deactivated"),
        );
        assert!(
            repository
                .set_partner_deactivated("acme", false, "partner-registry")
                .await
                .expect("query")
        );
        store.refresh().await.expect("refresh");
        assert_trusted(
            &verify(&store, "FTM", &pem(&pki.ftm_chip)).await,
            &acme_path(&pki.ftm_chip),
            &format!("{backend}: re-activated"),
        );
        let events = repository.audit_events("acme").await.expect("audit");
        let actions: Vec<&str> = events.iter().map(|event| event.action.as_str()).collect();
        assert_eq!(
            actions,
            ["PARTNER_DEACTIVATED", "PARTNER_REACTIVATED"],
            "{backend}"
        );
    }
}

/// The `registered` policy: a valid path needs a trusted stored certificate on it; a
/// never-seen leaf under the domain's CAs is "not registered", an approved chip that issues
/// device certificates vouches for them.
#[tokio::test]
async fn the_registered_policy_needs_a_trusted_stored_certificate_on_the_path() {
    let pki = &FIXTURE.pki;
    let root = ec_root("Registered Root");
    let chip = CertificateSpec::ca("Registered Chip")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .path_len(0)
        .valid_from_days(-1)
        .valid_for_days(700)
        .issued_by(&root)
        .expect("chip CA");
    let device = ec_leaf("Registered Device", &chip);
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        insert_acme_cas(&repository, "FTM").await;
        insert_cas(&repository, &[&ca_record(&root, "FTM", None)])
            .await
            .expect("root");
        let store = trust_store_with(&repository, TrustPolicy::Registered).await;
        let verdict = verify(&store, "FTM", &pem(&pki.partner)).await;
        assert_untrusted(&verdict, &format!("{backend}: never seen"));
        assert_eq!(
            verdict.reason,
            certificate_store::trust::REASON_NOT_REGISTERED
        );
        let stored = partner_record(chip_owner("ftm-1", "acme"), "FTM", &chip, &[&root], false);
        insert_partner(&repository, &stored).await;
        let presented = format!("{}{}", pem(&device), pem(&chip));
        store.refresh().await.expect("refresh");
        assert_untrusted(
            &verify(&store, "FTM", &presented).await,
            &format!("{backend}: chip not approved"),
        );
        repository
            .set_trusted(&stored.certificate_id, true, None, "ftm-management")
            .await
            .expect("query");
        store.refresh().await.expect("refresh");
        assert_trusted(
            &verify(&store, "FTM", &presented).await,
            &[pem(&device), pem(&chip), pem(&root)],
            &format!("{backend}: vouched for by the approved chip"),
        );
        // Also without sending the chip: a trusted stored CA-capable certificate is an issuer.
        assert_trusted(
            &verify(&store, "FTM", &pem(&device)).await,
            &[pem(&device), pem(&chip), pem(&root)],
            &format!("{backend}: issuer from the store"),
        );
    }
}

/// The verdict cache is bounded in bytes and evicts the least recently used verdict.
#[tokio::test]
async fn the_verdict_cache_is_bounded_and_least_recently_used_goes_first() {
    let pki = &FIXTURE.pki;
    let leaves: Vec<Issued> = (0..12)
        .map(|index| ec_leaf(&format!("cached {index}"), &pki.intermediate))
        .collect();
    let (_database, repository) = repository("sqlite").await;
    insert_acme_cas(&repository, "FTM").await;
    let repository: Arc<dyn CertificateRepository> = repository;
    // About four verdicts' worth (each holds a three-certificate path).
    let settings = TrustSettings {
        domains: domains(),
        policies: [("FTM".to_owned(), TrustPolicy::Chain)]
            .into_iter()
            .collect(),
        cache_bytes: 4 * 3 * 1100,
    };
    let store = TrustStore::load(repository, settings)
        .await
        .expect("trust store");
    let first = pem(&leaves[0]);
    verify(&store, "FTM", &first).await;
    for leaf in &leaves[1..] {
        // The first stays the most recently used; the others push each other out.
        verify(&store, "FTM", &first).await;
        verify(&store, "FTM", &pem(leaf)).await;
    }
    let (hits, misses) = store.cache_statistics();
    verify(&store, "FTM", &first).await;
    assert_eq!(
        store.cache_statistics(),
        (hits + 1, misses),
        "the most recently used verdict stayed"
    );
    verify(&store, "FTM", &pem(&leaves[1])).await;
    assert_eq!(
        store.cache_statistics(),
        (hits + 1, misses + 1),
        "an old verdict was evicted"
    );
}

fn platform_key(key_id: &str, location: KeyLocation, state: PlatformKeyState) -> PlatformKeyRecord {
    let time = now();
    PlatformKeyRecord {
        key_id: key_id.into(),
        certificate_pem: format!("certificate of {key_id}"),
        location,
        state,
        not_after: time + chrono::Duration::days(1825),
        added_at: time,
        activated_at: (state == PlatformKeyState::Active).then_some(time),
        retired_at: None,
    }
}

#[tokio::test]
async fn platform_keys_are_adopted_once_added_and_activated_one_at_a_time() {
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        let other_replica = replica_repository(&database).await;
        let configured = platform_key(
            "first",
            KeyLocation::File("/secrets/platform/key.pem".into()),
            PlatformKeyState::Active,
        );
        // Two replicas adopt their configured key at once: one row.
        let (a, b) = tokio::join!(
            repository.adopt_initial_platform_key(&configured),
            other_replica.adopt_initial_platform_key(&configured)
        );
        a.expect("adopted");
        b.expect("adopted");
        assert_eq!(
            repository.platform_keys().await.expect("keys"),
            std::slice::from_ref(&configured),
            "{backend}"
        );

        let next = platform_key(
            "second",
            KeyLocation::Hsm("platform-2027".into()),
            PlatformKeyState::Next,
        );
        repository
            .insert_platform_key(&next, audit("PLATFORM_SIGNING_KEY_ADDED", "second", "NEXT"))
            .await
            .expect("added");
        let again = repository
            .insert_platform_key(&next, audit("PLATFORM_SIGNING_KEY_ADDED", "second", "NEXT"))
            .await;
        assert!(
            matches!(again, Err(StoreError::DuplicateCa)),
            "{backend}: {again:?}"
        );
        // Once keys exist, a replica's configured key is no longer adopted.
        let stale = platform_key(
            "stale",
            KeyLocation::File("/old.pem".into()),
            PlatformKeyState::Active,
        );
        other_replica
            .adopt_initial_platform_key(&stale)
            .await
            .expect("nothing to do");
        assert_eq!(
            repository.platform_keys().await.expect("keys").len(),
            2,
            "{backend}"
        );

        let at = now() + chrono::Duration::seconds(5);
        let activated = repository
            .activate_platform_key(
                "second",
                at,
                audit("PLATFORM_SIGNING_KEY_ACTIVATED", "second", "ACTIVE"),
            )
            .await
            .expect("activated");
        assert_eq!(activated.state, PlatformKeyState::Active);
        assert_eq!(activated.activated_at, Some(at));
        assert_eq!(activated.location, KeyLocation::Hsm("platform-2027".into()));
        let keys = other_replica.platform_keys().await.expect("keys");
        let states: Vec<_> = keys
            .iter()
            .map(|key| (key.key_id.as_str(), key.state, key.retired_at))
            .collect();
        assert_eq!(
            states,
            [
                ("first", PlatformKeyState::Previous, Some(at)),
                ("second", PlatformKeyState::Active, None)
            ],
            "{backend}"
        );

        // Activating the active key again changes nothing and records nothing.
        let later = at + chrono::Duration::seconds(5);
        let same = repository
            .activate_platform_key(
                "second",
                later,
                audit("PLATFORM_SIGNING_KEY_ACTIVATED", "second", "ACTIVE"),
            )
            .await
            .expect("idempotent");
        assert_eq!(same.activated_at, Some(at), "{backend}");
        let recorded = repository.audit_events("second").await.expect("audit");
        let actions: Vec<_> = recorded.iter().map(|event| event.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "PLATFORM_SIGNING_KEY_ADDED",
                "PLATFORM_SIGNING_KEY_ACTIVATED"
            ],
            "{backend}"
        );

        // Back to the first key: the second becomes previous.
        repository
            .activate_platform_key(
                "first",
                later,
                audit("PLATFORM_SIGNING_KEY_ACTIVATED", "first", "ACTIVE"),
            )
            .await
            .expect("rolled back");
        let active: Vec<_> = repository
            .platform_keys()
            .await
            .expect("keys")
            .into_iter()
            .filter(|key| key.state == PlatformKeyState::Active)
            .map(|key| key.key_id)
            .collect();
        assert_eq!(active, ["first"], "{backend}: exactly one active key");

        let unknown = repository
            .activate_platform_key(
                "nobody",
                later,
                audit("PLATFORM_SIGNING_KEY_ACTIVATED", "nobody", "ACTIVE"),
            )
            .await;
        assert!(
            matches!(unknown, Err(StoreError::CertificateNotFound)),
            "{backend}: {unknown:?}"
        );
    }
}

fn revocation_of(certificate: &PartnerCertificate, reason: u8) -> Revocation {
    Revocation {
        partner_domain: certificate.partner_domain.clone(),
        identity: certificate.identity.clone(),
        certificate_id: certificate.certificate_id.clone(),
        kind: CertificateKind::of_owner(&certificate.owner),
        serial_number: "01".into(),
        reason: RevocationReason::try_from(reason).expect("reason"),
        comment: "test".into(),
        revoked_by: "tester".into(),
        revoked_at: now(),
    }
}

/// Every event after `since`, as (version, event).
async fn events_after(repository: &SqlCertificateRepository, since: i64) -> Vec<(i64, TrustEvent)> {
    repository
        .trust_events_after(since, 1000)
        .await
        .expect("events")
        .into_iter()
        .map(|recorded| (recorded.version, recorded.event))
        .collect()
}

#[tokio::test]
async fn the_outbox_holds_one_event_per_version_written_with_its_change() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let start = repository.trust_version().await.expect("version");
        let (root, _) = insert_acme_cas(&repository, "FTM").await;
        let chip = partner_record(
            chip_owner("ftm-1", "p1"),
            "FTM",
            &FIXTURE.pki.ftm_chip,
            &[&FIXTURE.pki.intermediate],
            false,
        );
        insert_partner(&repository, &chip).await;
        repository
            .set_trusted(&chip.certificate_id, true, None, "tester")
            .await
            .expect("trusted");
        // No change, no event.
        repository
            .set_trusted(&chip.certificate_id, true, None, "tester")
            .await
            .expect("unchanged");
        repository
            .set_partner_deactivated("p1", true, "tester")
            .await
            .expect("deactivated");
        let revoked_at = repository
            .revoke(
                &revocation_of(&chip, 1),
                audit("CERTIFICATE_REVOKED", &chip.certificate_id, "1"),
            )
            .await
            .expect("revoked");
        // Failed writes leave no event behind: a repeated revocation, a duplicate CA.
        assert!(matches!(
            repository
                .revoke(
                    &revocation_of(&chip, 4),
                    audit("CERTIFICATE_REVOKED", &chip.certificate_id, "4")
                )
                .await,
            Err(StoreError::Revoked)
        ));
        let mut duplicate = root.clone();
        duplicate.certificate_id = Uuid::new_v4().to_string();
        assert!(insert_cas(&repository, &[&duplicate]).await.is_err());

        let events = events_after(&repository, start).await;
        let versions: Vec<i64> = events.iter().map(|(version, _)| *version).collect();
        let expected: Vec<i64> = (start + 1..=start + 6).collect();
        assert_eq!(
            versions, expected,
            "{backend}: one event per version, nothing else"
        );
        assert_eq!(
            repository.trust_version().await.expect("version"),
            start + 6
        );
        assert_eq!(revoked_at, start + 6);
        assert!(
            matches!(&events[0].1, TrustEvent::CaCertificateAdded { partner_domain, .. } if partner_domain == "FTM")
        );
        assert!(matches!(
            &events[1].1,
            TrustEvent::CaCertificateAdded { .. }
        ));
        assert!(
            matches!(&events[2].1, TrustEvent::StoredCertificate(entry) if !entry.trusted && entry.partner_id == "p1")
        );
        assert!(
            matches!(&events[3].1, TrustEvent::StoredCertificate(entry) if entry.trusted && entry.identity == chip.identity)
        );
        assert!(
            matches!(&events[4].1, TrustEvent::Partner { partner_id, deactivated: true } if partner_id == "p1")
        );
        assert!(
            matches!(&events[5].1, TrustEvent::Revoked(revocation) if revocation.certificate_id == chip.certificate_id && revocation.reason.code() == 1)
        );
        let mut expected = revocation_of(&chip, 1);
        expected.revoked_at = repository_revoked_at(&events[5].1);
        assert_eq!(
            repository.revoked_copies("FTM").await.expect("read"),
            [(expected, chip.platform_signed_pem.clone())],
            "{backend}: the first revocation is the one kept, with the copy a CRL lists"
        );
        let data = repository.trust_data().await.expect("data");
        assert_eq!(data.version, start + 6);
        assert_eq!(data.revoked.len(), 1, "{backend}");
        assert_eq!(data.revoked[0].identity, chip.identity);

        // Paging through the outbox, and pruning it.
        let page = repository.trust_events_after(start, 2).await.expect("page");
        assert_eq!(page.len(), 2);
        assert_eq!(
            repository.oldest_trust_event().await.expect("oldest"),
            Some(start + 1)
        );
        let pruned = repository
            .prune_trust_events(Utc::now() + chrono::Duration::seconds(5))
            .await
            .expect("pruned");
        assert_eq!(pruned, 6, "{backend}");
        assert_eq!(repository.oldest_trust_event().await.expect("oldest"), None);
    }
}

fn repository_revoked_at(event: &TrustEvent) -> DateTime<Utc> {
    match event {
        TrustEvent::Revoked(revocation) => revocation.revoked_at,
        other => panic!("not a revocation: {other:?}"),
    }
}

#[tokio::test]
async fn expiring_certificates_are_listed_counted_and_announced_once() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let mut soon_ca = ca_record(&FIXTURE.pki.root, "FTM", None);
        soon_ca.not_after = now() + chrono::Duration::days(5);
        let mut later_ca = ca_record(&ec_root("later"), "DEVICE", None);
        later_ca.not_after = now() + chrono::Duration::days(100);
        insert_cas(&repository, &[&soon_ca, &later_ca])
            .await
            .expect("stored");
        let mut chip = partner_record(
            chip_owner("ftm-1", "p1"),
            "FTM",
            &FIXTURE.pki.ftm_chip,
            &[&FIXTURE.pki.intermediate],
            false,
        );
        chip.not_after = now() + chrono::Duration::days(20);
        insert_partner(&repository, &chip).await;

        let filter = ExpiringFilter {
            after: Utc::now(),
            until: Utc::now() + chrono::Duration::days(30),
            partner_domain: None,
            kind: None,
        };
        let (listed, total) = repository
            .expiring_certificates(&filter, None, 10)
            .await
            .expect("listed");
        assert_eq!(total, 2, "{backend}");
        let ids: Vec<&str> = listed.iter().map(|c| c.certificate_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                soon_ca.certificate_id.as_str(),
                chip.certificate_id.as_str()
            ]
        );
        assert_eq!(listed[1].kind, CertificateKind::Ftm);
        assert_eq!(listed[1].owner_id, "ftm-1");
        let cursor = (listed[0].not_after, listed[0].certificate_id.clone());
        let (after, _) = repository
            .expiring_certificates(&filter, Some(&cursor), 10)
            .await
            .expect("page 2");
        assert_eq!(after.len(), 1, "{backend}");
        let only_ftm = ExpiringFilter {
            kind: Some(CertificateKind::Ftm),
            ..filter.clone()
        };
        assert_eq!(
            repository
                .expiring_certificates(&only_ftm, None, 10)
                .await
                .expect("ftm")
                .1,
            1
        );
        let mut counts = repository
            .expiring_counts(Utc::now(), Utc::now() + chrono::Duration::days(30))
            .await
            .expect("counts");
        counts.sort_by(|left, right| left.1.as_str().cmp(right.1.as_str()));
        assert_eq!(
            counts,
            vec![
                ("FTM".to_string(), CertificateKind::Ca, 1),
                ("FTM".to_string(), CertificateKind::Ftm, 1),
            ],
            "{backend}"
        );

        let before = repository.trust_version().await.expect("version");
        let announced = certificate_store::testing::sweep_expiring(repository.as_ref())
            .await
            .expect("sweep");
        assert_eq!(
            announced, 3,
            "{backend}: CA at 30 and 7 days, chip at 30 days"
        );
        let again = certificate_store::testing::sweep_expiring(repository.as_ref())
            .await
            .expect("sweep");
        assert_eq!(again, 0, "{backend}: each crossing once");
        let notices: Vec<(String, u32)> = events_after(&repository, before)
            .await
            .into_iter()
            .map(|(_, event)| match event {
                TrustEvent::Expiring(notice) => (notice.certificate_id, notice.threshold_days),
                other => panic!("{backend}: only notices, got {other:?}"),
            })
            .collect();
        assert_eq!(
            notices,
            vec![
                (soon_ca.certificate_id.clone(), 30),
                (chip.certificate_id.clone(), 30),
                (soon_ca.certificate_id.clone(), 7),
            ],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_expiry_gauges_count_per_window_domain_and_kind() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let mut soon = ca_record(&FIXTURE.pki.root, "FTM", None);
        soon.not_after = now() + chrono::Duration::days(3);
        let mut month = ca_record(&ec_root("month"), "DEVICE", None);
        month.not_after = now() + chrono::Duration::days(20);
        insert_cas(&repository, &[&soon, &month])
            .await
            .expect("stored");
        let metrics = pmp_common::metrics::Metrics::new("certificate-store").expect("metrics");
        let (_stop_sender, stop) = tokio::sync::watch::channel(());
        let dynamic: Arc<dyn CertificateRepository> = repository.clone();
        certificate_store::testing::spawn_expiry_gauges(
            dynamic,
            &metrics,
            Duration::from_millis(50),
            stop,
        )
        .expect("gauges");
        let mut values = Vec::new();
        for _ in 0..100 {
            values = metrics
                .registry()
                .gather()
                .into_iter()
                .filter(|family| family.name().ends_with("certificates_expiring"))
                .flat_map(|family| family.get_metric().to_vec())
                .map(|metric| {
                    let labels: Vec<String> = metric
                        .get_label()
                        .iter()
                        .map(|label| format!("{}={}", label.name(), label.value()))
                        .collect();
                    (labels.join(","), metric.get_gauge().get_value())
                })
                .collect::<Vec<_>>();
            if values.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        values.sort_by(|left, right| left.0.cmp(&right.0));
        assert_eq!(
            values,
            vec![
                (
                    "kind=CA,partner_domain=DEVICE,within_days=30,service=certificate-store"
                        .to_string(),
                    1.0
                ),
                (
                    "kind=CA,partner_domain=FTM,within_days=30,service=certificate-store"
                        .to_string(),
                    1.0
                ),
                (
                    "kind=CA,partner_domain=FTM,within_days=7,service=certificate-store"
                        .to_string(),
                    1.0
                ),
            ],
            "{backend}"
        );
    }
}
