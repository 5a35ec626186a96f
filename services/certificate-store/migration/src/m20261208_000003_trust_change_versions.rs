//! Incremental trust-store refresh: each partner/FTM certificate row records the trust-store
//! version at which its trust facts last changed, so a replica reads only what moved since
//! its snapshot instead of every row on every change.
//!
//! * `partner_certificates.trust_version` (0 for existing rows, which any snapshot already
//!   holds), indexed for `trust_version > ?`.
//! * `trust_versions.structural_version`: the last version at which something changed that
//!   a row delta cannot express (CA certificates, a CA-capable stored certificate, partner
//!   deactivation); a replica whose snapshot is older rebuilds in full.
//!
//! Expand-only: replicas still on the previous release keep working on the new schema (they
//! ignore the columns and always rebuild in full). Rows they write keep `trust_version` 0,
//! and their version bumps leave `structural_version` behind, which new replicas answer
//! with a full rebuild: see `TrustStore::refresh`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PartnerCertificates {
    Table,
    TrustVersion,
}

#[derive(DeriveIden)]
enum TrustVersions {
    Table,
    StructuralVersion,
}

const TRUST_VERSION_INDEX: &str = "ix_partner_certificates_trust_version";

/// Adds a version column, 0 for existing rows.
fn add_version_column(table: impl IntoIden, column: impl IntoIden) -> TableAlterStatement {
    Table::alter()
        .table(table)
        .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
        .to_owned()
}

fn drop_column(table: impl IntoIden, column: impl IntoIden) -> TableAlterStatement {
    Table::alter().table(table).drop_column(column).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(add_version_column(
                PartnerCertificates::Table,
                PartnerCertificates::TrustVersion,
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(TRUST_VERSION_INDEX)
                    .table(PartnerCertificates::Table)
                    .col(PartnerCertificates::TrustVersion)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(add_version_column(
                TrustVersions::Table,
                TrustVersions::StructuralVersion,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(TRUST_VERSION_INDEX)
                    .table(PartnerCertificates::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(drop_column(
                PartnerCertificates::Table,
                PartnerCertificates::TrustVersion,
            ))
            .await?;
        manager
            .alter_table(drop_column(
                TrustVersions::Table,
                TrustVersions::StructuralVersion,
            ))
            .await
    }
}
