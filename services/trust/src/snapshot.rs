//! The in-memory trust store behind `VerifyCertificateTrust`, the hot path of the platform,
//! and the one place where the contract's trust model is decided: the certificate store and
//! every relying service's mirror of it build the same snapshot from the same data.
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
//! Revocation is for good: a revoked stored certificate is untrusted whatever its flag, and a
//! path through a revoked CA certificate does not verify.
//!
//! A snapshot can be advanced from the changed stored-certificate rows alone (module
//! `incremental`); changes a row cannot express (CA certificates, CA-capable stored
//! certificates, partner deactivation, revocation) need a rebuild from all the data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::x509::X509;

use crate::incremental::StoredTrust;
use crate::model::{TrustData, TrustPolicy};
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
/// Reason for a revoked certificate.
pub const REASON_REVOKED: &str = "certificate is revoked";
/// Reason for a path through a revoked certificate.
pub const REASON_ISSUER_REVOKED: &str = "an issuer in the chain is revoked";

/// Why a trust decision could not be made at all (as opposed to a `trusted=false` verdict).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The certificate data is not a certificate or chain the store can read.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// The domain is not one the snapshot serves.
    #[error("unknown partner domain")]
    InvalidDomain,
}

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
pub(crate) struct CachedVerdict {
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
    pub(crate) stored: StoredTrust,
    /// PEM text of the CA certificates and trusted stored issuers, by identity, shared by
    /// every verdict whose path runs through them.
    issuer_pems: Arc<HashMap<String, Arc<str>>>,
    /// Identities of the domain's revoked certificates.
    pub(crate) revoked: Arc<HashSet<String>>,
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

    /// Whether the certificate with this identity is revoked in the domain.
    pub fn is_revoked(&self, identity: &str) -> bool {
        self.revoked.contains(identity)
    }

    /// Why a certificate may not take part in a path, if it may not: revoked, or stored
    /// and not trusted in effect.
    fn refusal(&self, identity: &str, issuer: bool) -> Option<&'static str> {
        match (self.is_revoked(identity), self.stored_trust(identity)) {
            (true, _) if issuer => Some(REASON_ISSUER_REVOKED),
            (true, _) => Some(REASON_REVOKED),
            (false, Some(false)) if issuer => Some(REASON_ISSUER_NOT_TRUSTED),
            (false, Some(false)) => Some(REASON_NOT_TRUSTED),
            _ => None,
        }
    }

    /// The contract's trust decision for a parsed request (leaf first, then helpers) at
    /// `now`, with how long the verdict may be cached. CPU-bound.
    fn decide(
        &self,
        certificates: &[X509],
        now: DateTime<Utc>,
    ) -> Result<(Verdict, DateTime<Utc>), TrustError> {
        let untrusted = |reason: &str| (Verdict::untrusted(reason), now + UNTRUSTED_TTL);
        let Some((leaf, supplied)) = certificates.split_first() else {
            return Err(TrustError::Certificate(CertError::NoCertificate));
        };
        if let Some(reason) = self.refusal(&x509::identity_of(leaf)?, false) {
            return Ok(untrusted(reason));
        }
        // Revoked certificates, and stored ones that are not trusted, may not lend their
        // signature to a path.
        let mut helpers = Vec::with_capacity(supplied.len());
        let mut withheld = None;
        for certificate in supplied {
            match self.refusal(&x509::identity_of(certificate)?, true) {
                Some(reason) => withheld = withheld.or(Some(reason)),
                None => helpers.push(certificate.clone()),
            }
        }
        let chain = match self.material.verify(leaf, &helpers, None) {
            Ok(chain) => chain,
            // Without the withheld certificate there is no path: that is why.
            Err(_) if withheld.is_some() => {
                return Ok(untrusted(withheld.unwrap_or(REASON_ISSUER_NOT_TRUSTED)));
            }
            Err(error) => return Ok(untrusted(&error.reason)),
        };
        let mut registered = false;
        let mut chain_pem = Vec::with_capacity(chain.len());
        let mut valid_until = now + TRUSTED_TTL;
        for certificate in &chain {
            let identity = x509::identity_of(certificate)?;
            if let Some(reason) = self.refusal(&identity, true) {
                return Ok(untrusted(reason));
            }
            registered |= self.stored_trust(&identity) == Some(true);
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
    pub(crate) domains: HashMap<String, DomainTrust>,
    /// Partners whose certificates are untrusted, for applying row changes.
    pub(crate) deactivated: Arc<HashSet<String>>,
    pub(crate) cache: moka::sync::Cache<[u8; 32], CachedVerdict>,
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
    pub fn build(data: &TrustData, settings: &TrustSettings) -> Result<Self, TrustError> {
        x509::isolated(|| Self::build_isolated(data, settings))
    }

    fn build_isolated(data: &TrustData, settings: &TrustSettings) -> Result<Self, TrustError> {
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
        let mut revoked: HashMap<&str, HashSet<String>> = HashMap::new();
        for entry in &data.revoked {
            revoked
                .entry(entry.partner_domain.as_str())
                .or_default()
                .insert(entry.identity.clone());
        }
        let mut domains = HashMap::new();
        for domain in &settings.domains {
            let domain_revoked = revoked.remove(domain.as_str()).unwrap_or_default();
            let domain_roots = roots.remove(domain.as_str()).unwrap_or_default();
            let domain_intermediates = intermediates.remove(domain.as_str()).unwrap_or_default();
            let mut pool = domain_intermediates.clone();
            let mut stored = HashMap::new();
            for entry in data
                .stored_certificates
                .iter()
                .filter(|entry| &entry.partner_domain == domain)
            {
                let effective = entry.trusted
                    && !deactivated.contains(&entry.partner_id)
                    && !domain_revoked.contains(&entry.identity);
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
                    revoked: Arc::new(domain_revoked),
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
    ) -> Result<(Verdict, DateTime<Utc>), TrustError> {
        let trust = self.domain(domain).ok_or(TrustError::InvalidDomain)?;
        x509::isolated(|| {
            let certificates = x509::parse_chain(data)?;
            trust.decide(&certificates, now)
        })
    }

    /// The verdict for `data` in `domain` at `now`: from the cache, or computed (CPU-bound on
    /// a miss) and remembered. For callers that are already off the async workers, such as a
    /// relying service's mirror.
    pub fn verify(
        &self,
        domain: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Verdict>, TrustError> {
        if self.domain(domain).is_none() {
            return Err(TrustError::InvalidDomain);
        }
        let key = x509::chain_key(domain, data);
        if let Some(verdict) = self.cached(&key, now) {
            return Ok(verdict);
        }
        let (verdict, valid_until) = self.evaluate(domain, data, now)?;
        let verdict = Arc::new(verdict);
        self.remember(key, Arc::clone(&verdict), valid_until);
        Ok(verdict)
    }

    /// Approximate bytes held by the verdict cache.
    pub fn cache_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    /// A verdict cached under `key` (see [`x509::chain_key`]) still valid at `now`.
    pub fn cached(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<Arc<Verdict>> {
        self.cache
            .get(key)
            .filter(|entry| entry.valid_until > now)
            .map(|entry| entry.verdict)
    }

    /// Caches `verdict` under `key` until `valid_until`.
    pub fn remember(&self, key: [u8; 32], verdict: Arc<Verdict>, valid_until: DateTime<Utc>) {
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
fn shared_pems(roots: &[X509], pool: &[X509]) -> Result<HashMap<String, Arc<str>>, TrustError> {
    let mut pems = HashMap::with_capacity(roots.len() + pool.len());
    for certificate in roots.iter().chain(pool) {
        let identity = x509::identity_of(certificate)?;
        pems.insert(identity, Arc::from(x509::pem_string(certificate)?));
    }
    Ok(pems)
}

/// An empty verdict cache bounded as `settings` say.
pub(crate) fn new_cache(settings: &TrustSettings) -> moka::sync::Cache<[u8; 32], CachedVerdict> {
    moka::sync::Cache::builder()
        .max_capacity(settings.cache_bytes)
        .weigher(|_key: &[u8; 32], value: &CachedVerdict| value.verdict.weight())
        .expire_after(VerdictExpiry)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build()
}
