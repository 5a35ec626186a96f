//! In-process certificate verification for relying services.
//!
//! A [`TrustMirror`] follows the certificate store's `WatchTrustChanges` feed: it applies
//! the snapshot and then every change to its own copy of the store's trust data, and
//! answers [`TrustMirror::verify`] with the store's own trust decision (`pmp_trust`, the same
//! code the store runs) over that copy, in memory. An approval, a deactivation or a
//! revocation reaches it as soon as the store commits it. The mirror resumes from the last
//! version it applied when the feed breaks, and refuses to answer (rather than answer from
//! old data) when it has heard nothing from the store for longer than the staleness bound.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use pmp_trust_client::{MirrorSettings, TrustMirror};
//!
//! let channel = tonic::transport::Endpoint::from_static("http://certificate-store:9102").connect_lazy();
//! let mirror = TrustMirror::start(channel, || Ok("Bearer <service token>".to_owned()), MirrorSettings::for_domains(&["FTM"]));
//! mirror.ready(Duration::from_secs(10)).await?;
//! let verdict = mirror.verify("-----BEGIN CERTIFICATE-----...", "FTM")?;
//! println!("trusted: {} ({})", verdict.trusted, verdict.reason);
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod data;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use chrono::Utc;
use futures::FutureExt;
use pmp_proto::certstore::v1 as proto;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_trust::{TrustSettings, TrustSnapshot, Verdict};
use tonic::transport::Channel;

use crate::data::MirrorData;

pub use pmp_trust::Verdict as TrustVerdict;

/// How a mirror follows the store.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// Domains to mirror (upper-case); all of the store's when empty.
    pub domains: Vec<String>,
    /// After this long without a message from the store (its heartbeats come every few
    /// seconds), [`TrustMirror::verify`] refuses to answer.
    pub staleness_bound: Duration,
    /// Pause before reconnecting a broken feed.
    pub reconnect_delay: Duration,
    /// Bound of the verdict cache, in bytes.
    pub cache_bytes: u64,
}

impl MirrorSettings {
    /// Mirrors `domains` with a 10 s staleness bound and a 16 MiB cache.
    pub fn for_domains(domains: &[&str]) -> Self {
        MirrorSettings {
            domains: domains
                .iter()
                .map(|domain| domain.to_ascii_uppercase())
                .collect(),
            staleness_bound: Duration::from_secs(10),
            reconnect_delay: Duration::from_millis(500),
            cache_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Why a mirror cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// It has not received the store's snapshot yet.
    #[error("the trust mirror has not synchronised with the certificate store yet")]
    NotReady,
    /// Its feed has been silent for longer than the staleness bound.
    #[error("the trust mirror is stale: nothing heard from the certificate store for {0:?}")]
    Stale(Duration),
    /// The certificate data or domain cannot be judged (as the store would refuse it).
    #[error(transparent)]
    Trust(#[from] pmp_trust::TrustError),
}

/// Supplies the `authorization` header value of each feed connection.
pub type Authorization = dyn Fn() -> Result<String, String> + Send + Sync;

/// A live mirror of the certificate store's trust data.
pub struct TrustMirror {
    snapshot: ArcSwapOption<TrustSnapshot>,
    /// Unix milliseconds of the last message from the store.
    last_heard: AtomicI64,
    settings: MirrorSettings,
    versions: tokio::sync::watch::Sender<i64>,
}

impl TrustMirror {
    /// Starts following the store over `channel`, authenticating each connection with
    /// `authorization` (a service token or an admin's access token, `Bearer ...`).
    pub fn start(
        channel: Channel,
        authorization: impl Fn() -> Result<String, String> + Send + Sync + 'static,
        settings: MirrorSettings,
    ) -> Arc<Self> {
        let (versions, _) = tokio::sync::watch::channel(0);
        let mirror = Arc::new(TrustMirror {
            snapshot: ArcSwapOption::empty(),
            last_heard: AtomicI64::new(0),
            settings,
            versions,
        });
        // The follower holds the mirror weakly: once the last handle is dropped, it stops at
        // the next message (a heartbeat at the latest) or reconnection.
        let follower = Arc::downgrade(&mirror);
        let domains = mirror.settings.domains.clone();
        let delay = mirror.settings.reconnect_delay;
        let authorization: Arc<Authorization> = Arc::new(authorization);
        tokio::spawn(async move {
            let mut data = MirrorData::default();
            loop {
                match follow(
                    &follower,
                    &domains,
                    channel.clone(),
                    &authorization,
                    &mut data,
                )
                .await
                {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%error, version = data.version(), "trust feed broken; reconnecting");
                    }
                }
                if follower.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        });
        mirror
    }

    /// The store's verdict for a PEM certificate or chain (leaf first) in `domain`, from the
    /// mirror's data. CPU-bound on a cache miss (path validation): call it off the async
    /// workers when that matters.
    pub fn verify(&self, certificate: &str, domain: &str) -> Result<Arc<Verdict>, MirrorError> {
        let snapshot = self.snapshot.load_full().ok_or(MirrorError::NotReady)?;
        let silent = self.silence();
        if silent > self.settings.staleness_bound {
            return Err(MirrorError::Stale(silent));
        }
        Ok(snapshot.verify(&domain.trim().to_ascii_uppercase(), certificate, Utc::now())?)
    }

    /// The store's version the mirror has applied (0 before the first snapshot).
    pub fn version(&self) -> i64 {
        *self.versions.borrow()
    }

    /// Waits until the mirror has applied `version` (a version the store answered with,
    /// e.g. `RevokeCertificateResponse.version`), for at most `timeout`; whether it has.
    pub async fn wait_for_version(&self, version: i64, timeout: Duration) -> bool {
        let mut versions = self.versions.subscribe();
        tokio::time::timeout(timeout, versions.wait_for(|applied| *applied >= version))
            .await
            .is_ok_and(|outcome| outcome.is_ok())
    }

    /// Waits until the first snapshot is applied, for at most `timeout`.
    pub async fn ready(&self, timeout: Duration) -> Result<(), MirrorError> {
        let mut versions = self.versions.subscribe();
        let synchronised = versions.wait_for(|_| self.snapshot.load().is_some());
        match tokio::time::timeout(timeout, synchronised).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(MirrorError::NotReady),
        }
    }

    fn silence(&self) -> Duration {
        let last = self.last_heard.load(Ordering::Relaxed);
        let elapsed = Utc::now().timestamp_millis().saturating_sub(last);
        Duration::from_millis(u64::try_from(elapsed).unwrap_or(0))
    }

    /// Builds the snapshot of `data` (on the blocking pool: it parses every CA certificate)
    /// and makes it the one verifications use.
    async fn publish(&self, data: &MirrorData) -> Result<(), String> {
        let (trust_data, policies) = data.trust_data();
        let settings = TrustSettings {
            domains: policies.keys().cloned().collect(),
            policies,
            cache_bytes: self.settings.cache_bytes,
        };
        let version = trust_data.version;
        let snapshot =
            tokio::task::spawn_blocking(move || TrustSnapshot::build(&trust_data, &settings))
                .await
                .map_err(|error| format!("building the trust snapshot failed: {error}"))?
                .map_err(|error| format!("trust data from the store did not build: {error}"))?;
        self.snapshot.store(Some(Arc::new(snapshot)));
        self.versions.send_replace(version);
        Ok(())
    }
}

/// One feed connection: resumes after the applied version and applies what comes, until
/// the feed breaks (`Err`) or the mirror is dropped (`Ok`).
async fn follow(
    mirror: &Weak<TrustMirror>,
    domains: &[String],
    channel: Channel,
    authorization: &Arc<Authorization>,
    data: &mut MirrorData,
) -> Result<(), String> {
    let mut request = tonic::Request::new(proto::WatchTrustChangesRequest {
        partner_domains: domains.to_vec(),
        from_version: data.version(),
    });
    let header = authorization()?;
    request.metadata_mut().insert(
        "authorization",
        header
            .parse()
            .map_err(|_| "authorization is not a header value".to_owned())?,
    );
    let broken = |status: tonic::Status| format!("{}: {}", status.code(), status.message());
    let mut stream = CertificateStoreClient::new(channel)
        .watch_trust_changes(request)
        .await
        .map_err(broken)?
        .into_inner();
    loop {
        let message = stream
            .message()
            .await
            .map_err(broken)?
            .ok_or_else(|| "the store ended the feed".to_owned())?;
        let Some(mirror) = mirror.upgrade() else {
            return Ok(());
        };
        mirror
            .last_heard
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        let mut changed = data.apply(message)?;
        // Apply whatever else has already arrived before building a snapshot, so that a
        // burst of changes costs one build, not one per change.
        while let Some(next) = stream.message().now_or_never() {
            let message = next
                .map_err(broken)?
                .ok_or_else(|| "the store ended the feed".to_owned())?;
            changed |= data.apply(message)?;
        }
        if changed && !data.receiving_snapshot() {
            mirror.publish(data).await?;
        }
    }
}
