//! The platform signing keys, for rotation without downtime: every signing certificate the
//! platform has published, where its private key is (an HSM label or a key file path, never
//! the key), and its state: `NEXT` (published, not signing), `ACTIVE` (signing; one row) or
//! `PREVIOUS` (published until the copies it signed expire). Replicas sign with the active
//! row's key and pick up an activation by polling.
//!
//! Expand-only: a new table that older releases ignore (they keep signing with their
//! configured key, which is the first active row).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PlatformSigningKeys {
    Table,
    KeyId,
    CertificatePem,
    KeyLabel,
    KeyFile,
    State,
    NotAfter,
    AddedAt,
    ActivatedAt,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlatformSigningKeys::Table)
                    .col(
                        ColumnDef::new(PlatformSigningKeys::KeyId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::CertificatePem)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::KeyLabel)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::KeyFile)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::State)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlatformSigningKeys::ActivatedAt).timestamp_with_time_zone(),
                    )
                    .col(ColumnDef::new(PlatformSigningKeys::RetiredAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PlatformSigningKeys::Table).to_owned())
            .await
    }
}
