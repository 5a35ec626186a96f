//! The token signing keys and their rotation without downtime.
//!
//! Every replica signs access tokens with the one `ACTIVE` key recorded in the database and
//! publishes (`GetTokenVerificationKeys`) the active key, the `NEXT` ones and the replaced
//! ones whose tokens may still be alive. A rotation is two admin calls: add the new key
//! (published at once, so that verifiers fetch it before it signs), then activate it. The
//! key configured at start-up (`tokens.*`) is recorded as the first active key; the public
//! keys of `tokens.previous_public_key_files` stay published as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use pmp_common::auth::{Caller, TokenIssuer, UserTokenVerifier};
use pmp_common::keys::pem_text;
use pmp_common::signing::{HsmSettings, KeyLocation, KeyState, PrivateKey, SigningError};

use crate::domain::AuditEvent;
use crate::error::RegistryError;
use crate::storage::{TokenKeyRecord, TokenKeyRepository};

/// The registry's token signing keys.
pub(crate) struct TokenKeys {
    repository: Arc<dyn TokenKeyRepository>,
    issuer: Arc<TokenIssuer>,
    hsm: HsmSettings,
    /// Public keys published whatever the database says (`tokens.previous_public_key_files`).
    configured_previous: Vec<String>,
    /// The active key id and the published key ids the issuer holds now.
    applied: Mutex<(String, Vec<String>)>,
    /// Keys opened so far, by key id (an HSM key logs in once).
    opened: Mutex<HashMap<String, Arc<dyn PrivateKey>>>,
    /// The registry's own verifier, told at once when the published keys change.
    verifier: std::sync::OnceLock<Arc<UserTokenVerifier>>,
}

/// Until when verifiers need `key`.
pub(crate) fn published_until(key: &TokenKeyRecord, lifetime: Duration) -> Option<DateTime<Utc>> {
    match key.state {
        KeyState::Next | KeyState::Active => None,
        KeyState::Previous => {
            let lifetime = chrono::Duration::from_std(lifetime).ok()?;
            key.retired_at.map(|retired| retired + lifetime)
        }
    }
}

impl TokenKeys {
    /// The keys of a registry whose `issuer` signs with `configured` (at `location`):
    /// records it as the first active key when none is recorded, applies the recorded
    /// ones, and polls every `interval`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        repository: Arc<dyn TokenKeyRepository>,
        issuer: Arc<TokenIssuer>,
        configured: Arc<dyn PrivateKey>,
        location: KeyLocation,
        hsm: HsmSettings,
        configured_previous: Vec<String>,
        interval: Duration,
    ) -> Result<Arc<TokenKeys>, RegistryError> {
        let key_id = issuer.signing_key_id();
        let now = Utc::now();
        let initial = TokenKeyRecord {
            key_id: key_id.clone(),
            public_key_pem: public_pem(configured.as_ref())?,
            location,
            state: KeyState::Active,
            added_at: now,
            activated_at: Some(now),
            retired_at: None,
        };
        adopt_configured(repository.as_ref(), &initial, issuer.lifetime()).await?;
        let keys = Arc::new(TokenKeys {
            repository,
            issuer,
            hsm,
            configured_previous,
            applied: Mutex::new((key_id.clone(), Vec::new())),
            opened: Mutex::new(HashMap::from([(key_id, configured)])),
            verifier: std::sync::OnceLock::new(),
        });
        keys.refresh().await?;
        tokio::spawn(poll(Arc::downgrade(&keys), interval));
        Ok(keys)
    }

    /// Reads the recorded keys and, when the active key or the published set changed,
    /// gives the issuer the new signing key and published keys.
    pub(crate) async fn refresh(&self) -> Result<(), RegistryError> {
        let keys = self.repository.token_keys().await?;
        let Some(active) = keys.iter().find(|key| key.state == KeyState::Active) else {
            return Ok(());
        };
        let now = Utc::now();
        let others: Vec<&TokenKeyRecord> = keys
            .iter()
            .filter(|key| key.key_id != active.key_id)
            .filter(|key| {
                published_until(key, self.issuer.lifetime()).is_none_or(|until| until > now)
            })
            .collect();
        let wanted = (
            active.key_id.clone(),
            others
                .iter()
                .map(|key| key.key_id.clone())
                .collect::<Vec<_>>(),
        );
        if self.applied.lock().is_ok_and(|applied| *applied == wanted) {
            return Ok(());
        }
        let signing = self.open(active).await?;
        let mut published: Vec<String> = others
            .iter()
            .map(|key| key.public_key_pem.clone())
            .collect();
        published.extend(self.configured_previous.iter().cloned());
        self.issuer
            .rotate(signing, &published)
            .map_err(|error| RegistryError::Internal(error.to_string()))?;
        tracing::info!(key_id = %active.key_id, published = others.len(), "token signing keys applied");
        if let Ok(mut applied) = self.applied.lock() {
            *applied = wanted;
        }
        if let Some(verifier) = self.verifier.get()
            && let Err(error) = verifier.refresh(false).await
        {
            tracing::warn!(%error, "the registry's verifier could not reload its keys");
        }
        Ok(())
    }

    /// Keeps `verifier` (the registry's own) in step with the published keys.
    pub(crate) fn follow(&self, verifier: &Arc<UserTokenVerifier>) {
        let _ = self.verifier.set(Arc::clone(verifier));
    }

    /// The key of `record`, opened once (blocking work off the async workers).
    async fn open(&self, record: &TokenKeyRecord) -> Result<Arc<dyn PrivateKey>, RegistryError> {
        if let Some(key) = self
            .opened
            .lock()
            .ok()
            .and_then(|opened| opened.get(&record.key_id).cloned())
        {
            return Ok(key);
        }
        let key = open_location(record.location.clone(), self.hsm.clone()).await?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(record.key_id.clone(), Arc::clone(&key));
        }
        Ok(key)
    }

    /// `AddTokenSigningKey`.
    pub(crate) async fn add(
        &self,
        caller: &Caller,
        location: KeyLocation,
    ) -> Result<TokenKeyRecord, RegistryError> {
        caller.require_admin()?;
        let key = open_location(location.clone(), self.hsm.clone()).await?;
        let public_key_pem = public_pem(key.as_ref())?;
        let der = key
            .public_key()
            .public_key_to_der()
            .map_err(|error| RegistryError::Internal(error.to_string()))?;
        let record = TokenKeyRecord {
            key_id: pmp_common::auth::user_tokens::key_id_of(&der),
            public_key_pem,
            location,
            state: KeyState::Next,
            added_at: Utc::now(),
            activated_at: None,
            retired_at: None,
        };
        let audit = AuditEvent::now(
            &caller.actor(),
            "TOKEN_SIGNING_KEY_ADDED",
            &record.key_id,
            None,
            Some(KeyState::Next.as_str()),
        );
        self.repository.insert_token_key(&record, audit).await?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(record.key_id.clone(), key);
        }
        self.refresh().await?;
        tracing::info!(key_id = %record.key_id, location = %record.location, "token signing key added");
        Ok(record)
    }

    /// `ActivateTokenSigningKey`.
    pub(crate) async fn activate(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<TokenKeyRecord, RegistryError> {
        caller.require_admin()?;
        let keys = self.repository.token_keys().await?;
        let key = keys
            .iter()
            .find(|key| key.key_id == key_id.trim())
            .ok_or(RegistryError::KeyNotFound)?;
        // Never activate a key that cannot sign here.
        self.open(key).await?;
        let before = keys
            .iter()
            .find(|key| key.state == KeyState::Active)
            .map(|key| format!("{} active", key.key_id));
        let audit = AuditEvent::now(
            &caller.actor(),
            "TOKEN_SIGNING_KEY_ACTIVATED",
            &key.key_id,
            before.as_deref(),
            Some(KeyState::Active.as_str()),
        );
        let now = Utc::now();
        let activated = self
            .repository
            .activate_token_key(&key.key_id, now, now, audit)
            .await?;
        self.refresh().await?;
        Ok(activated)
    }

    /// `ListTokenSigningKeys`.
    pub(crate) async fn list(&self, caller: &Caller) -> Result<Vec<TokenKeyRecord>, RegistryError> {
        caller.require_admin()?;
        self.repository.token_keys().await
    }

    /// How long replaced keys stay published.
    pub(crate) fn lifetime(&self) -> Duration {
        self.issuer.lifetime()
    }
}

/// Records the configured key: as the first active key when none is recorded; as the new
/// active key when keys are recorded but not this one (the operator rotated by
/// configuration: the replaced key is retired at once, since configuration publishes earlier
/// keys through `tokens.previous_public_key_files`). A key recorded before is left to the
/// recorded state (a rotation through `ActivateTokenSigningKey` outlives restarts).
async fn adopt_configured(
    repository: &dyn TokenKeyRepository,
    configured: &TokenKeyRecord,
    lifetime: Duration,
) -> Result<(), RegistryError> {
    let recorded = repository.token_keys().await?;
    if recorded.is_empty() {
        return repository.adopt_initial_token_key(configured).await;
    }
    if recorded.iter().any(|key| key.key_id == configured.key_id) {
        return Ok(());
    }
    let next = TokenKeyRecord {
        state: KeyState::Next,
        activated_at: None,
        ..configured.clone()
    };
    let added = AuditEvent::now(
        "configuration",
        "TOKEN_SIGNING_KEY_ADDED",
        &next.key_id,
        None,
        Some(KeyState::Next.as_str()),
    );
    match repository.insert_token_key(&next, added).await {
        Ok(()) | Err(RegistryError::KeyExists) => {}
        Err(error) => return Err(error),
    }
    let now = Utc::now();
    let retired_at = now - chrono::Duration::from_std(lifetime).unwrap_or_default();
    let activated = AuditEvent::now(
        "configuration",
        "TOKEN_SIGNING_KEY_ACTIVATED",
        &next.key_id,
        None,
        Some(KeyState::Active.as_str()),
    );
    repository
        .activate_token_key(&next.key_id, now, retired_at, activated)
        .await?;
    tracing::info!(key_id = %next.key_id, "the configured token signing key replaced the recorded one");
    Ok(())
}

/// Keeps `keys` current every `interval` while the service holds them.
async fn poll(keys: std::sync::Weak<TokenKeys>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(keys) = keys.upgrade() else { return };
        if let Err(error) = keys.refresh().await {
            tracing::warn!(%error, "cannot refresh the token signing keys");
        }
    }
}

fn public_pem(key: &dyn PrivateKey) -> Result<String, RegistryError> {
    key.public_key()
        .public_key_to_pem()
        .map(pem_text)
        .map_err(|error| RegistryError::Internal(error.to_string()))
}

/// Opens the key at `location` off the async workers; errors name the request field.
async fn open_location(
    location: KeyLocation,
    hsm: HsmSettings,
) -> Result<Arc<dyn PrivateKey>, RegistryError> {
    let field = match location {
        KeyLocation::Hsm(_) => "key_label",
        KeyLocation::File(_) => "key_file",
    };
    let opened = tokio::task::spawn_blocking(move || location.open(&hsm))
        .await
        .map_err(|error| RegistryError::Internal(error.to_string()))?;
    opened.map_err(|error| match error {
        SigningError::Unavailable(reason) => RegistryError::KeyStore(reason),
        other => RegistryError::UnusableKey {
            field,
            message: other.to_string(),
        },
    })
}
