//! Every way a registry call can fail, and the one mapping to gRPC statuses.

use tonic::{Code, Status};

use pmp_common::error::{self as common_error, error_status, field_status};

/// Errors of the partner registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("e-mail is not a valid address")]
    InvalidEmail,
    #[error("phone must be 1-16 digits, spaces, +, -, ( or )")]
    InvalidPhone,
    #[error("partner id must not contain white space")]
    PartnerIdWhitespace,
    #[error("partner id must be at most 36 characters")]
    PartnerIdTooLong,
    #[error("partner type does not exist")]
    UnknownPartnerType,
    #[error("password is too weak: at least 8 characters, not the user name")]
    WeakPassword,
    #[error("language is not supported")]
    UnsupportedLanguage,
    #[error("a partner is already registered with this id")]
    DuplicatePartnerId,
    #[error("this e-mail is already registered")]
    DuplicateEmail,
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("partner does not exist")]
    PartnerNotFound,
    #[error("no certificate was uploaded for this partner")]
    CertificateNotFound,
    #[error("partner is not active")]
    PartnerNotActive,
    #[error("the caller is not allowed to perform this action")]
    PermissionDenied,
    /// Too many failed logins (or registrations) for this user name or address.
    #[error("too many attempts, retry later")]
    LockedOut { retry_after: std::time::Duration },
    /// Too many password checks in progress.
    #[error("the service is busy, retry shortly")]
    Overloaded,
    /// Another change to the same partner did not finish within the wait.
    #[error("another change to this partner is in progress, retry")]
    Busy,
    /// The step's lease was taken over before it could record its result.
    #[error("the change could not be completed in time, retry")]
    Interrupted,
    /// A status relayed from the certificate store (its reason is kept).
    #[error("certificate store: {0}")]
    CertificateStore(Status),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// The contract's reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::InvalidField { .. } => "PMS_COR_001",
            RegistryError::InvalidEmail => "PMS_PRT_012",
            RegistryError::InvalidPhone => "PMS_PRT_013",
            RegistryError::PartnerIdWhitespace => "PMS_PRT_066",
            RegistryError::PartnerIdTooLong => "PMS_PRT_052",
            RegistryError::UnknownPartnerType => "PMS_PRT_010",
            RegistryError::WeakPassword => "PMS_PRT_014",
            RegistryError::UnsupportedLanguage => "PMS_PRT_056",
            RegistryError::DuplicatePartnerId => "PMS_PRT_051",
            RegistryError::DuplicateEmail => "PMS_PRT_011",
            RegistryError::InvalidCredentials => common_error::REASON_UNAUTHENTICATED,
            RegistryError::PartnerNotFound => "PMS_PRT_005",
            RegistryError::CertificateNotFound => "KER-PCM-012",
            RegistryError::PartnerNotActive => "PMS_PMP_016",
            RegistryError::PermissionDenied => common_error::REASON_PERMISSION_DENIED,
            RegistryError::Busy | RegistryError::Interrupted => common_error::REASON_UNAVAILABLE,
            RegistryError::LockedOut { .. } => "KER-ATH-429",
            RegistryError::Overloaded => pmp_common::limits::REASON_RESOURCE_EXHAUSTED,
            RegistryError::CertificateStore(_) => "PMS_CERTIFICATE_STORE",
            RegistryError::Database(_) | RegistryError::Internal(_) => {
                common_error::REASON_INTERNAL
            }
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            RegistryError::InvalidField { field, .. } => Some(field),
            RegistryError::InvalidEmail | RegistryError::DuplicateEmail => Some("email"),
            RegistryError::InvalidPhone => Some("phone"),
            RegistryError::PartnerIdWhitespace | RegistryError::PartnerIdTooLong => {
                Some("partner_id")
            }
            RegistryError::UnknownPartnerType => Some("partner_type"),
            RegistryError::WeakPassword => Some("password"),
            RegistryError::UnsupportedLanguage => Some("lang_code"),
            _ => None,
        }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Status {
        let reason = error.reason();
        match &error {
            RegistryError::InvalidField { .. }
            | RegistryError::InvalidEmail
            | RegistryError::InvalidPhone
            | RegistryError::PartnerIdWhitespace
            | RegistryError::PartnerIdTooLong
            | RegistryError::UnknownPartnerType
            | RegistryError::WeakPassword
            | RegistryError::UnsupportedLanguage => {
                field_status(reason, error.field().unwrap_or_default(), error.to_string())
            }
            RegistryError::DuplicatePartnerId | RegistryError::DuplicateEmail => {
                error_status(Code::AlreadyExists, reason, error.to_string())
            }
            RegistryError::InvalidCredentials => {
                error_status(Code::Unauthenticated, reason, error.to_string())
            }
            RegistryError::PartnerNotFound | RegistryError::CertificateNotFound => {
                error_status(Code::NotFound, reason, error.to_string())
            }
            RegistryError::PartnerNotActive => {
                error_status(Code::FailedPrecondition, reason, error.to_string())
            }
            RegistryError::PermissionDenied => common_error::permission_denied(),
            RegistryError::Busy | RegistryError::Interrupted => {
                error_status(Code::Unavailable, reason, error.to_string())
            }
            RegistryError::LockedOut { retry_after } => common_error::retry_status(
                Code::ResourceExhausted,
                reason,
                error.to_string(),
                *retry_after,
            ),
            RegistryError::Overloaded => {
                error_status(Code::ResourceExhausted, reason, error.to_string())
            }
            RegistryError::CertificateStore(status) => {
                common_error::relay_status("certificate store", status)
            }
            RegistryError::Database(db_error) => common_error::database(db_error),
            RegistryError::Internal(detail) => common_error::internal(detail),
        }
    }
}
