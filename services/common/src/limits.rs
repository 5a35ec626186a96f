//! Bounds on the work one server accepts: how many calls run at once, and how large a
//! request message may be.
//!
//! [`LimitsLayer`] sits in front of every platform service (not in front of health and
//! reflection, so that probes keep answering under load). It admits at most
//! `max_concurrent_requests` calls at once, server-wide; a call beyond that is answered at
//! once with `RESOURCE_EXHAUSTED` (reason `PMS_RESOURCE_EXHAUSTED`) instead of queueing, so
//! an overloaded replica sheds load and its callers retry elsewhere. Message size is
//! enforced by tonic's decoder (configured by each service with
//! [`max_message_bytes`](crate::config::ServerSettings::max_message_bytes)), which refuses
//! an oversized message from its length prefix, before allocating it, with a bare
//! `OUT_OF_RANGE`; this layer turns that answer into the contract's error:
//! `INVALID_ARGUMENT` `PMS_COR_001` with `ErrorInfo`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::Code;

use crate::error::{REASON_INVALID_FIELD, error_status};

/// Reason of a call refused because the server is at its concurrency limit.
pub const REASON_RESOURCE_EXHAUSTED: &str = "PMS_RESOURCE_EXHAUSTED";

/// Path prefixes of the calls that are never limited.
const EXEMPT_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct LimitsLayer {
    permits: Arc<Semaphore>,
    max_message_bytes: usize,
}

impl LimitsLayer {
    /// At most `max_concurrent_requests` calls at once; messages of at most
    /// `max_message_bytes` (the value the services give tonic's decoder, for the message).
    pub fn new(max_concurrent_requests: usize, max_message_bytes: usize) -> Self {
        LimitsLayer {
            permits: Arc::new(Semaphore::new(max_concurrent_requests.max(1))),
            max_message_bytes,
        }
    }
}

impl<S> tower::Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limits {
            inner,
            permits: Arc::clone(&self.permits),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// The service produced by [`LimitsLayer`].
#[derive(Debug, Clone)]
pub struct Limits<S> {
    inner: S,
    permits: Arc<Semaphore>,
    max_message_bytes: usize,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Limits<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
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

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if EXEMPT_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            tracing::warn!(path, "concurrency limit reached: call refused");
            let status = error_status(
                Code::ResourceExhausted,
                REASON_RESOURCE_EXHAUSTED,
                "the server is busy, retry shortly",
            );
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = self.inner.call(request);
        let max_message_bytes = self.max_message_bytes;
        Box::pin(async move {
            let response = future.await?;
            drop(permit);
            Ok(explain_oversized(response, max_message_bytes))
        })
    }
}

/// Replaces tonic's bare answer to an oversized message by the contract's error.
fn explain_oversized(
    response: http::Response<tonic::body::Body>,
    max_message_bytes: usize,
) -> http::Response<tonic::body::Body> {
    let oversized = response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"11")
        && response
            .headers()
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            .is_some_and(|message| message.contains("message%20length%20too%20large"));
    if !oversized {
        return response;
    }
    error_status(
        Code::InvalidArgument,
        REASON_INVALID_FIELD,
        format!("the request is larger than {max_message_bytes} bytes"),
    )
    .into_http()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    /// A service whose calls finish only when told to.
    #[derive(Clone)]
    struct Held {
        release: Arc<tokio::sync::Notify>,
    }

    impl Service<http::Request<()>> for Held {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let release = Arc::clone(&self.release);
            Box::pin(async move {
                release.notified().await;
                Ok(tonic::Status::ok("").into_http())
            })
        }
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(path)
            .body(())
            .expect("request")
    }

    fn grpc_status(response: &http::Response<tonic::body::Body>) -> Option<String> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_are_refused_at_once_but_health_is_not() {
        let release = Arc::new(tokio::sync::Notify::new());
        let service = LimitsLayer::new(1, 1024).layer(Held {
            release: Arc::clone(&release),
        });
        let first = tokio::spawn(service.clone().oneshot(request("/svc.S/Slow")));
        tokio::task::yield_now().await;
        // The first call holds the only permit: the next is refused without waiting.
        let refused = service
            .clone()
            .oneshot(request("/svc.S/Other"))
            .await
            .expect("answer");
        assert_eq!(
            grpc_status(&refused).as_deref(),
            Some("8"),
            "RESOURCE_EXHAUSTED"
        );
        let status = tonic::Status::from_header_map(refused.headers()).expect("status");
        assert_eq!(
            crate::error::reason_of(&status).as_deref(),
            Some(REASON_RESOURCE_EXHAUSTED)
        );
        // Health checks are never refused (they wait for the held service like anything).
        let health = tokio::spawn(
            service
                .clone()
                .oneshot(request("/grpc.health.v1.Health/Check")),
        );
        tokio::task::yield_now().await;
        release.notify_waiters();
        let health = health.await.expect("task").expect("answer");
        assert_eq!(grpc_status(&health).as_deref(), Some("0"));
        first.await.expect("task").expect("answer");
        // The permit came back: the next call is served.
        let next = tokio::spawn(service.clone().oneshot(request("/svc.S/Again")));
        tokio::task::yield_now().await;
        release.notify_waiters();
        let next = next.await.expect("task").expect("answer");
        assert_eq!(grpc_status(&next).as_deref(), Some("0"));
    }

    #[test]
    fn oversized_messages_get_the_contract_error() {
        let tonic_answer = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 2000000 bytes, the limit is: 1048576 bytes",
        )
        .into_http();
        let answer = explain_oversized(tonic_answer, 1_048_576);
        let status = tonic::Status::from_header_map(answer.headers()).expect("status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            crate::error::reason_of(&status).as_deref(),
            Some(REASON_INVALID_FIELD)
        );
        let other = tonic::Status::out_of_range("page 7 does not exist").into_http();
        let kept = explain_oversized(other, 1_048_576);
        assert_eq!(grpc_status(&kept).as_deref(), Some("11"));
    }
}
