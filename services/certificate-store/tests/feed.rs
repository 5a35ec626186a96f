//! The trust change feed, revocation, CRLs, expiry and the relying services' mirror
//! (`pmp-trust-client`), against a real in-process store, on SQLite and PostgreSQL.

use std::process::Command;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use certificate_store::domain::TrustPolicy;
use certificate_store::storage::{SqlCertificateRepository, TrustFeedRepository};
use certificate_store::trust::{
    REASON_ISSUER_REVOKED, REASON_NOT_REGISTERED, REASON_NOT_TRUSTED, REASON_REVOKED,
};
use pmp_common::auth::testing::{TEST_AUDIENCE, TEST_ISSUER, TestTokens};
use pmp_common::db::testing::backends;
use pmp_common::testing::{assert_error, with_token};
use pmp_dev_certs::{CertificateSpec, Issued};
use pmp_e2e::inprocess::{InProcessPlatform, Options, StoreAdjust};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::trust_change::Change;
use pmp_proto::certstore::v1::*;
use pmp_trust_client::{MirrorError, MirrorSettings, TrustMirror};

mod support;

use support::{Pki, make_pki, manager, pem};

const ORG: &str = "ACME Chips Ltd";

struct Store {
    services: InProcessPlatform,
    tokens: TestTokens,
    admin: String,
    _keys: tempfile::TempDir,
}

impl Store {
    async fn start(backend: &'static str, ftm_policy: TrustPolicy) -> Store {
        let keys = tempfile::tempdir().expect("tempdir");
        let tokens = TestTokens::new();
        let key_file = keys.path().join("user-token-key.pem");
        std::fs::write(&key_file, &tokens.public_key_pem).expect("key file");
        let adjust: StoreAdjust = Box::new(move |settings| {
            settings.user_tokens.issuer = TEST_ISSUER.into();
            settings.user_tokens.audience = TEST_AUDIENCE.into();
            settings.user_tokens.public_key_files = vec![key_file.display().to_string()];
            settings.user_tokens.registry_address = String::new();
            settings.feed.heartbeat_interval_ms = 200;
            settings.feed.poll_interval_ms = 100;
        });
        let services = InProcessPlatform::start(Options {
            ftm_policy,
            store_adjust: Some(adjust),
            ..Options::on(backend)
        })
        .await
        .expect("platform");
        let admin = tokens.token("admin", &["PARTNER_ADMIN"]);
        Store {
            services,
            tokens,
            admin,
            _keys: keys,
        }
    }

    fn client(&self) -> CertificateStoreClient<Channel> {
        self.services.store()
    }

    fn token_of(&self, service: &str) -> String {
        self.services
            .service_keys
            .signer(service)
            .token_for("certificate-store")
            .expect("service token")
    }

    async fn upload_ca(&self, issued: &Issued, domain: &str) {
        let request = UploadCaCertificateRequest {
            certificate_data: pem(issued),
            partner_domain: domain.into(),
        };
        self.client()
            .upload_ca_certificate(with_token(request, &self.admin))
            .await
            .expect("CA upload");
    }

    async fn upload(
        &self,
        owner_type: OwnerType,
        owner: &str,
        partner: &str,
        issued: &Issued,
    ) -> Result<UploadPartnerCertificateResponse, tonic::Status> {
        let request = UploadPartnerCertificateRequest {
            owner_id: owner.into(),
            organization_name: ORG.into(),
            certificate_data: pem(issued),
            partner_domain: "FTM".into(),
            owner_type: owner_type as i32,
            partner_id: partner.into(),
        };
        self.client()
            .upload_partner_certificate(with_token(request, &self.token_of(manager(owner_type))))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn set_trusted(&self, owner_type: OwnerType, certificate_id: &str, trusted: bool) {
        let request = SetCertificateTrustedRequest {
            certificate_id: certificate_id.into(),
            trusted,
            partner_id: String::new(),
        };
        self.client()
            .set_certificate_trusted(with_token(request, &self.token_of(manager(owner_type))))
            .await
            .expect("set trusted");
    }

    async fn deactivate_partner(&self, partner: &str, deactivated: bool) {
        let request = SetPartnerDeactivatedRequest {
            partner_id: partner.into(),
            deactivated,
        };
        self.client()
            .set_partner_deactivated(with_token(request, &self.token_of("partner-registry")))
            .await
            .expect("deactivation");
    }

    async fn verify(&self, data: &str) -> VerifyCertificateTrustResponse {
        let request = VerifyCertificateTrustRequest {
            certificate_data: data.into(),
            partner_domain: "FTM".into(),
        };
        let token = self.tokens.token("relying", &["DEVICE_PROVIDER"]);
        self.client()
            .verify_certificate_trust(with_token(request, &token))
            .await
            .expect("verified")
            .into_inner()
    }

    async fn revoke(
        &self,
        certificate_id: &str,
        reason: RevocationReason,
    ) -> Result<RevokeCertificateResponse, tonic::Status> {
        let request = RevokeCertificateRequest {
            certificate_id: certificate_id.into(),
            reason: reason as i32,
            comment: "key found on a stolen device".into(),
        };
        self.client()
            .revoke_certificate(with_token(request, &self.admin))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn watch(&self, from_version: i64) -> tonic::Streaming<TrustChange> {
        let request = WatchTrustChangesRequest {
            partner_domains: vec!["ftm".into()],
            from_version,
        };
        self.client()
            .watch_trust_changes(with_token(request, &self.admin))
            .await
            .expect("feed")
            .into_inner()
    }

    fn mirror(&self, staleness: Duration) -> std::sync::Arc<TrustMirror> {
        let channel = Channel::from_shared(self.services.store_address.clone())
            .expect("address")
            .connect_lazy();
        let admin = self.admin.clone();
        let mut settings = MirrorSettings::for_domains(&["FTM"]);
        settings.staleness_bound = staleness;
        settings.reconnect_delay = Duration::from_millis(100);
        TrustMirror::start(channel, move || Ok(format!("Bearer {admin}")), settings)
    }
}

fn chip(issuer: &Issued, name: &str) -> Issued {
    CertificateSpec::ftm_chip(name, ORG)
        .issued_by(issuer)
        .expect("chip")
}

/// A store holding the ACME CAs and one stored, not yet trusted chip certificate of FTM
/// `ftm-1` of partner `p1`.
async fn store_with_chip(
    backend: &'static str,
) -> (Store, Pki, Issued, UploadPartnerCertificateResponse) {
    let store = Store::start(backend, TrustPolicy::Registered).await;
    let pki = make_pki("ACME");
    store.upload_ca(&pki.root, "FTM").await;
    store.upload_ca(&pki.intermediate, "FTM").await;
    let device = chip(&pki.intermediate, "chip-1");
    let stored = store
        .upload(OwnerType::Ftm, "ftm-1", "p1", &device)
        .await
        .expect("uploaded");
    (store, pki, device, stored)
}

/// The next message that is not a heartbeat.
async fn next_change(feed: &mut tonic::Streaming<TrustChange>) -> TrustChange {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("a message within 10 s")
            .expect("feed alive")
            .expect("feed open");
        if !matches!(message.change, Some(Change::Heartbeat(_))) {
            return message;
        }
    }
}

#[tokio::test]
async fn the_feed_sends_a_snapshot_then_every_change_and_resumes() {
    for backend in backends() {
        let store = Store::start(backend, TrustPolicy::Registered).await;
        let pki = make_pki("ACME");
        store.upload_ca(&pki.root, "FTM").await;
        store.upload_ca(&pki.intermediate, "FTM").await;
        let mut feed = store.watch(0).await;
        let first = next_change(&mut feed).await;
        let snapshot_version = first.version;
        let Some(Change::Snapshot(snapshot)) = first.change else {
            panic!("{backend}: a snapshot first, got {first:?}");
        };
        assert!(snapshot.last, "{backend}: a small snapshot is one part");
        assert_eq!(snapshot.ca_certificates.len(), 2, "{backend}");
        assert_eq!(snapshot.policies.len(), 1, "{backend}: only FTM asked for");
        assert_eq!(snapshot.policies[0].policy, "registered");

        let device = chip(&pki.intermediate, "chip-1");
        let stored = store
            .upload(OwnerType::Ftm, "ftm-1", "p1", &device)
            .await
            .expect("uploaded");
        store
            .set_trusted(OwnerType::Ftm, &stored.certificate_id, true)
            .await;
        store.deactivate_partner("p1", true).await;
        let mut versions = vec![snapshot_version];
        let uploaded = next_change(&mut feed).await;
        let Some(Change::StoredCertificate(facts)) = &uploaded.change else {
            panic!("{backend}: upload event, got {uploaded:?}");
        };
        assert!(!facts.trusted, "{backend}: stored untrusted first");
        assert_eq!(facts.partner_id, "p1");
        versions.push(uploaded.version);
        let trusted = next_change(&mut feed).await;
        assert!(
            matches!(&trusted.change, Some(Change::StoredCertificate(facts)) if facts.trusted),
            "{backend}: {trusted:?}"
        );
        versions.push(trusted.version);
        let deactivated = next_change(&mut feed).await;
        assert!(
            matches!(&deactivated.change, Some(Change::Partner(partner)) if partner.deactivated && partner.partner_id == "p1"),
            "{backend}: {deactivated:?}"
        );
        versions.push(deactivated.version);
        assert!(
            versions.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "{backend}: strictly increasing, one per change: {versions:?}"
        );

        // Heartbeats while nothing happens, at the last version.
        let heartbeat = tokio::time::timeout(Duration::from_secs(5), feed.message())
            .await
            .expect("heartbeat in time")
            .expect("alive")
            .expect("open");
        assert!(
            matches!(heartbeat.change, Some(Change::Heartbeat(_))),
            "{backend}"
        );
        assert_eq!(heartbeat.version, versions[3], "{backend}");

        // Resuming after the upload gives exactly the later changes, without a snapshot.
        let mut resumed = store.watch(versions[1]).await;
        let again = next_change(&mut resumed).await;
        assert_eq!(
            again.version, versions[2],
            "{backend}: nothing lost or repeated"
        );
        assert!(matches!(again.change, Some(Change::StoredCertificate(_))));
        assert_eq!(next_change(&mut resumed).await.version, versions[3]);

        // Once the events after a version are pruned, resuming from it starts with a snapshot.
        let connection = store
            .services
            .store_database
            .as_ref()
            .expect("real store")
            .connection
            .clone();
        let repository = SqlCertificateRepository::new(connection);
        let pruned = repository
            .prune_trust_events(chrono::Utc::now() + chrono::Duration::seconds(5))
            .await
            .expect("pruned");
        assert!(pruned >= 3, "{backend}: {pruned} pruned");
        let mut too_old = store.watch(versions[1]).await;
        let fresh = next_change(&mut too_old).await;
        assert!(
            matches!(fresh.change, Some(Change::Snapshot(_))),
            "{backend}: {fresh:?}"
        );
        assert_eq!(fresh.version, versions[3], "{backend}");
        // Caught up, with nothing kept: it resumes without a snapshot.
        let mut caught_up = store.watch(versions[3]).await;
        let quiet = tokio::time::timeout(Duration::from_secs(5), caught_up.message())
            .await
            .expect("a heartbeat")
            .expect("alive")
            .expect("open");
        assert!(
            matches!(quiet.change, Some(Change::Heartbeat(_))),
            "{backend}: {quiet:?}"
        );

        // A consumer ahead of the store (a restored database) starts again from a snapshot.
        let mut ahead = store.watch(versions[3] + 100).await;
        let restart = next_change(&mut ahead).await;
        assert!(
            matches!(restart.change, Some(Change::Snapshot(_))),
            "{backend}"
        );
        assert_eq!(restart.version, versions[3]);

        // Only platform services and admins may watch.
        let partner = store.tokens.token("someone", &["DEVICE_PROVIDER"]);
        let refused = store
            .client()
            .watch_trust_changes(with_token(WatchTrustChangesRequest::default(), &partner))
            .await
            .map(|_| ());
        assert_error(refused, Code::PermissionDenied, "KER-ATH-403");
        let unknown = store
            .client()
            .watch_trust_changes(with_token(
                WatchTrustChangesRequest {
                    partner_domains: vec!["NOPE".into()],
                    from_version: 0,
                },
                &store.admin,
            ))
            .await
            .map(|_| ());
        assert_error(unknown, Code::InvalidArgument, "KER-PCM-011");
    }
}

#[tokio::test]
async fn revocation_is_for_good_and_a_revoked_ca_untrusts_its_subtree() {
    for backend in backends() {
        let (store, pki, device, stored) = store_with_chip(backend).await;
        store
            .set_trusted(OwnerType::Ftm, &stored.certificate_id, true)
            .await;
        assert!(
            store.verify(&pem(&device)).await.trusted,
            "{backend}: approved"
        );

        let mut feed = store.watch(0).await;
        let _snapshot = next_change(&mut feed).await;
        let revoked = store
            .revoke(&stored.certificate_id, RevocationReason::KeyCompromise)
            .await
            .expect("revoked");
        let revocation = revoked.revocation.expect("revocation");
        assert_eq!(revocation.kind, CertificateKind::FtmCertificate as i32);
        assert_eq!(revocation.reason, RevocationReason::KeyCompromise as i32);
        let event = next_change(&mut feed).await;
        assert_eq!(event.version, revoked.version, "{backend}");
        assert!(matches!(event.change, Some(Change::CertificateRevoked(_))));

        let verdict = store.verify(&pem(&device)).await;
        assert!(!verdict.trusted, "{backend}");
        assert_eq!(verdict.reason, REASON_REVOKED);
        // Whatever happens later, it stays untrusted.
        store
            .set_trusted(OwnerType::Ftm, &stored.certificate_id, false)
            .await;
        store
            .set_trusted(OwnerType::Ftm, &stored.certificate_id, true)
            .await;
        store.deactivate_partner("p1", true).await;
        store.deactivate_partner("p1", false).await;
        assert_eq!(store.verify(&pem(&device)).await.reason, REASON_REVOKED);
        for (owner_type, owner, partner) in [
            (OwnerType::Ftm, "ftm-1", "p1"),
            (OwnerType::Ftm, "ftm-2", "p2"),
            (OwnerType::Partner, "p3", "p3"),
        ] {
            let again = store.upload(owner_type, owner, partner, &device).await;
            assert_error(again, Code::FailedPrecondition, "PMS_CERT_REVOKED");
        }
        assert_error(
            store
                .revoke(&stored.certificate_id, RevocationReason::Superseded)
                .await,
            Code::FailedPrecondition,
            "PMS_CERT_REVOKED",
        );
        assert_error(
            store
                .revoke("no-such-id", RevocationReason::Superseded)
                .await,
            Code::NotFound,
            "KER-PCM-012",
        );
        let hold = RevokeCertificateRequest {
            certificate_id: stored.certificate_id.clone(),
            reason: 6,
            comment: String::new(),
        };
        assert_error(
            store
                .client()
                .revoke_certificate(with_token(hold, &store.admin))
                .await,
            Code::InvalidArgument,
            "PMS_COR_001",
        );
        let partner_token = store.tokens.token("p1", &["FTM_PROVIDER"]);
        let by_partner = RevokeCertificateRequest {
            certificate_id: stored.certificate_id.clone(),
            reason: 1,
            comment: String::new(),
        };
        let refused = store
            .client()
            .revoke_certificate(with_token(by_partner, &partner_token))
            .await;
        assert_error(refused, Code::PermissionDenied, "KER-ATH-403");

        // A revoked intermediate CA untrusts what it issued, approved or not.
        let second = chip(&pki.intermediate, "chip-2");
        let approved = store
            .upload(OwnerType::Ftm, "ftm-3", "p4", &second)
            .await
            .expect("uploaded");
        store
            .set_trusted(OwnerType::Ftm, &approved.certificate_id, true)
            .await;
        assert!(store.verify(&pem(&second)).await.trusted, "{backend}");
        let intermediate_id = ca_id(&store, &pki.intermediate).await;
        store
            .revoke(&intermediate_id, RevocationReason::CaCompromise)
            .await
            .expect("CA revoked");
        let verdict = store.verify(&pem(&second)).await;
        assert!(!verdict.trusted, "{backend}");
        assert_eq!(verdict.reason, REASON_ISSUER_REVOKED, "{backend}");
        // Nothing new is accepted under it.
        let under_revoked = store
            .upload(
                OwnerType::Ftm,
                "ftm-4",
                "p4",
                &chip(&pki.intermediate, "chip-3"),
            )
            .await;
        let status = under_revoked.expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition, "{backend}");
        assert_eq!(
            pmp_common::error::reason_of(&status).as_deref(),
            Some("PMS_CERT_REVOKED"),
            "{backend}"
        );
        assert!(
            status.message().contains("on its chain is revoked"),
            "{}",
            status.message()
        );
    }
}

async fn ca_id(store: &Store, issued: &Issued) -> String {
    let listed = store
        .client()
        .list_ca_certificates(with_token(
            ListCaCertificatesRequest {
                partner_domain: "FTM".into(),
                page_size: 100,
                ..Default::default()
            },
            &store.admin,
        ))
        .await
        .expect("listed")
        .into_inner();
    let wanted = openssl::x509::X509::from_pem(pem(issued).as_bytes()).expect("parse");
    listed
        .ca_certificates
        .into_iter()
        .find(|ca| {
            openssl::x509::X509::from_pem(ca.certificate_pem.as_bytes())
                .is_ok_and(|stored| stored.to_der().ok() == wanted.to_der().ok())
        })
        .map(|ca| ca.certificate_id)
        .expect("the CA is listed")
}

#[tokio::test]
async fn the_crl_is_signed_by_the_platform_key_and_openssl_refuses_revoked_copies() {
    for backend in backends() {
        crl_checked_by_openssl(backend).await;
    }
}

async fn crl_checked_by_openssl(backend: &'static str) {
    let store = Store::start(backend, TrustPolicy::Registered).await;
    let pki = make_pki("ACME");
    store.upload_ca(&pki.root, "FTM").await;
    store.upload_ca(&pki.intermediate, "FTM").await;
    let revoked_chip = chip(&pki.intermediate, "chip-1");
    let kept_chip = chip(&pki.intermediate, "chip-2");
    let revoked = store
        .upload(OwnerType::Ftm, "ftm-1", "p1", &revoked_chip)
        .await
        .expect("uploaded");
    let kept = store
        .upload(OwnerType::Ftm, "ftm-2", "p1", &kept_chip)
        .await
        .expect("uploaded");
    store
        .revoke(&revoked.certificate_id, RevocationReason::KeyCompromise)
        .await
        .expect("revoked");

    let token = store.tokens.token("relying", &["DEVICE_PROVIDER"]);
    let crl = store
        .client()
        .get_crl(with_token(
            GetCrlRequest {
                partner_domain: "ftm".into(),
            },
            &token,
        ))
        .await
        .expect("CRL")
        .into_inner();
    assert_eq!(crl.revoked_count, 1, "{backend}");
    assert!(crl.next_update.expect("next").seconds > crl.this_update.expect("this").seconds);

    let keys = store
        .client()
        .list_platform_signing_keys(with_token(ListPlatformSigningKeysRequest {}, &token))
        .await
        .expect("keys")
        .into_inner();
    let directory = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| directory.path().join(name).display().to_string();
    let anchors: String = std::iter::once(keys.root_certificate_pem.clone())
        .chain(keys.keys.iter().map(|key| key.certificate_pem.clone()))
        .collect();
    std::fs::write(path("anchors.pem"), anchors).expect("anchors");
    std::fs::write(path("crl.der"), &crl.crl).expect("crl");
    std::fs::write(
        path("revoked.pem"),
        &revoked.platform_signed_certificate_pem,
    )
    .expect("copy");
    std::fs::write(path("kept.pem"), &kept.platform_signed_certificate_pem).expect("copy");
    let openssl = |arguments: &[&str]| {
        let output = Command::new("openssl")
            .args(arguments)
            .output()
            .expect("openssl runs");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &path("crl.der"),
        "-CAfile",
        &path("anchors.pem"),
        "-noout",
        "-verify",
        "-text",
    ]);
    assert!(ok && text.contains("verify OK"), "{backend}: {text}");
    assert!(text.contains("Key Compromise"), "{text}");
    let (_, _) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &path("crl.der"),
        "-out",
        &path("crl.pem"),
    ]);
    let check = |copy: &str| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &path("anchors.pem"),
            "-CRLfile",
            &path("crl.pem"),
            &path(copy),
        ])
    };
    let (ok, text) = check("revoked.pem");
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = check("kept.pem");
    assert!(ok, "a copy that is not revoked verifies: {text}");

    let unknown = store
        .client()
        .get_crl(with_token(
            GetCrlRequest {
                partner_domain: "NOPE".into(),
            },
            &token,
        ))
        .await;
    assert_error(unknown, Code::InvalidArgument, "KER-PCM-011");
}

#[tokio::test]
async fn expiring_certificates_are_listed_soonest_first_and_paged() {
    for backend in backends() {
        let (store, _, _, stored) = store_with_chip(backend).await;
        let list = |days: i64, kind: CertificateKind, token: String| {
            let request = ListExpiringCertificatesRequest {
                within: Some(prost_types::Duration {
                    seconds: days * 86_400,
                    nanos: 0,
                }),
                partner_domain: "FTM".into(),
                kind: kind as i32,
                page_size: 1,
                page_token: token,
            };
            let mut client = store.client();
            let admin = store.admin.clone();
            async move {
                client
                    .list_expiring_certificates(with_token(request, &admin))
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let none = list(30, CertificateKind::Unspecified, String::new())
            .await
            .expect("listed");
        assert_eq!(
            none.total_size, 0,
            "{backend}: nothing expires within 30 days"
        );
        // The chip expires within two years, the intermediate within five, the root ten.
        let first = list(3000, CertificateKind::Unspecified, String::new())
            .await
            .expect("listed");
        assert_eq!(first.total_size, 2, "{backend}: root not within 3000 days");
        assert_eq!(
            first.certificates[0].certificate_id, stored.certificate_id,
            "soonest first"
        );
        let second = list(
            3000,
            CertificateKind::Unspecified,
            first.next_page_token.clone(),
        )
        .await
        .expect("page 2");
        assert_eq!(second.certificates.len(), 1);
        assert_eq!(
            second.certificates[0].kind,
            CertificateKind::CaCertificate as i32
        );
        assert!(second.next_page_token.is_empty(), "{backend}: last page");
        let only_ca = list(3000, CertificateKind::CaCertificate, String::new())
            .await
            .expect("listed");
        assert_eq!(only_ca.total_size, 1);
        assert_error(
            list(3000, CertificateKind::CaCertificate, first.next_page_token).await,
            Code::InvalidArgument,
            "PMS_PRT_362",
        );
        assert_error(
            list(0, CertificateKind::Unspecified, String::new()).await,
            Code::InvalidArgument,
            "PMS_COR_001",
        );
    }
}

#[tokio::test]
async fn the_mirror_answers_as_the_store_does_and_follows_its_changes() {
    let runs = backends().into_iter().flat_map(|backend| {
        [
            (backend, TrustPolicy::Registered),
            (backend, TrustPolicy::Chain),
        ]
    });
    for (backend, policy) in runs {
        let store = Store::start(backend, policy).await;
        let corpus = Corpus::build(&store).await;
        let mirror = store.mirror(Duration::from_secs(2));
        mirror
            .ready(Duration::from_secs(10))
            .await
            .expect("synchronised");
        corpus
            .assert_agreement(&store, &mirror, backend, policy)
            .await;

        // Changes on the store reach the mirror within a second.
        let pending = &corpus.cases[corpus.pending].1;
        store
            .set_trusted(OwnerType::Ftm, &corpus.pending_id, true)
            .await;
        assert!(store.verify(pending).await.trusted, "{backend}: approved");
        eventually_within_a_second(&mirror, pending, true, "approval").await;
        store.deactivate_partner("p-approved", true).await;
        eventually_within_a_second(&mirror, pending, false, "deactivation").await;
        store.deactivate_partner("p-approved", false).await;
        eventually_within_a_second(&mirror, pending, true, "re-activation").await;
        let revoked = store
            .revoke(&corpus.pending_id, RevocationReason::KeyCompromise)
            .await
            .expect("revoked");
        assert!(
            mirror
                .wait_for_version(revoked.version, Duration::from_secs(1))
                .await,
            "{backend}: revocation within a second"
        );
        let verdict = mirror.verify(pending, "FTM").expect("answered");
        assert_eq!(verdict.reason, REASON_REVOKED);
        corpus
            .assert_agreement(&store, &mirror, backend, policy)
            .await;

        // A mirror whose feed is broken refuses to answer once the bound has passed.
        let mut services = store.services;
        services
            .store
            .as_mut()
            .expect("real store")
            .shut_down()
            .await
            .expect("stopped");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        match mirror.verify(pending, "FTM") {
            Err(MirrorError::Stale(silence)) => assert!(silence >= Duration::from_secs(2)),
            other => panic!("{backend}: a stale mirror must refuse, got {other:?}"),
        }
    }
}

async fn eventually_within_a_second(mirror: &TrustMirror, data: &str, trusted: bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let verdict = mirror.verify(data, "FTM").expect("answered");
        if verdict.trusted == trusted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within a second: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Chains of every kind the trust decision distinguishes, in a store that holds them.
struct Corpus {
    /// (what, PEM leaf plus helpers)
    cases: Vec<(&'static str, String)>,
    /// Index of the case whose chip certificate is stored but not yet approved.
    pending: usize,
    pending_id: String,
}

impl Corpus {
    async fn build(store: &Store) -> Corpus {
        let pki = make_pki("ACME");
        let foreign = make_pki("Elsewhere");
        store.upload_ca(&pki.root, "FTM").await;
        store.upload_ca(&pki.intermediate, "FTM").await;
        let mut cases = Vec::new();
        let mut add = |what: &'static str, chain: &[&Issued]| {
            cases.push((
                what,
                chain.iter().map(|issued| pem(issued)).collect::<String>(),
            ));
            cases.len() - 1
        };
        let approved = chip(&pki.intermediate, "approved");
        let rejected = chip(&pki.intermediate, "rejected");
        let pending = chip(&pki.intermediate, "pending");
        let deactivated = chip(&pki.intermediate, "deactivated-owner");
        let unregistered = chip(&pki.intermediate, "never-seen");
        let approved_ca = CertificateSpec::ca("approved chip CA")
            .organisation(ORG)
            .valid_for_days(700)
            .path_len(0)
            .issued_by(&pki.intermediate)
            .expect("chip CA");
        let device = CertificateSpec::leaf("device key")
            .organisation(ORG)
            .valid_for_days(30)
            .issued_by(&approved_ca)
            .expect("device");
        let too_deep = CertificateSpec::ca("below pathLen 0")
            .organisation(ORG)
            .issued_by(&approved_ca)
            .expect("too deep");
        let below_too_deep = CertificateSpec::leaf("under a pathLen violation")
            .organisation(ORG)
            .issued_by(&too_deep)
            .expect("leaf");
        let not_a_ca = CertificateSpec::leaf("not a CA")
            .organisation(ORG)
            .issued_by(&pki.intermediate)
            .expect("leaf");
        let under_not_a_ca = CertificateSpec::leaf("issued by a leaf")
            .organisation(ORG)
            .issued_by(&not_a_ca)
            .expect("leaf");
        let expired = CertificateSpec::ftm_chip("expired", ORG)
            .valid_from_days(-400)
            .valid_for_days(10)
            .issued_by(&pki.intermediate)
            .expect("expired");
        let foreign_chip = chip(&foreign.intermediate, "foreign");
        let expired_ca = CertificateSpec::ca("expired sub-CA")
            .organisation(ORG)
            .valid_from_days(-400)
            .valid_for_days(10)
            .issued_by(&pki.intermediate)
            .expect("expired CA");
        let under_expired = chip(&expired_ca, "under an expired CA");
        for (issued, owner, partner, trusted) in [
            (&approved, "ftm-a", "p-approved", true),
            (&rejected, "ftm-r", "p-approved", false),
            (&pending, "ftm-p", "p-approved", false),
            (&deactivated, "ftm-d", "p-gone", true),
            (&approved_ca, "ftm-ca", "p-approved", true),
        ] {
            let stored = store
                .upload(OwnerType::Ftm, owner, partner, issued)
                .await
                .expect("uploaded");
            if trusted {
                store
                    .set_trusted(OwnerType::Ftm, &stored.certificate_id, true)
                    .await;
            }
        }
        store.deactivate_partner("p-gone", true).await;
        add("approved chip", &[&approved]);
        add(
            "approved chip with its issuer",
            &[&approved, &pki.intermediate],
        );
        add("rejected chip", &[&rejected]);
        let pending_index = add("pending chip", &[&pending]);
        add("chip of a deactivated partner", &[&deactivated]);
        add("never-seen chip (registered policy)", &[&unregistered]);
        add(
            "device key under an approved chip CA",
            &[&device, &approved_ca],
        );
        add(
            "pathLen violation",
            &[&below_too_deep, &too_deep, &approved_ca],
        );
        add("issuer without CA:TRUE", &[&under_not_a_ca, &not_a_ca]);
        add("expired leaf", &[&expired]);
        add("expired intermediate link", &[&under_expired, &expired_ca]);
        add(
            "foreign root",
            &[&foreign_chip, &foreign.intermediate, &foreign.root],
        );
        let pending_id = store
            .upload(OwnerType::Ftm, "ftm-p", "p-approved", &pending)
            .await
            .expect("idempotent")
            .certificate_id;
        Corpus {
            cases,
            pending: pending_index,
            pending_id,
        }
    }

    async fn assert_agreement(
        &self,
        store: &Store,
        mirror: &TrustMirror,
        backend: &str,
        policy: TrustPolicy,
    ) {
        let mut reasons = std::collections::HashSet::new();
        for (what, data) in &self.cases {
            let expected = store.verify(data).await;
            let local = mirror.verify(data, "FTM").expect("the mirror answers");
            assert_eq!(
                (local.trusted, local.reason.as_str()),
                (expected.trusted, expected.reason.as_str()),
                "{backend} {policy:?}: {what}"
            );
            let chain: Vec<String> = local.chain_pem.iter().map(|pem| pem.to_string()).collect();
            assert_eq!(
                chain, expected.chain_pem,
                "{backend} {policy:?}: {what}: same path"
            );
            reasons.insert(expected.reason.clone());
        }
        let expected_reasons = match policy {
            TrustPolicy::Registered => vec![REASON_NOT_TRUSTED, REASON_NOT_REGISTERED, ""],
            // Under MOSIP's rule the never-seen chip is trusted by its chain alone.
            TrustPolicy::Chain => vec![REASON_NOT_TRUSTED, ""],
        };
        for reason in expected_reasons {
            assert!(
                reasons.contains(reason),
                "{backend} {policy:?}: the corpus covers {reason:?}: {reasons:?}"
            );
        }
        assert!(
            reasons.len() >= 5,
            "{backend}: distinct outcomes {reasons:?}"
        );
    }
}

#[tokio::test]
async fn a_consumer_that_never_reads_blocks_neither_the_store_nor_other_consumers() {
    for backend in backends() {
        let store = Store::start(backend, TrustPolicy::Registered).await;
        let mut stalled = store.watch(0).await;
        let snapshot = next_change(&mut stalled).await;
        // From here on `stalled` is never read: its buffer (64 messages) fills up.
        let changes = 200;
        let writes = async {
            for index in 0..changes {
                store.deactivate_partner("p1", index % 2 == 0).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), writes)
            .await
            .expect("writes are never held up by a consumer");
        let mut reader = store.watch(snapshot.version).await;
        let mut last = snapshot.version;
        for _ in 0..changes {
            let message = next_change(&mut reader).await;
            assert_eq!(message.version, last + 1, "{backend}");
            last = message.version;
        }
        // The stalled stream still delivers everything, in order, once it reads.
        let mut stalled_last = snapshot.version;
        for _ in 0..changes {
            let message = next_change(&mut stalled).await;
            assert_eq!(message.version, stalled_last + 1, "{backend}");
            stalled_last = message.version;
        }
    }
}
