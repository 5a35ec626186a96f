//! The session: a cookie sealed with AES-256-GCM under a key every replica shares, so any
//! replica serves any request and nothing is stored server-side. The cookie is HttpOnly
//! (the user's token never reaches the page's JavaScript), SameSite=Strict, and Secure when
//! the portal is reached over HTTPS. Every visitor gets one, signed in or not: it carries the
//! CSRF token that every form must send back, and the language they chose.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use serde::{Deserialize, Serialize};

use crate::config::SessionSettings;
use crate::i18n::Language;

/// The cookie's name.
pub const COOKIE_NAME: &str = "pmp_session";

/// Binds a sealed value to its use: a value sealed for another purpose does not open here.
const ASSOCIATED_DATA: &[u8] = b"pmp-portal-session-v1";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// What the portal remembers about a visitor between requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    /// Sent back by every form (hidden field `csrf`); fresh for every new session.
    pub csrf: String,
    /// The language the visitor chose with the switcher, if they did.
    pub language: Option<Language>,
    /// The signed-in user, if any.
    pub user: Option<SignedIn>,
}

/// A signed-in user: their token (only ever sent to the platform services) and what the
/// pages need to know without a call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedIn {
    /// The partner id (user name).
    pub partner_id: String,
    /// The bearer token from `Login`.
    pub token: String,
    /// Upper-case roles from `Login`.
    pub roles: Vec<String>,
    /// Unix seconds after which the token is expired.
    pub expires_at: i64,
    /// The partner's registered language, if it has one.
    pub registered_language: Option<Language>,
}

impl SignedIn {
    /// Whether the user is a platform administrator.
    pub fn is_admin(&self) -> bool {
        self.roles
            .iter()
            .any(|role| role.eq_ignore_ascii_case(pmp_common::auth::ROLE_PARTNER_ADMIN))
    }
}

impl Session {
    /// A new anonymous session with a fresh CSRF token.
    pub fn anonymous(language: Option<Language>) -> Session {
        Session {
            csrf: random_token(),
            language,
            user: None,
        }
    }

    /// A new session for `user` (a fresh CSRF token, so that nothing learnt before sign-in
    /// is any use after it), keeping the chosen language.
    pub fn signed_in(&self, user: SignedIn) -> Session {
        Session {
            csrf: random_token(),
            language: self.language,
            user: Some(user),
        }
    }

    /// Whether `submitted` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        submitted.len() == self.csrf.len()
            && openssl::memcmp::eq(submitted.as_bytes(), self.csrf.as_bytes())
    }
}

/// 32 random bytes, URL-safe base64.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The key sealing session cookies.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> SessionKey {
        SessionKey { key }
    }

    /// Reads the key file (64 hex digits), creating it with a random key when allowed and
    /// absent.
    pub fn load(settings: &SessionSettings) -> anyhow::Result<SessionKey> {
        let path = std::path::Path::new(&settings.key_file);
        if !path.exists() && settings.generate_key {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let key: [u8; 32] = rand::random();
            write_private(path, &hex(&key))?;
            tracing::info!(file = %path.display(), "generated a session key");
        }
        let text = std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!("session key file {} unreadable: {error}", path.display())
        })?;
        let bytes = unhex(text.trim()).ok_or_else(|| {
            anyhow::anyhow!(
                "session key file {} must hold 64 hex digits",
                path.display()
            )
        })?;
        Ok(SessionKey { key: bytes })
    }

    /// The cookie value of `session`.
    pub fn seal(&self, session: &Session) -> anyhow::Result<String> {
        let plain = serde_json::to_vec(session)?;
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let mut tag = [0u8; TAG_BYTES];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            ASSOCIATED_DATA,
            &plain,
            &mut tag,
        )?;
        let mut value = Vec::with_capacity(NONCE_BYTES + sealed.len() + TAG_BYTES);
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        value.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(value))
    }

    /// The session in a cookie value; `None` when it was not sealed by this key, was
    /// altered, or does not decode.
    pub fn open(&self, value: &str) -> Option<Session> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_BYTES);
        let (sealed, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            ASSOCIATED_DATA,
            sealed,
            tag,
        )
        .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> SignedIn {
        SignedIn {
            partner_id: "acme".into(),
            token: "header.payload.signature".into(),
            roles: vec!["FTM_PROVIDER".into()],
            expires_at: 4_000_000_000,
            registered_language: Some(Language::French),
        }
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only() {
        let key = SessionKey::from_bytes([7; 32]);
        let session = Session::anonymous(None).signed_in(user());
        let sealed = key.seal(&session).expect("sealed");
        assert_eq!(key.open(&sealed), Some(session));
        assert!(
            !sealed.contains("header.payload"),
            "the token must not be readable"
        );
        assert_eq!(SessionKey::from_bytes([8; 32]).open(&sealed), None);
    }

    #[test]
    fn an_altered_cookie_does_not_open() {
        let key = SessionKey::from_bytes([7; 32]);
        let sealed = key.seal(&Session::anonymous(None)).expect("sealed");
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        bytes[NONCE_BYTES] ^= 1;
        assert_eq!(key.open(&URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(key.open("not base64 !"), None);
        assert_eq!(key.open(""), None);
    }

    #[test]
    fn signing_in_renews_the_csrf_token() {
        let anonymous = Session::anonymous(Some(Language::Arabic));
        let signed_in = anonymous.signed_in(user());
        assert_ne!(anonymous.csrf, signed_in.csrf);
        assert_eq!(signed_in.language, Some(Language::Arabic));
        assert!(signed_in.csrf_matches(&signed_in.csrf.clone()));
        assert!(!signed_in.csrf_matches(&anonymous.csrf));
        assert!(!signed_in.csrf_matches(""));
    }

    #[test]
    fn key_files_are_created_once_and_read_back() {
        let directory = tempfile::tempdir().expect("directory");
        let settings = SessionSettings {
            key_file: directory.path().join("key.hex").display().to_string(),
            generate_key: true,
            secure_cookie: false,
        };
        let first = SessionKey::load(&settings).expect("created");
        let second = SessionKey::load(&settings).expect("read");
        assert_eq!(first.key, second.key);
        std::fs::write(&settings.key_file, "too short").expect("overwrite");
        assert!(SessionKey::load(&settings).is_err());
    }
}
