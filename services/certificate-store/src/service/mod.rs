//! The certificate store's service API: the use cases behind the `CertificateStore` gRPC
//! service, which [`crate::grpc`] adapts to tonic.
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

mod ca;
mod expiry;
mod feed;
mod inputs;
mod outputs;
mod partner;
mod platform;
mod revocation;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use pmp_common::auth::{AuthError, Caller, FTM_MANAGEMENT, PARTNER_REGISTRY};

use crate::domain::OwnerType;
use crate::error::StoreError;
use crate::storage::CertificateRepository;
use crate::trust::TrustStore;
use crate::x509::{self, ValidationPolicy};

#[cfg(any(test, feature = "testing"))]
pub(crate) use expiry::sweep;
pub(crate) use expiry::{ExpiringPage, spawn_gauges, spawn_sweeper};
pub(crate) use feed::{FeedMessage, TrustFeed, spawn_pruner};
pub(crate) use inputs::{
    CaLookup, CrlRequest, Input, ListCa, ListExpiring, PartnerDeactivation, PartnerLookup, Revoke,
    SetTrusted, UploadCa, UploadPartner, VerifyTrust, WatchTrust,
};
pub(crate) use outputs::{CaList, CaUpload, CaUploadResult, TrustPath, UploadStatus};
pub(crate) use platform::{
    AddPlatformKey, ListPlatformKeys, PlatformKeyLookup, PlatformKeys, PublishedPlatformKeys,
    published_until,
};
pub(crate) use revocation::{Crl, Revoked};

/// Who may make a request, beyond being let through by `grpc::SERVICE_CALLERS`. Checked before
/// the request is decoded (a caller without the right is refused whatever it sent) and again
/// by the use case itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// An end user holding `PARTNER_ADMIN`.
    Admin,
    /// A platform service.
    Service,
    /// A platform service, or an end user holding `PARTNER_ADMIN`.
    ServiceOrAdmin,
    /// Any authenticated caller.
    Any,
}

impl Access {
    /// `PERMISSION_DENIED` (recorded as a security event) unless `caller` has this access.
    pub(crate) fn check(self, caller: &Caller) -> Result<(), AuthError> {
        match self {
            Access::Admin => caller.require_admin(),
            Access::Service => caller.require_service(),
            Access::ServiceOrAdmin if caller.is_service() => Ok(()),
            Access::ServiceOrAdmin => caller.require_admin(),
            Access::Any => Ok(()),
        }
    }
}

/// The access check of a use case, from the type of its request.
fn authorize<I: Input>(caller: &Caller, _request: &I) -> Result<(), AuthError> {
    I::ACCESS.check(caller)
}

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

/// Everything the certificate store's use cases need.
pub(crate) struct CertificateStoreService {
    repository: Arc<dyn CertificateRepository>,
    trust: Arc<TrustStore>,
    platform: Arc<PlatformKeys>,
    policy: ValidationPolicy,
    domains: Vec<String>,
    feed: Arc<TrustFeed>,
    crl_validity_hours: u64,
}

/// What the service is built from besides its storage and trust store.
pub(crate) struct ServiceParts {
    pub(crate) platform: Arc<PlatformKeys>,
    pub(crate) policy: ValidationPolicy,
    pub(crate) domains: Vec<String>,
    pub(crate) feed: Arc<TrustFeed>,
    pub(crate) crl_validity_hours: u64,
}

/// Runs `work` at once and then every `interval`, until `stop` changes: the store's
/// background chores (feed pruning, expiry sweep and gauges).
fn spawn_every<F, Fut>(interval: Duration, mut stop: tokio::sync::watch::Receiver<()>, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            work().await;
        }
    });
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

impl CertificateStoreService {
    /// Builds the service.
    pub(crate) fn new(
        repository: Arc<dyn CertificateRepository>,
        trust: Arc<TrustStore>,
        parts: ServiceParts,
    ) -> Self {
        CertificateStoreService {
            repository,
            trust,
            platform: parts.platform,
            policy: parts.policy,
            domains: parts.domains,
            feed: parts.feed,
            crl_validity_hours: parts.crl_validity_hours,
        }
    }

    /// The platform signing keys (rotation).
    pub(crate) fn platform_keys(&self) -> &PlatformKeys {
        &self.platform
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
}
