//! `UploadPartnerCertificate` and `GetPartnerCertificate`: a partner's own certificate,
//! validated and kept by the certificate store (see the module root for the order of calls).

use pmp_common::auth::Caller;

use super::lease::Lease;
use super::{PartnerLookup, RegistryService};
use crate::domain::{Partner, PartnerStatus, require_field};
use crate::error::RegistryError;
use crate::upstream::{CertificateBundle, StoredCertificate};

/// A certificate a partner submits (the partner id is present: checked when decoded).
#[derive(Debug, Clone)]
pub(crate) struct CertificateUpload {
    pub(crate) partner_id: String,
    /// PEM, as sent.
    pub(crate) certificate_data: String,
    pub(crate) partner_domain: String,
}

/// An accepted and trusted partner certificate.
#[derive(Debug, Clone)]
pub(crate) struct UploadedCertificate {
    pub(crate) certificate_id: String,
    /// The certificate as re-signed by the platform.
    pub(crate) signed_certificate_pem: String,
    /// The partner as recorded with its new certificate.
    pub(crate) partner: Partner,
}

impl RegistryService {
    /// Has the store validate and keep the partner's certificate, records it (an
    /// IN_PROGRESS partner becomes ACTIVE), and only then has the store trust it.
    pub(crate) async fn upload_certificate(
        &self,
        caller: &Caller,
        upload: CertificateUpload,
    ) -> Result<UploadedCertificate, RegistryError> {
        caller.require_owner_or_admin(&upload.partner_id)?;
        // Checked after ownership, as the contract orders the errors.
        require_field("certificate_data", &upload.certificate_data)?;
        require_field("partner_domain", &upload.partner_domain)?;
        let (partner, lease) = self.begin(&upload.partner_id).await?;
        let stored = self
            .store_untrusted(caller, &partner, &lease, upload)
            .await?;
        let certificate_id = stored.certificate_id;
        self.untrust_replaced(caller, &partner, &lease, &certificate_id)
            .await?;
        let updated = self
            .record_certificate(caller, &partner, &lease, &certificate_id)
            .await?;
        let trusted = self
            .store
            .set_trusted(caller.user(), &partner.partner_id, &certificate_id, true)
            .await;
        self.marked_on_failure(&lease, trusted).await?;
        self.release(&lease).await;
        tracing::info!(partner_id = %updated.partner_id, %certificate_id, "partner certificate accepted and trusted");
        Ok(UploadedCertificate {
            certificate_id,
            signed_certificate_pem: stored.platform_signed_certificate_pem,
            partner: updated,
        })
    }

    /// The store's upload, as the step's first call; the partner must not be deactivated.
    /// A failure leaves nothing trusted, so the lease is simply released.
    async fn store_untrusted(
        &self,
        caller: &Caller,
        partner: &Partner,
        lease: &Lease,
        upload: CertificateUpload,
    ) -> Result<StoredCertificate, RegistryError> {
        let uploaded = if partner.status == PartnerStatus::Deactivated {
            Err(RegistryError::PartnerNotActive)
        } else {
            self.store
                .upload(
                    caller.user(),
                    partner,
                    upload.certificate_data,
                    upload.partner_domain,
                )
                .await
        };
        if uploaded.is_err() {
            self.release(lease).await;
        }
        uploaded
    }

    /// The replaced certificate stops being trusted before the new one is recorded.
    async fn untrust_replaced(
        &self,
        caller: &Caller,
        partner: &Partner,
        lease: &Lease,
        certificate_id: &str,
    ) -> Result<(), RegistryError> {
        if let Some(previous) = partner
            .certificate_id
            .as_deref()
            .filter(|previous| *previous != certificate_id)
        {
            let untrusted = self
                .store
                .set_trusted(caller.user(), &partner.partner_id, previous, false)
                .await;
            self.marked_on_failure(lease, untrusted).await?;
        }
        Ok(())
    }

    /// The local write of an upload: the partner's current certificate, and its audit row.
    async fn record_certificate(
        &self,
        caller: &Caller,
        partner: &Partner,
        lease: &Lease,
        certificate_id: &str,
    ) -> Result<Partner, RegistryError> {
        let after = if partner.status == PartnerStatus::InProgress {
            PartnerStatus::Active
        } else {
            partner.status
        };
        let audit = self.audit(
            &caller.actor(),
            "PARTNER_CERTIFICATE_UPLOADED",
            &partner.partner_id,
            Some(partner.status),
            after,
        );
        let recorded = self
            .repository
            .attach_certificate(&partner.partner_id, certificate_id, audit, &lease.token)
            .await;
        self.marked_on_failure(lease, recorded).await
    }

    /// The partner's current certificate, as the store has it.
    pub(crate) async fn certificate(
        &self,
        caller: &Caller,
        lookup: PartnerLookup,
    ) -> Result<CertificateBundle, RegistryError> {
        caller.require_owner_or_admin(&lookup.partner_id)?;
        let partner = self.existing_partner(&lookup.partner_id).await?;
        let certificate_id = partner
            .certificate_id
            .ok_or(RegistryError::CertificateNotFound)?;
        self.store.certificate(caller.user(), certificate_id).await
    }
}
