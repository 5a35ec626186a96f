//! The token signing keys (rotation) behind a repository trait of their own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set, TransactionTrait,
};

use pmp_common::signing::rotation::{self, Activation};
use pmp_common::signing::{KeyLocation, KeyState};

use super::entities::token_signing_keys;
use crate::domain::AuditEvent;
use crate::error::RegistryError;

/// A token signing key as recorded: its public key and where its private half is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKeyRecord {
    /// The `kid` of the tokens it signs.
    pub key_id: String,
    /// Its public key, PEM.
    pub public_key_pem: String,
    /// Where its private key is.
    pub location: KeyLocation,
    /// Its state.
    pub state: KeyState,
    /// When it was added.
    pub added_at: DateTime<Utc>,
    /// When it last became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When another key replaced it.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Storage of the token signing keys.
#[async_trait]
pub trait TokenKeyRepository: Send + Sync {
    /// Every key, oldest first.
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>, RegistryError>;

    /// Records the configured key as active when no key is recorded yet; several replicas
    /// may do this at once.
    async fn adopt_initial_token_key(&self, key: &TokenKeyRecord) -> Result<(), RegistryError>;

    /// Adds a key (`NEXT`) with its audit row; `KeyExists` when it was added before.
    async fn insert_token_key(
        &self,
        key: &TokenKeyRecord,
        audit: AuditEvent,
    ) -> Result<(), RegistryError>;

    /// Makes `key_id` the active key at `now` and the active one `PREVIOUS` retired at
    /// `retired_at`, with `audit` (written only when something changed); `KeyNotFound` for
    /// an unknown key.
    async fn activate_token_key(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
        retired_at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<TokenKeyRecord, RegistryError>;
}

/// [`TokenKeyRepository`] over an injected sea-orm connection.
#[derive(Debug, Clone)]
pub struct SqlTokenKeyRepository {
    connection: DatabaseConnection,
}

impl SqlTokenKeyRepository {
    /// Uses `connection` (already migrated).
    pub fn new(connection: DatabaseConnection) -> Self {
        SqlTokenKeyRepository { connection }
    }
}

/// The table (see `pmp_common::signing::rotation`) and its columns, in insertion order.
const TABLE: &str = "token_signing_keys";

const COLUMNS: [&str; 8] = [
    "key_id",
    "public_key_pem",
    "key_label",
    "key_file",
    "state",
    "added_at",
    "activated_at",
    "retired_at",
];

#[async_trait]
impl TokenKeyRepository for SqlTokenKeyRepository {
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>, RegistryError> {
        token_signing_keys::Entity::find()
            .order_by_asc(token_signing_keys::Column::AddedAt)
            .order_by_asc(token_signing_keys::Column::KeyId)
            .all(&self.connection)
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn adopt_initial_token_key(&self, key: &TokenKeyRecord) -> Result<(), RegistryError> {
        let (label, file) = key.location.columns();
        let values = vec![
            Expr::val(key.key_id.clone()),
            Expr::val(key.public_key_pem.clone()),
            Expr::val(label),
            Expr::val(file),
            Expr::val(key.state.as_str()),
            Expr::val(key.added_at),
            Expr::val(key.activated_at),
            Expr::val(key.retired_at),
        ];
        Ok(rotation::adopt_initial(&self.connection, TABLE, &COLUMNS, values).await?)
    }

    async fn insert_token_key(
        &self,
        key: &TokenKeyRecord,
        audit: AuditEvent,
    ) -> Result<(), RegistryError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            to_active(key).insert(&transaction).await?;
            pmp_common::audit::record(&transaction, audit).await?;
            transaction.commit().await
        }
        .await;
        match result {
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(RegistryError::KeyExists)
            }
            other => Ok(other?),
        }
    }

    async fn activate_token_key(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
        retired_at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<TokenKeyRecord, RegistryError> {
        let transaction = self.connection.begin().await?;
        match rotation::activate(&transaction, TABLE, key_id, now, retired_at).await? {
            Activation::Unknown => return Err(RegistryError::KeyNotFound),
            Activation::AlreadyActive => transaction.rollback().await?,
            Activation::Activated => {
                pmp_common::audit::record(&transaction, audit).await?;
                transaction.commit().await?;
            }
        }
        let row = token_signing_keys::Entity::find_by_id(key_id.to_owned())
            .one(&self.connection)
            .await?
            .ok_or(RegistryError::KeyNotFound)?;
        to_domain(row)
    }
}

fn to_active(key: &TokenKeyRecord) -> token_signing_keys::ActiveModel {
    let (key_label, key_file) = key.location.columns();
    token_signing_keys::ActiveModel {
        key_id: Set(key.key_id.clone()),
        public_key_pem: Set(key.public_key_pem.clone()),
        key_label: Set(key_label),
        key_file: Set(key_file),
        state: Set(key.state.as_str().to_owned()),
        added_at: Set(key.added_at),
        activated_at: Set(key.activated_at),
        retired_at: Set(key.retired_at),
    }
}

fn to_domain(row: token_signing_keys::Model) -> Result<TokenKeyRecord, RegistryError> {
    let broken =
        |what: &str| RegistryError::Internal(format!("token key {} has {what}", row.key_id));
    let state = KeyState::parse(&row.state).ok_or_else(|| broken("an unknown state"))?;
    let location = KeyLocation::from_columns(row.key_label.clone(), row.key_file.clone())
        .ok_or_else(|| broken("no single key location"))?;
    Ok(TokenKeyRecord {
        key_id: row.key_id,
        public_key_pem: row.public_key_pem,
        location,
        state,
        added_at: row.added_at,
        activated_at: row.activated_at,
        retired_at: row.retired_at,
    })
}
