//! Every way a certificate-store call can fail, and the one mapping to gRPC statuses.

use tonic::{Code, Status};

use pmp_common::error::{self as common_error, error_status, field_status};

use crate::x509::{CertError, ErrorClass};

/// Errors of the certificate store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A certificate rule (parse, version, key, algorithm, dates, chain, organisation...).
    #[error("{0}")]
    Certificate(#[from] CertError),
    #[error("partner domain is not one of the allowed domains")]
    InvalidDomain,
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
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("CA certificate not found")]
    CaNotFound,
    #[error("partner certificate not found")]
    CertificateNotFound,
    #[error("the caller is not allowed to perform this action")]
    PermissionDenied,
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// The contract's reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Certificate(error) => error.reason(),
            StoreError::InvalidDomain => "KER-PCM-011",
            StoreError::DuplicateCa | StoreError::HeldByAnotherOwner => "KER-PCM-003",
            StoreError::PartnerMismatch => common_error::REASON_INVALID_FIELD,
            StoreError::PartnerDeactivated => "PMS_PMP_016",
            StoreError::InvalidField { .. } => common_error::REASON_INVALID_FIELD,
            StoreError::CaNotFound => "KER-PMS-019",
            StoreError::CertificateNotFound => "KER-PCM-012",
            StoreError::PermissionDenied => common_error::REASON_PERMISSION_DENIED,
            StoreError::Database(_) | StoreError::Internal(_) => common_error::REASON_INTERNAL,
        }
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        let reason = error.reason();
        match &error {
            StoreError::Certificate(certificate_error) => match certificate_error.class() {
                ErrorClass::InvalidArgument => {
                    field_status(reason, "certificate_data", certificate_error.message())
                }
                ErrorClass::FailedPrecondition => error_status(
                    Code::FailedPrecondition,
                    reason,
                    certificate_error.message(),
                ),
                ErrorClass::Internal => common_error::internal(certificate_error),
            },
            StoreError::InvalidDomain => field_status(reason, "partner_domain", error.to_string()),
            StoreError::InvalidField { field, message } => {
                field_status(reason, field, message.clone())
            }
            StoreError::DuplicateCa | StoreError::HeldByAnotherOwner => {
                error_status(Code::AlreadyExists, reason, error.to_string())
            }
            StoreError::PartnerMismatch => field_status(reason, "partner_id", error.to_string()),
            StoreError::PartnerDeactivated => {
                error_status(Code::FailedPrecondition, reason, error.to_string())
            }
            StoreError::CaNotFound | StoreError::CertificateNotFound => {
                error_status(Code::NotFound, reason, error.to_string())
            }
            StoreError::PermissionDenied => common_error::permission_denied(),
            StoreError::Database(db_error) => common_error::database(db_error),
            StoreError::Internal(detail) => common_error::internal(detail),
        }
    }
}

impl From<Status> for StoreError {
    /// Authorization helpers of the common crate answer with statuses.
    fn from(status: Status) -> Self {
        match status.code() {
            Code::PermissionDenied => StoreError::PermissionDenied,
            _ => StoreError::Internal(status.message().to_owned()),
        }
    }
}
