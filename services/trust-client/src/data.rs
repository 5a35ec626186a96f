//! The mirror's copy of the store's trust data, and how feed messages change it.

use std::collections::{BTreeSet, HashMap, HashSet};

use pmp_proto::certstore::v1 as proto;
use pmp_proto::certstore::v1::trust_change::Change;
use pmp_trust::{RevokedCertificate, StoredTrustEntry, TrustData, TrustPolicy};

/// What the store decides trust from, as the feed has delivered it so far.
#[derive(Debug, Default)]
pub(crate) struct MirrorData {
    version: i64,
    policies: HashMap<String, TrustPolicy>,
    ca_certificates: BTreeSet<(String, String)>,
    stored: HashMap<(String, String), StoredTrustEntry>,
    deactivated: HashSet<String>,
    revoked: HashSet<(String, String)>,
    /// Parts of a snapshot being received.
    incoming: Option<Box<MirrorData>>,
}

impl MirrorData {
    /// The last version applied.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// Whether a snapshot is half received (the data in force is the previous one).
    pub(crate) fn receiving_snapshot(&self) -> bool {
        self.incoming.is_some()
    }

    /// Applies one feed message; whether the data changed (and a new snapshot is due).
    pub(crate) fn apply(&mut self, message: proto::TrustChange) -> Result<bool, String> {
        let change = message.change.ok_or("a feed message without a change")?;
        match change {
            Change::Snapshot(part) => Ok(self.apply_snapshot_part(message.version, part)?),
            Change::Heartbeat(_) => {
                // Every event up to the heartbeat's version was sent, or concerns other domains.
                self.version = self.version.max(message.version);
                Ok(false)
            }
            _ if message.version <= self.version => Ok(false),
            change => {
                self.version = message.version;
                Ok(self.apply_change(change))
            }
        }
    }

    fn apply_snapshot_part(
        &mut self,
        version: i64,
        part: proto::TrustSnapshot,
    ) -> Result<bool, String> {
        let incoming = self.incoming.get_or_insert_with(Box::default);
        for policy in part.policies {
            let parsed = TrustPolicy::parse(&policy.policy)
                .ok_or_else(|| format!("unknown trust policy {:?}", policy.policy))?;
            incoming.policies.insert(policy.partner_domain, parsed);
        }
        for ca in part.ca_certificates {
            incoming
                .ca_certificates
                .insert((ca.partner_domain, ca.certificate_pem));
        }
        for stored in part.stored_certificates {
            incoming.put_stored(stored);
        }
        incoming.deactivated.extend(part.deactivated_partner_ids);
        for revoked in part.revocations {
            incoming
                .revoked
                .insert((revoked.partner_domain, revoked.identity));
        }
        if !part.last {
            return Ok(false);
        }
        let mut complete = self.incoming.take().unwrap_or_default();
        complete.version = version;
        *self = *complete;
        Ok(true)
    }

    fn put_stored(&mut self, stored: proto::StoredCertificateTrust) {
        let entry = StoredTrustEntry {
            partner_domain: stored.partner_domain,
            identity: stored.identity,
            partner_id: stored.partner_id,
            trusted: stored.trusted,
            issuer_pem: (!stored.issuer_pem.is_empty()).then_some(stored.issuer_pem),
        };
        self.stored.insert(
            (entry.partner_domain.clone(), entry.identity.clone()),
            entry,
        );
    }

    /// Applies an event; whether it changes what verification sees.
    fn apply_change(&mut self, change: Change) -> bool {
        match change {
            Change::CaCertificateAdded(ca) => self
                .ca_certificates
                .insert((ca.partner_domain, ca.certificate_pem)),
            Change::StoredCertificate(stored) => {
                self.put_stored(stored);
                true
            }
            Change::Partner(partner) if partner.deactivated => {
                self.deactivated.insert(partner.partner_id)
            }
            Change::Partner(partner) => self.deactivated.remove(&partner.partner_id),
            Change::CertificateRevoked(revoked) => self
                .revoked
                .insert((revoked.partner_domain, revoked.identity)),
            Change::CertificateExpiring(_) | Change::Heartbeat(_) | Change::Snapshot(_) => false,
        }
    }

    /// The data as the trust decision takes it, with the domains' policies.
    pub(crate) fn trust_data(&self) -> (TrustData, HashMap<String, TrustPolicy>) {
        let data = TrustData {
            version: self.version,
            ca_certificates: self.ca_certificates.iter().cloned().collect(),
            stored_certificates: self.stored.values().cloned().collect(),
            deactivated_partners: self.deactivated.iter().cloned().collect(),
            revoked: self
                .revoked
                .iter()
                .map(|(partner_domain, identity)| RevokedCertificate {
                    partner_domain: partner_domain.clone(),
                    identity: identity.clone(),
                })
                .collect(),
        };
        (data, self.policies.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(version: i64, change: Change) -> proto::TrustChange {
        proto::TrustChange {
            version,
            time: None,
            change: Some(change),
        }
    }

    fn part(last: bool, partner: &str) -> Change {
        Change::Snapshot(proto::TrustSnapshot {
            policies: vec![proto::DomainTrustPolicy {
                partner_domain: "FTM".into(),
                policy: "chain".into(),
            }],
            deactivated_partner_ids: vec![partner.into()],
            last,
            ..Default::default()
        })
    }

    fn stored(identity: &str, trusted: bool) -> Change {
        Change::StoredCertificate(proto::StoredCertificateTrust {
            partner_domain: "FTM".into(),
            identity: identity.into(),
            partner_id: "p".into(),
            trusted,
            issuer_pem: String::new(),
        })
    }

    #[test]
    fn a_snapshot_replaces_the_data_only_once_complete() {
        let mut data = MirrorData::default();
        assert!(
            data.apply(message(3, stored("old", true)))
                .unwrap_or_default()
        );
        assert!(!data.apply(message(7, part(false, "a"))).unwrap_or(true));
        assert!(data.receiving_snapshot());
        assert_eq!(data.version(), 3, "the previous data is still in force");
        assert!(data.apply(message(7, part(true, "b"))).unwrap_or_default());
        assert!(!data.receiving_snapshot());
        let (trust, policies) = data.trust_data();
        assert_eq!(trust.version, 7);
        assert!(trust.stored_certificates.is_empty(), "replaced, not merged");
        let mut partners = trust.deactivated_partners.clone();
        partners.sort();
        assert_eq!(partners, ["a", "b"]);
        assert_eq!(policies.get("FTM"), Some(&TrustPolicy::Chain));
    }

    #[test]
    fn events_apply_in_order_once_and_heartbeats_advance_the_version() {
        let mut data = MirrorData::default();
        assert!(
            data.apply(message(1, stored("x", false)))
                .unwrap_or_default()
        );
        assert!(
            data.apply(message(2, stored("x", true)))
                .unwrap_or_default()
        );
        assert!(
            !data.apply(message(1, stored("x", false))).unwrap_or(true),
            "an old event is ignored"
        );
        assert!(data.trust_data().0.stored_certificates[0].trusted);
        assert!(
            !data
                .apply(message(9, Change::Heartbeat(proto::Heartbeat {})))
                .unwrap_or(true)
        );
        assert_eq!(data.version(), 9);
        let deactivate = Change::Partner(proto::PartnerTrust {
            partner_id: "p".into(),
            deactivated: true,
        });
        assert!(data.apply(message(10, deactivate)).unwrap_or_default());
        let revoke = Change::CertificateRevoked(proto::CertificateRevocation {
            partner_domain: "FTM".into(),
            identity: "x".into(),
            ..Default::default()
        });
        assert!(data.apply(message(11, revoke)).unwrap_or_default());
        let (trust, _) = data.trust_data();
        assert_eq!(trust.deactivated_partners, ["p"]);
        assert_eq!(trust.revoked.len(), 1);
        assert!(
            data.apply(proto::TrustChange::default()).is_err(),
            "no change"
        );
    }
}
