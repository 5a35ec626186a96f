//! The admin's review and the end of an FTM's life: `ApproveFtm`, `RejectFtm`,
//! `DeactivateFtm`.

use pmp_common::auth::Caller;

use super::{FtmService, authorize_admin};
use crate::domain::{Action, Ftm, FtmChange, FtmRef, FtmStatus, Rejection};
use crate::error::FtmError;

impl FtmService {
    /// `ApproveFtm`: the certificate becomes trusted, then the FTM APPROVED.
    pub(crate) async fn approve(&self, caller: &Caller, target: FtmRef) -> Result<Ftm, FtmError> {
        authorize_admin(caller)?;
        let (ftm, lease) = self
            .begin(caller, &target.ftm_id, Action::Approve, false)
            .await?;
        let Some(certificate_id) = ftm.certificate_id.clone() else {
            self.end_failed(&lease, false).await;
            return Err(FtmError::CertificateMissing);
        };
        // A deactivated (or otherwise unusable) provider's FTMs cannot be approved: its
        // certificates are untrusted, and approving would queue trust for its return.
        if let Err(error) = self.provider(caller, &ftm.partner_id).await {
            self.end_failed(&lease, false).await;
            return Err(error);
        }
        let trusted = self
            .upstream
            .set_trusted(caller.user(), &certificate_id, &ftm.partner_id, true)
            .await;
        self.store_step(&lease, true, trusted).await?;
        let change = FtmChange {
            status: FtmStatus::Approved,
            certificate_id: Some(certificate_id),
            certificate_expiry_time: ftm.certificate_expiry_time,
            reject_reason: None,
        };
        self.finish(caller, &lease, &ftm, Action::Approve, change, true)
            .await
    }

    /// `RejectFtm`: admins only.
    pub(crate) async fn reject(
        &self,
        caller: &Caller,
        rejection: Rejection,
    ) -> Result<Ftm, FtmError> {
        authorize_admin(caller)?;
        self.retire(
            caller,
            &rejection.ftm_id,
            Action::Reject,
            Some(rejection.reason),
        )
        .await
    }

    /// `DeactivateFtm`: the owner or an admin.
    pub(crate) async fn deactivate(
        &self,
        caller: &Caller,
        target: FtmRef,
    ) -> Result<Ftm, FtmError> {
        self.retire(caller, &target.ftm_id, Action::Deactivate, None)
            .await
    }

    /// `RejectFtm` and `DeactivateFtm`: the certificate is made untrusted first, then the
    /// terminal status is written.
    async fn retire(
        &self,
        caller: &Caller,
        ftm_id: &str,
        action: Action,
        reject_reason: Option<String>,
    ) -> Result<Ftm, FtmError> {
        let owner_may_act = action == Action::Deactivate;
        let (ftm, lease) = self.begin(caller, ftm_id, action, owner_may_act).await?;
        let mut trust_touched = false;
        if let Some(certificate_id) = &ftm.certificate_id {
            trust_touched = true;
            let untrusted = self
                .upstream
                .set_trusted(caller.user(), certificate_id, &ftm.partner_id, false)
                .await;
            self.store_step(&lease, true, untrusted).await?;
        }
        let change = FtmChange {
            status: action.target(),
            certificate_id: ftm.certificate_id.clone(),
            certificate_expiry_time: ftm.certificate_expiry_time,
            reject_reason,
        };
        self.finish(caller, &lease, &ftm, action, change, trust_touched)
            .await
    }
}
