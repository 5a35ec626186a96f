//! `WatchFtmEvents`: the stream of FTM changes, for admins and the platform services. The
//! outbox, snapshots and following are `pmp_common::event_feed`'s; the events are recorded
//! by the repository in the transaction of each change.

use tokio::sync::mpsc;

use pmp_common::auth::Caller;
use pmp_common::event_feed::FeedMessage;

use super::FtmService;
use crate::domain::EventWatch;
use crate::error::FtmError;
use crate::storage::SqlFtmRepository;

/// FTM management's event stream, as its task sends it.
pub(crate) type FtmEvents = mpsc::Receiver<FeedMessage<SqlFtmRepository>>;

impl FtmService {
    /// Starts a stream of FTM changes after `watch.from_version`.
    pub(crate) fn watch_events(
        &self,
        caller: &Caller,
        watch: EventWatch,
    ) -> Result<FtmEvents, FtmError> {
        caller.require_admin_or_service()?;
        Ok(self.events.watch(watch.from_version))
    }
}
