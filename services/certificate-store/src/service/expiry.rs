//! Certificates that expire soon: `ListExpiringCertificates`, the sweep that announces each
//! certificate crossing a threshold once on the trust feed, and the gauges.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use prometheus::{IntGaugeVec, Opts};

use pmp_common::auth::Caller;
use pmp_common::pagination::{self, PageError};

use super::{CertificateStoreService, ListExpiring, authorize, spawn_every};
use crate::domain::{CertificateKind, ExpiringCertificate, ExpiringFilter, ExpiryNotice};
use crate::error::StoreError;
use crate::storage::CertificateRepository;

/// The thresholds announced and measured, in days, widest first.
pub(crate) const THRESHOLDS_DAYS: [u32; 2] = [30, 7];
/// Page size of the sweep's reads.
const SWEEP_PAGE: u64 = 500;

/// One page of expiring certificates.
#[derive(Debug, Clone)]
pub(crate) struct ExpiringPage {
    pub(crate) certificates: Vec<ExpiringCertificate>,
    pub(crate) next_page_token: String,
    pub(crate) total_size: u64,
}

/// What a page token is bound to: the filters that choose the rows (the window moves with
/// the clock, so it is left out).
fn token_query(filter: &ExpiringFilter) -> String {
    format!(
        "expiring|{}|{}",
        filter.partner_domain.as_deref().unwrap_or(""),
        filter.kind.map_or("", CertificateKind::as_str)
    )
}

impl CertificateStoreService {
    /// `ListExpiringCertificates`: soonest first, after the page token.
    pub(crate) async fn list_expiring(
        &self,
        caller: &Caller,
        request: ListExpiring,
    ) -> Result<ExpiringPage, StoreError> {
        authorize(caller, &request)?;
        let partner_domain = match request.partner_domain.trim() {
            "" => None,
            domain => Some(self.domain(domain)?),
        };
        let now = Utc::now();
        let filter = ExpiringFilter {
            after: now,
            until: now + request.within,
            partner_domain,
            kind: request.kind,
        };
        let query = token_query(&filter);
        let cursor = pagination::decode_token::<(i64, String)>(&request.page_token, &query)?
            .map(|(seconds, id)| {
                chrono::DateTime::from_timestamp(seconds, 0)
                    .map(|time| (time, id))
                    .ok_or(PageError::InvalidPageToken)
            })
            .transpose()?;
        let (mut certificates, total_size) = self
            .repository
            .expiring_certificates(&filter, cursor.as_ref(), request.page_size + 1)
            .await?;
        let more = certificates.len() as u64 > request.page_size;
        certificates.truncate(usize::try_from(request.page_size).unwrap_or(usize::MAX));
        let next_page_token = match certificates.last() {
            Some(last) if more => pagination::encode_token(
                &(last.not_after.timestamp(), last.certificate_id.clone()),
                &query,
            ),
            _ => String::new(),
        };
        Ok(ExpiringPage {
            certificates,
            next_page_token,
            total_size,
        })
    }
}

/// Announces every certificate that is within a threshold and was not announced for it
/// yet; returns how many notices were new.
pub(crate) async fn sweep(repository: &dyn CertificateRepository) -> Result<usize, StoreError> {
    let now = Utc::now();
    let mut announced = 0;
    for days in THRESHOLDS_DAYS {
        let filter = ExpiringFilter {
            after: now,
            until: now + chrono::Duration::days(i64::from(days)),
            partner_domain: None,
            kind: None,
        };
        let mut cursor = None;
        loop {
            let (page, _) = repository
                .expiring_certificates(&filter, cursor.as_ref(), SWEEP_PAGE)
                .await?;
            for certificate in &page {
                let notice = ExpiryNotice {
                    partner_domain: certificate.partner_domain.clone(),
                    certificate_id: certificate.certificate_id.clone(),
                    kind: certificate.kind,
                    expiry_time: certificate.not_after,
                    threshold_days: days,
                };
                if repository.record_expiry_notice(&notice).await? {
                    announced += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() as u64 == SWEEP_PAGE => {
                    cursor = Some((last.not_after, last.certificate_id.clone()));
                }
                _ => break,
            }
        }
    }
    Ok(announced)
}

/// Runs the sweep at start and then every `interval`, until `stop` changes. Several
/// replicas may sweep at once: a notice is recorded (and announced) once.
pub(crate) fn spawn_sweeper(
    repository: Arc<dyn CertificateRepository>,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<()>,
) {
    spawn_every(interval, stop, move || {
        let repository = Arc::clone(&repository);
        async move {
            match sweep(repository.as_ref()).await {
                Ok(0) => {}
                Ok(announced) => tracing::info!(announced, "announced expiring certificates"),
                Err(error) => tracing::warn!(%error, "expiry sweep failed; retrying next time"),
            }
        }
    });
}

/// The gauge `certificates_expiring{within_days, partner_domain, kind}`, recounted every
/// `interval` (off the scrape path: a count reads the certificate tables).
pub(crate) fn spawn_gauges(
    repository: Arc<dyn CertificateRepository>,
    metrics: &pmp_common::metrics::Metrics,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<()>,
) -> Result<(), prometheus::Error> {
    let gauge = IntGaugeVec::new(
        Opts::new(
            "certificates_expiring",
            "Certificates (not yet expired) expiring within the given number of days, by domain and kind",
        ),
        &["within_days", "partner_domain", "kind"],
    )?;
    metrics.registry().register(Box::new(gauge.clone()))?;
    spawn_every(interval, stop, move || {
        let repository = Arc::clone(&repository);
        let gauge = gauge.clone();
        async move {
            if let Err(error) = recount(repository.as_ref(), &gauge).await {
                tracing::warn!(%error, "counting expiring certificates failed");
            }
        }
    });
    Ok(())
}

async fn recount(
    repository: &dyn CertificateRepository,
    gauge: &IntGaugeVec,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let mut counted = Vec::new();
    for days in THRESHOLDS_DAYS {
        let counts = repository
            .expiring_counts(now, now + chrono::Duration::days(i64::from(days)))
            .await?;
        counted.push((days, counts));
    }
    gauge.reset();
    for (days, counts) in counted {
        let within = days.to_string();
        for (domain, kind, count) in counts {
            gauge
                .with_label_values(&[within.as_str(), domain.as_str(), kind.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    Ok(())
}
