//! Streams of a service's state changes (`WatchPartnerEvents`, `WatchFtmEvents`), built on a
//! transactional outbox, written once for every service.
//!
//! **Writing.** A state change calls [`append`] on its own transaction, after its other
//! writes: the event row commits or rolls back with the change, so a crash can neither lose
//! an event nor invent one. [`append`] first increments the single row of
//! `event_outbox_version`; on PostgreSQL that row's lock is held until commit, so writers
//! take versions in commit order and a reader never sees version N+1 committed before N
//! (SQLite has one writer at a time anyway). A rolled-back change gives its version back:
//! versions are dense, which lets a reader recognise rows it missed because they were
//! pruned. After the commit the writer calls [`Outbox::changed`]'s `notify_waiters` so
//! that local streams read at once; streams of other replicas find the rows by polling.
//!
//! **Reading.** [`EventFeed::watch`] starts one task per stream that reads rows after the
//! stream's position in batches of [`BATCH`] and sends them into a bounded channel whose
//! receiver is the response stream. A client that reads slowly (or never) only blocks its
//! own task: the database is the buffer, and no connection is held while the task waits.
//! A stream starting at version 0, or at a version whose later rows were pruned, or at a
//! version this database never had, first gets a snapshot of every record
//! ([`FeedSource::snapshot`]) read in one transaction with the version it reflects.
//!
//! **Retention.** [`EventFeed::prune_task`] deletes rows older than
//! `events.retention_hours`; the version counter is never reset.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, IsolationLevel, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tonic::Code;

use crate::error::{Disclosure, REASON_UNAVAILABLE, ServiceError};

/// Rows read per query while a stream catches up.
pub const BATCH: u64 = 256;

/// Records per snapshot message (each message stays far below the gRPC message limit).
pub const SNAPSHOT_PART: usize = 500;

/// How often the prune task runs (and once at start-up).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The id of the one row of `event_outbox_version`.
const COUNTER_ROW: i32 = 1;

/// A domain event a service records in its outbox. Stored as JSON, so a variant added later
/// is skipped (with a warning) by an older replica reading it during a rolling upgrade.
pub trait FeedEvent: serde::Serialize + DeserializeOwned + Send + Sync + 'static {
    /// A short name of the event, stored next to it for people reading the table.
    fn kind(&self) -> &'static str;
}

/// The `events.*` settings of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFeedSettings {
    /// How often a caught-up stream looks for rows written by other replicas (local writes
    /// wake it at once).
    pub poll_interval_ms: u64,
    /// A stream sends a heartbeat when it sent nothing else for this long.
    pub heartbeat_interval_ms: u64,
    /// How long event rows are kept; a stream resuming from an older version gets a
    /// snapshot instead.
    pub retention_hours: u64,
    /// Messages a stream queues for its client before its task waits for the client.
    pub buffer: usize,
}

impl EventFeedSettings {
    /// Checks the ranges (`section` names the settings section in messages).
    pub fn validate_as(&self, section: &str) -> Result<(), String> {
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(format!(
                "{section}.poll_interval_ms must be between 10 and 60000"
            ));
        }
        if !(10..=600_000).contains(&self.heartbeat_interval_ms) {
            return Err(format!(
                "{section}.heartbeat_interval_ms must be between 10 and 600000"
            ));
        }
        if !(1..=24 * 366).contains(&self.retention_hours) {
            return Err(format!(
                "{section}.retention_hours must be between 1 and 8784"
            ));
        }
        if !(1..=10_000).contains(&self.buffer) {
            return Err(format!("{section}.buffer must be between 1 and 10000"));
        }
        Ok(())
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The retention.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours.saturating_mul(3600))
    }
}

/// The outbox tables (sea-orm entities).
#[allow(missing_docs)]
pub mod entity {
    /// `event_outbox`: one row per recorded event.
    pub mod outbox {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "event_outbox")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub version: i64,
            pub kind: String,
            #[sea_orm(column_type = "Text")]
            pub payload: String,
            pub created_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// `event_outbox_version`: the one row holding the last version given out.
    pub mod counter {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "event_outbox_version")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: i32,
            pub version: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

/// The outbox schema, created by each service's migrations in its own database.
pub mod schema {
    use sea_orm::DeriveIden;
    use sea_orm::sea_query::{ColumnDef, Index, Query, Table};
    use sea_orm_migration::{DbErr, SchemaManager};

    #[derive(DeriveIden)]
    enum EventOutbox {
        Table,
        Version,
        Kind,
        Payload,
        CreatedAt,
    }

    #[derive(DeriveIden)]
    enum EventOutboxVersion {
        Table,
        Id,
        Version,
    }

    /// Creates `event_outbox` (with its index on `created_at`, for pruning) and
    /// `event_outbox_version` holding version 0.
    pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .col(
                        ColumnDef::new(EventOutbox::Version)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(EventOutbox::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(EventOutbox::Payload).text().not_null())
                    .col(
                        ColumnDef::new(EventOutbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_event_outbox_created_at")
                    .table(EventOutbox::Table)
                    .col(EventOutbox::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventOutboxVersion::Table)
                    .col(
                        ColumnDef::new(EventOutboxVersion::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EventOutboxVersion::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert();
        seed.into_table(EventOutboxVersion::Table)
            .columns([EventOutboxVersion::Id, EventOutboxVersion::Version])
            .values_panic([super::COUNTER_ROW.into(), 0_i64.into()]);
        manager.exec_stmt(seed).await
    }

    /// Drops both tables.
    pub async fn drop(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventOutboxVersion::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EventOutbox::Table).to_owned())
            .await
    }
}

/// Records `event` on `connection` and answers its version. Pass the transaction of the
/// change it describes, and call it after the change's other writes: the version counter's
/// row stays locked until that transaction ends.
pub async fn append<E: FeedEvent>(
    connection: &impl ConnectionTrait,
    event: &E,
) -> Result<i64, DbErr> {
    use entity::{counter, outbox};
    let payload = serde_json::to_string(event)
        .map_err(|error| DbErr::Custom(format!("cannot encode an event: {error}")))?;
    counter::Entity::update_many()
        .col_expr(
            counter::Column::Version,
            Expr::col(counter::Column::Version).add(1),
        )
        .filter(counter::Column::Id.eq(COUNTER_ROW))
        .exec(connection)
        .await?;
    let version = current_version(connection).await?;
    outbox::Entity::insert(outbox::ActiveModel {
        version: Set(version),
        kind: Set(event.kind().to_owned()),
        payload: Set(payload),
        // Microseconds: what both databases keep.
        created_at: Set(Utc::now().trunc_subsecs(6)),
    })
    .exec_without_returning(connection)
    .await?;
    Ok(version)
}

/// The last version given out (0 before the first event).
pub async fn current_version(connection: &impl ConnectionTrait) -> Result<i64, DbErr> {
    entity::counter::Entity::find_by_id(COUNTER_ROW)
        .one(connection)
        .await?
        .map(|row| row.version)
        .ok_or_else(|| DbErr::RecordNotFound("event_outbox_version has no row".into()))
}

/// Starts the read-only transaction of a snapshot and reads the version it reflects: on
/// PostgreSQL `REPEATABLE READ` (every statement sees the same committed state), on SQLite
/// a deferred transaction (its first read fixes what it sees). Read the records from the
/// returned transaction.
pub async fn begin_snapshot(
    connection: &DatabaseConnection,
) -> Result<(DatabaseTransaction, i64), DbErr> {
    let transaction = if connection.get_database_backend() == DatabaseBackend::Postgres {
        connection
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
    } else {
        connection.begin().await?
    };
    let version = current_version(&transaction).await?;
    Ok((transaction, version))
}

/// An event read back from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<E> {
    /// Its version.
    pub version: i64,
    /// When its change committed (to the microsecond).
    pub time: DateTime<Utc>,
    /// The event.
    pub event: E,
}

/// The state of every record at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<S> {
    /// The version the states reflect: every event up to it, none after.
    pub version: i64,
    /// The records' states, in the service's order.
    pub states: Vec<S>,
}

/// One message of a stream, before the service encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem<E, S> {
    /// Part of a snapshot; `last` on its final part.
    Snapshot {
        /// The version the snapshot reflects.
        version: i64,
        /// When it was sent.
        time: DateTime<Utc>,
        /// Some of the records' states.
        states: Vec<S>,
        /// Whether this is the final part.
        last: bool,
    },
    /// A recorded change.
    Event(Recorded<E>),
    /// Nothing happened for a heartbeat interval.
    Heartbeat {
        /// The stream's position.
        version: i64,
        /// When it was sent.
        time: DateTime<Utc>,
    },
}

impl<E, S> FeedItem<E, S> {
    /// The item's version and time, and its content encoded by `snapshot` (a part's states
    /// and whether it is the last), `heartbeat` or `event`: what every service's wire
    /// encoding of its stream shares.
    pub fn encode<T>(
        self,
        snapshot: impl FnOnce(Vec<S>, bool) -> T,
        heartbeat: impl FnOnce() -> T,
        event: impl FnOnce(E) -> T,
    ) -> (i64, DateTime<Utc>, T) {
        match self {
            FeedItem::Snapshot {
                version,
                time,
                states,
                last,
            } => (version, time, snapshot(states, last)),
            FeedItem::Heartbeat { version, time } => (version, time, heartbeat()),
            FeedItem::Event(recorded) => (recorded.version, recorded.time, event(recorded.event)),
        }
    }
}

/// Why a stream ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum FeedError<E> {
    /// Reading the outbox or the snapshot failed.
    #[error(transparent)]
    Source(E),
    /// The server is shutting down: resume on another replica, or later.
    #[error("the server is shutting down: resume from the last version received")]
    ShuttingDown,
}

impl<E: ServiceError> ServiceError for FeedError<E> {
    fn disclosure(&self) -> Disclosure<'_> {
        match self {
            FeedError::Source(error) => error.disclosure(),
            FeedError::ShuttingDown => Disclosure::client(Code::Unavailable, REASON_UNAVAILABLE),
        }
    }

    fn client_message(&self) -> String {
        match self {
            FeedError::Source(error) => error.client_message(),
            FeedError::ShuttingDown => self.to_string(),
        }
    }
}

/// What a stream of a service carries.
pub type FeedMessage<S> = Result<
    FeedItem<<S as FeedSource>::Event, <S as FeedSource>::State>,
    FeedError<<S as FeedSource>::Error>,
>;

/// A service's side of its feed: its event type and how it reads a snapshot.
#[async_trait::async_trait]
pub trait FeedSource: Send + Sync + 'static {
    /// The events its outbox holds.
    type Event: FeedEvent;
    /// What a snapshot says of one record.
    type State: Send + 'static;
    /// Its error type.
    type Error: From<DbErr> + Send + 'static;

    /// Every record's state and the version it reflects, read in one transaction begun
    /// with [`begin_snapshot`].
    async fn snapshot(&self) -> Result<Snapshot<Self::State>, Self::Error>;
}

/// The outbox of one database, and the signal of its local commits.
#[derive(Debug, Clone)]
pub struct Outbox {
    connection: DatabaseConnection,
    changed: Arc<Notify>,
}

impl Outbox {
    /// The outbox in `connection`'s database (migrated).
    pub fn new(connection: DatabaseConnection) -> Self {
        Outbox {
            connection,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Signalled (`notify_waiters`) by writers after they commit an event.
    pub fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }

    /// Up to `limit` rows after `version`, in order.
    async fn rows_after(
        &self,
        version: i64,
        limit: u64,
    ) -> Result<Vec<entity::outbox::Model>, DbErr> {
        entity::outbox::Entity::find()
            .filter(entity::outbox::Column::Version.gt(version))
            .order_by_asc(entity::outbox::Column::Version)
            .limit(limit)
            .all(&self.connection)
            .await
    }

    /// Up to `limit` events after `version`, in order; rows this release cannot decode
    /// (written by a newer one) are left out.
    pub async fn events_after<E: FeedEvent>(
        &self,
        version: i64,
        limit: u64,
    ) -> Result<Vec<Recorded<E>>, DbErr> {
        Ok(self
            .rows_after(version, limit)
            .await?
            .into_iter()
            .filter_map(decode)
            .collect())
    }

    /// The version of the oldest row kept, if any.
    pub async fn oldest(&self) -> Result<Option<i64>, DbErr> {
        entity::outbox::Entity::find()
            .select_only()
            .column(entity::outbox::Column::Version)
            .order_by_asc(entity::outbox::Column::Version)
            .limit(1)
            .into_tuple()
            .one(&self.connection)
            .await
    }

    /// The last version given out.
    pub async fn current_version(&self) -> Result<i64, DbErr> {
        current_version(&self.connection).await
    }

    /// Deletes the rows up to the last one created before `before`; answers how many.
    /// Always a prefix of the versions, even when replicas' clocks disagree, so the rows
    /// kept have no holes.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, DbErr> {
        let last: Option<i64> = entity::outbox::Entity::find()
            .select_only()
            .column(entity::outbox::Column::Version)
            .filter(entity::outbox::Column::CreatedAt.lt(before))
            .order_by_desc(entity::outbox::Column::Version)
            .limit(1)
            .into_tuple()
            .one(&self.connection)
            .await?;
        match last {
            Some(last) => self.delete_through(last).await,
            None => Ok(0),
        }
    }

    async fn delete_through(&self, version: i64) -> Result<u64, DbErr> {
        let deleted = entity::outbox::Entity::delete_many()
            .filter(entity::outbox::Column::Version.lte(version))
            .exec(&self.connection)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Every event kept, as (version, event), oldest first (tests check what was recorded).
    #[cfg(any(test, feature = "testing"))]
    pub async fn all_events<E: FeedEvent>(&self) -> Result<Vec<(i64, E)>, DbErr> {
        Ok(self
            .events_after::<E>(0, u64::MAX >> 1)
            .await?
            .into_iter()
            .map(|recorded| (recorded.version, recorded.event))
            .collect())
    }

    /// Deletes every row up to `version` (tests make a stream resume from a pruned version).
    #[cfg(any(test, feature = "testing"))]
    pub async fn prune_through(&self, version: i64) -> Result<u64, DbErr> {
        self.delete_through(version).await
    }
}

/// A service's streams: its outbox, its snapshot source, the `events.*` settings and the
/// signal that the server is shutting down.
pub struct EventFeed<S: FeedSource> {
    outbox: Outbox,
    source: Arc<S>,
    settings: EventFeedSettings,
    stop: watch::Receiver<()>,
}

impl<S: FeedSource> Clone for EventFeed<S> {
    fn clone(&self) -> Self {
        EventFeed {
            outbox: self.outbox.clone(),
            source: Arc::clone(&self.source),
            settings: self.settings.clone(),
            stop: self.stop.clone(),
        }
    }
}

impl<S: FeedSource> EventFeed<S> {
    /// Streams of `outbox` with snapshots of `source`; they end when `stop` changes (the
    /// server is shutting down).
    pub fn new(
        outbox: Outbox,
        source: Arc<S>,
        settings: EventFeedSettings,
        stop: watch::Receiver<()>,
    ) -> Self {
        EventFeed {
            outbox,
            source,
            settings,
            stop,
        }
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Starts a stream after `from_version` (0: a snapshot first) and answers its receiver.
    /// The stream's task ends when the receiver is dropped, after sending an error, or at
    /// shutdown (after sending [`FeedError::ShuttingDown`]).
    pub fn watch(&self, from_version: i64) -> mpsc::Receiver<FeedMessage<S>> {
        let (sender, receiver) = mpsc::channel(self.settings.buffer);
        let follower = Follower {
            feed: self.clone(),
            sender,
            position: from_version,
            last_sent: Instant::now(),
        };
        tokio::spawn(follower.run());
        receiver
    }

    /// Deletes rows older than the retention now and every [`PRUNE_INTERVAL`] until `stop`
    /// changes.
    pub async fn prune_task(self, clock: crate::time::SharedClock) {
        let mut stop = self.stop.clone();
        let retention =
            chrono::Duration::from_std(self.settings.retention()).unwrap_or(chrono::Duration::MAX);
        loop {
            let before = clock.now().checked_sub_signed(retention);
            if let Some(before) = before {
                match self.outbox.prune(before).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned old events"),
                    Err(error) => tracing::warn!(%error, "pruning old events failed"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PRUNE_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The task of one stream.
struct Follower<S: FeedSource> {
    feed: EventFeed<S>,
    sender: mpsc::Sender<FeedMessage<S>>,
    /// The version the client has everything up to.
    position: i64,
    /// When the client was last sent something (heartbeats fill the silences).
    last_sent: Instant,
}

/// Why a stream's task stops.
enum Stop<E> {
    /// The client went away: nobody to tell.
    Gone,
    /// Tell the client why, then stop.
    Failed(FeedError<E>),
}

impl<E: From<DbErr>> From<DbErr> for Stop<E> {
    fn from(error: DbErr) -> Self {
        Stop::Failed(FeedError::Source(E::from(error)))
    }
}

impl<S: FeedSource> Follower<S> {
    async fn run(mut self) {
        let Err(stop) = self.follow().await;
        if let Stop::Failed(error) = stop {
            let _ = self.sender.send(Err(error)).await;
        }
    }

    /// Sends the client everything after its position, then every later event, until it
    /// goes away or the server stops.
    async fn follow(&mut self) -> Result<std::convert::Infallible, Stop<S::Error>> {
        if self.needs_snapshot().await? {
            self.send_snapshot().await?;
        }
        let changed = self.feed.outbox.changed();
        loop {
            // Registered before reading, so a commit between the read and the wait wakes it.
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let rows = self.feed.outbox.rows_after(self.position, BATCH).await?;
            if rows.is_empty() {
                self.wait(notified).await?;
                continue;
            }
            for row in rows {
                if row.version != self.position + 1 {
                    // Rows after the position were pruned while this stream fell behind:
                    // versions are dense, so a gap can mean nothing else.
                    self.send_snapshot().await?;
                    break;
                }
                let version = row.version;
                if let Some(recorded) = decode::<S::Event>(row) {
                    self.send(FeedItem::Event(recorded)).await?;
                }
                self.position = version;
            }
        }
    }

    /// Whether the client's position cannot be followed from the rows kept: 0 (nothing
    /// received yet), a version this database never gave out, or one whose later rows were
    /// pruned.
    async fn needs_snapshot(&self) -> Result<bool, Stop<S::Error>> {
        if self.position <= 0 {
            return Ok(true);
        }
        let current = self.feed.outbox.current_version().await?;
        if self.position > current {
            return Ok(true);
        }
        if self.position == current {
            return Ok(false);
        }
        let oldest = self.feed.outbox.oldest().await?;
        Ok(oldest.is_none_or(|oldest| oldest > self.position + 1))
    }

    /// Waits, caught up, for a local commit, the poll interval, or the time of a heartbeat.
    async fn wait(
        &mut self,
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Result<(), Stop<S::Error>> {
        let heartbeat_at = self.last_sent + self.feed.settings.heartbeat_interval();
        let poll = self.feed.settings.poll_interval();
        let mut stop = self.feed.stop.clone();
        let heartbeat = tokio::select! {
            () = notified => false,
            () = tokio::time::sleep(poll) => false,
            () = tokio::time::sleep_until(heartbeat_at) => true,
            () = self.sender.closed() => return Err(Stop::Gone),
            _ = stop.changed() => return Err(Stop::Failed(FeedError::ShuttingDown)),
        };
        if heartbeat {
            let item = FeedItem::Heartbeat {
                version: self.position,
                time: Utc::now(),
            };
            self.send(item).await?;
        }
        Ok(())
    }

    /// Reads a snapshot and sends it in parts; the stream continues from its version.
    async fn send_snapshot(&mut self) -> Result<(), Stop<S::Error>> {
        let snapshot = self
            .feed
            .source
            .snapshot()
            .await
            .map_err(|error| Stop::Failed(FeedError::Source(error)))?;
        let time = Utc::now();
        let mut states = snapshot.states.into_iter().peekable();
        loop {
            let part: Vec<S::State> = states.by_ref().take(SNAPSHOT_PART).collect();
            let last = states.peek().is_none();
            self.send(FeedItem::Snapshot {
                version: snapshot.version,
                time,
                states: part,
                last,
            })
            .await?;
            if last {
                break;
            }
        }
        self.position = snapshot.version;
        Ok(())
    }

    /// Sends one message, waiting as long as the client needs (only this task waits).
    async fn send(&mut self, item: FeedItem<S::Event, S::State>) -> Result<(), Stop<S::Error>> {
        let mut stop = self.feed.stop.clone();
        tokio::select! {
            sent = self.sender.send(Ok(item)) => sent.map_err(|_| Stop::Gone)?,
            _ = stop.changed() => return Err(Stop::Failed(FeedError::ShuttingDown)),
        }
        self.last_sent = Instant::now();
        Ok(())
    }
}

/// The event of `row`, or `None` (with a warning) when this release cannot read it.
fn decode<E: FeedEvent>(row: entity::outbox::Model) -> Option<Recorded<E>> {
    match serde_json::from_str(&row.payload) {
        Ok(event) => Some(Recorded {
            version: row.version,
            time: row.created_at,
            event,
        }),
        Err(error) => {
            tracing::warn!(
                version = row.version,
                kind = %row.kind,
                %error,
                "skipping an event this release cannot read"
            );
            None
        }
    }
}

/// The response stream of a watch RPC: the messages of `receiver` encoded by `encode`, and
/// a stream error as its status (the last message).
pub fn response_stream<E, S, Failure, T>(
    receiver: mpsc::Receiver<Result<FeedItem<E, S>, FeedError<Failure>>>,
    encode: fn(FeedItem<E, S>) -> T,
) -> futures::stream::BoxStream<'static, Result<T, tonic::Status>>
where
    E: Send + 'static,
    S: Send + 'static,
    Failure: ServiceError + Send + 'static,
    T: Send + 'static,
{
    use futures::StreamExt;
    tokio_stream::wrappers::ReceiverStream::new(receiver)
        .map(move |message| {
            message
                .map(encode)
                .map_err(|error| crate::error::status_of(&error))
        })
        .boxed()
}

/// Settings for tests: fast polls and heartbeats, and a small buffer so that a client
/// that never reads fills its stream's queue at once.
#[cfg(any(test, feature = "testing"))]
pub fn testing_settings() -> EventFeedSettings {
    EventFeedSettings {
        poll_interval_ms: 50,
        heartbeat_interval_ms: 300,
        retention_hours: 1,
        buffer: 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::TestDatabase;

    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    struct Changed(u32);

    impl FeedEvent for Changed {
        fn kind(&self) -> &'static str {
            "CHANGED"
        }
    }

    /// A source whose snapshot is one state per event ever appended (its number).
    struct Counted(DatabaseConnection);

    #[async_trait::async_trait]
    impl FeedSource for Counted {
        type Event = Changed;
        type State = i64;
        type Error = DbErr;

        async fn snapshot(&self) -> Result<Snapshot<i64>, DbErr> {
            let (transaction, version) = begin_snapshot(&self.0).await?;
            transaction.commit().await?;
            Ok(Snapshot {
                version,
                states: (1..=version).collect(),
            })
        }
    }

    async fn outbox() -> (TestDatabase, Outbox) {
        let database = TestDatabase::sqlite().await.expect("database");
        let manager = sea_orm_migration::SchemaManager::new(&database.connection);
        schema::create(&manager).await.expect("tables");
        let outbox = Outbox::new(database.connection.clone());
        (database, outbox)
    }

    async fn append_all(outbox: &Outbox, numbers: std::ops::RangeInclusive<u32>) {
        for number in numbers {
            let version = append(&outbox.connection, &Changed(number))
                .await
                .expect("appended");
            assert_eq!(version, i64::from(number));
        }
    }

    fn feed(outbox: &Outbox) -> (EventFeed<Counted>, watch::Sender<()>) {
        let (stop_sender, stop) = watch::channel(());
        let source = Arc::new(Counted(outbox.connection.clone()));
        let feed = EventFeed::new(outbox.clone(), source, testing_settings(), stop);
        (feed, stop_sender)
    }

    async fn next(receiver: &mut mpsc::Receiver<FeedMessage<Counted>>) -> FeedMessage<Counted> {
        tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("a message within 10 s")
            .expect("the stream is open")
    }

    #[tokio::test]
    async fn pruning_deletes_a_prefix_even_when_clocks_disagree() {
        let (_database, outbox) = outbox().await;
        append_all(&outbox, 1..=3).await;
        // Version 2 was written by a replica whose clock is a day behind.
        let yesterday = Utc::now() - chrono::Duration::days(1);
        entity::outbox::Entity::update_many()
            .col_expr(entity::outbox::Column::CreatedAt, Expr::value(yesterday))
            .filter(entity::outbox::Column::Version.eq(2))
            .exec(&outbox.connection)
            .await
            .expect("backdated");
        let cutoff = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(outbox.prune(cutoff).await.expect("pruned"), 2);
        assert_eq!(outbox.oldest().await.expect("oldest"), Some(3));
        assert_eq!(outbox.prune(cutoff).await.expect("pruned"), 0);
        // The counter is never reset.
        assert_eq!(outbox.current_version().await.expect("version"), 3);
    }

    #[tokio::test]
    async fn a_hole_in_the_rows_read_means_a_fresh_snapshot() {
        let (_database, outbox) = outbox().await;
        append_all(&outbox, 1..=3).await;
        entity::outbox::Entity::delete_many()
            .filter(entity::outbox::Column::Version.eq(2))
            .exec(&outbox.connection)
            .await
            .expect("hole");
        let (feed, _stop) = feed(&outbox);
        let mut stream = feed.watch(1);
        match next(&mut stream).await {
            Ok(FeedItem::Snapshot {
                version: 3,
                states,
                last: true,
                ..
            }) => assert_eq!(states, [1, 2, 3]),
            other => panic!("{other:?}"),
        }
        append_all(&outbox, 4..=4).await;
        outbox.changed().notify_waiters();
        match next(&mut stream).await {
            Ok(FeedItem::Event(recorded)) => {
                assert_eq!((recorded.version, recorded.event), (4, Changed(4)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn large_snapshots_come_in_parts_then_heartbeats_then_the_end_at_shutdown() {
        let (_database, outbox) = outbox().await;
        let parts = 2 * SNAPSHOT_PART + 1;
        append_all(&outbox, 1..=u32::try_from(parts).expect("small")).await;
        let (feed, stop) = feed(&outbox);
        let mut stream = feed.watch(0);
        let mut received = Vec::new();
        loop {
            let Ok(FeedItem::Snapshot { states, last, .. }) = next(&mut stream).await else {
                panic!("a snapshot part");
            };
            assert!(states.len() <= SNAPSHOT_PART);
            received.extend(states);
            if last {
                break;
            }
        }
        assert_eq!(received.len(), parts);
        match next(&mut stream).await {
            Ok(FeedItem::Heartbeat { version, .. }) => {
                assert_eq!(version, i64::try_from(parts).expect("small"))
            }
            other => panic!("{other:?}"),
        }
        drop(stop);
        assert!(matches!(
            next(&mut stream).await,
            Err(FeedError::ShuttingDown)
        ));
        assert!(stream.recv().await.is_none(), "the task ended");
    }
}
