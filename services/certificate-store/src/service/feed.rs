//! `WatchTrustChanges`: the trust store as a feed. A stream is a task of its own that reads
//! the outbox (`trust_events`) after the consumer's version and sends into a bounded
//! channel: a slow consumer only makes its own task wait, and the database is the buffer,
//! so the store never blocks on a consumer. Caught up, a stream waits for the trust store
//! to move (changes made here wake it at once, other replicas' within the poll interval)
//! and sends a heartbeat when it has been quiet for the heartbeat interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use pmp_common::auth::Caller;

use super::{CertificateStoreService, WatchTrust, authorize, spawn_every};
use crate::config::FeedSettings;
use crate::domain::{RecordedTrustEvent, TrustData, TrustEvent, TrustPolicy};
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::trust::TrustStore;

/// Events read from the outbox at a time.
const BATCH: u64 = 256;

/// One message of a trust feed, before it is put on the wire.
#[derive(Debug, Clone)]
pub(crate) enum FeedMessage {
    /// A part of the snapshot at `data.version`; `policies` only in the first part.
    Snapshot {
        /// The part's data (version: the snapshot's).
        data: TrustData,
        /// The requested domains' policies.
        policies: Vec<(String, TrustPolicy)>,
        /// Whether this is the last part.
        last: bool,
    },
    /// A change.
    Event(RecordedTrustEvent),
    /// Nothing to send; the feed is alive at `version`.
    Heartbeat {
        /// The last version the stream reached.
        version: i64,
    },
}

/// What the streams of this replica share.
pub(crate) struct TrustFeed {
    repository: Arc<dyn CertificateRepository>,
    trust: Arc<TrustStore>,
    settings: FeedSettings,
    draining: tokio::sync::watch::Receiver<()>,
}

/// Where a stream sends; `false` from [`Stream::send`] means the consumer left.
struct Stream {
    sender: mpsc::Sender<Result<FeedMessage, StoreError>>,
    domains: Vec<String>,
    last_sent: Instant,
}

impl Stream {
    async fn send(&mut self, message: FeedMessage) -> bool {
        self.last_sent = Instant::now();
        self.sender.send(Ok(message)).await.is_ok()
    }

    /// Whether the consumer asked for the domain `event` is about (partner states concern
    /// every domain).
    fn concerns(&self, event: &TrustEvent) -> bool {
        let domain = match event {
            TrustEvent::CaCertificateAdded { partner_domain, .. } => partner_domain,
            TrustEvent::StoredCertificate(entry) => &entry.partner_domain,
            TrustEvent::Partner { .. } => return true,
            TrustEvent::Revoked(revocation) => &revocation.partner_domain,
            TrustEvent::Expiring(notice) => &notice.partner_domain,
        };
        self.domains.contains(domain)
    }
}

impl TrustFeed {
    pub(crate) fn new(
        repository: Arc<dyn CertificateRepository>,
        trust: Arc<TrustStore>,
        settings: FeedSettings,
        draining: tokio::sync::watch::Receiver<()>,
    ) -> Self {
        TrustFeed {
            repository,
            trust,
            settings,
            draining,
        }
    }

    /// Starts a stream for `domains` after `from_version`.
    fn watch(
        self: &Arc<Self>,
        domains: Vec<String>,
        from_version: i64,
    ) -> mpsc::Receiver<Result<FeedMessage, StoreError>> {
        let (sender, receiver) = mpsc::channel(self.settings.buffer.max(1));
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let mut stream = Stream {
                sender,
                domains,
                last_sent: Instant::now(),
            };
            let mut draining = feed.draining.clone();
            let outcome = tokio::select! {
                outcome = feed.follow(&mut stream, from_version) => outcome,
                _ = draining.changed() => Err(StoreError::ShuttingDown),
            };
            if let Err(error) = outcome {
                tracing::debug!(%error, "trust feed stream ended");
                let _ = stream.sender.send(Err(error)).await;
            }
        });
        receiver
    }

    /// Sends the snapshot when the consumer cannot resume, then the events as they come.
    async fn follow(&self, stream: &mut Stream, from_version: i64) -> Result<(), StoreError> {
        let mut changes = self.trust.subscribe();
        let mut version = from_version;
        if !self.can_resume(from_version).await? {
            match self.send_snapshot(stream).await? {
                Some(snapshot_version) => version = snapshot_version,
                None => return Ok(()),
            }
        }
        let heartbeat = Duration::from_millis(self.settings.heartbeat_interval_ms.max(1));
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(1));
        loop {
            let events = self.repository.trust_events_after(version, BATCH).await?;
            if events
                .first()
                .is_some_and(|first| first.version != version + 1)
            {
                // The events after `version` are no longer all kept: start again.
                match self.send_snapshot(stream).await? {
                    Some(snapshot_version) => version = snapshot_version,
                    None => return Ok(()),
                }
                continue;
            }
            if events.is_empty() {
                if stream.last_sent.elapsed() >= heartbeat
                    && !stream.send(FeedMessage::Heartbeat { version }).await
                {
                    return Ok(());
                }
                let wait = heartbeat
                    .saturating_sub(stream.last_sent.elapsed())
                    .min(poll);
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return Ok(()) },
                    () = tokio::time::sleep(wait) => {}
                    () = stream.sender.closed() => return Ok(()),
                }
                continue;
            }
            for event in events {
                version = event.version;
                if stream.concerns(&event.event) && !stream.send(FeedMessage::Event(event)).await {
                    return Ok(());
                }
            }
            // A busy store whose changes all concern other domains still tells this
            // consumer it is alive (and how far it has read).
            if stream.last_sent.elapsed() >= heartbeat
                && !stream.send(FeedMessage::Heartbeat { version }).await
            {
                return Ok(());
            }
        }
    }

    /// Whether every event after `from_version` is still kept (or there are none).
    async fn can_resume(&self, from_version: i64) -> Result<bool, StoreError> {
        if from_version <= 0 {
            return Ok(false);
        }
        let current = self.repository.trust_version().await?;
        if from_version >= current {
            // Caught up; a consumer ahead of the store (a restored database) starts again.
            return Ok(from_version == current);
        }
        let oldest = self.repository.oldest_trust_event().await?;
        Ok(oldest.is_some_and(|oldest| oldest <= from_version + 1))
    }

    /// Sends the requested domains' data in parts; `None` when the consumer left.
    async fn send_snapshot(&self, stream: &mut Stream) -> Result<Option<i64>, StoreError> {
        let data = self.repository.trust_data().await?;
        let version = data.version;
        let settings = self.trust.settings();
        let policies = stream
            .domains
            .iter()
            .map(|domain| {
                let policy = settings.policies.get(domain).copied().unwrap_or_default();
                (domain.clone(), policy)
            })
            .collect();
        let parts = split_snapshot(
            filter_domains(data, &stream.domains),
            self.settings.snapshot_part_bytes,
        );
        let count = parts.len();
        let mut policies = Some(policies);
        for (index, data) in parts.into_iter().enumerate() {
            let message = FeedMessage::Snapshot {
                data,
                policies: policies.take().unwrap_or_default(),
                last: index + 1 == count,
            };
            if !stream.send(message).await {
                return Ok(None);
            }
        }
        Ok(Some(version))
    }
}

/// `data` restricted to `domains` (partner states concern every domain).
fn filter_domains(mut data: TrustData, domains: &[String]) -> TrustData {
    data.ca_certificates
        .retain(|(domain, _)| domains.contains(domain));
    data.stored_certificates
        .retain(|entry| domains.contains(&entry.partner_domain));
    data.revoked
        .retain(|entry| domains.contains(&entry.partner_domain));
    data
}

/// `data` in parts of about `part_bytes` each (at least one part, all at its version).
fn split_snapshot(data: TrustData, part_bytes: usize) -> Vec<TrustData> {
    let empty = || TrustData {
        version: data.version,
        ..TrustData::default()
    };
    let mut parts = vec![empty()];
    let mut size = 0;
    let mut room = |parts: &mut Vec<TrustData>, bytes: usize| {
        if size > 0 && size + bytes > part_bytes {
            parts.push(empty());
            size = 0;
        }
        size += bytes;
    };
    for (domain, pem) in data.ca_certificates.iter().cloned() {
        room(&mut parts, domain.len() + pem.len() + 16);
        if let Some(part) = parts.last_mut() {
            part.ca_certificates.push((domain, pem));
        }
    }
    for entry in data.stored_certificates.iter().cloned() {
        let bytes = entry.partner_domain.len()
            + entry.identity.len()
            + entry.partner_id.len()
            + entry.issuer_pem.as_ref().map_or(0, String::len)
            + 24;
        room(&mut parts, bytes);
        if let Some(part) = parts.last_mut() {
            part.stored_certificates.push(entry);
        }
    }
    for partner in data.deactivated_partners.iter().cloned() {
        room(&mut parts, partner.len() + 4);
        if let Some(part) = parts.last_mut() {
            part.deactivated_partners.push(partner);
        }
    }
    for entry in data.revoked.iter().cloned() {
        room(
            &mut parts,
            entry.partner_domain.len() + entry.identity.len() + 8,
        );
        if let Some(part) = parts.last_mut() {
            part.revoked.push(entry);
        }
    }
    parts
}

impl CertificateStoreService {
    /// Starts a trust feed stream for the caller.
    pub(crate) fn watch_trust(
        &self,
        caller: &Caller,
        request: WatchTrust,
    ) -> Result<mpsc::Receiver<Result<FeedMessage, StoreError>>, StoreError> {
        authorize(caller, &request)?;
        let domains = if request.partner_domains.is_empty() {
            self.domains.clone()
        } else {
            let mut domains = request
                .partner_domains
                .iter()
                .map(|domain| self.domain(domain))
                .collect::<Result<Vec<_>, _>>()?;
            domains.sort_unstable();
            domains.dedup();
            domains
        };
        Ok(self.feed.watch(domains, request.from_version))
    }
}

/// Deletes feed events older than the retention, every hour, until `stop` changes.
pub(crate) fn spawn_pruner(
    repository: Arc<dyn CertificateRepository>,
    retention: Duration,
    stop: tokio::sync::watch::Receiver<()>,
) {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        tracing::warn!("feed.retention_hours is out of range: trust feed events are not pruned");
        return;
    };
    spawn_every(Duration::from_secs(3600), stop, move || {
        let repository = Arc::clone(&repository);
        async move {
            match repository
                .prune_trust_events(chrono::Utc::now() - retention)
                .await
            {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned old trust feed events"),
                Err(error) => tracing::warn!(%error, "pruning trust feed events failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RevokedCertificate, StoredTrustEntry};

    fn data() -> TrustData {
        TrustData {
            version: 9,
            ca_certificates: vec![("FTM".into(), "x".repeat(100)), ("AUTH".into(), "y".into())],
            stored_certificates: (0..10)
                .map(|index| StoredTrustEntry {
                    partner_domain: "FTM".into(),
                    identity: format!("{index:064}"),
                    partner_id: "p".into(),
                    trusted: true,
                    issuer_pem: None,
                })
                .collect(),
            deactivated_partners: vec!["p2".into()],
            revoked: vec![RevokedCertificate {
                partner_domain: "AUTH".into(),
                identity: "r".into(),
            }],
        }
    }

    #[test]
    fn a_snapshot_splits_into_parts_that_add_up_to_it() {
        let whole = filter_domains(data(), &["FTM".into()]);
        assert_eq!(whole.ca_certificates.len(), 1);
        assert!(whole.revoked.is_empty(), "AUTH revocation filtered out");
        assert_eq!(whole.deactivated_partners, vec!["p2".to_string()]);
        let parts = split_snapshot(whole.clone(), 300);
        assert!(parts.len() > 3, "{} parts", parts.len());
        assert!(parts.iter().all(|part| part.version == 9));
        let stored: Vec<_> = parts
            .iter()
            .flat_map(|part| part.stored_certificates.clone())
            .collect();
        assert_eq!(stored, whole.stored_certificates);
        assert_eq!(split_snapshot(TrustData::default(), 300).len(), 1);
    }
}
