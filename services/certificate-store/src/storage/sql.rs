//! sea-orm implementation of [`CertificateRepository`] for SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    AccessMode, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, IsolationLevel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait, TryIntoModel,
};

use super::entities::{
    ca_certificates, deactivated_partners, partner_certificates, platform_signing_keys,
    revocations, trust_events, trust_versions,
};
use super::{CaPage, CertificateRepository};
use crate::domain::{
    AuditEvent, CaCertificate, CaFilter, CaType, KeyLocation, Owner, OwnerType, PartnerCertificate,
    PlatformKeyRecord, PlatformKeyState, RevokedCertificate, StoredTrustChange, StoredTrustEntry,
    TrustChanges, TrustData, TrustEvent,
};
use crate::error::StoreError;
use pmp_common::signing::rotation::{self, Activation};

/// The table of platform signing keys (see `pmp_common::signing::rotation`).
const PLATFORM_KEYS: &str = "platform_signing_keys";

/// Repository over an injected sea-orm connection.
#[derive(Debug, Clone)]
pub struct SqlCertificateRepository {
    connection: DatabaseConnection,
}

impl SqlCertificateRepository {
    /// Uses `connection` (already migrated).
    pub fn new(connection: DatabaseConnection) -> Self {
        SqlCertificateRepository { connection }
    }

    /// The connection it works on.
    pub(super) fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// The one row of trust-store versions.
    async fn versions(&self) -> Result<trust_versions::Model, StoreError> {
        trust_versions::Entity::find_by_id(1)
            .one(&self.connection)
            .await?
            .ok_or_else(|| StoreError::Internal("trust_versions row is missing".into()))
    }
}

fn ca_to_domain(model: ca_certificates::Model) -> Result<CaCertificate, StoreError> {
    let ca_type = CaType::parse(&model.ca_type)
        .ok_or_else(|| StoreError::Internal(format!("unknown stored CA type {}", model.ca_type)))?;
    Ok(CaCertificate {
        certificate_id: model.certificate_id,
        partner_domain: model.partner_domain,
        ca_type,
        subject: model.subject,
        issuer: model.issuer,
        serial_number: model.serial_number,
        thumbprint: model.thumbprint,
        identity: model.identity,
        not_before: model.not_before,
        not_after: model.not_after,
        upload_time: model.upload_time,
        certificate_pem: model.certificate_pem,
        issuer_certificate_id: model.issuer_certificate_id,
    })
}

fn ca_to_active(certificate: &CaCertificate) -> ca_certificates::ActiveModel {
    ca_certificates::ActiveModel {
        certificate_id: Set(certificate.certificate_id.clone()),
        partner_domain: Set(certificate.partner_domain.clone()),
        ca_type: Set(certificate.ca_type.as_str().to_owned()),
        subject: Set(certificate.subject.clone()),
        issuer: Set(certificate.issuer.clone()),
        serial_number: Set(certificate.serial_number.clone()),
        thumbprint: Set(certificate.thumbprint.clone()),
        identity: Set(certificate.identity.clone()),
        not_before: Set(certificate.not_before),
        not_after: Set(certificate.not_after),
        upload_time: Set(certificate.upload_time),
        certificate_pem: Set(certificate.certificate_pem.clone()),
        issuer_certificate_id: Set(certificate.issuer_certificate_id.clone()),
    }
}

fn partner_to_domain(model: partner_certificates::Model) -> Result<PartnerCertificate, StoreError> {
    let owner_type = OwnerType::parse(&model.owner_type).ok_or_else(|| {
        StoreError::Internal(format!("unknown stored owner type {}", model.owner_type))
    })?;
    Ok(PartnerCertificate {
        certificate_id: model.certificate_id,
        owner: Owner {
            owner_type,
            owner_id: model.owner_id,
            partner_id: model.partner_id,
        },
        partner_domain: model.partner_domain,
        organization_name: model.organization_name,
        identity: model.identity,
        thumbprint: model.thumbprint,
        subject: model.subject,
        issuer: model.issuer,
        serial_number: model.serial_number,
        not_before: model.not_before,
        not_after: model.not_after,
        is_ca: model.is_ca,
        ca_signed_pem: model.ca_signed_pem,
        platform_signed_pem: model.platform_signed_pem,
        chain_pem: split_pems(&model.chain_pem),
        trusted: model.trusted,
        upload_time: model.upload_time,
        update_time: model.update_time,
    })
}

fn partner_to_active(certificate: &PartnerCertificate) -> partner_certificates::ActiveModel {
    partner_certificates::ActiveModel {
        certificate_id: Set(certificate.certificate_id.clone()),
        owner_type: Set(certificate.owner.owner_type.as_str().to_owned()),
        owner_id: Set(certificate.owner.owner_id.clone()),
        partner_id: Set(certificate.owner.partner_id.clone()),
        partner_domain: Set(certificate.partner_domain.clone()),
        organization_name: Set(certificate.organization_name.clone()),
        identity: Set(certificate.identity.clone()),
        thumbprint: Set(certificate.thumbprint.clone()),
        subject: Set(certificate.subject.clone()),
        issuer: Set(certificate.issuer.clone()),
        serial_number: Set(certificate.serial_number.clone()),
        not_before: Set(certificate.not_before),
        not_after: Set(certificate.not_after),
        is_ca: Set(certificate.is_ca),
        ca_signed_pem: Set(certificate.ca_signed_pem.clone()),
        platform_signed_pem: Set(certificate.platform_signed_pem.clone()),
        chain_pem: Set(certificate.chain_pem.concat()),
        trusted: Set(certificate.trusted),
        upload_time: Set(certificate.upload_time),
        update_time: Set(certificate.update_time),
        trust_version: Set(0),
    }
}

/// Splits concatenated PEM blocks back into one string per certificate.
fn split_pems(concatenated: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    concatenated
        .split_inclusive(END)
        .map(str::trim)
        .filter(|block| block.ends_with(END))
        .map(|block| format!("{block}\n"))
        .collect()
}

/// Moves the trust-store version (and with `structural`, the structural version with it)
/// and answers the new version. Replicas refresh their in-memory store when it moves; the
/// row lock it takes orders concurrent writers, so versions commit in increasing order.
async fn bump_version(
    connection: &impl ConnectionTrait,
    structural: bool,
) -> Result<i64, sea_orm::DbErr> {
    let next = Expr::col(trust_versions::Column::Version).add(1);
    let mut update = trust_versions::Entity::update_many()
        .col_expr(trust_versions::Column::Version, next.clone())
        .filter(trust_versions::Column::Id.eq(1));
    if structural {
        update = update.col_expr(trust_versions::Column::StructuralVersion, next);
    }
    update.exec(connection).await?;
    trust_versions::Entity::find_by_id(1)
        .one(connection)
        .await?
        .map(|row| row.version)
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("trust_versions row is missing".into()))
}

/// Moves the version for `event` and writes the event to the feed's outbox with that
/// version, in the caller's transaction: the change and its event commit together or not
/// at all, and the version row's lock orders them.
pub(super) async fn record_trust_event(
    connection: &impl ConnectionTrait,
    structural: bool,
    event: &TrustEvent,
) -> Result<i64, sea_orm::DbErr> {
    let version = bump_version(connection, structural).await?;
    let payload = serde_json::to_string(event)
        .map_err(|error| sea_orm::DbErr::Custom(format!("trust event not encodable: {error}")))?;
    trust_events::ActiveModel {
        version: Set(version),
        payload: Set(payload),
        created_at: Set(Utc::now()),
    }
    .insert(connection)
    .await?;
    Ok(version)
}

/// The feed event of a stored certificate's trust facts as `model` holds them.
fn stored_event(model: &partner_certificates::Model) -> TrustEvent {
    TrustEvent::StoredCertificate(StoredTrustEntry {
        partner_domain: model.partner_domain.clone(),
        identity: model.identity.clone(),
        partner_id: model.partner_id.clone(),
        trusted: model.trusted,
        issuer_pem: (model.trusted && model.is_ca).then(|| model.ca_signed_pem.clone()),
    })
}

/// The trust facts of stored certificates, in this order: domain, identity, partner id,
/// trusted, CA-capable (what both a full rebuild and an incremental refresh read).
fn trust_facts() -> sea_orm::Select<partner_certificates::Entity> {
    partner_certificates::Entity::find()
        .select_only()
        .column(partner_certificates::Column::PartnerDomain)
        .column(partner_certificates::Column::Identity)
        .column(partner_certificates::Column::PartnerId)
        .column(partner_certificates::Column::Trusted)
        .column(partner_certificates::Column::IsCa)
}

/// Moves the version for a change of `model`'s trust facts and stamps the row with it; a
/// CA-capable certificate changes the issuer pool, which only a full rebuild picks up.
async fn stamp_trust_change(
    connection: &impl ConnectionTrait,
    model: &partner_certificates::Model,
) -> Result<i64, sea_orm::DbErr> {
    let version = record_trust_event(connection, model.is_ca, &stored_event(model)).await?;
    partner_certificates::Entity::update_many()
        .col_expr(
            partner_certificates::Column::TrustVersion,
            Expr::value(version),
        )
        .filter(partner_certificates::Column::CertificateId.eq(model.certificate_id.clone()))
        .exec(connection)
        .await?;
    Ok(version)
}

/// Records `partner_id` on a chip certificate stored before certificates were linked to
/// partners (its `partner_id` is empty); returns whether it did.
async fn link_partner_once(
    connection: &impl ConnectionTrait,
    certificate_id: &str,
    partner_id: &str,
) -> Result<bool, sea_orm::DbErr> {
    let linked = partner_certificates::Entity::update_many()
        .col_expr(
            partner_certificates::Column::PartnerId,
            Expr::value(partner_id.to_owned()),
        )
        .filter(partner_certificates::Column::CertificateId.eq(certificate_id.to_owned()))
        .filter(partner_certificates::Column::PartnerId.eq(""))
        .exec(connection)
        .await?
        .rows_affected;
    Ok(linked > 0)
}

/// Everything the trust store is built from, read through `connection` (a transaction at
/// one snapshot of the database, for an exact version).
async fn read_trust_data(connection: &impl ConnectionTrait) -> Result<TrustData, StoreError> {
    let version = trust_versions::Entity::find_by_id(1)
        .one(connection)
        .await?
        .ok_or_else(|| StoreError::Internal("trust_versions row is missing".into()))?
        .version;
    let ca_certificates = ca_certificates::Entity::find()
        .select_only()
        .column(ca_certificates::Column::PartnerDomain)
        .column(ca_certificates::Column::CertificatePem)
        .into_tuple::<(String, String)>()
        .all(connection)
        .await?;
    let entries = trust_facts()
        .into_tuple::<(String, String, String, bool, bool)>()
        .all(connection)
        .await?;
    let mut issuer_pems: std::collections::HashMap<(String, String), String> =
        partner_certificates::Entity::find()
            .select_only()
            .column(partner_certificates::Column::PartnerDomain)
            .column(partner_certificates::Column::Identity)
            .column(partner_certificates::Column::CaSignedPem)
            .filter(partner_certificates::Column::Trusted.eq(true))
            .filter(partner_certificates::Column::IsCa.eq(true))
            .into_tuple::<(String, String, String)>()
            .all(connection)
            .await?
            .into_iter()
            .map(|(domain, identity, pem)| ((domain, identity), pem))
            .collect();
    let stored_certificates = entries
        .into_iter()
        .map(|(partner_domain, identity, partner_id, trusted, is_ca)| {
            let issuer_pem = (trusted && is_ca)
                .then(|| issuer_pems.remove(&(partner_domain.clone(), identity.clone())))
                .flatten();
            StoredTrustEntry {
                partner_domain,
                identity,
                partner_id,
                trusted,
                issuer_pem,
            }
        })
        .collect();
    let deactivated_partners = deactivated_partners::Entity::find()
        .select_only()
        .column(deactivated_partners::Column::PartnerId)
        .into_tuple::<String>()
        .all(connection)
        .await?;
    let revoked = revocations::Entity::find()
        .select_only()
        .column(revocations::Column::PartnerDomain)
        .column(revocations::Column::Identity)
        .into_tuple::<(String, String)>()
        .all(connection)
        .await?
        .into_iter()
        .map(|(partner_domain, identity)| RevokedCertificate {
            partner_domain,
            identity,
        })
        .collect();
    Ok(TrustData {
        version,
        ca_certificates,
        stored_certificates,
        deactivated_partners,
        revoked,
    })
}

#[async_trait]
impl CertificateRepository for SqlCertificateRepository {
    async fn ca_exists(&self, partner_domain: &str, identity: &str) -> Result<bool, StoreError> {
        Ok(self
            .find_ca_by_identity(partner_domain, identity)
            .await?
            .is_some())
    }

    async fn insert_ca_certificates(
        &self,
        certificates: &[CaCertificate],
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        if certificates.is_empty() {
            return Ok(());
        }
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            for certificate in certificates {
                ca_to_active(certificate).insert(&transaction).await?;
            }
            for event in audit {
                pmp_common::audit::record(&transaction, event).await?;
            }
            for certificate in certificates {
                let event = TrustEvent::CaCertificateAdded {
                    partner_domain: certificate.partner_domain.clone(),
                    certificate_pem: certificate.certificate_pem.clone(),
                };
                record_trust_event(&transaction, true, &event).await?;
            }
            transaction.commit().await
        }
        .await;
        match result {
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(StoreError::DuplicateCa)
            }
            other => Ok(other?),
        }
    }

    async fn find_ca(&self, certificate_id: &str) -> Result<Option<CaCertificate>, StoreError> {
        ca_certificates::Entity::find_by_id(certificate_id.to_owned())
            .one(&self.connection)
            .await?
            .map(ca_to_domain)
            .transpose()
    }

    async fn find_ca_by_identity(
        &self,
        partner_domain: &str,
        identity: &str,
    ) -> Result<Option<CaCertificate>, StoreError> {
        ca_certificates::Entity::find()
            .filter(ca_certificates::Column::PartnerDomain.eq(partner_domain.to_owned()))
            .filter(ca_certificates::Column::Identity.eq(identity.to_owned()))
            .one(&self.connection)
            .await?
            .map(ca_to_domain)
            .transpose()
    }

    async fn list_ca(
        &self,
        filter: &CaFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<CaPage, StoreError> {
        let mut query = ca_certificates::Entity::find();
        if let Some(domain) = &filter.partner_domain {
            query = query.filter(ca_certificates::Column::PartnerDomain.eq(domain.clone()));
        }
        if let Some(ca_type) = filter.ca_type {
            query = query.filter(ca_certificates::Column::CaType.eq(ca_type.as_str()));
        }
        let counted = query.clone();
        if let Some(after) = after {
            query = query.filter(ca_certificates::Column::CertificateId.gt(after.to_owned()));
        }
        // Count and page on two pooled connections at once: neither waits for the other.
        let (total_size, mut models) = tokio::try_join!(
            counted.count(&self.connection),
            query
                .order_by_asc(ca_certificates::Column::CertificateId)
                .limit(limit + 1)
                .all(&self.connection),
        )?;
        let has_more = models.len() as u64 > limit;
        models.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let ca_certificates = models
            .into_iter()
            .map(ca_to_domain)
            .collect::<Result<_, _>>()?;
        Ok(CaPage {
            ca_certificates,
            has_more,
            total_size,
        })
    }

    async fn find_partner_certificate(
        &self,
        certificate_id: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError> {
        partner_certificates::Entity::find_by_id(certificate_id.to_owned())
            .one(&self.connection)
            .await?
            .map(partner_to_domain)
            .transpose()
    }

    async fn find_partner_certificate_by_identity(
        &self,
        partner_domain: &str,
        identity: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError> {
        partner_certificates::Entity::find()
            .filter(partner_certificates::Column::PartnerDomain.eq(partner_domain.to_owned()))
            .filter(partner_certificates::Column::Identity.eq(identity.to_owned()))
            .one(&self.connection)
            .await?
            .map(partner_to_domain)
            .transpose()
    }

    async fn insert_partner_certificate(
        &self,
        certificate: &PartnerCertificate,
        audit: AuditEvent,
    ) -> Result<PartnerCertificate, StoreError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            let mut row = partner_to_active(certificate);
            let event = stored_event(&row.clone().try_into_model()?);
            row.trust_version =
                Set(record_trust_event(&transaction, certificate.is_ca, &event).await?);
            row.insert(&transaction).await?;
            pmp_common::audit::record(&transaction, audit).await?;
            transaction.commit().await
        }
        .await;
        match result {
            Ok(()) => Ok(certificate.clone()),
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                self.find_partner_certificate_by_identity(
                    &certificate.partner_domain,
                    &certificate.identity,
                )
                .await?
                .ok_or_else(|| StoreError::Internal("unique violation without a stored row".into()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn set_trusted(
        &self,
        certificate_id: &str,
        trusted: bool,
        link_partner: Option<&str>,
        actor: &str,
    ) -> Result<Option<PartnerCertificate>, StoreError> {
        // Write first, conditionally: the statement takes the write lock at once (SQLite
        // then waits on its busy timeout instead of failing a lock upgrade) and only one of
        // several identical concurrent calls changes the row, audits and moves the version.
        let transaction = self.connection.begin().await?;
        let linked = match link_partner {
            Some(partner_id) => link_partner_once(&transaction, certificate_id, partner_id).await?,
            None => false,
        };
        let changed = partner_certificates::Entity::update_many()
            .col_expr(partner_certificates::Column::Trusted, Expr::value(trusted))
            .col_expr(
                partner_certificates::Column::UpdateTime,
                Expr::value(Utc::now()),
            )
            .filter(partner_certificates::Column::CertificateId.eq(certificate_id.to_owned()))
            .filter(partner_certificates::Column::Trusted.ne(trusted))
            .exec(&transaction)
            .await?
            .rows_affected;
        if changed > 0 {
            let (before, after, action) = if trusted {
                ("UNTRUSTED", "TRUSTED", "CERTIFICATE_TRUSTED")
            } else {
                ("TRUSTED", "UNTRUSTED", "CERTIFICATE_UNTRUSTED")
            };
            let event = AuditEvent::now(actor, action, certificate_id, Some(before), Some(after));
            pmp_common::audit::record(&transaction, event).await?;
        }
        let model = partner_certificates::Entity::find_by_id(certificate_id.to_owned())
            .one(&transaction)
            .await?;
        let Some(mut model) = model else {
            return Ok(None);
        };
        if changed > 0 || linked {
            model.trust_version = stamp_trust_change(&transaction, &model).await?;
        }
        if let Some(partner_id) = link_partner
            && model.partner_id != partner_id
        {
            return Err(StoreError::PartnerMismatch);
        }
        transaction.commit().await?;
        partner_to_domain(model).map(Some)
    }

    async fn set_partner_deactivated(
        &self,
        partner_id: &str,
        deactivated: bool,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let transaction = self.connection.begin().await?;
        let changed = if deactivated {
            let row = deactivated_partners::ActiveModel {
                partner_id: Set(partner_id.to_owned()),
                deactivated_time: Set(Utc::now()),
            };
            deactivated_partners::Entity::insert(row)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::column(deactivated_partners::Column::PartnerId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await?
        } else {
            deactivated_partners::Entity::delete_by_id(partner_id.to_owned())
                .exec(&transaction)
                .await?
                .rows_affected
        };
        if changed > 0 {
            let (before, after, action) = if deactivated {
                ("ACTIVE", "DEACTIVATED", "PARTNER_DEACTIVATED")
            } else {
                ("DEACTIVATED", "ACTIVE", "PARTNER_REACTIVATED")
            };
            let event = AuditEvent::now(actor, action, partner_id, Some(before), Some(after));
            pmp_common::audit::record(&transaction, event).await?;
            let change = TrustEvent::Partner {
                partner_id: partner_id.to_owned(),
                deactivated,
            };
            record_trust_event(&transaction, true, &change).await?;
        }
        transaction.commit().await?;
        Ok(changed > 0)
    }

    async fn is_partner_deactivated(&self, partner_id: &str) -> Result<bool, StoreError> {
        Ok(
            deactivated_partners::Entity::find_by_id(partner_id.to_owned())
                .one(&self.connection)
                .await?
                .is_some(),
        )
    }

    async fn trust_version(&self) -> Result<i64, StoreError> {
        Ok(self.versions().await?.version)
    }

    async fn trust_data(&self) -> Result<TrustData, StoreError> {
        // One read-only transaction at a snapshot of the database, so the data is exactly
        // the data of the version read with it (a feed's snapshot and its events line up).
        let transaction = if self.connection.get_database_backend() == DbBackend::Postgres {
            self.connection
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        } else {
            self.connection.begin().await?
        };
        let data = read_trust_data(&transaction).await?;
        transaction.commit().await?;
        Ok(data)
    }

    async fn trust_changes(&self, since: i64) -> Result<TrustChanges, StoreError> {
        // Versions first, as in `trust_data`: every row stamped up to `version` has committed.
        let versions = self.versions().await?;
        let mut changes = TrustChanges {
            version: versions.version,
            structural_version: versions.structural_version,
            changed: Vec::new(),
        };
        if versions.structural_version > since || versions.version <= since {
            return Ok(changes);
        }
        changes.changed = trust_facts()
            .column(partner_certificates::Column::TrustVersion)
            .filter(partner_certificates::Column::TrustVersion.gt(since))
            .filter(partner_certificates::Column::TrustVersion.lte(versions.version))
            .into_tuple::<(String, String, String, bool, bool, i64)>()
            .all(&self.connection)
            .await?
            .into_iter()
            .map(
                |(partner_domain, identity, partner_id, trusted, is_ca, trust_version)| {
                    StoredTrustChange {
                        partner_domain,
                        identity,
                        partner_id,
                        trusted,
                        is_ca,
                        trust_version,
                    }
                },
            )
            .collect();
        Ok(changes)
    }

    #[cfg(feature = "testing")]
    async fn audit_events(&self, entity_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(pmp_common::audit::events_of(&self.connection, entity_id).await?)
    }

    async fn platform_keys(&self) -> Result<Vec<PlatformKeyRecord>, StoreError> {
        platform_signing_keys::Entity::find()
            .order_by_asc(platform_signing_keys::Column::AddedAt)
            .order_by_asc(platform_signing_keys::Column::KeyId)
            .all(&self.connection)
            .await?
            .into_iter()
            .map(platform_key_to_domain)
            .collect()
    }

    async fn adopt_initial_platform_key(&self, key: &PlatformKeyRecord) -> Result<(), StoreError> {
        let (key_label, key_file) = key.location.columns();
        let values = vec![
            Expr::val(key.key_id.clone()),
            Expr::val(key.certificate_pem.clone()),
            Expr::val(key_label),
            Expr::val(key_file),
            Expr::val(key.state.as_str()),
            Expr::val(key.not_after),
            Expr::val(key.added_at),
            Expr::val(key.activated_at),
            Expr::val(key.retired_at),
        ];
        let columns = [
            "key_id",
            "certificate_pem",
            "key_label",
            "key_file",
            "state",
            "not_after",
            "added_at",
            "activated_at",
            "retired_at",
        ];
        Ok(rotation::adopt_initial(&self.connection, PLATFORM_KEYS, &columns, values).await?)
    }

    async fn insert_platform_key(
        &self,
        key: &PlatformKeyRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let result: Result<(), sea_orm::DbErr> = async {
            let transaction = self.connection.begin().await?;
            platform_key_to_active(key).insert(&transaction).await?;
            pmp_common::audit::record(&transaction, audit).await?;
            transaction.commit().await
        }
        .await;
        match result {
            Err(error) if pmp_common::db::is_unique_violation(&error) => {
                Err(StoreError::DuplicateCa)
            }
            other => Ok(other?),
        }
    }

    async fn activate_platform_key(
        &self,
        key_id: &str,
        now: chrono::DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<PlatformKeyRecord, StoreError> {
        let transaction = self.connection.begin().await?;
        match rotation::activate(&transaction, PLATFORM_KEYS, key_id, now, now).await? {
            Activation::Unknown => return Err(StoreError::CertificateNotFound),
            Activation::AlreadyActive => transaction.rollback().await?,
            Activation::Activated => {
                pmp_common::audit::record(&transaction, audit).await?;
                transaction.commit().await?;
            }
        }
        let row = platform_signing_keys::Entity::find_by_id(key_id.to_owned())
            .one(&self.connection)
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        platform_key_to_domain(row)
    }
}

fn platform_key_to_active(key: &PlatformKeyRecord) -> platform_signing_keys::ActiveModel {
    let (key_label, key_file) = key.location.columns();
    platform_signing_keys::ActiveModel {
        key_id: Set(key.key_id.clone()),
        certificate_pem: Set(key.certificate_pem.clone()),
        key_label: Set(key_label),
        key_file: Set(key_file),
        state: Set(key.state.as_str().to_owned()),
        not_after: Set(key.not_after),
        added_at: Set(key.added_at),
        activated_at: Set(key.activated_at),
        retired_at: Set(key.retired_at),
    }
}

fn platform_key_to_domain(
    row: platform_signing_keys::Model,
) -> Result<PlatformKeyRecord, StoreError> {
    let state = PlatformKeyState::parse(&row.state).ok_or_else(|| {
        StoreError::Internal(format!(
            "platform key {} has state {:?}",
            row.key_id, row.state
        ))
    })?;
    let location = KeyLocation::from_columns(row.key_label, row.key_file).ok_or_else(|| {
        StoreError::Internal(format!(
            "platform key {} names no single key location",
            row.key_id
        ))
    })?;
    Ok(PlatformKeyRecord {
        key_id: row.key_id,
        certificate_pem: row.certificate_pem,
        location,
        state,
        not_after: row.not_after,
        added_at: row.added_at,
        activated_at: row.activated_at,
        retired_at: row.retired_at,
    })
}

#[cfg(test)]
mod tests {
    use super::split_pems;

    #[test]
    fn split_pems_round_trips_concatenation() {
        let a = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        assert_eq!(
            split_pems(&format!("{a}{b}")),
            vec![a.to_owned(), b.to_owned()]
        );
        assert!(split_pems("").is_empty());
    }
}
