//! Outgoing calls to other platform services: lazily connected channels, and requests that
//! carry a deadline, this service's identity, the end user's token and the trace context.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::auth::{FORWARDED_USER_HEADER, ServiceIdentity, User};
use crate::telemetry::inject_trace_context;

/// A channel to `address` (e.g. `http://127.0.0.1:50052`) that connects on first use, so a
/// service starts even while its dependencies are still starting.
pub fn lazy_channel(address: &str, connect_timeout: Duration) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(address.to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Builds an outgoing request: deadline, service token, forwarded user, trace context.
pub fn outgoing<T>(
    message: T,
    identity: &ServiceIdentity,
    on_behalf_of: Option<&User>,
    deadline: Duration,
) -> Result<Request<T>, Status> {
    let mut request = Request::new(message);
    request.set_timeout(deadline);
    let token = identity
        .token()
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

/// Loads the keys that verify end-user tokens into `verifier`: the configured PEM files,
/// plus the partner registry's published keys when `registry_address` is set (waiting for
/// the registry if it is not up yet, so the service stays NOT_SERVING until it can
/// authenticate anyone).
pub async fn load_user_token_keys(
    settings: &crate::config::UserTokenSettings,
    verifier: &crate::auth::TokenVerifier,
) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for file in &settings.public_key_files {
        keys.push(
            std::fs::read_to_string(file)
                .map_err(|error| anyhow::anyhow!("cannot read {file}: {error}"))?,
        );
    }
    let address = settings.registry_address.trim();
    if !address.is_empty() {
        let channel = lazy_channel(address, Duration::from_secs(2))?;
        let published =
            crate::server::retry_until_ok("fetching token keys from the partner registry", || {
                let mut client =
                    pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient::new(
                        channel.clone(),
                    );
                async move {
                    let mut request =
                        Request::new(pmp_proto::partner::v1::GetTokenVerificationKeysRequest {});
                    request.set_timeout(Duration::from_secs(5));
                    client
                        .get_token_verification_keys(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await;
        if published.issuer != settings.issuer || published.audience != settings.audience {
            tracing::warn!(
                registry_issuer = %published.issuer,
                registry_audience = %published.audience,
                "the registry's token issuer/audience differ from user_tokens settings; its tokens will be refused"
            );
        }
        keys.extend(published.public_keys_pem);
    }
    verifier.set_user_keys(&keys).map_err(anyhow::Error::msg)?;
    tracing::info!(keys = keys.len(), "user token verification keys loaded");
    Ok(())
}

/// Makes one call to another platform service inside a client span: the request is built
/// inside the span (so the propagated `traceparent` names the client span as parent),
/// carries a deadline, this service's token and the forwarded end user.
pub async fn call<C, T, R, F, Fut>(
    rpc: &'static str,
    client: C,
    message: T,
    identity: &ServiceIdentity,
    on_behalf_of: Option<&User>,
    deadline: Duration,
    send: F,
) -> Result<R, Status>
where
    F: FnOnce(C, Request<T>) -> Fut,
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
        let request = outgoing(message, identity, on_behalf_of, deadline)?;
        let result = send(client, request).await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        tracing::Span::current().record("rpc.grpc.status_code", code as i64);
        result.map(tonic::Response::into_inner)
    }
    .instrument(span)
    .await
}
