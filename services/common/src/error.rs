//! The error model shared by every service: a gRPC status with a `google.rpc.ErrorInfo`
//! detail whose `reason` is the contract's code and whose domain is [`ERROR_DOMAIN`], plus
//! `BadRequest` (the field at fault) and `RetryInfo` (when to try again) where they apply.
//!
//! Each service keeps its own `thiserror` enum and says, per variant, what a client may
//! learn of it ([`ServiceError::disclosure`]); [`status_of`] is the one conversion to a
//! status, so the wire format is identical everywhere and no internal detail (SQL, file
//! paths, addresses of other services) reaches a client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every error the platform returns.
pub const ERROR_DOMAIN: &str = "pms.mosip.io";

/// Reason for a missing, invalid or expired token.
pub const REASON_UNAUTHENTICATED: &str = "KER-ATH-401";
/// Reason for a valid token that lacks the role or ownership.
pub const REASON_PERMISSION_DENIED: &str = "KER-ATH-403";
/// Reason for a blank or over-long required field.
pub const REASON_INVALID_FIELD: &str = "PMS_COR_001";
/// Reason attached to internal failures (the detail goes to the log, never to the client).
pub const REASON_INTERNAL: &str = "PMS_INTERNAL";
/// Reason attached when a dependency (database, another service) is unreachable.
pub const REASON_UNAVAILABLE: &str = "PMS_UNAVAILABLE";

/// What a client may learn of an error.
#[derive(Debug)]
pub enum Disclosure<'a> {
    /// A failure the client caused or can act on: its code and the contract's reason, the
    /// request field at fault (`BadRequest`) and when to retry (`RetryInfo`); the error's
    /// message is shown.
    Client {
        /// The gRPC code.
        code: Code,
        /// The contract's reason (`ErrorInfo.reason`).
        reason: &'a str,
        /// The request field at fault.
        field: Option<&'a str>,
        /// When the client may try again.
        retry_after: Option<std::time::Duration>,
    },
    /// A status from another platform service, relayed with its code and reason (see
    /// [`relay_status`]).
    Relayed {
        /// The service that answered it.
        dependency: &'static str,
        /// Its answer.
        status: &'a Status,
    },
    /// A database failure: `UNAVAILABLE` when the connection is lost, else `INTERNAL`.
    Database(&'a sea_orm::DbErr),
    /// A bug or an impossible state: `INTERNAL`, the detail only in the log.
    Internal,
}

impl<'a> Disclosure<'a> {
    /// A client failure with `code` and `reason`.
    pub fn client(code: Code, reason: &'a str) -> Self {
        Disclosure::Client {
            code,
            reason,
            field: None,
            retry_after: None,
        }
    }

    /// `INVALID_ARGUMENT` with `reason`, naming the request field at fault.
    pub fn invalid(reason: &'a str, field: &'a str) -> Self {
        Disclosure::Client {
            code: Code::InvalidArgument,
            reason,
            field: Some(field),
            retry_after: None,
        }
    }

    /// A client failure worth retrying after `retry_after`.
    pub fn retry(code: Code, reason: &'a str, retry_after: std::time::Duration) -> Self {
        Disclosure::Client {
            code,
            reason,
            field: None,
            retry_after: Some(retry_after),
        }
    }
}

/// An error a service answers with. Implemented by each service's error enum (and by the
/// shared [`crate::auth::AuthError`] and [`crate::pagination::PageError`]).
pub trait ServiceError: std::error::Error {
    /// What the client may learn of this error.
    fn disclosure(&self) -> Disclosure<'_>;

    /// The message the client sees for a [`Disclosure::Client`] error.
    fn client_message(&self) -> String {
        self.to_string()
    }

    /// The `ErrorInfo.reason` the client gets (without building the status).
    fn reason(&self) -> String {
        match self.disclosure() {
            Disclosure::Client { reason, .. } => reason.to_owned(),
            Disclosure::Relayed { status, .. } => match status.code() {
                Code::Unavailable
                | Code::Unknown
                | Code::Cancelled
                | Code::Internal
                | Code::DeadlineExceeded => REASON_UNAVAILABLE.to_owned(),
                _ => reason_of(status).unwrap_or_else(|| REASON_INTERNAL.to_owned()),
            },
            Disclosure::Database(
                sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_),
            ) => REASON_UNAVAILABLE.to_owned(),
            Disclosure::Database(_) | Disclosure::Internal => REASON_INTERNAL.to_owned(),
        }
    }
}

/// The gRPC status of `error`: the one place errors become statuses.
pub fn status_of<E: ServiceError + ?Sized>(error: &E) -> Status {
    match error.disclosure() {
        Disclosure::Client {
            code,
            reason,
            field,
            retry_after,
        } => {
            let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
            let message = error.client_message();
            if let Some(field) = field {
                details.set_bad_request(vec![FieldViolation::new(field, message.clone())]);
            }
            if let Some(retry_after) = retry_after {
                details.set_retry_info(Some(retry_after));
            }
            Status::with_error_details(code, message, details)
        }
        Disclosure::Relayed { dependency, status } => relay_status(dependency, status),
        Disclosure::Database(database_error) => database(database_error),
        Disclosure::Internal => internal(&error.to_string()),
    }
}

/// Builds a status with an `ErrorInfo { reason, domain }` detail.
pub fn error_status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// `INTERNAL` with a generic message; logs the detail with the current trace id.
pub fn internal(detail: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %detail, "internal error");
    error_status(Code::Internal, REASON_INTERNAL, "internal error")
}

/// `UNAVAILABLE` with a generic message; logs the detail.
pub fn unavailable(what: &str, detail: &dyn std::fmt::Display) -> Status {
    tracing::warn!(error = %detail, dependency = what, "dependency unavailable");
    error_status(
        Code::Unavailable,
        REASON_UNAVAILABLE,
        format!("{what} is unavailable, retry later"),
    )
}

/// Maps a database error: a lost connection is worth a retry (`UNAVAILABLE`), anything else
/// is a bug (`INTERNAL`). Either way the SQL detail goes to the log only.
pub fn database(error: &sea_orm::DbErr) -> Status {
    match error {
        sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => {
            unavailable("database", error)
        }
        other => internal(other),
    }
}

/// Re-creates a status received from another platform service so that its code, message
/// and `ErrorInfo` reason reach our own caller unchanged (MOSIP passes the keymanager's
/// first error through the same way). Transport failures become `UNAVAILABLE`.
pub fn relay_status(dependency: &str, status: &Status) -> Status {
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled => {
            unavailable(dependency, status)
        }
        Code::DeadlineExceeded => error_status(
            Code::DeadlineExceeded,
            REASON_UNAVAILABLE,
            format!("{dependency} did not answer in time, retry later"),
        ),
        Code::Unauthenticated | Code::PermissionDenied => internal(&format!(
            "{dependency} refused our service identity: {status}"
        )),
        code => match reason_of(status) {
            Some(reason) => {
                let details = status.get_error_details();
                let mut relayed =
                    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
                if let Some(bad_request) = details.bad_request() {
                    relayed.set_bad_request(bad_request.field_violations.clone());
                }
                Status::with_error_details(code, status.message(), relayed)
            }
            None => internal(&format!(
                "{dependency} answered without ErrorInfo: {status}"
            )),
        },
    }
}

/// The `ErrorInfo.reason` of a status, if it carries one.
pub fn reason_of(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .filter(|reason| !reason.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_status_carries_reason_and_domain() {
        let status = error_status(Code::NotFound, "PMS_PRT_005", "partner does not exist");
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "PMS_PRT_005");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(status.code(), Code::NotFound);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("e-mail is not valid")]
    struct InvalidEmail;

    impl ServiceError for InvalidEmail {
        fn disclosure(&self) -> Disclosure<'_> {
            Disclosure::invalid("PMS_PRT_012", "email")
        }
    }

    #[test]
    fn field_errors_carry_their_violation() {
        let status = status_of(&InvalidEmail);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "e-mail is not valid");
        let violations = status.get_details_bad_request().expect("bad request");
        assert_eq!(violations.field_violations[0].field, "email");
        assert_eq!(reason_of(&status).as_deref(), Some("PMS_PRT_012"));
        assert_eq!(InvalidEmail.reason(), "PMS_PRT_012");
    }

    #[test]
    fn relay_keeps_business_reason_and_hides_transport_detail() {
        let upstream = error_status(Code::FailedPrecondition, "KER-PCM-006", "no chain");
        let relayed = relay_status("certificate store", &upstream);
        assert_eq!(relayed.code(), Code::FailedPrecondition);
        assert_eq!(reason_of(&relayed).as_deref(), Some("KER-PCM-006"));

        let down = Status::unavailable("tcp connect error: 127.0.0.1:1 refused");
        let relayed = relay_status("certificate store", &down);
        assert_eq!(relayed.code(), Code::Unavailable);
        assert!(!relayed.message().contains("127.0.0.1"));
    }
}
