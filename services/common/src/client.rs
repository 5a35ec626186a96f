//! Outgoing calls to other platform services: lazily connected channels (over TLS when the
//! service has a TLS identity), and requests that carry a deadline, this service's token
//! for the callee, the end user's token and the trace context; and where the keys that
//! verify end-user tokens come from.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::auth::user_tokens::{KeySource, VerificationKey, keys_of_jwks};
use crate::auth::{FORWARDED_USER_HEADER, ServiceSigner, User, UserTokenVerifier};
use crate::config::UserTokenSettings;
use crate::telemetry::inject_trace_context;
use crate::tls::TlsSettings;

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

/// This service's view of one other platform service: how to reach it and who it is.
#[derive(Clone)]
pub struct Peer {
    /// The callee's service name (the audience of our tokens).
    pub name: &'static str,
    pub channel: Channel,
    pub signer: Arc<ServiceSigner>,
    pub deadline: Duration,
}

impl Peer {
    /// Builds an outgoing request: deadline, our service token for this peer, forwarded user,
    /// trace context.
    pub fn request<T>(
        &self,
        message: T,
        on_behalf_of: Option<&User>,
    ) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        request.set_timeout(self.deadline);
        let token = self
            .signer
            .token_for(self.name)
            .map_err(|error| crate::error::internal(&error))?;
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|_| crate::error::internal(&"service token is not valid metadata"))?;
        request
            .metadata_mut()
            .insert("authorization", authorization);
        if let Some(user) = on_behalf_of
            && let Ok(value) = user.token.parse()
        {
            request.metadata_mut().insert(FORWARDED_USER_HEADER, value);
        }
        inject_trace_context(request.metadata_mut());
        Ok(request)
    }

    /// Makes one call to the peer inside a client span: the request is built inside the span
    /// (so the propagated `traceparent` names the client span as parent).
    pub async fn call<T, R, F, Fut>(
        &self,
        rpc: &'static str,
        message: T,
        on_behalf_of: Option<&User>,
        send: F,
    ) -> Result<R, Status>
    where
        F: FnOnce(Channel, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = rpc,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
        );
        async move {
            let request = self.request(message, on_behalf_of)?;
            let result = send(self.channel.clone(), request).await;
            let code = result
                .as_ref()
                .map_or_else(Status::code, |_| tonic::Code::Ok);
            tracing::Span::current().record("rpc.grpc.status_code", code as i64);
            result.map(tonic::Response::into_inner)
        }
        .instrument(span)
        .await
    }
}

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
            return keys_of_jwks(&published.jwks).map_err(anyhow::Error::msg);
        }
        published
            .public_keys_pem
            .iter()
            .map(|pem| VerificationKey::from_pem(pem).map_err(anyhow::Error::msg))
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
        keys_of_jwks(&body).map_err(anyhow::Error::msg)
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
        file_keys.push(VerificationKey::from_pem(&pem).map_err(anyhow::Error::msg)?);
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
