//! The authorization matrix: every RPC of the three services, called with every kind of
//! credential a client or an attacker can present, against a real in-process platform on
//! SQLite and on PostgreSQL. Each cell's exact outcome (gRPC code and `ErrorInfo` reason)
//! is written in [`EXPECTED`]; a mismatch prints the whole observed table.
//!
//! Every call that gets past authorization is chosen so that its outcome does not depend
//! on the order of the cells: reads, idempotent writes (re-uploading the same certificate,
//! re-activating an active partner), writes that create something new (a new partner, a new
//! FTM), and state transitions refused by the FTM's state (approving an approved FTM). The
//! test ends by checking that no refused call changed anything.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use tonic::{Code, Request, Status};

use pmp_common::auth::testing::{generate_ec_key_pem, untrusted_signer};
use pmp_common::auth::user_tokens::{Claims, TokenIssuer};
use pmp_common::auth::{
    CERTIFICATE_STORE, FORWARDED_USER_HEADER, FTM_MANAGEMENT, PARTNER_REGISTRY,
};
use pmp_common::db::testing::backends;
use pmp_common::error::reason_of;
use pmp_dev_certs::{CertificateSpec, Issued, KeySpec};
use pmp_e2e::inprocess::{InProcessPlatform, Options, PARTNER_PASSWORD};
use pmp_proto::certstore::v1 as store;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as partner;

/// What each caller gets from each RPC. Columns:
///
/// - `anon`: no credentials; `junk`: `Bearer not-a-jwt`;
/// - `exp`, `nbf`: the registry's key, expired ten minutes ago / valid only in ten minutes;
/// - `aud`, `iss`: the registry's key, another audience / issuer;
/// - `key`: right claims, a key nobody published;
/// - `hsvc`, `hadm`: HS256 with an old shared secret, as the first version's service token
///   (`sub` = `service:ftm-management`) and as an admin user token;
/// - `own`, `othr`, `adm`: the owner (alice, an FTM provider), another FTM provider (bob) on
///   alice's resources, the bootstrap admin — all with tokens from `Login`;
/// - `reg`, `reg+`, `sto`, `ftm`: the platform services with their own keys (`reg+`
///   forwards alice's token);
/// - `imp`: a token claiming to be FTM management, signed with a key nobody trusts;
/// - `saud`: FTM management's real key, but a token minted for another service.
///
/// Outcomes: `ok`; `401` = `UNAUTHENTICATED` `KER-ATH-401`; `403` = `PERMISSION_DENIED`
/// `KER-ATH-403`; the others are named in [`LEGEND`].
const EXPECTED: &str = "
rpc                                   anon junk exp  nbf  aud  iss  key  hsvc hadm own  othr adm  reg  reg+ sto  ftm  imp  saud
PartnerRegistry/RegisterPartner       ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PartnerRegistry/Login                 ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PartnerRegistry/GetTokenVerificationKeys ok ok  ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PartnerRegistry/GetPartner            401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  ok   401  401
PartnerRegistry/ListPartners          401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
PartnerRegistry/UploadPartnerCertificate 401 401 401 401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
PartnerRegistry/GetPartnerCertificate 401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
PartnerRegistry/SetPartnerActive      401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
PartnerRegistry/AddTokenSigningKey    401  401  401  401  401  401  401  401  401  403  403  inv  403  403  403  403  401  401
PartnerRegistry/ActivateTokenSigningKey 401 401 401  401  401  401  401  401  401  403  403  nkey 403  403  403  403  401  401
PartnerRegistry/ListTokenSigningKeys  401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
PartnerRegistry/WatchPartnerEvents    401  401  401  401  401  401  401  401  401  403  403  ok   403  403  ok   ok   401  401
CertificateStore/UploadCaCertificate  401  401  401  401  401  401  401  401  401  403  403  dup  403  403  403  403  401  401
CertificateStore/ListCaCertificates   401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
CertificateStore/GetCaCertificate     401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
CertificateStore/GetCaTrustPath       401  401  401  401  401  401  401  401  401  403  403  ok   403  403  403  403  401  401
CertificateStore/UploadPartnerCertificate 401 401 401 401 401  401  401  401  401  403  403  403  ok   ok   403  403  401  401
CertificateStore/GetPartnerCertificate 401 401  401  401  401  401  401  401  401  403  403  ok   ok   ok   403  ok   401  401
CertificateStore/SetCertificateTrusted 401 401  401  401  401  401  401  401  401  403  403  403  ok   ok   403  403  401  401
CertificateStore/SetPartnerDeactivated 401 401  401  401  401  401  401  401  401  403  403  403  ok   ok   403  403  401  401
CertificateStore/VerifyCertificateTrust 401 401 401  401  401  401  401  401  401  ok   ok   ok   ok   ok   403  ok   401  401
CertificateStore/AddPlatformSigningKey 401 401  401  401  401  401  401  401  401  403  403  inv  403  403  403  403  401  401
CertificateStore/ActivatePlatformSigningKey 401 401 401 401 401 401  401  401  401  403  403  ncrt 403  403  403  403  401  401
CertificateStore/ListPlatformSigningKeys 401 401 401 401  401  401  401  401  401  ok   ok   ok   403  403  403  403  401  401
CertificateStore/WatchTrustChanges    401  401  401  401  401  401  401  401  401  403  403  ok   ok   ok   403  ok   401  401
CertificateStore/RevokeCertificate    401  401  401  401  401  401  401  401  401  403  403  ncrt 403  403  403  403  401  401
CertificateStore/GetCrl               401  401  401  401  401  401  401  401  401  ok   ok   ok   ok   ok   403  ok   401  401
CertificateStore/ListExpiringCertificates 401 401 401 401 401  401  401  401  401  403  403  ok   403  403  403  403  401  401
FtmManagement/CreateFtm               401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
FtmManagement/UploadFtmCertificate    401  401  401  401  401  401  401  401  401  pend 403  pend 403  403  403  403  401  401
FtmManagement/ApproveFtm              401  401  401  401  401  401  401  401  401  403  403  appr 403  403  403  403  401  401
FtmManagement/RejectFtm               401  401  401  401  401  401  401  401  401  403  403  appr 403  403  403  403  401  401
FtmManagement/DeactivateFtm           401  401  401  401  401  401  401  401  401  rejd 403  rejd 403  403  403  403  401  401
FtmManagement/GetFtm                  401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
FtmManagement/ListFtms                401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
FtmManagement/GetFtmCertificate       401  401  401  401  401  401  401  401  401  ok   403  ok   403  403  403  403  401  401
FtmManagement/WatchFtmEvents          401  401  401  401  401  401  401  401  401  403  403  ok   ok   ok   ok   403  401  401
";

/// Outcomes other than `ok`: label → (code, reason).
const LEGEND: [(&str, Code, &str); 9] = [
    ("401", Code::Unauthenticated, "KER-ATH-401"),
    ("403", Code::PermissionDenied, "KER-ATH-403"),
    // Re-uploading the root CA: the duplicate is reported after authorization.
    ("dup", Code::AlreadyExists, "KER-PCM-003"),
    // Uploading a chip certificate to an FTM already PENDING_APPROVAL.
    ("pend", Code::FailedPrecondition, "PMP_AUT_038"),
    // Approving or rejecting an APPROVED FTM.
    ("appr", Code::FailedPrecondition, "PMS_FTM_ERROR_012"),
    // Deactivating a REJECTED FTM.
    ("rejd", Code::FailedPrecondition, "PMS_FTM_ERROR_010"),
    // Adding a signing key without saying where it is (checked after authorization).
    ("inv", Code::InvalidArgument, "PMS_COR_001"),
    // Activating a token signing key nobody added.
    ("nkey", Code::NotFound, "PMS_KEY_NOT_FOUND"),
    // Activating a platform signing key nobody added.
    ("ncrt", Code::NotFound, "KER-PCM-012"),
];

/// One way of presenting credentials (a column of [`EXPECTED`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Anonymous,
    Junk,
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    UnknownKey,
    SharedSecretService,
    SharedSecretAdmin,
    Owner,
    OtherPartner,
    Admin,
    Registry,
    RegistryForOwner,
    Store,
    Ftm,
    Impostor,
    ServiceWrongAudience,
}

const COLUMNS: [(Column, &str); 18] = [
    (Column::Anonymous, "anon"),
    (Column::Junk, "junk"),
    (Column::Expired, "exp"),
    (Column::NotYetValid, "nbf"),
    (Column::WrongAudience, "aud"),
    (Column::WrongIssuer, "iss"),
    (Column::UnknownKey, "key"),
    (Column::SharedSecretService, "hsvc"),
    (Column::SharedSecretAdmin, "hadm"),
    (Column::Owner, "own"),
    (Column::OtherPartner, "othr"),
    (Column::Admin, "adm"),
    (Column::Registry, "reg"),
    (Column::RegistryForOwner, "reg+"),
    (Column::Store, "sto"),
    (Column::Ftm, "ftm"),
    (Column::Impostor, "imp"),
    (Column::ServiceWrongAudience, "saud"),
];

/// The metadata a call carries.
#[derive(Default)]
struct Credentials {
    authorization: Option<String>,
    forwarded: Option<String>,
}

impl Credentials {
    fn bearer(token: String) -> Self {
        Credentials {
            authorization: Some(format!("Bearer {token}")),
            forwarded: None,
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let headers = [
            ("authorization", &self.authorization),
            (FORWARDED_USER_HEADER, &self.forwarded),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request
                    .metadata_mut()
                    .insert(name, value.parse().expect("ASCII metadata"));
            }
        }
        request
    }
}

/// The platform, with the resources every cell acts on (all alice's).
struct Fixture {
    platform: InProcessPlatform,
    /// Signs user tokens with the registry's own key (as `Login` does), any claims.
    registry_key: TokenIssuer,
    issuer: String,
    audience: String,
    owner_token: String,
    other_token: String,
    admin_token: String,
    root_pem: String,
    root_id: String,
    owner_certificate_pem: String,
    owner_certificate_id: String,
    chip_pem: String,
    /// FTMs of alice: one PENDING_APPROVAL, one APPROVED, one REJECTED.
    pending_ftm: String,
    approved_ftm: String,
    rejected_ftm: String,
}

const OWNER: &str = "alice";
const OWNER_ORGANISATION: &str = "Alice Chips";
const OTHER: &str = "bob";
const OLD_SHARED_SECRET: &[u8] = b"test-service-secret-0123456789abcdef";

impl Fixture {
    async fn new(backend: &'static str) -> Fixture {
        let platform = InProcessPlatform::start(Options::on(backend))
            .await
            .expect("platform");
        let admin_token = platform.admin().await;
        let root = CertificateSpec::ca("Matrix Root")
            .organisation("Matrix PKI")
            .key(KeySpec::EcP256)
            .valid_for_days(3650)
            .self_signed()
            .expect("root");
        let root_pem = root.pem().expect("pem");
        let uploaded = platform
            .upload_ca(&admin_token, &root_pem, "FTM")
            .await
            .expect("root CA");
        let root_id = uploaded.results[0].certificate_id.clone();
        let owner_token = platform
            .register(OWNER, "FTM_Provider", OWNER_ORGANISATION)
            .await;
        let other_token = platform.register(OTHER, "FTM_Provider", "Bob Chips").await;
        let owner_certificate_pem = leaf(&root, "alice", OWNER_ORGANISATION);
        let accepted = platform
            .upload_partner_certificate(&owner_token, OWNER, &owner_certificate_pem)
            .await
            .expect("alice's certificate");
        let other_certificate = leaf(&root, "bob", "Bob Chips");
        platform
            .upload_partner_certificate(&other_token, OTHER, &other_certificate)
            .await
            .expect("bob's certificate");
        // Tokens issued before activation carry no partner-type role: log in again.
        let owner_token = platform
            .login(OWNER, PARTNER_PASSWORD)
            .await
            .expect("login");
        let other_token = platform
            .login(OTHER, PARTNER_PASSWORD)
            .await
            .expect("login");

        let chip_pem = leaf(&root, "chip-pending", OWNER_ORGANISATION);
        let pending_ftm = ftm_with_chip(&platform, &owner_token, "pending", &chip_pem).await;
        let approved_chip = leaf(&root, "chip-approved", OWNER_ORGANISATION);
        let approved_ftm = ftm_with_chip(&platform, &owner_token, "approved", &approved_chip).await;
        platform
            .approve(&admin_token, &approved_ftm)
            .await
            .expect("approve");
        let rejected_chip = leaf(&root, "chip-rejected", OWNER_ORGANISATION);
        let rejected_ftm = ftm_with_chip(&platform, &owner_token, "rejected", &rejected_chip).await;
        platform
            .reject(&admin_token, &rejected_ftm)
            .await
            .expect("reject");

        let published = platform
            .registry()
            .get_token_verification_keys(partner::GetTokenVerificationKeysRequest::default())
            .await
            .expect("keys")
            .into_inner();
        let key_pem =
            std::fs::read_to_string(platform.directory.path().join("token-signing-key.pem"))
                .expect("registry key");
        let registry_key = TokenIssuer::new(
            &key_pem,
            &[],
            &published.issuer,
            &published.audience,
            Duration::from_secs(600),
        )
        .expect("issuer");
        Fixture {
            platform,
            registry_key,
            issuer: published.issuer,
            audience: published.audience,
            owner_token,
            other_token,
            admin_token,
            root_pem,
            root_id,
            owner_certificate_id: accepted.certificate_id,
            owner_certificate_pem,
            chip_pem,
            pending_ftm,
            approved_ftm,
            rejected_ftm,
        }
    }

    /// Admin claims from the registry's issuer, shifted by the given offsets.
    fn admin_claims(&self, issued_offset: i64, expires_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "admin".into(),
            preferred_username: Some("admin".into()),
            roles: vec!["PARTNER_ADMIN".into()],
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: (now + issued_offset) as u64,
            nbf: Some((now + issued_offset) as u64),
            exp: (now + expires_offset) as u64,
            ..Claims::default()
        }
    }

    /// An admin token signed with the registry's key, `change` applied to its claims.
    fn forged(&self, issued_offset: i64, expires_offset: i64, change: fn(&mut Claims)) -> String {
        let mut claims = self.admin_claims(issued_offset, expires_offset);
        change(&mut claims);
        self.registry_key.sign(&claims).expect("token")
    }

    /// What `column` presents to service `callee`.
    fn credentials(&self, column: Column, callee: &str) -> Credentials {
        let platform = &self.platform;
        let service = |name: &str, audience: &str| {
            let signer = platform.service_keys.signer(name);
            Credentials::bearer(signer.token_for(audience).expect("service token"))
        };
        match column {
            Column::Anonymous => Credentials::default(),
            Column::Junk => Credentials::bearer("not-a-jwt".into()),
            Column::Expired => Credentials::bearer(self.forged(-1200, -600, |_| {})),
            Column::NotYetValid => Credentials::bearer(self.forged(600, 1200, |_| {})),
            Column::WrongAudience => Credentials::bearer(
                self.forged(0, 600, |claims| claims.aud = "some-other-audience".into()),
            ),
            Column::WrongIssuer => Credentials::bearer(self.forged(0, 600, |claims| {
                claims.iss = "https://attacker.example/realms/pmp".into()
            })),
            Column::UnknownKey => {
                let (private, _) = generate_ec_key_pem();
                let stranger = TokenIssuer::new(
                    &private,
                    &[],
                    &self.issuer,
                    &self.audience,
                    Duration::from_secs(600),
                )
                .expect("issuer");
                Credentials::bearer(stranger.sign(&self.admin_claims(0, 600)).expect("token"))
            }
            Column::SharedSecretService => Credentials::bearer(hs256(&serde_json::json!({
                "sub": "service:ftm-management",
                "roles": ["PMS_SERVICE"],
                "iss": "pms-internal",
                "aud": "pms-internal",
                "iat": chrono::Utc::now().timestamp(),
                "exp": chrono::Utc::now().timestamp() + 120,
            }))),
            Column::SharedSecretAdmin => Credentials::bearer(hs256(
                &serde_json::to_value(self.admin_claims(0, 600)).expect("claims"),
            )),
            Column::Owner => Credentials::bearer(self.owner_token.clone()),
            Column::OtherPartner => Credentials::bearer(self.other_token.clone()),
            Column::Admin => Credentials::bearer(self.admin_token.clone()),
            Column::Registry => service(PARTNER_REGISTRY, callee),
            Column::RegistryForOwner => Credentials {
                forwarded: Some(self.owner_token.clone()),
                ..service(PARTNER_REGISTRY, callee)
            },
            Column::Store => service(CERTIFICATE_STORE, callee),
            Column::Ftm => service(FTM_MANAGEMENT, callee),
            Column::Impostor => Credentials::bearer(
                untrusted_signer(FTM_MANAGEMENT)
                    .token_for(callee)
                    .expect("token"),
            ),
            Column::ServiceWrongAudience => {
                let elsewhere = if callee == PARTNER_REGISTRY {
                    CERTIFICATE_STORE
                } else {
                    PARTNER_REGISTRY
                };
                service(FTM_MANAGEMENT, elsewhere)
            }
        }
    }

    /// Calls `rpc` as `column`; `cell` makes names unique where the call creates something.
    async fn call(&self, rpc: &str, column: Column, cell: &str) -> Result<(), Status> {
        let (service, method) = rpc.split_once('/').expect("service/method");
        match service {
            "PartnerRegistry" => {
                let credentials = self.credentials(column, PARTNER_REGISTRY);
                self.call_registry(method, &credentials, cell).await
            }
            "CertificateStore" => {
                let credentials = self.credentials(column, CERTIFICATE_STORE);
                self.call_store(method, &credentials).await
            }
            "FtmManagement" => {
                let credentials = self.credentials(column, FTM_MANAGEMENT);
                self.call_ftm(method, &credentials, cell).await
            }
            other => panic!("unknown service {other}"),
        }
    }

    async fn call_registry(
        &self,
        method: &str,
        credentials: &Credentials,
        cell: &str,
    ) -> Result<(), Status> {
        let mut client = self.platform.registry();
        let owner = || OWNER.to_owned();
        match method {
            "RegisterPartner" => client
                .register_partner(credentials.request(registration(cell)))
                .await
                .map(drop),
            "Login" => client
                .login(credentials.request(partner::LoginRequest {
                    username: OWNER.into(),
                    password: PARTNER_PASSWORD.into(),
                }))
                .await
                .map(drop),
            "GetTokenVerificationKeys" => client
                .get_token_verification_keys(
                    credentials.request(partner::GetTokenVerificationKeysRequest::default()),
                )
                .await
                .map(drop),
            "GetPartner" => client
                .get_partner(credentials.request(partner::GetPartnerRequest {
                    partner_id: owner(),
                }))
                .await
                .map(drop),
            "ListPartners" => client
                .list_partners(credentials.request(partner::ListPartnersRequest::default()))
                .await
                .map(drop),
            "UploadPartnerCertificate" => client
                .upload_partner_certificate(credentials.request(
                    partner::UploadPartnerCertificateRequest {
                        partner_id: owner(),
                        certificate_data: self.owner_certificate_pem.clone(),
                        partner_domain: "FTM".into(),
                    },
                ))
                .await
                .map(drop),
            "GetPartnerCertificate" => client
                .get_partner_certificate(credentials.request(
                    partner::GetPartnerCertificateRequest {
                        partner_id: owner(),
                    },
                ))
                .await
                .map(drop),
            "SetPartnerActive" => client
                .set_partner_active(credentials.request(partner::SetPartnerActiveRequest {
                    partner_id: owner(),
                    active: true,
                }))
                .await
                .map(drop),
            "AddTokenSigningKey" => client
                .add_token_signing_key(
                    credentials.request(partner::AddTokenSigningKeyRequest::default()),
                )
                .await
                .map(drop),
            "ActivateTokenSigningKey" => client
                .activate_token_signing_key(credentials.request(
                    partner::ActivateTokenSigningKeyRequest {
                        key_id: "no-such-key".into(),
                    },
                ))
                .await
                .map(drop),
            "ListTokenSigningKeys" => client
                .list_token_signing_keys(
                    credentials.request(partner::ListTokenSigningKeysRequest::default()),
                )
                .await
                .map(drop),
            "WatchPartnerEvents" => client
                .watch_partner_events(
                    credentials.request(partner::WatchPartnerEventsRequest { from_version: 0 }),
                )
                .await
                .map(drop),
            other => panic!("no such registry RPC {other}"),
        }
    }

    async fn call_store(&self, method: &str, credentials: &Credentials) -> Result<(), Status> {
        let mut client = self.platform.store();
        let certificate_id = || self.owner_certificate_id.clone();
        match method {
            "UploadCaCertificate" => client
                .upload_ca_certificate(credentials.request(store::UploadCaCertificateRequest {
                    certificate_data: self.root_pem.clone(),
                    partner_domain: "FTM".into(),
                }))
                .await
                .map(drop),
            "ListCaCertificates" => client
                .list_ca_certificates(
                    credentials.request(store::ListCaCertificatesRequest::default()),
                )
                .await
                .map(drop),
            "GetCaCertificate" => client
                .get_ca_certificate(credentials.request(store::GetCaCertificateRequest {
                    certificate_id: self.root_id.clone(),
                }))
                .await
                .map(drop),
            "GetCaTrustPath" => client
                .get_ca_trust_path(credentials.request(store::GetCaTrustPathRequest {
                    certificate_id: self.root_id.clone(),
                }))
                .await
                .map(drop),
            "UploadPartnerCertificate" => client
                .upload_partner_certificate(credentials.request(
                    store::UploadPartnerCertificateRequest {
                        owner_id: OWNER.into(),
                        organization_name: OWNER_ORGANISATION.into(),
                        certificate_data: self.owner_certificate_pem.clone(),
                        partner_domain: "FTM".into(),
                        owner_type: store::OwnerType::Partner as i32,
                        partner_id: OWNER.into(),
                    },
                ))
                .await
                .map(drop),
            "GetPartnerCertificate" => client
                .get_partner_certificate(credentials.request(store::GetPartnerCertificateRequest {
                    certificate_id: certificate_id(),
                }))
                .await
                .map(drop),
            "SetCertificateTrusted" => client
                .set_certificate_trusted(credentials.request(store::SetCertificateTrustedRequest {
                    certificate_id: certificate_id(),
                    trusted: true,
                    partner_id: OWNER.into(),
                }))
                .await
                .map(drop),
            "SetPartnerDeactivated" => client
                .set_partner_deactivated(credentials.request(store::SetPartnerDeactivatedRequest {
                    partner_id: OWNER.into(),
                    deactivated: false,
                }))
                .await
                .map(drop),
            "VerifyCertificateTrust" => client
                .verify_certificate_trust(credentials.request(
                    store::VerifyCertificateTrustRequest {
                        certificate_data: self.owner_certificate_pem.clone(),
                        partner_domain: "FTM".into(),
                    },
                ))
                .await
                .map(drop),
            "AddPlatformSigningKey" => client
                .add_platform_signing_key(
                    credentials.request(store::AddPlatformSigningKeyRequest::default()),
                )
                .await
                .map(drop),
            "ActivatePlatformSigningKey" => client
                .activate_platform_signing_key(credentials.request(
                    store::ActivatePlatformSigningKeyRequest {
                        key_id: "no-such-key".into(),
                    },
                ))
                .await
                .map(drop),
            "ListPlatformSigningKeys" => client
                .list_platform_signing_keys(
                    credentials.request(store::ListPlatformSigningKeysRequest::default()),
                )
                .await
                .map(drop),
            "WatchTrustChanges" => client
                .watch_trust_changes(credentials.request(store::WatchTrustChangesRequest {
                    partner_domains: vec!["FTM".into()],
                    from_version: 0,
                }))
                .await
                .map(drop),
            "RevokeCertificate" => client
                .revoke_certificate(credentials.request(store::RevokeCertificateRequest {
                    certificate_id: "no-such-certificate".into(),
                    reason: store::RevocationReason::KeyCompromise.into(),
                    comment: String::new(),
                }))
                .await
                .map(drop),
            "GetCrl" => client
                .get_crl(credentials.request(store::GetCrlRequest {
                    partner_domain: "FTM".into(),
                }))
                .await
                .map(drop),
            "ListExpiringCertificates" => client
                .list_expiring_certificates(credentials.request(
                    store::ListExpiringCertificatesRequest {
                        within: Some(prost_types::Duration {
                            seconds: 30 * 86_400,
                            nanos: 0,
                        }),
                        ..Default::default()
                    },
                ))
                .await
                .map(drop),
            other => panic!("no such store RPC {other}"),
        }
    }

    async fn call_ftm(
        &self,
        method: &str,
        credentials: &Credentials,
        cell: &str,
    ) -> Result<(), Status> {
        let mut client = self.platform.ftm();
        match method {
            "CreateFtm" => client
                .create_ftm(credentials.request(ftm::CreateFtmRequest {
                    partner_id: OWNER.into(),
                    make: "Matrix".into(),
                    model: cell.into(),
                }))
                .await
                .map(drop),
            "UploadFtmCertificate" => client
                .upload_ftm_certificate(credentials.request(ftm::UploadFtmCertificateRequest {
                    ftm_id: self.pending_ftm.clone(),
                    certificate_data: self.chip_pem.clone(),
                }))
                .await
                .map(drop),
            "ApproveFtm" => client
                .approve_ftm(credentials.request(ftm::ApproveFtmRequest {
                    ftm_id: self.approved_ftm.clone(),
                }))
                .await
                .map(drop),
            "RejectFtm" => client
                .reject_ftm(credentials.request(ftm::RejectFtmRequest {
                    ftm_id: self.approved_ftm.clone(),
                    reason: "matrix".into(),
                }))
                .await
                .map(drop),
            "DeactivateFtm" => client
                .deactivate_ftm(credentials.request(ftm::DeactivateFtmRequest {
                    ftm_id: self.rejected_ftm.clone(),
                }))
                .await
                .map(drop),
            "GetFtm" => client
                .get_ftm(credentials.request(ftm::GetFtmRequest {
                    ftm_id: self.approved_ftm.clone(),
                }))
                .await
                .map(drop),
            "ListFtms" => client
                .list_ftms(credentials.request(ftm::ListFtmsRequest {
                    partner_id: OWNER.into(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            "GetFtmCertificate" => client
                .get_ftm_certificate(credentials.request(ftm::GetFtmCertificateRequest {
                    ftm_id: self.approved_ftm.clone(),
                }))
                .await
                .map(drop),
            "WatchFtmEvents" => client
                .watch_ftm_events(
                    credentials.request(ftm::WatchFtmEventsRequest { from_version: 0 }),
                )
                .await
                .map(drop),
            other => panic!("no such FTM management RPC {other}"),
        }
    }

    /// The state every refused call must have left alone.
    async fn snapshot(&self) -> String {
        let admin = Credentials::bearer(self.admin_token.clone());
        let partner = self
            .platform
            .registry()
            .get_partner(admin.request(partner::GetPartnerRequest {
                partner_id: OWNER.into(),
            }))
            .await
            .expect("alice")
            .into_inner();
        let mut states = vec![format!(
            "alice {:?} {}",
            partner.status(),
            partner.certificate_id
        )];
        for ftm_id in [&self.pending_ftm, &self.approved_ftm, &self.rejected_ftm] {
            let found = self
                .platform
                .ftm()
                .get_ftm(admin.request(ftm::GetFtmRequest {
                    ftm_id: ftm_id.clone(),
                }))
                .await
                .expect("FTM")
                .into_inner();
            states.push(format!("{} {:?}", found.model, found.status()));
        }
        let trusted = self.platform.trusted(&self.owner_certificate_pem).await;
        states.push(format!("alice's certificate trusted: {trusted}"));
        states.join("\n")
    }
}

/// A PEM end-entity certificate of `organisation` issued by `root`.
fn leaf(root: &Issued, name: &str, organisation: &str) -> String {
    CertificateSpec::leaf(name)
        .organisation(organisation)
        .key(KeySpec::EcP256)
        .issued_by(root)
        .expect("leaf")
        .pem()
        .expect("pem")
}

/// An FTM of alice (model `model`) with chip certificate `chip_pem` uploaded.
async fn ftm_with_chip(
    platform: &InProcessPlatform,
    token: &str,
    model: &str,
    chip_pem: &str,
) -> String {
    let created = platform.create_ftm(token, OWNER, model).await.expect("FTM");
    platform
        .upload_chip(token, &created.ftm_id, chip_pem)
        .await
        .expect("chip certificate");
    created.ftm_id
}

/// A registration of a new FTM provider whose id is derived from `cell`.
fn registration(cell: &str) -> partner::RegisterPartnerRequest {
    partner::RegisterPartnerRequest {
        partner_id: format!("m-{cell}"),
        password: PARTNER_PASSWORD.into(),
        first_name: "Matrix".into(),
        last_name: "Cell".into(),
        organization_name: "Matrix Org".into(),
        partner_type: "FTM_Provider".into(),
        address: "1 Grid Road".into(),
        email: format!("{cell}@example.org"),
        phone: "+1 555 0101".into(),
        lang_code: String::new(),
    }
}

/// A JWT signed with HS256 and [`OLD_SHARED_SECRET`].
fn hs256(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let key = PKey::hmac(OLD_SHARED_SECRET).expect("HMAC key");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("signer");
    signer.update(signing_input.as_bytes()).expect("sign");
    let signature = URL_SAFE_NO_PAD.encode(signer.sign_to_vec().expect("sign"));
    format!("{signing_input}.{signature}")
}

/// The table's label for an outcome.
fn label(outcome: &Result<(), Status>) -> String {
    let Err(status) = outcome else {
        return "ok".into();
    };
    let reason = reason_of(status).unwrap_or_default();
    LEGEND
        .iter()
        .find(|(_, code, expected)| status.code() == *code && reason == *expected)
        .map(|(label, _, _)| (*label).to_owned())
        .unwrap_or_else(|| format!("{:?}:{reason}", status.code()))
}

/// The expected table: RPC → labels in column order.
fn expected_table() -> BTreeMap<String, Vec<String>> {
    let mut lines = EXPECTED.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let names: Vec<&str> = COLUMNS.iter().map(|(_, name)| *name).collect();
    assert_eq!(header[1..], names[..], "EXPECTED's header names COLUMNS");
    lines
        .map(|line| {
            let mut words = line.split_whitespace();
            let rpc = words.next().expect("rpc").to_owned();
            let cells: Vec<String> = words.map(str::to_owned).collect();
            assert_eq!(cells.len(), COLUMNS.len(), "{rpc} needs a cell per column");
            (rpc, cells)
        })
        .collect()
}

/// `table` as text, cells that differ from `reference` marked with `!`.
fn render(
    table: &BTreeMap<String, Vec<String>>,
    reference: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut text = String::new();
    for (rpc, cells) in table {
        text.push_str(&format!("{rpc:<42}"));
        for (index, cell) in cells.iter().enumerate() {
            let same = reference.get(rpc).and_then(|row| row.get(index)) == Some(cell);
            let mark = if same { "" } else { "!" };
            text.push_str(&format!(" {:<6}", format!("{cell}{mark}")));
        }
        text.push('\n');
    }
    text
}

/// Every RPC of the three services appears in the table, and nothing else.
#[test]
fn the_table_names_every_rpc_of_the_three_services() {
    let descriptors = ["PartnerRegistry", "CertificateStore", "FtmManagement"];
    let mut declared: Vec<String> = Vec::new();
    for service in descriptors {
        declared.extend(
            methods_of(pmp_proto::FILE_DESCRIPTOR_SET, service)
                .into_iter()
                .map(|method| format!("{service}/{method}")),
        );
    }
    declared.sort();
    let tested: Vec<String> = expected_table().into_keys().collect();
    assert_eq!(tested, declared);
}

fn methods_of(descriptor_set: &[u8], service: &str) -> Vec<String> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(descriptor_set).expect("descriptor set");
    set.file
        .iter()
        .flat_map(|file| file.service.iter())
        .filter(|declared| declared.name() == service)
        .flat_map(|declared| {
            declared
                .method
                .iter()
                .map(|method| method.name().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_caller_as_the_table_says() {
    for backend in backends() {
        let fixture = Fixture::new(backend).await;
        let before = fixture.snapshot().await;
        let expected = expected_table();
        let mut observed = BTreeMap::new();
        for rpc in expected.keys() {
            let mut cells = Vec::new();
            for (column, name) in COLUMNS {
                let outcome = fixture
                    .call(rpc, column, &format!("{name}-{}", cells.len()))
                    .await;
                cells.push(label(&outcome));
            }
            observed.insert(rpc.clone(), cells);
        }
        assert!(
            observed == expected,
            "{backend}: the observed matrix differs from EXPECTED.\nobserved:\n{}\nexpected:\n{}",
            render(&observed, &expected),
            render(&expected, &observed)
        );
        assert_eq!(
            fixture.snapshot().await,
            before,
            "{backend}: a call changed alice's records"
        );
    }
}
