//! The `CertificateStore` gRPC service.
//!
//! CPU-bound certificate work (parsing, path validation, re-signing) runs on the blocking
//! thread pool, with the thread's OpenSSL error queue emptied before and after. Every write
//! that changes what is trusted refreshes the in-memory trust store before the RPC answers,
//! so a caller that uploads a CA or flips a trust flag sees the effect in its very next
//! `VerifyCertificateTrust`.
//!
//! Certificates are identified by the SHA-256 of their `tbsCertificate` (see
//! [`crate::trust`]): one owner per certificate and domain. `UploadPartnerCertificate` stores
//! a certificate *untrusted* and is idempotent for the same owner and certificate: a retry
//! after a lost reply returns the certificate id stored the first time, which is what lets
//! the registry and ftm-management complete a step after a failure on their side; they mark
//! the certificate trusted only once they have committed their own side.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use openssl::x509::X509;
use tonic::{Request, Response, Status};

use pmp_common::auth::{Caller, FTM_MANAGEMENT, PARTNER_REGISTRY, ServiceAccess, caller};
use pmp_common::error::ServiceError;
use pmp_common::pagination;
use pmp_proto::certstore::v1 as proto;
use pmp_proto::certstore::v1::certificate_store_server::CertificateStore;

use crate::convert::{self, ca_type_filter};
use crate::domain::{
    AuditEvent, CaCertificate, CaFilter, CaType, Owner, OwnerType, PartnerCertificate,
};
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::trust::TrustStore;
use crate::x509::{self, CertError, CertificateFacts, PlatformSigner, ValidationPolicy};

/// Which platform services may call which RPCs; everything else refuses service callers.
/// Which owner's certificates a service may upload and (un)trust follows from the service
/// (see [`owner_type_of`]), never from a request field.
pub const SERVICE_CALLERS: ServiceAccess = ServiceAccess(&[
    (
        "UploadPartnerCertificate",
        &[PARTNER_REGISTRY, FTM_MANAGEMENT],
    ),
    ("GetPartnerCertificate", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
    ("SetCertificateTrusted", &[PARTNER_REGISTRY, FTM_MANAGEMENT]),
    ("SetPartnerDeactivated", &[PARTNER_REGISTRY]),
    (
        "VerifyCertificateTrust",
        &[PARTNER_REGISTRY, FTM_MANAGEMENT],
    ),
]);

/// The owners whose certificates a calling service manages: the registry its partners',
/// FTM management its FTMs'.
fn owner_type_of(caller: &Caller) -> Option<OwnerType> {
    match caller.service()? {
        PARTNER_REGISTRY => Some(OwnerType::Partner),
        FTM_MANAGEMENT => Some(OwnerType::Ftm),
        _ => None,
    }
}

/// `PERMISSION_DENIED` unless the calling service manages `owner_type` certificates.
fn require_owner_type(caller: &Caller, owner_type: OwnerType) -> Result<(), StoreError> {
    if owner_type_of(caller) == Some(owner_type) {
        Ok(())
    } else {
        Err(caller.denied().into())
    }
}

/// Everything the certificate store's RPCs need.
pub struct CertificateStoreService {
    repository: Arc<dyn CertificateRepository>,
    trust: Arc<TrustStore>,
    signer: Arc<PlatformSigner>,
    policy: ValidationPolicy,
    domains: Vec<String>,
}

/// Runs CPU-bound certificate work on the blocking pool, isolated from the OpenSSL errors
/// of other work on the same pooled thread.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || x509::isolated(work))
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
    /// Identity of the issuer in the validated path (intermediates only).
    issuer_identity: Option<String>,
    result: Result<CaType, StoreError>,
}

/// Applies the CA rules to each certificate of an (ordered) upload, in the contract's order:
/// duplicate by identity (KER-PCM-003), v3, CA:TRUE, key, signature algorithm, dates,
/// minimum validity, and for an intermediate the path to a root of the domain or of this
/// upload (KER-PCM-005). CPU-bound.
fn evaluate_ca_bundle(
    ordered: Vec<X509>,
    stored_identities: &std::collections::HashSet<String>,
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
        let mut issuer_identity = None;
        let result = (|| -> Result<CaType, StoreError> {
            let facts = facts
                .as_ref()
                .ok_or(StoreError::Certificate(CertError::Unparsable {
                    detail: "certificate facts could not be read".into(),
                }))?;
            if stored_identities.contains(&facts.identity) || !seen.insert(facts.identity.clone()) {
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
            issuer_identity = path
                .get(1)
                .and_then(|issuer| CertificateFacts::of(issuer).ok())
                .map(|f| f.identity);
            Ok(CaType::Intermediate)
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
        // A certificate is a duplicate when the domain holds it already, as a CA or as a
        // partner/FTM certificate (which must never become a trust anchor of its own).
        let mut stored_identities = std::collections::HashSet::new();
        for certificate in &certificates {
            let identity = CertificateFacts::of(certificate)?.identity;
            if self.repository.ca_exists(&domain, &identity).await?
                || self
                    .repository
                    .find_partner_certificate_by_identity(&domain, &identity)
                    .await?
                    .is_some()
            {
                stored_identities.insert(identity);
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
                &stored_identities,
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
                    error.reason(),
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
        let mut ids_by_identity: HashMap<String, String> = HashMap::new();
        let mut records = Vec::new();
        for outcome in outcomes {
            let (Ok(ca_type), Some(facts)) = (&outcome.result, &outcome.facts) else {
                continue;
            };
            let certificate_id = uuid::Uuid::now_v7().to_string();
            let issuer_certificate_id = match (ca_type, &outcome.issuer_identity) {
                (CaType::Root, _) | (_, None) => certificate_id.clone(),
                (CaType::Intermediate, Some(issuer)) => match ids_by_identity.get(issuer) {
                    Some(id) => id.clone(),
                    None => self
                        .repository
                        .find_ca_by_identity(domain, issuer)
                        .await?
                        .map(|ca| ca.certificate_id)
                        .unwrap_or_else(|| certificate_id.clone()),
                },
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
        let owner = convert::owner(&request)?;
        require_owner_type(caller, owner.owner_type)?;
        let data = request.certificate_data;
        let certificate = blocking(move || Ok(x509::parse_partner_certificate(&data)?)).await?;
        let domain = self.domain(&request.partner_domain)?;
        let facts = CertificateFacts::of(&certificate)?;
        // Every rule runs on every upload, a repeated one included: a certificate that has
        // expired, or whose CA left the store, since it was first accepted is refused now.
        let chain = self
            .validate_partner(&certificate, &domain, &request.organization_name)
            .await?;
        if let Some(existing) = self.holder(&domain, &facts.identity, &owner).await? {
            tracing::info!(certificate_id = %existing.certificate_id, "repeated upload: returning the stored certificate");
            return Ok(existing);
        }
        if self
            .repository
            .is_partner_deactivated(&owner.partner_id)
            .await?
        {
            return Err(StoreError::PartnerDeactivated);
        }
        let signer = Arc::clone(&self.signer);
        let platform_signed = blocking(move || Ok(signer.resign(&certificate)?)).await?;
        let record = PartnerCertificate {
            certificate_id: uuid::Uuid::now_v7().to_string(),
            owner,
            partner_domain: domain,
            organization_name: request.organization_name,
            identity: facts.identity,
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
            trusted: false,
            upload_time: Utc::now(),
            update_time: Utc::now(),
        };
        let audit = AuditEvent::now(
            &caller.actor(),
            "PARTNER_CERTIFICATE_UPLOADED",
            &record.certificate_id,
            None,
            Some("UNTRUSTED"),
        );
        let stored = self
            .repository
            .insert_partner_certificate(&record, audit)
            .await?;
        if !stored.owner.same_holder(&record.owner) {
            return Err(StoreError::HeldByAnotherOwner);
        }
        self.trust.refresh().await?;
        tracing::info!(certificate_id = %stored.certificate_id, owner_id = %stored.owner.owner_id, owner_type = stored.owner.owner_type.as_str(), "partner certificate stored, untrusted");
        Ok(stored)
    }

    /// The partner upload rules that need the trust store (after refreshing it): the chain to
    /// a CA of the domain (KER-PCM-006) and the organisation (KER-PCM-008), after every
    /// certificate-only rule. Returns the chain, leaf first.
    async fn validate_partner(
        &self,
        certificate: &X509,
        domain: &str,
        organization: &str,
    ) -> Result<Vec<X509>, StoreError> {
        self.trust.refresh().await?;
        let snapshot = self.trust.snapshot();
        let policy = self.policy.clone();
        let organization = organization.to_owned();
        let domain = domain.to_owned();
        let certificate = certificate.clone();
        blocking(move || {
            let trust = snapshot.domain(&domain).ok_or(StoreError::InvalidDomain)?;
            Ok(x509::validate_partner_upload(
                &certificate,
                &organization,
                trust.material(),
                Utc::now(),
                &policy,
            )?)
        })
        .await
    }

    /// The stored certificate of this identity when `owner` holds it already (a repeat);
    /// `HeldByAnotherOwner` when another owner does, or when it is a CA of the domain.
    async fn holder(
        &self,
        domain: &str,
        identity: &str,
        owner: &Owner,
    ) -> Result<Option<PartnerCertificate>, StoreError> {
        if self.repository.ca_exists(domain, identity).await? {
            return Err(StoreError::HeldByAnotherOwner);
        }
        match self
            .repository
            .find_partner_certificate_by_identity(domain, identity)
            .await?
        {
            Some(existing) if existing.owner.same_holder(owner) => Ok(Some(existing)),
            Some(_) => Err(StoreError::HeldByAnotherOwner),
            None => Ok(None),
        }
    }

    async fn set_trusted(
        &self,
        caller: &Caller,
        request: proto::SetCertificateTrustedRequest,
    ) -> Result<PartnerCertificate, StoreError> {
        caller.require_service()?;
        required("certificate_id", &request.certificate_id)?;
        let certificate = self
            .repository
            .find_partner_certificate(&request.certificate_id)
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        require_owner_type(caller, certificate.owner.owner_type)?;
        let link_partner = Some(request.partner_id.trim()).filter(|id| !id.is_empty());
        let updated = self
            .repository
            .set_trusted(
                &request.certificate_id,
                request.trusted,
                link_partner,
                &caller.actor(),
            )
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        self.trust.refresh().await?;
        tracing::info!(certificate_id = %request.certificate_id, trusted = request.trusted, "certificate trust set");
        Ok(updated)
    }

    async fn set_partner_deactivated(
        &self,
        caller: &Caller,
        request: proto::SetPartnerDeactivatedRequest,
    ) -> Result<proto::SetPartnerDeactivatedResponse, StoreError> {
        caller.require_service()?;
        required("partner_id", &request.partner_id)?;
        let partner_id = request.partner_id.trim();
        let changed = self
            .repository
            .set_partner_deactivated(partner_id, request.deactivated, &caller.actor())
            .await?;
        self.trust.refresh().await?;
        tracing::info!(
            partner_id,
            deactivated = request.deactivated,
            changed,
            "partner state recorded"
        );
        Ok(proto::SetPartnerDeactivatedResponse {
            partner_id: partner_id.to_owned(),
            deactivated: request.deactivated,
        })
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
    ) -> Result<proto::ListCaCertificatesResponse, StoreError> {
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
        let caller = caller(&request, "UploadCaCertificate").await?;
        Ok(Response::new(
            self.upload_ca(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_ca_certificates(
        &self,
        request: Request<proto::ListCaCertificatesRequest>,
    ) -> Result<Response<proto::ListCaCertificatesResponse>, Status> {
        let caller = caller(&request, "ListCaCertificates").await?;
        Ok(Response::new(
            self.list_ca(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_ca_certificate(
        &self,
        request: Request<proto::GetCaCertificateRequest>,
    ) -> Result<Response<proto::CaCertificate>, Status> {
        let caller = caller(&request, "GetCaCertificate").await?;
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
        let caller = caller(&request, "GetCaTrustPath").await?;
        Ok(Response::new(
            self.trust_path(&caller, &request.into_inner().certificate_id)
                .await?,
        ))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<proto::UploadPartnerCertificateRequest>,
    ) -> Result<Response<proto::UploadPartnerCertificateResponse>, Status> {
        let caller = caller(&request, "UploadPartnerCertificate").await?;
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
        let caller = caller(&request, "GetPartnerCertificate").await?;
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
        let caller = caller(&request, "SetCertificateTrusted").await?;
        let updated = self.set_trusted(&caller, request.into_inner()).await?;
        Ok(Response::new(proto::SetCertificateTrustedResponse {
            certificate_id: updated.certificate_id,
            trusted: updated.trusted,
        }))
    }

    async fn set_partner_deactivated(
        &self,
        request: Request<proto::SetPartnerDeactivatedRequest>,
    ) -> Result<Response<proto::SetPartnerDeactivatedResponse>, Status> {
        let caller = caller(&request, "SetPartnerDeactivated").await?;
        Ok(Response::new(
            self.set_partner_deactivated(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn verify_certificate_trust(
        &self,
        request: Request<proto::VerifyCertificateTrustRequest>,
    ) -> Result<Response<proto::VerifyCertificateTrustResponse>, Status> {
        let caller = caller(&request, "VerifyCertificateTrust").await?;
        Ok(Response::new(
            self.verify(&caller, request.into_inner()).await?,
        ))
    }
}
