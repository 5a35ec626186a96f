//! An index for `ListPartners` filtered by status alone: counting the matches (`total_size`)
//! reads the index instead of every row of the table, and the page is a range of the index
//! in partner-id order. The partner type filter, alone or with a status, already has
//! `ix_partners_type_status`. Expand-only: old replicas keep working on the new schema.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUS_INDEX: &str = "ix_partners_status";

#[derive(DeriveIden)]
enum Partners {
    Table,
    Status,
    PartnerId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(STATUS_INDEX)
                    .table(Partners::Table)
                    .col(Partners::Status)
                    .col(Partners::PartnerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(STATUS_INDEX)
                    .table(Partners::Table)
                    .to_owned(),
            )
            .await
    }
}
