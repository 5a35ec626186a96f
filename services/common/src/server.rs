//! Server bootstrap shared by every service: binding, health, reflection, tracing layer,
//! readiness and graceful shutdown.
//!
//! The port is bound and health answers immediately (NOT_SERVING), while the service's own
//! initialisation (connecting and migrating its database, loading keys) runs; only when it
//! finishes do health checks turn SERVING and calls reach the service. Until then calls get
//! `UNAVAILABLE`, so Kubernetes readiness probes and clients see an honest state.
//! On SIGTERM/SIGINT health turns NOT_SERVING, new connections stop, in-flight calls drain
//! for up to the configured grace period, and the caller then flushes spans.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::config::ServerSettings;
use crate::limits::LimitsLayer;
use crate::metrics::Metrics;
use crate::security::{AuditSlot, SecurityLayer};
use crate::telemetry::GrpcTraceLayer;
use crate::tls::TlsSettings;

/// Name of the health service, served next to each platform service.
pub const HEALTH_SERVICE_NAME: &str = "grpc.health.v1.Health";

/// A service that exists from the first second but answers `UNAVAILABLE` until its
/// initialisation has produced the real service.
pub struct Deferred<S> {
    cell: Arc<OnceLock<S>>,
}

impl<S> Clone for Deferred<S> {
    fn clone(&self) -> Self {
        Deferred {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<S: NamedService> NamedService for Deferred<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<Body>> for Deferred<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.cell.get() {
            Some(service) => {
                let mut service = service.clone();
                Box::pin(async move {
                    service
                        .call(request)
                        .await
                        .map(|response| response.map(Body::new))
                })
            }
            None => Box::pin(async {
                Ok(crate::error::error_status(
                    tonic::Code::Unavailable,
                    crate::error::REASON_UNAVAILABLE,
                    "the service is starting, retry shortly",
                )
                .into_http())
            }),
        }
    }
}

/// Where a service's Prometheus metrics go.
pub struct MetricsEndpoint {
    /// The registry every request is counted in.
    pub metrics: Arc<Metrics>,
    /// The `/metrics` HTTP listener; `None` records metrics without serving them.
    pub listener: Option<TcpListener>,
}

/// How a platform service is served besides its own API.
pub struct Serving<'a> {
    /// Limits and shutdown grace.
    pub settings: &'a ServerSettings,
    /// TLS of the listener (plain text when not configured).
    pub tls: &'a TlsSettings,
    /// Where request metrics go, and the `/metrics` listener.
    pub metrics: Option<MetricsEndpoint>,
    /// Where security events are audited (filled by `init` once the database is ready).
    pub audit: AuditSlot,
    /// Dropped when the server starts draining, so that long-lived streams end at once
    /// instead of holding the shutdown for its whole grace period.
    pub draining: Option<tokio::sync::watch::Sender<()>>,
}

/// Runs a tonic server for one platform service until `shutdown` resolves, recording request
/// metrics and serving them at `/metrics` when there is a listener, over TLS when configured.
/// The server admits at most `settings.max_concurrent_requests` calls at once (see
/// [`crate::limits`]); the service itself must be built with
/// `max_decoding_message_size(settings.max_message_bytes)`.
///
/// `init` builds the service (database, keys, clients); while it runs, health is
/// NOT_SERVING. An error from `init` stops the server and is returned.
pub async fn serve<S, B, I>(
    listener: TcpListener,
    init: I,
    shutdown: impl Future<Output = ()> + Send,
    serving: Serving<'_>,
) -> anyhow::Result<()>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
    I: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    let (reporter, health_service) = tonic_health::server::health_reporter();
    set_status(&reporter, S::NAME, ServingStatus::NotServing).await;
    reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pmp_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc error details, so that clients such as grpcurl can decode them.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(S::NAME)
            .with_service_name(HEALTH_SERVICE_NAME)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let Serving {
        settings,
        tls,
        metrics,
        audit,
        draining,
    } = serving;
    let security = SecurityLayer::new(
        metrics
            .as_ref()
            .map(|endpoint| Arc::clone(&endpoint.metrics)),
        audit,
    );
    let layer = match &metrics {
        Some(endpoint) => GrpcTraceLayer::with_metrics(Arc::clone(&endpoint.metrics)),
        None => GrpcTraceLayer::default(),
    }
    .access_log(settings.access_log);
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(MetricsEndpoint {
        metrics,
        listener: Some(metrics_listener),
    }) = metrics
    {
        if let Ok(address) = metrics_listener.local_addr() {
            tracing::info!(%address, "metrics endpoint listening");
        }
        tokio::spawn(async move {
            let stopped = async move {
                let _ = metrics_stopped.await;
            };
            if let Err(error) = metrics.serve(metrics_listener, stopped).await {
                tracing::warn!(%error, "metrics endpoint failed");
            }
        });
    }
    let cell = Arc::new(OnceLock::new());
    let deferred = Deferred {
        cell: Arc::clone(&cell),
    };
    let address = listener.local_addr()?;
    let (stop_sender, stop_receiver) = tokio::sync::oneshot::channel::<()>();
    let grace = settings.grace();
    let limits = LimitsLayer::new(settings.max_concurrent_requests, settings.max_message_bytes);
    let mut builder = tonic::transport::Server::builder();
    if let Some(config) = tls.server()? {
        builder = builder.tls_config(config)?;
    }
    let server = builder
        .layer(layer)
        .layer(security)
        .layer(limits)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(deferred)
        .serve_with_incoming_shutdown(incoming(listener), async move {
            let _ = stop_receiver.await;
        });
    tracing::info!(%address, service = S::NAME, "listening (not serving until ready)");

    let init_task = tokio::spawn(init);
    tokio::pin!(server);
    tokio::pin!(shutdown);
    tokio::pin!(init_task);
    let mut initialising = true;
    loop {
        tokio::select! {
            result = &mut server => return Ok(result?),
            () = &mut shutdown => break,
            outcome = &mut init_task, if initialising => {
                initialising = false;
                match outcome {
                    Ok(Ok(service)) => {
                        let _ = cell.set(service);
                        set_status(&reporter, S::NAME, ServingStatus::Serving).await;
                        tracing::info!(service = S::NAME, "serving");
                    }
                    Ok(Err(error)) => return Err(error.context("initialisation failed")),
                    Err(error) => return Err(anyhow::anyhow!("initialisation panicked: {error}")),
                }
            }
        }
    }

    set_status(&reporter, S::NAME, ServingStatus::NotServing).await;
    let delay = settings.shutdown_delay();
    if !delay.is_zero() {
        tracing::info!(
            delay_seconds = delay.as_secs(),
            "shutting down: NOT_SERVING, still accepting calls until load balancers move away"
        );
        tokio::select! {
            result = &mut server => return Ok(result?),
            () = tokio::time::sleep(delay) => {}
        }
    }
    tracing::info!("shutting down: draining in-flight calls");
    drop(draining);
    let _ = stop_sender.send(());
    let drained = tokio::time::timeout(grace, &mut server).await;
    let _ = metrics_stop.send(());
    match drained {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "grace period over, closing remaining calls"
            );
            Ok(())
        }
    }
}

/// Health service name that answers SERVING for as long as the process serves gRPC at all,
/// through initialisation and shutdown: what a liveness (and start-up) probe asks, so that
/// waiting for a database or another service never gets a process restarted. Readiness asks
/// the service's own name.
pub const LIVENESS_SERVICE: &str = "liveness";

async fn set_status(reporter: &HealthReporter, name: &str, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(name, status).await;
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Retries `attempt` with capped exponential back-off until it succeeds, logging each failure:
/// a service waits for its database (or another service) instead of crash-looping.
pub async fn retry_until_ok<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "{what} failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The connections of `listener` with Nagle's algorithm off: a response written as several
/// HTTP/2 frames must not wait for the client's delayed ACK (a ~40 ms stall per call on the
/// `VerifyCertificateTrust` hot path otherwise).
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut incoming = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let accepted = incoming
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(accepted.nodelay().expect("socket option"));
    }
}
