//! Service identity: each platform service signs short-lived tokens with its own key, and
//! each service holds only the other services' public keys. No secret is shared: holding one
//! service's key lets you act as that service only, towards the callees that trust it, for
//! the RPCs they allow it.
//!
//! A service token is an ES256 JWT with header `typ` [`SERVICE_TOKEN_TYPE`] and `kid` =
//! `<service>/<key fingerprint>`, and claims `iss` = `sub` = the calling service, `aud` = the
//! called service, `iat`, `nbf`, `exp` (at most [`SERVICE_TOKEN_LIFETIME`] after `iat`) and a
//! random `jti`. Callers cache one token per audience and renew it before it expires.
//!
//! Public keys live in a directory: `<service>.pem`, or `<service>.<suffix>.pem` for a
//! second key during a rotation (a Kubernetes ConfigMap mounted as a directory; in
//! development each service writes its own there). The directory is read again when a token
//! names a key not loaded yet, at most every [`RELOAD_PAUSE`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::verified::VerifiedTokens;
use crate::keys::{KeyError, KeyFileError, pem_text};

/// `typ` header of service tokens, which tells them from user tokens before any key is used.
pub const SERVICE_TOKEN_TYPE: &str = "pmp-service+jwt";
/// The longest a service token is valid.
pub const SERVICE_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A cached token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(20);
/// Clock difference tolerated between services.
const LEEWAY_SECONDS: u64 = 5;
/// Shortest pause between two reloads of the key directory on unknown keys.
pub const RELOAD_PAUSE: Duration = Duration::from_secs(1);

/// Service identity of the partner registry (`sub` of its tokens, SAN of its certificate).
pub const PARTNER_REGISTRY: &str = "partner-registry";
/// Service identity of the certificate store.
pub const CERTIFICATE_STORE: &str = "certificate-store";
/// Service identity of FTM management.
pub const FTM_MANAGEMENT: &str = "ftm-management";

/// The platform's services, the only names a service identity can have.
pub const PLATFORM_SERVICES: [&str; 3] = [PARTNER_REGISTRY, CERTIFICATE_STORE, FTM_MANAGEMENT];

#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The key id of a public key: the service and the first 8 bytes of the SHA-256 of its DER.
fn key_id(service: &str, public_key_der: &[u8]) -> String {
    let digest = openssl::sha::sha256(public_key_der);
    format!("{service}/{}", hex_of(&digest[..8]))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// This service's identity towards the others: its name and private key.
pub struct ServiceSigner {
    name: String,
    key: Arc<dyn crate::signing::PrivateKey>,
    kid: String,
    public_key_pem: String,
    cached: Mutex<HashMap<String, (String, u64)>>,
}

impl std::fmt::Debug for ServiceSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceSigner")
            .field("name", &self.name)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ServiceSigner {
    /// The identity of service `name`, signing with the EC P-256 private key `private_key_pem`
    /// (PKCS#8 or traditional PEM).
    pub fn from_pem(name: &str, private_key_pem: &[u8]) -> Result<Self, KeyError> {
        let key = crate::signing::InMemoryKey::from_pem(private_key_pem, "the service key")
            .map_err(|error| match error {
                crate::signing::SigningError::Configuration(_) => {
                    KeyError::NotPem("the service key".into())
                }
                other => KeyError::Signing(other),
            })?;
        Self::new(name, Arc::new(key))
    }

    /// The identity of service `name`, signing with `key` (in memory or in an HSM), which
    /// must be an EC P-256 key.
    pub fn new(name: &str, key: Arc<dyn crate::signing::PrivateKey>) -> Result<Self, KeyError> {
        if key.algorithm() != crate::signing::KeyAlgorithm::EcP256 {
            return Err(KeyError::Unsupported(
                "the service key must be an EC P-256 key".into(),
            ));
        }
        let public_der = key.public_key().public_key_to_der()?;
        let public_key_pem = pem_text(key.public_key().public_key_to_pem()?);
        Ok(ServiceSigner {
            name: name.to_owned(),
            kid: key_id(name, &public_der),
            key,
            public_key_pem,
            cached: Mutex::new(HashMap::new()),
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key to publish, PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// A token for calls to service `audience`, valid for at least another
    /// `RENEW_BEFORE` (minted again when older).
    pub fn token_for(&self, audience: &str) -> Result<String, KeyError> {
        let now = now_seconds();
        // The cache holds only finished tokens: one left by a panicking thread is still good.
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, expires)) = cached.get(audience)
            && *expires > now + RENEW_BEFORE.as_secs()
        {
            return Ok(token.clone());
        }
        let expires = now + SERVICE_TOKEN_LIFETIME.as_secs();
        let token = self.sign(audience, now, expires)?;
        cached.insert(audience.to_owned(), (token.clone(), expires));
        Ok(token)
    }

    /// Signs a token with explicit times (tests use it for expired tokens).
    pub fn sign(&self, audience: &str, issued_at: u64, expires: u64) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(SERVICE_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        let claims = ServiceClaims {
            iss: self.name.clone(),
            sub: self.name.clone(),
            aud: audience.to_owned(),
            iat: issued_at,
            nbf: issued_at,
            exp: expires,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        Ok(crate::signing::sign_jwt(
            self.key.as_ref(),
            &header,
            &claims,
        )?)
    }
}

/// Whether a token is a service token (by its header; nothing is verified yet).
pub fn is_service_token(token: &str) -> bool {
    jsonwebtoken::decode_header(token)
        .is_ok_and(|header| header.typ.as_deref() == Some(SERVICE_TOKEN_TYPE))
}

/// A public key of a service.
#[derive(Clone)]
struct ServiceKey {
    service: String,
    key: DecodingKey,
}

/// The other services' public keys, as this service (`audience`) verifies their tokens.
pub struct ServiceKeys {
    audience: String,
    directory: Option<PathBuf>,
    keys: ArcSwap<HashMap<String, ServiceKey>>,
    /// Calling services of tokens verified recently: a caller reuses one token per callee
    /// for most of its minute.
    verified: VerifiedTokens<String>,
    last_reload: Mutex<Option<Instant>>,
}

/// How many verified service tokens are remembered (a handful per calling replica).
const VERIFIED_SERVICE_TOKENS: u64 = 1_000;

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceKeys")
            .field("audience", &self.audience)
            .field("directory", &self.directory)
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

/// Why a service token was refused (for the log; clients get a generic answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceTokenError {
    /// Not a JWT, not ES256, or without a key id.
    #[error("malformed service token: {0}")]
    Malformed(String),
    /// Signed with a key this service does not hold (the key id).
    #[error("no key for {0}")]
    UnknownKey(String),
    /// Bad signature or claims (audience, issuer, times, lifetime).
    #[error("invalid service token: {0}")]
    Invalid(String),
}

impl ServiceKeys {
    /// Keys for verifying tokens addressed to `audience` (this service), read from
    /// `directory` (empty: no service may call this one).
    pub fn load(audience: &str, directory: &str) -> Result<Self, KeyFileError> {
        let directory = (!directory.trim().is_empty()).then(|| PathBuf::from(directory));
        let keys = match &directory {
            Some(path) if path.exists() => read_directory(path)?,
            _ => HashMap::new(),
        };
        Ok(Self::with_keys(audience, directory, keys))
    }

    /// Keys given directly, as (service, public key PEM) pairs (tests).
    pub fn from_pems(audience: &str, pems: &[(&str, &str)]) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for (service, pem) in pems {
            let (kid, key) = decoding_key(service, pem.as_bytes())?;
            keys.insert(kid, key);
        }
        Ok(Self::with_keys(audience, None, keys))
    }

    fn with_keys(
        audience: &str,
        directory: Option<PathBuf>,
        keys: HashMap<String, ServiceKey>,
    ) -> Self {
        ServiceKeys {
            audience: audience.to_owned(),
            directory,
            keys: ArcSwap::from_pointee(keys),
            verified: VerifiedTokens::new(
                VERIFIED_SERVICE_TOKENS,
                SERVICE_TOKEN_LIFETIME,
                LEEWAY_SECONDS,
            ),
            last_reload: Mutex::new(None),
        }
    }

    fn replace_keys(&self, keys: HashMap<String, ServiceKey>) {
        self.keys.store(Arc::new(keys));
        self.verified.keys_replaced();
    }

    /// Re-reads the directory unless that happened less than [`RELOAD_PAUSE`] ago.
    fn reload_if_due(&self) {
        let Some(directory) = &self.directory else {
            return;
        };
        let Ok(mut last) = self.last_reload.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < RELOAD_PAUSE) {
            return;
        }
        *last = Some(Instant::now());
        match read_directory(directory) {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "service keys reloaded");
                self.replace_keys(keys);
            }
            Err(error) => tracing::warn!(%error, "service keys could not be reloaded"),
        }
    }

    /// Verifies a service token addressed to this service; returns the calling service. A
    /// token verified before under the same keys and not yet expired is answered from
    /// memory.
    pub fn verify(&self, token: &str) -> Result<String, ServiceTokenError> {
        self.verified
            .verify(token, |token| self.verify_signature(token))
    }

    /// The calling service of a token verified before under the current keys, while it has
    /// not expired, without parsing it (every internal call after a caller's first).
    pub fn verified_before(&self, token: &str) -> Option<String> {
        self.verified.verified_before(token)
    }

    /// The full check: header, key, signature and claims; the service and the expiry.
    fn verify_signature(&self, token: &str) -> Result<(String, u64), ServiceTokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| ServiceTokenError::Malformed(error.to_string()))?;
        if header.typ.as_deref() != Some(SERVICE_TOKEN_TYPE) || header.alg != Algorithm::ES256 {
            return Err(ServiceTokenError::Malformed(
                "not an ES256 service token".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| ServiceTokenError::Malformed("no key id".into()))?;
        let key = match self.keys.load().get(&kid).cloned() {
            Some(key) => key,
            None => {
                self.reload_if_due();
                self.keys
                    .load()
                    .get(&kid)
                    .cloned()
                    .ok_or(ServiceTokenError::UnknownKey(kid))?
            }
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&key.service]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, &key.key, &validation)
            .map_err(|error| ServiceTokenError::Invalid(error.to_string()))?
            .claims;
        if claims.sub != key.service {
            return Err(ServiceTokenError::Invalid(
                "subject is not the signer".into(),
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > SERVICE_TOKEN_LIFETIME.as_secs() {
            return Err(ServiceTokenError::Invalid(
                "service tokens live at most 60 seconds".into(),
            ));
        }
        Ok((key.service, claims.exp))
    }
}

/// (key id, key) of a service's PEM public key.
fn decoding_key(service: &str, pem: &[u8]) -> Result<(String, ServiceKey), KeyError> {
    let parsed = openssl::pkey::PKey::public_key_from_pem(pem)
        .map_err(|_| KeyError::NotPem(format!("the key of {service}")))?;
    if parsed.id() != openssl::pkey::Id::EC || parsed.bits() != 256 {
        return Err(KeyError::Unsupported(format!(
            "the key of {service} is not an EC P-256 key"
        )));
    }
    let der = parsed.public_key_to_der()?;
    let key = DecodingKey::from_ec_pem(pem)?;
    Ok((
        key_id(service, &der),
        ServiceKey {
            service: service.to_owned(),
            key,
        },
    ))
}

/// Every `<service>.pem` and `<service>.<suffix>.pem` of `directory`, for the platform's
/// services (other files are ignored).
fn read_directory(directory: &Path) -> Result<HashMap<String, ServiceKey>, KeyFileError> {
    let entries = std::fs::read_dir(directory).map_err(|source| KeyFileError::Read {
        path: directory.display().to_string(),
        source,
    })?;
    let mut keys = HashMap::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file_name.strip_suffix(".pem") else {
            continue;
        };
        let service = stem.split('.').next().unwrap_or_default();
        if !PLATFORM_SERVICES.contains(&service) {
            continue;
        }
        let pem = crate::keys::read(&entry.path())?;
        let (kid, key) = decoding_key(service, &pem).map_err(|source| KeyFileError::Invalid {
            path: entry.path().display().to_string(),
            source,
        })?;
        keys.insert(kid, key);
    }
    Ok(keys)
}

/// Publishes this service's public key as `<directory>/<service>.pem` (development: the
/// services of one machine find each other's keys there).
pub fn publish_public_key(directory: &str, signer: &ServiceSigner) -> std::io::Result<()> {
    let directory = Path::new(directory);
    std::fs::create_dir_all(directory)?;
    let path = directory.join(format!("{}.pem", signer.name()));
    let temporary = directory.join(format!(".{}.pem.tmp", signer.name()));
    std::fs::write(&temporary, signer.public_key_pem())?;
    std::fs::rename(temporary, path)
}

/// This service's identity from `settings`: the key labelled
/// `service_identity.private_key_label` in the HSM of `hsm` (waiting while the HSM is
/// unreachable), or its key file, generated (and its public key published into the keys
/// directory) on first start when `generate_key` is set.
pub async fn load_signer(
    name: &str,
    settings: &crate::config::ServiceIdentitySettings,
    hsm: &crate::signing::HsmSettings,
) -> anyhow::Result<std::sync::Arc<ServiceSigner>> {
    let label = settings.private_key_label.trim();
    if !label.is_empty() {
        let key =
            crate::signing::open_when_reachable(hsm, label, "the service identity key").await?;
        return Ok(std::sync::Arc::new(ServiceSigner::new(name, key)?));
    }
    let path = Path::new(&settings.private_key_file);
    let pem = if settings.generate_key {
        let (pem, generated) =
            crate::keys::load_or_generate(path, crate::keys::generate_ec_private_key_pem)?;
        if generated {
            tracing::warn!(path = %path.display(), "generated a development service identity key; provision one per service in production");
        }
        pem
    } else {
        crate::keys::read(path)?
    };
    let signer = ServiceSigner::from_pem(name, &pem)?;
    if settings.generate_key {
        publish_public_key(&settings.public_keys_dir, &signer)?;
    }
    Ok(std::sync::Arc::new(signer))
}

/// The public keys of the services that may call service `name`, from `settings`.
pub fn load_service_keys(
    name: &str,
    settings: &crate::config::ServiceIdentitySettings,
) -> anyhow::Result<std::sync::Arc<ServiceKeys>> {
    Ok(std::sync::Arc::new(ServiceKeys::load(
        name,
        &settings.public_keys_dir,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str) -> ServiceSigner {
        let pem = crate::keys::generate_ec_private_key_pem().expect("key");
        ServiceSigner::from_pem(name, &pem).expect("signer")
    }

    #[test]
    fn tokens_name_the_caller_and_are_bound_to_the_callee() {
        let ftm = signer("ftm-management");
        let store_keys = ServiceKeys::from_pems(
            "certificate-store",
            &[("ftm-management", ftm.public_key_pem())],
        )
        .expect("keys");
        let token = ftm.token_for("certificate-store").expect("token");
        assert!(is_service_token(&token));
        assert_eq!(store_keys.verify(&token).as_deref(), Ok("ftm-management"));
        // Cached per audience.
        assert_eq!(ftm.token_for("certificate-store").expect("token"), token);
        // A token for another callee is refused here.
        let registry_token = ftm.token_for("partner-registry").expect("token");
        assert!(matches!(
            store_keys.verify(&registry_token),
            Err(ServiceTokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_remembered_verification_counts_only_under_the_keys_it_was_made_with() {
        let ftm = signer("ftm-management");
        let keys = ServiceKeys::from_pems(
            "certificate-store",
            &[("ftm-management", ftm.public_key_pem())],
        )
        .expect("keys");
        let token = ftm.token_for("certificate-store").expect("token");
        assert_eq!(keys.verified_before(&token), None, "not verified yet");
        assert_eq!(keys.verify(&token).as_deref(), Ok("ftm-management"));
        assert_eq!(
            keys.verified_before(&token).as_deref(),
            Some("ftm-management"),
            "remembered"
        );
        // The key is withdrawn (a rotation finished, a compromised key removed).
        keys.replace_keys(HashMap::new());
        assert_eq!(keys.verified_before(&token), None);
        assert!(matches!(
            keys.verify(&token),
            Err(ServiceTokenError::UnknownKey(_))
        ));
    }

    #[test]
    fn foreign_keys_expired_and_long_lived_tokens_are_refused() {
        let ftm = signer("ftm-management");
        let impostor = signer("ftm-management");
        let keys = ServiceKeys::from_pems(
            "certificate-store",
            &[("ftm-management", ftm.public_key_pem())],
        )
        .expect("keys");
        assert!(matches!(
            keys.verify(&impostor.token_for("certificate-store").expect("token")),
            Err(ServiceTokenError::UnknownKey(_))
        ));
        let now = now_seconds();
        let expired = ftm
            .sign("certificate-store", now - 300, now - 200)
            .expect("token");
        assert!(keys.verify(&expired).is_err());
        let long = ftm
            .sign("certificate-store", now, now + 3600)
            .expect("token");
        assert!(keys.verify(&long).is_err());
        let future = ftm
            .sign("certificate-store", now + 120, now + 150)
            .expect("token");
        assert!(keys.verify(&future).is_err(), "nbf is honoured");
    }

    #[test]
    fn a_key_published_in_the_directory_is_found_on_first_use() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().display().to_string();
        let keys = ServiceKeys::load("certificate-store", &path).expect("keys");
        let registry = signer("partner-registry");
        publish_public_key(&path, &registry).expect("published");
        std::fs::write(directory.path().join("stranger.pem"), b"ignored").expect("file");
        let token = registry.token_for("certificate-store").expect("token");
        assert_eq!(keys.verify(&token).as_deref(), Ok("partner-registry"));
    }
}
