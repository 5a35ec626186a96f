//! The token signing keys, for rotation without downtime: every key that signed or will sign
//! access tokens, where its private half is (an HSM label or a key file path, never the
//! key), its public key, and its state: `NEXT` (published, not signing), `ACTIVE` (signing;
//! one row) or `PREVIOUS` (published until its tokens expire). Replicas sign with the active
//! row's key and pick up an activation by polling.
//!
//! Expand-only: a new table that older releases ignore.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TokenSigningKeys {
    Table,
    KeyId,
    PublicKeyPem,
    KeyLabel,
    KeyFile,
    State,
    AddedAt,
    ActivatedAt,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let timestamp =
            |column: TokenSigningKeys| ColumnDef::new(column).timestamp_with_time_zone().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(TokenSigningKeys::Table)
                    .col(
                        ColumnDef::new(TokenSigningKeys::KeyId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(TokenSigningKeys::PublicKeyPem)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TokenSigningKeys::KeyLabel)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TokenSigningKeys::KeyFile)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TokenSigningKeys::State).string().not_null())
                    .col(timestamp(TokenSigningKeys::AddedAt).not_null())
                    .col(timestamp(TokenSigningKeys::ActivatedAt))
                    .col(timestamp(TokenSigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TokenSigningKeys::Table).to_owned())
            .await
    }
}
