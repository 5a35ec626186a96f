//! The in-memory trust store behind `VerifyCertificateTrust`, the hot path of the platform,
//! and the one place where the contract's trust model is decided.
//!
//! A [`TrustSnapshot`] holds, per domain, an OpenSSL `X509Store` built once from the CA
//! certificates (roots as anchors; intermediates plus the stored CA-capable partner/FTM
//! certificates that are trusted in effect as the issuer pool), the effective trust of every
//! stored partner/FTM certificate by identity (SHA-256 of its `tbsCertificate`), and the
//! domain's [`TrustPolicy`]. A stored certificate is trusted in effect only while it is
//! marked trusted *and* its partner is not deactivated, so deactivating a partner untrusts
//! its certificates and its FTMs' chip certificates in one write, and re-activating it
//! restores exactly those that were marked. Snapshots are immutable: a change builds a new
//! one off to the side and swaps it in atomically (`arc-swap`), so a verification never sees
//! a half-built store and never touches the database.
//!
//! Each snapshot carries its own verdict cache, keyed by the domain and the exact request
//! text (see [`x509::chain_key`]), bounded in bytes with least-recently-used eviction. A new
//! snapshot starts with an empty cache: every change of CA certificates, trust flags or
//! partner states invalidates all cached results at once. Cached results also expire with
//! the certificates they vouch for.
//!
//! Writes on this replica refresh the snapshot before the RPC answers; writes on other
//! replicas move the version row, which a poller reads every few seconds. A refresh reads
//! only the certificate rows stamped after the snapshot's version and applies them to a copy
//! that shares everything else (module `incremental`); changes a row cannot express (CA
//! certificates, CA-capable stored certificates, partner deactivation), or any version step
//! no row accounts for, make it rebuild from all the data instead.

mod incremental;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use openssl::x509::X509;

use self::incremental::StoredTrust;
use crate::domain::{TrustData, TrustPolicy};
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::x509::{self, CertError, TrustMaterial};

/// How long a trusted result may be served from the cache at most.
const TRUSTED_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long an untrusted result may be served from the cache (a not-yet-valid certificate
/// may become valid).
const UNTRUSTED_TTL: chrono::Duration = chrono::Duration::seconds(60);
/// Reason for a stored certificate that is not trusted in effect.
pub const REASON_NOT_TRUSTED: &str =
    "certificate is not trusted: not approved, replaced, or its partner is deactivated";
/// Reason for a stored, not trusted certificate among the issuers of a path.
pub const REASON_ISSUER_NOT_TRUSTED: &str = "an issuer in the chain is not trusted";
/// Reason, under the `registered` policy, for a valid path without any trusted stored
/// partner/FTM certificate.
pub const REASON_NOT_REGISTERED: &str =
    "not registered: no approved partner or FTM certificate is on its certification path";

/// The answer to "is this certificate trusted in this domain right now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the certificate is trusted in the domain right now.
    pub trusted: bool,
    /// The verified path, leaf first; empty when untrusted. Issuers' PEM text is shared
    /// with the snapshot, so cached verdicts hold little more than their leaf.
    pub chain_pem: Vec<Arc<str>>,
    /// Why it is not trusted; empty when trusted.
    pub reason: String,
}

impl Verdict {
    fn untrusted(reason: &str) -> Self {
        Verdict {
            trusted: false,
            chain_pem: Vec::new(),
            reason: reason.to_owned(),
        }
    }

    /// Approximate memory held by a cached copy, for the cache's byte bound: the leaf's
    /// text (the issuers' is shared with the snapshot) and a pointer per issuer.
    fn weight(&self) -> u32 {
        let leaf = self.chain_pem.first().map_or(0, |pem| pem.len());
        let bytes = leaf + 16 * self.chain_pem.len() + self.reason.len();
        u32::try_from(bytes + 128).unwrap_or(u32::MAX)
    }
}

#[derive(Clone)]
struct CachedVerdict {
    verdict: Arc<Verdict>,
    valid_until: DateTime<Utc>,
}

/// Expires each cached verdict at its own `valid_until`.
struct VerdictExpiry;

impl moka::Expiry<[u8; 32], CachedVerdict> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &CachedVerdict,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            (value.valid_until - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Trust material of one domain. Cloning shares the built material.
#[derive(Clone)]
pub struct DomainTrust {
    policy: TrustPolicy,
    /// Roots and intermediates from the CA store plus the stored CA-capable certificates
    /// that are trusted in effect.
    material: Arc<TrustMaterial>,
    /// Roots of the CA store (anchors for CA uploads).
    pub roots: Vec<X509>,
    /// Intermediates of the CA store (pool for CA uploads).
    pub intermediates: Vec<X509>,
    /// Effective trust of each stored partner/FTM certificate, by identity.
    stored: StoredTrust,
    /// PEM text of the CA certificates and trusted stored issuers, by identity, shared by
    /// every verdict whose path runs through them.
    issuer_pems: Arc<HashMap<String, Arc<str>>>,
}

impl DomainTrust {
    /// Material for validating partner uploads: CA certificates plus trusted stored CAs.
    pub fn material(&self) -> &TrustMaterial {
        &self.material
    }

    /// The domain's trust policy.
    pub fn policy(&self) -> TrustPolicy {
        self.policy
    }

    /// `Some(effective trust)` for a stored partner/FTM certificate, `None` if not stored.
    fn stored_trust(&self, identity: &str) -> Option<bool> {
        self.stored.get(identity)
    }

    /// The contract's trust decision for a parsed request (leaf first, then helpers) at
    /// `now`, with how long the verdict may be cached. CPU-bound.
    fn decide(
        &self,
        certificates: &[X509],
        now: DateTime<Utc>,
    ) -> Result<(Verdict, DateTime<Utc>), StoreError> {
        let untrusted = |reason: &str| (Verdict::untrusted(reason), now + UNTRUSTED_TTL);
        let Some((leaf, supplied)) = certificates.split_first() else {
            return Err(StoreError::Certificate(CertError::NoCertificate));
        };
        if self.stored_trust(&x509::identity_of(leaf)?) == Some(false) {
            return Ok(untrusted(REASON_NOT_TRUSTED));
        }
        // Stored certificates that are not trusted may not lend their signature to a path.
        let mut helpers = Vec::with_capacity(supplied.len());
        let mut withheld = false;
        for certificate in supplied {
            if self.stored_trust(&x509::identity_of(certificate)?) == Some(false) {
                withheld = true;
            } else {
                helpers.push(certificate.clone());
            }
        }
        let chain = match self.material.verify(leaf, &helpers, None) {
            Ok(chain) => chain,
            // Without the withheld certificate there is no path: that is why.
            Err(_) if withheld => return Ok(untrusted(REASON_ISSUER_NOT_TRUSTED)),
            Err(error) => return Ok(untrusted(&error.reason)),
        };
        let mut registered = false;
        let mut chain_pem = Vec::with_capacity(chain.len());
        let mut valid_until = now + TRUSTED_TTL;
        for certificate in &chain {
            let identity = x509::identity_of(certificate)?;
            match self.stored_trust(&identity) {
                Some(false) => return Ok(untrusted(REASON_ISSUER_NOT_TRUSTED)),
                Some(true) => registered = true,
                None => {}
            }
            valid_until = valid_until.min(x509::not_after_of(certificate)?);
            chain_pem.push(match self.issuer_pems.get(&identity) {
                Some(shared) => Arc::clone(shared),
                None => Arc::from(x509::pem_string(certificate)?),
            });
        }
        if self.policy == TrustPolicy::Registered && !registered {
            return Ok(untrusted(REASON_NOT_REGISTERED));
        }
        let verdict = Verdict {
            trusted: true,
            chain_pem,
            reason: String::new(),
        };
        Ok((verdict, valid_until))
    }
}

/// One immutable version of the trust store.
pub struct TrustSnapshot {
    /// Trust-store version it reflects; `refresh` rebuilds only when the stored one differs.
    pub version: i64,
    domains: HashMap<String, DomainTrust>,
    /// Partners whose certificates are untrusted, for applying row changes.
    deactivated: Arc<HashSet<String>>,
    cache: moka::sync::Cache<[u8; 32], CachedVerdict>,
}

/// What a snapshot is built with besides the data: the allowed domains, their policies and
/// the verdict cache's size.
#[derive(Debug, Clone)]
pub struct TrustSettings {
    /// Allowed domains, upper-case.
    pub domains: Vec<String>,
    /// Policy per domain; a domain without an entry is `registered`.
    pub policies: HashMap<String, TrustPolicy>,
    /// Bound of the verdict cache, in bytes.
    pub cache_bytes: u64,
}

impl TrustSettings {
    /// The allowed `domains`, all `registered`, with a small cache (tests and tools).
    pub fn registered(domains: &[&str]) -> Self {
        TrustSettings {
            domains: domains.iter().map(|domain| domain.to_string()).collect(),
            policies: HashMap::new(),
            cache_bytes: 16 * 1024 * 1024,
        }
    }
}

impl TrustSnapshot {
    /// Builds a snapshot (CPU-bound: parses every certificate; run it off the async workers).
    pub fn build(data: &TrustData, settings: &TrustSettings) -> Result<Self, StoreError> {
        x509::isolated(|| Self::build_isolated(data, settings))
    }

    fn build_isolated(data: &TrustData, settings: &TrustSettings) -> Result<Self, StoreError> {
        let mut roots: HashMap<&str, Vec<X509>> = HashMap::new();
        let mut intermediates: HashMap<&str, Vec<X509>> = HashMap::new();
        for (domain, pem) in &data.ca_certificates {
            let certificate = X509::from_pem(pem.as_bytes()).map_err(CertError::from)?;
            let target = if x509::is_self_signed(&certificate) {
                &mut roots
            } else {
                &mut intermediates
            };
            target.entry(domain.as_str()).or_default().push(certificate);
        }
        let deactivated: HashSet<String> = data.deactivated_partners.iter().cloned().collect();
        let mut domains = HashMap::new();
        for domain in &settings.domains {
            let domain_roots = roots.remove(domain.as_str()).unwrap_or_default();
            let domain_intermediates = intermediates.remove(domain.as_str()).unwrap_or_default();
            let mut pool = domain_intermediates.clone();
            let mut stored = HashMap::new();
            for entry in data
                .stored_certificates
                .iter()
                .filter(|entry| &entry.partner_domain == domain)
            {
                let effective = entry.trusted && !deactivated.contains(&entry.partner_id);
                stored.insert(entry.identity.clone(), effective);
                if let Some(pem) = entry.issuer_pem.as_deref().filter(|_| effective) {
                    pool.push(X509::from_pem(pem.as_bytes()).map_err(CertError::from)?);
                }
            }
            let issuer_pems = Arc::new(shared_pems(&domain_roots, &pool)?);
            let material = Arc::new(TrustMaterial::build(domain_roots.clone(), pool)?);
            let policy = settings.policies.get(domain).copied().unwrap_or_default();
            domains.insert(
                domain.clone(),
                DomainTrust {
                    policy,
                    material,
                    roots: domain_roots,
                    intermediates: domain_intermediates,
                    stored: StoredTrust::new(stored),
                    issuer_pems,
                },
            );
        }
        Ok(TrustSnapshot {
            version: data.version,
            domains,
            deactivated: Arc::new(deactivated),
            cache: new_cache(settings),
        })
    }

    /// The trust material of `domain` (an allowed, upper-case domain).
    pub fn domain(&self, domain: &str) -> Option<&DomainTrust> {
        self.domains.get(domain)
    }

    /// How many CA certificates and stored partner/FTM certificates the snapshot holds.
    pub fn size(&self) -> (usize, usize) {
        self.domains.values().fold((0, 0), |(cas, stored), domain| {
            (
                cas + domain.roots.len() + domain.intermediates.len(),
                stored + domain.stored.len(),
            )
        })
    }

    /// Verifies a PEM certificate or chain (leaf first) against `domain` at `now`, without
    /// the cache. CPU-bound.
    pub fn evaluate(
        &self,
        domain: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> Result<(Verdict, DateTime<Utc>), StoreError> {
        let trust = self.domain(domain).ok_or(StoreError::InvalidDomain)?;
        x509::isolated(|| {
            let certificates = x509::parse_chain(data)?;
            trust.decide(&certificates, now)
        })
    }

    fn cached(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<Arc<Verdict>> {
        self.cache
            .get(key)
            .filter(|entry| entry.valid_until > now)
            .map(|entry| entry.verdict)
    }

    fn remember(&self, key: [u8; 32], verdict: Arc<Verdict>, valid_until: DateTime<Utc>) {
        self.cache.insert(
            key,
            CachedVerdict {
                verdict,
                valid_until,
            },
        );
        // Evict now rather than on the cache's own schedule, so the byte bound holds at
        // every moment; a miss has just validated a path, which costs far more.
        self.cache.run_pending_tasks();
    }
}

/// The PEM text of `roots` and `pool` by identity, encoded once per snapshot.
fn shared_pems(roots: &[X509], pool: &[X509]) -> Result<HashMap<String, Arc<str>>, StoreError> {
    let mut pems = HashMap::with_capacity(roots.len() + pool.len());
    for certificate in roots.iter().chain(pool) {
        let identity = x509::identity_of(certificate)?;
        pems.insert(identity, Arc::from(x509::pem_string(certificate)?));
    }
    Ok(pems)
}

/// An empty verdict cache bounded as `settings` say.
fn new_cache(settings: &TrustSettings) -> moka::sync::Cache<[u8; 32], CachedVerdict> {
    moka::sync::Cache::builder()
        .max_capacity(settings.cache_bytes)
        .weigher(|_key: &[u8; 32], value: &CachedVerdict| value.verdict.weight())
        .expire_after(VerdictExpiry)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build()
}

/// The current snapshot plus what keeps it current.
pub struct TrustStore {
    current: ArcSwap<TrustSnapshot>,
    repository: Arc<dyn CertificateRepository>,
    settings: TrustSettings,
    rebuild: tokio::sync::Mutex<()>,
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
        Ok(Arc::new(TrustStore {
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
        self.current.store(Arc::new(snapshot));
        Ok(())
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
    tokio::task::spawn_blocking(move || TrustSnapshot::build(&data, &settings))
        .await
        .map_err(|error| StoreError::Internal(format!("trust store build failed: {error}")))?
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
            snapshot.cache.run_pending_tasks();
            cache_bytes.set(i64::try_from(snapshot.cache.weighted_size()).unwrap_or(i64::MAX));
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
