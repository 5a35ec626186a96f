//! sea-orm implementation of [`PartnerRepository`] for SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use std::sync::Arc;

use tokio::sync::Notify;

use pmp_common::event_feed;
use pmp_common::lease::{LeaseColumns, SqlLeases};

#[cfg(feature = "testing")]
use super::ImportedPartner;
use super::entities::{partner_types, partners, users};
use super::{PartnerPage, PartnerRepository, UserRecord};
use crate::domain::{
    AuditEvent, Partner, PartnerEvent, PartnerFilter, PartnerState, PartnerStatus,
};
use crate::error::RegistryError;

/// Rows per multi-row `INSERT` of `PartnerRepository::import` (well below both backends'
/// bind-parameter limits).
#[cfg(feature = "testing")]
const IMPORT_CHUNK: usize = 500;

/// Repository over an injected sea-orm connection.
#[derive(Debug, Clone)]
pub struct SqlPartnerRepository {
    connection: DatabaseConnection,
    /// Signalled after a transaction that recorded events commits (see
    /// [`pmp_common::event_feed`]).
    events_changed: Arc<Notify>,
}

impl SqlPartnerRepository {
    /// Uses `connection` (already migrated).
    pub fn new(connection: DatabaseConnection) -> Self {
        SqlPartnerRepository {
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

    /// The connection (for the event feed's snapshots).
    pub(super) fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }
}

pub(super) fn to_domain(model: partners::Model) -> Result<Partner, RegistryError> {
    let status = PartnerStatus::parse(&model.status).ok_or_else(|| {
        RegistryError::Internal(format!("unknown stored status {}", model.status))
    })?;
    Ok(Partner {
        partner_id: model.partner_id,
        first_name: model.first_name,
        last_name: model.last_name,
        organization_name: model.organization_name,
        partner_type: model.partner_type,
        address: model.address,
        email: model.email,
        phone: model.phone,
        lang_code: model.lang_code,
        status,
        certificate_id: model.certificate_id,
        create_time: model.create_time,
        update_time: model.update_time,
    })
}

fn user_model(
    username: &str,
    password_hash: &str,
    roles: &[String],
    create_time: DateTime<Utc>,
) -> users::ActiveModel {
    users::ActiveModel {
        username: Set(username.to_owned()),
        password_hash: Set(password_hash.to_owned()),
        roles: Set(roles.join(",")),
        create_time: Set(create_time),
    }
}

/// `duplicate` when the database refused `error` as a unique-constraint violation.
#[cfg(feature = "testing")]
fn refused(error: sea_orm::DbErr, duplicate: RegistryError) -> RegistryError {
    if pmp_common::db::is_unique_violation(&error) {
        duplicate
    } else {
        error.into()
    }
}

fn to_active_model(partner: &Partner) -> partners::ActiveModel {
    partners::ActiveModel {
        partner_id: Set(partner.partner_id.clone()),
        first_name: Set(partner.first_name.clone()),
        last_name: Set(partner.last_name.clone()),
        organization_name: Set(partner.organization_name.clone()),
        partner_type: Set(partner.partner_type.clone()),
        address: Set(partner.address.clone()),
        email: Set(partner.email.clone()),
        email_normalized: Set(partner.email.to_lowercase()),
        phone: Set(partner.phone.clone()),
        lang_code: Set(partner.lang_code.clone()),
        status: Set(partner.status.as_str().to_owned()),
        certificate_id: Set(partner.certificate_id.clone()),
        create_time: Set(partner.create_time),
        update_time: Set(partner.update_time),
        sync_token: sea_orm::NotSet,
        sync_expires_at: sea_orm::NotSet,
    }
}

/// No lease, or only an expired one.
fn lease_free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(partners::Column::SyncToken.is_null())
        .add(partners::Column::SyncExpiresAt.lte(now))
}

impl SqlPartnerRepository {
    /// Which uniqueness rule a failed insert broke: the id if it is taken, else the e-mail.
    async fn duplicate_reason(&self, partner: &Partner) -> Result<RegistryError, RegistryError> {
        if users::Entity::find_by_id(partner.partner_id.clone())
            .one(&self.connection)
            .await?
            .is_some()
        {
            return Ok(RegistryError::DuplicatePartnerId);
        }
        let email_taken = partners::Entity::find()
            .filter(partners::Column::EmailNormalized.eq(partner.email.to_lowercase()))
            .count(&self.connection)
            .await?
            > 0;
        Ok(if email_taken {
            RegistryError::DuplicateEmail
        } else {
            RegistryError::DuplicatePartnerId
        })
    }

    /// Applies `change` to the partner in one transaction with its audit row, while the
    /// lease `token` is held; a change that leaves the partner as it was writes nothing.
    async fn update_partner(
        &self,
        partner_id: &str,
        audit: AuditEvent,
        token: &str,
        change: impl FnOnce(&mut Partner) + Send,
    ) -> Result<Partner, RegistryError> {
        let transaction = self.connection.begin().await?;
        // Take the row's write lock before reading it (a no-op update): concurrent changes
        // queue up instead of overwriting each other, and SQLite waits on its busy timeout
        // instead of failing a read-to-write lock upgrade.
        let locked = partners::Entity::update_many()
            .col_expr(
                partners::Column::UpdateTime,
                Expr::col(partners::Column::UpdateTime),
            )
            .filter(partners::Column::PartnerId.eq(partner_id.to_owned()))
            .filter(partners::Column::SyncToken.eq(token.to_owned()))
            .exec(&transaction)
            .await?
            .rows_affected;
        if locked == 0 {
            return Err(match self.find_partner(partner_id).await? {
                Some(_) => RegistryError::Interrupted,
                None => RegistryError::PartnerNotFound,
            });
        }
        let model = partners::Entity::find_by_id(partner_id.to_owned())
            .one(&transaction)
            .await?
            .ok_or(RegistryError::PartnerNotFound)?;
        let before = to_domain(model)?;
        let mut partner = before.clone();
        change(&mut partner);
        if partner == before {
            transaction.commit().await?;
            return Ok(partner);
        }
        // Microseconds: what both databases keep, so the answer equals a later read.
        partner.update_time = Utc::now().trunc_subsecs(6);
        let mut active = to_active_model(&partner);
        active.partner_id = sea_orm::Unchanged(partner.partner_id.clone());
        active.create_time = sea_orm::Unchanged(partner.create_time);
        active.update(&transaction).await?;
        pmp_common::audit::record(&transaction, audit).await?;
        // Last: the outbox's version row stays locked until the commit.
        for event in PartnerEvent::between(&before, &partner) {
            event_feed::append(&transaction, &event).await?;
        }
        transaction.commit().await?;
        self.events_changed.notify_waiters();
        Ok(partner)
    }
}

#[async_trait]
impl PartnerRepository for SqlPartnerRepository {
    async fn canonical_partner_type(
        &self,
        requested: &str,
    ) -> Result<Option<String>, RegistryError> {
        Ok(partner_types::Entity::find()
            .filter(partner_types::Column::CodeNormalized.eq(requested.trim().to_ascii_lowercase()))
            .filter(partner_types::Column::IsActive.eq(true))
            .one(&self.connection)
            .await?
            .map(|model| model.code))
    }

    async fn create_partner(
        &self,
        partner: &Partner,
        password_hash: &str,
        roles: &[String],
        audit: AuditEvent,
    ) -> Result<(), RegistryError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            user_model(
                &partner.partner_id,
                password_hash,
                roles,
                partner.create_time,
            )
            .insert(&transaction)
            .await?;
            to_active_model(partner).insert(&transaction).await?;
            pmp_common::audit::record(&transaction, audit).await?;
            let registered = PartnerEvent::Registered {
                partner: PartnerState::from(partner),
            };
            event_feed::append(&transaction, &registered).await?;
            transaction.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                self.events_changed.notify_waiters();
                Ok(())
            }
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(self.duplicate_reason(partner).await?)
            }
            Err(error) => Err(error.into()),
        }
    }

    #[cfg(feature = "testing")]
    async fn import(&self, partners: &[ImportedPartner]) -> Result<(), RegistryError> {
        // Users first: the partner row refers to its user, so a taken id fails there and a
        // failure of the partner rows can only be the e-mail.
        let transaction = self.connection.begin().await?;
        for chunk in partners.chunks(IMPORT_CHUNK) {
            users::Entity::insert_many(chunk.iter().map(|imported| {
                user_model(
                    &imported.partner.partner_id,
                    &imported.password_hash,
                    &imported.roles,
                    imported.partner.create_time,
                )
            }))
            .exec_without_returning(&transaction)
            .await
            .map_err(|error| refused(error, RegistryError::DuplicatePartnerId))?;
            partners::Entity::insert_many(
                chunk
                    .iter()
                    .map(|imported| to_active_model(&imported.partner)),
            )
            .exec_without_returning(&transaction)
            .await
            .map_err(|error| refused(error, RegistryError::DuplicateEmail))?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn find_partner(&self, partner_id: &str) -> Result<Option<Partner>, RegistryError> {
        partners::Entity::find_by_id(partner_id.to_owned())
            .one(&self.connection)
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn list_partners(
        &self,
        filter: &PartnerFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<PartnerPage, RegistryError> {
        let mut query = partners::Entity::find();
        if let Some(partner_type) = &filter.partner_type {
            query = query.filter(partners::Column::PartnerType.eq(partner_type.clone()));
        }
        if let Some(status) = filter.status {
            query = query.filter(partners::Column::Status.eq(status.as_str()));
        }
        let counted = query.clone();
        if let Some(after) = after {
            query = query.filter(partners::Column::PartnerId.gt(after.to_owned()));
        }
        // Count and page on two pooled connections at once: neither waits for the other.
        let (total_size, mut models) = tokio::try_join!(
            counted.count(&self.connection),
            query
                .order_by_asc(partners::Column::PartnerId)
                .limit(limit + 1)
                .all(&self.connection),
        )?;
        let has_more = models.len() as u64 > limit;
        models.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let partners = models
            .into_iter()
            .map(to_domain)
            .collect::<Result<_, _>>()?;
        Ok(PartnerPage {
            partners,
            has_more,
            total_size,
        })
    }

    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, RegistryError> {
        Ok(users::Entity::find_by_id(username.to_owned())
            .one(&self.connection)
            .await?
            .map(|model| UserRecord {
                username: model.username,
                password_hash: model.password_hash,
                roles: model
                    .roles
                    .split(',')
                    .filter(|role| !role.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }))
    }

    async fn ensure_user(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError> {
        let inserted =
            users::Entity::insert(user_model(username, password_hash, roles, Utc::now()))
                .on_conflict_do_nothing_on([users::Column::Username])
                .exec_without_returning(&self.connection)
                .await;
        match inserted {
            Ok(sea_orm::TryInsertResult::Inserted(rows)) => Ok(rows > 0),
            Ok(sea_orm::TryInsertResult::Empty | sea_orm::TryInsertResult::Conflicted) => Ok(false),
            Err(sea_orm::DbErr::RecordNotInserted) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[String],
    ) -> Result<bool, RegistryError> {
        let result = users::Entity::update_many()
            .col_expr(
                users::Column::PasswordHash,
                Expr::value(password_hash.to_owned()),
            )
            .col_expr(users::Column::Roles, Expr::value(roles.join(",")))
            .filter(users::Column::Username.eq(username.to_owned()))
            .exec(&self.connection)
            .await?;
        Ok(result.rows_affected == 1)
    }

    async fn attach_certificate(
        &self,
        partner_id: &str,
        certificate_id: &str,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError> {
        let certificate_id = certificate_id.to_owned();
        self.update_partner(partner_id, audit, token, move |partner| {
            partner.certificate_id = Some(certificate_id);
            if partner.status == PartnerStatus::InProgress {
                partner.status = PartnerStatus::Active;
            }
        })
        .await
    }

    async fn set_status(
        &self,
        partner_id: &str,
        status: PartnerStatus,
        audit: AuditEvent,
        token: &str,
    ) -> Result<Partner, RegistryError> {
        self.update_partner(partner_id, audit, token, move |partner| {
            partner.status = status;
        })
        .await
    }

    async fn acquire_lease(
        &self,
        partner_id: &str,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        let result = partners::Entity::update_many()
            .col_expr(partners::Column::SyncToken, Expr::value(token.to_owned()))
            .col_expr(partners::Column::SyncExpiresAt, Expr::value(expires_at))
            .filter(partners::Column::PartnerId.eq(partner_id.to_owned()))
            .filter(lease_free(now))
            .exec(&self.connection)
            .await?;
        Ok(result.rows_affected == 1)
    }

    #[cfg(feature = "testing")]
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, RegistryError> {
        Ok(pmp_common::audit::events_of(&self.connection, entity_id).await?)
    }
}

impl SqlLeases for SqlPartnerRepository {
    type Entity = partners::Entity;
    type Error = RegistryError;
    const COLUMNS: LeaseColumns<partners::Entity> = LeaseColumns {
        id: partners::Column::PartnerId,
        token: partners::Column::SyncToken,
        expires_at: partners::Column::SyncExpiresAt,
    };

    fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }
}
