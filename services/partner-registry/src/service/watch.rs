//! `WatchPartnerEvents`: the stream of partner changes, for admins and the platform
//! services. The outbox, snapshots and following are `pmp_common::event_feed`'s; the
//! events are recorded by the repository in the transaction of each change.

use tokio::sync::mpsc;

use pmp_common::auth::Caller;
use pmp_common::event_feed::FeedMessage;

use super::RegistryService;
use crate::error::RegistryError;
use crate::storage::SqlPartnerRepository;

/// Where a stream starts (not negative: checked when decoded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventWatch {
    /// 0 for a snapshot first; else the last version the client received.
    pub(crate) from_version: i64,
}

/// The registry's event stream, as its task sends it.
pub(crate) type PartnerEvents = mpsc::Receiver<FeedMessage<SqlPartnerRepository>>;

impl RegistryService {
    /// Starts a stream of partner changes after `watch.from_version`.
    pub(crate) fn watch_events(
        &self,
        caller: &Caller,
        watch: EventWatch,
    ) -> Result<PartnerEvents, RegistryError> {
        caller.require_admin_or_service()?;
        Ok(self.events.watch(watch.from_version))
    }
}
