//! Initial schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use pmp_common::audit::schema as audit;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CaCertificates {
    Table,
    CertificateId,
    PartnerDomain,
    CaType,
    Subject,
    Issuer,
    SerialNumber,
    Thumbprint,
    NotBefore,
    NotAfter,
    UploadTime,
    CertificatePem,
    IssuerCertificateId,
}

#[derive(DeriveIden)]
enum PartnerCertificates {
    Table,
    CertificateId,
    OwnerId,
    PartnerDomain,
    CertificateKind,
    OrganizationName,
    Thumbprint,
    Subject,
    Issuer,
    SerialNumber,
    NotBefore,
    NotAfter,
    IsCa,
    CaSignedPem,
    PlatformSignedPem,
    ChainPem,
    Trusted,
    UploadTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum TrustVersions {
    Table,
    Id,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaCertificates::Table)
                    .col(string_len(CaCertificates::CertificateId, 36).primary_key())
                    .col(string_len(CaCertificates::PartnerDomain, 36))
                    .col(string_len(CaCertificates::CaType, 16))
                    .col(text(CaCertificates::Subject))
                    .col(text(CaCertificates::Issuer))
                    .col(string_len(CaCertificates::SerialNumber, 128))
                    .col(string_len(CaCertificates::Thumbprint, 64))
                    .col(timestamp_with_time_zone(CaCertificates::NotBefore))
                    .col(timestamp_with_time_zone(CaCertificates::NotAfter))
                    .col(timestamp_with_time_zone(CaCertificates::UploadTime))
                    .col(text(CaCertificates::CertificatePem))
                    .col(string_len(CaCertificates::IssuerCertificateId, 36))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_ca_certificates_thumbprint_domain")
                    .table(CaCertificates::Table)
                    .col(CaCertificates::Thumbprint)
                    .col(CaCertificates::PartnerDomain)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ca_certificates_domain_type_id")
                    .table(CaCertificates::Table)
                    .col(CaCertificates::PartnerDomain)
                    .col(CaCertificates::CaType)
                    .col(CaCertificates::CertificateId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PartnerCertificates::Table)
                    .col(string_len(PartnerCertificates::CertificateId, 36).primary_key())
                    .col(string_len(PartnerCertificates::OwnerId, 64))
                    .col(string_len(PartnerCertificates::PartnerDomain, 36))
                    .col(string_len(PartnerCertificates::CertificateKind, 16))
                    .col(string_len(PartnerCertificates::OrganizationName, 128))
                    .col(string_len(PartnerCertificates::Thumbprint, 64))
                    .col(text(PartnerCertificates::Subject))
                    .col(text(PartnerCertificates::Issuer))
                    .col(string_len(PartnerCertificates::SerialNumber, 128))
                    .col(timestamp_with_time_zone(PartnerCertificates::NotBefore))
                    .col(timestamp_with_time_zone(PartnerCertificates::NotAfter))
                    .col(boolean(PartnerCertificates::IsCa))
                    .col(text(PartnerCertificates::CaSignedPem))
                    .col(text(PartnerCertificates::PlatformSignedPem))
                    .col(text(PartnerCertificates::ChainPem))
                    .col(boolean(PartnerCertificates::Trusted))
                    .col(timestamp_with_time_zone(PartnerCertificates::UploadTime))
                    .col(timestamp_with_time_zone(PartnerCertificates::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_partner_certificates_owner_domain_thumbprint")
                    .table(PartnerCertificates::Table)
                    .col(PartnerCertificates::OwnerId)
                    .col(PartnerCertificates::PartnerDomain)
                    .col(PartnerCertificates::Thumbprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_partner_certificates_domain_thumbprint")
                    .table(PartnerCertificates::Table)
                    .col(PartnerCertificates::PartnerDomain)
                    .col(PartnerCertificates::Thumbprint)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TrustVersions::Table)
                    .col(integer(TrustVersions::Id).primary_key())
                    .col(big_integer(TrustVersions::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(TrustVersions::Table)
                    .columns([TrustVersions::Id, TrustVersions::Version])
                    .values_panic([1.into(), 1i64.into()])
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(audit::create_table(audit::AuditColumns {
                actor: 128,
                action: 64,
                entity_id: 64,
                state: 32,
            }))
            .await?;
        manager.create_index(audit::create_index()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(audit::drop_table()).await?;
        for table in [
            TrustVersions::Table.into_iden(),
            PartnerCertificates::Table.into_iden(),
            CaCertificates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
