//! Bringing a snapshot up to a newer version from the certificate rows that changed, so a
//! trust change costs the store a read of what moved rather than of every stored
//! certificate (the full rebuild is linear in the registry's size, and runs on every
//! approval).
//!
//! The derived snapshot shares the built trust material (the OpenSSL stores, the CA
//! certificates) with its parent and copies only the effective-trust maps, which are a
//! shared base plus the entries written since; the base is merged when those grow past
//! about the square root of its size, which keeps both the per-change copy and the amortised
//! merge near `√n`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::TrustChanges;
use crate::snapshot::{TrustSettings, TrustSnapshot, new_cache};

/// Entries written since the base below which a merge never happens.
const MIN_RECENT: usize = 64;

/// Effective trust of a domain's stored partner/FTM certificates, by identity.
#[derive(Clone, Default)]
pub(crate) struct StoredTrust {
    base: Arc<HashMap<String, bool>>,
    /// Entries written after `base` was built; they take precedence over it.
    recent: HashMap<String, bool>,
}

impl StoredTrust {
    pub(crate) fn new(base: HashMap<String, bool>) -> Self {
        StoredTrust {
            base: Arc::new(base),
            recent: HashMap::new(),
        }
    }

    /// `Some(effective trust)` for a stored certificate, `None` if not stored.
    pub(crate) fn get(&self, identity: &str) -> Option<bool> {
        self.recent
            .get(identity)
            .or_else(|| self.base.get(identity))
            .copied()
    }

    /// How many certificates it holds.
    pub(crate) fn len(&self) -> usize {
        let added = self
            .recent
            .keys()
            .filter(|identity| !self.base.contains_key(*identity))
            .count();
        self.base.len() + added
    }

    /// A copy with `updates` applied, merged into a new base once the recent entries
    /// outgrow it.
    fn with(&self, updates: Vec<(String, bool)>) -> Self {
        let mut next = self.clone();
        next.recent.extend(updates);
        if next.recent.len() > MIN_RECENT.max(next.base.len().isqrt()) {
            let mut base = (*next.base).clone();
            base.extend(next.recent.drain());
            next.base = Arc::new(base);
        }
        next
    }
}

impl TrustSnapshot {
    /// This snapshot advanced to `changes.version` by applying the changed rows, with an
    /// empty verdict cache; `None` when only a full rebuild can be right: a structural
    /// change came after this version, a changed row is CA-capable (it moves the issuer
    /// pool), the database went back, or some version step is not accounted for by a row
    /// (written by an older release, or a row changed twice, so its earlier state is gone).
    pub fn advanced(
        &self,
        changes: &TrustChanges,
        settings: &TrustSettings,
    ) -> Option<TrustSnapshot> {
        if changes.structural_version > self.version
            || changes.version < self.version
            || changes.changed.iter().any(|change| change.is_ca)
            || !accounts_for_every_step(self.version, changes)
        {
            return None;
        }
        let mut updates: HashMap<&str, Vec<(String, bool)>> = HashMap::new();
        for change in &changes.changed {
            let revoked = self
                .domains
                .get(&change.partner_domain)
                .is_some_and(|trust| trust.revoked.contains(&change.identity));
            let effective =
                change.trusted && !revoked && !self.deactivated.contains(&change.partner_id);
            updates
                .entry(change.partner_domain.as_str())
                .or_default()
                .push((change.identity.clone(), effective));
        }
        let mut domains = self.domains.clone();
        for (domain, updates) in updates {
            // Rows of a domain this replica does not serve have nothing to update.
            if let Some(trust) = domains.get_mut(domain) {
                trust.stored = trust.stored.with(updates);
            }
        }
        Some(TrustSnapshot {
            version: changes.version,
            domains,
            deactivated: Arc::clone(&self.deactivated),
            cache: new_cache(settings),
        })
    }
}

/// Whether every version in `(since, changes.version]` stamped at least one changed row.
/// Rows are read within that range, so distinct stamps as many as the steps means all are.
fn accounts_for_every_step(since: i64, changes: &TrustChanges) -> bool {
    let stamps: HashSet<i64> = changes
        .changed
        .iter()
        .map(|change| change.trust_version)
        .filter(|stamp| (since + 1..=changes.version).contains(stamp))
        .collect();
    i64::try_from(stamps.len()).is_ok_and(|count| count == changes.version - since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StoredTrustChange;

    fn change(identity: &str, trusted: bool, stamp: i64) -> StoredTrustChange {
        StoredTrustChange {
            partner_domain: "FTM".into(),
            identity: identity.into(),
            partner_id: "p1".into(),
            trusted,
            is_ca: false,
            trust_version: stamp,
        }
    }

    #[test]
    fn every_step_must_be_stamped_by_a_row() {
        let changes = TrustChanges {
            version: 7,
            structural_version: 2,
            changed: vec![change("a", true, 6), change("b", true, 7)],
        };
        assert!(accounts_for_every_step(5, &changes));
        assert!(!accounts_for_every_step(4, &changes), "step 5 has no row");
        let twice = TrustChanges {
            changed: vec![change("a", true, 6), change("b", true, 6)],
            ..changes
        };
        assert!(!accounts_for_every_step(5, &twice), "step 7 has no row");
    }

    #[test]
    fn recent_entries_win_and_merge_into_the_base_once_they_outgrow_it() {
        let base: HashMap<String, bool> = (0..10_000)
            .map(|index| (format!("id{index}"), true))
            .collect();
        let mut stored = StoredTrust::new(base);
        stored = stored.with(vec![("id1".into(), false), ("new".into(), true)]);
        assert_eq!(stored.get("id1"), Some(false));
        assert_eq!(stored.get("id2"), Some(true));
        assert_eq!(stored.get("new"), Some(true));
        assert_eq!(stored.get("absent"), None);
        assert_eq!(stored.len(), 10_001);
        assert_eq!(stored.recent.len(), 2, "below √n: not merged");
        for index in 0..200 {
            stored = stored.with(vec![(format!("more{index}"), index % 2 == 0)]);
        }
        assert!(
            stored.recent.len() <= 100,
            "merged at √n: {}",
            stored.recent.len()
        );
        assert_eq!(stored.len(), 10_201);
        assert_eq!(
            stored.get("id1"),
            Some(false),
            "merged entries keep their value"
        );
        assert_eq!(stored.get("more1"), Some(false));
        assert_eq!(stored.get("more198"), Some(true));
    }
}
