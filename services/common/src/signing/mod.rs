//! Private keys that sign, wherever they live: a PEM file in this process's memory (the
//! development default) or a PKCS#11 token (an HSM; SoftHSM2 in development and tests),
//! chosen by configuration. The platform signing key, the registry's token key and each
//! service's identity key are used only through [`PrivateKey`], so in HSM mode no private
//! key is ever in the process or on its disk: only public keys and certificates are read
//! out of the token.
//!
//! Every signature uses one digest per key: SHA-256 for RSA (PKCS#1 v1.5) and EC P-256,
//! SHA-384 for EC P-384, so X.509 copies, CRLs and JWS tokens (RS256, ES256, ES384) all agree
//! with the key.

mod pkcs11;
pub mod rotation;

use std::sync::Arc;

use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use serde::Deserialize;

pub use self::pkcs11::{Pkcs11Key, generate_key_pair};

/// Where a signing key's private half is (recorded for rotation): never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A key pair in the service's HSM, by label.
    Hsm(String),
    /// A PEM key file, at the same path on every replica.
    File(String),
}

impl std::fmt::Display for KeyLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyLocation::Hsm(label) => write!(formatter, "PKCS#11 label {label}"),
            KeyLocation::File(path) => write!(formatter, "file {path}"),
        }
    }
}

impl KeyLocation {
    /// The key at this location, opened (blocking: an HSM log-in).
    pub fn open(&self, hsm: &HsmSettings) -> Result<Arc<dyn PrivateKey>, SigningError> {
        match self {
            KeyLocation::Hsm(label) if hsm.enabled() => Ok(Arc::new(Pkcs11Key::open(hsm, label)?)),
            KeyLocation::Hsm(_) => Err(SigningError::Configuration(
                "this service has no HSM configured (hsm.module)".into(),
            )),
            KeyLocation::File(path) => {
                let pem = read_key_file(path)?;
                Ok(Arc::new(InMemoryKey::from_pem(&pem, path)?))
            }
        }
    }

    /// The `(label, file)` columns that store it, one of them empty.
    pub fn columns(&self) -> (String, String) {
        match self {
            KeyLocation::Hsm(label) => (label.clone(), String::new()),
            KeyLocation::File(path) => (String::new(), path.clone()),
        }
    }

    /// The location stored as `(label, file)`, if exactly one is set.
    pub fn from_columns(label: String, file: String) -> Option<KeyLocation> {
        match (label.is_empty(), file.is_empty()) {
            (false, true) => Some(KeyLocation::Hsm(label)),
            (true, false) => Some(KeyLocation::File(file)),
            _ => None,
        }
    }
}

/// Largest key file read: an RSA-4096 PEM is about 3.3 KiB.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A key file named by a request (an admin's rotation): a regular file of bounded size, so
/// that a path such as `/dev/zero` cannot make the service read without end.
fn read_key_file(path: &str) -> Result<Vec<u8>, SigningError> {
    use std::io::Read;
    let unreadable =
        |error: std::io::Error| SigningError::Configuration(format!("cannot read {path}: {error}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() || metadata.len() > MAX_KEY_FILE_BYTES {
        return Err(SigningError::Configuration(format!(
            "{path} is not a key file (a regular file of at most {MAX_KEY_FILE_BYTES} bytes)"
        )));
    }
    let mut pem = Vec::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_end(&mut pem)
        .map_err(unreadable)?;
    Ok(pem)
}

/// The life of a signing key in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs (one key at a time).
    Active,
    /// Replaced; published until what it signed expires.
    Previous,
}

impl KeyState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "NEXT",
            KeyState::Active => "ACTIVE",
            KeyState::Previous => "PREVIOUS",
        }
    }

    /// The state of a stored name.
    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "NEXT" => Some(KeyState::Next),
            "ACTIVE" => Some(KeyState::Active),
            "PREVIOUS" => Some(KeyState::Previous),
            _ => None,
        }
    }
}

/// The kinds of keys the platform signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA of at least 2048 bits, PKCS#1 v1.5 with SHA-256 (RS256).
    Rsa {
        /// Modulus size.
        bits: u32,
    },
    /// ECDSA on P-256 with SHA-256 (ES256).
    EcP256,
    /// ECDSA on P-384 with SHA-384 (ES384).
    EcP384,
}

impl KeyAlgorithm {
    /// The algorithm of `key`, or why the platform does not sign with it.
    pub fn of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Result<KeyAlgorithm, SigningError> {
        match key.id() {
            Id::RSA if key.bits() >= 2048 => Ok(KeyAlgorithm::Rsa { bits: key.bits() }),
            Id::EC if key.bits() == 256 => Ok(KeyAlgorithm::EcP256),
            Id::EC if key.bits() == 384 => Ok(KeyAlgorithm::EcP384),
            _ => Err(SigningError::Unsupported(format!(
                "{:?} of {} bits (RSA ≥ 2048, EC P-256 or P-384 only)",
                key.id(),
                key.bits()
            ))),
        }
    }

    /// The digest every signature of such a key uses.
    pub fn digest(self) -> MessageDigest {
        match self {
            KeyAlgorithm::EcP384 => MessageDigest::sha384(),
            _ => MessageDigest::sha256(),
        }
    }

    /// The JWS `alg` of such a key.
    pub fn jws_algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            KeyAlgorithm::Rsa { .. } => jsonwebtoken::Algorithm::RS256,
            KeyAlgorithm::EcP256 => jsonwebtoken::Algorithm::ES256,
            KeyAlgorithm::EcP384 => jsonwebtoken::Algorithm::ES384,
        }
    }

    /// Bytes of each of r and s in a raw (JWS) ECDSA signature.
    fn scalar_bytes(self) -> Option<i32> {
        match self {
            KeyAlgorithm::Rsa { .. } => None,
            KeyAlgorithm::EcP256 => Some(32),
            KeyAlgorithm::EcP384 => Some(48),
        }
    }
}

/// Why a key could not be loaded or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key store cannot be reached or failed on this attempt (an HSM down, a session
    /// lost); a later attempt may succeed. Services answer `UNAVAILABLE`.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// The configuration names no usable key (missing label, wrong PIN, bad file).
    #[error("{0}")]
    Configuration(String),
    /// A key of a kind the platform does not sign with.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// OpenSSL failed on a key it had parsed.
    #[error("signature encoding failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// A private key that signs without necessarily being in this process.
pub trait PrivateKey: Send + Sync + std::fmt::Debug {
    /// The public half (read out of the token for an HSM key).
    fn public_key(&self) -> &PKey<Public>;

    /// The key's algorithm.
    fn algorithm(&self) -> KeyAlgorithm;

    /// Signs `message` with the key's digest (see the module documentation); ECDSA
    /// signatures are DER `Ecdsa-Sig-Value`, as X.509 and CRLs carry them. Blocking (an HSM
    /// round trip): call it off the async workers.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError>;

    /// The key as OpenSSL holds it, when it is in this process's memory; lets X.509 code
    /// sign in one step instead of assembling the signature.
    fn in_memory(&self) -> Option<&PKey<Private>> {
        None
    }

    /// Where the key is, for log lines (never key material).
    fn describe(&self) -> String;
}

/// A private key read from a PEM file (or text) into this process.
pub struct InMemoryKey {
    key: PKey<Private>,
    public: PKey<Public>,
    algorithm: KeyAlgorithm,
    origin: String,
}

impl std::fmt::Debug for InMemoryKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InMemoryKey")
            .field("origin", &self.origin)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl InMemoryKey {
    /// The key in `pem` (PKCS#8 or traditional, unencrypted); `origin` says where it came
    /// from, for messages.
    pub fn from_pem(pem: &[u8], origin: &str) -> Result<InMemoryKey, SigningError> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| {
            SigningError::Configuration(format!("{origin} is not a PEM private key"))
        })?;
        Self::new(key, origin)
    }

    /// Wraps a key already parsed.
    pub fn new(key: PKey<Private>, origin: &str) -> Result<InMemoryKey, SigningError> {
        let algorithm = KeyAlgorithm::of(&key)?;
        let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
        Ok(InMemoryKey {
            key,
            public,
            algorithm,
            origin: origin.to_owned(),
        })
    }
}

impl PrivateKey for InMemoryKey {
    fn public_key(&self) -> &PKey<Public> {
        &self.public
    }

    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signer = openssl::sign::Signer::new(self.algorithm.digest(), &self.key)?;
        signer.update(message)?;
        Ok(signer.sign_to_vec()?)
    }

    fn in_memory(&self) -> Option<&PKey<Private>> {
        Some(&self.key)
    }

    fn describe(&self) -> String {
        self.origin.clone()
    }
}

/// The PKCS#11 token a service's HSM keys are in. Empty `module`: no HSM, every key is a
/// file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSettings {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    #[serde(default)]
    pub module: String,
    /// The label of the token holding the keys.
    #[serde(default)]
    pub token_label: String,
    /// A file holding the token's user PIN (a mounted Secret); read once at start-up and
    /// never logged.
    #[serde(default)]
    pub pin_file: String,
}

impl HsmSettings {
    /// Whether keys may come from a token.
    pub fn enabled(&self) -> bool {
        !self.module.trim().is_empty()
    }

    /// Checks that a key configured by label (setting `setting`) has an HSM to be in.
    pub fn validate_label(&self, setting: &str, label: &str) -> Result<(), String> {
        if !label.trim().is_empty() && !self.enabled() {
            return Err(format!(
                "{setting} names an HSM key, but hsm.module is not set"
            ));
        }
        Ok(())
    }

    /// Checks that an enabled HSM names its token and PIN.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if self.token_label.trim().is_empty() {
            return Err("hsm.token_label is required with hsm.module".into());
        }
        if self.pin_file.trim().is_empty() {
            return Err("hsm.pin_file is required with hsm.module".into());
        }
        Ok(())
    }
}

/// The key pair labelled `label` in the HSM of `hsm` (`what` names it in messages). While
/// the HSM cannot be reached the service waits, NOT_SERVING, logging each attempt; a
/// configuration error (no HSM configured, wrong PIN, no such key) fails the start-up.
pub async fn open_when_reachable(
    hsm: &HsmSettings,
    label: &str,
    what: &str,
) -> anyhow::Result<Arc<dyn PrivateKey>> {
    if !hsm.enabled() {
        anyhow::bail!("{what} is configured as HSM key {label:?}, but hsm.module is not set");
    }
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        let (settings, owned_label) = (hsm.clone(), label.to_owned());
        let opened =
            tokio::task::spawn_blocking(move || Pkcs11Key::open(&settings, &owned_label)).await?;
        match opened {
            Ok(key) => {
                tracing::info!(key = %key.describe(), "{what} is in the HSM");
                return Ok(Arc::new(key));
            }
            Err(SigningError::Unavailable(reason)) => {
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64,
                    "HSM unreachable: cannot open {what}; not serving until it is");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            Err(error) => anyhow::bail!("{what}: {error}"),
        }
    }
}

/// `signature` of `key` as a JWS carries it: RSA as is, ECDSA as raw `r || s`.
pub fn jws_signature(algorithm: KeyAlgorithm, signature: Vec<u8>) -> Result<Vec<u8>, SigningError> {
    let Some(size) = algorithm.scalar_bytes() else {
        return Ok(signature);
    };
    let parsed = openssl::ecdsa::EcdsaSig::from_der(&signature)?;
    let mut raw = parsed.r().to_vec_padded(size)?;
    raw.extend(parsed.s().to_vec_padded(size)?);
    Ok(raw)
}

/// A JWS compact serialisation (a JWT) of `claims` with `header`, signed by `key`.
pub fn sign_jwt(
    key: &dyn PrivateKey,
    header: &jsonwebtoken::Header,
    claims: &impl serde::Serialize,
) -> Result<String, SigningError> {
    use base64::Engine;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let unserialisable = |error: serde_json::Error| {
        SigningError::Configuration(format!("token does not serialise: {error}"))
    };
    let header = serde_json::to_vec(header).map_err(unserialisable)?;
    let claims = serde_json::to_vec(claims).map_err(unserialisable)?;
    let signing_input = format!("{}.{}", encode(&header), encode(&claims));
    let signature = jws_signature(key.algorithm(), key.sign(signing_input.as_bytes())?)?;
    Ok(format!("{signing_input}.{}", encode(&signature)))
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
