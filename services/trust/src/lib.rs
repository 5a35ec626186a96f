//! The platform's trust decision, in one place: X.509 parsing and path validation
//! ([`x509`]) and the contract's trust model over the store's data ([`snapshot`]).
//!
//! The certificate store answers `VerifyCertificateTrust` with it, and `pmp-trust-client`
//! answers the same question inside a relying service from a mirror of the store's data.
//! Both build a [`snapshot::TrustSnapshot`] from a [`model::TrustData`] with this code, so
//! equal data gives equal answers.

#![warn(missing_docs, unreachable_pub)]

mod incremental;
pub mod model;
pub mod snapshot;
pub mod x509;

pub use model::{
    RevokedCertificate, StoredTrustChange, StoredTrustEntry, TrustChanges, TrustData, TrustPolicy,
};
pub use snapshot::{TrustError, TrustSettings, TrustSnapshot, Verdict};
