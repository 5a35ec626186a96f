//! Revocation, the trust change feed and expiry notices.
//!
//! - `revocations`: one row per revoked certificate of a domain (a CA certificate or a
//!   stored partner/FTM certificate), by identity, with its RFC 5280 reason code. Never
//!   deleted: revocation is for good.
//! - `trust_events`: the transactional outbox of `WatchTrustChanges`. Each row is written in
//!   the transaction of the change it describes, with the trust-store version that change
//!   moved to, so the feed's versions are the trust store's and none is lost or invented on
//!   a crash. Rows older than the retention are pruned; a consumer resuming from before
//!   them gets a fresh snapshot.
//! - `expiry_notices`: which expiry thresholds each certificate has been announced for, so
//!   the sweep announces each crossing once.
//!
//! Expand-only: new tables that older releases ignore.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Revocations {
    Table,
    PartnerDomain,
    Identity,
    CertificateId,
    CertificateKind,
    SerialNumber,
    ReasonCode,
    Comment,
    RevokedBy,
    RevokedAt,
}

#[derive(DeriveIden)]
enum TrustEvents {
    Table,
    Version,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ExpiryNotices {
    Table,
    CertificateId,
    ThresholdDays,
    NoticedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(
                        ColumnDef::new(Revocations::PartnerDomain)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Revocations::Identity).string().not_null())
                    .col(
                        ColumnDef::new(Revocations::CertificateId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Revocations::CertificateKind)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Revocations::SerialNumber)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Revocations::ReasonCode).integer().not_null())
                    .col(ColumnDef::new(Revocations::Comment).text().not_null())
                    .col(ColumnDef::new(Revocations::RevokedBy).string().not_null())
                    .col(
                        ColumnDef::new(Revocations::RevokedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Revocations::PartnerDomain)
                            .col(Revocations::Identity),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TrustEvents::Table)
                    .col(
                        ColumnDef::new(TrustEvents::Version)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TrustEvents::Payload).text().not_null())
                    .col(
                        ColumnDef::new(TrustEvents::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ExpiryNotices::Table)
                    .col(
                        ColumnDef::new(ExpiryNotices::CertificateId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ExpiryNotices::ThresholdDays)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ExpiryNotices::NoticedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ExpiryNotices::CertificateId)
                            .col(ExpiryNotices::ThresholdDays),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Revocations::Table.into_iden(),
            TrustEvents::Table.into_iden(),
            ExpiryNotices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
