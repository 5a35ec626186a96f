//! The in-memory trust store behind `VerifyCertificateTrust`, the hot path of the platform.
//!
//! A [`TrustSnapshot`] holds, per domain, an OpenSSL `X509Store` built once from the CA
//! certificates (roots as anchors; intermediates plus trusted CA-capable partner
//! certificates as the issuer pool) and the trust flag of every partner/FTM certificate the
//! store holds. Snapshots are immutable: a change builds a new one off to the side and swaps
//! it in atomically (`arc-swap`), so a verification never sees a half-built store.
//!
//! Each snapshot carries its own result cache keyed by a SHA-256 of the request (domain and
//! certificate data), so a repeated certificate costs one hash and one map look-up, never a
//! database query. A new snapshot starts with an empty cache: every change of CA
//! certificates or trust flags invalidates all cached results at once. Cached results also
//! expire with the certificates they vouch for.
//!
//! Writes on this replica refresh the snapshot before the RPC answers; writes on other
//! replicas move the version row, which a poller reads every few seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use openssl::x509::X509;

use crate::domain::TrustData;
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::x509::{self, CertError, CertificateFacts, TrustMaterial};

/// Most results a snapshot caches before it starts over.
const CACHE_CAPACITY: usize = 100_000;
/// How long a trusted result may be served from the cache at most.
const TRUSTED_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long an untrusted result may be served from the cache (a not-yet-valid certificate
/// may become valid).
const UNTRUSTED_TTL: chrono::Duration = chrono::Duration::seconds(60);

/// The answer to "is this certificate trusted in this domain right now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub trusted: bool,
    /// The verified path, leaf first; empty when untrusted.
    pub chain_pem: Vec<String>,
    /// Why it is not trusted; empty when trusted.
    pub reason: String,
}

struct CachedVerdict {
    verdict: Arc<Verdict>,
    valid_until: DateTime<Utc>,
}

/// Trust material of one domain.
pub struct DomainTrust {
    /// Roots and intermediates from the CA store plus trusted CA-capable partner certificates.
    material: TrustMaterial,
    /// Roots of the CA store (anchors for CA uploads).
    pub roots: Vec<X509>,
    /// Intermediates of the CA store (pool for CA uploads).
    pub intermediates: Vec<X509>,
    /// Trust flag of each stored partner/FTM certificate, by thumbprint.
    partner_trust: HashMap<String, bool>,
}

impl DomainTrust {
    /// Material for validating partner uploads: CA certificates plus trusted partner CAs.
    pub fn material(&self) -> &TrustMaterial {
        &self.material
    }

    fn is_known_untrusted(&self, thumbprint: &str) -> bool {
        self.partner_trust.get(thumbprint) == Some(&false)
    }
}

/// One immutable version of the trust store.
pub struct TrustSnapshot {
    pub version: i64,
    domains: HashMap<String, DomainTrust>,
    cache: RwLock<HashMap<[u8; 32], CachedVerdict>>,
}

impl TrustSnapshot {
    /// Builds a snapshot (CPU-bound: parses every certificate; run it off the async workers).
    pub fn build(data: &TrustData, allowed_domains: &[String]) -> Result<Self, StoreError> {
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
        let mut domains = HashMap::new();
        for domain in allowed_domains {
            let domain_roots = roots.remove(domain.as_str()).unwrap_or_default();
            let domain_intermediates = intermediates.remove(domain.as_str()).unwrap_or_default();
            let mut pool = domain_intermediates.clone();
            let mut partner_trust = HashMap::new();
            for entry in data
                .partner_certificates
                .iter()
                .filter(|entry| &entry.partner_domain == domain)
            {
                let trusted = partner_trust
                    .get(&entry.thumbprint)
                    .copied()
                    .unwrap_or(true)
                    && entry.trusted;
                partner_trust.insert(entry.thumbprint.clone(), trusted);
                if let Some(pem) = entry.issuer_pem.as_deref().filter(|_| entry.trusted) {
                    pool.push(X509::from_pem(pem.as_bytes()).map_err(CertError::from)?);
                }
            }
            let material = TrustMaterial::build(domain_roots.clone(), pool)?;
            domains.insert(
                domain.clone(),
                DomainTrust {
                    material,
                    roots: domain_roots,
                    intermediates: domain_intermediates,
                    partner_trust,
                },
            );
        }
        Ok(TrustSnapshot {
            version: data.version,
            domains,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The trust material of `domain` (an allowed, upper-case domain).
    pub fn domain(&self, domain: &str) -> Option<&DomainTrust> {
        self.domains.get(domain)
    }

    /// How many CA certificates and partner certificates the snapshot holds.
    pub fn size(&self) -> (usize, usize) {
        self.domains
            .values()
            .fold((0, 0), |(cas, partners), domain| {
                (
                    cas + domain.roots.len() + domain.intermediates.len(),
                    partners + domain.partner_trust.len(),
                )
            })
    }

    fn cached(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<Arc<Verdict>> {
        let cache = self.cache.read().ok()?;
        cache
            .get(key)
            .filter(|entry| entry.valid_until > now)
            .map(|entry| Arc::clone(&entry.verdict))
    }

    fn remember(&self, key: [u8; 32], verdict: Arc<Verdict>, valid_until: DateTime<Utc>) {
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(
                key,
                CachedVerdict {
                    verdict,
                    valid_until,
                },
            );
        }
    }

    /// Verifies a PEM certificate or chain (leaf first) against `domain` at `now`.
    /// CPU-bound on a cache miss.
    fn evaluate(
        &self,
        domain: &DomainTrust,
        data: &str,
        now: DateTime<Utc>,
    ) -> Result<(Verdict, DateTime<Utc>), StoreError> {
        let certificates = x509::parse_chain(data)?;
        let Some((leaf, supplied)) = certificates.split_first() else {
            return Err(StoreError::Certificate(CertError::NoCertificate));
        };
        let untrusted = |reason: &str| {
            (
                Verdict {
                    trusted: false,
                    chain_pem: Vec::new(),
                    reason: reason.to_owned(),
                },
                now + UNTRUSTED_TTL,
            )
        };
        let leaf_facts = CertificateFacts::of(leaf)?;
        if domain.is_known_untrusted(&leaf_facts.thumbprint) {
            return Ok(untrusted(
                "certificate is not trusted: not approved, or its owner is deactivated",
            ));
        }
        // Certificates the store holds as untrusted may not lend their signature to a chain.
        let mut helpers = Vec::with_capacity(supplied.len());
        for certificate in supplied {
            if !domain.is_known_untrusted(&CertificateFacts::of(certificate)?.thumbprint) {
                helpers.push(certificate.clone());
            }
        }
        let chain = match domain.material.verify(leaf, &helpers, None) {
            Ok(chain) => chain,
            Err(error) => return Ok(untrusted(&error.reason)),
        };
        let mut chain_pem = Vec::with_capacity(chain.len());
        let mut valid_until = now + TRUSTED_TTL;
        for certificate in &chain {
            let facts = CertificateFacts::of(certificate)?;
            if domain.is_known_untrusted(&facts.thumbprint) {
                return Ok(untrusted("an issuer in the chain is not trusted"));
            }
            valid_until = valid_until.min(facts.not_after);
            chain_pem.push(x509::pem_string(certificate)?);
        }
        Ok((
            Verdict {
                trusted: true,
                chain_pem,
                reason: String::new(),
            },
            valid_until,
        ))
    }
}

/// The current snapshot plus what keeps it current.
pub struct TrustStore {
    current: ArcSwap<TrustSnapshot>,
    repository: Arc<dyn CertificateRepository>,
    allowed_domains: Vec<String>,
    rebuild: tokio::sync::Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TrustStore {
    /// Loads the first snapshot from the database.
    pub async fn load(
        repository: Arc<dyn CertificateRepository>,
        allowed_domains: Vec<String>,
    ) -> Result<Arc<Self>, StoreError> {
        let data = repository.trust_data().await?;
        let snapshot = build_blocking(data, allowed_domains.clone()).await?;
        Ok(Arc::new(TrustStore {
            current: ArcSwap::from_pointee(snapshot),
            repository,
            allowed_domains,
            rebuild: tokio::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot when the database's version moved (one cheap query otherwise).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _guard = self.rebuild.lock().await;
        let stored = self.repository.trust_version().await?;
        if stored == self.current.load().version {
            return Ok(());
        }
        let data = self.repository.trust_data().await?;
        let snapshot = build_blocking(data, self.allowed_domains.clone()).await?;
        tracing::info!(version = snapshot.version, "trust store rebuilt");
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
        let key = cache_key(domain, data);
        let now = Utc::now();
        if let Some(verdict) = snapshot.cached(&key, now) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(verdict);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let domain = domain.to_owned();
        let data = data.to_owned();
        let computed = Arc::clone(&snapshot);
        let (verdict, valid_until) = tokio::task::spawn_blocking(move || {
            let trust = computed.domain(&domain).ok_or(StoreError::InvalidDomain)?;
            computed.evaluate(trust, &data, now)
        })
        .await
        .map_err(|error| StoreError::Internal(format!("verification task failed: {error}")))??;
        let verdict = Arc::new(verdict);
        snapshot.remember(key, Arc::clone(&verdict), valid_until);
        Ok(verdict)
    }

    /// (cache hits, cache misses) since start.
    pub fn cache_statistics(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

fn cache_key(domain: &str, data: &str) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update(&[0]);
    hasher.update(data.trim().as_bytes());
    hasher.finish()
}

async fn build_blocking(
    data: TrustData,
    domains: Vec<String>,
) -> Result<TrustSnapshot, StoreError> {
    tokio::task::spawn_blocking(move || TrustSnapshot::build(&data, &domains))
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
    for collector in [
        Box::new(certificates.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(version.clone()),
        Box::new(lookups.clone()),
        Box::new(hit_ratio.clone()),
    ] {
        metrics.registry().register(collector)?;
    }
    let store = Arc::downgrade(store);
    metrics.on_scrape(move || {
        if let Some(store) = store.upgrade() {
            let snapshot = store.snapshot();
            let (cas, partners) = snapshot.size();
            certificates
                .with_label_values(&["ca"])
                .set(i64::try_from(cas).unwrap_or(i64::MAX));
            certificates
                .with_label_values(&["partner"])
                .set(i64::try_from(partners).unwrap_or(i64::MAX));
            version.set(snapshot.version);
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
