//! Per-partner synchronisation markers for the steps that span the certificate store.
//!
//! `sync_token` / `sync_expires_at` are a lease taken before a step calls the store
//! (uploading a partner certificate, deactivating or re-activating a partner) and removed
//! when it has finished. A marker left behind by a failure or a crash expires, and the
//! registry's reconciler then re-applies the partner's state to the store.
//!
//! The trust model changes what the store must hold for every existing partner: its
//! current certificate marked trusted (the store's own migration clears every partner
//! certificate's mark, so that replaced certificates stop being trusted), and a
//! deactivation fact for each DEACTIVATED partner. So every partner with a certificate, or
//! deactivated, gets an expired marker here, and is re-applied at the next start.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Token of the markers this migration sets.
const MIGRATION_TOKEN: &str = "migration-trust-model";
const SYNC_INDEX: &str = "ix_partners_sync";

#[derive(DeriveIden)]
enum Partners {
    Table,
    Status,
    CertificateId,
    SyncToken,
    SyncExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_len_null(Partners::SyncToken, 36),
            timestamp_with_time_zone_null(Partners::SyncExpiresAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Partners::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(SYNC_INDEX)
                    .table(Partners::Table)
                    .col(Partners::SyncExpiresAt)
                    .to_owned(),
            )
            .await?;
        let long_ago = sea_orm_migration::sea_orm::prelude::DateTimeUtc::UNIX_EPOCH;
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(Partners::Table)
                    .value(Partners::SyncToken, MIGRATION_TOKEN)
                    .value(Partners::SyncExpiresAt, long_ago)
                    .cond_where(
                        Cond::any()
                            .add(Expr::col(Partners::CertificateId).is_not_null())
                            .add(Expr::col(Partners::Status).eq("DEACTIVATED")),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(SYNC_INDEX)
                    .table(Partners::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Partners::SyncExpiresAt, Partners::SyncToken] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Partners::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
