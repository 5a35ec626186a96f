//! Initial schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use pmp_common::audit::schema as audit;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// MOSIP's partner-type seed list (`pms-partner_type.csv`): code, description.
const PARTNER_TYPES: [(&str, &str); 13] = [
    ("Auth_Partner", "Auth Partner"),
    ("Device_Provider", "Device Provider"),
    ("Credential_Partner", "Credential Partner"),
    ("Partner_Admin", "Partner Admin"),
    ("FTM_Provider", "FTM Provider"),
    ("Online_Verification_Partner", "Online Verification Partner"),
    ("ABIS_Partner", "ABIS Partner"),
    ("Manual_Adjudication", "Manual Adjudication"),
    ("MISP_Partner", "MISP Partner"),
    ("Internal_Partner", "Internal Partner"),
    ("SDK_Partner", "SDK Partner"),
    ("Print_Partner", "Print Partner"),
    ("Binding_Partner", "Binding Partner"),
];

#[derive(DeriveIden)]
enum PartnerTypes {
    Table,
    Code,
    CodeNormalized,
    Description,
    IsActive,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Username,
    PasswordHash,
    Roles,
    CreateTime,
}

#[derive(DeriveIden)]
enum Partners {
    Table,
    PartnerId,
    FirstName,
    LastName,
    OrganizationName,
    PartnerType,
    Address,
    Email,
    EmailNormalized,
    Phone,
    LangCode,
    Status,
    CertificateId,
    CreateTime,
    UpdateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PartnerTypes::Table)
                    .col(string_len(PartnerTypes::Code, 36).primary_key())
                    .col(string_len_uniq(PartnerTypes::CodeNormalized, 36))
                    .col(string_len(PartnerTypes::Description, 128))
                    .col(boolean(PartnerTypes::IsActive))
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert()
            .into_table(PartnerTypes::Table)
            .columns([
                PartnerTypes::Code,
                PartnerTypes::CodeNormalized,
                PartnerTypes::Description,
                PartnerTypes::IsActive,
            ])
            .to_owned();
        for (code, description) in PARTNER_TYPES {
            seed.values_panic([
                code.into(),
                code.to_ascii_lowercase().into(),
                description.into(),
                true.into(),
            ]);
        }
        manager.exec_stmt(seed).await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string_len(Users::Username, 36).primary_key())
                    .col(string_len(Users::PasswordHash, 256))
                    .col(string_len(Users::Roles, 512))
                    .col(timestamp_with_time_zone(Users::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Partners::Table)
                    .col(string_len(Partners::PartnerId, 36).primary_key())
                    .col(string_len(Partners::FirstName, 64))
                    .col(string_len(Partners::LastName, 64))
                    .col(string_len(Partners::OrganizationName, 128))
                    .col(string_len(Partners::PartnerType, 36))
                    .col(string_len(Partners::Address, 2000))
                    .col(string_len(Partners::Email, 254))
                    .col(string_len_uniq(Partners::EmailNormalized, 254))
                    .col(string_len(Partners::Phone, 16))
                    .col(string_len(Partners::LangCode, 3))
                    .col(string_len(Partners::Status, 16))
                    .col(string_len_null(Partners::CertificateId, 36))
                    .col(timestamp_with_time_zone(Partners::CreateTime))
                    .col(timestamp_with_time_zone(Partners::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_partners_partner_type")
                            .from(Partners::Table, Partners::PartnerType)
                            .to(PartnerTypes::Table, PartnerTypes::Code),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_partners_user")
                            .from(Partners::Table, Partners::PartnerId)
                            .to(Users::Table, Users::Username)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_partners_type_status")
                    .table(Partners::Table)
                    .col(Partners::PartnerType)
                    .col(Partners::Status)
                    .col(Partners::PartnerId)
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
        manager
            .drop_table(Table::drop().table(Partners::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PartnerTypes::Table).to_owned())
            .await
    }
}
