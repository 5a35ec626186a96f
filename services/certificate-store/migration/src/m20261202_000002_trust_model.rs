//! The trust model: certificates identified by their `tbsCertificate`, typed owners linked to
//! their partner, and the deactivated-partner facts.
//!
//! * `ca_certificates.identity`, `partner_certificates.identity`: lower-case hex SHA-256 of
//!   the DER `tbsCertificate`, computed here for existing rows. A certificate has one
//!   identity whatever its encoding or signature bytes, so a re-encoded or re-signed copy is
//!   the same certificate. Unique per domain.
//! * `partner_certificates.owner_type` (`PARTNER` / `FTM`) replaces `certificate_kind`, and
//!   `partner_id` names the partner whose deactivation untrusts the certificate: the owner
//!   for partner certificates; for chip certificates it is unknown here and left empty until
//!   ftm-management links it (its reconciler re-applies every chip's trust with the partner
//!   after its own migration marks them).
//! * Several owners holding the same certificate in one domain (possible before, and the
//!   basis of cross-tenant poisoning) cannot all keep it: the first upload keeps it, later
//!   holders are quarantined — their identity becomes `conflict:<certificate id>` (so they
//!   never match a certificate again) and their trust flag is cleared, with an audit row.
//! * `deactivated_partners`: one row per deactivated partner.
//! * Every partner certificate loses its trusted mark: under the previous rules a replaced
//!   certificate stayed trusted and an orphan of a failed upload could be trusted. The
//!   registry's own migration makes it re-mark each partner's current certificate (and
//!   record its deactivated partners) at its next start, so exactly the current ones return.
//!
//! `down` restores the previous schema; quarantined rows keep their cleared trust flag.

use std::collections::HashSet;

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, QueryResult};

use crate::identity::identity_of_pem;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum CaCertificates {
    Table,
    CertificateId,
    PartnerDomain,
    CertificatePem,
    Identity,
}

#[derive(DeriveIden, Clone, Copy)]
enum PartnerCertificates {
    Table,
    CertificateId,
    OwnerId,
    PartnerDomain,
    CertificateKind,
    OwnerType,
    PartnerId,
    Identity,
    Thumbprint,
    CaSignedPem,
    Trusted,
}

#[derive(DeriveIden)]
enum DeactivatedPartners {
    Table,
    PartnerId,
    DeactivatedTime,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Actor,
    Action,
    EntityId,
    BeforeState,
    AfterState,
    TraceId,
    EventTime,
}

#[derive(DeriveIden)]
enum TrustVersions {
    Table,
    Id,
    Version,
}

const OLD_PARTNER_UNIQUE: &str = "ux_partner_certificates_owner_domain_thumbprint";
const NEW_PARTNER_UNIQUE: &str = "ux_partner_certificates_domain_identity";
const NEW_CA_UNIQUE: &str = "ux_ca_certificates_domain_identity";

/// One existing row: its id, domain and PEM.
struct Row {
    certificate_id: String,
    partner_domain: String,
    pem: String,
}

impl Row {
    fn read(result: &QueryResult, pem_column: &str) -> Result<Row, DbErr> {
        Ok(Row {
            certificate_id: result.try_get("", "certificate_id")?,
            partner_domain: result.try_get("", "partner_domain")?,
            pem: result.try_get("", pem_column)?,
        })
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            Table::alter()
                .table(CaCertificates::Table)
                .add_column(string_len(CaCertificates::Identity, 80).default(""))
                .to_owned(),
            Table::alter()
                .table(PartnerCertificates::Table)
                .add_column(string_len(PartnerCertificates::Identity, 80).default(""))
                .to_owned(),
            Table::alter()
                .table(PartnerCertificates::Table)
                .add_column(string_len(PartnerCertificates::OwnerType, 16).default("PARTNER"))
                .to_owned(),
            Table::alter()
                .table(PartnerCertificates::Table)
                .add_column(string_len(PartnerCertificates::PartnerId, 64).default(""))
                .to_owned(),
        ] {
            manager.alter_table(statement).await?;
        }
        let connection = manager.get_connection();
        connection
            .execute(
                &Query::update()
                    .table(PartnerCertificates::Table)
                    .value(PartnerCertificates::OwnerType, "FTM")
                    .and_where(Expr::col(PartnerCertificates::CertificateKind).ne("PARTNER"))
                    .to_owned(),
            )
            .await?;
        connection
            .execute(
                &Query::update()
                    .table(PartnerCertificates::Table)
                    .value(
                        PartnerCertificates::PartnerId,
                        Expr::col(PartnerCertificates::OwnerId),
                    )
                    .and_where(Expr::col(PartnerCertificates::OwnerType).eq("PARTNER"))
                    .to_owned(),
            )
            .await?;
        connection
            .execute(
                &Query::update()
                    .table(PartnerCertificates::Table)
                    .value(PartnerCertificates::Trusted, false)
                    .and_where(Expr::col(PartnerCertificates::OwnerType).eq("PARTNER"))
                    .to_owned(),
            )
            .await?;
        assign_identities(manager, Target::Ca).await?;
        assign_identities(manager, Target::Partner).await?;

        manager
            .drop_index(
                Index::drop()
                    .name(OLD_PARTNER_UNIQUE)
                    .table(PartnerCertificates::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PartnerCertificates::Table)
                    .drop_column(PartnerCertificates::CertificateKind)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_PARTNER_UNIQUE)
                    .table(PartnerCertificates::Table)
                    .col(PartnerCertificates::PartnerDomain)
                    .col(PartnerCertificates::Identity)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_CA_UNIQUE)
                    .table(CaCertificates::Table)
                    .col(CaCertificates::PartnerDomain)
                    .col(CaCertificates::Identity)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeactivatedPartners::Table)
                    .col(string_len(DeactivatedPartners::PartnerId, 64).primary_key())
                    .col(timestamp_with_time_zone(
                        DeactivatedPartners::DeactivatedTime,
                    ))
                    .to_owned(),
            )
            .await?;
        bump_trust_version(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeactivatedPartners::Table).to_owned())
            .await?;
        for (name, table) in [
            (NEW_CA_UNIQUE, CaCertificates::Table.into_iden()),
            (NEW_PARTNER_UNIQUE, PartnerCertificates::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(PartnerCertificates::Table)
                    .add_column(
                        string_len(PartnerCertificates::CertificateKind, 16).default("FTM_CHIP"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(PartnerCertificates::Table)
                    .value(PartnerCertificates::CertificateKind, "PARTNER")
                    .and_where(Expr::col(PartnerCertificates::OwnerType).eq("PARTNER"))
                    .to_owned(),
            )
            .await?;
        for column in [
            PartnerCertificates::Identity,
            PartnerCertificates::OwnerType,
            PartnerCertificates::PartnerId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PartnerCertificates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(CaCertificates::Table)
                    .drop_column(CaCertificates::Identity)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_PARTNER_UNIQUE)
                    .table(PartnerCertificates::Table)
                    .col(PartnerCertificates::OwnerId)
                    .col(PartnerCertificates::PartnerDomain)
                    .col(PartnerCertificates::Thumbprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        bump_trust_version(manager).await
    }
}

/// Which table [`assign_identities`] works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Ca,
    Partner,
}

/// Computes every row's identity, oldest first (ids are UUIDv7, ordered by time); the first
/// row of an identity in a domain keeps it, later ones are quarantined.
async fn assign_identities(manager: &SchemaManager<'_>, target: Target) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    let (table, id, domain, pem) = match target {
        Target::Ca => (
            CaCertificates::Table.into_iden(),
            CaCertificates::CertificateId.into_iden(),
            CaCertificates::PartnerDomain.into_iden(),
            CaCertificates::CertificatePem.into_iden(),
        ),
        Target::Partner => (
            PartnerCertificates::Table.into_iden(),
            PartnerCertificates::CertificateId.into_iden(),
            PartnerCertificates::PartnerDomain.into_iden(),
            PartnerCertificates::CaSignedPem.into_iden(),
        ),
    };
    let pem_column = pem.to_string();
    let rows = connection
        .query_all(
            &Query::select()
                .columns([id.clone(), domain, pem])
                .from(table.clone())
                .order_by(id.clone(), Order::Asc)
                .to_owned(),
        )
        .await?
        .iter()
        .map(|result| Row::read(result, &pem_column))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for row in rows {
        let identity = identity_of_pem(&row.pem).ok_or_else(|| {
            DbErr::Migration(format!(
                "certificate {} does not parse; cannot compute its identity",
                row.certificate_id
            ))
        })?;
        let first = seen.insert((row.partner_domain.clone(), identity.clone()));
        let stored_identity = if first {
            identity
        } else {
            format!("conflict:{}", row.certificate_id)
        };
        let mut update = Query::update();
        update
            .table(table.clone())
            .value(Alias::new("identity"), stored_identity)
            .and_where(Expr::col(id.clone()).eq(row.certificate_id.clone()));
        if !first && target == Target::Partner {
            update.value(PartnerCertificates::Trusted, false);
        }
        connection.execute(&update).await?;
        if !first {
            quarantine_audit(connection, &row.certificate_id).await?;
        }
    }
    Ok(())
}

/// The audit row of a quarantined duplicate.
async fn quarantine_audit(connection: &impl ConnectionTrait, entity: &str) -> Result<(), DbErr> {
    let now = sea_orm_migration::sea_orm::prelude::DateTimeUtc::from(std::time::SystemTime::now());
    connection
        .execute(
            &Query::insert()
                .into_table(AuditEvents::Table)
                .columns([
                    AuditEvents::Actor,
                    AuditEvents::Action,
                    AuditEvents::EntityId,
                    AuditEvents::BeforeState,
                    AuditEvents::AfterState,
                    AuditEvents::TraceId,
                    AuditEvents::EventTime,
                ])
                .values_panic([
                    "migration".into(),
                    "CERTIFICATE_QUARANTINED".into(),
                    entity.into(),
                    None::<String>.into(),
                    Some("UNTRUSTED".to_owned()).into(),
                    "".into(),
                    now.into(),
                ])
                .to_owned(),
        )
        .await?;
    Ok(())
}

/// Moves the trust-store version so that running replicas rebuild from the new data.
async fn bump_trust_version(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute(
            &Query::update()
                .table(TrustVersions::Table)
                .value(
                    TrustVersions::Version,
                    Expr::col(TrustVersions::Version).add(1),
                )
                .and_where(Expr::col(TrustVersions::Id).eq(1))
                .to_owned(),
        )
        .await?;
    Ok(())
}
