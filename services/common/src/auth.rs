//! Authentication: bearer-token verification for end users and platform services, the
//! caller identity handed to handlers, and minting of tokens.
//!
//! End users present JWTs issued by the partner registry (`Login`) or, in production, by an
//! OpenID Connect issuer such as Keycloak; both are verified locally with public keys, so no
//! service calls the registry per request. Roles come from the `roles` claim and from
//! Keycloak's `realm_access.roles`; the partner id is `preferred_username`, else `sub`.
//!
//! Platform services call each other with a short-lived service token signed with a secret
//! shared by the platform's services (a Kubernetes Secret in production), and forward the end
//! user's own token in [`FORWARDED_USER_HEADER`] so that the receiving service can audit and,
//! where the contract says so, authorise the user as well.

use std::collections::HashSet;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::error;

/// Role of platform administrators.
pub const ROLE_PARTNER_ADMIN: &str = "PARTNER_ADMIN";
/// Role carried by service tokens.
pub const ROLE_SERVICE: &str = "PMS_SERVICE";
/// Metadata key carrying the end user's bearer token on service-to-service calls.
pub const FORWARDED_USER_HEADER: &str = "x-pms-user-token";
/// Issuer and audience of service tokens.
const SERVICE_TOKEN_ISSUER: &str = "pms-internal";
/// Lifetime of a minted service token.
const SERVICE_TOKEN_LIFETIME: Duration = Duration::from_secs(120);

/// An authenticated end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The partner id (`preferred_username`, else `sub`).
    pub partner_id: String,
    /// Upper-case role names.
    pub roles: Vec<String>,
    /// The raw bearer token, forwarded on calls to other platform services.
    pub token: String,
}

impl User {
    /// Whether the user holds `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| held.eq_ignore_ascii_case(role))
    }

    /// Whether the user is a platform administrator.
    pub fn is_admin(&self) -> bool {
        self.has_role(ROLE_PARTNER_ADMIN)
    }

    /// Ownership rule of the contract: admins may act on any partner, others on their own.
    pub fn may_act_for(&self, partner_id: &str) -> bool {
        self.is_admin() || self.partner_id == partner_id
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user with their own token.
    User(User),
    /// A platform service, possibly acting for an end user.
    Service {
        /// The calling service's name, e.g. `ftm-management`.
        name: String,
        /// The end user on whose behalf the service calls, when it forwarded one.
        on_behalf_of: Option<User>,
    },
}

impl Caller {
    /// A short name for audit records: the partner id, or `service:<name>[/<partner id>]`.
    pub fn actor(&self) -> String {
        match self {
            Caller::User(user) => user.partner_id.clone(),
            Caller::Service {
                name,
                on_behalf_of: Some(user),
            } => {
                format!("{}@service:{name}", user.partner_id)
            }
            Caller::Service {
                name,
                on_behalf_of: None,
            } => format!("service:{name}"),
        }
    }

    /// The end user, if the caller is one or acts for one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::User(user) => Some(user),
            Caller::Service { on_behalf_of, .. } => on_behalf_of.as_ref(),
        }
    }

    /// Whether the caller is a platform service.
    pub fn is_service(&self) -> bool {
        matches!(self, Caller::Service { .. })
    }

    /// Admin-only RPCs: an end user holding `PARTNER_ADMIN`.
    pub fn require_admin(&self) -> Result<(), Status> {
        match self {
            Caller::User(user) if user.is_admin() => Ok(()),
            _ => Err(error::permission_denied()),
        }
    }

    /// Owner-or-admin RPCs. A platform service has already authorised its own caller, so it
    /// may read and act on any partner's records.
    pub fn require_owner_or_admin(&self, partner_id: &str) -> Result<(), Status> {
        match self {
            Caller::User(user) if user.may_act_for(partner_id) => Ok(()),
            Caller::Service { .. } => Ok(()),
            _ => Err(error::permission_denied()),
        }
    }

    /// Internal RPCs that only platform services may call.
    pub fn require_service(&self) -> Result<(), Status> {
        if self.is_service() {
            Ok(())
        } else {
            Err(error::permission_denied())
        }
    }
}

/// Outcome of looking at a request's credentials; stored in the request extensions.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No `authorization` metadata.
    Anonymous,
    /// Valid credentials.
    Authenticated(Caller),
    /// Credentials were present but not acceptable (the reason goes to the log only).
    Rejected(String),
}

/// The authenticated caller of a request, or `UNAUTHENTICATED` (`KER-ATH-401`).
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    match request.extensions().get::<Authentication>() {
        Some(Authentication::Authenticated(caller)) => Ok(caller.clone()),
        Some(Authentication::Rejected(reason)) => {
            tracing::info!(%reason, "token rejected");
            Err(error::unauthenticated(
                "the access token is invalid or expired",
            ))
        }
        Some(Authentication::Anonymous) | None => {
            Err(error::unauthenticated("an access token is required"))
        }
    }
}

/// Claims the platform reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<RealmAccess>,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Keycloak's `realm_access` claim.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RealmAccess {
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Claims as Keycloak sends them: `aud` may be a list.
#[derive(Debug, Deserialize)]
struct IncomingClaims {
    sub: Option<String>,
    preferred_username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    realm_access: Option<RealmAccess>,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// A public key that verifies end-user tokens.
#[derive(Clone)]
struct VerificationKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// Reads a PEM public key and picks the JWT algorithm that goes with it (RS256 for RSA,
/// ES256/ES384 for P-256/P-384).
fn verification_key(pem: &str) -> Result<VerificationKey, String> {
    let parsed = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes())
        .map_err(|error| format!("not a PEM public key: {error}"))?;
    let (algorithm, key) = match parsed.id() {
        openssl::pkey::Id::RSA => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())),
        openssl::pkey::Id::EC => {
            let bits = parsed.bits();
            let algorithm = if bits > 256 {
                Algorithm::ES384
            } else {
                Algorithm::ES256
            };
            (algorithm, DecodingKey::from_ec_pem(pem.as_bytes()))
        }
        other => return Err(format!("unsupported key type {other:?}")),
    };
    let key = key.map_err(|error| format!("unusable public key: {error}"))?;
    Ok(VerificationKey { key, algorithm })
}

/// Verifies bearer tokens of end users and services.
pub struct TokenVerifier {
    user_keys: RwLock<Vec<VerificationKey>>,
    issuer: String,
    audience: String,
    service_key: Option<DecodingKey>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for user tokens of `issuer`/`audience`; keys are added with
    /// [`TokenVerifier::set_user_keys`]. `service_secret` enables service tokens.
    pub fn new(issuer: &str, audience: &str, service_secret: Option<&[u8]>) -> Self {
        TokenVerifier {
            user_keys: RwLock::new(Vec::new()),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            service_key: service_secret
                .map(DecodingKey::from_secret)
                .and_then(Result::ok),
        }
    }

    /// Replaces the user-token verification keys (PEM public keys).
    pub fn set_user_keys(&self, pems: &[String]) -> Result<(), String> {
        let keys = pems
            .iter()
            .map(|pem| verification_key(pem))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guard = self
            .user_keys
            .write()
            .map_err(|_| "verification keys lock poisoned".to_owned())?;
        *guard = keys;
        Ok(())
    }

    /// Verifies an end-user token.
    pub fn verify_user(&self, token: &str) -> Result<User, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| error.to_string())?;
        let keys = self
            .user_keys
            .read()
            .map_err(|_| "verification keys lock poisoned".to_owned())?;
        let mut last_error = "no verification key for this token".to_owned();
        for candidate in keys.iter().filter(|key| key.algorithm == header.alg) {
            let mut validation = Validation::new(candidate.algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.leeway = 5;
            match jsonwebtoken::decode::<IncomingClaims>(token, &candidate.key, &validation) {
                Ok(data) => return user_from_claims(data.claims, token),
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(last_error)
    }

    /// Verifies a service token and returns the service name.
    pub fn verify_service(&self, token: &str) -> Result<String, String> {
        let key = self
            .service_key
            .as_ref()
            .ok_or_else(|| "service tokens are not accepted here".to_owned())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[SERVICE_TOKEN_ISSUER]);
        validation.set_audience(&[SERVICE_TOKEN_ISSUER]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|error| error.to_string())?;
        if !data.claims.roles.iter().any(|role| role == ROLE_SERVICE) {
            return Err("service token without the service role".into());
        }
        data.claims
            .sub
            .strip_prefix("service:")
            .map(str::to_owned)
            .ok_or_else(|| "service token subject is not a service".to_owned())
    }

    /// Looks at a request's metadata and decides who is calling.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Authentication {
        let Some(value) = metadata.get("authorization") else {
            return Authentication::Anonymous;
        };
        let Some(token) = value.to_str().ok().and_then(bearer_token) else {
            return Authentication::Rejected("authorization is not a bearer token".into());
        };
        match jsonwebtoken::decode_header(token) {
            Ok(header) if header.alg == Algorithm::HS256 => {
                self.authenticate_service(token, metadata)
            }
            Ok(_) => match self.verify_user(token) {
                Ok(user) => Authentication::Authenticated(Caller::User(user)),
                Err(reason) => Authentication::Rejected(reason),
            },
            Err(error) => Authentication::Rejected(error.to_string()),
        }
    }

    fn authenticate_service(&self, token: &str, metadata: &MetadataMap) -> Authentication {
        let name = match self.verify_service(token) {
            Ok(name) => name,
            Err(reason) => return Authentication::Rejected(reason),
        };
        let on_behalf_of = match metadata
            .get(FORWARDED_USER_HEADER)
            .map(|value| value.to_str())
        {
            None => None,
            Some(Ok(user_token)) => match self.verify_user(user_token) {
                Ok(user) => Some(user),
                Err(reason) => {
                    return Authentication::Rejected(format!("forwarded user: {reason}"));
                }
            },
            Some(Err(_)) => {
                return Authentication::Rejected("forwarded user token is not text".into());
            }
        };
        Authentication::Authenticated(Caller::Service { name, on_behalf_of })
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn user_from_claims(claims: IncomingClaims, token: &str) -> Result<User, String> {
    let partner_id = claims
        .preferred_username
        .or(claims.sub)
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| "token names no user".to_owned())?;
    let mut seen = HashSet::new();
    let roles = claims
        .roles
        .into_iter()
        .chain(
            claims
                .realm_access
                .map(|access| access.roles)
                .unwrap_or_default(),
        )
        .map(|role| role.to_ascii_uppercase())
        .filter(|role| seen.insert(role.clone()))
        .collect();
    Ok(User {
        partner_id,
        roles,
        token: token.to_owned(),
    })
}

/// Signs end-user tokens (used by the registry's `Login`, and by tests of every service).
pub struct TokenIssuer {
    key: EncodingKey,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl TokenIssuer {
    /// An issuer signing with the PKCS#8 PEM private key `private_key_pem` (EC P-256 → ES256,
    /// RSA → RS256).
    pub fn new(
        private_key_pem: &str,
        issuer: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Self, String> {
        let parsed = openssl::pkey::PKey::private_key_from_pem(private_key_pem.as_bytes())
            .map_err(|error| format!("not a PEM private key: {error}"))?;
        let pkcs8 = parsed
            .private_key_to_pem_pkcs8()
            .map_err(|error| format!("cannot encode private key: {error}"))?;
        let (algorithm, key) = match parsed.id() {
            openssl::pkey::Id::RSA => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pkcs8)),
            openssl::pkey::Id::EC if parsed.bits() > 256 => {
                (Algorithm::ES384, EncodingKey::from_ec_pem(&pkcs8))
            }
            openssl::pkey::Id::EC => (Algorithm::ES256, EncodingKey::from_ec_pem(&pkcs8)),
            other => return Err(format!("unsupported key type {other:?}")),
        };
        let key = key.map_err(|error| format!("unusable private key: {error}"))?;
        Ok(TokenIssuer {
            key,
            algorithm,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime,
        })
    }

    /// Lifetime of issued tokens.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Issues a token for `partner_id` with `roles`.
    pub fn issue(&self, partner_id: &str, roles: &[String]) -> Result<String, String> {
        let now = now_seconds();
        self.sign(&Claims {
            sub: partner_id.to_owned(),
            preferred_username: Some(partner_id.to_owned()),
            roles: roles.to_vec(),
            realm_access: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.lifetime.as_secs(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        })
    }

    /// Signs arbitrary claims (tests use it for expired or foreign tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
            .map_err(|error| format!("cannot sign token: {error}"))
    }
}

/// This service's identity towards other platform services.
pub struct ServiceIdentity {
    name: String,
    key: EncodingKey,
    cached: Mutex<Option<(String, u64)>>,
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceIdentity")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ServiceIdentity {
    /// The identity of service `name`, signing with the platform's shared service secret.
    pub fn new(name: &str, secret: &[u8]) -> Result<Self, String> {
        let key = EncodingKey::from_secret(secret)
            .map_err(|error| format!("unusable service secret: {error}"))?;
        Ok(ServiceIdentity {
            name: name.to_owned(),
            key,
            cached: Mutex::new(None),
        })
    }

    /// A service token valid for at least another minute (minted again when older).
    pub fn token(&self) -> Result<String, String> {
        let now = now_seconds();
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| "service token lock poisoned".to_owned())?;
        if let Some((token, expires)) = cached.as_ref()
            && *expires > now + 60
        {
            return Ok(token.clone());
        }
        let expires = now + SERVICE_TOKEN_LIFETIME.as_secs();
        let claims = Claims {
            sub: format!("service:{}", self.name),
            roles: vec![ROLE_SERVICE.to_owned()],
            iss: SERVICE_TOKEN_ISSUER.to_owned(),
            aud: SERVICE_TOKEN_ISSUER.to_owned(),
            iat: now,
            exp: expires,
            ..Claims::default()
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|error| format!("cannot sign service token: {error}"))?;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}

/// A tonic interceptor that records the request's [`Authentication`] in its extensions.
/// It never rejects on its own: RPCs that need a caller call [`caller`], the others
/// (`RegisterPartner`, `Login`) simply ignore it, so a stale token does not block a login.
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: std::sync::Arc<TokenVerifier>,
}

impl AuthInterceptor {
    /// An interceptor using `verifier`.
    pub fn new(verifier: std::sync::Arc<TokenVerifier>) -> Self {
        AuthInterceptor { verifier }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let authentication = self.verifier.authenticate(request.metadata());
        request.extensions_mut().insert(authentication);
        Ok(request)
    }
}

/// Helpers for tests of every service: a throw-away signing key and tokens of any shape.
pub mod testing {
    use super::*;

    /// Issuer used by test tokens.
    pub const TEST_ISSUER: &str = "pmp-test";
    /// Audience used by test tokens.
    pub const TEST_AUDIENCE: &str = "pmp";
    /// Shared service secret used by tests.
    pub const TEST_SERVICE_SECRET: &[u8] = b"test-service-secret-0123456789abcdef";

    /// A freshly generated P-256 key pair, as (private PKCS#8 PEM, public PEM).
    pub fn generate_ec_key_pem() -> (String, String) {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .expect("P-256 group");
        let key = openssl::ec::EcKey::generate(&group).expect("EC key");
        let pkey = openssl::pkey::PKey::from_ec_key(key).expect("pkey");
        let private =
            String::from_utf8(pkey.private_key_to_pem_pkcs8().expect("pem")).expect("utf8");
        let public = String::from_utf8(pkey.public_key_to_pem().expect("pem")).expect("utf8");
        (private, public)
    }

    /// Signs test tokens and builds matching verifiers.
    pub struct TestTokens {
        pub issuer: TokenIssuer,
        pub public_key_pem: String,
        /// An issuer with an unrelated key: its tokens must be refused.
        pub foreign_issuer: TokenIssuer,
    }

    impl Default for TestTokens {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TestTokens {
        /// New keys.
        pub fn new() -> Self {
            let (private, public) = generate_ec_key_pem();
            let (foreign_private, _) = generate_ec_key_pem();
            let lifetime = Duration::from_secs(600);
            TestTokens {
                issuer: TokenIssuer::new(&private, TEST_ISSUER, TEST_AUDIENCE, lifetime)
                    .expect("issuer"),
                public_key_pem: public,
                foreign_issuer: TokenIssuer::new(
                    &foreign_private,
                    TEST_ISSUER,
                    TEST_AUDIENCE,
                    lifetime,
                )
                .expect("issuer"),
            }
        }

        /// A verifier accepting these test tokens and test service tokens.
        pub fn verifier(&self) -> std::sync::Arc<TokenVerifier> {
            let verifier =
                TokenVerifier::new(TEST_ISSUER, TEST_AUDIENCE, Some(TEST_SERVICE_SECRET));
            verifier
                .set_user_keys(std::slice::from_ref(&self.public_key_pem))
                .expect("keys");
            std::sync::Arc::new(verifier)
        }

        /// A valid token for `partner_id` with `roles`.
        pub fn token(&self, partner_id: &str, roles: &[&str]) -> String {
            let roles: Vec<String> = roles.iter().map(|role| role.to_string()).collect();
            self.issuer.issue(partner_id, &roles).expect("token")
        }

        /// A token that expired ten minutes ago.
        pub fn expired_token(&self, partner_id: &str, roles: &[&str]) -> String {
            let now = now_seconds();
            self.issuer
                .sign(&Claims {
                    sub: partner_id.into(),
                    preferred_username: Some(partner_id.into()),
                    roles: roles.iter().map(|role| role.to_string()).collect(),
                    iss: TEST_ISSUER.into(),
                    aud: TEST_AUDIENCE.into(),
                    iat: now - 1200,
                    exp: now - 600,
                    ..Claims::default()
                })
                .expect("token")
        }

        /// A token signed by a key the verifier does not know.
        pub fn foreign_token(&self, partner_id: &str, roles: &[&str]) -> String {
            let roles: Vec<String> = roles.iter().map(|role| role.to_string()).collect();
            self.foreign_issuer
                .issue(partner_id, &roles)
                .expect("token")
        }

        /// The identity of a platform service, for service-to-service calls in tests.
        pub fn service(&self, name: &str) -> ServiceIdentity {
            ServiceIdentity::new(name, TEST_SERVICE_SECRET).expect("service identity")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use tonic::metadata::MetadataValue;

    fn metadata_with(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("metadata");
        metadata.insert("authorization", value);
        metadata
    }

    #[test]
    fn user_token_round_trip_with_roles() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let token = tokens.token("alice", &["ftm_provider"]);
        match verifier.authenticate(&metadata_with(&token)) {
            Authentication::Authenticated(Caller::User(user)) => {
                assert_eq!(user.partner_id, "alice");
                assert!(user.has_role("FTM_PROVIDER"));
                assert!(!user.is_admin());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn keycloak_realm_roles_are_read() {
        let tokens = TestTokens::new();
        let now = now_seconds();
        let claims = serde_json::json!({
            "sub": "f3a1", "preferred_username": "bob", "iss": TEST_ISSUER,
            "aud": [TEST_AUDIENCE, "account"], "exp": now + 60, "iat": now,
            "realm_access": {"roles": ["PARTNER_ADMIN", "offline_access"]}
        });
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &tokens.issuer.key)
                .expect("token");
        let user = tokens.verifier().verify_user(&token).expect("valid");
        assert_eq!(user.partner_id, "bob");
        assert!(user.is_admin());
    }

    #[test]
    fn expired_foreign_and_garbage_tokens_are_rejected() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        for token in [
            tokens.expired_token("alice", &[]),
            tokens.foreign_token("alice", &[]),
            "not-a-jwt".to_owned(),
        ] {
            assert!(matches!(
                verifier.authenticate(&metadata_with(&token)),
                Authentication::Rejected(_)
            ));
        }
        assert!(matches!(
            verifier.authenticate(&MetadataMap::new()),
            Authentication::Anonymous
        ));
    }

    #[test]
    fn service_token_with_forwarded_user() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let service = tokens.service("ftm-management");
        let mut metadata = metadata_with(&service.token().expect("token"));
        let user_token = tokens.token("alice", &["FTM_PROVIDER"]);
        metadata.insert(FORWARDED_USER_HEADER, user_token.parse().expect("value"));
        match verifier.authenticate(&metadata) {
            Authentication::Authenticated(Caller::Service {
                name,
                on_behalf_of: Some(user),
            }) => {
                assert_eq!(name, "ftm-management");
                assert_eq!(user.partner_id, "alice");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn service_token_with_wrong_secret_is_rejected() {
        let tokens = TestTokens::new();
        let impostor = ServiceIdentity::new("ftm-management", b"some-other-secret-value-xxxxxxxx")
            .expect("identity");
        let metadata = metadata_with(&impostor.token().expect("token"));
        assert!(matches!(
            tokens.verifier().authenticate(&metadata),
            Authentication::Rejected(_)
        ));
    }
}
