//! Outgoing calls to other platform services: the generated tonic clients over a
//! [`PeerChannel`], the one client stack that adds this service's identity, the end user's
//! token, deadlines, trace propagation, retries and load balancing over replicas to every
//! call; and where the keys that verify end-user tokens come from.

/// Implements the tower service that generated clients call for a clonable channel type
/// with `send(request)`: always ready, since each call waits for its own connection (on a
/// clone), and each call runs `send` on a clone.
macro_rules! always_ready_channel {
    ($channel:ty) => {
        impl tower::Service<http::Request<tonic::body::Body>> for $channel {
            type Response = http::Response<tonic::body::Body>;
            type Error = BoxError;
            type Future = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
            >;

            fn poll_ready(
                &mut self,
                _context: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
                let channel = self.clone();
                Box::pin(async move { channel.send(request).await })
            }
        }
    };
}

mod backends;

pub use self::backends::{BalancedChannel, BoxError};

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use tonic::{Code, Request, Status};
use tracing::Instrument;

use crate::auth::user_tokens::{KeySource, VerificationKey, keys_of_jwks};
use crate::auth::{FORWARDED_USER_HEADER, ServiceSigner, User, UserTokenVerifier};
use crate::config::{DependencySettings, UserTokenSettings};
use crate::telemetry::inject_trace_headers;
use crate::tls::TlsSettings;

/// How long a connection attempt to another service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel to `address` (e.g. `http://127.0.0.1:50052`, or `https://…` with `tls`) that
/// connects on first use, so a service starts even while its dependencies are still starting.
pub fn lazy_channel(
    address: &str,
    connect_timeout: Duration,
    tls: &TlsSettings,
) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(address.to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(config) = tls.client()? {
        endpoint = endpoint.tls_config(config)?;
    }
    Ok(endpoint.connect_lazy())
}

/// Marks an outgoing request as made on behalf of an end user, whose token the client
/// stack forwards (for the callee's audit and its own authorization decisions).
#[derive(Clone)]
struct OnBehalfOf(String);

/// An outgoing request to a platform service, on behalf of `user` when there is one. The
/// [`PeerChannel`] adds everything else (identity, deadline, trace context).
pub fn request<T>(message: T, user: Option<&User>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(user) = user {
        request
            .extensions_mut()
            .insert(OnBehalfOf(user.token.clone()));
    }
    request
}

/// How calls to another platform service are retried. Every internal RPC of the platform
/// is idempotent (uploads of the same certificate by the same owner, trust flags, reads), so
/// a call that found the callee unavailable is sent again, with exponential back-off, for as
/// long as its deadline allows; the next attempt goes to another replica when there is one.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Pause before the second attempt; doubled before each further one.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(50),
        }
    }
}

/// The client stack to one other platform service, for its generated tonic client (e.g.
/// `CertificateStoreClient<PeerChannel>`). Every call gets this service's token for the
/// callee, the end user's token (see [`request`]), a deadline (`grpc-timeout`), a
/// `grpc.client` span named after the RPC whose context is propagated as W3C `traceparent`,
/// retries by [`RetryPolicy`], and round-robin over the callee's replicas (every address
/// its URLs resolve to; see [`DependencySettings::address`]).
#[derive(Clone)]
pub struct PeerChannel {
    channel: BalancedChannel,
    /// The callee's service name, the audience of our tokens.
    audience: &'static str,
    signer: Arc<ServiceSigner>,
    deadline: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for PeerChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PeerChannel")
            .field("audience", &self.audience)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl PeerChannel {
    /// The stack to service `audience` at `dependency.address` (connected on first use, over
    /// TLS when `tls` is set), signing with `signer`. Starts the task that follows the
    /// callee's replicas, so it must be called within a Tokio runtime.
    pub fn connect(
        audience: &'static str,
        dependency: &DependencySettings,
        signer: &Arc<ServiceSigner>,
        tls: &TlsSettings,
    ) -> anyhow::Result<Self> {
        Ok(PeerChannel {
            channel: BalancedChannel::new(
                audience,
                &dependency.address,
                CONNECT_TIMEOUT,
                tls.client()?,
                dependency.resolve_interval(),
            )?,
            audience,
            signer: Arc::clone(signer),
            deadline: dependency.deadline(),
            retry: RetryPolicy {
                attempts: dependency.retry_attempts,
                ..RetryPolicy::default()
            },
        })
    }

    async fn send(
        self,
        request: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, BoxError> {
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = request.uri().path().trim_start_matches('/'),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
        );
        async move {
            let started = tokio::time::Instant::now();
            let (parts, body) = request.into_parts();
            let body = http_body_util::BodyExt::collect(body).await?.to_bytes();
            let headers = self.headers(&parts)?;
            let mut attempt = 1;
            loop {
                let remaining = self.deadline.saturating_sub(started.elapsed());
                let outcome = self
                    .attempt(&parts, &headers, body.clone(), remaining)
                    .await;
                let code = outcome_code(&outcome);
                let backoff = self.retry.first_backoff * 2u32.saturating_pow(attempt - 1);
                if code != Code::Unavailable
                    || attempt >= self.retry.attempts
                    || backoff >= remaining
                {
                    tracing::Span::current().record("rpc.grpc.status_code", code as i64);
                    return outcome;
                }
                tracing::debug!(attempt, ?backoff, "peer unavailable, retrying");
                tokio::time::sleep(backoff).await;
                attempt += 1;
            }
        }
        .instrument(span)
        .await
    }

    /// The headers of every attempt: the request's own, our identity, the forwarded user and
    /// the trace context (injected inside the client span).
    fn headers(&self, parts: &http::request::Parts) -> Result<http::HeaderMap, BoxError> {
        let mut headers = parts.headers.clone();
        let token = self.signer.token_for(self.audience)?;
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
        if let Some(OnBehalfOf(token)) = parts.extensions.get::<OnBehalfOf>() {
            headers.insert(FORWARDED_USER_HEADER, token.parse()?);
        }
        inject_trace_headers(&mut headers);
        Ok(headers)
    }

    async fn attempt(
        &self,
        parts: &http::request::Parts,
        headers: &http::HeaderMap,
        body: bytes::Bytes,
        remaining: Duration,
    ) -> Result<http::Response<tonic::body::Body>, BoxError> {
        let mut request =
            http::Request::new(tonic::body::Body::new(http_body_util::Full::new(body)));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = headers.clone();
        let millis = remaining.as_millis().clamp(1, 99_999_999);
        request
            .headers_mut()
            .insert("grpc-timeout", format!("{millis}m").parse()?);
        // The callee enforces the deadline too, but a replica that vanished without closing
        // its connection would never answer.
        match tokio::time::timeout(remaining, self.channel.send(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(Status::deadline_exceeded(format!(
                "{} did not answer within the deadline",
                self.audience
            ))
            .into_http()),
        }
    }
}

/// The gRPC code of an attempt: a transport failure is `UNAVAILABLE`; a trailers-only
/// answer (every error of a unary call) carries its status in the headers.
fn outcome_code(outcome: &Result<http::Response<tonic::body::Body>, BoxError>) -> Code {
    match outcome {
        Err(_) => Code::Unavailable,
        Ok(response) => {
            Status::from_header_map(response.headers()).map_or(Code::Ok, |status| status.code())
        }
    }
}

always_ready_channel!(PeerChannel);

/// The partner registry's published keys (`GetTokenVerificationKeys`, as JWKS).
struct RegistryKeys {
    address: String,
    channel: Channel,
}

#[async_trait::async_trait]
impl KeySource for RegistryKeys {
    async fn fetch(&self) -> anyhow::Result<Vec<VerificationKey>> {
        let mut client =
            pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient::new(
                self.channel.clone(),
            );
        let mut request = Request::new(pmp_proto::partner::v1::GetTokenVerificationKeysRequest {});
        request.set_timeout(Duration::from_secs(5));
        let published = client
            .get_token_verification_keys(request)
            .await?
            .into_inner();
        if !published.jwks.is_empty() {
            return Ok(keys_of_jwks(&published.jwks)?);
        }
        published
            .public_keys_pem
            .iter()
            .map(|pem| Ok(VerificationKey::from_pem(pem)?))
            .collect()
    }

    fn describe(&self) -> String {
        format!("partner registry at {}", self.address)
    }
}

/// A JWKS document over HTTP(S) (Keycloak's realm certificates endpoint).
struct JwksUrl {
    url: String,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl KeySource for JwksUrl {
    async fn fetch(&self) -> anyhow::Result<Vec<VerificationKey>> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let body = response.text().await?;
        Ok(keys_of_jwks(&body)?)
    }

    fn describe(&self) -> String {
        format!("JWKS at {}", self.url)
    }
}

/// The user-token verifier configured by `settings`: file keys, and the JWKS URL or the
/// registry as remote source (fetched over `tls` for the registry). The caller must call
/// [`UserTokenVerifier::refresh`] before serving.
pub fn user_token_verifier(
    settings: &UserTokenSettings,
    tls: &TlsSettings,
) -> anyhow::Result<Arc<UserTokenVerifier>> {
    let mut file_keys = Vec::new();
    for file in &settings.public_key_files {
        let pem = std::fs::read_to_string(file)
            .map_err(|error| anyhow::anyhow!("cannot read {file}: {error}"))?;
        file_keys.push(VerificationKey::from_pem(&pem)?);
    }
    let source: Option<Arc<dyn KeySource>> = if !settings.jwks_url.trim().is_empty() {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .https_only(settings.jwks_url.trim().starts_with("https://"))
            .build()?;
        Some(Arc::new(JwksUrl {
            url: settings.jwks_url.trim().to_owned(),
            client,
        }))
    } else if !settings.registry_address.trim().is_empty() {
        let address = settings.registry_address.trim().to_owned();
        let channel = lazy_channel(&address, Duration::from_secs(2), tls)?;
        Some(Arc::new(RegistryKeys { address, channel }))
    } else {
        None
    };
    Ok(Arc::new(UserTokenVerifier::new(
        &settings.issuer,
        &settings.audience,
        settings.leeway_seconds,
        file_keys,
        source,
    )))
}

/// Loads the remote user-token keys, waiting for the source if it is not up yet (so the
/// service stays NOT_SERVING until it can authenticate anyone), then keeps them fresh.
pub async fn load_user_token_keys(
    verifier: &Arc<UserTokenVerifier>,
    settings: &UserTokenSettings,
) -> anyhow::Result<()> {
    crate::server::retry_until_ok("fetching user token verification keys", || {
        verifier.refresh(false)
    })
    .await;
    verifier.spawn_refresher(Duration::from_secs(settings.refresh_interval_seconds));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::auth::testing::untrusted_signer;
    use crate::testing::Spawned;

    /// A health server on `listener` that counts the calls it answers.
    fn counting_replica(listener: TcpListener, calls: Arc<AtomicUsize>) -> Spawned {
        Spawned::start_on(listener, move |listener, shutdown| async move {
            let (_, health) = tonic_health::server::health_reporter();
            let counted =
                tonic::service::interceptor::InterceptedService::new(health, move |request| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(request)
                });
            tonic::transport::Server::builder()
                .add_service(counted)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    shutdown,
                )
                .await?;
            Ok(())
        })
        .expect("replica")
    }

    async fn replica() -> (Spawned, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        (counting_replica(listener, Arc::clone(&calls)), calls)
    }

    fn peer(address: &str) -> HealthClient<PeerChannel> {
        let dependency = DependencySettings {
            address: address.to_owned(),
            deadline_ms: 5000,
            retry_attempts: 3,
            resolve_interval_ms: 60_000,
        };
        let signer = Arc::new(untrusted_signer("ftm-management"));
        let channel = PeerChannel::connect(
            "certificate-store",
            &dependency,
            &signer,
            &Default::default(),
        )
        .expect("peer channel");
        HealthClient::new(channel)
    }

    /// `count` health checks through `client`; how many failed.
    async fn checks(client: &HealthClient<PeerChannel>, count: usize) -> usize {
        let mut failed = 0;
        for _ in 0..count {
            let request = HealthCheckRequest {
                service: String::new(),
            };
            if client.clone().check(request).await.is_err() {
                failed += 1;
            }
        }
        failed
    }

    #[tokio::test]
    async fn calls_spread_over_replicas_and_none_is_lost_when_one_stops() {
        let (first, first_calls) = replica().await;
        let (second, second_calls) = replica().await;
        let client = peer(&format!("{}, {}", first.address, second.address));

        assert_eq!(checks(&client, 20).await, 0);
        assert_eq!(first_calls.load(Ordering::SeqCst), 10, "round-robin");
        assert_eq!(second_calls.load(Ordering::SeqCst), 10, "round-robin");

        let first_address = first.address.clone();
        first.stop().await.expect("first replica stops");
        assert_eq!(
            checks(&client, 20).await,
            0,
            "no call lost to the stopped replica"
        );
        assert_eq!(
            second_calls.load(Ordering::SeqCst),
            30,
            "the survivor took them all"
        );

        // The stopped replica comes back on its address: once its ejection ends it takes
        // calls again.
        let port = first_address.rsplit(':').next().expect("port");
        let listener = TcpListener::bind(format!("127.0.0.1:{port}"))
            .await
            .expect("rebind");
        let back_calls = Arc::new(AtomicUsize::new(0));
        let _back = counting_replica(listener, Arc::clone(&back_calls));
        let returned = crate::testing::eventually(Duration::from_secs(10), || async {
            checks(&client, 2).await == 0 && back_calls.load(Ordering::SeqCst) > 0
        })
        .await;
        assert!(returned, "the replica that came back gets traffic again");
        drop(second);
    }

    #[tokio::test]
    async fn with_no_replica_reachable_calls_fail_unavailable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        drop(listener);
        let status = peer(&address)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect_err("nobody listens");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
}
