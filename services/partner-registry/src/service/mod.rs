//! The registry's service API, free of gRPC: each method takes the authenticated
//! [`Caller`](pmp_common::auth::Caller)
//! (when the RPC has one) and domain inputs, and answers domain values or a
//! [`RegistryError`]. The gRPC adapter ([`crate::grpc`]) authenticates, decodes and encodes.
//! Use cases live in their own modules; partner leases in [`lease`]; the event stream in
//! [`watch`].
//!
//! # Consistency with the certificate store
//!
//! The store holds, for every partner, what the registry's record says: its current
//! certificate marked trusted, any certificate it replaced not, and a deactivation fact
//! exactly while the partner is DEACTIVATED (which untrusts the partner's certificates and
//! its FTMs' chip certificates in one write). Every step that calls the store first takes
//! the partner's *lease* in the local database (a compare-and-set: no live lease), so steps
//! on one partner never interleave, and orders its calls so that a failure anywhere leaves
//! a certificate "not trusted yet", never "trusted but not recorded":
//!
//! * `UploadPartnerCertificate`: store upload (stored untrusted; idempotent for the same
//!   partner and certificate) → untrust the certificate it replaces → local write (record
//!   the certificate, IN_PROGRESS → ACTIVE, audit) → mark the new certificate trusted.
//! * `SetPartnerActive(false)`: store deactivation fact → local write DEACTIVATED.
//! * `SetPartnerActive(true)`: local write ACTIVE (IN_PROGRESS without a certificate) →
//!   remove the deactivation fact and re-mark the current certificate trusted.
//!
//! A failed store call is answered with the store's status (relayed) and the step's lease
//! is left behind as an expired marker when the store may have changed; a retry takes it
//! again and completes the step (every store call is idempotent), and otherwise the
//! reconciler ([`crate::reconcile`]) re-applies the partner's record to the store within
//! `consistency.reconcile_interval_seconds`.

mod activation;
mod certificate;
mod lease;
mod query;
mod registration;
mod session;
mod token_keys;
mod watch;

use pmp_common::time::SharedClock;
use std::sync::Arc;
use std::time::Duration;

use pmp_common::auth::TokenIssuer;
use pmp_common::event_feed::EventFeed;

use crate::config::RegistrationSettings;
use crate::domain::{AuditEvent, Partner, PartnerStatus};
use crate::error::RegistryError;
use crate::limits::Limits;
use crate::password::PasswordHasher;
use crate::storage::{PartnerRepository, SqlPartnerRepository};
use crate::upstream::CertificateStore;

pub(crate) use activation::Activation;
pub(crate) use certificate::{CertificateUpload, UploadedCertificate};
pub(crate) use query::{PartnerList, PartnerLookup, PartnerQuery};
pub(crate) use session::{AccessToken, Credentials, VerificationKeys};
pub(crate) use token_keys::{TokenKeys, published_until};
pub(crate) use watch::EventWatch;

/// Everything the registry's use cases need.
pub(crate) struct RegistryService {
    repository: Arc<dyn PartnerRepository>,
    tokens: Arc<TokenIssuer>,
    registration: RegistrationSettings,
    store: CertificateStore,
    lease: Duration,
    lease_wait: Duration,
    clock: SharedClock,
    hasher: PasswordHasher,
    limits: Arc<Limits>,
    /// The bootstrap admin's user name, which nobody may register.
    admin_username: String,
    /// The streams of `WatchPartnerEvents`.
    events: EventFeed<SqlPartnerRepository>,
    /// Hash checked when the user does not exist, so that a failed login takes as long
    /// whether or not the user name is known.
    dummy_hash: String,
}

/// Dependencies of [`RegistryService`].
pub(crate) struct RegistryParts {
    pub(crate) repository: Arc<dyn PartnerRepository>,
    pub(crate) tokens: Arc<TokenIssuer>,
    pub(crate) registration: RegistrationSettings,
    pub(crate) store: CertificateStore,
    /// How long a step may hold a partner's lease.
    pub(crate) lease: Duration,
    /// How long a request waits for another step on the same partner.
    pub(crate) lease_wait: Duration,
    /// Where lease times come from.
    pub(crate) clock: SharedClock,
    pub(crate) hasher: PasswordHasher,
    pub(crate) limits: Arc<Limits>,
    /// The bootstrap admin's user name (reserved).
    pub(crate) admin_username: String,
    /// The streams of `WatchPartnerEvents`.
    pub(crate) events: EventFeed<SqlPartnerRepository>,
}

impl RegistryService {
    /// Builds the service (hashes the timing-equaliser password once).
    pub(crate) async fn new(parts: RegistryParts) -> Result<Self, RegistryError> {
        let dummy_hash = parts.hasher.hash(uuid::Uuid::new_v4().to_string()).await?;
        Ok(RegistryService {
            repository: parts.repository,
            tokens: parts.tokens,
            registration: parts.registration,
            store: parts.store,
            lease: parts.lease,
            lease_wait: parts.lease_wait,
            clock: parts.clock,
            hasher: parts.hasher,
            limits: parts.limits,
            admin_username: parts.admin_username,
            events: parts.events,
            dummy_hash,
        })
    }

    fn audit(
        &self,
        actor: &str,
        action: &str,
        entity_id: &str,
        before: Option<PartnerStatus>,
        after: PartnerStatus,
    ) -> AuditEvent {
        AuditEvent::now(
            actor,
            action,
            entity_id,
            before.map(PartnerStatus::as_str),
            Some(after.as_str()),
        )
    }

    async fn existing_partner(&self, partner_id: &str) -> Result<Partner, RegistryError> {
        self.repository
            .find_partner(partner_id)
            .await?
            .ok_or(RegistryError::PartnerNotFound)
    }
}
