//! The certificate store's gRPC API against a real in-process server: every rule and reason
//! (gRPC code and ErrorInfo reason), bundles, listing, trust paths, partner uploads, the
//! trust rule and VerifyCertificateTrust.

use base64::Engine;
use tonic::Code;
use tonic::transport::Channel;

use certificate_store::domain::TrustPolicy;
use certificate_store::trust::{REASON_NOT_REGISTERED, REASON_NOT_TRUSTED};
use certificate_store::x509::{self, CertificateFacts};
use pmp_common::auth::testing::{TEST_AUDIENCE, TEST_ISSUER, TestTokens};
use pmp_common::testing::{assert_error, reflection_services, with_token};
use pmp_dev_certs::{CertificateSpec, DigestSpec, Issued, KeySpec, X509Version};
use pmp_e2e::inprocess::{InProcessPlatform, Options, StoreAdjust};
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::*;
use pmp_proto::service_names::CERTIFICATE_STORE;

mod support;

use support::{Pki, make_pki, manager, pem};

const ORG: &str = "ACME Chips Ltd";

/// The store on the platform harness (`pmp_e2e::inprocess`), also accepting user tokens of
/// a test issuer, so a test can act as any user with any roles.
struct Store {
    services: InProcessPlatform,
    client: CertificateStoreClient<Channel>,
    tokens: TestTokens,
    admin: String,
    /// Owner type of every certificate uploaded through the helpers.
    owners: std::sync::Mutex<std::collections::HashMap<String, OwnerType>>,
    _key_directory: tempfile::TempDir,
}

impl Store {
    async fn start() -> Store {
        Self::start_with("", TrustPolicy::Registered).await
    }

    /// A store whose FTM domain follows MOSIP's `chain` policy.
    async fn start_chain_policy() -> Store {
        Self::start_with("", TrustPolicy::Chain).await
    }

    async fn start_with_metrics(metrics_listen: &str) -> Store {
        Self::start_with(metrics_listen, TrustPolicy::Registered).await
    }

    async fn start_with(metrics_listen: &str, ftm_policy: TrustPolicy) -> Store {
        Self::start_adjusted("sqlite", metrics_listen, ftm_policy, Box::new(|_| {})).await
    }

    /// A store whose settings `more` adjusts further.
    async fn start_adjusted(
        backend: &'static str,
        metrics_listen: &str,
        ftm_policy: TrustPolicy,
        more: StoreAdjust,
    ) -> Store {
        let key_directory = tempfile::tempdir().expect("tempdir");
        let tokens = TestTokens::new();
        let key_file = key_directory.path().join("user-token-key.pem");
        std::fs::write(&key_file, &tokens.public_key_pem).expect("key file");
        let metrics_listen = metrics_listen.to_owned();
        let adjust: StoreAdjust = Box::new(move |settings| {
            settings.user_tokens.issuer = TEST_ISSUER.into();
            settings.user_tokens.audience = TEST_AUDIENCE.into();
            settings.user_tokens.public_key_files = vec![key_file.display().to_string()];
            settings.user_tokens.registry_address = String::new();
            settings.metrics.listen = metrics_listen;
            more(settings);
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
            client: services.store(),
            services,
            tokens,
            admin,
            owners: std::sync::Mutex::default(),
            _key_directory: key_directory,
        }
    }

    fn client(&self) -> CertificateStoreClient<Channel> {
        self.client.clone()
    }

    /// A token of `service` for the store.
    fn token_of(&self, service: &str) -> String {
        self.services
            .service_keys
            .signer(service)
            .token_for("certificate-store")
            .expect("service token")
    }

    /// The registry's token (it manages partner certificates).
    fn service_token(&self) -> String {
        self.token_of("partner-registry")
    }

    async fn upload_ca(
        &self,
        data: &str,
        domain: &str,
    ) -> Result<UploadCaCertificateResponse, tonic::Status> {
        let request = UploadCaCertificateRequest {
            certificate_data: data.into(),
            partner_domain: domain.into(),
        };
        self.client()
            .upload_ca_certificate(with_token(request, &self.admin))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Uploads a partner's own certificate (domain FTM).
    async fn upload_partner(
        &self,
        partner: &str,
        organisation: &str,
        data: &str,
    ) -> Result<UploadPartnerCertificateResponse, tonic::Status> {
        self.upload_owned(OwnerType::Partner, partner, partner, organisation, data)
            .await
    }

    /// Uploads the chip certificate of FTM `ftm` of partner `partner` (domain FTM).
    async fn upload_chip(
        &self,
        ftm: &str,
        partner: &str,
        organisation: &str,
        data: &str,
    ) -> Result<UploadPartnerCertificateResponse, tonic::Status> {
        self.upload_owned(OwnerType::Ftm, ftm, partner, organisation, data)
            .await
    }

    async fn upload_owned(
        &self,
        owner_type: OwnerType,
        owner: &str,
        partner: &str,
        organisation: &str,
        data: &str,
    ) -> Result<UploadPartnerCertificateResponse, tonic::Status> {
        let request = UploadPartnerCertificateRequest {
            owner_id: owner.into(),
            organization_name: organisation.into(),
            certificate_data: data.into(),
            partner_domain: "FTM".into(),
            owner_type: owner_type as i32,
            partner_id: partner.into(),
        };
        let token = self.token_of(manager(owner_type));
        let uploaded = self
            .client()
            .upload_partner_certificate(with_token(request, &token))
            .await
            .map(tonic::Response::into_inner);
        if let Ok(stored) = &uploaded {
            self.owners
                .lock()
                .expect("owners")
                .insert(stored.certificate_id.clone(), owner_type);
        }
        uploaded
    }

    async fn verify(
        &self,
        data: &str,
        domain: &str,
    ) -> Result<VerifyCertificateTrustResponse, tonic::Status> {
        let request = VerifyCertificateTrustRequest {
            certificate_data: data.into(),
            partner_domain: domain.into(),
        };
        let token = self.tokens.token("some-partner", &["DEVICE_PROVIDER"]);
        self.client()
            .verify_certificate_trust(with_token(request, &token))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn set_trusted(
        &self,
        certificate_id: &str,
        trusted: bool,
    ) -> SetCertificateTrustedResponse {
        let request = SetCertificateTrustedRequest {
            certificate_id: certificate_id.into(),
            trusted,
            partner_id: String::new(),
        };
        let owner_type = self.owners.lock().expect("owners")[certificate_id];
        self.client()
            .set_certificate_trusted(with_token(request, &self.token_of(manager(owner_type))))
            .await
            .expect("set trusted")
            .into_inner()
    }
}

fn leaf(pki: &Pki, organisation: &str) -> Issued {
    CertificateSpec::leaf("device-partner")
        .organisation(organisation)
        .issued_by(&pki.intermediate)
        .expect("leaf")
}

async fn store_with_pki() -> (Store, Pki) {
    with_pki(Store::start().await).await
}

async fn with_pki(store: Store) -> (Store, Pki) {
    let pki = make_pki("ACME");
    store.upload_ca(&pem(&pki.root), "ftm").await.expect("root");
    store
        .upload_ca(&pem(&pki.intermediate), "FTM")
        .await
        .expect("intermediate");
    (store, pki)
}

#[tokio::test]
async fn root_then_intermediate_are_stored_with_their_types_and_issuers() {
    let store = Store::start().await;
    let pki = make_pki("ACME");
    let root = store.upload_ca(&pem(&pki.root), "ftm").await.expect("root");
    assert_eq!(root.status(), UploadStatus::UploadSuccess);
    assert_eq!(root.results[0].ca_type(), CaType::Root);
    let root_id = root.results[0].certificate_id.clone();
    let thumbprint = CertificateFacts::of(&pki.root.certificate)
        .expect("facts")
        .thumbprint;
    assert_eq!(root.results[0].thumbprint, thumbprint);

    let intermediate = store
        .upload_ca(&pem(&pki.intermediate), "FTM")
        .await
        .expect("intermediate");
    assert_eq!(intermediate.results[0].ca_type(), CaType::Intermediate);
    let stored = store
        .client()
        .get_ca_certificate(with_token(
            GetCaCertificateRequest {
                certificate_id: intermediate.results[0].certificate_id.clone(),
            },
            &store.admin,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(stored.partner_domain, "FTM");
    assert_eq!(stored.issuer_certificate_id, root_id);
    assert!(stored.subject.contains("ACME Intermediate"));

    let path = store
        .client()
        .get_ca_trust_path(with_token(
            GetCaTrustPathRequest {
                certificate_id: stored.certificate_id.clone(),
            },
            &store.admin,
        ))
        .await
        .expect("trust path")
        .into_inner();
    assert_eq!(
        path.certificates_pem,
        vec![pem(&pki.intermediate), pem(&pki.root)]
    );
    let from_p7b = x509::p7b_der_to_certs(&path.p7b).expect("p7b parses");
    assert_eq!(from_p7b.len(), 2);

    // The same root in another domain is not a duplicate.
    let other_domain = store
        .upload_ca(&pem(&pki.root), "DEVICE")
        .await
        .expect("other domain");
    assert_eq!(other_domain.status(), UploadStatus::UploadSuccess);
}

#[tokio::test]
async fn each_ca_rule_has_its_reason() {
    let store = Store::start().await;
    let acme = make_pki("ACME");
    store
        .upload_ca(&pem(&acme.root), "FTM")
        .await
        .expect("root");
    let foreign = make_pki("Foreign");
    let cases: Vec<(String, &str, Code, &str)> = vec![
        ("".into(), "FTM", Code::InvalidArgument, "PMS_COR_001"),
        (
            pem(&acme.intermediate),
            " ",
            Code::InvalidArgument,
            "PMS_COR_001",
        ),
        (
            "hello world".into(),
            "FTM",
            Code::InvalidArgument,
            "KER-PCM-001",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            "FTM",
            Code::InvalidArgument,
            "KER-KMS-013",
        ),
        (
            pem(&acme.intermediate),
            "BANK",
            Code::InvalidArgument,
            "KER-PCM-011",
        ),
        (pem(&acme.root), "FTM", Code::AlreadyExists, "KER-PCM-003"),
        (
            pem(&CertificateSpec::ca("v1 root")
                .version(X509Version::V1)
                .valid_for_days(3000)
                .self_signed()
                .expect("v1")),
            "FTM",
            Code::InvalidArgument,
            "KER-PCM-007",
        ),
        (
            pem(&CertificateSpec::leaf("not a ca")
                .valid_for_days(3000)
                .self_signed()
                .expect("leaf")),
            "FTM",
            Code::InvalidArgument,
            "KER-PCM-019",
        ),
        (
            pem(&CertificateSpec::ca("future")
                .valid_from_days(10)
                .valid_for_days(3000)
                .self_signed()
                .expect("future")),
            "FTM",
            Code::InvalidArgument,
            "KER-PMS-020",
        ),
        (
            pem(&CertificateSpec::ca("expired")
                .valid_from_days(-400)
                .valid_for_days(30)
                .self_signed()
                .expect("expired")),
            "FTM",
            Code::InvalidArgument,
            "KER-PCM-004",
        ),
        (
            pem(&CertificateSpec::ca("short")
                .valid_for_days(200)
                .self_signed()
                .expect("short")),
            "FTM",
            Code::InvalidArgument,
            "KER-PCM-017",
        ),
        (
            pem(&foreign.intermediate),
            "FTM",
            Code::FailedPrecondition,
            "KER-PCM-005",
        ),
    ];
    for (data, domain, code, reason) in cases {
        assert_error(store.upload_ca(&data, domain).await, code, reason);
    }
}

#[tokio::test]
async fn ca_uploads_need_an_admin() {
    let store = Store::start().await;
    let root = pem(&make_pki("ACME").root);
    let request = || UploadCaCertificateRequest {
        certificate_data: root.clone(),
        partner_domain: "FTM".into(),
    };
    assert_error(
        store.client().upload_ca_certificate(request()).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    let cases = [
        (
            store.tokens.token("acme", &["FTM_PROVIDER"]),
            Code::PermissionDenied,
            "KER-ATH-403",
        ),
        (
            store.tokens.expired_token("admin", &["PARTNER_ADMIN"]),
            Code::Unauthenticated,
            "KER-ATH-401",
        ),
        (
            store.tokens.foreign_token("admin", &["PARTNER_ADMIN"]),
            Code::Unauthenticated,
            "KER-ATH-401",
        ),
        (store.service_token(), Code::PermissionDenied, "KER-ATH-403"),
    ];
    for (token, code, reason) in cases {
        assert_error(
            store
                .client()
                .upload_ca_certificate(with_token(request(), &token))
                .await,
            code,
            reason,
        );
    }
}

#[tokio::test]
async fn callers_without_the_right_are_refused_whatever_they_sent() {
    // Blank requests: the access check comes before any request rule.
    let store = Store::start().await;
    let partner = store.tokens.token("acme", &["FTM_PROVIDER"]);
    let mut client = store.client();
    assert_error(
        client
            .upload_ca_certificate(with_token(UploadCaCertificateRequest::default(), &partner))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        client
            .get_ca_trust_path(with_token(GetCaTrustPathRequest::default(), &partner))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        client
            .get_partner_certificate(with_token(
                GetPartnerCertificateRequest::default(),
                &partner,
            ))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        client
            .upload_partner_certificate(with_token(
                UploadPartnerCertificateRequest::default(),
                &store.admin,
            ))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        client
            .set_partner_deactivated(with_token(
                SetPartnerDeactivatedRequest::default(),
                &store.admin,
            ))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
}

#[tokio::test]
async fn bundles_in_any_order_and_encoding() {
    let store = Store::start().await;
    let first = make_pki("First");
    let leaf_first = format!("{}{}", pem(&first.intermediate), pem(&first.root));
    let response = store.upload_ca(&leaf_first, "FTM").await.expect("bundle");
    assert_eq!(response.status(), UploadStatus::UploadSuccess);
    let types: Vec<CaType> = response
        .results
        .iter()
        .map(|result| result.ca_type())
        .collect();
    assert_eq!(
        types,
        [CaType::Root, CaType::Intermediate],
        "roots are processed first"
    );

    let second = make_pki("Second");
    let root_first = format!("{}{}", pem(&second.root), pem(&second.intermediate));
    assert_eq!(
        store
            .upload_ca(&root_first, "FTM")
            .await
            .expect("bundle")
            .status(),
        UploadStatus::UploadSuccess
    );

    let third = make_pki("Third");
    let der = x509::certs_to_p7b_der(&[
        third.intermediate.certificate.clone(),
        third.root.certificate.clone(),
    ])
    .expect("p7b");
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
    assert_eq!(
        store
            .upload_ca(&url_safe, "DEVICE")
            .await
            .expect("p7b")
            .status(),
        UploadStatus::UploadSuccess
    );
    let standard = base64::engine::general_purpose::STANDARD.encode(&der);
    let again = store
        .upload_ca(&standard, "AUTH")
        .await
        .expect("p7b padded");
    assert_eq!(again.status(), UploadStatus::UploadSuccess);

    // Partial: a new root with an intermediate of an unknown root.
    let fourth = make_pki("Fourth");
    let orphan = make_pki("Orphan");
    let partial = store
        .upload_ca(
            &format!("{}{}", pem(&fourth.root), pem(&orphan.intermediate)),
            "FTM",
        )
        .await
        .expect("partial");
    assert_eq!(partial.status(), UploadStatus::PartialUploadSuccess);
    let reasons: Vec<&str> = partial
        .results
        .iter()
        .map(|result| result.error_reason.as_str())
        .collect();
    assert_eq!(reasons, ["", "KER-PCM-005"]);
    assert!(partial.results[1].certificate_id.is_empty());

    // Everything already stored: the bundle fails as a whole, per certificate.
    let failed = store
        .upload_ca(&leaf_first, "FTM")
        .await
        .expect("answered per certificate");
    assert_eq!(failed.status(), UploadStatus::UploadFailed);
    assert!(
        failed
            .results
            .iter()
            .all(|result| result.error_reason == "KER-PCM-003")
    );
}

#[tokio::test]
async fn list_ca_certificates_filters_and_pages() {
    let store = Store::start().await;
    for name in ["A", "B", "C"] {
        let names = make_pki(name);
        store
            .upload_ca(
                &format!("{}{}", pem(&names.root), pem(&names.intermediate)),
                "FTM",
            )
            .await
            .expect("upload");
    }
    store
        .upload_ca(&pem(&make_pki("D").root), "DEVICE")
        .await
        .expect("device");
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListCaCertificatesRequest {
            partner_domain: "ftm".into(),
            ca_type: CaType::Unspecified as i32,
            page_size: 4,
            page_token: token.clone(),
        };
        let page = store
            .client()
            .list_ca_certificates(with_token(request, &store.admin))
            .await
            .expect("page")
            .into_inner();
        assert_eq!(page.total_size, 6);
        seen.extend(page.ca_certificates.into_iter().map(|ca| ca.certificate_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 6);
    let roots = ListCaCertificatesRequest {
        ca_type: CaType::Root as i32,
        ..Default::default()
    };
    let page = store
        .client()
        .list_ca_certificates(with_token(roots, &store.admin))
        .await
        .expect("roots")
        .into_inner();
    assert_eq!(page.total_size, 4);
    assert!(
        page.ca_certificates
            .iter()
            .all(|ca| ca.ca_type() == CaType::Root)
    );
    assert_error(
        store
            .client()
            .get_ca_certificate(with_token(
                GetCaCertificateRequest {
                    certificate_id: "nope".into(),
                },
                &store.admin,
            ))
            .await,
        Code::NotFound,
        "KER-PMS-019",
    );
    let partner = store.tokens.token("acme", &["FTM_PROVIDER"]);
    assert_error(
        store
            .client()
            .list_ca_certificates(with_token(ListCaCertificatesRequest::default(), &partner))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    let bad_token = ListCaCertificatesRequest {
        page_token: "garbage".into(),
        ..Default::default()
    };
    assert_error(
        store
            .client()
            .list_ca_certificates(with_token(bad_token, &store.admin))
            .await,
        Code::InvalidArgument,
        "PMS_PRT_362",
    );
    // An unknown domain is reported before an unknown type.
    let both_unknown = ListCaCertificatesRequest {
        partner_domain: "NOPE".into(),
        ca_type: 99,
        ..Default::default()
    };
    assert_error(
        store
            .client()
            .list_ca_certificates(with_token(both_unknown, &store.admin))
            .await,
        Code::InvalidArgument,
        "KER-PCM-011",
    );
}

#[tokio::test]
async fn partner_certificate_is_resigned_stored_and_idempotent() {
    let (store, pki) = store_with_pki().await;
    let partner = leaf(&pki, ORG);
    let first = store
        .upload_partner("acme", ORG, &pem(&partner))
        .await
        .expect("accepted");
    assert_eq!(first.ca_signed_certificate_pem, pem(&partner));
    assert_eq!(
        first.chain_pem,
        vec![pem(&partner), pem(&pki.intermediate), pem(&pki.root)]
    );
    let resigned = openssl::x509::X509::from_pem(first.platform_signed_certificate_pem.as_bytes())
        .expect("pem");
    let facts = CertificateFacts::of(&resigned).expect("facts");
    assert!(
        facts.issuer.contains("Partner Management Platform"),
        "{}",
        facts.issuer
    );
    assert_eq!(facts.organisations, vec![ORG.to_owned()]);
    let partner_key = partner.certificate.public_key().expect("key");
    assert!(
        resigned.public_key().expect("key").public_eq(&partner_key),
        "same public key"
    );

    let again = store
        .upload_partner("acme", ORG, &pem(&partner))
        .await
        .expect("retry");
    assert_eq!(
        again.certificate_id, first.certificate_id,
        "a retry returns the stored certificate"
    );
    let verdict = store.verify(&pem(&partner), "FTM").await.expect("answered");
    assert!(
        !verdict.trusted,
        "stored untrusted until its owner marks it"
    );
    assert_eq!(verdict.reason, REASON_NOT_TRUSTED);
    // One owner per certificate: another partner, or an FTM, cannot hold it too.
    assert_error(
        store.upload_partner("other", ORG, &pem(&partner)).await,
        Code::AlreadyExists,
        "KER-PCM-003",
    );
    assert_error(
        store.upload_chip("acme", "acme", ORG, &pem(&partner)).await,
        Code::AlreadyExists,
        "KER-PCM-003",
    );
    // A repeated upload is validated again: it cannot bypass a rule the first one passed.
    assert_error(
        store
            .upload_partner("acme", "Another Org", &pem(&partner))
            .await,
        Code::InvalidArgument,
        "KER-PCM-008",
    );

    let bundle = store
        .client()
        .get_partner_certificate(with_token(
            GetPartnerCertificateRequest {
                certificate_id: first.certificate_id.clone(),
            },
            &store.service_token(),
        ))
        .await
        .expect("bundle")
        .into_inner();
    assert_eq!(bundle.ca_signed_certificate_pem, pem(&partner));
    assert!(!bundle.expired);
    assert!(bundle.not_after.is_some());
    assert_error(
        store
            .client()
            .get_partner_certificate(with_token(
                GetPartnerCertificateRequest {
                    certificate_id: "nope".into(),
                },
                &store.service_token(),
            ))
            .await,
        Code::NotFound,
        "KER-PCM-012",
    );
}

#[tokio::test]
async fn each_partner_rule_has_its_reason_in_order() {
    let (store, pki) = store_with_pki().await;
    let foreign = pki_for_partner_tests();
    let spec = || CertificateSpec::leaf("partner").organisation(ORG);
    let cases: Vec<(String, &str, &str)> = vec![
        ("".into(), ORG, "PMS_COR_001"),
        ("not a certificate".into(), ORG, "KER-PCM-001"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ORG,
            "KER-KMS-013",
        ),
        (
            pem(&spec()
                .version(X509Version::V1)
                .issued_by(&pki.intermediate)
                .expect("v1")),
            ORG,
            "KER-PCM-007",
        ),
        (
            pem(&spec()
                .key(KeySpec::Rsa(1024))
                .issued_by(&pki.intermediate)
                .expect("rsa1024")),
            ORG,
            "KER-PCM-013",
        ),
        (
            pem(&spec()
                .digest(DigestSpec::Sha1)
                .issued_by(&pki.intermediate)
                .expect("sha1")),
            ORG,
            "KER-PCM-014",
        ),
        (
            pem(&spec()
                .valid_from_days(3)
                .issued_by(&pki.intermediate)
                .expect("future")),
            ORG,
            "KER-PMS-020",
        ),
        (
            pem(&spec()
                .valid_from_days(-400)
                .valid_for_days(30)
                .issued_by(&pki.intermediate)
                .expect("expired")),
            ORG,
            "KER-PCM-004",
        ),
        (
            pem(&spec()
                .valid_for_days(300)
                .issued_by(&pki.intermediate)
                .expect("short")),
            ORG,
            "KER-KMS-021",
        ),
        (
            pem(&spec().self_signed().expect("self-signed")),
            ORG,
            "KER-PCM-015",
        ),
        (
            pem(&spec().issued_by(&foreign.intermediate).expect("foreign")),
            ORG,
            "KER-PCM-006",
        ),
        (
            pem(&spec().issued_by(&pki.intermediate).expect("org")),
            "ACME Chips",
            "KER-PCM-008",
        ),
        (
            pem(&CertificateSpec::leaf("no org")
                .issued_by(&pki.intermediate)
                .expect("no org")),
            ORG,
            "KER-PCM-008",
        ),
    ];
    for (data, organisation, reason) in cases {
        let result = store.upload_partner("acme", organisation, &data).await;
        let code = match reason {
            "KER-PCM-006" => Code::FailedPrecondition,
            _ => Code::InvalidArgument,
        };
        assert_error(result, code, reason);
    }
    let wrong_domain = UploadPartnerCertificateRequest {
        owner_id: "acme".into(),
        organization_name: ORG.into(),
        certificate_data: pem(&leaf(&pki, ORG)),
        partner_domain: "BANK".into(),
        owner_type: OwnerType::Partner as i32,
        partner_id: String::new(),
    };
    assert_error(
        store
            .client()
            .upload_partner_certificate(with_token(wrong_domain, &store.service_token()))
            .await,
        Code::InvalidArgument,
        "KER-PCM-011",
    );

    // SHA-384 and ECDSA P-256 are accepted.
    for accepted in [
        spec()
            .digest(DigestSpec::Sha384)
            .issued_by(&pki.intermediate)
            .expect("sha384"),
        spec()
            .key(KeySpec::EcP256)
            .issued_by(&pki.intermediate)
            .expect("p256"),
    ] {
        store
            .upload_partner("acme", ORG, &pem(&accepted))
            .await
            .expect("accepted");
    }
}

fn pki_for_partner_tests() -> Pki {
    make_pki("Elsewhere")
}

#[tokio::test]
async fn partner_uploads_are_for_services_only() {
    let (store, pki) = store_with_pki().await;
    let request = UploadPartnerCertificateRequest {
        owner_id: "acme".into(),
        organization_name: ORG.into(),
        certificate_data: pem(&leaf(&pki, ORG)),
        partner_domain: "FTM".into(),
        owner_type: OwnerType::Partner as i32,
        partner_id: String::new(),
    };
    assert_error(
        store
            .client()
            .upload_partner_certificate(with_token(request.clone(), &store.admin))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        store.client().upload_partner_certificate(request).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    let trust = SetCertificateTrustedRequest {
        certificate_id: "x".into(),
        trusted: true,
        partner_id: String::new(),
    };
    assert_error(
        store
            .client()
            .set_certificate_trusted(with_token(trust, &store.admin))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    let unknown = SetCertificateTrustedRequest {
        certificate_id: "unknown".into(),
        trusted: true,
        partner_id: String::new(),
    };
    assert_error(
        store
            .client()
            .set_certificate_trusted(with_token(unknown, &store.service_token()))
            .await,
        Code::NotFound,
        "KER-PCM-012",
    );
}

#[tokio::test]
async fn verify_follows_chains_ca_uploads_and_trust_flags() {
    let store = Store::start_chain_policy().await;
    let pki = make_pki("ACME");
    let device = leaf(&pki, ORG);

    let before = store.verify(&pem(&device), "FTM").await.expect("answered");
    assert!(!before.trusted, "no CA yet");
    assert!(!before.reason.is_empty());

    store.upload_ca(&pem(&pki.root), "FTM").await.expect("root");
    let with_chain = format!("{}{}", pem(&device), pem(&pki.intermediate));
    assert!(
        store
            .verify(&with_chain, "FTM")
            .await
            .expect("answered")
            .trusted,
        "chain supplied by the caller"
    );
    assert!(
        !store
            .verify(&pem(&device), "FTM")
            .await
            .expect("answered")
            .trusted,
        "intermediate unknown"
    );

    store
        .upload_ca(&pem(&pki.intermediate), "FTM")
        .await
        .expect("intermediate");
    let after = store.verify(&pem(&device), "FTM").await.expect("answered");
    assert!(
        after.trusted,
        "changes right after the CA upload: {}",
        after.reason
    );
    assert_eq!(
        after.chain_pem,
        vec![pem(&device), pem(&pki.intermediate), pem(&pki.root)]
    );
    assert!(
        !store
            .verify(&pem(&device), "DEVICE")
            .await
            .expect("answered")
            .trusted,
        "other domain"
    );

    let foreign = leaf(&pki_for_partner_tests(), ORG);
    assert!(
        !store
            .verify(&pem(&foreign), "FTM")
            .await
            .expect("answered")
            .trusted
    );
    let expired = CertificateSpec::leaf("old")
        .valid_from_days(-400)
        .valid_for_days(30)
        .issued_by(&pki.intermediate)
        .expect("old");
    let verdict = store.verify(&pem(&expired), "FTM").await.expect("answered");
    assert!(!verdict.trusted);
    assert!(verdict.reason.contains("expired"), "{}", verdict.reason);

    // An FTM chip certificate chains to the FTM CA yet is untrusted until approved.
    let chip = CertificateSpec::leaf("chip")
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .issued_by(&pki.intermediate)
        .expect("chip");
    let stored = store
        .upload_chip("ftm_1", "acme", ORG, &pem(&chip))
        .await
        .expect("chip stored");
    assert!(
        !store
            .verify(&pem(&chip), "FTM")
            .await
            .expect("answered")
            .trusted,
        "pending approval"
    );
    assert!(
        store
            .set_trusted(&stored.certificate_id, true)
            .await
            .trusted
    );
    assert!(
        store
            .verify(&pem(&chip), "FTM")
            .await
            .expect("answered")
            .trusted,
        "approved"
    );
    assert!(
        !store
            .set_trusted(&stored.certificate_id, false)
            .await
            .trusted
    );
    assert!(
        !store
            .verify(&pem(&chip), "FTM")
            .await
            .expect("answered")
            .trusted,
        "deactivated"
    );

    // A partner certificate is stored untrusted too, until the registry has recorded it.
    let partner = leaf(&pki, ORG);
    let partner_id = store
        .upload_partner("acme", ORG, &pem(&partner))
        .await
        .expect("partner");
    let verdict = store.verify(&pem(&partner), "FTM").await.expect("answered");
    assert!(!verdict.trusted);
    assert_eq!(verdict.reason, REASON_NOT_TRUSTED);
    store.set_trusted(&partner_id.certificate_id, true).await;
    assert!(
        store
            .verify(&pem(&partner), "FTM")
            .await
            .expect("answered")
            .trusted
    );
    store.set_trusted(&partner_id.certificate_id, false).await;
    assert!(
        !store
            .verify(&pem(&partner), "FTM")
            .await
            .expect("answered")
            .trusted
    );
}

#[tokio::test]
async fn untrusted_issuers_do_not_lend_their_signature() {
    let (store, pki) = store_with_pki().await;
    // A partner whose certificate is itself a CA issues device certificates.
    let partner_ca = CertificateSpec::ca("partner ca")
        .organisation(ORG)
        .valid_for_days(700)
        .issued_by(&pki.intermediate)
        .expect("partner ca");
    let stored = store
        .upload_partner("acme", ORG, &pem(&partner_ca))
        .await
        .expect("stored");
    let device = CertificateSpec::leaf("device")
        .issued_by(&partner_ca)
        .expect("device");
    assert!(
        !store
            .verify(&pem(&device), "FTM")
            .await
            .expect("answered")
            .trusted,
        "the partner CA is not trusted before it is marked"
    );
    store.set_trusted(&stored.certificate_id, true).await;
    assert!(
        store
            .verify(&pem(&device), "FTM")
            .await
            .expect("answered")
            .trusted,
        "trusted issuer from the store"
    );
    store.set_trusted(&stored.certificate_id, false).await;
    let with_chain = format!("{}{}", pem(&device), pem(&partner_ca));
    let verdict = store.verify(&with_chain, "FTM").await.expect("answered");
    assert!(
        !verdict.trusted,
        "an untrusted partner CA cannot vouch, even when supplied in the chain"
    );
}

#[tokio::test]
async fn verify_input_errors_and_authentication() {
    let (store, _pki) = store_with_pki().await;
    assert_error(
        store.verify("", "FTM").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        store.verify("garbage", "FTM").await,
        Code::InvalidArgument,
        "KER-PCM-001",
    );
    assert_error(
        store
            .verify(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "FTM",
            )
            .await,
        Code::InvalidArgument,
        "KER-KMS-013",
    );
    let root = pem(&make_pki("X").root);
    assert_error(
        store.verify(&root, "BANK").await,
        Code::InvalidArgument,
        "KER-PCM-011",
    );
    // At most 10 certificates per request, counted before any is parsed.
    let pki = make_pki("Many");
    let one = pem(&leaf(&pki, ORG));
    assert!(store.verify(&one.repeat(10), "FTM").await.is_ok());
    assert_error(
        store.verify(&one.repeat(11), "FTM").await,
        Code::InvalidArgument,
        "KER-PCM-001",
    );
    // A message over the server's limit (1 MiB) is refused from its length prefix, with the
    // contract's error.
    let huge = format!("{one}{}", " ".repeat(1024 * 1024));
    assert_error(
        store.verify(&huge, "FTM").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    let anonymous = VerifyCertificateTrustRequest {
        certificate_data: root,
        partner_domain: "FTM".into(),
    };
    assert_error(
        store.client().verify_certificate_trust(anonymous).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
}

#[tokio::test]
async fn concurrent_verifies_during_ca_uploads_always_see_a_whole_store() {
    let (store, pki) = with_pki(Store::start_chain_policy().await).await;
    let device = pem(&leaf(&pki, ORG));
    let token = store.tokens.token("verifier", &[]);
    let verifiers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = store.client();
            let device = device.clone();
            let token = token.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let request = VerifyCertificateTrustRequest {
                        certificate_data: device.clone(),
                        partner_domain: "FTM".into(),
                    };
                    let verdict = client
                        .verify_certificate_trust(with_token(request, &token))
                        .await
                        .expect("answered");
                    assert!(verdict.get_ref().trusted, "{}", verdict.get_ref().reason);
                }
            })
        })
        .collect();
    for index in 0..8 {
        let other = make_pki(&format!("Other{index}"));
        store
            .upload_ca(
                &format!("{}{}", pem(&other.root), pem(&other.intermediate)),
                "FTM",
            )
            .await
            .expect("upload");
    }
    for verifier in verifiers {
        verifier.await.expect("verifier task");
    }
}

#[tokio::test]
async fn reflection_lists_the_service() {
    let store = Store::start().await;
    let services = reflection_services(
        store
            .services
            .store
            .as_ref()
            .expect("a real store")
            .channel()
            .await
            .expect("channel"),
    )
    .await
    .expect("reflection");
    assert!(
        services.contains(&CERTIFICATE_STORE.to_owned()),
        "{services:?}"
    );
    assert!(services.contains(&"grpc.health.v1.Health".to_owned()));
}

#[tokio::test]
async fn metrics_are_scraped_and_parsed() {
    let store = Store::start_with_metrics("127.0.0.1:0").await;
    let listen = store
        .services
        .store
        .as_ref()
        .and_then(|spawned| spawned.metrics_address.clone())
        .expect("a metrics endpoint");
    let pki = make_pki("Metrics");
    store
        .upload_ca(
            &format!("{}{}", pem(&pki.root), pem(&pki.intermediate)),
            "FTM",
        )
        .await
        .expect("upload");
    let device = pem(&leaf(&pki, ORG));
    for _ in 0..3 {
        let verdict = store.verify(&device, "FTM").await.expect("verify");
        assert_eq!(verdict.reason, REASON_NOT_REGISTERED);
    }
    assert_error(
        store.upload_ca("garbage", "FTM").await,
        Code::InvalidArgument,
        "KER-PCM-001",
    );

    let samples = pmp_common::testing::scrape_metrics(&listen)
        .await
        .expect("scrape");
    let value = |name: &str, labels: &[(&str, &str)]| {
        pmp_common::testing::sample_value(&samples, name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} missing"))
    };
    let verify = "/mosip.pms.certstore.v1.CertificateStore/VerifyCertificateTrust";
    let upload = "/mosip.pms.certstore.v1.CertificateStore/UploadCaCertificate";
    let service = ("service", "certificate-store");
    assert_eq!(
        value(
            "pmp_grpc_requests_total",
            &[service, ("method", verify), ("code", "OK")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "pmp_grpc_requests_total",
            &[service, ("method", upload), ("code", "INVALID_ARGUMENT")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "pmp_grpc_request_duration_seconds_count",
            &[service, ("method", verify)]
        ),
        3.0
    );
    assert_eq!(
        value("pmp_trust_store_certificates", &[service, ("kind", "ca")]),
        2.0
    );
    assert_eq!(
        value("pmp_verify_cache_lookups", &[service, ("result", "hit")]),
        2.0
    );
    assert_eq!(
        value("pmp_verify_cache_lookups", &[service, ("result", "miss")]),
        1.0
    );
    assert!((value("pmp_verify_cache_hit_ratio", &[service]) - 2.0 / 3.0).abs() < 1e-9);
    assert!(value("pmp_verify_cache_bytes", &[service]) > 0.0);
    assert!(value("pmp_db_pool_connections", &[service, ("state", "open")]) >= 1.0);
    assert_eq!(value("pmp_grpc_requests_in_flight", &[service]), 0.0);
}

// ---------------------------------------------------------------- platform key rotation

async fn list_keys(store: &Store) -> ListPlatformSigningKeysResponse {
    let token = store.tokens.token("some-partner", &["DEVICE_PROVIDER"]);
    store
        .client()
        .list_platform_signing_keys(with_token(ListPlatformSigningKeysRequest {}, &token))
        .await
        .expect("anyone authenticated may list")
        .into_inner()
}

fn states(listed: &ListPlatformSigningKeysResponse) -> Vec<(String, PlatformSigningKeyState)> {
    listed
        .keys
        .iter()
        .map(|key| (key.key_id.clone(), key.state()))
        .collect()
}

/// The platform-signed copy of a freshly uploaded partner certificate.
async fn fresh_copy(store: &Store, pki: &Pki, partner: &str) -> openssl::x509::X509 {
    let uploaded = store
        .upload_partner(partner, ORG, &pem(&leaf(pki, ORG)))
        .await
        .expect("uploaded");
    openssl::x509::X509::from_pem(uploaded.platform_signed_certificate_pem.as_bytes())
        .expect("copy")
}

fn public_key_of(pem: &str) -> openssl::pkey::PKey<openssl::pkey::Public> {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .expect("certificate")
        .public_key()
        .expect("key")
}

#[tokio::test]
async fn the_platform_signing_key_rotates_into_the_hsm_without_losing_earlier_copies() {
    use certificate_store::x509::PlatformSigner;
    use pmp_common::signing::KeyAlgorithm;
    use pmp_common::signing::testing::SoftHsm;

    // The store starts on a file key under a root whose key the test keeps (the authority).
    let authority = PlatformSigner::generate().expect("platform PKI");
    let directory = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, content: String| {
        let path = directory.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    };
    let root_file = file(
        "root.pem",
        x509::pem_string(&authority.root_certificate).expect("pem"),
    );
    let certificate_file = file(
        "signing.pem",
        authority.signer.certificate_pem().expect("pem"),
    );
    let key_file = file(
        "signing-key.pem",
        authority.signer.private_key_pem().expect("pem"),
    );
    let hsm = SoftHsm::start().expect("SoftHSM token");
    let hsm_settings = hsm.settings.clone();
    let adjust: StoreAdjust = Box::new(move |settings| {
        settings.platform.root_certificate_file = root_file;
        settings.platform.signing_certificate_file = certificate_file;
        settings.platform.signing_key_file = key_file;
        settings.platform.generate = false;
        settings.hsm = hsm_settings;
    });
    let (store, pki) =
        with_pki(Store::start_adjusted("sqlite", "", TrustPolicy::Registered, adjust).await).await;

    let initial = list_keys(&store).await;
    assert_eq!(
        initial.root_certificate_pem,
        x509::pem_string(&authority.root_certificate).expect("pem")
    );
    assert_eq!(initial.keys.len(), 1);
    let old = initial.keys[0].clone();
    assert_eq!(old.state(), PlatformSigningKeyState::Active);
    assert!(
        old.key_location.starts_with("file "),
        "{}",
        old.key_location
    );
    let old_key = public_key_of(&old.certificate_pem);
    let before = fresh_copy(&store, &pki, "partner-before").await;
    assert!(before.verify(&old_key).expect("verify"));

    // Key ceremony: a new key in the HSM, certified by the platform root.
    let new_public = hsm
        .generate("platform-2027", KeyAlgorithm::EcP384)
        .expect("generated");
    let new_certificate = PlatformSigner::issue_signing_certificate(
        &authority.root_certificate,
        &authority.root_private_key,
        &new_public,
    )
    .expect("issued");
    let new_pem = x509::pem_string(&new_certificate).expect("pem");
    let add =
        |certificate_pem: &str, key_label: &str, key_file: &str| AddPlatformSigningKeyRequest {
            certificate_pem: certificate_pem.into(),
            key_label: key_label.into(),
            key_file: key_file.into(),
        };

    // Refused: not an admin; not issued by the platform root; a key that is not the
    // certificate's; both or neither key location.
    let partner = store.tokens.token("acme", &["FTM_PROVIDER"]);
    assert_error(
        store
            .client()
            .add_platform_signing_key(with_token(add(&new_pem, "platform-2027", ""), &partner))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    let stranger = PlatformSigner::generate().expect("another PKI");
    let foreign = PlatformSigner::issue_signing_certificate(
        &stranger.root_certificate,
        &stranger.root_private_key,
        &new_public,
    )
    .expect("issued");
    let foreign_pem = x509::pem_string(&foreign).expect("pem");
    hsm.generate("unrelated", KeyAlgorithm::EcP256)
        .expect("generated");
    for (request, field) in [
        (add(&foreign_pem, "platform-2027", ""), "certificate_pem"),
        (add(&new_pem, "unrelated", ""), "key_label"),
        (
            add(&new_pem, "platform-2027", "/some/file.pem"),
            "key_label",
        ),
        (add(&new_pem, "", ""), "key_label"),
        (
            add("not a certificate", "platform-2027", ""),
            "certificate_pem",
        ),
    ] {
        let refused = store
            .client()
            .add_platform_signing_key(with_token(request, &store.admin))
            .await;
        let status = refused.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            pmp_common::error::reason_of(&status).as_deref(),
            Some("PMS_COR_001")
        );
        let violations = tonic_types::StatusExt::get_details_bad_request(&status)
            .expect("the field at fault")
            .field_violations;
        assert_eq!(violations[0].field, field, "{status:?}");
    }

    // Step 1: added and published, but the old key still signs.
    let added = store
        .client()
        .add_platform_signing_key(with_token(add(&new_pem, "platform-2027", ""), &store.admin))
        .await
        .expect("added")
        .into_inner();
    assert_eq!(added.state(), PlatformSigningKeyState::Next);
    assert_eq!(added.key_location, "PKCS#11 label platform-2027");
    assert_error(
        store
            .client()
            .add_platform_signing_key(with_token(add(&new_pem, "platform-2027", ""), &store.admin))
            .await,
        Code::AlreadyExists,
        "KER-PCM-003",
    );
    assert_eq!(
        states(&list_keys(&store).await),
        [
            (old.key_id.clone(), PlatformSigningKeyState::Active),
            (added.key_id.clone(), PlatformSigningKeyState::Next)
        ]
    );
    assert!(
        fresh_copy(&store, &pki, "partner-during")
            .await
            .verify(&old_key)
            .expect("verify")
    );

    // Step 2: activated; new copies are signed in the HSM, the old key stays published.
    let activate = |key_id: &str| ActivatePlatformSigningKeyRequest {
        key_id: key_id.into(),
    };
    let activated = store
        .client()
        .activate_platform_signing_key(with_token(activate(&added.key_id), &store.admin))
        .await
        .expect("activated")
        .into_inner();
    assert_eq!(activated.state(), PlatformSigningKeyState::Active);
    let after = fresh_copy(&store, &pki, "partner-after").await;
    assert!(
        after.verify(&new_public).expect("verify"),
        "signed by the HSM key"
    );
    assert!(
        !after.verify(&old_key).unwrap_or(false),
        "not by the old key"
    );
    assert_eq!(
        after.signature_algorithm().object().nid(),
        openssl::nid::Nid::ECDSA_WITH_SHA384
    );
    let listed = list_keys(&store).await;
    assert_eq!(
        states(&listed),
        [
            (old.key_id.clone(), PlatformSigningKeyState::Previous),
            (added.key_id.clone(), PlatformSigningKeyState::Active)
        ]
    );
    let previous = &listed.keys[0];
    let until = previous
        .published_until
        .expect("published until its copies expire");
    assert!(
        until.seconds >= chrono::Utc::now().timestamp() + 364 * 86_400,
        "the previous key is published for the life of its copies"
    );
    // The copy signed before the rotation still verifies with what is published.
    assert!(
        before
            .verify(&public_key_of(&previous.certificate_pem))
            .expect("verify")
    );

    // Idempotent; unknown keys are not found.
    let again = store
        .client()
        .activate_platform_signing_key(with_token(activate(&added.key_id), &store.admin))
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(again.activated_at, activated.activated_at);
    assert_error(
        store
            .client()
            .activate_platform_signing_key(with_token(activate("no-such-key"), &store.admin))
            .await,
        Code::NotFound,
        "KER-PCM-012",
    );

    // The CRL is signed in the HSM too, and lists the revoked copies the HSM key issued.
    let revoked = store
        .upload_partner("partner-revoked", ORG, &pem(&leaf(&pki, ORG)))
        .await
        .expect("uploaded");
    let request = RevokeCertificateRequest {
        certificate_id: revoked.certificate_id.clone(),
        reason: RevocationReason::KeyCompromise.into(),
        comment: String::new(),
    };
    store
        .client()
        .revoke_certificate(with_token(request, &store.admin))
        .await
        .expect("revoked");
    let crl = store
        .client()
        .get_crl(with_token(
            GetCrlRequest {
                partner_domain: "FTM".into(),
            },
            &store.admin,
        ))
        .await
        .expect("CRL")
        .into_inner();
    let crl = openssl::x509::X509Crl::from_der(&crl.crl).expect("DER CRL");
    assert!(
        crl.verify(&new_public).expect("verify"),
        "signed by the HSM key"
    );
    let copy = openssl::x509::X509::from_pem(revoked.platform_signed_certificate_pem.as_bytes())
        .expect("copy");
    let listed: Vec<_> = crl
        .get_revoked()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| entry.serial_number().to_bn().expect("serial"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, [copy.serial_number().to_bn().expect("serial")]);
}
