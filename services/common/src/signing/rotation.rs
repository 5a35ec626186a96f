//! The storage side of key rotation, written once for every table of keys (the store's
//! platform signing keys, the registry's token signing keys). Such a table has the columns
//! `key_id` (primary key), `key_label`, `key_file`, `state` (`NEXT`, `ACTIVE`, `PREVIOUS`),
//! `activated_at` and `retired_at`, plus what its service keeps about each key.
//!
//! Both operations take their database's write lock with their first statement: two
//! replicas doing the same at once on SQLite would otherwise deadlock on upgrading a read
//! lock, and on PostgreSQL the row lock orders concurrent activations.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbErr};

use super::KeyState;

/// Inserts the row `columns` = `values` into `table` only when the table is empty (the key a
/// service is configured with becomes the first active key). One statement, so any number
/// of replicas may run it at once; a replica that loses the race changes nothing.
pub async fn adopt_initial(
    connection: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
    values: Vec<SimpleExpr>,
) -> Result<(), DbErr> {
    let table = Alias::new(table);
    let nothing_recorded = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(table.clone())
            .to_owned(),
    )
    .not();
    let select = Query::select()
        .exprs(values)
        .and_where(nothing_recorded)
        .to_owned();
    let insert = Query::insert()
        .into_table(table)
        .columns(columns.iter().map(|column| Alias::new(*column)))
        .select_from(select)
        .map_err(|error| DbErr::Custom(error.to_string()))?
        .to_owned();
    match connection.execute(&insert).await {
        Err(error) if crate::db::is_unique_violation(&error) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// What [`activate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// No key has this id.
    Unknown,
    /// The key was active already; nothing changed.
    AlreadyActive,
    /// The key is active now and the one before it `PREVIOUS`.
    Activated,
}

/// Makes `key_id` of `table` the active key at `now` and the active one `PREVIOUS`, retired
/// at `retired_at` (`now`, or earlier to stop publishing it at once), within `transaction`,
/// which the caller commits (with its audit row) when the answer is
/// [`Activation::Activated`].
pub async fn activate(
    transaction: &impl ConnectionTrait,
    table: &str,
    key_id: &str,
    now: DateTime<Utc>,
    retired_at: DateTime<Utc>,
) -> Result<Activation, DbErr> {
    let table = Alias::new(table);
    let state = Alias::new("state");
    let id = Alias::new("key_id");
    // A write first: it takes the write lock (SQLite) or the row (PostgreSQL).
    let claim = Query::update()
        .table(table.clone())
        .value(state.clone(), Expr::col(state.clone()))
        .and_where(Expr::col(id.clone()).eq(key_id))
        .to_owned();
    if transaction.execute(&claim).await?.rows_affected() == 0 {
        return Ok(Activation::Unknown);
    }
    let current = Query::select()
        .column(state.clone())
        .from(table.clone())
        .and_where(Expr::col(id.clone()).eq(key_id))
        .to_owned();
    let row = transaction
        .query_one(&current)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(key_id.to_owned()))?;
    let stored: String = row.try_get("", "state")?;
    if stored == KeyState::Active.as_str() {
        return Ok(Activation::AlreadyActive);
    }
    let retire = Query::update()
        .table(table.clone())
        .value(state.clone(), KeyState::Previous.as_str())
        .value(Alias::new("retired_at"), retired_at)
        .and_where(Expr::col(state.clone()).eq(KeyState::Active.as_str()))
        .to_owned();
    transaction.execute(&retire).await?;
    let promote = Query::update()
        .table(table)
        .value(state, KeyState::Active.as_str())
        .value(Alias::new("activated_at"), now)
        .value(Alias::new("retired_at"), Option::<DateTime<Utc>>::None)
        .and_where(Expr::col(id).eq(key_id))
        .to_owned();
    transaction.execute(&promote).await?;
    Ok(Activation::Activated)
}
