//! Re-applies every chip certificate's trust under the trust model.
//!
//! The certificate store now links each chip certificate to its provider partner (so that
//! deactivating the partner untrusts its FTMs' chips) and learns that link from
//! `SetCertificateTrusted`. This migration gives every FTM with a certificate an expired
//! synchronisation marker; the reconciler takes each over at start-up and re-applies
//! `SetCertificateTrusted(certificate, status == APPROVED, partner)` from the FTM's status,
//! exactly as after an interrupted step. FTMs whose marker is already set (a step in
//! flight) are reconciled anyway when it expires.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Token of the markers this migration sets (and `down` removes).
const MIGRATION_TOKEN: &str = "migration-trust-model";

#[derive(DeriveIden)]
enum Ftms {
    Table,
    CertificateId,
    SyncToken,
    SyncExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let long_ago = sea_orm_migration::sea_orm::prelude::DateTimeUtc::UNIX_EPOCH;
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(Ftms::Table)
                    .value(Ftms::SyncToken, MIGRATION_TOKEN)
                    .value(Ftms::SyncExpiresAt, long_ago)
                    .and_where(Expr::col(Ftms::CertificateId).is_not_null())
                    .and_where(Expr::col(Ftms::SyncToken).is_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(Ftms::Table)
                    .value(Ftms::SyncToken, None::<String>)
                    .value(
                        Ftms::SyncExpiresAt,
                        None::<sea_orm_migration::sea_orm::prelude::DateTimeUtc>,
                    )
                    .and_where(Expr::col(Ftms::SyncToken).eq(MIGRATION_TOKEN))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
