//! Initial schema.
//!
//! * `ftms`: one row per FTM. `make_normalized`, `model_normalized` and
//!   `organization_name_normalized` are lower-case copies used by the uniqueness rule and by
//!   the case-insensitive filters of `ListFtms`. `sync_token`/`sync_expires_at` are the
//!   per-FTM lease taken while a step that spans the certificate store is in flight (see the
//!   service's documentation).
//! * a partial unique index makes "one live FTM per partner, make and model" a database
//!   rule, so concurrent creates cannot both win; REJECTED and DEACTIVATED rows do not count.
//! * one `(column, ftm_id)` index per sortable column for keyset pagination of all FTMs, and
//!   `(partner_id, column, ftm_id)` for a provider listing its own FTMs.
//! * `audit_events`: one row per state change (the platform-wide audit table of
//!   `pmp_common::audit`: actor, action, FTM id, status before and after, trace id, time).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use pmp_common::audit::schema as audit;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Ftms {
    Table,
    FtmId,
    PartnerId,
    OrganizationName,
    OrganizationNameNormalized,
    Make,
    MakeNormalized,
    Model,
    ModelNormalized,
    Status,
    CertificateId,
    CertificateExpiryTime,
    RejectReason,
    CreateTime,
    UpdateTime,
    SyncToken,
    SyncExpiresAt,
}

/// The platform-wide audit table (`pmp_common::audit`).
/// Partial indexes, written as SQL because both backends accept the same text.
const PARTIAL_INDEXES: [&str; 2] = [
    "CREATE UNIQUE INDEX ux_ftms_live_make_model ON ftms \
     (partner_id, make_normalized, model_normalized) \
     WHERE status NOT IN ('REJECTED', 'DEACTIVATED')",
    "CREATE INDEX ix_ftms_sync ON ftms (sync_expires_at) WHERE sync_token IS NOT NULL",
];

/// `(name, columns)` of the plain indexes that serve `ListFtms` orderings and filters.
const LIST_INDEXES: [(&str, &[Ftms]); 12] = [
    ("ix_ftms_create_time", &[Ftms::CreateTime, Ftms::FtmId]),
    ("ix_ftms_update_time", &[Ftms::UpdateTime, Ftms::FtmId]),
    ("ix_ftms_make", &[Ftms::MakeNormalized, Ftms::FtmId]),
    ("ix_ftms_model", &[Ftms::ModelNormalized, Ftms::FtmId]),
    ("ix_ftms_partner", &[Ftms::PartnerId, Ftms::FtmId]),
    ("ix_ftms_status", &[Ftms::Status, Ftms::FtmId]),
    (
        "ix_ftms_status_create_time",
        &[Ftms::Status, Ftms::CreateTime, Ftms::FtmId],
    ),
    (
        "ix_ftms_partner_create_time",
        &[Ftms::PartnerId, Ftms::CreateTime, Ftms::FtmId],
    ),
    (
        "ix_ftms_partner_update_time",
        &[Ftms::PartnerId, Ftms::UpdateTime, Ftms::FtmId],
    ),
    (
        "ix_ftms_partner_make",
        &[Ftms::PartnerId, Ftms::MakeNormalized, Ftms::FtmId],
    ),
    (
        "ix_ftms_partner_model",
        &[Ftms::PartnerId, Ftms::ModelNormalized, Ftms::FtmId],
    ),
    (
        "ix_ftms_partner_status",
        &[Ftms::PartnerId, Ftms::Status, Ftms::FtmId],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Ftms::Table)
                    .col(string_len(Ftms::FtmId, 40).primary_key())
                    .col(string_len(Ftms::PartnerId, 36))
                    .col(string_len(Ftms::OrganizationName, 128))
                    .col(string_len(Ftms::OrganizationNameNormalized, 128))
                    .col(string_len(Ftms::Make, 36))
                    .col(string_len(Ftms::MakeNormalized, 36))
                    .col(string_len(Ftms::Model, 36))
                    .col(string_len(Ftms::ModelNormalized, 36))
                    .col(string_len(Ftms::Status, 24))
                    .col(string_len_null(Ftms::CertificateId, 64))
                    .col(timestamp_with_time_zone_null(Ftms::CertificateExpiryTime))
                    .col(string_len_null(Ftms::RejectReason, 512))
                    .col(timestamp_with_time_zone(Ftms::CreateTime))
                    .col(timestamp_with_time_zone(Ftms::UpdateTime))
                    .col(string_len_null(Ftms::SyncToken, 40))
                    .col(timestamp_with_time_zone_null(Ftms::SyncExpiresAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in LIST_INDEXES {
            let mut index = Index::create();
            index.name(name).table(Ftms::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let connection = manager.get_connection();
        for statement in PARTIAL_INDEXES {
            connection.execute_unprepared(statement).await?;
        }

        manager
            .create_table(audit::create_table(audit::AuditColumns {
                actor: 160,
                action: 40,
                entity_id: 40,
                state: 24,
            }))
            .await?;
        manager.create_index(audit::create_index()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(audit::drop_table()).await?;
        manager
            .drop_table(Table::drop().table(Ftms::Table).to_owned())
            .await
    }
}
