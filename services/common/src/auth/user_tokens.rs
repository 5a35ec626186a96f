//! End-user tokens: issuing them (the registry's `Login`) and verifying them (every service).
//!
//! Tokens come from the partner registry or from an OpenID Connect issuer such as Keycloak;
//! both are verified locally with public keys. A token must carry `exp`, `iat`, `sub`, `iss`
//! and `aud` (the configured issuer and audience); `nbf` is honoured; clocks may differ by
//! the configured leeway (at most 60 s). Only asymmetric keys are used (RS256, ES256,
//! ES384), chosen by the key, never by the token.
//!
//! Keys come from PEM files and from one remote source — a JWKS URL (Keycloak's
//! `/protocol/openid-connect/certs`) or the registry's `GetTokenVerificationKeys` — fetched
//! again every refresh interval and whenever a token names a key id not loaded yet (at most
//! every [`MIN_REFRESH_PAUSE`]), so a key rotation needs no restart. Remote sources are
//! fetched over TLS; plain text is allowed only to this machine (development) or when
//! explicitly configured.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::User;
use super::verified::VerifiedTokens;
use crate::keys::{KeyError, pem_text};

/// Shortest pause between two fetches triggered by unknown key ids.
pub const MIN_REFRESH_PAUSE: Duration = Duration::from_secs(5);
/// The largest clock leeway accepted in configuration.
pub const MAX_LEEWAY_SECONDS: u64 = 60;

/// Claims the platform writes into its tokens.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    /// The user: for partners, the partner id (= user name).
    pub sub: String,
    /// The user name, as Keycloak sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The platform's roles (`PARTNER_ADMIN`, `FTM_PROVIDER`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Keycloak's place for the roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<RealmAccess>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Keycloak's `realm_access` claim.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RealmAccess {
    /// The realm roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Claims as they arrive (Keycloak sends `aud` as a list; validation checks it).
#[derive(Debug, Deserialize)]
struct IncomingClaims {
    sub: Option<String>,
    /// Required (the JWT library cannot require it): checked by the verifier.
    iat: Option<u64>,
    /// Required and checked by the JWT library; kept to bound how long a verification is
    /// remembered.
    exp: Option<u64>,
    preferred_username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    realm_access: Option<RealmAccess>,
}

pub(crate) fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// A public key that verifies user tokens.
#[derive(Clone)]
pub struct VerificationKey {
    /// `kid` the key is published under, if any.
    pub kid: Option<String>,
    key: DecodingKey,
    algorithm: Algorithm,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// The algorithm that goes with an asymmetric public key: RS256, ES256 or ES384.
fn algorithm_of(
    key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
) -> Result<Algorithm, KeyError> {
    match key.id() {
        openssl::pkey::Id::RSA if key.bits() >= 2048 => Ok(Algorithm::RS256),
        openssl::pkey::Id::EC if key.bits() == 256 => Ok(Algorithm::ES256),
        openssl::pkey::Id::EC if key.bits() == 384 => Ok(Algorithm::ES384),
        other => Err(KeyError::Unsupported(format!(
            "token key {other:?} of {} bits",
            key.bits()
        ))),
    }
}

/// The key id the platform gives a public key: hex of the first 8 bytes of the SHA-256 of
/// its DER SubjectPublicKeyInfo.
pub fn key_id_of(public_key_der: &[u8]) -> String {
    openssl::sha::sha256(public_key_der)[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl VerificationKey {
    /// A PEM public key (RSA ≥ 2048 bits, EC P-256 or P-384), with its derived key id.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let parsed = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes())
            .map_err(|_| KeyError::NotPem("the public key".into()))?;
        let algorithm = algorithm_of(&parsed)?;
        let der = parsed.public_key_to_der()?;
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
            _ => DecodingKey::from_ec_pem(pem.as_bytes()),
        }?;
        Ok(VerificationKey {
            kid: Some(key_id_of(&der)),
            key,
            algorithm,
        })
    }

    /// A JWK of an RSA or EC signing key; symmetric and unknown keys are refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(parameters) => match parameters.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(KeyError::Unsupported("curve".into())),
            },
            _ => {
                return Err(KeyError::Unsupported(
                    "only RSA and EC keys verify user tokens".into(),
                ));
            }
        };
        if let Some(declared) = jwk.common.key_algorithm
            && format!("{declared:?}") != format!("{algorithm:?}")
        {
            return Err(KeyError::Unsupported(
                "the JWK's alg does not match its key".into(),
            ));
        }
        let key = DecodingKey::from_jwk(jwk)?;
        Ok(VerificationKey {
            kid: jwk.common.key_id.clone(),
            key,
            algorithm,
        })
    }
}

/// The usable keys of a JWKS document (others are skipped with a warning).
pub fn keys_of_jwks(json: &str) -> Result<Vec<VerificationKey>, KeyError> {
    let set: JwkSet = serde_json::from_str(json)?;
    Ok(set
        .keys
        .iter()
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        })
        .filter_map(|jwk| match VerificationKey::from_jwk(jwk) {
            Ok(key) => Some(key),
            Err(reason) => {
                tracing::warn!(kid = ?jwk.common.key_id, %reason, "JWKS key skipped");
                None
            }
        })
        .collect())
}

/// Where keys come from besides files; fetched at start-up, periodically and on unknown
/// key ids.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// The source's current keys.
    async fn fetch(&self) -> anyhow::Result<Vec<VerificationKey>>;
    /// For logs.
    fn describe(&self) -> String;
}

/// Why a user token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    /// The token names a key this service does not have (yet).
    #[error("no verification key {0}")]
    UnknownKey(String),
    /// Anything else: malformed, wrong signature, expired, wrong issuer or audience...
    #[error("{0}")]
    Invalid(String),
}

/// Verifies end-user tokens of one issuer and audience.
pub struct UserTokenVerifier {
    issuer: String,
    audience: String,
    leeway: u64,
    file_keys: Vec<VerificationKey>,
    keys: ArcSwap<Vec<VerificationKey>>,
    /// Users of tokens verified recently: a caller sends the same token on every call (a
    /// relying service on its hot path). Replacing the keys forgets them all at once.
    verified: VerifiedTokens<User>,
    source: Option<Arc<dyn KeySource>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// How many verified tokens are remembered.
const VERIFIED_TOKENS: u64 = 10_000;
/// How long a verification is remembered at most (also bounded by the token's expiry).
const VERIFIED_FOR: Duration = Duration::from_secs(300);

impl std::fmt::Debug for UserTokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UserTokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.load().len())
            .finish_non_exhaustive()
    }
}

impl UserTokenVerifier {
    /// A verifier of `issuer`/`audience` tokens with the fixed `file_keys` and, optionally, a
    /// remote `source` (call [`UserTokenVerifier::refresh`] once before serving).
    pub fn new(
        issuer: &str,
        audience: &str,
        leeway: u64,
        file_keys: Vec<VerificationKey>,
        source: Option<Arc<dyn KeySource>>,
    ) -> Self {
        UserTokenVerifier {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: leeway.min(MAX_LEEWAY_SECONDS),
            keys: ArcSwap::from_pointee(file_keys.clone()),
            verified: VerifiedTokens::new(
                VERIFIED_TOKENS,
                VERIFIED_FOR,
                leeway.min(MAX_LEEWAY_SECONDS),
            ),
            file_keys,
            source,
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Fetches the remote source's keys (file keys stay); with `only_if_due`, not when the
    /// last fetch is less than [`MIN_REFRESH_PAUSE`] ago. Concurrent callers wait for one
    /// fetch instead of starting their own.
    pub async fn refresh(&self, only_if_due: bool) -> anyhow::Result<()> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let mut last = self.last_fetch.lock().await;
        if only_if_due && last.is_some_and(|at| at.elapsed() < MIN_REFRESH_PAUSE) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let fetched = source.fetch().await?;
        let mut keys = self.file_keys.clone();
        keys.extend(fetched);
        tracing::info!(keys = keys.len(), source = %source.describe(), "user token keys loaded");
        self.replace_keys(keys);
        Ok(())
    }

    /// Refreshes every `interval` in the background, for as long as the verifier lives.
    pub fn spawn_refresher(self: &Arc<Self>, interval: Duration) {
        if self.source.is_none() {
            return;
        }
        let verifier = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(verifier) = verifier.upgrade() else {
                    return;
                };
                if let Err(error) = verifier.refresh(false).await {
                    tracing::warn!(%error, "user token keys could not be refreshed; keeping the previous ones");
                }
            }
        });
    }

    /// Replaces the keys (tests).
    pub fn set_keys(&self, keys: Vec<VerificationKey>) {
        self.replace_keys(keys);
    }

    fn replace_keys(&self, keys: Vec<VerificationKey>) {
        self.keys.store(Arc::new(keys));
        self.verified.keys_replaced();
    }

    /// Verifies a token and returns its user; a token verified before under the same keys
    /// and not yet expired is answered from memory.
    pub fn verify(&self, token: &str) -> Result<User, UserTokenError> {
        self.verified
            .verify(token, |token| self.verify_signature(token))
    }

    /// The user of a token this verifier accepted before under the current keys, while it
    /// has not expired: the hot path of every authenticated call, which must not even parse
    /// the token. Only verified tokens are remembered, so a hit is as good as a full check.
    pub fn verified_before(&self, token: &str) -> Option<User> {
        self.verified.verified_before(token)
    }

    /// The full check: signature, issuer, audience, times; the user and the expiry.
    fn verify_signature(&self, token: &str) -> Result<(User, u64), UserTokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| UserTokenError::Invalid(error.to_string()))?;
        let keys = self.keys.load();
        let candidates: Vec<&VerificationKey> = keys
            .iter()
            .filter(|key| key.algorithm == header.alg)
            .filter(|key| match (&header.kid, &key.kid) {
                (Some(wanted), Some(kid)) => wanted == kid,
                (Some(_), None) => true,
                (None, _) => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(match header.kid {
                Some(kid) => UserTokenError::UnknownKey(kid),
                None => UserTokenError::Invalid("no verification key for this token".into()),
            });
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let mut last_error = String::new();
        for candidate in candidates {
            match jsonwebtoken::decode::<IncomingClaims>(token, &candidate.key, &validation) {
                Ok(data) => {
                    self.check_issued_at(data.claims.iat)?;
                    let expires_at = data.claims.exp.unwrap_or_default();
                    return Ok((user_from_claims(data.claims, token)?, expires_at));
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(UserTokenError::Invalid(last_error))
    }

    /// `iat` must be present and not in the future (beyond the leeway).
    fn check_issued_at(&self, issued_at: Option<u64>) -> Result<(), UserTokenError> {
        match issued_at {
            None => Err(UserTokenError::Invalid("the token has no iat".into())),
            Some(at) if at > now_seconds() + self.leeway => Err(UserTokenError::Invalid(
                "the token was issued in the future".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    /// [`UserTokenVerifier::verify`], fetching the keys again (if due) when the token names an
    /// unknown key id: a rotated key is accepted at its first use.
    pub async fn verify_fresh(&self, token: &str) -> Result<User, UserTokenError> {
        match self.verify(token) {
            Err(UserTokenError::UnknownKey(kid)) if self.source.is_some() => {
                if let Err(error) = self.refresh(true).await {
                    tracing::warn!(%error, %kid, "user token keys could not be fetched");
                }
                self.verify(token)
            }
            other => other,
        }
    }
}

fn user_from_claims(claims: IncomingClaims, token: &str) -> Result<User, UserTokenError> {
    let partner_id = claims
        .preferred_username
        .or(claims.sub)
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| UserTokenError::Invalid("token names no user".into()))?;
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

/// A signing key of the issuer, with its key id.
struct SigningKey {
    key: std::sync::Arc<dyn crate::signing::PrivateKey>,
    algorithm: Algorithm,
    kid: String,
}

/// The key that signs and the keys that are published, replaced together on a rotation.
struct IssuerKeys {
    signing: SigningKey,
    /// The signing key's public key first, then the others published with it (earlier keys
    /// whose tokens are still valid, the next key of a rotation).
    published: Vec<(String, Jwk)>,
}

impl IssuerKeys {
    fn new(
        key: std::sync::Arc<dyn crate::signing::PrivateKey>,
        other_public_keys_pem: &[String],
    ) -> Result<Self, KeyError> {
        let public_pem = pem_text(key.public_key().public_key_to_pem()?);
        let (kid, jwk) = jwk_of_public_pem(&public_pem)?;
        let algorithm = key.algorithm().jws_algorithm();
        let mut published = vec![(kid.clone(), jwk)];
        for pem in other_public_keys_pem {
            let (other_kid, other) = jwk_of_public_pem(pem)?;
            if published.iter().all(|(known, _)| *known != other_kid) {
                published.push((other_kid, other));
            }
        }
        Ok(IssuerKeys {
            signing: SigningKey {
                key,
                algorithm,
                kid,
            },
            published,
        })
    }
}

/// Signs end-user tokens (the registry's `Login`) and publishes the keys that verify them.
/// The keys can be replaced while it serves ([`TokenIssuer::rotate`]).
pub struct TokenIssuer {
    keys: arc_swap::ArcSwap<IssuerKeys>,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenIssuer")
            .field("kid", &self.keys.load().signing.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A JWK of a PEM public key, with the platform's key id.
fn jwk_of_public_pem(pem: &str) -> Result<(String, Jwk), KeyError> {
    let parsed = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes())
        .map_err(|_| KeyError::NotPem("the public key".into()))?;
    let algorithm = algorithm_of(&parsed)?;
    let der = parsed.public_key_to_der()?;
    let kid = key_id_of(&der);
    let encode = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let parameters = match algorithm {
        Algorithm::RS256 => {
            let rsa = parsed.rsa()?;
            serde_json::json!({"kty": "RSA", "n": encode(&rsa.n().to_vec()), "e": encode(&rsa.e().to_vec())})
        }
        _ => {
            let ec = parsed.ec_key()?;
            let mut context = openssl::bn::BigNumContext::new()?;
            let (mut x, mut y) = (openssl::bn::BigNum::new()?, openssl::bn::BigNum::new()?);
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut context)?;
            let size = if algorithm == Algorithm::ES256 {
                32
            } else {
                48
            };
            let pad = |value: &openssl::bn::BigNum| value.to_vec_padded(size);
            let crv = if algorithm == Algorithm::ES256 {
                "P-256"
            } else {
                "P-384"
            };
            serde_json::json!({
                "kty": "EC", "crv": crv,
                "x": encode(&pad(&x)?),
                "y": encode(&pad(&y)?),
            })
        }
    };
    let mut value = parameters;
    value["kid"] = serde_json::Value::String(kid.clone());
    value["use"] = serde_json::Value::String("sig".into());
    value["alg"] = serde_json::Value::String(format!("{algorithm:?}"));
    let jwk: Jwk = serde_json::from_value(value)?;
    Ok((kid, jwk))
}

impl TokenIssuer {
    /// An issuer signing with `private_key_pem` (PKCS#8 or traditional PEM; EC P-256 →
    /// ES256, P-384 → ES384, RSA → RS256), also publishing `previous_public_keys_pem` (keys
    /// that signed tokens still valid, during a rotation).
    pub fn new(
        private_key_pem: &str,
        previous_public_keys_pem: &[String],
        issuer: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Self, KeyError> {
        let key = crate::signing::InMemoryKey::from_pem(
            private_key_pem.as_bytes(),
            "the token signing key",
        )
        .map_err(|error| match error {
            crate::signing::SigningError::Configuration(_) => {
                KeyError::NotPem("the token signing key".into())
            }
            other => KeyError::Signing(other),
        })?;
        Self::with_key(
            std::sync::Arc::new(key),
            previous_public_keys_pem,
            issuer,
            audience,
            lifetime,
        )
    }

    /// An issuer signing with `key`, in memory or in an HSM (see [`TokenIssuer::new`]).
    pub fn with_key(
        key: std::sync::Arc<dyn crate::signing::PrivateKey>,
        previous_public_keys_pem: &[String],
        issuer: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Self, KeyError> {
        Ok(TokenIssuer {
            keys: arc_swap::ArcSwap::from_pointee(IssuerKeys::new(key, previous_public_keys_pem)?),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime,
        })
    }

    /// From now on, signs with `key` and publishes its public key and
    /// `other_public_keys_pem` (a rotation: the next key before it signs, earlier keys while
    /// their tokens live).
    pub fn rotate(
        &self,
        key: std::sync::Arc<dyn crate::signing::PrivateKey>,
        other_public_keys_pem: &[String],
    ) -> Result<(), KeyError> {
        self.keys.store(std::sync::Arc::new(IssuerKeys::new(
            key,
            other_public_keys_pem,
        )?));
        Ok(())
    }

    /// The key id (`kid`) of the signing key.
    pub fn signing_key_id(&self) -> String {
        self.keys.load().signing.kid.clone()
    }

    /// Lifetime of issued tokens.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of issued tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The published verification keys as a JWKS document.
    pub fn jwks(&self) -> String {
        let current = self.keys.load();
        let keys: Vec<&Jwk> = current.published.iter().map(|(_, jwk)| jwk).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// The published verification keys as PEM.
    pub fn public_keys_pem(&self) -> Vec<String> {
        self.keys
            .load()
            .published
            .iter()
            .filter_map(|(_, jwk)| jwk_to_pem(jwk))
            .collect()
    }

    /// Issues a token for `partner_id` with `roles`.
    pub fn issue(&self, partner_id: &str, roles: &[String]) -> Result<String, KeyError> {
        let now = now_seconds();
        self.sign(&Claims {
            sub: partner_id.to_owned(),
            preferred_username: Some(partner_id.to_owned()),
            roles: roles.to_vec(),
            realm_access: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: Some(now),
            exp: now + self.lifetime.as_secs(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        })
    }

    /// Signs arbitrary claims with the current key (tests use it for expired or odd tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        self.sign_serialisable(claims)
    }

    /// Signs any serialisable claims (tests: tokens missing a claim).
    pub fn sign_raw(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        self.sign_serialisable(claims)
    }

    fn sign_serialisable(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let current = self.keys.load();
        let mut header = Header::new(current.signing.algorithm);
        header.kid = Some(current.signing.kid.clone());
        Ok(crate::signing::sign_jwt(
            current.signing.key.as_ref(),
            &header,
            claims,
        )?)
    }
}

/// A PEM public key of an RSA or EC JWK.
fn jwk_to_pem(jwk: &Jwk) -> Option<String> {
    use base64::Engine;
    let decode = |value: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()
    };
    let key = match &jwk.algorithm {
        AlgorithmParameters::RSA(parameters) => {
            let n = openssl::bn::BigNum::from_slice(&decode(&parameters.n)?).ok()?;
            let e = openssl::bn::BigNum::from_slice(&decode(&parameters.e)?).ok()?;
            let rsa = openssl::rsa::Rsa::from_public_components(n, e).ok()?;
            openssl::pkey::PKey::from_rsa(rsa).ok()?
        }
        AlgorithmParameters::EllipticCurve(parameters) => {
            let nid = match parameters.curve {
                EllipticCurve::P256 => openssl::nid::Nid::X9_62_PRIME256V1,
                EllipticCurve::P384 => openssl::nid::Nid::SECP384R1,
                _ => return None,
            };
            let group = openssl::ec::EcGroup::from_curve_name(nid).ok()?;
            let x = openssl::bn::BigNum::from_slice(&decode(&parameters.x)?).ok()?;
            let y = openssl::bn::BigNum::from_slice(&decode(&parameters.y)?).ok()?;
            let ec = openssl::ec::EcKey::from_public_key_affine_coordinates(&group, &x, &y).ok()?;
            openssl::pkey::PKey::from_ec_key(ec).ok()?
        }
        _ => return None,
    };
    String::from_utf8(key.public_key_to_pem().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{TEST_AUDIENCE, TEST_ISSUER, TestTokens, generate_ec_key_pem};

    fn claims(now: u64) -> serde_json::Value {
        serde_json::json!({
            "sub": "alice", "iss": TEST_ISSUER, "aud": TEST_AUDIENCE,
            "iat": now, "exp": now + 60, "roles": ["ftm_provider"],
        })
    }

    #[test]
    fn tokens_verify_with_their_roles() {
        let tokens = TestTokens::new();
        let user = tokens
            .verifier()
            .verify(&tokens.token("alice", &["ftm_provider"]))
            .expect("valid");
        assert_eq!(user.partner_id, "alice");
        assert!(user.has_role("FTM_PROVIDER"));
        assert!(!user.is_admin());
    }

    #[test]
    fn keycloak_tokens_with_realm_roles_and_audience_lists_verify() {
        let tokens = TestTokens::new();
        let now = now_seconds();
        let mut keycloak = claims(now);
        keycloak["aud"] = serde_json::json!([TEST_AUDIENCE, "account"]);
        keycloak["preferred_username"] = "bob".into();
        keycloak["realm_access"] =
            serde_json::json!({"roles": ["PARTNER_ADMIN", "offline_access"]});
        let token = tokens.issuer.sign_raw(&keycloak).expect("token");
        let user = tokens.verifier().verify(&token).expect("valid");
        assert_eq!(user.partner_id, "bob");
        assert!(user.is_admin());
    }

    #[test]
    fn every_required_claim_must_be_present() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let now = now_seconds();
        assert!(
            verifier
                .verify(&tokens.issuer.sign_raw(&claims(now)).expect("token"))
                .is_ok()
        );
        for claim in ["exp", "iat", "sub", "iss", "aud"] {
            let mut incomplete = claims(now);
            incomplete.as_object_mut().expect("object").remove(claim);
            let token = tokens.issuer.sign_raw(&incomplete).expect("token");
            assert!(
                matches!(verifier.verify(&token), Err(UserTokenError::Invalid(_))),
                "a token without {claim} is refused"
            );
        }
        for (claim, value) in [("iss", "someone-else"), ("aud", "another-audience")] {
            let mut wrong = claims(now);
            wrong[claim] = value.into();
            let token = tokens.issuer.sign_raw(&wrong).expect("token");
            assert!(verifier.verify(&token).is_err(), "wrong {claim} is refused");
        }
    }

    #[test]
    fn a_remembered_verification_ends_with_its_key() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let token = tokens.token("alice", &["ftm_provider"]);
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok(), "remembered");
        verifier.set_keys(Vec::new());
        assert!(
            verifier.verify(&token).is_err(),
            "a removed key must stop verifying at once, remembered or not"
        );
    }

    #[test]
    fn remembered_verifications_are_used_only_until_the_token_expires() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let token = tokens.token("alice", &["ftm_provider"]);
        let remembered = User {
            partner_id: "remembered".into(),
            roles: Vec::new(),
            token: token.clone(),
        };
        let now = now_seconds();
        verifier
            .verified
            .remember_for_test(&token, remembered.clone(), now + 60);
        let user = verifier.verify(&token).expect("valid");
        assert_eq!(user.partner_id, "remembered", "answered from memory");
        verifier
            .verified
            .remember_for_test(&token, remembered, now - verifier.leeway - 1);
        let user = verifier.verify(&token).expect("valid");
        assert_eq!(
            user.partner_id, "alice",
            "an expired memory is verified again"
        );
    }

    #[test]
    fn not_before_and_expiry_are_honoured_within_the_leeway() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        // The test verifier allows 30 s of clock difference.
        assert!(
            verifier
                .verify(&tokens.token_at("a", &[], -100, -10))
                .is_ok(),
            "10 s late"
        );
        assert!(
            verifier
                .verify(&tokens.token_at("a", &[], -200, -90))
                .is_err(),
            "90 s late"
        );
        assert!(
            verifier.verify(&tokens.token_at("a", &[], 10, 100)).is_ok(),
            "10 s early"
        );
        assert!(
            verifier
                .verify(&tokens.token_at("a", &[], 120, 300))
                .is_err(),
            "not yet valid"
        );
    }

    #[test]
    fn symmetric_and_foreign_tokens_are_refused() {
        let tokens = TestTokens::new();
        let verifier = tokens.verifier();
        let now = now_seconds();
        for secret in [
            &b"test-service-secret-0123456789abcdef"[..],
            tokens.public_key_pem.as_bytes(),
        ] {
            let forged = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(now),
                &jsonwebtoken::EncodingKey::from_secret(secret).expect("key"),
            )
            .expect("token");
            assert!(verifier.verify(&forged).is_err(), "HS256 is never accepted");
        }
        assert!(matches!(
            verifier.verify(&tokens.foreign_token("a", &[])),
            Err(UserTokenError::UnknownKey(_))
        ));
        let hmac_jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x","alg":"HS256"}]}"#;
        assert!(keys_of_jwks(hmac_jwks).expect("document").is_empty());
    }

    /// A key source whose keys can be changed, counting its fetches.
    struct Rotating {
        keys: std::sync::Mutex<Vec<VerificationKey>>,
        fetches: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl KeySource for Rotating {
        async fn fetch(&self) -> anyhow::Result<Vec<VerificationKey>> {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.keys.lock().expect("keys").clone())
        }

        fn describe(&self) -> String {
            "test".into()
        }
    }

    #[tokio::test]
    async fn an_unknown_key_id_fetches_the_keys_again_at_most_every_pause() {
        let (old_private, old_public) = generate_ec_key_pem();
        let (new_private, new_public) = generate_ec_key_pem();
        let lifetime = Duration::from_secs(60);
        let old = TokenIssuer::new(&old_private, &[], TEST_ISSUER, TEST_AUDIENCE, lifetime)
            .expect("issuer");
        // The rotated issuer still publishes the old key.
        let new = TokenIssuer::new(
            &new_private,
            std::slice::from_ref(&old_public),
            TEST_ISSUER,
            TEST_AUDIENCE,
            lifetime,
        )
        .expect("issuer");
        assert_eq!(keys_of_jwks(&new.jwks()).expect("jwks").len(), 2);
        let source = Arc::new(Rotating {
            keys: std::sync::Mutex::new(vec![VerificationKey::from_pem(&old_public).expect("key")]),
            fetches: std::sync::atomic::AtomicU32::new(0),
        });
        let verifier =
            UserTokenVerifier::new(TEST_ISSUER, TEST_AUDIENCE, 30, vec![], Some(source.clone()));
        verifier.refresh(false).await.expect("first fetch");
        let old_token = old.issue("alice", &[]).expect("token");
        let new_token = new.issue("alice", &[]).expect("token");
        assert!(verifier.verify(&old_token).is_ok());
        assert!(matches!(
            verifier.verify(&new_token),
            Err(UserTokenError::UnknownKey(_))
        ));
        // The registry rotated: it now publishes both keys.
        *source.keys.lock().expect("keys") = keys_of_jwks(&new.jwks()).expect("jwks");
        // Within the pause after the last fetch, nothing is fetched.
        assert!(verifier.verify_fresh(&new_token).await.is_err());
        assert_eq!(source.fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        *verifier.last_fetch.lock().await = Some(Instant::now() - MIN_REFRESH_PAUSE);
        assert!(
            verifier.verify_fresh(&new_token).await.is_ok(),
            "fetched on the unknown kid"
        );
        assert_eq!(source.fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            verifier.verify(&old_token).is_ok(),
            "old tokens keep verifying"
        );
        let _ = new_public;
    }
}
