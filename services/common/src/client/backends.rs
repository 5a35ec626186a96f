//! Client-side load balancing over every replica of a platform service.
//!
//! A Kubernetes ClusterIP Service hands each HTTP/2 connection to one pod for its whole life,
//! so a caller holding one long-lived connection never spreads its calls. Instead, a
//! dependency is named by one or more URLs (`http://store-headless:50052`, or a list
//! separated by commas); each URL's host is resolved again every `resolve_interval_ms`, and
//! every address it resolves to (a headless Service resolves to its ready pods) becomes a
//! backend with its own lazily connected channel. Calls go round-robin over the backends
//! that are not ejected; a backend whose connection fails is ejected for a while (doubling
//! while it keeps failing), and the caller retries elsewhere (see `PeerChannel`).
//!
//! Why not `Channel::balance_channel`: tonic's balancer keeps an endpoint whose connection is
//! refused (its lazy reconnect reports the failure on the call, not on readiness), and its
//! power-of-two-choices tends to pick exactly that idle, dead endpoint again on the retry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Uri};

/// How long a backend is left alone after its first failed connection; doubled for each
/// further consecutive failure, up to [`MAXIMUM_EJECTION`].
const FIRST_EJECTION: Duration = Duration::from_secs(1);
const MAXIMUM_EJECTION: Duration = Duration::from_secs(30);

/// The least time between two resolutions forced by a call that found no backend.
const FORCED_RESOLUTION_SPACING: Duration = Duration::from_millis(500);

/// One configured URL: where to resolve, and how to talk to what it resolves to.
#[derive(Debug, Clone)]
struct Target {
    /// The configured URL, the `:authority` of every call (and what TLS verifies).
    origin: Uri,
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn parse(address: &str) -> anyhow::Result<Target> {
        let origin: Uri = address.trim().parse()?;
        let scheme = origin.scheme_str().unwrap_or("http").to_owned();
        let host = origin
            .host()
            .ok_or_else(|| anyhow::anyhow!("{address} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = origin.port_u16().unwrap_or(default_port);
        Ok(Target {
            origin,
            scheme,
            host,
            port,
        })
    }

    /// The addresses the host names now (the host itself when it is an IP address).
    async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let mut addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((self.host.as_str(), self.port))
                .await?
                .collect();
        addresses.sort_unstable();
        addresses.dedup();
        Ok(addresses)
    }
}

/// One replica: an address and the channel to it.
#[derive(Debug)]
pub(crate) struct Backend {
    /// Index of the configured URL it was resolved from.
    target: usize,
    address: SocketAddr,
    channel: Channel,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
}

impl Backend {
    /// The channel to this replica.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Records a call that reached the replica.
    pub(crate) fn succeeded(&self) {
        if let Ok(mut health) = self.health.lock() {
            *health = Health::default();
        }
    }

    /// Records a call that could not reach the replica: it is skipped for a while.
    pub(crate) fn failed(&self) {
        if let Ok(mut health) = self.health.lock() {
            let doublings = health.consecutive_failures.min(5);
            let ejection = (FIRST_EJECTION * 2u32.pow(doublings)).min(MAXIMUM_EJECTION);
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            health.ejected_until = Some(Instant::now() + ejection);
            tracing::warn!(backend = %self.address, ?ejection, "replica unreachable, ejected");
        }
    }

    fn ejected_until(&self) -> Option<Instant> {
        let health = self.health.lock().ok()?;
        health.ejected_until.filter(|until| *until > Instant::now())
    }
}

/// A channel over every replica of one service: each call goes to the next backend that is
/// not ejected. It does not retry (a caller that knows its call is idempotent does, see
/// `PeerChannel`), but a backend that failed once gets no further calls for a while.
/// Cheap to clone; all clones share the backends.
#[derive(Debug, Clone)]
pub struct BalancedChannel {
    backends: Arc<Backends>,
    /// What the backends are replicas of, for errors.
    name: Arc<str>,
}

/// The error of a call through a [`BalancedChannel`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl BalancedChannel {
    /// A channel to `addresses` (one URL or several separated by commas; each host resolved
    /// again every `resolve_interval`), connecting lazily with `connect_timeout`, over TLS
    /// when `tls` is given. `name` names the service in errors. Must be called within a
    /// Tokio runtime.
    pub fn new(
        name: &str,
        addresses: &str,
        connect_timeout: Duration,
        tls: Option<ClientTlsConfig>,
        resolve_interval: Duration,
    ) -> anyhow::Result<BalancedChannel> {
        Ok(BalancedChannel {
            backends: Backends::start(addresses, connect_timeout, tls, resolve_interval)?,
            name: name.into(),
        })
    }

    /// Sends `request` to the next backend and records whether it could be reached.
    pub async fn send(
        &self,
        request: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, BoxError> {
        let backend = self.backends.pick().await.ok_or_else(|| {
            BoxError::from(format!("no replica of {} could be resolved", self.name))
        })?;
        let mut channel = backend.channel();
        let outcome = match tower::ServiceExt::ready(&mut channel).await {
            Ok(ready) => tower::Service::call(ready, request).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(response) => {
                backend.succeeded();
                Ok(response)
            }
            Err(error) => {
                backend.failed();
                Err(error.into())
            }
        }
    }
}

always_ready_channel!(BalancedChannel);

/// The replicas of one dependency, kept current by re-resolving its URLs.
#[derive(Debug)]
pub(crate) struct Backends {
    targets: Vec<Target>,
    connect_timeout: Duration,
    tls: Option<ClientTlsConfig>,
    current: RwLock<Vec<Arc<Backend>>>,
    next: AtomicUsize,
    last_forced_resolution: tokio::sync::Mutex<Option<Instant>>,
}

impl Backends {
    /// The backends of `addresses` (one URL, or several separated by commas), re-resolved
    /// every `resolve_interval` by a task that ends when the last holder drops them. Must be
    /// called within a Tokio runtime.
    pub(crate) fn start(
        addresses: &str,
        connect_timeout: Duration,
        tls: Option<ClientTlsConfig>,
        resolve_interval: Duration,
    ) -> anyhow::Result<Arc<Backends>> {
        let targets = addresses
            .split(',')
            .filter(|address| !address.trim().is_empty())
            .map(Target::parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!targets.is_empty(), "no address given");
        let backends = Arc::new(Backends {
            targets,
            connect_timeout,
            tls,
            current: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            last_forced_resolution: tokio::sync::Mutex::new(None),
        });
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("peer channels need a Tokio runtime"))?;
        runtime.spawn(keep_resolving(Arc::downgrade(&backends), resolve_interval));
        Ok(backends)
    }

    /// The backend for the next call: round-robin over those not ejected, or, when every one
    /// is ejected, the one whose ejection ends first (better a likely failure than none).
    /// Resolves at once when there is no backend at all (e.g. before the first resolution).
    pub(crate) async fn pick(&self) -> Option<Arc<Backend>> {
        if let Some(backend) = self.pick_current() {
            return Some(backend);
        }
        self.force_resolution().await;
        self.pick_current()
    }

    fn pick_current(&self) -> Option<Arc<Backend>> {
        let current = self.current.read().ok()?;
        let count = current.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest: Option<(Instant, &Arc<Backend>)> = None;
        for offset in 0..count {
            let backend = &current[(start + offset) % count];
            match backend.ejected_until() {
                None => return Some(Arc::clone(backend)),
                Some(until) if soonest.is_none_or(|(earliest, _)| until < earliest) => {
                    soonest = Some((until, backend));
                }
                Some(_) => {}
            }
        }
        soonest.map(|(_, backend)| Arc::clone(backend))
    }

    /// How many backends there are now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.current.read().map_or(0, |current| current.len())
    }

    async fn force_resolution(&self) {
        let mut last = self.last_forced_resolution.lock().await;
        if last.is_some_and(|at| at.elapsed() < FORCED_RESOLUTION_SPACING) {
            return;
        }
        self.resolve().await;
        *last = Some(Instant::now());
    }

    /// Resolves every URL and replaces the backends: unchanged addresses keep their channel
    /// (and connection); a URL that fails to resolve keeps the backends it had.
    async fn resolve(&self) {
        let previous: HashMap<(usize, SocketAddr), Arc<Backend>> = match self.current.read() {
            Ok(current) => current
                .iter()
                .map(|backend| ((backend.target, backend.address), Arc::clone(backend)))
                .collect(),
            Err(_) => return,
        };
        let mut next = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let addresses = match target.resolve().await {
                Ok(addresses) => addresses,
                Err(error) => {
                    tracing::warn!(host = %target.host, %error, "cannot resolve a dependency");
                    previous
                        .keys()
                        .filter(|(owner, _)| *owner == index)
                        .map(|(_, address)| *address)
                        .collect()
                }
            };
            for address in addresses {
                let backend = match previous.get(&(index, address)) {
                    Some(existing) => Arc::clone(existing),
                    None => match self.backend(index, address) {
                        Ok(backend) => Arc::new(backend),
                        Err(error) => {
                            tracing::warn!(%address, %error, "cannot configure a channel");
                            continue;
                        }
                    },
                };
                next.push(backend);
            }
        }
        if let Ok(mut current) = self.current.write() {
            if current.len() != next.len() {
                let addresses: Vec<String> = next.iter().map(|b| b.address.to_string()).collect();
                tracing::info!(backends = ?addresses, "dependency replicas changed");
            }
            *current = next;
        }
    }

    fn backend(&self, index: usize, address: SocketAddr) -> anyhow::Result<Backend> {
        let target = self
            .targets
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("no configured URL {index}"))?;
        let mut endpoint = Endpoint::from_shared(format!("{}://{address}", target.scheme))?
            .origin(target.origin.clone())
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone().domain_name(target.host.clone()))?;
        }
        Ok(Backend {
            target: index,
            address,
            channel: endpoint.connect_lazy(),
            health: Mutex::new(Health::default()),
        })
    }
}

/// Re-resolves `backends` every `interval` for as long as someone holds them.
async fn keep_resolving(backends: Weak<Backends>, interval: Duration) {
    loop {
        match backends.upgrade() {
            Some(backends) => backends.resolve().await,
            None => return,
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(addresses: &str) -> Arc<Backends> {
        Backends::start(
            addresses,
            Duration::from_secs(1),
            None,
            Duration::from_secs(60),
        )
        .expect("backends")
    }

    #[tokio::test]
    async fn each_listed_url_becomes_a_backend_and_calls_go_round_robin() {
        let backends = backends("http://127.0.0.1:1001, http://127.0.0.1:1002");
        let mut picked = Vec::new();
        for _ in 0..4 {
            picked.push(backends.pick().await.expect("backend").address.port());
        }
        assert_eq!(backends.len(), 2);
        picked.sort_unstable();
        assert_eq!(picked, [1001, 1001, 1002, 1002]);
    }

    #[tokio::test]
    async fn an_ejected_backend_is_skipped_until_every_one_is_ejected() {
        let backends = backends("http://127.0.0.1:1001,http://127.0.0.1:1002");
        let first = backends.pick().await.expect("backend");
        first.failed();
        for _ in 0..4 {
            let other = backends.pick().await.expect("backend");
            assert_ne!(other.address, first.address);
        }
        let second = backends.pick().await.expect("backend");
        second.failed();
        second.failed();
        // Both ejected: the one back soonest is still offered.
        let fallback = backends.pick().await.expect("backend");
        assert_eq!(fallback.address, first.address);
        first.succeeded();
        assert!(first.ejected_until().is_none());
    }

    #[tokio::test]
    async fn a_host_name_resolves_to_its_addresses() {
        let backends = backends("http://localhost:1003");
        assert!(backends.pick().await.is_some());
        assert!(backends.len() >= 1);
    }

    #[test]
    fn urls_without_a_host_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            assert!(
                Backends::start("", Duration::from_secs(1), None, Duration::from_secs(1)).is_err()
            );
            assert!(
                Backends::start(
                    "/relative",
                    Duration::from_secs(1),
                    None,
                    Duration::from_secs(1)
                )
                .is_err()
            );
        });
    }

    #[test]
    fn outside_a_runtime_start_says_why_it_cannot() {
        let error = Backends::start(
            "http://127.0.0.1:1",
            Duration::from_secs(1),
            None,
            Duration::from_secs(1),
        )
        .expect_err("no runtime");
        assert!(error.to_string().contains("Tokio runtime"), "{error}");
    }
}
