//! Storage of revocations, the trust feed's outbox and expiry notices.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::TrustFeedRepository;
use super::entities::{
    ca_certificates, expiry_notices, partner_certificates, revocations, trust_events,
};
use super::sql::{SqlCertificateRepository, record_trust_event};
use crate::domain::{
    AuditEvent, CertificateKind, ExpiringCertificate, ExpiringFilter, ExpiryNotice,
    RecordedTrustEvent, Revocation, RevocationReason, TrustEvent,
};
use crate::error::StoreError;

/// Certificate ids per `IN (...)` list, well below every backend's bound on parameters.
const COPIES_PER_QUERY: usize = 500;

fn revocation_to_domain(model: revocations::Model) -> Result<Revocation, StoreError> {
    let kind = CertificateKind::parse(&model.certificate_kind).ok_or_else(|| {
        StoreError::Internal(format!(
            "unknown certificate kind {}",
            model.certificate_kind
        ))
    })?;
    let reason = u8::try_from(model.reason_code)
        .map_err(|error| error.to_string())
        .and_then(RevocationReason::try_from)
        .map_err(|error| StoreError::Internal(format!("stored revocation reason: {error}")))?;
    Ok(Revocation {
        partner_domain: model.partner_domain,
        identity: model.identity,
        certificate_id: model.certificate_id,
        kind,
        serial_number: model.serial_number,
        reason,
        comment: model.comment,
        revoked_by: model.revoked_by,
        revoked_at: model.revoked_at,
    })
}

/// Orders rows by expiry, then id, after the page cursor `(not_after, certificate_id)`.
fn after_cursor<C: ColumnTrait>(
    not_after: C,
    certificate_id: C,
    cursor: Option<&(DateTime<Utc>, String)>,
) -> Condition {
    match cursor {
        None => Condition::all(),
        Some((time, id)) => Condition::any().add(not_after.gt(*time)).add(
            Condition::all()
                .add(not_after.eq(*time))
                .add(certificate_id.gt(id.clone())),
        ),
    }
}

#[async_trait]
impl TrustFeedRepository for SqlCertificateRepository {
    async fn revoke(&self, revocation: &Revocation, audit: AuditEvent) -> Result<i64, StoreError> {
        let transaction = self.connection().begin().await?;
        let inserted = revocations::Entity::insert(revocations::ActiveModel {
            partner_domain: Set(revocation.partner_domain.clone()),
            identity: Set(revocation.identity.clone()),
            certificate_id: Set(revocation.certificate_id.clone()),
            certificate_kind: Set(revocation.kind.as_str().to_owned()),
            serial_number: Set(revocation.serial_number.clone()),
            reason_code: Set(i32::from(revocation.reason.code())),
            comment: Set(revocation.comment.clone()),
            revoked_by: Set(revocation.revoked_by.clone()),
            revoked_at: Set(revocation.revoked_at),
        })
        .on_conflict(
            OnConflict::columns([
                revocations::Column::PartnerDomain,
                revocations::Column::Identity,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        if inserted == 0 {
            return Err(StoreError::Revoked);
        }
        pmp_common::audit::record(&transaction, audit).await?;
        let version =
            record_trust_event(&transaction, true, &TrustEvent::Revoked(revocation.clone()))
                .await?;
        transaction.commit().await?;
        Ok(version)
    }

    async fn revoked_copies(
        &self,
        partner_domain: &str,
    ) -> Result<Vec<(Revocation, String)>, StoreError> {
        let revoked: Vec<Revocation> = revocations::Entity::find()
            .filter(revocations::Column::PartnerDomain.eq(partner_domain.to_owned()))
            .filter(revocations::Column::CertificateKind.ne(CertificateKind::Ca.as_str()))
            .order_by_asc(revocations::Column::RevokedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(revocation_to_domain)
            .collect::<Result<_, _>>()?;
        // The copies in a few statements rather than one per revocation.
        let mut copies = std::collections::HashMap::new();
        for ids in revoked.chunks(COPIES_PER_QUERY) {
            let ids: Vec<String> = ids.iter().map(|r| r.certificate_id.clone()).collect();
            copies.extend(
                partner_certificates::Entity::find()
                    .select_only()
                    .column(partner_certificates::Column::CertificateId)
                    .column(partner_certificates::Column::PlatformSignedPem)
                    .filter(partner_certificates::Column::CertificateId.is_in(ids))
                    .into_tuple::<(String, String)>()
                    .all(self.connection())
                    .await?,
            );
        }
        Ok(revoked
            .into_iter()
            .filter_map(|revocation| {
                let copy = copies.remove(&revocation.certificate_id)?;
                Some((revocation, copy))
            })
            .collect())
    }

    async fn trust_events_after(
        &self,
        version: i64,
        limit: u64,
    ) -> Result<Vec<RecordedTrustEvent>, StoreError> {
        trust_events::Entity::find()
            .filter(trust_events::Column::Version.gt(version))
            .order_by_asc(trust_events::Column::Version)
            .limit(limit)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|row| {
                let event = serde_json::from_str(&row.payload).map_err(|error| {
                    StoreError::Internal(format!("trust event {} unreadable: {error}", row.version))
                })?;
                Ok(RecordedTrustEvent {
                    version: row.version,
                    time: row.created_at,
                    event,
                })
            })
            .collect()
    }

    async fn oldest_trust_event(&self) -> Result<Option<i64>, StoreError> {
        Ok(trust_events::Entity::find()
            .select_only()
            .column_as(trust_events::Column::Version.min(), "oldest")
            .into_tuple::<Option<i64>>()
            .one(self.connection())
            .await?
            .flatten())
    }

    async fn prune_trust_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(trust_events::Entity::delete_many()
            .filter(trust_events::Column::CreatedAt.lt(before))
            .exec(self.connection())
            .await?
            .rows_affected)
    }

    async fn expiring_certificates(
        &self,
        filter: &ExpiringFilter,
        cursor: Option<&(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<(Vec<ExpiringCertificate>, u64), StoreError> {
        let mut found = Vec::new();
        let mut total = 0;
        if filter.kind.is_none_or(|kind| kind == CertificateKind::Ca) {
            let mut query = ca_certificates::Entity::find()
                .filter(ca_certificates::Column::NotAfter.gt(filter.after))
                .filter(ca_certificates::Column::NotAfter.lte(filter.until));
            if let Some(domain) = &filter.partner_domain {
                query = query.filter(ca_certificates::Column::PartnerDomain.eq(domain.clone()));
            }
            total += query.clone().count(self.connection()).await?;
            let rows = query
                .filter(after_cursor(
                    ca_certificates::Column::NotAfter,
                    ca_certificates::Column::CertificateId,
                    cursor,
                ))
                .order_by_asc(ca_certificates::Column::NotAfter)
                .order_by_asc(ca_certificates::Column::CertificateId)
                .limit(limit)
                .all(self.connection())
                .await?;
            found.extend(rows.into_iter().map(|row| ExpiringCertificate {
                certificate_id: row.certificate_id,
                kind: CertificateKind::Ca,
                partner_domain: row.partner_domain,
                partner_id: String::new(),
                owner_id: String::new(),
                subject: row.subject,
                not_after: row.not_after,
            }));
        }
        let owner_types: Vec<&str> = match filter.kind {
            None => vec!["PARTNER", "FTM"],
            Some(CertificateKind::Ca) => Vec::new(),
            Some(kind) => vec![kind.as_str()],
        };
        if !owner_types.is_empty() {
            let mut query = partner_certificates::Entity::find()
                .filter(partner_certificates::Column::NotAfter.gt(filter.after))
                .filter(partner_certificates::Column::NotAfter.lte(filter.until))
                .filter(partner_certificates::Column::OwnerType.is_in(owner_types));
            if let Some(domain) = &filter.partner_domain {
                query =
                    query.filter(partner_certificates::Column::PartnerDomain.eq(domain.clone()));
            }
            total += query.clone().count(self.connection()).await?;
            let rows = query
                .filter(after_cursor(
                    partner_certificates::Column::NotAfter,
                    partner_certificates::Column::CertificateId,
                    cursor,
                ))
                .order_by_asc(partner_certificates::Column::NotAfter)
                .order_by_asc(partner_certificates::Column::CertificateId)
                .limit(limit)
                .all(self.connection())
                .await?;
            for row in rows {
                let kind = if row.owner_type == "FTM" {
                    CertificateKind::Ftm
                } else {
                    CertificateKind::Partner
                };
                found.push(ExpiringCertificate {
                    certificate_id: row.certificate_id,
                    kind,
                    partner_domain: row.partner_domain,
                    partner_id: row.partner_id,
                    owner_id: row.owner_id,
                    subject: row.subject,
                    not_after: row.not_after,
                });
            }
        }
        found.sort_by(|left, right| {
            (left.not_after, &left.certificate_id).cmp(&(right.not_after, &right.certificate_id))
        });
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((found, total))
    }

    async fn record_expiry_notice(&self, notice: &ExpiryNotice) -> Result<bool, StoreError> {
        let transaction = self.connection().begin().await?;
        let inserted = expiry_notices::Entity::insert(expiry_notices::ActiveModel {
            certificate_id: Set(notice.certificate_id.clone()),
            threshold_days: Set(i32::try_from(notice.threshold_days).unwrap_or(i32::MAX)),
            noticed_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([
                expiry_notices::Column::CertificateId,
                expiry_notices::Column::ThresholdDays,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        if inserted > 0 {
            record_trust_event(&transaction, true, &TrustEvent::Expiring(notice.clone())).await?;
        }
        transaction.commit().await?;
        Ok(inserted > 0)
    }

    async fn expiring_counts(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, CertificateKind, u64)>, StoreError> {
        let cas = ca_certificates::Entity::find()
            .select_only()
            .column(ca_certificates::Column::PartnerDomain)
            .column_as(ca_certificates::Column::CertificateId.count(), "count")
            .filter(ca_certificates::Column::NotAfter.gt(after))
            .filter(ca_certificates::Column::NotAfter.lte(until))
            .group_by(ca_certificates::Column::PartnerDomain)
            .into_tuple::<(String, i64)>()
            .all(self.connection())
            .await?;
        let stored = partner_certificates::Entity::find()
            .select_only()
            .column(partner_certificates::Column::PartnerDomain)
            .column(partner_certificates::Column::OwnerType)
            .column_as(partner_certificates::Column::CertificateId.count(), "count")
            .filter(partner_certificates::Column::NotAfter.gt(after))
            .filter(partner_certificates::Column::NotAfter.lte(until))
            .group_by(partner_certificates::Column::PartnerDomain)
            .group_by(partner_certificates::Column::OwnerType)
            .into_tuple::<(String, String, i64)>()
            .all(self.connection())
            .await?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        let mut counts: Vec<_> = cas
            .into_iter()
            .map(|(domain, value)| (domain, CertificateKind::Ca, count(value)))
            .collect();
        counts.extend(
            stored
                .into_iter()
                .filter_map(|(domain, owner_type, value)| {
                    CertificateKind::parse(&owner_type).map(|kind| (domain, kind, count(value)))
                }),
        );
        Ok(counts)
    }
}
