//! The FTM management service: Foundational Trust Modules (the secure chips of FTM
//! providers), their chip certificates and their review state.
//!
//! It owns the FTM records and their audit trail. It asks the partner registry for the
//! provider partner (`GetPartner`), hands chip certificates to the certificate store for
//! validation and storage, and tells the store which chip certificates are trusted — only
//! those of APPROVED FTMs. How the two stay consistent is described in [`service`].

pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod reconcile;
pub mod service;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;

use std::sync::Arc;

use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use ftm_management_migration::Migrator;
use pmp_common::auth::{AuthInterceptor, Authenticator, ServiceSigner, service_tokens};
use pmp_common::client::{self, PeerChannel};
use pmp_common::metrics::Metrics;
use pmp_common::security::{self, AuditSlot, DatabaseAuditSink};
use pmp_common::server::{MetricsEndpoint, Serving};
use pmp_common::{db, server};
use pmp_proto::ftm::v1::ftm_management_server::FtmManagementServer;

use crate::config::FtmSettings;
use crate::reconcile::Reconciler;
use crate::service::{FtmParts, FtmService, SERVICE_CALLERS};
use crate::storage::{FtmRepository, SqlFtmRepository};
use crate::upstream::Upstream;

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = pmp_common::auth::FTM_MANAGEMENT;

/// The gRPC service as served: FTM management behind the authentication interceptor.
pub type FtmGrpcService = InterceptedService<FtmManagementServer<FtmService>, AuthInterceptor>;

/// Replaces the repository the service uses, e.g. with a test double that injects failures.
pub type RepositoryWrapper =
    Box<dyn FnOnce(Arc<dyn FtmRepository>) -> Arc<dyn FtmRepository> + Send>;

/// Runs the service on `listener` until `shutdown` resolves.
pub async fn run(
    settings: FtmSettings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_with(settings, listener, shutdown, None).await
}

/// Like [`run`], with the repository passed through `wrapper` first (tests use it to make
/// the database fail at chosen points).
pub async fn run_with(
    settings: FtmSettings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
    wrapper: Option<RepositoryWrapper>,
) -> anyhow::Result<()> {
    let users = client::user_token_verifier(&settings.user_tokens, &settings.tls)?;
    let services = service_tokens::load_service_keys(SERVICE_NAME, &settings.service_identity)?;
    let authenticator = Authenticator::new(SERVICE_NAME, users, services, SERVICE_CALLERS);
    let signer = service_tokens::load_signer(SERVICE_NAME, &settings.service_identity)?;
    let metrics = Metrics::new(SERVICE_NAME)?;
    let endpoint = MetricsEndpoint {
        metrics: Arc::clone(&metrics),
        listener: pmp_common::metrics::bind(&settings.metrics.listen).await?,
    };
    // Dropping the sender when the server stops ends the reconciliation task.
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(());
    let (server, tls) = (settings.server.clone(), settings.tls.clone());
    let audit = security::audit_slot();
    let parts = Parts {
        authenticator,
        signer,
        wrapper,
        metrics,
        audit: Arc::clone(&audit),
        stop: stop_receiver,
    };
    let serving = Serving {
        settings: &server,
        tls: &tls,
        metrics: Some(endpoint),
        audit,
    };
    let result = server::serve(listener, initialise(settings, parts), shutdown, serving).await;
    drop(stop_sender);
    result
}

/// What [`initialise`] builds the service from.
struct Parts {
    authenticator: Arc<Authenticator>,
    signer: Arc<ServiceSigner>,
    wrapper: Option<RepositoryWrapper>,
    metrics: Arc<Metrics>,
    audit: AuditSlot,
    stop: tokio::sync::watch::Receiver<()>,
}

/// Connects and migrates the database (waiting for it if needed), loads the user-token
/// verification keys (waiting for the registry if needed), registers the metrics, starts the
/// reconciler and builds the service. Health stays NOT_SERVING until this is done.
async fn initialise(settings: FtmSettings, parts: Parts) -> anyhow::Result<FtmGrpcService> {
    let Parts {
        authenticator,
        signer,
        wrapper,
        metrics,
        audit,
        stop,
    } = parts;
    let connection = server::retry_until_ok("connecting to the database", || {
        db::connect(&settings.database)
    })
    .await;
    Migrator::up(&connection, None).await?;
    tracing::info!("database migrated");
    metrics.watch_pool(connection.clone())?;
    let _ = audit.set(DatabaseAuditSink::new(connection.clone()));
    let mut repository: Arc<dyn FtmRepository> = Arc::new(SqlFtmRepository::new(connection));
    if let Some(wrap) = wrapper {
        repository = wrap(repository);
    }
    client::load_user_token_keys(authenticator.users(), &settings.user_tokens).await?;

    let upstream = Upstream::new(
        PeerChannel::connect(
            pmp_common::auth::PARTNER_REGISTRY,
            &settings.registry,
            &signer,
            &settings.tls,
        )?,
        PeerChannel::connect(
            pmp_common::auth::CERTIFICATE_STORE,
            &settings.certificate_store,
            &signer,
            &settings.tls,
        )?,
    );
    let consistency = &settings.consistency;
    let reconciled = crate::metrics::register(&metrics, Arc::clone(&repository))?;
    let reconciler = Reconciler::new(
        Arc::clone(&repository),
        upstream.clone(),
        consistency.lease(),
        consistency.reconcile_batch_size,
    )
    .with_outcome_counter(reconciled);
    tokio::spawn(reconciler.run(consistency.reconcile_interval(), stop));
    let service = FtmService::new(FtmParts {
        repository,
        upstream,
        lease: consistency.lease(),
        lease_wait: consistency.lease_wait(),
    });
    Ok(InterceptedService::new(
        FtmManagementServer::new(service)
            .max_decoding_message_size(settings.server.max_message_bytes),
        AuthInterceptor::new(authenticator),
    ))
}
