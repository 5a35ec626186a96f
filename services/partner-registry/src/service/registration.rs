//! `RegisterPartner`: anonymous self-registration of a partner and its user account.

use chrono::Utc;

use pmp_common::security::{self, SecurityEventKind};

use super::RegistryService;
use crate::domain::{
    Partner, PartnerStatus, Registration, RegistrationInput, role_of_partner_type,
};
use crate::error::RegistryError;

impl RegistryService {
    /// Registers a partner (IN_PROGRESS until its certificate is accepted) with its user,
    /// after the contract's field rules and the per-address registration limit.
    pub(crate) async fn register(
        &self,
        input: RegistrationInput,
        address: &str,
    ) -> Result<Partner, RegistryError> {
        let registration = input.validate(
            &self.registration.languages,
            &self.registration.default_language,
        )?;
        self.count_registration(address)?;
        let partner_type = self.available_partner_type(&registration).await?;
        let password_hash = self
            .hasher
            .hash(registration.password.expose().to_owned())
            .await?;
        let partner = new_partner(registration, partner_type);
        let audit = self.audit(
            &partner.partner_id,
            "PARTNER_REGISTERED",
            &partner.partner_id,
            None,
            partner.status,
        );
        self.repository
            .create_partner(
                &partner,
                &password_hash,
                &roles_of(&partner.partner_type),
                audit,
            )
            .await?;
        tracing::info!(partner_id = %partner.partner_id, partner_type = %partner.partner_type, "partner registered");
        Ok(partner)
    }

    /// Counts a registration from `address`, refused once the address is over its limit.
    fn count_registration(&self, address: &str) -> Result<(), RegistryError> {
        let now = self.clock.now();
        let registrations = &self.limits.registrations_by_address;
        if let Err(retry_after) = registrations.check(address, now) {
            security::record(
                SecurityEventKind::LockedOut,
                &format!("anonymous@{address}"),
            );
            return Err(RegistryError::LockedOut { retry_after });
        }
        registrations.record(address, now);
        Ok(())
    }

    /// The canonical partner type of a registration whose partner id is still free (and is
    /// not the bootstrap admin's user name).
    async fn available_partner_type(
        &self,
        registration: &Registration,
    ) -> Result<String, RegistryError> {
        if registration
            .partner_id
            .eq_ignore_ascii_case(&self.admin_username)
        {
            return Err(RegistryError::DuplicatePartnerId);
        }
        let partner_type = self
            .repository
            .canonical_partner_type(&registration.partner_type)
            .await?
            .ok_or(RegistryError::UnknownPartnerType)?;
        if self
            .repository
            .find_user(&registration.partner_id)
            .await?
            .is_some()
        {
            return Err(RegistryError::DuplicatePartnerId);
        }
        Ok(partner_type)
    }
}

/// The record of a new partner, IN_PROGRESS.
fn new_partner(registration: Registration, partner_type: String) -> Partner {
    let now = Utc::now();
    Partner {
        partner_id: registration.partner_id,
        first_name: registration.first_name,
        last_name: registration.last_name,
        organization_name: registration.organization_name,
        partner_type,
        address: registration.address,
        email: registration.email,
        phone: registration.phone,
        lang_code: registration.lang_code,
        status: PartnerStatus::InProgress,
        certificate_id: None,
        create_time: now,
        update_time: now,
    }
}

/// Roles granted to a self-registered partner. Self-registration never grants
/// `PARTNER_ADMIN`: administrators come from configuration (or the identity provider).
fn roles_of(partner_type: &str) -> Vec<String> {
    let role = role_of_partner_type(partner_type);
    if role == pmp_common::auth::ROLE_PARTNER_ADMIN {
        Vec::new()
    } else {
        vec![role]
    }
}
