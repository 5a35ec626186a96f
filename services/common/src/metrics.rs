//! Prometheus metrics of a service, served as text over HTTP at `/metrics` on a port of its
//! own: per-RPC request counts by gRPC code, latency histograms, in-flight requests, database
//! pool use, plus whatever gauges the service registers (trust-store size, FTMs by status).
//!
//! Gauges that reflect state elsewhere (pool use, rows by status) are refreshed at scrape
//! time by callbacks the service registers, so nothing polls in the background.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use sea_orm::DatabaseConnection;

type Refresher = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The metrics of one service.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    security_events: IntCounterVec,
    refreshers: Mutex<Vec<Refresher>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics named `pmp_*`, labelled with `service="<service>"`.
    pub fn new(service: &str) -> Result<Arc<Self>, prometheus::Error> {
        let labels = std::iter::once(("service".to_owned(), service.to_owned())).collect();
        let registry = Registry::new_custom(Some("pmp".into()), Some(labels))?;
        let requests = IntCounterVec::new(
            Opts::new(
                "grpc_requests_total",
                "gRPC requests handled, by method and status code",
            ),
            &["method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "grpc_request_duration_seconds",
                "gRPC request latency by method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method"],
        )?;
        let in_flight = IntGauge::new("grpc_requests_in_flight", "gRPC requests being handled")?;
        let security_events = IntCounterVec::new(
            Opts::new(
                "security_events_total",
                "Failed logins, lock-outs, permission denials and refused identities, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(security_events.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Arc::new(Metrics {
            registry,
            requests,
            latency,
            in_flight,
            security_events,
            refreshers: Mutex::new(Vec::new()),
        }))
    }

    /// The registry, for service-specific metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Called by the tracing layer when a call starts.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// Called by the tracing layer when a call ends.
    pub fn request_finished(&self, method: &str, code: tonic::Code, seconds: f64) {
        self.in_flight.dec();
        self.requests
            .with_label_values(&[method, code_name(code)])
            .inc();
        self.latency.with_label_values(&[method]).observe(seconds);
    }

    /// Counts a security event of `kind` (see [`crate::security`]).
    pub fn security_event(&self, kind: &str) {
        self.security_events.with_label_values(&[kind]).inc();
    }

    /// Registers a callback run before every scrape to bring gauges up to date.
    pub fn on_scrape<F, Fut>(&self, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(mut refreshers) = self.refreshers.lock() {
            refreshers.push(Arc::new(move || Box::pin(refresh())));
        }
    }

    /// Exposes the connection pool's size and idle connections.
    pub fn watch_pool(&self, connection: DatabaseConnection) -> Result<(), prometheus::Error> {
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        self.registry.register(Box::new(pool.clone()))?;
        self.on_scrape(move || {
            let (size, idle) = pool_use(&connection);
            pool.with_label_values(&["open"]).set(size);
            pool.with_label_values(&["idle"]).set(idle);
            pool.with_label_values(&["in_use"]).set(size - idle);
            async {}
        });
        Ok(())
    }

    /// The text exposition of every metric, after running the scrape callbacks.
    pub async fn render(&self) -> String {
        let refreshers: Vec<Refresher> = self
            .refreshers
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        for refresh in refreshers {
            refresh().await;
        }
        let mut buffer = Vec::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buffer)
        {
            tracing::warn!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// Serves `/metrics` on `address` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let address = listener.local_addr()?;
        tracing::info!(%address, "serving metrics at /metrics");
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = Arc::clone(&self);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render().await,
                    )
                }
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Binds the metrics address (`host:port`; port 0 lets the system choose); an empty address
/// disables the endpoint. Synchronous so that a caller can bind every socket of a service
/// before starting it; must run inside a Tokio runtime.
pub fn bind(address: &str) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let address = address.trim();
    if address.is_empty() {
        return Ok(None);
    }
    let socket: SocketAddr = address.parse()?;
    let listener = std::net::TcpListener::bind(socket)?;
    listener.set_nonblocking(true)?;
    Ok(Some(tokio::net::TcpListener::from_std(listener)?))
}

fn pool_use(connection: &DatabaseConnection) -> (i64, i64) {
    match connection.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = connection.get_postgres_connection_pool();
            (
                i64::from(pool.size()),
                i64::try_from(pool.num_idle()).unwrap_or_default(),
            )
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let pool = connection.get_sqlite_connection_pool();
            (
                i64::from(pool.size()),
                i64::try_from(pool.num_idle()).unwrap_or_default(),
            )
        }
        _ => (0, 0),
    }
}

/// The canonical upper-case name of a gRPC code, as Prometheus label.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_requests_and_scrape_time_gauges() {
        let metrics = Metrics::new("test-service").expect("metrics");
        metrics.request_started();
        metrics.request_finished("/pkg.Svc/Call", tonic::Code::NotFound, 0.003);
        let gauge = IntGauge::new("custom_gauge", "test").expect("gauge");
        metrics
            .registry()
            .register(Box::new(gauge.clone()))
            .expect("register");
        metrics.on_scrape(move || {
            gauge.set(42);
            async {}
        });
        let text = metrics.render().await;
        assert!(text.contains(r#"pmp_grpc_requests_total{code="NOT_FOUND",method="/pkg.Svc/Call",service="test-service"} 1"#), "{text}");
        assert!(
            text.contains("pmp_custom_gauge{service=\"test-service\"} 42"),
            "{text}"
        );
        assert!(
            text.contains("pmp_grpc_requests_in_flight{service=\"test-service\"} 0"),
            "{text}"
        );
    }
}
