//! `CreateFtm`.

use pmp_common::auth::Caller;

use super::{FtmService, audit};
use crate::domain::{self, AuditAction, Ftm, FtmStatus, NewFtm, ROLE_FTM_PROVIDER, new_ftm_id};
use crate::error::FtmError;

impl FtmService {
    /// `CreateFtm`: a new FTM of a usable provider, waiting for its chip certificate.
    pub(crate) async fn create(&self, caller: &Caller, input: NewFtm) -> Result<Ftm, FtmError> {
        authorize_create(caller, &input.partner_id)?;
        let provider = self.provider(caller, &input.partner_id).await?;
        let now = domain::now();
        let ftm = Ftm {
            ftm_id: new_ftm_id(),
            partner_id: input.partner_id,
            organization_name: provider.organization_name,
            make: input.make,
            model: input.model,
            status: FtmStatus::PendingCertUpload,
            certificate_id: None,
            certificate_expiry_time: None,
            reject_reason: None,
            create_time: now,
            update_time: now,
        };
        let audit = audit(
            caller,
            AuditAction::Created,
            &ftm.ftm_id,
            None,
            Some(ftm.status),
        );
        self.repository.create(&ftm, audit).await?;
        tracing::info!(ftm_id = %ftm.ftm_id, partner_id = %ftm.partner_id, "FTM created");
        Ok(ftm)
    }
}

/// `CreateFtm`: an FTM provider for itself, or an admin (or a platform service).
fn authorize_create(caller: &Caller, partner_id: &str) -> Result<(), FtmError> {
    match caller {
        Caller::User(user)
            if user.is_admin()
                || (user.has_role(ROLE_FTM_PROVIDER) && user.partner_id == partner_id) =>
        {
            Ok(())
        }
        Caller::Service { .. } => Ok(()),
        Caller::User(_) => Err(caller.denied().into()),
    }
}
