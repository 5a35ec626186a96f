//! A bounded memory of tokens verified recently, shared by user and service tokens: a caller
//! sends the same token on call after call (a relying service on its hot path, a platform
//! service reusing its token per callee), so each token should cost one signature check, not
//! one per call. Only verified tokens are remembered, so a hit is as good as a full check —
//! under the keys it was made with (replacing the keys forgets every verification at once)
//! and until the token expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a token verified to (a user, a service name), remembered by SHA-256 of the token.
pub(crate) struct VerifiedTokens<T> {
    /// Bumped whenever the keys are replaced.
    keys_generation: AtomicU64,
    remembered: moka::sync::Cache<[u8; 32], Arc<Remembered<T>>>,
    /// Seconds a token stays usable after its `exp` (clock difference between hosts).
    leeway: u64,
}

struct Remembered<T> {
    verified: T,
    expires_at: u64,
    keys_generation: u64,
}

impl<T: Clone + Send + Sync + 'static> VerifiedTokens<T> {
    /// Up to `capacity` tokens, each for at most `remember_for`, usable `leeway` seconds
    /// past their expiry.
    pub(crate) fn new(capacity: u64, remember_for: Duration, leeway: u64) -> Self {
        VerifiedTokens {
            keys_generation: AtomicU64::new(0),
            remembered: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(remember_for)
                .build(),
            leeway,
        }
    }

    /// What `token` verified to before, without parsing it; `None` if it was not verified
    /// under the current keys or has expired since.
    pub(crate) fn verified_before(&self, token: &str) -> Option<T> {
        self.known(&digest(token), self.keys_generation.load(Ordering::Acquire))
    }

    /// What `token` verifies to: from memory, or by `check` (which answers the verified value
    /// and the token's `exp`), remembered when it succeeds.
    pub(crate) fn verify<E>(
        &self,
        token: &str,
        check: impl FnOnce(&str) -> Result<(T, u64), E>,
    ) -> Result<T, E> {
        let digest = digest(token);
        // Read before the keys the check uses: a replacement during the check makes this
        // verification count for the old generation only.
        let keys_generation = self.keys_generation.load(Ordering::Acquire);
        if let Some(verified) = self.known(&digest, keys_generation) {
            return Ok(verified);
        }
        let (verified, expires_at) = check(token)?;
        self.remember(digest, verified.clone(), expires_at, keys_generation);
        Ok(verified)
    }

    /// Forgets every verification: the keys were replaced.
    pub(crate) fn keys_replaced(&self) {
        self.keys_generation.fetch_add(1, Ordering::AcqRel);
    }

    fn known(&self, digest: &[u8; 32], keys_generation: u64) -> Option<T> {
        self.remembered
            .get(digest)
            .filter(|known| {
                known.keys_generation == keys_generation
                    && now_seconds() <= known.expires_at.saturating_add(self.leeway)
            })
            .map(|known| known.verified.clone())
    }

    fn remember(&self, digest: [u8; 32], verified: T, expires_at: u64, keys_generation: u64) {
        self.remembered.insert(
            digest,
            Arc::new(Remembered {
                verified,
                expires_at,
                keys_generation,
            }),
        );
    }

    /// Remembers `verified` for `token` as if a check had answered it (tests of expiry).
    #[cfg(test)]
    pub(crate) fn remember_for_test(&self, token: &str, verified: T, expires_at: u64) {
        let generation = self.keys_generation.load(Ordering::Acquire);
        self.remember(digest(token), verified, expires_at, generation);
    }
}

fn digest(token: &str) -> [u8; 32] {
    openssl::sha::sha256(token.as_bytes())
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> VerifiedTokens<String> {
        VerifiedTokens::new(10, Duration::from_secs(60), 5)
    }

    #[test]
    fn a_token_is_checked_once_while_the_keys_stay() {
        let memory = tokens();
        let checks = std::cell::Cell::new(0);
        let check = |_: &str| -> Result<(String, u64), ()> {
            checks.set(checks.get() + 1);
            Ok(("alice".into(), now_seconds() + 60))
        };
        assert_eq!(memory.verified_before("t"), None);
        assert_eq!(memory.verify("t", check), Ok("alice".into()));
        assert_eq!(memory.verify("t", check), Ok("alice".into()));
        assert_eq!(checks.get(), 1);
        assert_eq!(memory.verified_before("t").as_deref(), Some("alice"));
        memory.keys_replaced();
        assert_eq!(memory.verified_before("t"), None, "forgotten with the keys");
        assert_eq!(memory.verify("t", check), Ok("alice".into()));
        assert_eq!(checks.get(), 2);
    }

    #[test]
    fn failures_are_not_remembered_and_expired_tokens_are_checked_again() {
        let memory = tokens();
        assert_eq!(
            memory.verify("t", |_| Err::<(String, u64), _>("bad signature")),
            Err("bad signature")
        );
        assert_eq!(memory.verified_before("t"), None);
        memory.remember_for_test("t", "remembered".into(), now_seconds() - 6);
        assert_eq!(memory.verified_before("t"), None, "past exp + leeway");
        memory.remember_for_test("t", "remembered".into(), now_seconds() - 4);
        assert_eq!(
            memory.verified_before("t").as_deref(),
            Some("remembered"),
            "within the leeway"
        );
    }
}
