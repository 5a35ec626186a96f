//! `UploadFtmCertificate`: registry `GetPartner` → store `UploadPartnerCertificate` → for a
//! renewal, the old certificate untrusted → local write.

use pmp_common::auth::Caller;

use super::lease::Lease;
use super::{FtmService, authorize_owner};
use crate::domain::{self, Action, CertificateUpload, Ftm, FtmChange, FtmStatus, check_transition};
use crate::error::FtmError;
use crate::upstream::{Provider, StoredCertificate};

impl FtmService {
    /// `UploadFtmCertificate`: a first chip certificate, or a renewal of an APPROVED FTM's;
    /// either way the FTM then waits for approval.
    pub(crate) async fn upload(
        &self,
        caller: &Caller,
        input: CertificateUpload,
    ) -> Result<Ftm, FtmError> {
        let ftm = self.load(&input.ftm_id).await?;
        authorize_owner(caller, &ftm)?;
        let action = Action::UploadCertificate;
        check_transition(ftm.status, ftm.certificate_id.is_some(), action)?;
        let provider = self.provider(caller, &ftm.partner_id).await?;
        let (ftm, lease) = self.begin(caller, &input.ftm_id, action, true).await?;
        let stored = self
            .store_certificate(caller, &lease, &ftm, provider, input.certificate_data)
            .await?;
        let trust_touched = self.untrust_previous(caller, &lease, &ftm).await?;
        let change = FtmChange {
            status: FtmStatus::PendingApproval,
            certificate_id: Some(stored.certificate_id),
            certificate_expiry_time: stored.not_after.map(domain::truncate_to_micros),
            reject_reason: None,
        };
        self.finish(caller, &lease, &ftm, action, change, trust_touched)
            .await
    }

    /// Hands the chip certificate to the store (which validates it) under the lease.
    async fn store_certificate(
        &self,
        caller: &Caller,
        lease: &Lease,
        ftm: &Ftm,
        provider: Provider,
        certificate_data: String,
    ) -> Result<StoredCertificate, FtmError> {
        let uploaded = self
            .upstream
            .upload_chip_certificate(
                caller.user(),
                ftm,
                provider.organization_name,
                certificate_data,
            )
            .await;
        let stored = self.store_step(lease, false, uploaded).await?;
        if stored.certificate_id.is_empty() {
            self.end_failed(lease, false).await;
            return Err(FtmError::Internal(
                "certificate store answered without a certificate id".into(),
            ));
        }
        Ok(stored)
    }

    /// For a renewal, the old certificate stops being trusted before the FTM leaves
    /// APPROVED (if this fails, the FTM stays APPROVED, "not trusted yet"). Answers whether
    /// a trust change was sent.
    async fn untrust_previous(
        &self,
        caller: &Caller,
        lease: &Lease,
        ftm: &Ftm,
    ) -> Result<bool, FtmError> {
        let Some(previous) = &ftm.certificate_id else {
            return Ok(false);
        };
        if ftm.status != FtmStatus::Approved {
            return Ok(false);
        }
        let untrusted = self
            .upstream
            .set_trusted(caller.user(), previous, &ftm.partner_id, false)
            .await;
        self.store_step(lease, true, untrusted).await?;
        Ok(true)
    }
}
