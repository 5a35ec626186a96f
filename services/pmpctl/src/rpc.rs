//! Calling the services: one lazily connected channel per service, and for every call a
//! deadline, the bearer token and a fresh W3C trace context (`traceparent`), so that an
//! operator can find any pmpctl call in Jaeger from the trace id `--verbose` prints.

use std::time::{Duration, Instant};

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::failure::{CliError, Service, code_name};

/// How every call of this invocation is made.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Deadline of each call (also the connect timeout).
    pub timeout: Duration,
    /// Print the trace id of each call on stderr.
    pub verbose: bool,
}

/// Whether a call carries the user's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Registration, login and token keys: sending a stale token there could only hurt.
    Anonymous,
    /// Everything else.
    Bearer,
}

/// A lazily connected channel to one service, and where it points (for error messages).
#[derive(Debug, Clone)]
pub struct Connection {
    pub service: Service,
    pub address: String,
    pub channel: Channel,
}

impl Connection {
    /// Prepares a channel to `address`; nothing is connected until the first call, so a
    /// service that is down shows up as that call's UNAVAILABLE.
    pub fn open(
        service: Service,
        address: &str,
        timeout: Duration,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Self, CliError> {
        let mut endpoint = Endpoint::from_shared(address.to_owned()).map_err(|error| {
            CliError::Usage(format!(
                "{} address {address:?} is not a valid URL: {error}",
                service.display_name()
            ))
        })?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|error| {
                CliError::Usage(format!(
                    "TLS settings for {} are not usable: {error}",
                    service.display_name()
                ))
            })?;
        }
        let channel = endpoint
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Connection {
            service,
            address: address.to_owned(),
            channel,
        })
    }
}

/// A fresh W3C trace context for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits, never all zero.
    pub trace_id: String,
    /// 16 lower-case hex digits, never all zero.
    pub span_id: String,
}

impl TraceContext {
    /// Random ids, as a root span of a new trace (the services' spans become its children).
    pub fn generate() -> Self {
        TraceContext {
            trace_id: hex(&non_zero_random::<16>()),
            span_id: hex(&non_zero_random::<8>()),
        }
    }

    /// The `traceparent` header value: version 00, sampled.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

fn non_zero_random<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|byte| *byte != 0) {
            return bytes;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Makes one unary call on `connection`: builds the request with deadline, trace context and
/// (for [`Authentication::Bearer`]) the token, sends it with `send`, and turns a failure into
/// a [`CliError`] that names the service.
pub async fn unary<T, R>(
    connection: &Connection,
    method: &str,
    authentication: Authentication,
    token: Option<&str>,
    options: &CallOptions,
    message: T,
    send: impl AsyncFnOnce(Request<T>) -> Result<Response<R>, Status>,
) -> Result<R, CliError> {
    let trace = TraceContext::generate();
    let mut request = Request::new(message);
    request.set_timeout(options.timeout);
    insert_metadata(&mut request, "traceparent", &trace.traceparent());
    if authentication == Authentication::Bearer
        && let Some(token) = token
    {
        insert_metadata(&mut request, "authorization", &format!("Bearer {token}"));
    }
    let started = Instant::now();
    let result = send(request)
        .await
        .map(Response::into_inner)
        .map_err(|status| deadline_as_such(status, started.elapsed(), options.timeout));
    if options.verbose {
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        eprintln!(
            "pmpctl: trace_id={} {}/{method} {} {} ms",
            trace.trace_id,
            connection.service.grpc_name(),
            code_name(code),
            started.elapsed().as_millis()
        );
    }
    result.map_err(|status| failure(connection, status))
}

/// The error of a call to `connection` that failed with `status`.
pub fn failure(connection: &Connection, status: Status) -> CliError {
    CliError::Rpc {
        service: connection.service,
        address: connection.address.clone(),
        status: Box::new(status),
    }
}

/// A request for a server stream: the trace context and the token, but no deadline (the
/// stream lasts as long as the user watches).
pub fn streaming_request<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    insert_metadata(
        &mut request,
        "traceparent",
        &TraceContext::generate().traceparent(),
    );
    if let Some(token) = token {
        insert_metadata(&mut request, "authorization", &format!("Bearer {token}"));
    }
    request
}

fn insert_metadata<T>(request: &mut Request<T>, key: &'static str, value: &str) {
    // Only a token with characters invalid in a header can fail here; the call then goes
    // out without it and the service answers UNAUTHENTICATED, which is the right message.
    if let Ok(value) = value.parse() {
        request.metadata_mut().insert(key, value);
    }
}

/// tonic reports its own client-side deadline as CANCELLED ("Timeout expired"); call it
/// DEADLINE_EXCEEDED, which is what it is and what the exit code promises.
fn deadline_as_such(status: Status, elapsed: Duration, timeout: Duration) -> Status {
    if status.code() == Code::Cancelled && elapsed >= timeout {
        Status::deadline_exceeded(format!(
            "no answer within the {} s deadline (--timeout)",
            timeout.as_secs()
        ))
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_w3c_shaped() {
        let trace = TraceContext::generate();
        let header = trace.traceparent();
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert!(
            parts[1]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(trace.trace_id, TraceContext::generate().trace_id);
    }

    #[test]
    fn client_side_timeouts_become_deadline_exceeded() {
        let second = Duration::from_secs(1);
        let status = deadline_as_such(Status::cancelled("Timeout expired"), second, second);
        assert_eq!(status.code(), Code::DeadlineExceeded);
        let early = deadline_as_such(Status::cancelled("x"), Duration::ZERO, second);
        assert_eq!(early.code(), Code::Cancelled);
    }
}
