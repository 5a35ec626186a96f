//! sea-orm implementation of [`FtmRepository`] for SQLite and PostgreSQL.
//!
//! Listing uses keyset pagination: `WHERE (sort_column, ftm_id) > (cursor)` ordered by the
//! same pair, so every page is an index range scan whatever its depth, on indexes created by
//! the migration. Substring filters use `LIKE` on the stored lower-case copies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Value};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    Set, Statement, TransactionTrait,
};

use std::sync::Arc;

use tokio::sync::Notify;

use pmp_common::event_feed::{self, FeedSource, Snapshot};
use pmp_common::lease::{LeaseColumns, SqlLeases};

use super::FtmRepository;
use super::entities::ftms;
use crate::domain::{
    self, AuditEvent, Ftm, FtmChange, FtmEvent, FtmFilter, FtmPage, FtmState, FtmStatus, ListQuery,
    SortField,
};
use crate::error::FtmError;

/// Rows per multi-row `INSERT` of `FtmRepository::import` (well below both backends'
/// bind-parameter limits).
#[cfg(feature = "testing")]
const IMPORT_CHUNK: usize = 500;

/// Repository over an injected sea-orm connection.
#[derive(Debug, Clone)]
pub struct SqlFtmRepository {
    connection: DatabaseConnection,
    /// Signalled after a transaction that recorded events commits (see
    /// [`pmp_common::event_feed`]).
    events_changed: Arc<Notify>,
}

impl SqlFtmRepository {
    /// Uses `connection` (already migrated).
    pub fn new(connection: DatabaseConnection) -> Self {
        SqlFtmRepository {
            connection,
            events_changed: Arc::new(Notify::new()),
        }
    }

    /// Signals `changed` after each commit that recorded events, so that the streams of
    /// this process read them at once (give it [`pmp_common::event_feed::Outbox::changed`]).
    pub fn notifying(mut self, changed: Arc<Notify>) -> Self {
        self.events_changed = changed;
        self
    }

    /// The database's plan for the page query of `query` (SQLite `EXPLAIN QUERY PLAN`
    /// details, PostgreSQL `EXPLAIN` lines): lets tests and operators check that listing
    /// is served by an index.
    pub async fn explain_list(&self, query: &ListQuery) -> Result<Vec<String>, FtmError> {
        let backend = self.connection.get_database_backend();
        let statement = page_select(query).build(backend);
        let (prefix, column) = match backend {
            DbBackend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
            _ => ("EXPLAIN", "QUERY PLAN"),
        };
        let explain = Statement {
            sql: format!("{prefix} {}", statement.sql),
            ..statement
        };
        let rows = self.connection.query_all_raw(explain).await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String>("", column)
                    .map_err(FtmError::Database)
            })
            .collect()
    }
}

fn to_domain(model: ftms::Model) -> Result<Ftm, FtmError> {
    let status = FtmStatus::parse(&model.status)
        .ok_or_else(|| FtmError::Internal(format!("unknown stored status {}", model.status)))?;
    Ok(Ftm {
        ftm_id: model.ftm_id,
        partner_id: model.partner_id,
        organization_name: model.organization_name,
        make: model.make,
        model: model.model,
        status,
        certificate_id: model.certificate_id,
        certificate_expiry_time: model.certificate_expiry_time,
        reject_reason: model.reject_reason,
        create_time: model.create_time,
        update_time: model.update_time,
    })
}

fn to_active_model(ftm: &Ftm) -> ftms::ActiveModel {
    ftms::ActiveModel {
        ftm_id: Set(ftm.ftm_id.clone()),
        partner_id: Set(ftm.partner_id.clone()),
        organization_name: Set(ftm.organization_name.clone()),
        organization_name_normalized: Set(domain::search_key(&ftm.organization_name)),
        make: Set(ftm.make.clone()),
        make_normalized: Set(domain::search_key(&ftm.make)),
        model: Set(ftm.model.clone()),
        model_normalized: Set(domain::search_key(&ftm.model)),
        status: Set(ftm.status.as_str().to_owned()),
        certificate_id: Set(ftm.certificate_id.clone()),
        certificate_expiry_time: Set(ftm.certificate_expiry_time),
        reject_reason: Set(ftm.reject_reason.clone()),
        create_time: Set(ftm.create_time),
        update_time: Set(ftm.update_time),
        sync_token: Set(None),
        sync_expires_at: Set(None),
    }
}

/// `%value%` with the `LIKE` wildcards of `value` escaped (escape character `\`).
fn contains_pattern(value: &str) -> LikeExpr {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for character in value.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('\\')
}

fn filtered(filter: &FtmFilter) -> Select<ftms::Entity> {
    let mut select = ftms::Entity::find();
    if let Some(partner_id) = &filter.partner_id {
        select = select.filter(ftms::Column::PartnerId.eq(partner_id.clone()));
    }
    if let Some(status) = &filter.status {
        select = select.filter(ftms::Column::Status.eq(status.clone()));
    }
    if let Some(make) = &filter.make {
        select = select.filter(ftms::Column::MakeNormalized.like(contains_pattern(make)));
    }
    if let Some(model) = &filter.model {
        select = select.filter(ftms::Column::ModelNormalized.like(contains_pattern(model)));
    }
    if let Some(organization) = &filter.organization_name {
        select = select
            .filter(ftms::Column::OrganizationNameNormalized.like(contains_pattern(organization)));
    }
    select
}

fn sort_column(field: SortField) -> ftms::Column {
    match field {
        SortField::CreateTime => ftms::Column::CreateTime,
        SortField::UpdateTime => ftms::Column::UpdateTime,
        SortField::Make => ftms::Column::MakeNormalized,
        SortField::Model => ftms::Column::ModelNormalized,
        SortField::PartnerId => ftms::Column::PartnerId,
        SortField::Status => ftms::Column::Status,
    }
}

/// The page query: filters, keyset condition, order and `limit + 1` rows (the extra row
/// tells whether another page follows).
fn page_select(query: &ListQuery) -> Select<ftms::Entity> {
    let column = sort_column(query.ordering.field);
    let mut select = filtered(&query.filter);
    if let Some(cursor) = &query.after {
        let value: Value = if query.ordering.field.is_time() {
            cursor
                .time
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .into()
        } else {
            cursor.text.clone().into()
        };
        let position = Expr::tuple([column.into_expr(), ftms::Column::FtmId.into_expr()]);
        let cursor_value = Expr::tuple([Expr::value(value), Expr::value(cursor.ftm_id.clone())]);
        select = select.filter(if query.ordering.descending {
            position.lt(cursor_value)
        } else {
            position.gt(cursor_value)
        });
    }
    let order = if query.ordering.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    select
        .order_by(column, order.clone())
        .order_by(ftms::Column::FtmId, order)
        .limit(query.limit.saturating_add(1))
}

fn lease_free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(ftms::Column::SyncToken.is_null())
        .add(ftms::Column::SyncExpiresAt.lte(now))
}

#[async_trait]
impl FtmRepository for SqlFtmRepository {
    async fn create(&self, ftm: &Ftm, audit: AuditEvent) -> Result<(), FtmError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            to_active_model(ftm).insert(&transaction).await?;
            pmp_common::audit::record(&transaction, audit).await?;
            let created = FtmEvent::Created {
                ftm: FtmState::from(ftm),
            };
            event_feed::append(&transaction, &created).await?;
            transaction.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                self.events_changed.notify_waiters();
                Ok(())
            }
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(FtmError::DuplicateMakeModel)
            }
            Err(error) => Err(error.into()),
        }
    }

    #[cfg(feature = "testing")]
    async fn import(&self, ftms: &[Ftm]) -> Result<(), FtmError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            for chunk in ftms.chunks(IMPORT_CHUNK) {
                ftms::Entity::insert_many(chunk.iter().map(to_active_model))
                    .exec_without_returning(&transaction)
                    .await?;
            }
            transaction.commit().await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(FtmError::DuplicateMakeModel)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn find(&self, ftm_id: &str) -> Result<Option<Ftm>, FtmError> {
        ftms::Entity::find_by_id(ftm_id.to_owned())
            .one(&self.connection)
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<FtmPage, FtmError> {
        // Count and page on two pooled connections at once: the count of a large filter
        // costs as much as the page, and neither waits for the other.
        let (total_size, mut models) = tokio::try_join!(
            filtered(&query.filter).count(&self.connection),
            page_select(query).all(&self.connection),
        )?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let has_more = models.len() > limit;
        models.truncate(limit);
        let ftms = models
            .into_iter()
            .map(to_domain)
            .collect::<Result<_, _>>()?;
        Ok(FtmPage {
            ftms,
            has_more,
            total_size,
        })
    }

    async fn acquire_lease(
        &self,
        ftm_id: &str,
        status: FtmStatus,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, FtmError> {
        let result = ftms::Entity::update_many()
            .col_expr(ftms::Column::SyncToken, Expr::value(token.to_owned()))
            .col_expr(ftms::Column::SyncExpiresAt, Expr::value(expires_at))
            .filter(ftms::Column::FtmId.eq(ftm_id.to_owned()))
            .filter(ftms::Column::Status.eq(status.as_str()))
            .filter(lease_free(now))
            .exec(&self.connection)
            .await?;
        Ok(result.rows_affected == 1)
    }

    async fn complete(
        &self,
        ftm_id: &str,
        token: &str,
        expected: FtmStatus,
        change: &FtmChange,
        audit: AuditEvent,
    ) -> Result<Option<Ftm>, FtmError> {
        let transaction = self.connection.begin().await?;
        let updated = ftms::Entity::update_many()
            .col_expr(ftms::Column::Status, Expr::value(change.status.as_str()))
            .col_expr(
                ftms::Column::CertificateId,
                Expr::value(change.certificate_id.clone()),
            )
            .col_expr(
                ftms::Column::CertificateExpiryTime,
                Expr::value(change.certificate_expiry_time),
            )
            .col_expr(
                ftms::Column::RejectReason,
                Expr::value(change.reject_reason.clone()),
            )
            .col_expr(ftms::Column::UpdateTime, Expr::value(domain::now()))
            .col_expr(ftms::Column::SyncToken, Expr::value(Option::<String>::None))
            .col_expr(
                ftms::Column::SyncExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(ftms::Column::FtmId.eq(ftm_id.to_owned()))
            .filter(ftms::Column::Status.eq(expected.as_str()))
            .filter(ftms::Column::SyncToken.eq(token.to_owned()))
            .exec(&transaction)
            .await?;
        if updated.rows_affected != 1 {
            transaction.rollback().await?;
            return Ok(None);
        }
        pmp_common::audit::record(&transaction, audit).await?;
        let model = ftms::Entity::find_by_id(ftm_id.to_owned())
            .one(&transaction)
            .await?
            .ok_or_else(|| FtmError::Internal("updated FTM vanished".into()))?;
        let ftm = to_domain(model)?;
        // Last: the outbox's version row stays locked until the commit.
        if let Some(event) = FtmEvent::of_action(&ftm) {
            event_feed::append(&transaction, &event).await?;
        }
        transaction.commit().await?;
        self.events_changed.notify_waiters();
        Ok(Some(ftm))
    }

    #[cfg(feature = "testing")]
    async fn sync_marker(
        &self,
        ftm_id: &str,
    ) -> Result<Option<pmp_common::lease::StaleLease>, FtmError> {
        Ok(ftms::Entity::find_by_id(ftm_id.to_owned())
            .one(&self.connection)
            .await?
            .and_then(marker_of))
    }

    async fn status_counts(&self) -> Result<Vec<(FtmStatus, u64)>, FtmError> {
        let rows: Vec<(String, i64)> = ftms::Entity::find()
            .select_only()
            .column(ftms::Column::Status)
            .column_as(Expr::cust("COUNT(*)"), "count")
            .group_by(ftms::Column::Status)
            .into_tuple()
            .all(&self.connection)
            .await?;
        rows.into_iter()
            .map(|(status, count)| {
                let status = FtmStatus::parse(&status)
                    .ok_or_else(|| FtmError::Internal(format!("unknown stored status {status}")))?;
                Ok((status, u64::try_from(count).unwrap_or_default()))
            })
            .collect()
    }

    async fn sync_marker_count(&self) -> Result<u64, FtmError> {
        Ok(ftms::Entity::find()
            .filter(ftms::Column::SyncToken.is_not_null())
            .count(&self.connection)
            .await?)
    }

    #[cfg(feature = "testing")]
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, FtmError> {
        Ok(pmp_common::audit::events_of(&self.connection, entity_id).await?)
    }
}

impl SqlLeases for SqlFtmRepository {
    type Entity = ftms::Entity;
    type Error = FtmError;
    const COLUMNS: LeaseColumns<ftms::Entity> = LeaseColumns {
        id: ftms::Column::FtmId,
        token: ftms::Column::SyncToken,
        expires_at: ftms::Column::SyncExpiresAt,
    };

    fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }
}

#[cfg(feature = "testing")]
fn marker_of(model: ftms::Model) -> Option<pmp_common::lease::StaleLease> {
    Some(pmp_common::lease::StaleLease {
        id: model.ftm_id,
        token: model.sync_token?,
        expires_at: model.sync_expires_at?,
    })
}

/// FTM management's side of its event feed (`WatchFtmEvents`): snapshots of every FTM.
#[async_trait]
impl FeedSource for SqlFtmRepository {
    type Event = FtmEvent;
    type State = FtmState;
    type Error = FtmError;

    async fn snapshot(&self) -> Result<Snapshot<FtmState>, FtmError> {
        let (transaction, version) = event_feed::begin_snapshot(&self.connection).await?;
        let models = ftms::Entity::find()
            .order_by_asc(ftms::Column::FtmId)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        let states = models
            .into_iter()
            .map(|model| to_domain(model).map(|ftm| FtmState::from(&ftm)))
            .collect::<Result<_, _>>()?;
        Ok(Snapshot { version, states })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        let statement = ftms::Entity::find()
            .filter(ftms::Column::MakeNormalized.like(contains_pattern("50%_a\\b")))
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(
            statement.contains(r"LIKE '%50\%\_a\\b%' ESCAPE '\'"),
            "{statement}"
        );
    }
}
