//! The one start-up of every platform service. A service describes itself once — its name,
//! its settings, how its database is migrated and how its gRPC server is built — by
//! implementing [`PlatformService`]; [`run`] does the rest the same way for all three:
//! metrics registry and endpoint, security-event audit, binding with health (NOT_SERVING
//! until ready) and reflection, connecting to the database (waiting for it), migrating,
//! pool metrics, and, when the server stops, ending the service's background tasks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;

use crate::auth::{AuthInterceptor, Authenticator, ServiceAccess, service_tokens};
use crate::config::{
    DatabaseSettings, MetricsSettings, ServerSettings, ServiceIdentitySettings, TelemetrySettings,
    UserTokenSettings, Validate,
};
use crate::metrics::Metrics;
use crate::security::{self, DatabaseAuditSink};
use crate::server::{self, MetricsEndpoint, Serving};
use crate::tls::TlsSettings;
use crate::{client, db};

/// The sections every service's settings have.
#[derive(Debug, Clone, Copy)]
pub struct BaseSettings<'a> {
    /// `server`.
    pub server: &'a ServerSettings,
    /// `database`.
    pub database: &'a DatabaseSettings,
    /// `metrics`.
    pub metrics: &'a MetricsSettings,
    /// `tls`.
    pub tls: &'a TlsSettings,
    /// `hsm`.
    pub hsm: &'a crate::signing::HsmSettings,
}

/// What the start-up needs to know about a service's settings.
pub trait ServiceSettings: serde::de::DeserializeOwned + Validate + Send + 'static {
    /// Prefix of the service's environment variables, e.g. `PMP_FTM` for
    /// `PMP_FTM__DATABASE__URL`.
    const ENV_PREFIX: &'static str;
    /// The compiled-in defaults (TOML): every key with a value that works on one machine.
    const DEFAULTS: &'static str;

    /// Loads the settings: [`Self::DEFAULTS`], then `file`, then the environment.
    fn load(file: Option<&std::path::Path>) -> Result<Self, crate::config::ConfigError> {
        crate::config::load(Self::ENV_PREFIX, Self::DEFAULTS, file)
    }

    /// The sections every service has.
    fn base(&self) -> BaseSettings<'_>;
    /// The logging settings (the command line may override the format).
    fn telemetry_mut(&mut self) -> &mut TelemetrySettings;
    /// The gRPC listen address.
    fn listen(&self) -> SocketAddr {
        self.base().server.listen
    }
}

/// Implements [`ServiceSettings`] for a settings struct with the usual section names
/// (`server`, `database`, `metrics`, `tls`, `telemetry`), its environment prefix and its
/// defaults.
#[macro_export]
macro_rules! service_settings {
    ($settings:ty, $env_prefix:expr, $defaults:expr) => {
        impl $crate::bootstrap::ServiceSettings for $settings {
            const ENV_PREFIX: &'static str = $env_prefix;
            const DEFAULTS: &'static str = $defaults;

            fn base(&self) -> $crate::bootstrap::BaseSettings<'_> {
                $crate::bootstrap::BaseSettings {
                    server: &self.server,
                    database: &self.database,
                    metrics: &self.metrics,
                    tls: &self.tls,
                    hsm: &self.hsm,
                }
            }

            fn telemetry_mut(&mut self) -> &mut $crate::config::TelemetrySettings {
                &mut self.telemetry
            }
        }
    };
}

/// What a service builds on once its database is ready.
pub struct Context {
    /// Connected and migrated.
    pub connection: DatabaseConnection,
    /// The service's metrics registry (served on `metrics.listen`).
    pub metrics: Arc<Metrics>,
    /// Changes (its sender is dropped) when the server stops: background tasks end on it.
    pub stop: tokio::sync::watch::Receiver<()>,
    /// Changes (its sender is dropped) when the server starts draining its calls, before
    /// `stop`: server streams end on it, so that they do not hold the shutdown.
    pub draining: tokio::sync::watch::Receiver<()>,
}

/// A platform service, as [`run`] starts it. The value itself carries test hooks (such as
/// a repository wrapper); production starts the default.
pub trait PlatformService: Send + 'static {
    /// Its name in traces, logs, metrics and service tokens.
    const NAME: &'static str;
    /// Its settings.
    type Settings: ServiceSettings;
    /// The gRPC service it serves (usually its generated server behind [`authenticated`]).
    type Server: tower::Service<
            http::Request<Body>,
            Response = http::Response<Self::ResponseBody>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static;
    /// The server's response body.
    type ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static;
    /// The migrations of its database.
    type Migrator: sea_orm_migration::MigratorTrait;

    /// Builds the service (repositories, clients to other services, background tasks) on
    /// its ready database. Health stays NOT_SERVING until this returns.
    fn build(
        self,
        settings: Self::Settings,
        context: Context,
    ) -> impl Future<Output = anyhow::Result<Self::Server>> + Send;
}

/// The sockets of one service, bound before it starts: whoever starts it (the binary, an
/// inetd-style supervisor, a test) knows every address, including ports the system chose.
pub struct Listeners {
    /// The gRPC API, health and reflection.
    pub grpc: TcpListener,
    /// `/metrics`; `None` records metrics without serving them.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// `grpc` and the metrics address the settings name (`metrics.listen`, port 0 lets the
    /// system choose, empty serves none).
    pub fn new(grpc: TcpListener, settings: &impl ServiceSettings) -> anyhow::Result<Self> {
        Ok(Listeners {
            grpc,
            metrics: crate::metrics::bind(&settings.base().metrics.listen)?,
        })
    }
}

/// The `migrate` command: waits for the database, applies `P`'s pending migrations under the
/// migration lock (see [`db::migrate`]), and reports how many ran.
pub async fn migrate<P: PlatformService>(settings: &P::Settings) -> anyhow::Result<()> {
    let database = &settings.base().database;
    let connection =
        server::retry_until_ok("connecting to the database", || db::connect(database)).await;
    let applied = db::migrate::<P::Migrator>(&connection).await?;
    tracing::info!(applied, "database migrated");
    connection.close().await?;
    Ok(())
}

/// Runs `service` on `listeners` until `shutdown` resolves.
pub async fn run<P>(
    service: P,
    settings: P::Settings,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    P: PlatformService,
    <P::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError>,
    <P::Server as tower::Service<http::Request<Body>>>::Future: Send + 'static,
{
    let base = settings.base();
    let (server_settings, tls, database) =
        (base.server.clone(), base.tls.clone(), base.database.clone());
    let metrics = Metrics::new(P::NAME)?;
    let endpoint = MetricsEndpoint {
        metrics: Arc::clone(&metrics),
        listener: listeners.metrics,
    };
    let audit = security::audit_slot();
    // Dropping the sender when the server stops ends the background tasks.
    let (stop_sender, stop) = tokio::sync::watch::channel(());
    let (draining_sender, draining) = tokio::sync::watch::channel(());
    let ready = {
        let audit = Arc::clone(&audit);
        async move {
            let connection =
                server::retry_until_ok("connecting to the database", || db::connect(&database))
                    .await;
            let applied = db::migrate::<P::Migrator>(&connection).await?;
            tracing::info!(applied, "database migrated");
            metrics.watch_pool(connection.clone())?;
            let _ = audit.set(DatabaseAuditSink::new(connection.clone()));
            let context = Context {
                connection,
                metrics,
                stop,
                draining,
            };
            service.build(settings, context).await
        }
    };
    let serving = Serving {
        settings: &server_settings,
        tls: &tls,
        metrics: Some(endpoint),
        audit,
        draining: Some(draining_sender),
    };
    let result = server::serve(listeners.grpc, ready, shutdown, serving).await;
    drop(stop_sender);
    result
}

/// The response body of a server behind [`authenticated`].
pub type AuthenticatedBody = tonic::service::interceptor::ResponseBody<Body>;

/// `server` behind the authentication interceptor of `authenticator`.
pub fn authenticated<S>(
    server: S,
    authenticator: Arc<Authenticator>,
) -> InterceptedService<S, AuthInterceptor> {
    InterceptedService::new(server, AuthInterceptor::new(authenticator))
}

/// The authenticator of a service that verifies end-user tokens issued elsewhere (by the
/// registry or an OpenID Connect issuer): its keys loaded (waiting for their source) and
/// kept fresh, the platform services' keys, and the service's caller table `access`.
pub async fn user_authenticator(
    name: &'static str,
    user_tokens: &UserTokenSettings,
    identity: &ServiceIdentitySettings,
    tls: &TlsSettings,
    access: ServiceAccess,
) -> anyhow::Result<Arc<Authenticator>> {
    let users = client::user_token_verifier(user_tokens, tls)?;
    let services = service_tokens::load_service_keys(name, identity)?;
    let authenticator = Authenticator::new(name, users, services, access);
    client::load_user_token_keys(authenticator.users(), user_tokens).await?;
    Ok(authenticator)
}
