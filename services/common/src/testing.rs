//! Helpers for the tests of every service: in-process servers on `127.0.0.1:0`, readiness
//! waits, reflection listing and assertions on gRPC errors.
//!
//! They live in the library (not behind `cfg(test)`) so that the integration tests of all
//! service crates and the end-to-end suite share one copy.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::bootstrap::PlatformService;
use crate::error::reason_of;

/// A server running inside the test process.
pub struct Spawned {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// `127.0.0.1:<port>` of its `/metrics` endpoint, when it serves one.
    pub metrics_address: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Spawned {
    /// Binds `127.0.0.1:0` and runs `run(listener, shutdown)` on a task.
    pub async fn start<F, Fut>(run: F) -> anyhow::Result<Spawned>
    where
        F: FnOnce(TcpListener, futures::future::BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, run)
    }

    /// Runs `run(listener, shutdown)` on a task, on a listener bound beforehand (so that two
    /// services can be told each other's address before either starts).
    pub fn start_on<F, Fut>(listener: TcpListener, run: F) -> anyhow::Result<Spawned>
    where
        F: FnOnce(TcpListener, futures::future::BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let address = format!("http://{}", listener.local_addr()?);
        let (sender, receiver) = oneshot::channel::<()>();
        let shutdown: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let _ = receiver.await;
        });
        let task = tokio::spawn(run(listener, shutdown));
        Ok(Spawned {
            address,
            metrics_address: None,
            shutdown: Some(sender),
            task: Some(task),
        })
    }

    /// Runs `service` with `settings` on `listener` (bound beforehand, so that services can
    /// be told each other's address before either starts), as its binary would.
    pub fn service_on<P>(
        service: P,
        settings: P::Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Spawned>
    where
        P: PlatformService,
        <P::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError>,
        <P::Server as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
    {
        let crate::bootstrap::Listeners { grpc, metrics } =
            crate::bootstrap::Listeners::new(listener, &settings)?;
        let metrics_address = match &metrics {
            Some(metrics) => Some(metrics.local_addr()?.to_string()),
            None => None,
        };
        let mut spawned = Self::start_on(grpc, move |grpc, shutdown| {
            let listeners = crate::bootstrap::Listeners { grpc, metrics };
            crate::bootstrap::run(service, settings, listeners, shutdown)
        })?;
        spawned.metrics_address = metrics_address;
        Ok(spawned)
    }

    /// [`Spawned::service_on`] on `127.0.0.1:0`.
    pub async fn service<P>(service: P, settings: P::Settings) -> anyhow::Result<Spawned>
    where
        P: PlatformService,
        <P::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError>,
        <P::Server as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
    {
        Self::service_on(service, settings, TcpListener::bind("127.0.0.1:0").await?)
    }

    /// A channel to the server.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.address.clone())?
            .connect()
            .await?)
    }

    /// Waits until `service` reports SERVING; fails at once with the server's own error when
    /// it stops first (a start-up refusal), instead of waiting out `timeout`.
    pub async fn until_serving(&mut self, service: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                let outcome = match self.task.take() {
                    Some(task) => task.await?,
                    None => Ok(()),
                };
                outcome?;
                anyhow::bail!("{service} at {} stopped before serving", self.address);
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = Duration::from_millis(200).min(remaining);
            if wait_until_serving(&self.address, service, attempt)
                .await
                .is_ok()
            {
                return Ok(());
            }
            if remaining.is_zero() {
                anyhow::bail!(
                    "{service} at {} did not become SERVING within {timeout:?}",
                    self.address
                );
            }
        }
    }

    /// Asks the server to shut down gracefully and returns its result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down().await
    }

    /// [`Spawned::stop`] for a server held in a field that is replaced afterwards.
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }
}

/// A listener on `127.0.0.1:0` and its `http://` address.
pub async fn reserve_address() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    Ok((listener, address))
}

/// The health status of `service` ("" for the whole server).
pub async fn health_status(channel: Channel, service: &str) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
}

/// Waits until `service` at `address` reports SERVING.
pub async fn wait_until_serving(
    address: &str,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(channel) = Channel::from_shared(address.to_owned())?.connect().await
            && let Ok(ServingStatus::Serving) = health_status(channel, service).await
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{service} at {address} did not become SERVING within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The services a server lists through reflection v1.
pub async fn reflection_services(channel: Channel) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    match reflection(channel, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(list) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer {other:?}"),
    }
}

/// The names of the files reflection v1 serves for `symbol` (the file declaring it and the
/// files it imports), e.g. for `google.rpc.ErrorInfo`, which clients such as grpcurl need to
/// show an error's reason.
pub async fn reflection_files_of(channel: Channel, symbol: &str) -> anyhow::Result<Vec<String>> {
    use prost::Message;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    match reflection(
        channel,
        MessageRequest::FileContainingSymbol(symbol.to_owned()),
    )
    .await?
    {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())?;
                Ok(file.name().to_owned())
            })
            .collect(),
        other => anyhow::bail!("reflection does not know {symbol}: {other:?}"),
    }
}

async fn reflection(
    channel: Channel,
    message: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> anyhow::Result<tonic_reflection::pb::v1::server_reflection_response::MessageResponse> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    let Some(response) = stream.message().await? else {
        anyhow::bail!("reflection answered nothing");
    };
    response
        .message_response
        .ok_or_else(|| anyhow::anyhow!("reflection answered without a message"))
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Asserts that `result` failed with `code` and the `ErrorInfo` reason `reason`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) {
    match result {
        Ok(value) => panic!("expected {code:?}/{reason}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "wrong code for {reason}: {status:?}");
            assert_eq!(
                reason_of(&status).as_deref(),
                Some(reason),
                "wrong reason: {status:?}"
            );
            let domain =
                tonic_types::StatusExt::get_details_error_info(&status).map(|info| info.domain);
            assert_eq!(
                domain.as_deref(),
                Some(crate::ERROR_DOMAIN),
                "wrong domain: {status:?}"
            );
        }
    }
}

/// One Prometheus sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The value of the sample named `name` whose labels include all of `labels`.
pub fn sample_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
}

/// Fetches `http://<address>/metrics` and parses the Prometheus text format.
pub async fn scrape_metrics(address: &str) -> anyhow::Result<Vec<Sample>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP body"))?;
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!(
            "metrics endpoint answered {}",
            head.lines().next().unwrap_or_default()
        );
    }
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let malformed = || anyhow::anyhow!("malformed metrics line: {line}");
    let (series, value) = line.rsplit_once(' ').ok_or_else(malformed)?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').ok_or_else(malformed)?),
        None => (series, ""),
    };
    let mut parsed = std::collections::BTreeMap::new();
    for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once("=\"").ok_or_else(malformed)?;
        parsed.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels: parsed,
        value: value.parse()?,
    })
}

/// Repeats `check` until it returns true or `timeout` passes; returns the last result. For
/// conditions another task brings about (a cache refresh, a background pass), never for
/// waiting out a fixed delay.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next message of a server stream (`None` when it ended), or its error status; panics
/// when nothing arrives within 10 s, so a test waiting for a message that never comes fails
/// instead of hanging.
pub async fn next_message<T>(stream: &mut tonic::Streaming<T>) -> Result<Option<T>, Status> {
    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
        Ok(result) => result,
        Err(_) => panic!("no message within 10 s"),
    }
}

/// The next message of a server stream for which `wanted` holds, skipping the others (such
/// as heartbeats); panics when the stream fails, ends, or stays silent for 10 s.
pub async fn next_wanted<T>(stream: &mut tonic::Streaming<T>, wanted: impl Fn(&T) -> bool) -> T {
    loop {
        match next_message(stream).await {
            Ok(Some(message)) if wanted(&message) => return message,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended"),
            Err(status) => panic!("the stream failed: {status:?}"),
        }
    }
}
