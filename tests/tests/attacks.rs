//! The attacks that defeated the certificate store's trust decisions before the trust model
//! (see `shared/design/api.md`, "Trust model"), each tried against a real in-process
//! platform — registry, certificate store and FTM management, each with its own database —
//! on SQLite and on PostgreSQL, and each shown to fail now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tonic::Code;

use certificate_store::domain::TrustPolicy;
use certificate_store::trust::{
    REASON_ISSUER_NOT_TRUSTED, REASON_NOT_REGISTERED, REASON_NOT_TRUSTED,
};
use partner_registry::domain::{AuditEvent, Partner, PartnerFilter, PartnerStatus};
use partner_registry::error::RegistryError;
use partner_registry::storage::{ImportedPartner, PartnerPage, PartnerRepository, UserRecord};
use pmp_common::db::testing::backends;
use pmp_common::lease::{LeaseStore, StaleLease};
use pmp_common::testing::{assert_error, eventually};
use pmp_common::time::ManualClock;
use pmp_dev_certs::attacks::{malleated_copy, pem_of};
use pmp_dev_certs::{CertificateSpec, Issued, KeySpec};
use pmp_e2e::inprocess::{InProcessPlatform, Options};
use pmp_proto::partner::v1 as partner;

/// A PKI signing with ECDSA everywhere (so every signature is malleable), with room below
/// the intermediate for chip certificates that issue device certificates.
struct Pki {
    root: Issued,
    intermediate: Issued,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let root = CertificateSpec::ca(&format!("{name} Root"))
            .organisation(name)
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        let intermediate = CertificateSpec::ca(&format!("{name} Issuing CA"))
            .organisation(name)
            .key(KeySpec::EcP256)
            .valid_for_days(1800)
            .issued_by(&root)
            .expect("intermediate");
        Pki { root, intermediate }
    }

    fn bundle(&self) -> String {
        format!("{}{}", pem(&self.root), pem(&self.intermediate))
    }

    /// An end-entity certificate of `organisation` (a partner or chip certificate).
    fn leaf(&self, name: &str, organisation: &str) -> Issued {
        CertificateSpec::leaf(name)
            .organisation(organisation)
            .key(KeySpec::EcP256)
            .issued_by(&self.intermediate)
            .expect("leaf")
    }

    /// A chip certificate that may issue device certificates (CA, path length 0).
    fn issuing_chip(&self, name: &str, organisation: &str) -> Issued {
        CertificateSpec::ca(name)
            .organisation(organisation)
            .key(KeySpec::EcP256)
            .path_len(0)
            .valid_for_days(700)
            .issued_by(&self.intermediate)
            .expect("chip CA")
    }
}

fn pem(issued: &Issued) -> String {
    issued.pem().expect("pem")
}

fn device(chip: &Issued, name: &str) -> Issued {
    CertificateSpec::leaf(name)
        .key(KeySpec::EcP256)
        .issued_by(chip)
        .expect("device")
}

/// An ACTIVE FTM provider `partner_id` of `organisation` with partner certificate
/// `certificate`; returns its token.
async fn provider(
    platform: &InProcessPlatform,
    partner_id: &str,
    organisation: &str,
    certificate: &Issued,
) -> String {
    let token = platform
        .register(partner_id, "FTM_Provider", organisation)
        .await;
    let accepted = platform
        .upload_partner_certificate(&token, partner_id, &pem(certificate))
        .await
        .expect("partner certificate");
    assert_eq!(
        accepted.partner.expect("partner").status(),
        partner::PartnerStatus::Active
    );
    token
}

/// An FTM of `partner_id` with chip certificate `chip` uploaded (PENDING_APPROVAL).
async fn ftm_with_chip(
    platform: &InProcessPlatform,
    token: &str,
    partner_id: &str,
    model: &str,
    chip: &Issued,
) -> String {
    let ftm = platform
        .create_ftm(token, partner_id, model)
        .await
        .expect("FTM");
    platform
        .upload_chip(token, &ftm.ftm_id, &pem(chip))
        .await
        .expect("chip certificate");
    ftm.ftm_id
}

async fn start(backend: &'static str, policy: TrustPolicy) -> (InProcessPlatform, String, Pki) {
    let platform = InProcessPlatform::start(Options {
        ftm_policy: policy,
        ..Options::on(backend)
    })
    .await
    .expect("platform");
    let admin = platform.admin().await;
    let pki = Pki::new("Trust Authority");
    platform
        .upload_ca(&admin, &pki.bundle(), "FTM")
        .await
        .expect("CAs");
    (platform, admin, pki)
}

async fn assert_untrusted(platform: &InProcessPlatform, data: &str, reason: &str, context: &str) {
    let verdict = platform.verify(data, "FTM").await.expect("answered");
    assert!(!verdict.trusted, "{context}: trusted");
    assert_eq!(verdict.reason, reason, "{context}");
}

/// Deny-list bypass by signature malleability: a copy of a rejected chip certificate, or of
/// a deactivated partner's certificate, with the ECDSA `s` replaced by `n − s`, is the same
/// certificate and stays untrusted — under MOSIP's `chain` policy too, where a certificate
/// the store has never seen is judged by its chain alone.
#[tokio::test]
async fn malleated_copies_of_untrusted_certificates_stay_untrusted() {
    for backend in backends() {
        for policy in [TrustPolicy::Chain, TrustPolicy::Registered] {
            let (platform, admin, pki) = start(backend, policy).await;
            let context = format!("{backend}/{}", policy.as_str());
            let partner_certificate = pki.leaf("acme partner", "ACME");
            let token = provider(&platform, "acme", "ACME", &partner_certificate).await;
            let chip = pki.leaf("acme chip", "ACME");
            let ftm_id = ftm_with_chip(&platform, &token, "acme", "Chip 1", &chip).await;
            platform.reject(&admin, &ftm_id).await.expect("rejected");

            let copy =
                malleated_copy(&chip.certificate, &pki.intermediate.certificate).expect("copy");
            assert_ne!(copy.to_der().expect("der"), chip.der().expect("der"));
            let copy_pem = pem_of(&copy.to_der().expect("der"));
            assert_untrusted(&platform, &pem(&chip), REASON_NOT_TRUSTED, &context).await;
            assert_untrusted(&platform, &copy_pem, REASON_NOT_TRUSTED, &context).await;
            // Also with the issuer sent along.
            let with_issuer = format!("{copy_pem}{}", pem(&pki.intermediate));
            assert_untrusted(&platform, &with_issuer, REASON_NOT_TRUSTED, &context).await;

            assert!(
                platform.trusted(&pem(&partner_certificate)).await,
                "{context}"
            );
            platform
                .set_partner_active(&admin, "acme", false)
                .await
                .expect("deactivated");
            let partner_copy = malleated_copy(
                &partner_certificate.certificate,
                &pki.intermediate.certificate,
            )
            .expect("copy");
            let partner_copy = pem_of(&partner_copy.to_der().expect("der"));
            assert_untrusted(
                &platform,
                &pem(&partner_certificate),
                REASON_NOT_TRUSTED,
                &context,
            )
            .await;
            assert_untrusted(&platform, &partner_copy, REASON_NOT_TRUSTED, &context).await;
        }
    }
}

/// Cross-tenant poisoning: a second partner registered under the victim's organisation name
/// cannot hold the victim's certificate — neither as its own partner certificate nor as a
/// chip certificate — and the victim's trust does not change. The victim cannot use its
/// partner certificate as a chip certificate either, and a re-encoded copy of a CA is the
/// same CA.
#[tokio::test]
async fn a_certificate_has_one_owner_and_nobody_can_poison_it() {
    for backend in backends() {
        let (platform, admin, pki) = start(backend, TrustPolicy::Registered).await;
        let victim_certificate = pki.leaf("victim", "Victim Corp");
        let victim = provider(&platform, "victim", "Victim Corp", &victim_certificate).await;
        let victim_chip = pki.leaf("victim chip", "Victim Corp");
        let victim_ftm = ftm_with_chip(&platform, &victim, "victim", "V1", &victim_chip).await;
        platform
            .approve(&admin, &victim_ftm)
            .await
            .expect("approved");
        assert!(
            platform.trusted(&pem(&victim_certificate)).await,
            "{backend}"
        );
        assert!(platform.trusted(&pem(&victim_chip)).await, "{backend}");

        let mallory_certificate = pki.leaf("mallory", "Victim Corp");
        let mallory = provider(&platform, "mallory", "Victim Corp", &mallory_certificate).await;
        for (index, stolen) in [&victim_certificate, &victim_chip].into_iter().enumerate() {
            assert_error(
                platform
                    .upload_partner_certificate(&mallory, "mallory", &pem(stolen))
                    .await,
                Code::AlreadyExists,
                "KER-PCM-003",
            );
            let ftm = platform
                .create_ftm(&mallory, "mallory", &format!("M{index}"))
                .await
                .expect("FTM");
            assert_error(
                platform
                    .upload_chip(&mallory, &ftm.ftm_id, &pem(stolen))
                    .await,
                Code::AlreadyExists,
                "KER-PCM-003",
            );
            // Nor a re-signed copy of it.
            let copy =
                malleated_copy(&stolen.certificate, &pki.intermediate.certificate).expect("copy");
            assert_error(
                platform
                    .upload_chip(&mallory, &ftm.ftm_id, &pem_of(&copy.to_der().expect("der")))
                    .await,
                Code::AlreadyExists,
                "KER-PCM-003",
            );
            // Mallory gets deactivated: the victim is unaffected.
        }
        platform
            .set_partner_active(&admin, "mallory", false)
            .await
            .expect("deactivated");
        assert!(
            platform.trusted(&pem(&victim_certificate)).await,
            "{backend}"
        );
        assert!(platform.trusted(&pem(&victim_chip)).await, "{backend}");

        // The victim's own partner certificate is not a chip certificate of its FTMs.
        let other = platform
            .create_ftm(&victim, "victim", "V2")
            .await
            .expect("FTM");
        assert_error(
            platform
                .upload_chip(&victim, &other.ftm_id, &pem(&victim_certificate))
                .await,
            Code::AlreadyExists,
            "KER-PCM-003",
        );

        // A CA is one CA whatever its signature bytes.
        let intermediate_copy =
            malleated_copy(&pki.intermediate.certificate, &pki.root.certificate).expect("copy");
        let upload = platform
            .upload_ca(
                &admin,
                &pem_of(&intermediate_copy.to_der().expect("der")),
                "FTM",
            )
            .await;
        assert_error(upload, Code::AlreadyExists, "KER-PCM-003");
    }
}

/// Replaced and deactivated certificates: a new partner certificate untrusts the one it
/// replaces; deactivating the partner untrusts its certificate and all its FTMs' chips at
/// once; re-activating restores exactly what was trusted before; an FTM of a deactivated
/// partner cannot be approved.
#[tokio::test]
async fn replacement_and_deactivation_untrust_exactly_what_they_must() {
    for backend in backends() {
        let (platform, admin, pki) = start(backend, TrustPolicy::Registered).await;
        let first = pki.leaf("acme 1", "ACME");
        let token = provider(&platform, "acme", "ACME", &first).await;
        let approved_chip = pki.leaf("approved chip", "ACME");
        let approved = ftm_with_chip(&platform, &token, "acme", "A", &approved_chip).await;
        platform.approve(&admin, &approved).await.expect("approved");
        let rejected_chip = pki.leaf("rejected chip", "ACME");
        let rejected = ftm_with_chip(&platform, &token, "acme", "R", &rejected_chip).await;
        platform.reject(&admin, &rejected).await.expect("rejected");
        let pending_chip = pki.leaf("pending chip", "ACME");
        let pending = ftm_with_chip(&platform, &token, "acme", "P", &pending_chip).await;

        let second = pki.leaf("acme 2", "ACME");
        let replaced = platform
            .upload_partner_certificate(&token, "acme", &pem(&second))
            .await
            .expect("replacement");
        assert_eq!(
            replaced.partner.expect("partner").certificate_id,
            replaced.certificate_id
        );
        let all = [
            &first,
            &second,
            &approved_chip,
            &rejected_chip,
            &pending_chip,
        ];
        assert_eq!(
            trust(&platform, &all).await,
            [false, true, true, false, false],
            "{backend}: after the replacement"
        );

        platform
            .set_partner_active(&admin, "acme", false)
            .await
            .expect("deactivated");
        assert_eq!(
            trust(&platform, &all).await,
            [false, false, false, false, false],
            "{backend}: deactivated"
        );
        assert_error(
            platform.approve(&admin, &pending).await,
            Code::FailedPrecondition,
            "PMP_AUT_030",
        );

        platform
            .set_partner_active(&admin, "acme", true)
            .await
            .expect("re-activated");
        assert_eq!(
            trust(&platform, &all).await,
            [false, true, true, false, false],
            "{backend}: re-activation restores exactly the previous set"
        );
        platform.approve(&admin, &pending).await.expect("approved");
        assert!(platform.trusted(&pem(&pending_chip)).await, "{backend}");
    }
}

/// Whether each certificate verifies as trusted in domain FTM.
async fn trust(platform: &InProcessPlatform, certificates: &[&Issued]) -> Vec<bool> {
    let mut answers = Vec::new();
    for certificate in certificates {
        answers.push(platform.trusted(&pem(certificate)).await);
    }
    answers
}

/// What a registry repository double does at `attach_certificate`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// Fail before writing (the process died before its commit).
    BeforeCommit,
    /// Write, then fail (the process died right after its commit).
    AfterCommit,
}

/// The registry's repository, failing the first `attach_certificate` as `crash` says.
struct CrashingRepository {
    inner: Arc<dyn PartnerRepository>,
    crash: Crash,
    remaining: AtomicU32,
}

#[async_trait::async_trait]
impl PartnerRepository for CrashingRepository {
    async fn canonical_partner_type(
        &self,
        requested: &str,
    ) -> Result<Option<String>, RegistryError> {
        self.inner.canonical_partner_type(requested).await
    }
    async fn create_partner(
        &self,
        partner: &Partner,
        password_hash: &str,
        roles: &[String],
        audit: AuditEvent,
    ) -> Result<(), RegistryError> {
        self.inner
            .create_partner(partner, password_hash, roles, audit)
            .await
    }
    async fn import(&self, partners: &[ImportedPartner]) -> Result<(), RegistryError> {
        self.inner.import(partners).await
    }
    async fn find_partner(&self, partner_id: &str) -> Result<Option<Partner>, RegistryError> {
        self.inner.find_partner(partner_id).await
    }
    async fn list_partners(
        &self,
        filter: &PartnerFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<PartnerPage, RegistryError> {
        self.inner.list_partners(filter, after, limit).await
    }
    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, RegistryError> {
        self.inner.find_user(username).await
    }
    async fn ensure_user(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError> {
        self.inner.ensure_user(username, password_hash, roles).await
    }
    async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError> {
        self.inner
            .set_user_password(username, password_hash, roles)
            .await
    }
    async fn attach_certificate(
        &self,
        partner_id: &str,
        certificate_id: &str,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError> {
        let crash = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if crash && self.crash == Crash::BeforeCommit {
            return Err(RegistryError::Internal("crashed before the commit".into()));
        }
        let written = self
            .inner
            .attach_certificate(partner_id, certificate_id, audit, token)
            .await?;
        if crash {
            return Err(RegistryError::Internal("crashed after the commit".into()));
        }
        Ok(written)
    }
    async fn set_status(
        &self,
        partner_id: &str,
        status: PartnerStatus,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError> {
        self.inner
            .set_status(partner_id, status, audit, token)
            .await
    }
    async fn acquire_lease(
        &self,
        partner_id: &str,
        token: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RegistryError> {
        self.inner
            .acquire_lease(partner_id, token, expires_at, now)
            .await
    }
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, RegistryError> {
        self.inner.audit_events(entity_id).await
    }
}

#[async_trait::async_trait]
impl LeaseStore for CrashingRepository {
    type Error = RegistryError;

    async fn release_lease(&self, partner_id: &str, token: &str) -> Result<bool, RegistryError> {
        self.inner.release_lease(partner_id, token).await
    }
    async fn abandon_lease(
        &self,
        partner_id: &str,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RegistryError> {
        self.inner.abandon_lease(partner_id, token, now).await
    }
    async fn stale_leases(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<StaleLease>, RegistryError> {
        self.inner.stale_leases(now, limit).await
    }
    async fn take_over_lease(
        &self,
        marker: &StaleLease,
        token: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RegistryError> {
        self.inner
            .take_over_lease(marker, token, expires_at, now)
            .await
    }
}

async fn crashing_platform(backend: &'static str, crash: Crash) -> (InProcessPlatform, Pki) {
    let platform = InProcessPlatform::start(Options {
        registry_wrapper: Some(Box::new(move |inner| {
            Arc::new(CrashingRepository {
                inner,
                crash,
                remaining: AtomicU32::new(1),
            })
        })),
        reconcile_interval_seconds: 1,
        ..Options::on(backend)
    })
    .await
    .expect("platform");
    let admin = platform.admin().await;
    let pki = Pki::new("Trust Authority");
    platform
        .upload_ca(&admin, &pki.bundle(), "FTM")
        .await
        .expect("CAs");
    (platform, pki)
}

async fn eventually_trusted(platform: &InProcessPlatform, certificate: &Issued) -> bool {
    let certificate = pem(certificate);
    eventually(Duration::from_secs(10), || platform.trusted(&certificate)).await
}

/// A failure between the store's upload and the registry's commit leaves an untrusted
/// orphan, never a trusted one, and the retry completes the step with the same
/// certificate; a failure right after the commit leaves the recorded certificate untrusted
/// until the registry's reconciler marks it.
#[tokio::test]
async fn an_interrupted_partner_upload_leaves_nothing_trusted_and_is_completed() {
    for backend in backends() {
        let (platform, pki) = crashing_platform(backend, Crash::BeforeCommit).await;
        let certificate = pki.leaf("acme", "ACME");
        let token = platform.register("acme", "FTM_Provider", "ACME").await;
        let failed = platform
            .upload_partner_certificate(&token, "acme", &pem(&certificate))
            .await;
        assert_eq!(
            failed.expect_err("crashed").code(),
            Code::Internal,
            "{backend}"
        );
        assert_untrusted(&platform, &pem(&certificate), REASON_NOT_TRUSTED, backend).await;
        let partner = platform.partner(&token, "acme").await.expect("partner");
        assert_eq!(
            partner.status(),
            partner::PartnerStatus::InProgress,
            "{backend}"
        );
        // Reconciliation, even past every lease, must not trust an unrecorded certificate.
        let clock = Arc::new(ManualClock::starting_now());
        clock.advance(Duration::from_secs(3600));
        platform
            .registry_reconciler(clock)
            .expect("reconciler")
            .run_once()
            .await
            .expect("reconciliation pass");
        assert_untrusted(&platform, &pem(&certificate), REASON_NOT_TRUSTED, backend).await;

        let retried = platform
            .upload_partner_certificate(&token, "acme", &pem(&certificate))
            .await
            .expect("retry completes the step");
        assert_eq!(
            retried.partner.expect("partner").status(),
            partner::PartnerStatus::Active
        );
        assert!(platform.trusted(&pem(&certificate)).await, "{backend}");

        let (platform, pki) = crashing_platform(backend, Crash::AfterCommit).await;
        let certificate = pki.leaf("acme", "ACME");
        let token = platform.register("acme", "FTM_Provider", "ACME").await;
        let failed = platform
            .upload_partner_certificate(&token, "acme", &pem(&certificate))
            .await;
        assert!(failed.is_err(), "{backend}");
        let partner = platform.partner(&token, "acme").await.expect("partner");
        assert_eq!(
            partner.status(),
            partner::PartnerStatus::Active,
            "{backend}"
        );
        assert!(
            eventually_trusted(&platform, &certificate).await,
            "{backend}: the reconciler completes the step"
        );
    }
}

/// Approval gates verification: under `registered` a chip certificate that chains to the
/// provider's CA is `not registered` until it is uploaded and approved; MOSIP's `chain`
/// policy trusts it by its chain; uploaded but not approved is untrusted under both.
#[tokio::test]
async fn approval_gates_verification_under_the_registered_policy() {
    for backend in backends() {
        for policy in [TrustPolicy::Registered, TrustPolicy::Chain] {
            let (platform, admin, pki) = start(backend, policy).await;
            let context = format!("{backend}/{}", policy.as_str());
            let token = provider(&platform, "acme", "ACME", &pki.leaf("acme", "ACME")).await;
            let chip = pki.leaf("never uploaded", "ACME");
            let verdict = platform.verify(&pem(&chip), "FTM").await.expect("answered");
            match policy {
                TrustPolicy::Registered => {
                    assert!(!verdict.trusted, "{context}");
                    assert_eq!(verdict.reason, REASON_NOT_REGISTERED, "{context}");
                }
                TrustPolicy::Chain => assert!(verdict.trusted, "{context}: {verdict:?}"),
            }
            let ftm_id = ftm_with_chip(&platform, &token, "acme", "C", &chip).await;
            assert_untrusted(&platform, &pem(&chip), REASON_NOT_TRUSTED, &context).await;
            platform.approve(&admin, &ftm_id).await.expect("approved");
            assert!(platform.trusted(&pem(&chip)).await, "{context}");
        }
    }
}

/// A device certificate issued by an approved chip certificate verifies (with the chip
/// sent along), and stops verifying when the FTM or its partner is deactivated; a device of
/// a chip that was never approved, or was rejected, never verifies.
#[tokio::test]
async fn devices_of_an_approved_chip_follow_its_ftm_and_partner() {
    for backend in backends() {
        let (platform, admin, pki) = start(backend, TrustPolicy::Registered).await;
        let token = provider(&platform, "acme", "ACME", &pki.leaf("acme", "ACME")).await;
        let chip = pki.issuing_chip("issuing chip", "ACME");
        let ftm_id = ftm_with_chip(&platform, &token, "acme", "D", &chip).await;
        let presented = format!("{}{}", pem(&device(&chip, "device 1")), pem(&chip));
        assert_untrusted(&platform, &presented, REASON_ISSUER_NOT_TRUSTED, backend).await;
        platform.approve(&admin, &ftm_id).await.expect("approved");
        let verdict = platform.verify(&presented, "FTM").await.expect("answered");
        assert!(verdict.trusted, "{backend}: {verdict:?}");
        assert_eq!(
            verdict.chain_pem.len(),
            4,
            "device, chip, intermediate, root"
        );

        platform
            .set_partner_active(&admin, "acme", false)
            .await
            .expect("deactivated");
        assert_untrusted(&platform, &presented, REASON_ISSUER_NOT_TRUSTED, backend).await;
        platform
            .set_partner_active(&admin, "acme", true)
            .await
            .expect("re-activated");
        assert!(platform.trusted(&presented).await, "{backend}");
        platform
            .deactivate_ftm(&token, &ftm_id)
            .await
            .expect("FTM deactivated");
        assert_untrusted(&platform, &presented, REASON_ISSUER_NOT_TRUSTED, backend).await;

        let rejected_chip = pki.issuing_chip("rejected chip", "ACME");
        let rejected = ftm_with_chip(&platform, &token, "acme", "E", &rejected_chip).await;
        platform.reject(&admin, &rejected).await.expect("rejected");
        let presented = format!(
            "{}{}",
            pem(&device(&rejected_chip, "device 2")),
            pem(&rejected_chip)
        );
        assert_untrusted(&platform, &presented, REASON_ISSUER_NOT_TRUSTED, backend).await;
    }
}

/// Platform-signed copies grant no more than the original: the copy of a CA:FALSE chip
/// certificate is CA:FALSE with the same key usage; the copy of an issuing chip keeps its
/// path length.
#[tokio::test]
async fn platform_signed_copies_of_leaf_certificates_are_not_cas() {
    let backend = "sqlite";
    let (platform, _admin, pki) = start(backend, TrustPolicy::Registered).await;
    let token = provider(&platform, "acme", "ACME", &pki.leaf("acme", "ACME")).await;
    for (chip, model, ca, path_len) in [
        (pki.leaf("leaf chip", "ACME"), "L", false, None),
        (pki.issuing_chip("issuing chip", "ACME"), "I", true, Some(0)),
    ] {
        let ftm_id = ftm_with_chip(&platform, &token, "acme", model, &chip).await;
        let request = pmp_proto::ftm::v1::GetFtmCertificateRequest { ftm_id };
        let bundle = platform
            .ftm()
            .get_ftm_certificate(pmp_common::testing::with_token(request, &token))
            .await
            .expect("bundle")
            .into_inner();
        let copy = openssl::x509::X509::from_pem(bundle.platform_signed_certificate_pem.as_bytes())
            .expect("copy");
        let facts = certificate_store::x509::CertificateFacts::of(&copy).expect("facts");
        assert_eq!(facts.is_ca, ca, "{model}");
        assert_eq!(facts.path_len, path_len, "{model}");
        let usage =
            |certificate: &openssl::x509::X509| certificate.key_usage().map(|usage| usage.bits());
        assert_eq!(usage(&copy), usage(&chip.certificate), "{model}: key usage");
        assert_ne!(
            facts.issuer,
            certificate_store::x509::CertificateFacts::of(&chip.certificate)
                .expect("facts")
                .issuer
        );
    }
}

/// Hostile certificates — a corrupted public key, a corrupted signature, non-canonical DER,
/// weak CA keys and digests, too many certificates — get their contract reasons through
/// every RPC that takes certificates, never `INTERNAL` (nor `UNAVAILABLE` relayed by the
/// registry); paths need the RFC 5280 details strict validation asks for.
#[tokio::test]
async fn hostile_and_weak_certificates_get_their_contract_reasons() {
    use pmp_dev_certs::DigestSpec;
    use pmp_dev_certs::attacks::{
        with_corrupted_public_key, with_corrupted_signature, with_long_form_length,
    };
    for backend in backends() {
        let (platform, admin, pki) = start(backend, TrustPolicy::Chain).await;
        let token = platform.register("acme", "FTM_Provider", "ACME").await;
        let good = pki.leaf("acme", "ACME");
        let bad_key = pem_of(&with_corrupted_public_key(&good.certificate).expect("bad key"));
        let bad_signature =
            pem_of(&with_corrupted_signature(&good.certificate).expect("bad signature"));
        let long_form = pem_of(&with_long_form_length(&good.certificate).expect("long form"));
        for (input, code, reason) in [
            (&bad_key, Code::InvalidArgument, "KER-KMS-013"),
            (&long_form, Code::InvalidArgument, "KER-KMS-013"),
            (&bad_signature, Code::FailedPrecondition, "KER-PCM-006"),
        ] {
            assert_error(
                platform
                    .upload_partner_certificate(&token, "acme", input)
                    .await,
                code,
                reason,
            );
        }
        assert_error(
            platform.verify(&bad_key, "FTM").await,
            Code::InvalidArgument,
            "KER-KMS-013",
        );
        let verdict = platform
            .verify(&bad_signature, "FTM")
            .await
            .expect("answered");
        assert!(!verdict.trusted, "{backend}: {verdict:?}");
        assert_error(
            platform.verify(&pem(&good).repeat(11), "FTM").await,
            Code::InvalidArgument,
            "KER-PCM-001",
        );

        // CA uploads: a corrupted key; a root whose self-signature is broken is no root (and
        // then has no issuer); weak keys and digests have the partner rules' reasons.
        let root = CertificateSpec::ca("Hostile Root")
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        for (input, code, reason) in [
            (
                pem_of(&with_corrupted_public_key(&root.certificate).expect("bad key")),
                Code::InvalidArgument,
                "KER-KMS-013",
            ),
            (
                pem_of(&with_corrupted_signature(&root.certificate).expect("bad signature")),
                Code::FailedPrecondition,
                "KER-PCM-005",
            ),
            (
                pem(&CertificateSpec::ca("Weak Root")
                    .key(KeySpec::Rsa(1024))
                    .valid_for_days(3650)
                    .self_signed()
                    .expect("weak")),
                Code::InvalidArgument,
                "KER-PCM-013",
            ),
            (
                pem(&CertificateSpec::ca("SHA-1 Root")
                    .key(KeySpec::EcP256)
                    .digest(DigestSpec::Sha1)
                    .valid_for_days(3650)
                    .self_signed()
                    .expect("sha1")),
                Code::InvalidArgument,
                "KER-PCM-014",
            ),
        ] {
            assert_error(
                platform.upload_ca(&admin, &input, "FTM").await,
                code,
                reason,
            );
        }

        // Strict path validation: an issuing CA without an authority key identifier is
        // refused even when everything else is right.
        let no_aki = pmp_dev_certs::variants::VariantSpec::ca("No AKI CA")
            .authority_key_id(pmp_dev_certs::variants::KeyIdentifier::Absent)
            .valid_for_days(700)
            .issued_by(&pki.root)
            .expect("CA without AKI");
        let leaf = CertificateSpec::leaf("under no AKI")
            .key(KeySpec::EcP256)
            .issued_by(&no_aki)
            .expect("leaf");
        let verdict = platform
            .verify(&format!("{}{}", pem(&leaf), pem(&no_aki)), "FTM")
            .await
            .expect("answered");
        assert!(!verdict.trusted, "{backend}: {verdict:?}");
    }
}
