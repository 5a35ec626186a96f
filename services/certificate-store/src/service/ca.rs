//! CA certificates: upload (parse → rules → store), listing, lookup and trust paths.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use openssl::x509::X509;

use pmp_common::auth::Caller;
use pmp_common::error::ServiceError;
use pmp_common::pagination;

use super::{
    CaList, CaLookup, CaUpload, CaUploadResult, CertificateStoreService, ListCa, TrustPath,
    UploadCa, UploadStatus, authorize, blocking,
};
use crate::domain::{AuditEvent, CaCertificate, CaFilter, CaType};
use crate::error::StoreError;
use crate::x509::{self, CertError, CertificateFacts, ValidationPolicy};

/// Outcome of one certificate of a CA upload.
struct CaOutcome {
    facts: Option<CertificateFacts>,
    certificate: X509,
    /// Identity of the issuer in the validated path (intermediates only).
    issuer_identity: Option<String>,
    result: Result<CaType, StoreError>,
}

/// What the CA rules check an upload against: the domain's stored CAs, and the identities
/// the domain holds already.
struct CaContext {
    stored_identities: HashSet<String>,
    roots: Vec<X509>,
    intermediates: Vec<X509>,
    policy: ValidationPolicy,
}

/// Applies the CA rules to each certificate of an (ordered) upload, in the contract's order:
/// duplicate by identity (KER-PCM-003), v3, CA:TRUE, key, signature algorithm, dates,
/// minimum validity, and for an intermediate the path to a root of the domain or of this
/// upload (KER-PCM-005). CPU-bound.
fn evaluate_ca_bundle(ordered: Vec<X509>, context: &CaContext) -> Vec<CaOutcome> {
    let now = Utc::now();
    let mut accepted: Vec<X509> = Vec::new();
    let mut seen = HashSet::new();
    let mut outcomes = Vec::with_capacity(ordered.len());
    for certificate in ordered {
        let facts = CertificateFacts::of(&certificate).ok();
        let mut issuer_identity = None;
        let result = (|| -> Result<CaType, StoreError> {
            let facts = facts
                .as_ref()
                .ok_or(StoreError::Certificate(CertError::Unparsable {
                    detail: "certificate facts could not be read".into(),
                }))?;
            if context.stored_identities.contains(&facts.identity)
                || !seen.insert(facts.identity.clone())
            {
                return Err(StoreError::DuplicateCa);
            }
            let (ca_type, issuer) = evaluate_ca(&certificate, facts, context, &accepted, now)?;
            issuer_identity = issuer;
            Ok(ca_type)
        })();
        if result.is_ok() {
            accepted.push(certificate.clone());
        }
        outcomes.push(CaOutcome {
            facts,
            certificate,
            issuer_identity,
            result,
        });
    }
    outcomes
}

/// The certificate rules of one CA and, for an intermediate, its path to a root of the
/// domain or of the certificates of the upload `accepted` so far. Returns the type and the
/// identity of the issuer on the path.
fn evaluate_ca(
    certificate: &X509,
    facts: &CertificateFacts,
    context: &CaContext,
    accepted: &[X509],
    now: DateTime<Utc>,
) -> Result<(CaType, Option<String>), StoreError> {
    x509::validate_ca_certificate(certificate, now, &context.policy)?;
    if facts.is_self_signed {
        return Ok((CaType::Root, None));
    }
    let path = x509::chain_to_domain_root(
        certificate,
        &context.roots,
        &context.intermediates,
        accepted,
        Some(now),
    )
    .map_err(|error| CertError::RootNotFound {
        detail: error.reason,
    })?;
    let issuer_identity = path
        .get(1)
        .and_then(|issuer| CertificateFacts::of(issuer).ok())
        .map(|f| f.identity);
    Ok((CaType::Intermediate, issuer_identity))
}

/// The answer to an upload: one result per certificate, and the records stored for the
/// accepted ones (in the same order).
fn ca_upload(outcomes: &[CaOutcome], records: Vec<CaCertificate>) -> CaUpload {
    let mut stored = records.into_iter();
    let results: Vec<CaUploadResult> = outcomes
        .iter()
        .map(|outcome| {
            let facts = outcome.facts.as_ref();
            let (certificate_id, error_reason, ca_type) = match &outcome.result {
                Ok(ca_type) => (
                    stored.next().map(|r| r.certificate_id).unwrap_or_default(),
                    String::new(),
                    *ca_type,
                ),
                Err(error) if x509::is_self_signed(&outcome.certificate) => {
                    (String::new(), error.reason(), CaType::Root)
                }
                Err(error) => (String::new(), error.reason(), CaType::Intermediate),
            };
            CaUploadResult {
                certificate_id,
                thumbprint: facts.map(|f| f.thumbprint.clone()).unwrap_or_default(),
                ca_type,
                subject: facts.map(|f| f.subject.clone()).unwrap_or_default(),
                error_reason,
            }
        })
        .collect();
    let accepted = results.iter().filter(|r| r.error_reason.is_empty()).count();
    let status = match accepted {
        0 => UploadStatus::Failed,
        count if count == results.len() => UploadStatus::Success,
        _ => UploadStatus::PartialSuccess,
    };
    CaUpload { status, results }
}

impl CertificateStoreService {
    /// Uploads one CA certificate or a bundle, each judged on its own: a single certificate
    /// that fails answers with its error, a bundle with a result per certificate.
    pub(crate) async fn upload_ca(
        &self,
        caller: &Caller,
        request: UploadCa,
    ) -> Result<CaUpload, StoreError> {
        authorize(caller, &request)?;
        let data = request.certificate_data;
        let certificates =
            blocking(move || Ok(x509::order_bundle(x509::parse_ca_bundle(&data)?))).await?;
        let domain = self.domain(&request.partner_domain)?;
        let context = self.ca_context(&domain, &certificates).await?;
        let mut outcomes = blocking(move || Ok(evaluate_ca_bundle(certificates, &context))).await?;
        if outcomes.len() == 1 && outcomes[0].result.is_err() {
            outcomes.swap_remove(0).result?;
        }
        let records = self.store_ca(caller, &domain, &outcomes).await?;
        let upload = ca_upload(&outcomes, records);
        let refused = upload.results.iter().filter(|r| !r.error_reason.is_empty());
        let refused = refused.count();
        let accepted = upload.results.len() - refused;
        tracing::info!(%domain, accepted, refused, "CA upload");
        Ok(upload)
    }

    /// The domain's CAs (after refreshing the trust store) and which of `certificates` the
    /// domain holds already, as a CA or as a partner/FTM certificate (which must never
    /// become a trust anchor of its own).
    async fn ca_context(
        &self,
        domain: &str,
        certificates: &[X509],
    ) -> Result<CaContext, StoreError> {
        self.trust.refresh().await?;
        let mut stored_identities = HashSet::new();
        for certificate in certificates {
            let identity = CertificateFacts::of(certificate)?.identity;
            if self.repository.ca_exists(domain, &identity).await?
                || self
                    .repository
                    .find_partner_certificate_by_identity(domain, &identity)
                    .await?
                    .is_some()
            {
                stored_identities.insert(identity);
            }
        }
        let snapshot = self.trust.snapshot();
        let trust = snapshot.domain(domain).ok_or(StoreError::InvalidDomain)?;
        Ok(CaContext {
            stored_identities,
            roots: trust.roots.clone(),
            intermediates: trust.intermediates.clone(),
            policy: self.policy.clone(),
        })
    }

    /// Stores the accepted certificates of an upload with their audit rows, and refreshes
    /// the trust store.
    async fn store_ca(
        &self,
        caller: &Caller,
        domain: &str,
        outcomes: &[CaOutcome],
    ) -> Result<Vec<CaCertificate>, StoreError> {
        let records = self.ca_records(domain, outcomes).await?;
        let audit = records
            .iter()
            .map(|record| {
                AuditEvent::now(
                    &caller.actor(),
                    "CA_CERTIFICATE_UPLOADED",
                    &record.certificate_id,
                    None,
                    Some(record.ca_type.as_str()),
                )
            })
            .collect();
        self.repository
            .insert_ca_certificates(&records, audit)
            .await?;
        self.trust.refresh().await?;
        Ok(records)
    }

    /// Records for the accepted certificates of an upload, with their issuers' ids.
    async fn ca_records(
        &self,
        domain: &str,
        outcomes: &[CaOutcome],
    ) -> Result<Vec<CaCertificate>, StoreError> {
        let now = Utc::now();
        let mut ids_by_identity: HashMap<String, String> = HashMap::new();
        let mut records = Vec::new();
        for outcome in outcomes {
            let (Ok(ca_type), Some(facts)) = (&outcome.result, &outcome.facts) else {
                continue;
            };
            let certificate_id = uuid::Uuid::now_v7().to_string();
            let issuer_certificate_id = match (ca_type, &outcome.issuer_identity) {
                (CaType::Intermediate, Some(issuer)) => self
                    .issuer_id(domain, issuer, &ids_by_identity)
                    .await?
                    .unwrap_or_else(|| certificate_id.clone()),
                _ => certificate_id.clone(),
            };
            ids_by_identity.insert(facts.identity.clone(), certificate_id.clone());
            records.push(CaCertificate {
                certificate_id,
                partner_domain: domain.to_owned(),
                ca_type: *ca_type,
                subject: facts.subject.clone(),
                issuer: facts.issuer.clone(),
                serial_number: facts.serial_number.clone(),
                thumbprint: facts.thumbprint.clone(),
                identity: facts.identity.clone(),
                not_before: facts.not_before,
                not_after: facts.not_after,
                upload_time: now,
                certificate_pem: x509::pem_string(&outcome.certificate)?,
                issuer_certificate_id,
            });
        }
        Ok(records)
    }

    /// The id of the CA of `identity`: one accepted earlier in the same upload (`accepted`,
    /// by identity), else a stored one of the domain.
    async fn issuer_id(
        &self,
        domain: &str,
        identity: &str,
        accepted: &HashMap<String, String>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(id) = accepted.get(identity) {
            return Ok(Some(id.clone()));
        }
        let stored = self
            .repository
            .find_ca_by_identity(domain, identity)
            .await?;
        Ok(stored.map(|ca| ca.certificate_id))
    }

    /// One page of the CA certificates, optionally of one domain and type.
    pub(crate) async fn list_ca(
        &self,
        caller: &Caller,
        request: ListCa,
    ) -> Result<CaList, StoreError> {
        authorize(caller, &request)?;
        let partner_domain = match request.partner_domain.trim() {
            "" => None,
            requested => Some(self.domain(requested)?),
        };
        let filter = CaFilter {
            partner_domain,
            ca_type: request.ca_type?,
        };
        let query = format!("{:?}|{:?}", filter.partner_domain, filter.ca_type);
        let after: Option<String> = pagination::decode_token(&request.page_token, &query)?;
        let page = self
            .repository
            .list_ca(&filter, after.as_deref(), request.page_size)
            .await?;
        let next_page_token = match (page.has_more, page.ca_certificates.last()) {
            (true, Some(last)) => pagination::encode_token(&last.certificate_id, &query),
            _ => String::new(),
        };
        Ok(CaList {
            ca_certificates: page.ca_certificates,
            next_page_token,
            total_size: page.total_size,
        })
    }

    /// A CA certificate by id (KER-PMS-019 when unknown).
    pub(crate) async fn find_ca(
        &self,
        caller: &Caller,
        request: &CaLookup,
    ) -> Result<CaCertificate, StoreError> {
        authorize(caller, request)?;
        self.repository
            .find_ca(&request.certificate_id)
            .await?
            .ok_or(StoreError::CaNotFound)
    }

    /// A CA certificate and its issuers up to the root, as PEMs and as a PKCS#7 bundle.
    pub(crate) async fn trust_path(
        &self,
        caller: &Caller,
        request: CaLookup,
    ) -> Result<TrustPath, StoreError> {
        let mut current = self.find_ca(caller, &request).await?;
        let mut pems = vec![current.certificate_pem.clone()];
        // Issuers up to the root; the bound guards against a corrupted issuer loop.
        for _ in 0..16 {
            if current.issuer_certificate_id == current.certificate_id {
                break;
            }
            let Some(issuer) = self
                .repository
                .find_ca(&current.issuer_certificate_id)
                .await?
            else {
                break;
            };
            pems.push(issuer.certificate_pem.clone());
            current = issuer;
        }
        let joined = pems.concat();
        let p7b =
            blocking(move || Ok(x509::certs_to_p7b_der(&x509::parse_chain(&joined)?)?)).await?;
        Ok(TrustPath {
            certificates_pem: pems,
            p7b,
        })
    }
}
