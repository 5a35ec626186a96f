//! Every way a certificate-store call can fail, and the one mapping to gRPC statuses.

use tonic::{Code, Status};

use pmp_common::auth::AuthError;
use pmp_common::error::{self as common_error, Disclosure, ServiceError};
use pmp_common::pagination::PageError;

use crate::x509::{CertError, ErrorClass};

/// Errors of the certificate store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A certificate rule (parse, version, key, algorithm, dates, chain, organisation...).
    #[error("{0}")]
    Certificate(#[from] CertError),
    /// The requested partner domain is not configured in `allowed_domains` (`KER-PCM-011`).
    #[error("partner domain is not one of the allowed domains")]
    InvalidDomain,
    /// The CA certificate is already held in the domain (as a CA or a partner/FTM
    /// certificate), or appears twice in the upload (`KER-PCM-003`).
    #[error("certificate already exists in the store for this domain")]
    DuplicateCa,
    /// The certificate is already held by another owner in the domain (or is one of the
    /// domain's CA certificates).
    #[error("certificate is already registered in this domain by another owner")]
    HeldByAnotherOwner,
    /// The certificate belongs to a partner other than the one named in the request.
    #[error("the certificate does not belong to this partner")]
    PartnerMismatch,
    /// The partner is deactivated: it cannot add certificates.
    #[error("partner is not active")]
    PartnerDeactivated,
    /// A request field is blank, unknown or inconsistent, e.g. a chip certificate without
    /// its partner (`PMS_COR_001`).
    #[error("{message}")]
    InvalidField {
        /// Request field at fault, reported as the violation's field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No CA certificate has the requested id (`KER-PMS-019`).
    #[error("CA certificate not found")]
    CaNotFound,
    /// No partner or chip certificate has the requested id (`KER-PCM-012`).
    #[error("partner certificate not found")]
    CertificateNotFound,
    /// The caller is not authenticated, or lacks the role or service permission.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A page size or page token that cannot be served.
    #[error(transparent)]
    Page(#[from] PageError),
    /// The certificate is revoked in the domain: it cannot be uploaded, trusted or revoked
    /// again (`PMS_CERT_REVOKED`).
    #[error("certificate is revoked")]
    Revoked,
    /// A CA on the certificate's chain is revoked in the domain (`PMS_CERT_REVOKED`).
    #[error("a CA certificate on its chain is revoked")]
    RevokedIssuer,
    /// The server is draining: a stream ends so that its client moves to another replica.
    #[error("the service is shutting down; reconnect")]
    ShuttingDown,
    /// The database failed or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A broken invariant: an unreadable stored row, a missing version row, a failed
    /// blocking task.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError for StoreError {
    fn disclosure(&self) -> Disclosure<'_> {
        use Code::{AlreadyExists, FailedPrecondition, NotFound};
        match self {
            StoreError::Certificate(error) => match error.class() {
                ErrorClass::InvalidArgument => {
                    Disclosure::invalid(error.reason(), "certificate_data")
                }
                ErrorClass::FailedPrecondition => {
                    Disclosure::client(FailedPrecondition, error.reason())
                }
                ErrorClass::Internal => Disclosure::Internal,
                ErrorClass::Unavailable => {
                    Disclosure::client(Code::Unavailable, common_error::REASON_UNAVAILABLE)
                }
            },
            StoreError::InvalidDomain => Disclosure::invalid("KER-PCM-011", "partner_domain"),
            StoreError::InvalidField { field, .. } => {
                Disclosure::invalid(common_error::REASON_INVALID_FIELD, field)
            }
            StoreError::DuplicateCa | StoreError::HeldByAnotherOwner => {
                Disclosure::client(AlreadyExists, "KER-PCM-003")
            }
            StoreError::PartnerMismatch => {
                Disclosure::invalid(common_error::REASON_INVALID_FIELD, "partner_id")
            }
            StoreError::PartnerDeactivated => Disclosure::client(FailedPrecondition, "PMS_PMP_016"),
            StoreError::CaNotFound => Disclosure::client(NotFound, "KER-PMS-019"),
            StoreError::CertificateNotFound => Disclosure::client(NotFound, "KER-PCM-012"),
            StoreError::Auth(error) => error.disclosure(),
            StoreError::Page(error) => error.disclosure(),
            StoreError::ShuttingDown => {
                Disclosure::client(Code::Unavailable, common_error::REASON_UNAVAILABLE)
            }
            StoreError::Revoked | StoreError::RevokedIssuer => {
                Disclosure::client(FailedPrecondition, REASON_REVOKED)
            }
            StoreError::Database(error) => Disclosure::Database(error),
            StoreError::Internal(_) => Disclosure::Internal,
        }
    }

    fn client_message(&self) -> String {
        match self {
            StoreError::Certificate(error) => error.message(),
            other => other.to_string(),
        }
    }
}

/// `ErrorInfo` reason of [`StoreError::Revoked`].
pub const REASON_REVOKED: &str = "PMS_CERT_REVOKED";

impl From<pmp_trust::TrustError> for StoreError {
    fn from(error: pmp_trust::TrustError) -> Self {
        match error {
            pmp_trust::TrustError::Certificate(error) => StoreError::Certificate(error),
            pmp_trust::TrustError::InvalidDomain => StoreError::InvalidDomain,
        }
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        common_error::status_of(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_key_that_cannot_sign_now_is_unavailable_without_its_reason() {
        let status = Status::from(StoreError::Certificate(CertError::SigningUnavailable(
            "token pmp: CKR_DEVICE_REMOVED".into(),
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            common_error::reason_of(&status).as_deref(),
            Some(common_error::REASON_UNAVAILABLE)
        );
        assert!(!status.message().contains("CKR_"), "{}", status.message());
    }
}
