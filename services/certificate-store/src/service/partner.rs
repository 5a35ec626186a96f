//! Partner and FTM chip certificates: upload (parse → rules → store), lookup, the owning
//! service's trust flag, and partner deactivation.

use chrono::Utc;
use openssl::x509::X509;

use pmp_common::auth::Caller;

use super::{
    CertificateStoreService, PartnerDeactivation, PartnerLookup, SetTrusted, UploadPartner,
    authorize, blocking, require_owner_type,
};
use crate::domain::{AuditEvent, Owner, PartnerCertificate};
use crate::error::StoreError;
use crate::x509::{self, CertificateFacts};

impl CertificateStoreService {
    /// Stores a partner or chip certificate untrusted, with its platform-signed copy; a
    /// repeated upload by the same owner returns the certificate stored the first time.
    pub(crate) async fn upload_partner(
        &self,
        caller: &Caller,
        mut request: UploadPartner,
    ) -> Result<PartnerCertificate, StoreError> {
        authorize(caller, &request)?;
        require_owner_type(caller, request.owner.owner_type)?;
        let data = std::mem::take(&mut request.certificate_data);
        let certificate = blocking(move || Ok(x509::parse_partner_certificate(&data)?)).await?;
        let domain = self.domain(&request.partner_domain)?;
        let facts = CertificateFacts::of(&certificate)?;
        // Every rule runs on every upload, a repeated one included: a certificate that has
        // expired, or whose CA left the store, since it was first accepted is refused now.
        let chain = self
            .validate_partner(&certificate, &domain, &request.organization_name)
            .await?;
        if let Some(existing) = self
            .holder(&domain, &facts.identity, &request.owner)
            .await?
        {
            tracing::info!(certificate_id = %existing.certificate_id, "repeated upload: returning the stored certificate");
            return Ok(existing);
        }
        if self
            .repository
            .is_partner_deactivated(&request.owner.partner_id)
            .await?
        {
            return Err(StoreError::PartnerDeactivated);
        }
        let record = self
            .partner_record(request, domain, facts, certificate, chain)
            .await?;
        self.store_partner(caller, record).await
    }

    /// The partner upload rules that need the trust store (after refreshing it): first not
    /// revoked (PMS_CERT_REVOKED); then, after every certificate-only rule, the chain to a CA
    /// of the domain (KER-PCM-006) and the organisation (KER-PCM-008); then no revoked CA on
    /// the chain (PMS_CERT_REVOKED). Returns the chain, leaf first.
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
            // Revocation is for good: nobody may bring a revoked certificate back, nor add
            // one under a revoked CA (it could never be trusted).
            if trust.is_revoked(&x509::identity_of(&certificate)?) {
                return Err(StoreError::Revoked);
            }
            let chain = x509::validate_partner_upload(
                &certificate,
                &organization,
                trust.material(),
                Utc::now(),
                &policy,
            )?;
            for issuer in chain.iter().skip(1) {
                if trust.is_revoked(&x509::identity_of(issuer)?) {
                    return Err(StoreError::RevokedIssuer);
                }
            }
            Ok(chain)
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

    /// The record of a newly accepted certificate, untrusted, with its platform-signed copy.
    async fn partner_record(
        &self,
        request: UploadPartner,
        domain: String,
        facts: CertificateFacts,
        certificate: X509,
        chain: Vec<X509>,
    ) -> Result<PartnerCertificate, StoreError> {
        let signer = self.platform.signer();
        let platform_signed = blocking(move || Ok(signer.resign(&certificate)?)).await?;
        Ok(PartnerCertificate {
            certificate_id: uuid::Uuid::now_v7().to_string(),
            owner: request.owner,
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
        })
    }

    /// Stores a new certificate with its audit row; a concurrent upload of the same
    /// certificate by another owner that won the race makes this one `HeldByAnotherOwner`.
    async fn store_partner(
        &self,
        caller: &Caller,
        record: PartnerCertificate,
    ) -> Result<PartnerCertificate, StoreError> {
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

    /// Sets the owning service's trust flag of a certificate it manages (optionally linking
    /// a legacy chip certificate to its partner).
    pub(crate) async fn set_trusted(
        &self,
        caller: &Caller,
        request: SetTrusted,
    ) -> Result<PartnerCertificate, StoreError> {
        authorize(caller, &request)?;
        let certificate = self
            .repository
            .find_partner_certificate(&request.certificate_id)
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        require_owner_type(caller, certificate.owner.owner_type)?;
        let updated = self
            .repository
            .set_trusted(
                &request.certificate_id,
                request.trusted,
                request.link_partner.as_deref(),
                &caller.actor(),
            )
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        self.trust.refresh().await?;
        tracing::info!(certificate_id = %request.certificate_id, trusted = request.trusted, "certificate trust set");
        Ok(updated)
    }

    /// Records a partner as deactivated (or active again): its certificates and its FTMs'
    /// chip certificates are untrusted while it is deactivated.
    pub(crate) async fn set_partner_deactivated(
        &self,
        caller: &Caller,
        request: PartnerDeactivation,
    ) -> Result<PartnerDeactivation, StoreError> {
        authorize(caller, &request)?;
        let changed = self
            .repository
            .set_partner_deactivated(&request.partner_id, request.deactivated, &caller.actor())
            .await?;
        self.trust.refresh().await?;
        tracing::info!(
            partner_id = %request.partner_id,
            deactivated = request.deactivated,
            changed,
            "partner state recorded"
        );
        Ok(request)
    }

    /// A partner or chip certificate by id (KER-PCM-012 when unknown).
    pub(crate) async fn partner_certificate(
        &self,
        caller: &Caller,
        request: PartnerLookup,
    ) -> Result<PartnerCertificate, StoreError> {
        authorize(caller, &request)?;
        self.repository
            .find_partner_certificate(&request.certificate_id)
            .await?
            .ok_or(StoreError::CertificateNotFound)
    }
}
