//! The certificate store's trust store: the current [`TrustSnapshot`] (the trust decision
//! itself lives in `pmp_trust`, shared with the relying services' mirrors) and what keeps
//! it current.
//!
//! Writes on this replica refresh the snapshot before the RPC answers; writes on other
//! replicas move the version row, which a poller reads every few seconds. A refresh reads
//! only the certificate rows stamped after the snapshot's version and applies them to a copy
//! that shares everything else; changes a row cannot express (CA certificates, CA-capable
//! stored certificates, partner deactivation, revocation), or any version step no row
//! accounts for, make it rebuild from all the data instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;

pub use pmp_trust::snapshot::{
    REASON_ISSUER_NOT_TRUSTED, REASON_ISSUER_REVOKED, REASON_NOT_REGISTERED, REASON_NOT_TRUSTED,
    REASON_REVOKED, TrustSettings, TrustSnapshot, Verdict,
};

use crate::domain::TrustData;
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::x509;

/// The current snapshot plus what keeps it current.
pub struct TrustStore {
    current: ArcSwap<TrustSnapshot>,
    repository: Arc<dyn CertificateRepository>,
    settings: TrustSettings,
    rebuild: tokio::sync::Mutex<()>,
    /// The version of the snapshot in force, for feeds waiting for changes.
    versions: tokio::sync::watch::Sender<i64>,
    hits: AtomicU64,
    misses: AtomicU64,
    advances: AtomicU64,
    rebuilds: AtomicU64,
}

/// How the trust store's refreshes since start brought it up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshCounts {
    /// From the changed certificate rows alone.
    pub advanced: u64,
    /// By reading all the data again (structural changes, or steps no row explains).
    pub rebuilt: u64,
}

impl TrustStore {
    /// Loads the first snapshot from the database.
    pub async fn load(
        repository: Arc<dyn CertificateRepository>,
        settings: TrustSettings,
    ) -> Result<Arc<Self>, StoreError> {
        let data = repository.trust_data().await?;
        let snapshot = build_blocking(data, settings.clone()).await?;
        let (versions, _) = tokio::sync::watch::channel(snapshot.version);
        Ok(Arc::new(TrustStore {
            versions,
            current: ArcSwap::from_pointee(snapshot),
            repository,
            settings,
            rebuild: tokio::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            advances: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
        }))
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        self.current.load_full()
    }

    /// Brings the snapshot up to the database's version when it moved (one cheap query
    /// otherwise): from the changed rows alone when they account for every step, else by
    /// rebuilding from all the data.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _guard = self.rebuild.lock().await;
        let current = self.current.load_full();
        let changes = self.repository.trust_changes(current.version).await?;
        if changes.version == current.version {
            return Ok(());
        }
        let settings = self.settings.clone();
        let advanced = tokio::task::spawn_blocking(move || current.advanced(&changes, &settings))
            .await
            .map_err(|error| StoreError::Internal(format!("trust store update failed: {error}")))?;
        let snapshot = match advanced {
            Some(snapshot) => {
                self.advances.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(version = snapshot.version, "trust store advanced");
                snapshot
            }
            None => {
                let data = self.repository.trust_data().await?;
                let snapshot = build_blocking(data, self.settings.clone()).await?;
                self.rebuilds.fetch_add(1, Ordering::Relaxed);
                tracing::info!(version = snapshot.version, "trust store rebuilt");
                snapshot
            }
        };
        self.versions.send_replace(snapshot.version);
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// Tells of every version the snapshot moves to (changes made here, or found by the
    /// poller), so that feeds wake at once instead of on their next poll.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.versions.subscribe()
    }

    /// The domains and their policies the store serves.
    pub fn settings(&self) -> &TrustSettings {
        &self.settings
    }

    /// Polls the version every `interval` so changes made by other replicas arrive.
    pub fn spawn_poller(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(store) = store.upgrade() else { return };
                if let Err(error) = store.refresh().await {
                    tracing::warn!(%error, "trust store refresh failed; serving the previous version");
                }
            }
        })
    }

    /// `VerifyCertificateTrust`: answered from the cache, or computed on the blocking pool.
    pub async fn verify(&self, domain: &str, data: &str) -> Result<Arc<Verdict>, StoreError> {
        let snapshot = self.snapshot();
        if snapshot.domain(domain).is_none() {
            return Err(StoreError::InvalidDomain);
        }
        let key = x509::chain_key(domain, data);
        let now = Utc::now();
        if let Some(verdict) = snapshot.cached(&key, now) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(verdict);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let domain = domain.to_owned();
        let data = data.to_owned();
        let computed = Arc::clone(&snapshot);
        let (verdict, valid_until) =
            tokio::task::spawn_blocking(move || computed.evaluate(&domain, &data, now))
                .await
                .map_err(|error| {
                    StoreError::Internal(format!("verification task failed: {error}"))
                })??;
        let verdict = Arc::new(verdict);
        snapshot.remember(key, Arc::clone(&verdict), valid_until);
        Ok(verdict)
    }

    /// How the refreshes since start went (the first load not counted).
    pub fn refresh_counts(&self) -> RefreshCounts {
        RefreshCounts {
            advanced: self.advances.load(Ordering::Relaxed),
            rebuilt: self.rebuilds.load(Ordering::Relaxed),
        }
    }

    /// (cache hits, cache misses) since start.
    pub fn cache_statistics(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

async fn build_blocking(
    data: TrustData,
    settings: TrustSettings,
) -> Result<TrustSnapshot, StoreError> {
    let built = tokio::task::spawn_blocking(move || TrustSnapshot::build(&data, &settings))
        .await
        .map_err(|error| StoreError::Internal(format!("trust store build failed: {error}")))?;
    Ok(built?)
}

/// Exposes the trust store's size and version and the verification cache's effectiveness.
pub fn register_metrics(
    store: &Arc<TrustStore>,
    metrics: &pmp_common::metrics::Metrics,
) -> Result<(), prometheus::Error> {
    use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts};
    let certificates = IntGaugeVec::new(
        Opts::new(
            "trust_store_certificates",
            "Certificates in the in-memory trust store",
        ),
        &["kind"],
    )?;
    let version = IntGauge::new(
        "trust_store_version",
        "Version of the in-memory trust store",
    )?;
    let lookups = IntGaugeVec::new(
        Opts::new(
            "verify_cache_lookups",
            "VerifyCertificateTrust cache look-ups since start, by result",
        ),
        &["result"],
    )?;
    let hit_ratio = Gauge::new(
        "verify_cache_hit_ratio",
        "Share of VerifyCertificateTrust calls answered from the cache",
    )?;
    let cache_bytes = IntGauge::new(
        "verify_cache_bytes",
        "Approximate bytes held by the verdict cache of the current trust store",
    )?;
    let refreshes = IntGaugeVec::new(
        Opts::new(
            "trust_store_refreshes",
            "Trust store refreshes since start, by how: advanced from the changed rows, or rebuilt from all data",
        ),
        &["kind"],
    )?;
    for collector in [
        Box::new(certificates.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(version.clone()),
        Box::new(lookups.clone()),
        Box::new(hit_ratio.clone()),
        Box::new(cache_bytes.clone()),
        Box::new(refreshes.clone()),
    ] {
        metrics.registry().register(collector)?;
    }
    let store = Arc::downgrade(store);
    metrics.on_scrape(move || {
        if let Some(store) = store.upgrade() {
            let snapshot = store.snapshot();
            let (cas, stored) = snapshot.size();
            certificates
                .with_label_values(&["ca"])
                .set(i64::try_from(cas).unwrap_or(i64::MAX));
            certificates
                .with_label_values(&["stored"])
                .set(i64::try_from(stored).unwrap_or(i64::MAX));
            version.set(snapshot.version);
            cache_bytes.set(i64::try_from(snapshot.cache_bytes()).unwrap_or(i64::MAX));
            let counts = store.refresh_counts();
            for (kind, count) in [("advanced", counts.advanced), ("rebuilt", counts.rebuilt)] {
                refreshes
                    .with_label_values(&[kind])
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            let (hits, misses) = store.cache_statistics();
            lookups
                .with_label_values(&["hit"])
                .set(i64::try_from(hits).unwrap_or(i64::MAX));
            lookups
                .with_label_values(&["miss"])
                .set(i64::try_from(misses).unwrap_or(i64::MAX));
            let total = hits + misses;
            hit_ratio.set(if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            });
        }
        async {}
    });
    Ok(())
}
