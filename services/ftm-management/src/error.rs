//! Every way an FTM management call can fail, and the one mapping to gRPC statuses.
//!
//! Statuses from the registry and the certificate store are relayed with their business
//! reason (e.g. `KER-PCM-006`); transport failures become `UNAVAILABLE` or
//! `DEADLINE_EXCEEDED`; database and internal failures are logged with the trace id and
//! answered with a generic message.

use tonic::{Code, Status};

use pmp_common::auth::AuthError;
use pmp_common::error::{self as common_error, Disclosure, ServiceError};
use pmp_common::pagination::PageError;

/// Errors of the FTM management service.
#[derive(Debug, thiserror::Error)]
pub enum FtmError {
    /// A required field is blank or over its length limit.
    #[error("{message}")]
    InvalidField {
        /// Request field at fault, reported as the violation's field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The caller is not authenticated, or lacks the role or does not own the FTM.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A page size or page token that cannot be served.
    #[error(transparent)]
    Page(#[from] PageError),
    /// The id names no FTM (`PMP_AUT_031`).
    #[error("FTM does not exist")]
    FtmNotFound,
    /// The provider partner is missing, not active, or not an FTM provider.
    #[error("the FTM provider is missing, inactive or not of type FTM_Provider")]
    ProviderNotUsable,
    /// The provider already has a live FTM of this make and model (`PMP_AUT_032`).
    #[error("an FTM with the same make and model is already registered for this partner")]
    DuplicateMakeModel,
    /// Approval, or a certificate download, of an FTM with no chip certificate (`PMP_AUT_033`).
    #[error("no certificate was uploaded for this FTM")]
    CertificateMissing,
    /// Upload while the FTM is pending approval or rejected (`PMP_AUT_038`).
    #[error(
        "a certificate can only be uploaded for an FTM that is pending certificate upload or approved"
    )]
    UploadNotAllowed,
    /// Upload to, or approval of, a deactivated FTM (`PMP_AUT_039`).
    #[error("the FTM is deactivated")]
    FtmDeactivated,
    /// Approval or rejection of an FTM that is not pending approval (`PMS_FTM_ERROR_012`).
    #[error("the FTM is not pending approval")]
    NotPendingApproval,
    /// Deactivation of an FTM that was never approved (`PMS_FTM_ERROR_010`).
    #[error("the FTM is not approved")]
    NotApproved,
    /// Deactivation of an FTM that is already deactivated (`PMS_FTM_ERROR_007`).
    #[error("the FTM is already deactivated")]
    AlreadyDeactivated,
    /// `order_by` names no sortable field or has a bad direction (`PMS_PRT_357`).
    #[error(
        "order_by must be one of create_time, update_time, make, model, partner_id, status, optionally followed by desc"
    )]
    InvalidOrderBy,
    /// Another change of the same FTM is in progress and did not finish in time.
    #[error("the FTM is being changed by another request, retry shortly")]
    Busy,
    /// The step's lease was taken over before it could record its result.
    #[error("the change could not be completed in time, retry")]
    Interrupted,
    /// A status from the partner registry (reason kept, transport failures generalised).
    #[error("partner registry: {0}")]
    Registry(Status),
    /// A status from the certificate store (reason kept, transport failures generalised).
    #[error("certificate store: {0}")]
    CertificateStore(Status),
    /// The database failed or refused a statement other than a known constraint.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A fault of the service itself (e.g. a corrupt stored value), never the caller's.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError for FtmError {
    fn disclosure(&self) -> Disclosure<'_> {
        use Code::{AlreadyExists, FailedPrecondition, NotFound, Unavailable};
        match self {
            FtmError::InvalidField { field, .. } => {
                Disclosure::invalid(common_error::REASON_INVALID_FIELD, field)
            }
            FtmError::Auth(error) => error.disclosure(),
            FtmError::Page(error) => error.disclosure(),
            FtmError::FtmNotFound => Disclosure::client(NotFound, "PMP_AUT_031"),
            FtmError::ProviderNotUsable => Disclosure::client(FailedPrecondition, "PMP_AUT_030"),
            FtmError::DuplicateMakeModel => Disclosure::client(AlreadyExists, "PMP_AUT_032"),
            FtmError::CertificateMissing => Disclosure::client(FailedPrecondition, "PMP_AUT_033"),
            FtmError::UploadNotAllowed => Disclosure::client(FailedPrecondition, "PMP_AUT_038"),
            FtmError::FtmDeactivated => Disclosure::client(FailedPrecondition, "PMP_AUT_039"),
            FtmError::NotPendingApproval => {
                Disclosure::client(FailedPrecondition, "PMS_FTM_ERROR_012")
            }
            FtmError::NotApproved => Disclosure::client(FailedPrecondition, "PMS_FTM_ERROR_010"),
            FtmError::AlreadyDeactivated => {
                Disclosure::client(FailedPrecondition, "PMS_FTM_ERROR_007")
            }
            FtmError::InvalidOrderBy => Disclosure::invalid("PMS_PRT_357", "order_by"),
            // A retry is expected to succeed.
            FtmError::Busy | FtmError::Interrupted => {
                Disclosure::client(Unavailable, common_error::REASON_UNAVAILABLE)
            }
            FtmError::Registry(status) => Disclosure::Relayed {
                dependency: "partner registry",
                status,
            },
            FtmError::CertificateStore(status) => Disclosure::Relayed {
                dependency: "certificate store",
                status,
            },
            FtmError::Database(error) => Disclosure::Database(error),
            FtmError::Internal(_) => Disclosure::Internal,
        }
    }
}

impl From<FtmError> for Status {
    fn from(error: FtmError) -> Status {
        common_error::status_of(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::error::{error_status, reason_of};

    #[test]
    fn statuses_carry_code_and_reason() {
        let cases: Vec<(FtmError, Code, &str)> = vec![
            (
                FtmError::InvalidField {
                    field: "make",
                    message: "make is required".into(),
                },
                Code::InvalidArgument,
                "PMS_COR_001",
            ),
            (
                FtmError::Auth(AuthError::PermissionDenied),
                Code::PermissionDenied,
                "KER-ATH-403",
            ),
            (FtmError::FtmNotFound, Code::NotFound, "PMP_AUT_031"),
            (
                FtmError::ProviderNotUsable,
                Code::FailedPrecondition,
                "PMP_AUT_030",
            ),
            (
                FtmError::DuplicateMakeModel,
                Code::AlreadyExists,
                "PMP_AUT_032",
            ),
            (
                FtmError::CertificateMissing,
                Code::FailedPrecondition,
                "PMP_AUT_033",
            ),
            (
                FtmError::UploadNotAllowed,
                Code::FailedPrecondition,
                "PMP_AUT_038",
            ),
            (
                FtmError::FtmDeactivated,
                Code::FailedPrecondition,
                "PMP_AUT_039",
            ),
            (
                FtmError::NotPendingApproval,
                Code::FailedPrecondition,
                "PMS_FTM_ERROR_012",
            ),
            (
                FtmError::NotApproved,
                Code::FailedPrecondition,
                "PMS_FTM_ERROR_010",
            ),
            (
                FtmError::AlreadyDeactivated,
                Code::FailedPrecondition,
                "PMS_FTM_ERROR_007",
            ),
            (
                FtmError::InvalidOrderBy,
                Code::InvalidArgument,
                "PMS_PRT_357",
            ),
            (
                FtmError::Page(PageError::NegativePageSize),
                Code::InvalidArgument,
                "PMS_PRT_361",
            ),
            (
                FtmError::Page(PageError::InvalidPageToken),
                Code::InvalidArgument,
                "PMS_PRT_362",
            ),
            (FtmError::Busy, Code::Unavailable, "PMS_UNAVAILABLE"),
            (FtmError::Interrupted, Code::Unavailable, "PMS_UNAVAILABLE"),
            (
                FtmError::Internal("disk on fire at /var/lib/x".into()),
                Code::Internal,
                "PMS_INTERNAL",
            ),
        ];
        for (error, code, reason) in cases {
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{reason}");
            assert_eq!(reason_of(&status).as_deref(), Some(reason));
            assert!(!status.message().contains("/var/lib"), "no internals leak");
        }
    }

    #[test]
    fn dependency_statuses_are_relayed() {
        let upstream = error_status(Code::FailedPrecondition, "KER-PCM-006", "no chain");
        let status = Status::from(FtmError::CertificateStore(upstream));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(reason_of(&status).as_deref(), Some("KER-PCM-006"));
        let down = Status::from(FtmError::Registry(Status::unavailable(
            "tcp connect error 127.0.0.1:50051",
        )));
        assert_eq!(down.code(), Code::Unavailable);
        assert!(!down.message().contains("127.0.0.1"));
        let slow = Status::from(FtmError::CertificateStore(Status::deadline_exceeded(
            "timeout",
        )));
        assert_eq!(slow.code(), Code::DeadlineExceeded);
    }

    #[test]
    fn field_errors_name_their_field() {
        let status = Status::from(FtmError::InvalidOrderBy);
        let violations =
            tonic_types::StatusExt::get_details_bad_request(&status).expect("violations");
        assert_eq!(violations.field_violations[0].field, "order_by");
    }
}
