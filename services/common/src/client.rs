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
