//! The audit trail every service keeps in its own database: who changed what, when, from
//! which state to which, under which trace id. The table is created by each service's
//! migrations (`audit_events`); writing and reading it is shared here.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

/// A state change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// [`crate::auth::Caller::actor`] of the caller.
    pub actor: String,
    /// e.g. `PARTNER_REGISTERED`, `FTM_APPROVED`.
    pub action: String,
    /// Id of the changed record.
    pub entity_id: String,
    /// State before the change (`None` for a creation).
    pub before_state: Option<String>,
    /// State after the change.
    pub after_state: Option<String>,
    /// Trace id of the request, to find the trace in Jaeger.
    pub trace_id: String,
}

impl AuditEvent {
    /// An event for the current request (trace id taken from the current span).
    pub fn now(
        actor: &str,
        action: &str,
        entity_id: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Self {
        AuditEvent {
            actor: actor.to_owned(),
            action: action.to_owned(),
            entity_id: entity_id.to_owned(),
            before_state: before.map(str::to_owned),
            after_state: after.map(str::to_owned),
            trace_id: crate::telemetry::current_trace_id(),
        }
    }
}

/// The `audit_events` table (sea-orm entity; the columns are those of [`AuditEvent`]).
#[allow(missing_docs)]
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub actor: String,
        pub action: String,
        pub entity_id: String,
        pub before_state: Option<String>,
        pub after_state: Option<String>,
        pub trace_id: String,
        pub event_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `audit_events` schema, shared by every service's migrations (each service keeps
/// its own table in its own database).
pub mod schema {
    use sea_orm::DeriveIden;
    use sea_orm::sea_query::{
        ColumnDef, Index, IndexCreateStatement, Table, TableCreateStatement, TableDropStatement,
    };

    #[derive(DeriveIden)]
    enum AuditEvents {
        Table,
        Id,
        Actor,
        Action,
        EntityId,
        BeforeState,
        AfterState,
        TraceId,
        EventTime,
    }

    /// Column sizes, as each service first created them.
    #[derive(Debug, Clone, Copy)]
    pub struct AuditColumns {
        /// `actor`.
        pub actor: u32,
        /// `action`.
        pub action: u32,
        /// `entity_id`.
        pub entity_id: u32,
        /// `before_state` and `after_state`.
        pub state: u32,
    }

    /// `CREATE TABLE audit_events`.
    pub fn create_table(columns: AuditColumns) -> TableCreateStatement {
        let text = |column: AuditEvents, length: u32| {
            ColumnDef::new(column).string_len(length).not_null().take()
        };
        let optional = |column: AuditEvents, length: u32| {
            ColumnDef::new(column).string_len(length).null().take()
        };
        Table::create()
            .table(AuditEvents::Table)
            .col(
                ColumnDef::new(AuditEvents::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(text(AuditEvents::Actor, columns.actor))
            .col(text(AuditEvents::Action, columns.action))
            .col(text(AuditEvents::EntityId, columns.entity_id))
            .col(optional(AuditEvents::BeforeState, columns.state))
            .col(optional(AuditEvents::AfterState, columns.state))
            .col(text(AuditEvents::TraceId, 32))
            .col(
                ColumnDef::new(AuditEvents::EventTime)
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .to_owned()
    }

    /// The index that reads one entity's events in order.
    pub fn create_index() -> IndexCreateStatement {
        Index::create()
            .name("ix_audit_events_entity")
            .table(AuditEvents::Table)
            .col(AuditEvents::EntityId)
            .col(AuditEvents::Id)
            .to_owned()
    }

    /// `DROP TABLE audit_events`.
    pub fn drop_table() -> TableDropStatement {
        Table::drop().table(AuditEvents::Table).to_owned()
    }
}

/// Writes `event` on `connection` (pass the transaction of the change it records).
pub async fn record(connection: &impl ConnectionTrait, event: AuditEvent) -> Result<(), DbErr> {
    entity::ActiveModel {
        actor: Set(event.actor),
        action: Set(event.action),
        entity_id: Set(event.entity_id),
        before_state: Set(event.before_state),
        after_state: Set(event.after_state),
        trace_id: Set(event.trace_id),
        event_time: Set(Utc::now()),
        ..Default::default()
    }
    .insert(connection)
    .await?;
    Ok(())
}

/// The events of one record, oldest first.
pub async fn events_of(
    connection: &impl ConnectionTrait,
    entity_id: &str,
) -> Result<Vec<AuditEvent>, DbErr> {
    Ok(entity::Entity::find()
        .filter(entity::Column::EntityId.eq(entity_id.to_owned()))
        .order_by_asc(entity::Column::Id)
        .all(connection)
        .await?
        .into_iter()
        .map(|model| AuditEvent {
            actor: model.actor,
            action: model.action,
            entity_id: model.entity_id,
            before_state: model.before_state,
            after_state: model.after_state,
            trace_id: model.trace_id,
        })
        .collect())
}
