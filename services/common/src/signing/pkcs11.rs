//! Keys in a PKCS#11 token, through the `cryptoki` crate.
//!
//! One PKCS#11 context per module per process (a module may be initialised once), shared by
//! every key of the process. A key keeps a small pool of logged-in sessions, since a
//! session serves one operation at a time; a session that fails is dropped rather than
//! returned, so a token that comes back (a network HSM restarting) gets fresh sessions.
//! RSA keys sign with `CKM_SHA256_RSA_PKCS`; EC keys sign a digest computed here with raw
//! `CKM_ECDSA`, which every token supports.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Public};

use super::{HsmSettings, KeyAlgorithm, PrivateKey, SigningError};

/// Sessions kept open per key, beyond which a busy key opens and closes extra ones.
const POOLED_SESSIONS: usize = 4;

/// The initialised context of each module loaded in this process.
fn context_of(module: &str) -> Result<Pkcs11, SigningError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<String, Pkcs11>>> = OnceLock::new();
    let contexts = CONTEXTS.get_or_init(Default::default);
    let mut contexts = contexts
        .lock()
        .map_err(|_| SigningError::Unavailable("PKCS#11 context lock poisoned".into()))?;
    if let Some(context) = contexts.get(module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(|error| {
        SigningError::Unavailable(format!("cannot load PKCS#11 module {module}: {error}"))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => {
            return Err(SigningError::Unavailable(format!(
                "cannot initialise PKCS#11 module {module}: {error}"
            )));
        }
    }
    contexts.insert(module.to_owned(), context.clone());
    Ok(context)
}

/// The slot holding the token labelled `label`.
fn slot_of(context: &Pkcs11, label: &str) -> Result<Slot, SigningError> {
    let slots = context
        .get_slots_with_initialized_token()
        .map_err(|error| {
            SigningError::Unavailable(format!("cannot list PKCS#11 slots: {error}"))
        })?;
    for slot in slots {
        if let Ok(info) = context.get_token_info(slot)
            && info.label().trim() == label
        {
            return Ok(slot);
        }
    }
    Err(SigningError::Unavailable(format!(
        "no PKCS#11 token labelled {label:?}"
    )))
}

/// A read-write session on `slot`, logged in as the user with `pin`. A wrong PIN is a
/// configuration error (retrying would lock the token), never echoed.
fn user_session(context: &Pkcs11, slot: Slot, pin: &AuthPin) -> Result<Session, SigningError> {
    let session = context
        .open_rw_session(slot)
        .map_err(|error| SigningError::Unavailable(format!("cannot open a session: {error}")))?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CryptokiError::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        )) => Err(SigningError::Configuration(
            "the token refused the configured PIN".into(),
        )),
        Err(CryptokiError::Pkcs11(RvError::PinLocked, _)) => Err(SigningError::Configuration(
            "the token's user PIN is locked".into(),
        )),
        Err(error) => Err(SigningError::Unavailable(format!("cannot log in: {error}"))),
    }
}

/// The only object of `class` labelled `label`.
fn object(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<ObjectHandle, SigningError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|error| SigningError::Unavailable(format!("cannot search the token: {error}")))?;
    match found.as_slice() {
        [handle] => Ok(*handle),
        [] => Err(SigningError::Configuration(format!(
            "the token holds no {class} labelled {label:?}"
        ))),
        _ => Err(SigningError::Configuration(format!(
            "the token holds several {class} objects labelled {label:?}"
        ))),
    }
}

/// The public key of the key pair labelled `label`, read out of the token.
fn public_key(session: &Session, label: &str) -> Result<PKey<Public>, SigningError> {
    let handle = object(session, ObjectClass::PUBLIC_KEY, label)?;
    let unreadable =
        |error: CryptokiError| SigningError::Unavailable(format!("cannot read {label:?}: {error}"));
    let attributes = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(unreadable)?;
    let (mut key_type, mut modulus, mut exponent, mut parameters, mut point) =
        (None, None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(value) => key_type = Some(value),
            Attribute::Modulus(value) => modulus = Some(value),
            Attribute::PublicExponent(value) => exponent = Some(value),
            Attribute::EcParams(value) => parameters = Some(value),
            Attribute::EcPoint(value) => point = Some(value),
            _ => {}
        }
    }
    let incomplete = || SigningError::Configuration(format!("public key {label:?} is incomplete"));
    match key_type {
        Some(KeyType::RSA) => {
            let n = openssl::bn::BigNum::from_slice(&modulus.ok_or_else(incomplete)?)?;
            let e = openssl::bn::BigNum::from_slice(&exponent.ok_or_else(incomplete)?)?;
            Ok(PKey::from_rsa(openssl::rsa::Rsa::from_public_components(
                n, e,
            )?)?)
        }
        Some(KeyType::EC) => {
            let parameters = parameters.ok_or_else(incomplete)?;
            let point = point.ok_or_else(incomplete)?;
            let point = octet_string_contents(&point).ok_or_else(incomplete)?;
            let nid = curve_of(&parameters).ok_or_else(|| {
                SigningError::Unsupported(format!(
                    "{label:?} is on a curve other than P-256 or P-384"
                ))
            })?;
            let group = openssl::ec::EcGroup::from_curve_name(nid)?;
            let mut context = openssl::bn::BigNumContext::new()?;
            let point = openssl::ec::EcPoint::from_bytes(&group, point, &mut context)?;
            Ok(PKey::from_ec_key(openssl::ec::EcKey::from_public_key(
                &group, &point,
            )?)?)
        }
        other => Err(SigningError::Unsupported(format!(
            "{label:?} is a {other:?} key (RSA or EC only)"
        ))),
    }
}

/// DER of the OIDs of P-256 and P-384, as `CKA_EC_PARAMS` holds them.
const P256_PARAMETERS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMETERS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn curve_of(parameters: &[u8]) -> Option<openssl::nid::Nid> {
    match parameters {
        P256_PARAMETERS => Some(openssl::nid::Nid::X9_62_PRIME256V1),
        P384_PARAMETERS => Some(openssl::nid::Nid::SECP384R1),
        _ => None,
    }
}

/// The contents of a DER OCTET STRING (`CKA_EC_POINT` wraps the point in one); a bare point
/// (some tokens omit the wrapping) is returned as it is.
fn octet_string_contents(der: &[u8]) -> Option<&[u8]> {
    match der {
        [0x04, length, rest @ ..] if usize::from(*length) == rest.len() && *length < 0x80 => {
            Some(rest)
        }
        [0x04, 0x81, length, rest @ ..] if usize::from(*length) == rest.len() => Some(rest),
        [0x04, ..] => Some(der),
        _ => None,
    }
}

/// A private key that stays in a PKCS#11 token.
pub struct Pkcs11Key {
    context: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    label: String,
    token_label: String,
    public: PKey<Public>,
    algorithm: KeyAlgorithm,
    sessions: Mutex<Vec<(Session, ObjectHandle)>>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Pkcs11Key")
            .field("token", &self.token_label)
            .field("label", &self.label)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// The key pair labelled `label` in the token of `hsm`: logs in, finds the private key
    /// and reads the public key out. `Unavailable` when the module or token cannot be
    /// reached; `Configuration` for a wrong PIN or a missing key.
    pub fn open(hsm: &HsmSettings, label: &str) -> Result<Pkcs11Key, SigningError> {
        let pin = read_pin(&hsm.pin_file)?;
        let context = context_of(hsm.module.trim())?;
        let token_label = hsm.token_label.trim().to_owned();
        let slot = slot_of(&context, &token_label)?;
        let session = user_session(&context, slot, &pin)?;
        let private = object(&session, ObjectClass::PRIVATE_KEY, label)?;
        let public = public_key(&session, label)?;
        let algorithm = KeyAlgorithm::of(&public)?;
        Ok(Pkcs11Key {
            context,
            slot,
            pin,
            label: label.to_owned(),
            token_label,
            public,
            algorithm,
            sessions: Mutex::new(vec![(session, private)]),
        })
    }

    /// A pooled session with the private key's handle in it, or a new one.
    fn session(&self) -> Result<(Session, ObjectHandle), SigningError> {
        if let Some(pooled) = self.sessions.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(pooled);
        }
        let session = user_session(&self.context, self.slot, &self.pin)?;
        let private = object(&session, ObjectClass::PRIVATE_KEY, &self.label)?;
        Ok((session, private))
    }

    fn give_back(&self, session: (Session, ObjectHandle)) {
        if let Ok(mut pool) = self.sessions.lock()
            && pool.len() < POOLED_SESSIONS
        {
            pool.push(session);
        }
    }
}

impl PrivateKey for Pkcs11Key {
    fn public_key(&self) -> &PKey<Public> {
        &self.public
    }

    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let (session, private) = self.session()?;
        let signed = match self.algorithm {
            KeyAlgorithm::Rsa { .. } => session.sign(&Mechanism::Sha256RsaPkcs, private, message),
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let digest = openssl::hash::hash(self.algorithm.digest(), message)?;
                session.sign(&Mechanism::Ecdsa, private, &digest)
            }
        };
        let signature = match signed {
            Ok(signature) => signature,
            // The session is dropped (closed), not pooled: the next call starts afresh.
            Err(error) => {
                return Err(SigningError::Unavailable(format!(
                    "token {:?} failed to sign with {:?}: {error}",
                    self.token_label, self.label
                )));
            }
        };
        self.give_back((session, private));
        match self.algorithm {
            KeyAlgorithm::Rsa { .. } => Ok(signature),
            _ => der_of_raw_ecdsa(&signature),
        }
    }

    fn describe(&self) -> String {
        format!("PKCS#11 token {:?}, key {:?}", self.token_label, self.label)
    }
}

/// A raw `r || s` ECDSA signature (PKCS#11's form) as DER.
fn der_of_raw_ecdsa(raw: &[u8]) -> Result<Vec<u8>, SigningError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(SigningError::Unavailable(
            "the token returned a malformed ECDSA signature".into(),
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let signature = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(r)?,
        openssl::bn::BigNum::from_slice(s)?,
    )?;
    Ok(signature.to_der()?)
}

/// The PIN in `path` (trailing newline ignored).
fn read_pin(path: &str) -> Result<AuthPin, SigningError> {
    let text = std::fs::read_to_string(path.trim()).map_err(|error| {
        SigningError::Configuration(format!("cannot read the HSM PIN file {path}: {error}"))
    })?;
    let pin = text.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err(SigningError::Configuration(format!(
            "the HSM PIN file {path} is empty"
        )));
    }
    Ok(AuthPin::new(pin.into()))
}

/// Generates a key pair labelled `label` in the token of `hsm` (the key ceremony): the
/// private key is sensitive and never extractable; returns the public key.
pub fn generate_key_pair(
    hsm: &HsmSettings,
    label: &str,
    algorithm: KeyAlgorithm,
) -> Result<PKey<Public>, SigningError> {
    let pin = read_pin(&hsm.pin_file)?;
    let context = context_of(hsm.module.trim())?;
    let slot = slot_of(&context, hsm.token_label.trim())?;
    let session = user_session(&context, slot, &pin)?;
    let existing = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(|error| SigningError::Unavailable(format!("cannot search the token: {error}")))?;
    if !existing.is_empty() {
        return Err(SigningError::Configuration(format!(
            "the token already holds objects labelled {label:?}"
        )));
    }
    let mut id = [0u8; 16];
    openssl::rand::rand_bytes(&mut id)?;
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Private(private),
        ]
    };
    let mut public_template = common(false);
    public_template.push(Attribute::Verify(true));
    let mut private_template = common(true);
    private_template.extend([
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ]);
    let mechanism = match algorithm {
        KeyAlgorithm::Rsa { bits } => {
            public_template.extend([
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
            let parameters = if algorithm == KeyAlgorithm::EcP256 {
                P256_PARAMETERS
            } else {
                P384_PARAMETERS
            };
            public_template.push(Attribute::EcParams(parameters.to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    session
        .generate_key_pair(&mechanism, &public_template, &private_template)
        .map_err(|error| {
            SigningError::Unavailable(format!("cannot generate {label:?}: {error}"))
        })?;
    public_key(&session, label)
}

/// A fresh token in the module's free slot, for [`super::testing`].
#[cfg(any(test, feature = "testing"))]
pub(super) fn initialise_token(
    module: &str,
    token_label: &str,
    so_pin: &str,
    user_pin: &str,
) -> Result<(), SigningError> {
    let context = context_of(module)?;
    let unavailable = |error: CryptokiError| SigningError::Unavailable(error.to_string());
    // Two tests of one process must not initialise the same free slot; and the module adds
    // its next free slot only once the previous one is taken.
    static INITIALISING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INITIALISING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut free = None;
    for _ in 0..40 {
        free = context
            .get_slots_with_token()
            .map_err(unavailable)?
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| !info.token_initialized())
            });
        if free.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let free = free.ok_or_else(|| SigningError::Unavailable("no free PKCS#11 slot".into()))?;
    let so_pin = AuthPin::new(so_pin.into());
    context
        .init_token(free, &so_pin, token_label)
        .map_err(unavailable)?;
    let slot = slot_of(&context, token_label)?;
    let session = context.open_rw_session(slot).map_err(unavailable)?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(unavailable)?;
    session
        .init_pin(&AuthPin::new(user_pin.into()))
        .map_err(unavailable)?;
    session.logout().map_err(unavailable)?;
    Ok(())
}
