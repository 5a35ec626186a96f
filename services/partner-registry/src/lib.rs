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
pub mod service;
pub mod storage;
pub mod testing;

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
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::partner::v1::partner_registry_server::PartnerRegistryServer;

use crate::config::RegistrySettings;
use crate::service::{RegistryParts, RegistryService, TokenKeys};
use crate::storage::{PartnerRepository, SqlPartnerRepository};

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = "partner-registry";

/// The gRPC service as served: the registry behind the authentication interceptor.
pub type RegistryGrpcService =
    InterceptedService<PartnerRegistryServer<RegistryService>, AuthInterceptor>;

/// Runs the registry on `listener` until `shutdown` resolves.
pub async fn run(
    settings: RegistrySettings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
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
    let init = initialise(settings, issuer, verifier, token_keys, identity, metrics);
    server::serve(listener, init, shutdown, grace, Some(endpoint)).await
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
/// admin, and builds the service.
async fn initialise(
    settings: RegistrySettings,
    issuer: Arc<TokenIssuer>,
    verifier: Arc<TokenVerifier>,
    token_keys: TokenKeys,
    identity: Arc<ServiceIdentity>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<RegistryGrpcService> {
    let connection = server::retry_until_ok("connecting to the database", || {
        db::connect(&settings.database)
    })
    .await;
    Migrator::up(&connection, None).await?;
    tracing::info!("database migrated");
    metrics.watch_pool(connection.clone())?;
    let repository: Arc<dyn PartnerRepository> = Arc::new(SqlPartnerRepository::new(connection));
    bootstrap_admin(&settings, repository.as_ref()).await?;
    let channel =
        client::lazy_channel(&settings.certificate_store.address, Duration::from_secs(2))?;
    let service = RegistryService::new(RegistryParts {
        repository,
        tokens: issuer,
        token_keys,
        registration: settings.registration.clone(),
        store: CertificateStoreClient::new(channel),
        identity,
        store_deadline: Duration::from_millis(settings.certificate_store.deadline_ms),
    })
    .await?;
    Ok(InterceptedService::new(
        PartnerRegistryServer::new(service),
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
