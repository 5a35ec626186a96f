//! Conversions of the trust feed, revocation, CRL and expiry RPCs.

use pmp_common::pagination;
use pmp_common::time::timestamp;
use pmp_proto::certstore::v1 as proto;

use super::{invalid, required};
use crate::domain::{
    CertificateKind, ExpiringCertificate, ExpiryNotice, RecordedTrustEvent, Revocation,
    RevocationReason, StoredTrustEntry, TrustEvent,
};
use crate::error::StoreError;
use crate::service::{
    Crl, CrlRequest, ExpiringPage, FeedMessage, ListExpiring, Revoke, Revoked, WatchTrust,
};

/// The longest comment a revocation keeps.
const MAX_COMMENT_CHARS: usize = 1024;
/// The furthest `ListExpiringCertificates` looks ahead.
const MAX_WITHIN_DAYS: i64 = 3650;

impl TryFrom<proto::RevokeCertificateRequest> for Revoke {
    type Error = StoreError;

    fn try_from(request: proto::RevokeCertificateRequest) -> Result<Self, StoreError> {
        required("certificate_id", &request.certificate_id)?;
        let reason = u8::try_from(request.reason)
            .map_err(|_| format!("revocation reason {} is not offered", request.reason))
            .and_then(RevocationReason::try_from)
            .map_err(|message| invalid("reason", message))?;
        let comment = request.comment.trim().to_owned();
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(invalid(
                "comment",
                format!("comment must be at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
        Ok(Revoke {
            certificate_id: request.certificate_id.trim().to_owned(),
            reason,
            comment,
        })
    }
}

impl TryFrom<proto::WatchTrustChangesRequest> for WatchTrust {
    type Error = StoreError;

    fn try_from(request: proto::WatchTrustChangesRequest) -> Result<Self, StoreError> {
        if request.from_version < 0 {
            return Err(invalid("from_version", "from_version must not be negative"));
        }
        Ok(WatchTrust {
            partner_domains: request.partner_domains,
            from_version: request.from_version,
        })
    }
}

impl TryFrom<proto::GetCrlRequest> for CrlRequest {
    type Error = StoreError;

    fn try_from(request: proto::GetCrlRequest) -> Result<Self, StoreError> {
        required("partner_domain", &request.partner_domain)?;
        Ok(CrlRequest {
            partner_domain: request.partner_domain,
        })
    }
}

impl TryFrom<proto::ListExpiringCertificatesRequest> for ListExpiring {
    type Error = StoreError;

    fn try_from(request: proto::ListExpiringCertificatesRequest) -> Result<Self, StoreError> {
        let within = request
            .within
            .and_then(|within| {
                let nanos = i64::from(within.nanos);
                chrono::Duration::try_seconds(within.seconds)
                    .and_then(|seconds| seconds.checked_add(&chrono::Duration::nanoseconds(nanos)))
            })
            .filter(|within| {
                *within > chrono::Duration::zero() && within.num_days() <= MAX_WITHIN_DAYS
            })
            .ok_or_else(|| {
                invalid(
                    "within",
                    format!(
                        "within is required: a positive duration of at most {MAX_WITHIN_DAYS} days"
                    ),
                )
            })?;
        let kind = match proto::CertificateKind::try_from(request.kind) {
            Ok(proto::CertificateKind::Unspecified) => None,
            Ok(proto::CertificateKind::CaCertificate) => Some(CertificateKind::Ca),
            Ok(proto::CertificateKind::PartnerCertificate) => Some(CertificateKind::Partner),
            Ok(proto::CertificateKind::FtmCertificate) => Some(CertificateKind::Ftm),
            Err(_) => return Err(invalid("kind", "unknown certificate kind")),
        };
        Ok(ListExpiring {
            within,
            partner_domain: request.partner_domain,
            kind,
            page_size: pagination::page_size(request.page_size)?,
            page_token: request.page_token,
        })
    }
}

impl From<CertificateKind> for proto::CertificateKind {
    fn from(kind: CertificateKind) -> Self {
        match kind {
            CertificateKind::Ca => proto::CertificateKind::CaCertificate,
            CertificateKind::Partner => proto::CertificateKind::PartnerCertificate,
            CertificateKind::Ftm => proto::CertificateKind::FtmCertificate,
        }
    }
}

impl From<Revocation> for proto::CertificateRevocation {
    fn from(revocation: Revocation) -> Self {
        proto::CertificateRevocation {
            partner_domain: revocation.partner_domain,
            identity: revocation.identity,
            certificate_id: revocation.certificate_id,
            kind: proto::CertificateKind::from(revocation.kind).into(),
            reason: i32::from(revocation.reason.code()),
            comment: revocation.comment,
            revocation_time: Some(timestamp(revocation.revoked_at)),
        }
    }
}

impl From<Revoked> for proto::RevokeCertificateResponse {
    fn from(revoked: Revoked) -> Self {
        proto::RevokeCertificateResponse {
            revocation: Some(revoked.revocation.into()),
            version: revoked.version,
        }
    }
}

impl From<Crl> for proto::GetCrlResponse {
    fn from(crl: Crl) -> Self {
        proto::GetCrlResponse {
            crl: crl.der,
            this_update: Some(timestamp(crl.this_update)),
            next_update: Some(timestamp(crl.next_update)),
            revoked_count: i32::try_from(crl.revoked_count).unwrap_or(i32::MAX),
        }
    }
}

impl From<ExpiringCertificate> for proto::ExpiringCertificate {
    fn from(certificate: ExpiringCertificate) -> Self {
        proto::ExpiringCertificate {
            certificate_id: certificate.certificate_id,
            kind: proto::CertificateKind::from(certificate.kind).into(),
            partner_domain: certificate.partner_domain,
            partner_id: certificate.partner_id,
            owner_id: certificate.owner_id,
            subject: certificate.subject,
            expiry_time: Some(timestamp(certificate.not_after)),
        }
    }
}

impl From<ExpiringPage> for proto::ListExpiringCertificatesResponse {
    fn from(page: ExpiringPage) -> Self {
        proto::ListExpiringCertificatesResponse {
            certificates: page.certificates.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: i64::try_from(page.total_size).unwrap_or(i64::MAX),
        }
    }
}

fn stored_trust(entry: StoredTrustEntry) -> proto::StoredCertificateTrust {
    proto::StoredCertificateTrust {
        partner_domain: entry.partner_domain,
        identity: entry.identity,
        partner_id: entry.partner_id,
        trusted: entry.trusted,
        issuer_pem: entry.issuer_pem.unwrap_or_default(),
    }
}

fn expiring(notice: ExpiryNotice) -> proto::CertificateExpiring {
    proto::CertificateExpiring {
        partner_domain: notice.partner_domain,
        certificate_id: notice.certificate_id,
        kind: proto::CertificateKind::from(notice.kind).into(),
        expiry_time: Some(timestamp(notice.expiry_time)),
        threshold_days: i32::try_from(notice.threshold_days).unwrap_or(i32::MAX),
    }
}

fn event_change(event: TrustEvent) -> proto::trust_change::Change {
    use proto::trust_change::Change;
    match event {
        TrustEvent::CaCertificateAdded {
            partner_domain,
            certificate_pem,
        } => Change::CaCertificateAdded(proto::TrustCaCertificate {
            partner_domain,
            certificate_pem,
        }),
        TrustEvent::StoredCertificate(entry) => Change::StoredCertificate(stored_trust(entry)),
        TrustEvent::Partner {
            partner_id,
            deactivated,
        } => Change::Partner(proto::PartnerTrust {
            partner_id,
            deactivated,
        }),
        TrustEvent::Revoked(revocation) => Change::CertificateRevoked(revocation.into()),
        TrustEvent::Expiring(notice) => Change::CertificateExpiring(expiring(notice)),
    }
}

/// A feed message on the wire.
pub(crate) fn feed_message(message: FeedMessage) -> proto::TrustChange {
    use proto::trust_change::Change;
    match message {
        FeedMessage::Snapshot {
            data,
            policies,
            last,
        } => proto::TrustChange {
            version: data.version,
            time: Some(timestamp(chrono::Utc::now())),
            change: Some(Change::Snapshot(proto::TrustSnapshot {
                policies: policies
                    .into_iter()
                    .map(|(partner_domain, policy)| proto::DomainTrustPolicy {
                        partner_domain,
                        policy: policy.as_str().to_owned(),
                    })
                    .collect(),
                ca_certificates: data
                    .ca_certificates
                    .into_iter()
                    .map(
                        |(partner_domain, certificate_pem)| proto::TrustCaCertificate {
                            partner_domain,
                            certificate_pem,
                        },
                    )
                    .collect(),
                stored_certificates: data
                    .stored_certificates
                    .into_iter()
                    .map(stored_trust)
                    .collect(),
                deactivated_partner_ids: data.deactivated_partners,
                revocations: data
                    .revoked
                    .into_iter()
                    .map(|revoked| proto::CertificateRevocation {
                        partner_domain: revoked.partner_domain,
                        identity: revoked.identity,
                        ..Default::default()
                    })
                    .collect(),
                last,
            })),
        },
        FeedMessage::Event(RecordedTrustEvent {
            version,
            time,
            event,
        }) => proto::TrustChange {
            version,
            time: Some(timestamp(time)),
            change: Some(event_change(event)),
        },
        FeedMessage::Heartbeat { version } => proto::TrustChange {
            version,
            time: Some(timestamp(chrono::Utc::now())),
            change: Some(Change::Heartbeat(proto::Heartbeat {})),
        },
    }
}
