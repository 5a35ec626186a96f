//! Security events — failed logins, lock-outs, permission denials, refused service
//! identities and tokens — counted in Prometheus (`pmp_security_events_total{kind}`), logged
//! (target `pmp::security`) and written to the service's audit log with the actor, the RPC
//! and the trace id.
//!
//! Code anywhere in a request calls [`record`]; the request's context (the service's
//! metrics and audit sink, the RPC's name) is set by [`SecurityLayer`] around every call, so
//! services running in one process (as in the in-process test platform) keep their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::audit::AuditEvent;
use crate::metrics::Metrics;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEventKind {
    /// Wrong user name or password.
    LoginFailed,
    /// A login or registration refused by the failure limits.
    LockedOut,
    /// A valid caller without the role, ownership or service permission.
    PermissionDenied,
    /// A service token that does not verify, or a service calling an RPC not allowed to it.
    ServiceIdentityRefused,
    /// A user token that does not verify.
    TokenRejected,
}

impl SecurityEventKind {
    /// The audit action and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::LoginFailed => "LOGIN_FAILED",
            SecurityEventKind::LockedOut => "LOCKED_OUT",
            SecurityEventKind::PermissionDenied => "PERMISSION_DENIED",
            SecurityEventKind::ServiceIdentityRefused => "SERVICE_IDENTITY_REFUSED",
            SecurityEventKind::TokenRejected => "TOKEN_REJECTED",
        }
    }
}

/// Where a service writes its security events' audit rows.
pub trait AuditSink: Send + Sync {
    /// Records `event` (without blocking the request).
    fn record(&self, event: AuditEvent);
}

/// An [`AuditSink`] writing into the service's `audit_events` table, each row on a task of
/// its own so that the request never waits for it.
pub struct DatabaseAuditSink {
    connection: sea_orm::DatabaseConnection,
}

impl DatabaseAuditSink {
    /// A sink over `connection`.
    pub fn new(connection: sea_orm::DatabaseConnection) -> Arc<Self> {
        Arc::new(DatabaseAuditSink { connection })
    }
}

impl AuditSink for DatabaseAuditSink {
    fn record(&self, event: AuditEvent) {
        let connection = self.connection.clone();
        tokio::spawn(async move {
            if let Err(error) = crate::audit::record(&connection, event).await {
                tracing::warn!(%error, "security event not audited");
            }
        });
    }
}

/// The audit sink of a service, set once its database is ready.
pub type AuditSlot = Arc<OnceLock<Arc<dyn AuditSink>>>;

/// A new, empty [`AuditSlot`].
pub fn audit_slot() -> AuditSlot {
    Arc::new(OnceLock::new())
}

#[derive(Clone)]
struct RequestContext {
    metrics: Option<Arc<Metrics>>,
    audit: AuditSlot,
    rpc: Arc<str>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The longest actor or RPC name written to the audit log.
const MAX_FIELD: usize = 64;

fn bounded(value: &str) -> String {
    value.chars().take(MAX_FIELD).collect()
}

/// Records a security event of the current request: `actor` is who did it (a partner id,
/// `service:<name>`, a tried user name, `anonymous`).
pub fn record(kind: SecurityEventKind, actor: &str) {
    let actor = bounded(actor);
    let _ = CONTEXT.try_with(|context| {
        tracing::warn!(target: "pmp::security", kind = kind.as_str(), %actor, rpc = %context.rpc, "security event");
        if let Some(metrics) = &context.metrics {
            metrics.security_event(kind.as_str());
        }
        if let Some(sink) = context.audit.get() {
            sink.record(AuditEvent::now(
                &actor,
                kind.as_str(),
                &bounded(&context.rpc),
                None,
                None,
            ));
        }
    });
}

/// Sets the security-event context of every call: the service's metrics, its audit sink
/// and the RPC's name.
#[derive(Clone)]
pub struct SecurityLayer {
    metrics: Option<Arc<Metrics>>,
    audit: AuditSlot,
}

impl SecurityLayer {
    /// The layer of a service with `metrics` (if any) and audit sink `audit`.
    pub fn new(metrics: Option<Arc<Metrics>>, audit: AuditSlot) -> Self {
        SecurityLayer { metrics, audit }
    }
}

impl<S> tower::Layer<S> for SecurityLayer {
    type Service = SecurityScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityScope {
            inner,
            metrics: self.metrics.clone(),
            audit: Arc::clone(&self.audit),
        }
    }
}

/// The service produced by [`SecurityLayer`].
#[derive(Clone)]
pub struct SecurityScope<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
    audit: AuditSlot,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for SecurityScope<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc: Arc<str> = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .into();
        let context = RequestContext {
            metrics: self.metrics.clone(),
            audit: Arc::clone(&self.audit),
            rpc,
        };
        let future = self.inner.call(request);
        Box::pin(CONTEXT.scope(context, future))
    }
}
