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
