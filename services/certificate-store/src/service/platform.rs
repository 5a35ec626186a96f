//! The platform signing keys and their rotation without downtime.
//!
//! Every replica signs platform-signed copies with the one `ACTIVE` key recorded in the
//! database, and picks up an activation by polling. A rotation is two admin calls: add the
//! new certificate with the location of its key (published at once, signing nothing), then
//! activate it; the replaced key stays published (`ListPlatformSigningKeys`) until the last
//! copy it signed expires, so verifiers never meet a copy whose signer they cannot find.
//! The key configured at start-up (`platform.*`) is recorded as the first active key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use openssl::x509::X509;

use pmp_common::auth::Caller;
use pmp_common::signing::{HsmSettings, SigningError};

use super::{authorize, blocking};
use crate::domain::{AuditEvent, KeyLocation, PlatformKeyRecord, PlatformKeyState};
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::x509::{self, CertError, CertificateFacts, PlatformSigner};

/// How long a copy is valid (see [`PlatformSigner::resign_at`]): how long a replaced key
/// stays published.
const COPY_VALIDITY: chrono::Duration = chrono::Duration::days(365);

/// `AddPlatformSigningKey`.
#[derive(Debug, Clone)]
pub(crate) struct AddPlatformKey {
    pub(crate) certificate_pem: String,
    pub(crate) location: KeyLocation,
}

/// `ActivatePlatformSigningKey`.
#[derive(Debug, Clone)]
pub(crate) struct PlatformKeyLookup {
    pub(crate) key_id: String,
}

/// `ListPlatformSigningKeys`.
#[derive(Debug, Clone)]
pub(crate) struct ListPlatformKeys;

/// The answer of `ListPlatformSigningKeys`.
#[derive(Debug, Clone)]
pub(crate) struct PublishedPlatformKeys {
    pub(crate) root_certificate_pem: String,
    pub(crate) keys: Vec<PlatformKeyRecord>,
}

impl super::Input for AddPlatformKey {
    const ACCESS: super::Access = super::Access::Admin;
}

impl super::Input for PlatformKeyLookup {
    const ACCESS: super::Access = super::Access::Admin;
}

impl super::Input for ListPlatformKeys {
    const ACCESS: super::Access = super::Access::Any;
}

/// Until when verifiers need `key`: while it may sign, and then as long as its copies live.
pub(crate) fn published_until(key: &PlatformKeyRecord) -> Option<DateTime<Utc>> {
    match key.state {
        PlatformKeyState::Next | PlatformKeyState::Active => None,
        PlatformKeyState::Previous => key.retired_at.map(|retired| retired + COPY_VALIDITY),
    }
}

/// The key that signs now.
struct Active {
    key_id: String,
    signer: Arc<PlatformSigner>,
}

/// The platform signing keys of this replica.
pub(crate) struct PlatformKeys {
    repository: Arc<dyn CertificateRepository>,
    hsm: HsmSettings,
    root: X509,
    root_pem: String,
    active: ArcSwap<Active>,
    /// Signers opened so far, by key id (opening an HSM key logs in; do it once).
    opened: Mutex<HashMap<String, Arc<PlatformSigner>>>,
}

/// The id of a signing certificate: hex SHA-256 of its DER.
fn key_id_of(certificate: &X509) -> Result<String, StoreError> {
    let der = certificate.to_der().map_err(CertError::from)?;
    Ok(hex::encode(openssl::sha::sha256(&der)))
}

impl PlatformKeys {
    /// The keys of the store whose configured signer is `configured` (its key at
    /// `location`), under the platform root `root_pem`: records it as the first active key
    /// when none is recorded, loads the active one, and polls every `interval`.
    pub(crate) async fn start(
        repository: Arc<dyn CertificateRepository>,
        configured: Arc<PlatformSigner>,
        location: KeyLocation,
        root_pem: String,
        hsm: HsmSettings,
        interval: Duration,
    ) -> Result<Arc<PlatformKeys>, StoreError> {
        let root = X509::from_pem(root_pem.as_bytes()).map_err(|_| {
            StoreError::Internal("the platform root is not a PEM certificate".into())
        })?;
        let key_id = key_id_of(&configured.certificate)?;
        let now = Utc::now();
        let initial = PlatformKeyRecord {
            key_id: key_id.clone(),
            certificate_pem: configured.certificate_pem()?,
            location,
            state: PlatformKeyState::Active,
            not_after: CertificateFacts::of(&configured.certificate)?.not_after,
            added_at: now,
            activated_at: Some(now),
            retired_at: None,
        };
        adopt_configured(repository.as_ref(), &initial).await?;
        let keys = Arc::new(PlatformKeys {
            repository,
            hsm,
            root,
            root_pem,
            active: ArcSwap::from_pointee(Active {
                key_id: key_id.clone(),
                signer: Arc::clone(&configured),
            }),
            opened: Mutex::new(HashMap::from([(key_id, configured)])),
        });
        keys.refresh().await?;
        tokio::spawn(poll(Arc::downgrade(&keys), interval));
        Ok(keys)
    }

    /// The signer of new copies.
    pub(crate) fn signer(&self) -> Arc<PlatformSigner> {
        Arc::clone(&self.active.load().signer)
    }

    /// Reads the recorded keys and switches to the active one when it changed. A key this
    /// replica cannot open yet (its HSM unreachable) leaves the previous one signing.
    pub(crate) async fn refresh(&self) -> Result<(), StoreError> {
        let keys = self.repository.platform_keys().await?;
        let Some(active) = keys
            .iter()
            .find(|key| key.state == PlatformKeyState::Active)
        else {
            return Ok(());
        };
        if active.key_id == self.active.load().key_id {
            return Ok(());
        }
        let signer = self.open(active).await?;
        tracing::info!(key_id = %active.key_id, location = %active.location,
            "platform signing key switched");
        self.active.store(Arc::new(Active {
            key_id: active.key_id.clone(),
            signer,
        }));
        Ok(())
    }

    /// The signer of `key`, opened once.
    async fn open(&self, key: &PlatformKeyRecord) -> Result<Arc<PlatformSigner>, StoreError> {
        if let Some(signer) = self
            .opened
            .lock()
            .ok()
            .and_then(|opened| opened.get(&key.key_id).cloned())
        {
            return Ok(signer);
        }
        let (certificate_pem, location, hsm) = (
            key.certificate_pem.clone(),
            key.location.clone(),
            self.hsm.clone(),
        );
        let signer = blocking(move || open_signer(&certificate_pem, &location, &hsm)).await?;
        let signer = Arc::new(signer);
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(key.key_id.clone(), Arc::clone(&signer));
        }
        Ok(signer)
    }

    /// `AddPlatformSigningKey`.
    pub(crate) async fn add(
        &self,
        caller: &Caller,
        request: AddPlatformKey,
    ) -> Result<PlatformKeyRecord, StoreError> {
        authorize(caller, &request)?;
        let root = self.root.clone();
        let certificate_pem = request.certificate_pem.clone();
        let (certificate, not_after) =
            blocking(move || issued_by_root(&certificate_pem, &root)).await?;
        let key = PlatformKeyRecord {
            key_id: key_id_of(&certificate)?,
            certificate_pem: x509::pem_string(&certificate)?,
            location: request.location,
            state: PlatformKeyState::Next,
            not_after,
            added_at: Utc::now(),
            activated_at: None,
            retired_at: None,
        };
        // Refuses a key this replica cannot use, or one that is not the certificate's.
        self.open(&key).await?;
        let audit = AuditEvent::now(
            &caller.actor(),
            "PLATFORM_SIGNING_KEY_ADDED",
            &key.key_id,
            None,
            Some(PlatformKeyState::Next.as_str()),
        );
        self.repository.insert_platform_key(&key, audit).await?;
        tracing::info!(key_id = %key.key_id, location = %key.location, "platform signing key added");
        Ok(key)
    }

    /// `ActivatePlatformSigningKey`.
    pub(crate) async fn activate(
        &self,
        caller: &Caller,
        request: PlatformKeyLookup,
    ) -> Result<PlatformKeyRecord, StoreError> {
        authorize(caller, &request)?;
        let keys = self.repository.platform_keys().await?;
        let key = keys
            .iter()
            .find(|key| key.key_id == request.key_id.trim())
            .ok_or(StoreError::CertificateNotFound)?;
        // Never activate a key that cannot sign here.
        self.open(key).await?;
        let before = keys
            .iter()
            .find(|key| key.state == PlatformKeyState::Active)
            .map(|key| format!("{} active", key.key_id));
        let audit = AuditEvent::now(
            &caller.actor(),
            "PLATFORM_SIGNING_KEY_ACTIVATED",
            &key.key_id,
            before.as_deref(),
            Some(PlatformKeyState::Active.as_str()),
        );
        let activated = self
            .repository
            .activate_platform_key(&key.key_id, Utc::now(), audit)
            .await?;
        self.refresh().await?;
        Ok(activated)
    }

    /// `ListPlatformSigningKeys`: the root and every key verifiers still need.
    pub(crate) async fn list(
        &self,
        caller: &Caller,
        request: ListPlatformKeys,
    ) -> Result<PublishedPlatformKeys, StoreError> {
        authorize(caller, &request)?;
        let now = Utc::now();
        let keys = self
            .repository
            .platform_keys()
            .await?
            .into_iter()
            .filter(|key| published_until(key).is_none_or(|until| until > now))
            .collect();
        Ok(PublishedPlatformKeys {
            root_certificate_pem: self.root_pem.clone(),
            keys,
        })
    }
}

/// Records the configured key: as the first active key when none is recorded; as the new
/// active key when keys are recorded but not this one (the operator changed the configured
/// certificate: the replaced key stays published for its copies). A key recorded before is
/// left to the recorded state (an activation through the API outlives restarts).
async fn adopt_configured(
    repository: &dyn CertificateRepository,
    configured: &PlatformKeyRecord,
) -> Result<(), StoreError> {
    let recorded = repository.platform_keys().await?;
    if recorded.is_empty() {
        return repository.adopt_initial_platform_key(configured).await;
    }
    if recorded.iter().any(|key| key.key_id == configured.key_id) {
        return Ok(());
    }
    let next = PlatformKeyRecord {
        state: PlatformKeyState::Next,
        activated_at: None,
        ..configured.clone()
    };
    let event = |action: &str, state: PlatformKeyState| {
        AuditEvent::now(
            "configuration",
            action,
            &next.key_id,
            None,
            Some(state.as_str()),
        )
    };
    match repository
        .insert_platform_key(
            &next,
            event("PLATFORM_SIGNING_KEY_ADDED", PlatformKeyState::Next),
        )
        .await
    {
        Ok(()) | Err(StoreError::DuplicateCa) => {}
        Err(error) => return Err(error),
    }
    repository
        .activate_platform_key(
            &next.key_id,
            Utc::now(),
            event("PLATFORM_SIGNING_KEY_ACTIVATED", PlatformKeyState::Active),
        )
        .await?;
    tracing::info!(key_id = %next.key_id, "the configured platform signing key replaced the recorded one");
    Ok(())
}

/// Keeps `keys` current every `interval` while the service holds them.
async fn poll(keys: std::sync::Weak<PlatformKeys>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(keys) = keys.upgrade() else { return };
        if let Err(error) = keys.refresh().await {
            tracing::warn!(%error, "cannot refresh the platform signing keys");
        }
    }
}

/// A signing certificate for a new key: a valid CA certificate issued by `root`; returns it
/// with its `notAfter`.
fn issued_by_root(pem: &str, root: &X509) -> Result<(X509, DateTime<Utc>), StoreError> {
    let invalid = |message: &str| StoreError::InvalidField {
        field: "certificate_pem",
        message: message.to_owned(),
    };
    let certificate = X509::from_pem(pem.as_bytes())
        .map_err(|_| invalid("certificate_pem is not a PEM certificate"))?;
    let facts = CertificateFacts::of(&certificate)?;
    if !facts.is_ca {
        return Err(invalid(
            "the platform signing certificate must be a CA (CA:TRUE)",
        ));
    }
    let root_key = root.public_key().map_err(CertError::from)?;
    let issued = certificate
        .issuer_name()
        .try_cmp(root.subject_name())
        .is_ok_and(|ordering| ordering.is_eq())
        && certificate.verify(&root_key).unwrap_or(false);
    if !issued {
        return Err(invalid(
            "the certificate is not issued by the platform root",
        ));
    }
    if facts.not_after <= Utc::now() {
        return Err(invalid("the certificate has expired"));
    }
    Ok((certificate, facts.not_after))
}

/// Opens the key at `location` and pairs it with its certificate. Blocking.
fn open_signer(
    certificate_pem: &str,
    location: &KeyLocation,
    hsm: &HsmSettings,
) -> Result<PlatformSigner, StoreError> {
    let certificate = X509::from_pem(certificate_pem.as_bytes()).map_err(CertError::from)?;
    let field = match location {
        KeyLocation::Hsm(_) => "key_label",
        KeyLocation::File(_) => "key_file",
    };
    let key = location.open(hsm).map_err(|error| match error {
        SigningError::Unavailable(reason) => CertError::SigningUnavailable(reason).into(),
        other => StoreError::InvalidField {
            field,
            message: other.to_string(),
        },
    })?;
    PlatformSigner::new(certificate, key).map_err(|error| match error {
        CertError::Internal(message) => StoreError::InvalidField { field, message },
        other => other.into(),
    })
}
