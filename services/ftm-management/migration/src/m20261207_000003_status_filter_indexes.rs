//! Covering indexes for `ListFtms` filtered by status and a make, model or organisation
//! substring: counting the matches (`total_size`) reads the index alone instead of every
//! row of that status. Expand-only: old replicas keep working on the new schema.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Ftms {
    Table,
    Status,
    MakeNormalized,
    ModelNormalized,
    OrganizationNameNormalized,
}

/// `(name, columns)` of the indexes this migration adds.
const INDEXES: [(&str, [Ftms; 2]); 3] = [
    ("ix_ftms_status_make", [Ftms::Status, Ftms::MakeNormalized]),
    (
        "ix_ftms_status_model",
        [Ftms::Status, Ftms::ModelNormalized],
    ),
    (
        "ix_ftms_status_organization",
        [Ftms::Status, Ftms::OrganizationNameNormalized],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, [first, second]) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Ftms::Table)
                        .col(first)
                        .col(second)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Ftms::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
