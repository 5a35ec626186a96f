//! The `CertificateStore` gRPC service.
//!
//! CPU-bound certificate work (parsing, path validation, re-signing) runs on the blocking
//! thread pool. Every write that changes what is trusted refreshes the in-memory trust store
//! before the RPC answers, so a caller that uploads a CA or flips a trust flag sees the
//! effect in its very next `VerifyCertificateTrust`.
//!
//! `UploadPartnerCertificate` is idempotent for the same (owner, domain, certificate): a retry
//! after a lost reply returns the certificate id stored the first time, which is what lets
//! the registry and ftm-management complete a step after a failure on their side.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use openssl::x509::X509;
use tonic::{Request, Response, Status};

use pmp_common::auth::{Caller, caller};
use pmp_common::pagination;
use pmp_proto::certstore::v1 as proto;
use pmp_proto::certstore::v1::certificate_store_server::CertificateStore;

use crate::convert::{ca_type_filter, certificate_kind};
use crate::domain::{AuditEvent, CaCertificate, CaFilter, CaType, PartnerCertificate};
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::trust::TrustStore;
use crate::x509::{self, CertError, CertificateFacts, PlatformSigner, ValidationPolicy};

/// Everything the certificate store's RPCs need.
pub struct CertificateStoreService {
    repository: Arc<dyn CertificateRepository>,
    trust: Arc<TrustStore>,
    signer: Arc<PlatformSigner>,
    policy: ValidationPolicy,
    domains: Vec<String>,
}

/// Runs CPU-bound certificate work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Internal(format!("certificate task failed: {error}")))?
}

/// `PMS_COR_001` for a blank required field ("whichever other row might also fit").
fn required(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    Ok(())
}

/// Outcome of one certificate of a CA upload.
struct CaOutcome {
    facts: Option<CertificateFacts>,
    certificate: X509,
    /// Thumbprint of the issuer in the validated path (intermediates only).
    issuer_thumbprint: Option<String>,
    result: Result<CaType, StoreError>,
}

/// Applies the CA rules to each certificate of an (ordered) upload, in the contract's order:
/// duplicate (KER-PCM-003), v3, CA:TRUE, dates, minimum validity, and for an intermediate
/// the path to a root of the domain or of this upload (KER-PCM-005). CPU-bound.
fn evaluate_ca_bundle(
    ordered: Vec<X509>,
    stored_thumbprints: &std::collections::HashSet<String>,
    roots: &[X509],
    intermediates: &[X509],
    policy: &ValidationPolicy,
) -> Vec<CaOutcome> {
    let now = Utc::now();
    let mut accepted: Vec<X509> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(ordered.len());
    for certificate in ordered {
        let facts = CertificateFacts::of(&certificate).ok();
        let mut issuer_thumbprint = None;
        let result = (|| -> Result<CaType, StoreError> {
            let facts = facts
                .as_ref()
                .ok_or(StoreError::Certificate(CertError::Unparsable {
                    detail: "certificate facts could not be read".into(),
                }))?;
            if stored_thumbprints.contains(&facts.thumbprint)
                || !seen.insert(facts.thumbprint.clone())
            {
                return Err(StoreError::DuplicateCa);
            }
            x509::validate_ca_certificate(&certificate, now, policy)?;
            if facts.is_self_signed {
                return Ok(CaType::Root);
            }
            let path = x509::chain_to_domain_root(
                &certificate,
                roots,
                intermediates,
                &accepted,
                Some(now),
            )
            .map_err(|error| CertError::RootNotFound {
                detail: error.reason,
            })?;
            issuer_thumbprint = path
                .get(1)
                .and_then(|issuer| CertificateFacts::of(issuer).ok())
                .map(|f| f.thumbprint);
            Ok(CaType::Intermediate)
        })();
        if result.is_ok() {
            accepted.push(certificate.clone());
        }
        outcomes.push(CaOutcome {
            facts,
            certificate,
            issuer_thumbprint,
            result,
        });
    }
    outcomes
}

impl CertificateStoreService {
    /// Builds the service.
    pub fn new(
        repository: Arc<dyn CertificateRepository>,
        trust: Arc<TrustStore>,
        signer: Arc<PlatformSigner>,
        policy: ValidationPolicy,
        domains: Vec<String>,
    ) -> Self {
        CertificateStoreService {
            repository,
            trust,
            signer,
            policy,
            domains,
        }
    }

    /// The canonical (upper-case) form of an allowed domain, else KER-PCM-011.
    fn domain(&self, requested: &str) -> Result<String, StoreError> {
        let requested = requested.trim().to_ascii_uppercase();
        self.domains
            .iter()
            .find(|domain| **domain == requested)
            .cloned()
            .ok_or(StoreError::InvalidDomain)
    }

    async fn upload_ca(
        &self,
        caller: &Caller,
        request: proto::UploadCaCertificateRequest,
    ) -> Result<proto::UploadCaCertificateResponse, StoreError> {
        caller.require_admin()?;
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        let data = request.certificate_data;
        let certificates =
            blocking(move || Ok(x509::order_bundle(x509::parse_ca_bundle(&data)?))).await?;
        let domain = self.domain(&request.partner_domain)?;
        self.trust.refresh().await?;
        let mut stored_thumbprints = std::collections::HashSet::new();
        for certificate in &certificates {
            let thumbprint = CertificateFacts::of(certificate)?.thumbprint;
            if self.repository.ca_exists(&domain, &thumbprint).await? {
                stored_thumbprints.insert(thumbprint);
            }
        }
        let snapshot = self.trust.snapshot();
        let trust = snapshot.domain(&domain).ok_or(StoreError::InvalidDomain)?;
        let (roots, intermediates) = (trust.roots.clone(), trust.intermediates.clone());
        let policy = self.policy.clone();
        let single = certificates.len() == 1;
        let mut outcomes = blocking(move || {
            Ok(evaluate_ca_bundle(
                certificates,
                &stored_thumbprints,
                &roots,
                &intermediates,
                &policy,
            ))
        })
        .await?;
        // A single certificate that fails answers with its error, not a result list.
        if let Some(index) = outcomes
            .iter()
            .position(|outcome| single && outcome.result.is_err())
        {
            outcomes.swap_remove(index).result?;
        }
        let records = self.ca_records(&domain, &outcomes).await?;
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
        let mut stored = records.into_iter();
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in &outcomes {
            let facts = outcome.facts.as_ref();
            let (certificate_id, error_reason, ca_type) = match &outcome.result {
                Ok(ca_type) => (
                    stored.next().map(|r| r.certificate_id).unwrap_or_default(),
                    String::new(),
                    *ca_type,
                ),
                Err(error) => (
                    String::new(),
                    error.reason().to_owned(),
                    if x509::is_self_signed(&outcome.certificate) {
                        CaType::Root
                    } else {
                        CaType::Intermediate
                    },
                ),
            };
            results.push(proto::CaUploadResult {
                certificate_id,
                thumbprint: facts.map(|f| f.thumbprint.clone()).unwrap_or_default(),
                ca_type: proto::CaType::from(ca_type) as i32,
                subject: facts.map(|f| f.subject.clone()).unwrap_or_default(),
                error_reason,
            });
        }
        let accepted = results
            .iter()
            .filter(|result| result.error_reason.is_empty())
            .count();
        let status = match accepted {
            0 => proto::UploadStatus::UploadFailed,
            count if count == results.len() => proto::UploadStatus::UploadSuccess,
            _ => proto::UploadStatus::PartialUploadSuccess,
        };
        tracing::info!(%domain, accepted, refused = results.len() - accepted, "CA upload");
        Ok(proto::UploadCaCertificateResponse {
            status: status as i32,
            results,
        })
    }

    /// Records for the accepted certificates of an upload, with their issuers' ids.
    async fn ca_records(
        &self,
        domain: &str,
        outcomes: &[CaOutcome],
    ) -> Result<Vec<CaCertificate>, StoreError> {
        let now = Utc::now();
        let mut ids_by_thumbprint: HashMap<String, String> = HashMap::new();
        let mut records = Vec::new();
        for outcome in outcomes {
            let (Ok(ca_type), Some(facts)) = (&outcome.result, &outcome.facts) else {
                continue;
            };
            let certificate_id = uuid::Uuid::now_v7().to_string();
            let issuer_certificate_id = match (ca_type, &outcome.issuer_thumbprint) {
                (CaType::Root, _) | (_, None) => certificate_id.clone(),
                (CaType::Intermediate, Some(issuer)) => match ids_by_thumbprint.get(issuer) {
                    Some(id) => id.clone(),
                    None => self
                        .repository
                        .find_ca_by_thumbprint(domain, issuer)
                        .await?
                        .map(|ca| ca.certificate_id)
                        .unwrap_or_else(|| certificate_id.clone()),
                },
            };
            ids_by_thumbprint.insert(facts.thumbprint.clone(), certificate_id.clone());
            records.push(CaCertificate {
                certificate_id,
                partner_domain: domain.to_owned(),
                ca_type: *ca_type,
                subject: facts.subject.clone(),
                issuer: facts.issuer.clone(),
                serial_number: facts.serial_number.clone(),
                thumbprint: facts.thumbprint.clone(),
                not_before: facts.not_before,
                not_after: facts.not_after,
                upload_time: now,
                certificate_pem: x509::pem_string(&outcome.certificate)?,
                issuer_certificate_id,
            });
        }
        Ok(records)
    }

    async fn upload_partner(
        &self,
        caller: &Caller,
        request: proto::UploadPartnerCertificateRequest,
    ) -> Result<PartnerCertificate, StoreError> {
        caller.require_service()?;
        required("owner_id", &request.owner_id)?;
        required("organization_name", &request.organization_name)?;
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        let kind = certificate_kind(request.certificate_kind)?;
        let data = request.certificate_data;
        let certificate = blocking(move || Ok(x509::parse_partner_certificate(&data)?)).await?;
        let domain = self.domain(&request.partner_domain)?;
        let facts = CertificateFacts::of(&certificate)?;
        // Every rule runs on every upload, a repeated one included: a certificate that has
        // expired, or whose CA left the store, since it was first accepted is refused now.
        self.trust.refresh().await?;
        let snapshot = self.trust.snapshot();
        let policy = self.policy.clone();
        let organization = request.organization_name.clone();
        let validating_domain = domain.clone();
        let validated = certificate.clone();
        let chain = blocking(move || {
            let trust = snapshot
                .domain(&validating_domain)
                .ok_or(StoreError::InvalidDomain)?;
            Ok(x509::validate_partner_upload(
                &validated,
                &organization,
                trust.material(),
                Utc::now(),
                &policy,
            )?)
        })
        .await?;
        if let Some(existing) = self
            .repository
            .find_partner_certificate_by_owner(&request.owner_id, &domain, &facts.thumbprint)
            .await?
        {
            tracing::info!(certificate_id = %existing.certificate_id, "repeated upload: returning the stored certificate");
            return Ok(existing);
        }
        let signer = Arc::clone(&self.signer);
        let signing_domain = domain.clone();
        let platform_signed =
            blocking(move || Ok(signer.resign(&certificate, &signing_domain)?)).await?;
        let now = Utc::now();
        let record = PartnerCertificate {
            certificate_id: uuid::Uuid::now_v7().to_string(),
            owner_id: request.owner_id,
            partner_domain: domain,
            kind,
            organization_name: request.organization_name,
            thumbprint: facts.thumbprint,
            subject: facts.subject,
            issuer: facts.issuer,
            serial_number: facts.serial_number,
            not_before: facts.not_before,
            not_after: facts.not_after,
            is_ca: facts.is_ca,
            ca_signed_pem: chain
                .first()
                .map(|leaf| x509::pem_string(leaf))
                .transpose()?
                .unwrap_or_default(),
            platform_signed_pem: x509::pem_string(&platform_signed)?,
            chain_pem: chain
                .iter()
                .map(|c| x509::pem_string(c))
                .collect::<Result<_, _>>()?,
            trusted: kind.trusted_on_acceptance(),
            upload_time: now,
            update_time: now,
        };
        let trust_state = if record.trusted {
            "TRUSTED"
        } else {
            "UNTRUSTED"
        };
        let audit = AuditEvent::now(
            &caller.actor(),
            "PARTNER_CERTIFICATE_UPLOADED",
            &record.certificate_id,
            None,
            Some(trust_state),
        );
        let stored = self
            .repository
            .insert_partner_certificate(&record, audit)
            .await?;
        self.trust.refresh().await?;
        tracing::info!(certificate_id = %stored.certificate_id, owner_id = %stored.owner_id, kind = stored.kind.as_str(), "partner certificate stored");
        Ok(stored)
    }

    async fn set_trusted(
        &self,
        caller: &Caller,
        certificate_id: &str,
        trusted: bool,
    ) -> Result<PartnerCertificate, StoreError> {
        caller.require_service()?;
        required("certificate_id", certificate_id)?;
        let updated = self
            .repository
            .set_trusted(certificate_id, trusted, &caller.actor())
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        self.trust.refresh().await?;
        tracing::info!(certificate_id, trusted, "certificate trust set");
        Ok(updated)
    }

    async fn partner_certificate(
        &self,
        caller: &Caller,
        certificate_id: &str,
    ) -> Result<PartnerCertificate, StoreError> {
        if !caller.is_service() {
            caller.require_admin()?;
        }
        required("certificate_id", certificate_id)?;
        self.repository
            .find_partner_certificate(certificate_id)
            .await?
            .ok_or(StoreError::CertificateNotFound)
    }

    async fn list_ca(
        &self,
        caller: &Caller,
        request: proto::ListCaCertificatesRequest,
    ) -> Result<proto::ListCaCertificatesResponse, Status> {
        caller.require_admin()?;
        let page_size = pagination::page_size(request.page_size)?;
        let partner_domain = match request.partner_domain.trim() {
            "" => None,
            requested => Some(self.domain(requested)?),
        };
        let filter = CaFilter {
            partner_domain,
            ca_type: ca_type_filter(request.ca_type)?,
        };
        let query = format!("{:?}|{:?}", filter.partner_domain, filter.ca_type);
        let after: Option<String> = pagination::decode_token(&request.page_token, &query)?;
        let page = self
            .repository
            .list_ca(&filter, after.as_deref(), page_size)
            .await?;
        let next_page_token = match (page.has_more, page.ca_certificates.last()) {
            (true, Some(last)) => pagination::encode_token(&last.certificate_id, &query),
            _ => String::new(),
        };
        Ok(proto::ListCaCertificatesResponse {
            ca_certificates: page.ca_certificates.into_iter().map(Into::into).collect(),
            next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        })
    }

    async fn find_ca(
        &self,
        caller: &Caller,
        certificate_id: &str,
    ) -> Result<CaCertificate, StoreError> {
        caller.require_admin()?;
        required("certificate_id", certificate_id)?;
        self.repository
            .find_ca(certificate_id)
            .await?
            .ok_or(StoreError::CaNotFound)
    }

    async fn trust_path(
        &self,
        caller: &Caller,
        certificate_id: &str,
    ) -> Result<proto::TrustPath, StoreError> {
        let mut current = self.find_ca(caller, certificate_id).await?;
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
        Ok(proto::TrustPath {
            certificates_pem: pems,
            p7b,
        })
    }

    async fn verify(
        &self,
        caller: &Caller,
        request: proto::VerifyCertificateTrustRequest,
    ) -> Result<proto::VerifyCertificateTrustResponse, StoreError> {
        let _ = caller;
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        let domain = self.domain(&request.partner_domain)?;
        let verdict = self
            .trust
            .verify(&domain, &request.certificate_data)
            .await?;
        Ok(proto::VerifyCertificateTrustResponse {
            trusted: verdict.trusted,
            chain_pem: verdict.chain_pem.clone(),
            reason: verdict.reason.clone(),
        })
    }
}

#[tonic::async_trait]
impl CertificateStore for CertificateStoreService {
    async fn upload_ca_certificate(
        &self,
        request: Request<proto::UploadCaCertificateRequest>,
    ) -> Result<Response<proto::UploadCaCertificateResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.upload_ca(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_ca_certificates(
        &self,
        request: Request<proto::ListCaCertificatesRequest>,
    ) -> Result<Response<proto::ListCaCertificatesResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_ca(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_ca_certificate(
        &self,
        request: Request<proto::GetCaCertificateRequest>,
    ) -> Result<Response<proto::CaCertificate>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.find_ca(&caller, &request.into_inner().certificate_id)
                .await?
                .into(),
        ))
    }

    async fn get_ca_trust_path(
        &self,
        request: Request<proto::GetCaTrustPathRequest>,
    ) -> Result<Response<proto::TrustPath>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.trust_path(&caller, &request.into_inner().certificate_id)
                .await?,
        ))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.upload_partner(&caller, request.into_inner())
                .await?
                .into(),
        ))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<proto::GetPartnerCertificateRequest>,
    ) -> Result<Response<proto::CertificateBundle>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.partner_certificate(&caller, &request.into_inner().certificate_id)
                .await?
                .into(),
        ))
    }

    async fn set_certificate_trusted(
        &self,
        request: Request<proto::SetCertificateTrustedRequest>,
    ) -> Result<Response<proto::SetCertificateTrustedResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let updated = self
            .set_trusted(&caller, &request.certificate_id, request.trusted)
            .await?;
        Ok(Response::new(proto::SetCertificateTrustedResponse {
            certificate_id: updated.certificate_id,
            trusted: updated.trusted,
        }))
    }

    async fn verify_certificate_trust(
        &self,
        request: Request<proto::VerifyCertificateTrustRequest>,
    ) -> Result<Response<proto::VerifyCertificateTrustResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.verify(&caller, request.into_inner()).await?,
        ))
    }
}
