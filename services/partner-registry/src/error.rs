//! Every way a registry call can fail, and the one mapping to gRPC statuses.

use tonic::{Code, Status};

use pmp_common::auth::AuthError;
use pmp_common::error::{self as common_error, Disclosure, ServiceError};
use pmp_common::pagination::PageError;

/// Errors of the partner registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A required field is blank or over-long (`PMS_COR_001`).
    #[error("{message}")]
    InvalidField {
        /// Request field at fault, reported as the violation's field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The e-mail does not have the shape of an address (`PMS_PRT_012`).
    #[error("e-mail is not a valid address")]
    InvalidEmail,
    /// The phone has characters or a length outside the rule (`PMS_PRT_013`).
    #[error("phone must be 1-16 digits, spaces, +, -, ( or )")]
    InvalidPhone,
    /// The requested partner id contains white space (`PMS_PRT_066`).
    #[error("partner id must not contain white space")]
    PartnerIdWhitespace,
    /// The requested partner id is over 36 characters (`PMS_PRT_052`).
    #[error("partner id must be at most 36 characters")]
    PartnerIdTooLong,
    /// No active partner type matches the requested one (`PMS_PRT_010`).
    #[error("partner type does not exist")]
    UnknownPartnerType,
    /// The password is under 8 characters or equals the partner id (`PMS_PRT_014`).
    #[error("password is too weak: at least 8 characters, not the user name")]
    WeakPassword,
    /// The language code is not among the configured languages (`PMS_PRT_056`).
    #[error("language is not supported")]
    UnsupportedLanguage,
    /// A partner or user already has the requested id (`PMS_PRT_051`).
    #[error("a partner is already registered with this id")]
    DuplicatePartnerId,
    /// Another partner already registered this e-mail, case-insensitively (`PMS_PRT_011`).
    #[error("this e-mail is already registered")]
    DuplicateEmail,
    /// `Login` with an unknown user or a wrong password; deliberately not saying which.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// The partner id names no partner (`PMS_PRT_005`).
    #[error("partner does not exist")]
    PartnerNotFound,
    /// The partner has no certificate recorded yet (`KER-PCM-012`).
    #[error("no certificate was uploaded for this partner")]
    CertificateNotFound,
    /// A deactivated partner tries to log in or upload a certificate (`PMS_PMP_016`).
    #[error("partner is not active")]
    PartnerNotActive,
    /// The caller is not authenticated, or lacks the role or ownership.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A page size or page token that cannot be served.
    #[error(transparent)]
    Page(#[from] PageError),
    /// Too many failed logins (or registrations) for this user name or address.
    #[error("too many attempts, retry later")]
    LockedOut {
        /// Until the oldest counted attempt leaves the window (at least a second).
        retry_after: std::time::Duration,
    },
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
    /// The database failed or refused a statement other than a known constraint.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A token signing key added before.
    #[error("this token signing key was added before")]
    KeyExists,
    /// No token signing key has this id.
    #[error("no token signing key has this id")]
    KeyNotFound,
    /// A token signing key the registry cannot use (unknown label, unreadable file, a key of
    /// the wrong type or size).
    #[error("{message}")]
    UnusableKey {
        /// `key_label` or `key_file`.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The token signing key could not sign now (its HSM unreachable).
    #[error("signing key unavailable: {0}")]
    KeyStore(String),
    /// A fault of the registry itself (a corrupt stored value, a hashing failure).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError for RegistryError {
    fn disclosure(&self) -> Disclosure<'_> {
        use Code::{AlreadyExists, FailedPrecondition, NotFound, ResourceExhausted, Unavailable};
        match self {
            RegistryError::InvalidField { field, .. } => {
                Disclosure::invalid(common_error::REASON_INVALID_FIELD, field)
            }
            RegistryError::InvalidEmail => Disclosure::invalid("PMS_PRT_012", "email"),
            RegistryError::InvalidPhone => Disclosure::invalid("PMS_PRT_013", "phone"),
            RegistryError::PartnerIdWhitespace => Disclosure::invalid("PMS_PRT_066", "partner_id"),
            RegistryError::PartnerIdTooLong => Disclosure::invalid("PMS_PRT_052", "partner_id"),
            RegistryError::UnknownPartnerType => Disclosure::invalid("PMS_PRT_010", "partner_type"),
            RegistryError::WeakPassword => Disclosure::invalid("PMS_PRT_014", "password"),
            RegistryError::UnsupportedLanguage => Disclosure::invalid("PMS_PRT_056", "lang_code"),
            RegistryError::DuplicatePartnerId => Disclosure::client(AlreadyExists, "PMS_PRT_051"),
            RegistryError::DuplicateEmail => Disclosure::client(AlreadyExists, "PMS_PRT_011"),
            RegistryError::InvalidCredentials => {
                Disclosure::client(Code::Unauthenticated, common_error::REASON_UNAUTHENTICATED)
            }
            RegistryError::PartnerNotFound => Disclosure::client(NotFound, "PMS_PRT_005"),
            RegistryError::CertificateNotFound => Disclosure::client(NotFound, "KER-PCM-012"),
            RegistryError::PartnerNotActive => {
                Disclosure::client(FailedPrecondition, "PMS_PMP_016")
            }
            RegistryError::Auth(error) => error.disclosure(),
            RegistryError::Page(error) => error.disclosure(),
            RegistryError::KeyExists => Disclosure::client(AlreadyExists, "PMS_KEY_EXISTS"),
            RegistryError::KeyNotFound => Disclosure::client(NotFound, "PMS_KEY_NOT_FOUND"),
            RegistryError::UnusableKey { field, .. } => {
                Disclosure::invalid(common_error::REASON_INVALID_FIELD, field)
            }
            RegistryError::Busy | RegistryError::Interrupted | RegistryError::KeyStore(_) => {
                Disclosure::client(Unavailable, common_error::REASON_UNAVAILABLE)
            }
            RegistryError::LockedOut { retry_after } => {
                Disclosure::retry(ResourceExhausted, "KER-ATH-429", *retry_after)
            }
            RegistryError::Overloaded => Disclosure::client(
                ResourceExhausted,
                pmp_common::limits::REASON_RESOURCE_EXHAUSTED,
            ),
            RegistryError::CertificateStore(status) => Disclosure::Relayed {
                dependency: "certificate store",
                status,
            },
            RegistryError::Database(error) => Disclosure::Database(error),
            RegistryError::Internal(_) => Disclosure::Internal,
        }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Status {
        common_error::status_of(&error)
    }
}
