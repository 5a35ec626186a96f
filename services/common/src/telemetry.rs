//! Logs and traces.
//!
//! Every service logs through `tracing` (pretty or JSON) and always runs an OpenTelemetry
//! tracer, so trace ids exist, appear in logs and propagate across services even without a
//! collector. When the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported
//! over OTLP/gRPC (what Jaeger accepts on port 4317) with `service.name` set per service.
//! Trace context travels between services as W3C `traceparent` metadata.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{AccessLogSettings, LogFormat, TelemetrySettings};

/// Keeps the tracer alive; [`TelemetryGuard::shutdown`] flushes pending spans.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber, tracer and propagator for `service_name`.
pub fn init(service_name: &str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let exporting =
        std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|value| !value.is_empty());
    if exporting {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service_name.to_owned());
    global::set_tracer_provider(provider.clone());

    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&settings.log_level))?;
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    match settings.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init()?,
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    // Colour codes only for a person at a terminal, never into files.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init()?,
    }
    if exporting {
        tracing::info!("exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

/// The trace id of the current span as 32 hex digits (empty when there is none).
pub fn current_trace_id() -> String {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        String::new()
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(key), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) else {
            return;
        };
        self.0.insert(key, value);
    }
}

/// Writes the current span's context into outgoing headers (`traceparent`, `tracestate`).
pub fn inject_trace_headers(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// A tower layer for tonic servers: one server span per call, child of the caller's trace
/// context, and a log line per call with method, gRPC code, duration and trace id (every
/// failed or slow call; successful ones as [`AccessLogSettings`] samples them). With
/// metrics, it also counts calls by method and code, times them and tracks calls in flight.
#[derive(Debug, Clone, Default)]
pub struct GrpcTraceLayer {
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    access_log: AccessLog,
}

impl GrpcTraceLayer {
    /// A layer recording into `metrics` as well.
    pub fn with_metrics(metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        GrpcTraceLayer {
            metrics: Some(metrics),
            access_log: AccessLog::default(),
        }
    }

    /// The layer, logging calls as `settings` says.
    pub fn access_log(self, settings: AccessLogSettings) -> Self {
        GrpcTraceLayer {
            access_log: AccessLog::new(settings),
            ..self
        }
    }
}

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace {
            inner,
            metrics: self.metrics.clone(),
            access_log: self.access_log.clone(),
        }
    }
}

/// The service produced by [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    access_log: AccessLog,
}

/// Which calls get an access-log line; successful calls are counted across every
/// connection, so "one in N" holds server-wide.
#[derive(Debug, Clone)]
struct AccessLog {
    settings: AccessLogSettings,
    successes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new(AccessLogSettings::default())
    }
}

impl AccessLog {
    fn new(settings: AccessLogSettings) -> Self {
        AccessLog {
            settings,
            successes: Default::default(),
        }
    }

    fn logs(&self, code: tonic::Code, elapsed: Duration) -> bool {
        if code != tonic::Code::Ok || elapsed >= Duration::from_millis(self.settings.slow_ms) {
            return true;
        }
        match self.settings.successes_one_in {
            0 => false,
            1 => true,
            every => {
                let seen = self
                    .successes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                seen.is_multiple_of(every)
            }
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResponseBody> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let parent = global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let (service, method) = split_path(&path);
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(parent);
        let started = Instant::now();
        let future = self.inner.call(request);
        let metrics = self.metrics.clone();
        let access_log = self.access_log.clone();
        if let Some(metrics) = &metrics {
            metrics.request_started();
        }
        Box::pin(async move {
            let result = future.instrument(span.clone()).await;
            let code = match &result {
                Ok(response) => grpc_code(response.headers()),
                Err(_) => tonic::Code::Unknown,
            };
            span.record("rpc.grpc.status_code", code as i64);
            let elapsed = started.elapsed();
            let seconds = elapsed.as_secs_f64();
            if let Some(metrics) = &metrics {
                metrics.request_finished(&path, code, seconds);
            }
            if !access_log.logs(code, elapsed) {
                return result;
            }
            let duration_ms = seconds * 1000.0;
            span.in_scope(|| {
                tracing::info!(
                    target: "pmp::access",
                    method = %path,
                    code = ?code,
                    duration_ms = format!("{duration_ms:.2}"),
                    trace_id = %current_trace_id(),
                    "request"
                );
            });
            result
        })
    }
}

fn split_path(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

/// Unary errors are "trailers-only" responses, so their code is in the headers; a response
/// without `grpc-status` in its headers carries it in the trailers after a message: OK.
fn grpc_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(log: &AccessLog, code: tonic::Code, milliseconds: u64, calls: usize) -> usize {
        (0..calls)
            .filter(|_| log.logs(code, Duration::from_millis(milliseconds)))
            .count()
    }

    #[test]
    fn successes_are_sampled_failures_and_slow_calls_never() {
        let sampled = AccessLog::new(AccessLogSettings {
            successes_one_in: 4,
            slow_ms: 100,
        });
        assert_eq!(logged(&sampled, tonic::Code::Ok, 1, 40), 10);
        assert_eq!(logged(&sampled, tonic::Code::NotFound, 1, 40), 40);
        assert_eq!(logged(&sampled, tonic::Code::Ok, 100, 40), 40, "slow");
        let silent = AccessLog::new(AccessLogSettings {
            successes_one_in: 0,
            slow_ms: 100,
        });
        assert_eq!(logged(&silent, tonic::Code::Ok, 1, 40), 0);
        assert_eq!(logged(&silent, tonic::Code::Unavailable, 1, 3), 3);
        let default = AccessLog::default();
        assert_eq!(logged(&default, tonic::Code::Ok, 1, 40), 40);
    }
}
