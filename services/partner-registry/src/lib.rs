//! The partner registry service: self-registration, login, partner records, and the partner
//! certificate (validated and stored by the certificate store).
//!
//! It owns users, partners, the partner-type list and the key that signs access tokens.
//! Other services verify those tokens with the public key published by
//! `GetTokenVerificationKeys`, so they never call the registry per request.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod convert;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod limits;
pub mod password;
pub mod reconcile;
mod service;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;

use partner_registry_migration::Migrator;
use pmp_common::auth::{
    AuthInterceptor, Authenticator, ROLE_PARTNER_ADMIN, TokenIssuer, UserTokenVerifier,
    VerificationKey, service_tokens,
};
use pmp_common::bootstrap::{self, AuthenticatedBody, Context, PlatformService};
use pmp_common::client::PeerChannel;
use pmp_common::event_feed::{EventFeed, Outbox};
use pmp_common::keys;
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistryServer;

use crate::config::RegistrySettings;
use crate::grpc::{RegistryGrpc, SERVICE_CALLERS};
use crate::limits::Limits;
use crate::password::PasswordHasher;
use crate::service::{RegistryParts, RegistryService, TokenKeys};
use crate::storage::{PartnerRepository, SqlPartnerRepository, SqlTokenKeyRepository};
use crate::upstream::CertificateStore;

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = pmp_common::auth::PARTNER_REGISTRY;

/// The gRPC service as served: the registry behind the authentication interceptor.
pub type RegistryGrpcService =
    InterceptedService<PartnerRegistryServer<RegistryGrpc>, AuthInterceptor>;

/// Replaces the repository the service uses, e.g. with a test double that injects failures.
pub type RepositoryWrapper =
    Box<dyn FnOnce(Arc<dyn PartnerRepository>) -> Arc<dyn PartnerRepository> + Send>;

/// The partner registry, as the shared bootstrap starts it.
#[derive(Default)]
pub struct PartnerRegistry {
    /// Wraps the repository before use (tests make the database fail at chosen points).
    pub wrapper: Option<RepositoryWrapper>,
    /// The clock of leases and login limits (tests move it instead of waiting); the
    /// system's when `None`.
    pub clock: Option<pmp_common::time::SharedClock>,
}

impl PlatformService for PartnerRegistry {
    const NAME: &'static str = SERVICE_NAME;
    type Settings = RegistrySettings;
    type Server = RegistryGrpcService;
    type ResponseBody = AuthenticatedBody;
    type Migrator = Migrator;

    /// Creates the bootstrap admin, starts the reconciler, and builds the service.
    async fn build(
        self,
        settings: RegistrySettings,
        context: Context,
    ) -> anyhow::Result<RegistryGrpcService> {
        let configured = configured_token_key(&settings).await?;
        let issuer = Arc::new(
            TokenIssuer::with_key(
                Arc::clone(&configured.key),
                &configured.previous,
                &settings.tokens.issuer,
                &settings.tokens.audience,
                Duration::from_secs(settings.tokens.lifetime_seconds),
            )
            .map_err(anyhow::Error::msg)?,
        );
        let token_keys = TokenKeys::start(
            Arc::new(SqlTokenKeyRepository::new(context.connection.clone())),
            Arc::clone(&issuer),
            configured.key,
            configured.location,
            settings.hsm.clone(),
            configured.previous,
            Duration::from_millis(settings.tokens.key_refresh_interval_ms),
        )
        .await?;
        let signer =
            service_tokens::load_signer(SERVICE_NAME, &settings.service_identity, &settings.hsm)
                .await?;
        let outbox = Outbox::new(context.connection.clone());
        let sql_repository =
            Arc::new(SqlPartnerRepository::new(context.connection).notifying(outbox.changed()));
        let events = EventFeed::new(
            outbox,
            Arc::clone(&sql_repository),
            settings.events.clone(),
            context.draining,
        );
        let mut repository: Arc<dyn PartnerRepository> = sql_repository;
        if let Some(wrap) = self.wrapper {
            repository = wrap(repository);
        }
        let hasher =
            PasswordHasher::start(settings.limits.threads(), settings.limits.hashing_queue)?;
        bootstrap_admin(&settings, repository.as_ref(), &hasher).await?;
        let store = CertificateStore::new(PeerChannel::connect(
            pmp_common::auth::CERTIFICATE_STORE,
            &settings.certificate_store,
            &signer,
            &settings.tls,
        )?);
        let consistency = &settings.consistency;
        let clock = self.clock.unwrap_or_else(pmp_common::time::system_clock);
        let reconciler = reconcile::reconciler(
            Arc::clone(&repository),
            store.clone(),
            Arc::clone(&clock),
            consistency.lease(),
            consistency.reconcile_batch_size,
        );
        tokio::spawn(reconciler.run(consistency.reconcile_interval(), context.stop));
        tokio::spawn(events.clone().prune_task(Arc::clone(&clock)));
        let authenticator = Authenticator::new(
            SERVICE_NAME,
            {
                let verifier = own_verifier(&issuer).await?;
                token_keys.follow(&verifier);
                verifier
            },
            service_tokens::load_service_keys(SERVICE_NAME, &settings.service_identity)?,
            SERVICE_CALLERS,
        );
        let service = RegistryService::new(RegistryParts {
            repository,
            tokens: issuer,
            registration: settings.registration.clone(),
            store,
            lease: consistency.lease(),
            lease_wait: consistency.lease_wait(),
            clock,
            hasher,
            limits: Arc::new(Limits::new(&settings.limits)),
            admin_username: settings.admin.username.clone(),
            events,
        })
        .await?;
        Ok(bootstrap::authenticated(
            PartnerRegistryServer::new(RegistryGrpc::new(service, token_keys))
                .max_decoding_message_size(settings.server.max_message_bytes),
            authenticator,
        ))
    }
}

/// The token signing key the configuration names, where it is, and the public keys of
/// earlier keys to keep publishing.
struct ConfiguredTokenKey {
    key: Arc<dyn pmp_common::signing::PrivateKey>,
    location: pmp_common::signing::KeyLocation,
    previous: Vec<String>,
}

/// The configured token signing key: in the HSM by label (waiting while it is
/// unreachable), or loaded (or generated) from its file.
async fn configured_token_key(settings: &RegistrySettings) -> anyhow::Result<ConfiguredTokenKey> {
    let label = settings.tokens.signing_key_label.trim();
    let (key, location): (Arc<dyn pmp_common::signing::PrivateKey>, _) = if label.is_empty() {
        (
            file_token_key(settings)?,
            pmp_common::signing::KeyLocation::File(settings.tokens.signing_key_file.clone()),
        )
    } else {
        (
            pmp_common::signing::open_when_reachable(&settings.hsm, label, "the token signing key")
                .await?,
            pmp_common::signing::KeyLocation::Hsm(label.to_owned()),
        )
    };
    let previous = settings
        .tokens
        .previous_public_key_files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .map_err(|error| anyhow::anyhow!("cannot read {file}: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConfiguredTokenKey {
        key,
        location,
        previous,
    })
}

/// The token signing key from its file, generated on first start when allowed.
fn file_token_key(
    settings: &RegistrySettings,
) -> anyhow::Result<Arc<dyn pmp_common::signing::PrivateKey>> {
    let path = Path::new(&settings.tokens.signing_key_file);
    let private_key = if settings.tokens.generate_signing_key {
        let (key, generated) = keys::load_or_generate(path, keys::generate_ec_private_key_pem)?;
        if generated {
            tracing::info!(path = %path.display(), "generated a new token signing key");
        }
        key
    } else {
        keys::read(path)?
    };
    let key =
        pmp_common::signing::InMemoryKey::from_pem(&private_key, &path.display().to_string())?;
    Ok(Arc::new(key))
}

/// The registry verifies its own tokens with the keys it publishes, read from the issuer
/// again when a token names a key it does not know (after a rotation on another replica).
async fn own_verifier(issuer: &Arc<TokenIssuer>) -> anyhow::Result<Arc<UserTokenVerifier>> {
    let verifier = Arc::new(UserTokenVerifier::new(
        issuer.issuer(),
        issuer.audience(),
        30,
        Vec::new(),
        Some(Arc::new(PublishedKeys(Arc::clone(issuer)))),
    ));
    verifier.refresh(false).await?;
    Ok(verifier)
}

/// The issuer's published keys as a key source of the registry's own verifier.
struct PublishedKeys(Arc<TokenIssuer>);

#[async_trait::async_trait]
impl pmp_common::auth::user_tokens::KeySource for PublishedKeys {
    async fn fetch(&self) -> anyhow::Result<Vec<VerificationKey>> {
        self.0
            .public_keys_pem()
            .iter()
            .map(|pem| VerificationKey::from_pem(pem).map_err(anyhow::Error::msg))
            .collect()
    }

    fn describe(&self) -> String {
        "the registry's own token keys".into()
    }
}

/// Creates the configured `PARTNER_ADMIN` account when a password is configured, and sets
/// its password to the configured one at every start (so rotating the secret rotates the
/// password). Refuses to start when a partner holds the admin's user name.
async fn bootstrap_admin(
    settings: &RegistrySettings,
    repository: &dyn PartnerRepository,
    hasher: &PasswordHasher,
) -> anyhow::Result<()> {
    let Some(password) = settings.admin.configured_password()? else {
        tracing::info!("no admin password configured: no bootstrap admin account");
        return Ok(());
    };
    let username = &settings.admin.username;
    if repository.find_partner(username).await?.is_some() {
        anyhow::bail!(
            "admin.username {username} is a registered partner: configure another admin user name"
        );
    }
    let roles = [ROLE_PARTNER_ADMIN.to_owned()];
    match repository.find_user(username).await? {
        None => {
            let hash = hasher.hash(password).await?;
            if repository.ensure_user(username, &hash, &roles).await? {
                tracing::info!(%username, "created the bootstrap admin account");
            }
        }
        Some(user) => {
            if !hasher.verify(password.clone(), user.password_hash).await? {
                let hash = hasher.hash(password).await?;
                repository
                    .set_user_password(username, &hash, &roles)
                    .await?;
                tracing::info!(%username, "bootstrap admin password set from the configuration");
            }
        }
    }
    Ok(())
}
