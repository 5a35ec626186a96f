//! `SetPartnerActive`: an admin deactivates or reactivates a partner, in the store and in
//! the record (see the module root for the order of calls).

use pmp_common::auth::Caller;

use super::RegistryService;
use super::lease::Lease;
use crate::domain::{Partner, PartnerStatus, require_field};
use crate::error::RegistryError;

/// An admin's request to (de)activate a partner. The partner id is checked by the use case,
/// after the admin role.
#[derive(Debug, Clone)]
pub(crate) struct Activation {
    pub(crate) partner_id: String,
    pub(crate) active: bool,
}

impl RegistryService {
    /// Deactivates (DEACTIVATED) or reactivates (ACTIVE, or IN_PROGRESS without a
    /// certificate) a partner, the store untrusting before and trusting after the record.
    pub(crate) async fn set_active(
        &self,
        caller: &Caller,
        change: Activation,
    ) -> Result<Partner, RegistryError> {
        caller.require_admin()?;
        let Activation { partner_id, active } = change;
        require_field("partner_id", &partner_id)?;
        let (partner, lease) = self.begin(&partner_id).await?;
        // A partner without a certificate has nothing in the store to (un)trust: it never
        // had a trusted certificate, nor FTMs (only ACTIVE partners create them).
        let in_store = partner.certificate_id.is_some();
        if !active && in_store {
            // Untrusted in the store first: the failure mode is "not trusted yet".
            let deactivated = self
                .store
                .set_deactivated(caller.user(), &partner_id, true)
                .await;
            self.marked_on_failure(&lease, deactivated).await?;
        }
        let updated = self
            .write_status(caller, &partner_id, &partner, &lease, active)
            .await?;
        if active && in_store {
            let restored = self.store.apply(caller.user(), &updated).await;
            self.marked_on_failure(&lease, restored).await?;
        }
        self.release(&lease).await;
        tracing::info!(
            partner_id = partner_id.as_str(),
            status = updated.status.as_str(),
            "partner status set"
        );
        Ok(updated)
    }

    /// The local write of a status change, with its audit row.
    async fn write_status(
        &self,
        caller: &Caller,
        partner_id: &str,
        partner: &Partner,
        lease: &Lease,
        active: bool,
    ) -> Result<Partner, RegistryError> {
        let (target, action) = match (active, &partner.certificate_id) {
            (false, _) => (PartnerStatus::Deactivated, "PARTNER_DEACTIVATED"),
            (true, Some(_)) => (PartnerStatus::Active, "PARTNER_ACTIVATED"),
            (true, None) => (PartnerStatus::InProgress, "PARTNER_ACTIVATED"),
        };
        let audit = self.audit(
            &caller.actor(),
            action,
            partner_id,
            Some(partner.status),
            target,
        );
        let written = self
            .repository
            .set_status(partner_id, target, audit, &lease.token)
            .await;
        self.marked_on_failure(lease, written).await
    }
}
