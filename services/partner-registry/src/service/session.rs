//! `Login` (user name and password for an access token, with failure limits) and the keys
//! that verify the tokens.

use std::time::Duration;

use pmp_common::security::{self, SecurityEventKind};

use super::RegistryService;
use crate::domain::{PartnerStatus, Password, check_password_length};
use crate::error::RegistryError;
use crate::storage::UserRecord;

/// A login attempt: both fields present (checked when decoded).
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Password,
}

/// An access token issued at login.
pub(crate) struct AccessToken {
    pub(crate) token: String,
    /// How long the token is valid from now.
    pub(crate) lifetime: Duration,
    pub(crate) roles: Vec<String>,
}

/// What other services need to verify the registry's access tokens themselves.
pub(crate) struct VerificationKeys {
    /// The current key and the previous ones, so that rotation does not reject live tokens.
    pub(crate) public_keys_pem: Vec<String>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks: String,
}

impl RegistryService {
    /// Issues an access token for valid credentials. Failures count against the user name
    /// and the client `address`, and a failed login takes as long whether or not the user
    /// exists. Deactivated partners cannot log in.
    pub(crate) async fn login(
        &self,
        credentials: Credentials,
        address: &str,
    ) -> Result<AccessToken, RegistryError> {
        let Credentials { username, password } = credentials;
        check_password_length(password.expose())?;
        let now = self.clock.now();
        self.check_not_locked_out(&username, address, now)?;
        let user = self
            .verified_user(&username, password, address, now)
            .await?;
        self.limits.failures_by_user.clear(&username);
        if let Some(partner) = self.repository.find_partner(&user.username).await?
            && partner.status == PartnerStatus::Deactivated
        {
            return Err(RegistryError::PartnerNotActive);
        }
        // Signing may be an HSM round trip: off the async workers.
        let tokens = std::sync::Arc::clone(&self.tokens);
        let (subject, roles) = (user.username.clone(), user.roles.clone());
        let token = tokio::task::spawn_blocking(move || tokens.issue(&subject, &roles))
            .await
            .map_err(|error| RegistryError::Internal(error.to_string()))?
            .map_err(|error| match error {
                pmp_common::keys::KeyError::Signing(
                    pmp_common::signing::SigningError::Unavailable(reason),
                ) => RegistryError::KeyStore(reason),
                other => RegistryError::Internal(other.to_string()),
            })?;
        Ok(AccessToken {
            token,
            lifetime: self.tokens.lifetime(),
            roles: user.roles,
        })
    }

    /// Refuses a login while the user name or the address has too many recent failures.
    fn check_not_locked_out(
        &self,
        username: &str,
        address: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), RegistryError> {
        let limits = &self.limits;
        if let Err(retry_after) = limits
            .failures_by_user
            .check(username, now)
            .and(limits.failures_by_address.check(address, now))
        {
            security::record(SecurityEventKind::LockedOut, username);
            return Err(RegistryError::LockedOut { retry_after });
        }
        Ok(())
    }

    /// The user whose password `password` is; a failure is counted and reported.
    async fn verified_user(
        &self,
        username: &str,
        password: Password,
        address: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<UserRecord, RegistryError> {
        let user = self.repository.find_user(username).await?;
        let hash = user.as_ref().map_or_else(
            || self.dummy_hash.clone(),
            |user| user.password_hash.clone(),
        );
        let matches = self
            .hasher
            .verify(password.expose().to_owned(), hash)
            .await?;
        let Some(user) = user.filter(|_| matches) else {
            let limits = &self.limits;
            limits.failures_by_user.record(username, now);
            limits.failures_by_address.record(address, now);
            security::record(SecurityEventKind::LoginFailed, username);
            return Err(RegistryError::InvalidCredentials);
        };
        Ok(user)
    }

    /// The public keys, issuer and audience of the registry's access tokens.
    pub(crate) fn verification_keys(&self) -> VerificationKeys {
        VerificationKeys {
            public_keys_pem: self.tokens.public_keys_pem(),
            issuer: self.tokens.issuer().to_owned(),
            audience: self.tokens.audience().to_owned(),
            jwks: self.tokens.jwks(),
        }
    }
}
