//! The partner registry service: self-registration, login, partner records, and the partner
//! certificate (validated and stored by the certificate store).
//!
//! It owns users, partners, the partner-type list and the key that signs access tokens.
//! Other services verify those tokens with the public key published by
//! `GetTokenVerificationKeys`, so they never call the registry per request.

pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod password;
pub mod reconcile;
pub mod service;
pub mod storage;
pub mod testing;
pub mod upstream;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use partner_registry_migration::Migrator;
use pmp_common::auth::{
    AuthInterceptor, ROLE_PARTNER_ADMIN, ServiceIdentity, TokenIssuer, TokenVerifier,
};
use pmp_common::metrics::{self, Metrics};
use pmp_common::server::MetricsEndpoint;
use pmp_common::{client, db, keys, server};
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistryServer;

use crate::config::RegistrySettings;
use crate::reconcile::Reconciler;
use crate::service::{RegistryParts, RegistryService, TokenKeys};
use crate::storage::{PartnerRepository, SqlPartnerRepository};
use crate::upstream::CertificateStore;

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = "partner-registry";

/// The gRPC service as served: the registry behind the authentication interceptor.
pub type RegistryGrpcService =
    InterceptedService<PartnerRegistryServer<RegistryService>, AuthInterceptor>;

/// Replaces the repository the service uses, e.g. with a test double that injects failures.
pub type RepositoryWrapper =
    Box<dyn FnOnce(Arc<dyn PartnerRepository>) -> Arc<dyn PartnerRepository> + Send>;

/// Runs the registry on `listener` until `shutdown` resolves.
pub async fn run(
    settings: RegistrySettings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_with(settings, listener, shutdown, None).await
}

/// Like [`run`], with the repository passed through `wrapper` first (tests use it to make
/// the database fail at chosen points).
pub async fn run_with(
    settings: RegistrySettings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
    wrapper: Option<RepositoryWrapper>,
) -> anyhow::Result<()> {
    let server_settings = settings.server.clone();
    let (issuer, verifier, token_keys) = token_material(&settings)?;
    let identity = Arc::new(
        ServiceIdentity::new(SERVICE_NAME, &settings.service_auth.load_secret()?)
            .map_err(anyhow::Error::msg)?,
    );
    let metrics = Metrics::new(SERVICE_NAME)?;
    let endpoint = MetricsEndpoint {
        metrics: Arc::clone(&metrics),
        listener: metrics::bind(&settings.metrics.listen).await?,
    };
    // Dropping the sender when the server stops ends the reconciliation task.
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(());
    let parts = (issuer, verifier, token_keys, identity);
    let init = initialise(settings, parts, wrapper, metrics, stop_receiver);
    let result = server::serve(listener, init, shutdown, &server_settings, Some(endpoint)).await;
    drop(stop_sender);
    result
}

/// Loads (or generates) the token signing key; returns the issuer, a verifier for the
/// registry's own RPCs, and the public keys it publishes.
fn token_material(
    settings: &RegistrySettings,
) -> anyhow::Result<(Arc<TokenIssuer>, Arc<TokenVerifier>, TokenKeys)> {
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
    let private_key = String::from_utf8(private_key)?;
    let public_key = keys::public_key_pem(private_key.as_bytes()).map_err(anyhow::Error::msg)?;
    let lifetime = Duration::from_secs(settings.tokens.lifetime_seconds);
    let issuer = TokenIssuer::new(
        &private_key,
        &settings.tokens.issuer,
        &settings.tokens.audience,
        lifetime,
    )
    .map_err(anyhow::Error::msg)?;
    let secret = settings.service_auth.load_secret()?;
    let verifier = TokenVerifier::new(
        &settings.tokens.issuer,
        &settings.tokens.audience,
        Some(&secret),
    );
    verifier
        .set_user_keys(std::slice::from_ref(&public_key))
        .map_err(anyhow::Error::msg)?;
    let token_keys = TokenKeys {
        public_keys_pem: vec![public_key],
        issuer: settings.tokens.issuer.clone(),
        audience: settings.tokens.audience.clone(),
    };
    Ok((Arc::new(issuer), Arc::new(verifier), token_keys))
}

/// Connects and migrates the database (waiting for it if needed), creates the bootstrap
/// admin, starts the reconciler, and builds the service.
async fn initialise(
    settings: RegistrySettings,
    (issuer, verifier, token_keys, identity): (
        Arc<TokenIssuer>,
        Arc<TokenVerifier>,
        TokenKeys,
        Arc<ServiceIdentity>,
    ),
    wrapper: Option<RepositoryWrapper>,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<()>,
) -> anyhow::Result<RegistryGrpcService> {
    let connection = server::retry_until_ok("connecting to the database", || {
        db::connect(&settings.database)
    })
    .await;
    Migrator::up(&connection, None).await?;
    tracing::info!("database migrated");
    metrics.watch_pool(connection.clone())?;
    let mut repository: Arc<dyn PartnerRepository> =
        Arc::new(SqlPartnerRepository::new(connection));
    if let Some(wrap) = wrapper {
        repository = wrap(repository);
    }
    bootstrap_admin(&settings, repository.as_ref()).await?;
    let channel =
        client::lazy_channel(&settings.certificate_store.address, Duration::from_secs(2))?;
    let store = CertificateStore::new(channel, identity, settings.certificate_store.deadline());
    let consistency = &settings.consistency;
    let reconciler = Reconciler::new(
        Arc::clone(&repository),
        store.clone(),
        consistency.lease(),
        consistency.reconcile_batch_size,
    );
    tokio::spawn(reconciler.run(consistency.reconcile_interval(), stop));
    let service = RegistryService::new(RegistryParts {
        repository,
        tokens: issuer,
        token_keys,
        registration: settings.registration.clone(),
        store,
        lease: consistency.lease(),
        lease_wait: consistency.lease_wait(),
    })
    .await?;
    Ok(InterceptedService::new(
        PartnerRegistryServer::new(service)
            .max_decoding_message_size(settings.server.max_message_bytes),
        AuthInterceptor::new(verifier),
    ))
}

/// Creates the configured `PARTNER_ADMIN` account when a password is configured and the
/// account does not exist yet (an existing account is never overwritten).
async fn bootstrap_admin(
    settings: &RegistrySettings,
    repository: &dyn PartnerRepository,
) -> anyhow::Result<()> {
    let Some(password) = settings.admin.configured_password()? else {
        tracing::info!("no admin password configured: no bootstrap admin account");
        return Ok(());
    };
    let hash = password::hash(password).await?;
    let roles = [ROLE_PARTNER_ADMIN.to_owned()];
    if repository
        .ensure_user(&settings.admin.username, &hash, &roles)
        .await?
    {
        tracing::info!(username = %settings.admin.username, "created the bootstrap admin account");
    }
    Ok(())
}
