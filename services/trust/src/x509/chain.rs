//! Certification path building and validation (RFC 5280 via OpenSSL), and ordering of CA
//! bundles so that every issuer is processed before what it issued.

use chrono::{DateTime, Utc};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Ref, X509StoreContext, X509StoreContextRef};

use super::CertError;
use super::facts::is_self_signed;

/// Why no valid path was found: OpenSSL's verification message (no paths or internals),
/// e.g. "unable to get local issuer certificate" or "certificate has expired".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ChainError {
    /// Human-readable reason, suitable for `VerifyCertificateTrustResponse.reason`.
    pub reason: String,
}

impl ChainError {
    fn new(reason: impl Into<String>) -> Self {
        ChainError {
            reason: reason.into(),
        }
    }
}

impl From<CertError> for ChainError {
    fn from(e: CertError) -> Self {
        ChainError::new(e.message())
    }
}

/// Path validation settings beyond OpenSSL's RFC 5280 defaults (signatures, validity of
/// every certificate, name chaining, basicConstraints/pathLen, keyCertSign, unknown critical
/// extensions — all always on), and beyond `X509_V_FLAG_X509_STRICT`, which is always on
/// too: it requires the RFC 5280 details that keep a path unambiguous (authority and subject
/// key identifiers, critical basicConstraints in CAs, named EC curves, no empty names).
/// Partial chains are never accepted: every path ends at a root of the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainOptions {
    /// OpenSSL security level for path validation. At level 1 or above every signature in
    /// the path below the trust anchor must use a digest of at least 80 bits of security,
    /// so SHA-1 and MD5 are refused; level 2 also refuses RSA keys under 2048 bits and EC
    /// keys under 224 bits anywhere in the path. Default 2, as the contract requires; lower
    /// levels exist only so that tests can show what the level refuses.
    pub security_level: i32,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions { security_level: 2 }
    }
}

/// The trust material of one domain: roots as trust anchors, intermediates as an untrusted
/// pool from which paths may be built. Immutable and `Send + Sync`, so the service can build
/// it once per trust-store version and share it (e.g. through `ArcSwap`) for the hot path.
pub struct TrustMaterial {
    roots: Vec<X509>,
    intermediates: Vec<X509>,
    options: ChainOptions,
    /// Store with the roots, verifying at the current time.
    store: X509Store,
}

impl std::fmt::Debug for TrustMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustMaterial")
            .field("roots", &self.roots.len())
            .field("intermediates", &self.intermediates.len())
            .field("options", &self.options)
            .finish()
    }
}

impl TrustMaterial {
    /// Builds trust material with the default [`ChainOptions`]. `roots` should be
    /// self-signed (others never terminate a path, as partial chains are not allowed).
    pub fn build(roots: Vec<X509>, intermediates: Vec<X509>) -> Result<Self, CertError> {
        Self::with_options(roots, intermediates, ChainOptions::default())
    }

    /// Builds trust material with explicit [`ChainOptions`].
    pub fn with_options(
        roots: Vec<X509>,
        intermediates: Vec<X509>,
        options: ChainOptions,
    ) -> Result<Self, CertError> {
        let store = build_store(&roots, options, None)?;
        Ok(TrustMaterial {
            roots,
            intermediates,
            options,
            store,
        })
    }

    /// The trust anchors.
    pub fn roots(&self) -> &[X509] {
        &self.roots
    }

    /// The intermediate pool.
    pub fn intermediates(&self) -> &[X509] {
        &self.intermediates
    }

    /// Validates a path from `leaf` to one of the roots, using the intermediate pool plus
    /// `extra_untrusted` (e.g. certificates sent along with the leaf), at `at` (default:
    /// now). Returns the path leaf first, trust anchor last.
    pub fn verify(
        &self,
        leaf: &X509Ref,
        extra_untrusted: &[X509],
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<X509>, ChainError> {
        let mut untrusted = Stack::new().map_err(internal)?;
        for cert in self.intermediates.iter().chain(extra_untrusted) {
            untrusted.push(cert.clone()).map_err(internal)?;
        }
        let timed_store;
        let store = match at {
            None => &self.store,
            Some(at) => {
                timed_store = build_store(&self.roots, self.options, Some(at))?;
                &timed_store
            }
        };
        let mut context = X509StoreContext::new().map_err(internal)?;
        let outcome = context
            .init(store, leaf, &untrusted, verified_chain)
            .map_err(internal);
        // A failed verification leaves its reasons on the thread's error queue; they must
        // not surface in the next, unrelated error on this thread.
        super::clear_error_queue();
        outcome?
    }
}

/// The body of a verification: runs it and copies the path out while the context lives.
fn verified_chain(
    context: &mut X509StoreContextRef,
) -> Result<Result<Vec<X509>, ChainError>, openssl::error::ErrorStack> {
    if !context.verify_cert()? {
        let error = context.error();
        let depth = context.error_depth();
        let reason = if depth == 0 {
            error.error_string().to_owned()
        } else {
            format!("{} (at depth {depth})", error.error_string())
        };
        return Ok(Err(ChainError::new(reason)));
    }
    let chain = context
        .chain()
        .map(|chain| chain.iter().map(|c| c.to_owned()).collect::<Vec<X509>>())
        .unwrap_or_default();
    if chain.is_empty() {
        return Ok(Err(ChainError::new("no certification path was produced")));
    }
    Ok(Ok(chain))
}

fn internal(e: openssl::error::ErrorStack) -> ChainError {
    ChainError::from(CertError::from(e))
}

fn build_store(
    roots: &[X509],
    options: ChainOptions,
    at: Option<DateTime<Utc>>,
) -> Result<X509Store, CertError> {
    let mut builder = X509StoreBuilder::new()?;
    for root in roots {
        builder.add_cert(root.clone())?;
    }
    let mut param = X509VerifyParam::new()?;
    param.set_auth_level(options.security_level);
    param.set_flags(X509VerifyFlags::X509_STRICT)?;
    if let Some(at) = at {
        param.set_time(at.timestamp());
    }
    builder.set_param(&param)?;
    Ok(builder.build())
}

/// KER-PCM-005 for a CA upload: validates a path from the intermediate `candidate` to a root
/// of its domain. Anchors are the domain's `roots` plus the self-signed certificates among
/// `earlier_in_bundle` (already accepted earlier in the same upload); everything else is the
/// untrusted pool. Returns the path, candidate first, root last.
pub fn chain_to_domain_root(
    candidate: &X509Ref,
    roots: &[X509],
    intermediates: &[X509],
    earlier_in_bundle: &[X509],
    at: Option<DateTime<Utc>>,
) -> Result<Vec<X509>, ChainError> {
    let mut anchors = roots.to_vec();
    let mut pool = intermediates.to_vec();
    for cert in earlier_in_bundle {
        if is_self_signed(cert) {
            anchors.push(cert.clone());
        } else {
            pool.push(cert.clone());
        }
    }
    TrustMaterial::build(anchors, pool)?.verify(candidate, &[], at)
}

/// [`chain_to_domain_root`] as a yes/no answer, at the current time.
pub fn is_issued_by_root_or_chain(
    candidate: &X509Ref,
    roots: &[X509],
    intermediates: &[X509],
    earlier_in_bundle: &[X509],
) -> bool {
    chain_to_domain_root(candidate, roots, intermediates, earlier_in_bundle, None).is_ok()
}

/// `issuer` issued `cert`: the names chain and `cert`'s signature verifies with `issuer`'s
/// key (errors, such as a key of the wrong type, count as "no").
fn issued_by(cert: &X509Ref, issuer: &X509Ref) -> bool {
    let issued = matches!(
        issuer.subject_name().try_cmp(cert.issuer_name()),
        Ok(std::cmp::Ordering::Equal)
    ) && issuer
        .public_key()
        .is_ok_and(|key| matches!(cert.verify(&key), Ok(true)));
    super::clear_error_queue();
    issued
}

/// Orders a CA bundle whatever its input order: self-signed roots first, then repeatedly
/// each certificate whose issuer is already placed; certificates whose issuer never appears
/// go last (in input order) and will fail KER-PCM-005 unless the store knows their issuer.
pub fn order_bundle(certs: Vec<X509>) -> Vec<X509> {
    let (mut placed, mut pending): (Vec<X509>, Vec<X509>) =
        certs.into_iter().partition(|c| is_self_signed(c));
    loop {
        let before = pending.len();
        let mut still_pending = Vec::with_capacity(pending.len());
        for cert in pending {
            if placed.iter().any(|issuer| issued_by(&cert, issuer)) {
                placed.push(cert);
            } else {
                still_pending.push(cert);
            }
        }
        pending = still_pending;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    placed.extend(pending);
    placed
}
