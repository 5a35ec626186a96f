//! The FTM management service: Foundational Trust Modules (the secure chips of FTM
//! providers), their chip certificates and their review state.
//!
//! It owns the FTM records and their audit trail. It asks the partner registry for the
//! provider partner (`GetPartner`), hands chip certificates to the certificate store for
//! validation and storage, and tells the store which chip certificates are trusted — only
//! those of APPROVED FTMs. How the two stay consistent is described in the (crate-private)
//! `service` module.
//!
//! The `grpc` module is the gRPC adapter; the use cases behind it know nothing of gRPC.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub(crate) mod convert;
pub mod domain;
pub mod error;
pub(crate) mod grpc;
pub mod metrics;
pub mod reconcile;
pub(crate) mod service;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;

use std::sync::Arc;

use tonic::service::interceptor::InterceptedService;

use ftm_management_migration::Migrator;
use pmp_common::auth::{AuthInterceptor, service_tokens};
use pmp_common::bootstrap::{self, AuthenticatedBody, Context, PlatformService};
use pmp_common::client::PeerChannel;
use pmp_proto::ftm::v1::ftm_management_server::FtmManagementServer;

use crate::config::FtmSettings;
use crate::grpc::{FtmGrpc, SERVICE_CALLERS};
use crate::service::{FtmParts, FtmService};
use crate::storage::{FtmRepository, SqlFtmRepository};
use crate::upstream::Upstream;
use pmp_common::event_feed::{EventFeed, Outbox};

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = pmp_common::auth::FTM_MANAGEMENT;

/// The gRPC service as served: FTM management behind the authentication interceptor.
pub type FtmGrpcService = InterceptedService<FtmManagementServer<FtmGrpc>, AuthInterceptor>;

/// Replaces the repository the service uses, e.g. with a test double that injects failures.
pub type RepositoryWrapper =
    Box<dyn FnOnce(Arc<dyn FtmRepository>) -> Arc<dyn FtmRepository> + Send>;

/// FTM management, as the shared bootstrap starts it.
#[derive(Default)]
pub struct FtmManagement {
    /// Wraps the repository before use (tests make the database fail at chosen points).
    pub wrapper: Option<RepositoryWrapper>,
}

impl PlatformService for FtmManagement {
    const NAME: &'static str = SERVICE_NAME;
    type Settings = FtmSettings;
    type Server = FtmGrpcService;
    type ResponseBody = AuthenticatedBody;
    type Migrator = Migrator;

    /// Loads the user-token verification keys (waiting for the registry if needed),
    /// registers the metrics, starts the reconciler and builds the service.
    async fn build(
        self,
        settings: FtmSettings,
        context: Context,
    ) -> anyhow::Result<FtmGrpcService> {
        let authenticator = bootstrap::user_authenticator(
            SERVICE_NAME,
            &settings.user_tokens,
            &settings.service_identity,
            &settings.tls,
            SERVICE_CALLERS,
        )
        .await?;
        let signer =
            service_tokens::load_signer(SERVICE_NAME, &settings.service_identity, &settings.hsm)
                .await?;
        let outbox = Outbox::new(context.connection.clone());
        let sql_repository =
            Arc::new(SqlFtmRepository::new(context.connection).notifying(outbox.changed()));
        let events = EventFeed::new(
            outbox,
            Arc::clone(&sql_repository),
            settings.events.clone(),
            context.draining,
        );
        let mut repository: Arc<dyn FtmRepository> = sql_repository;
        if let Some(wrap) = self.wrapper {
            repository = wrap(repository);
        }
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
        let reconciled = crate::metrics::register(&context.metrics, Arc::clone(&repository))?;
        let clock = pmp_common::time::system_clock();
        let reconciler = reconcile::reconciler(
            Arc::clone(&repository),
            upstream.clone(),
            Arc::clone(&clock),
            consistency.lease(),
            consistency.reconcile_batch_size,
        )
        .with_outcome_counter(reconciled);
        tokio::spawn(reconciler.run(consistency.reconcile_interval(), context.stop));
        tokio::spawn(events.clone().prune_task(Arc::clone(&clock)));
        let api = FtmService::new(FtmParts {
            repository,
            upstream,
            lease: consistency.lease(),
            lease_wait: consistency.lease_wait(),
            clock,
            events,
        });
        Ok(bootstrap::authenticated(
            FtmManagementServer::new(FtmGrpc::new(api))
                .max_decoding_message_size(settings.server.max_message_bytes),
            authenticator,
        ))
    }
}
