//! The error model shared by every service: a gRPC status with a `google.rpc.ErrorInfo`
//! detail whose `reason` is the contract's code and whose domain is [`ERROR_DOMAIN`].
//!
//! Services keep their own `thiserror` enums and convert them with these builders so that
//! the wire format is identical everywhere and no internal detail reaches a client.

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

/// Builds a status with an `ErrorInfo { reason, domain }` detail.
pub fn error_status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// Builds a status with `ErrorInfo` and a `RetryInfo` saying when to try again.
pub fn retry_status(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    retry_after: std::time::Duration,
) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(code, message, details)
}

/// Builds an `INVALID_ARGUMENT` status with `ErrorInfo` and a `BadRequest` field violation.
pub fn field_status(reason: &str, field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    details.set_bad_request(vec![FieldViolation::new(field, description.clone())]);
    Status::with_error_details(Code::InvalidArgument, description, details)
}

/// `UNAUTHENTICATED` / `KER-ATH-401`.
pub fn unauthenticated(message: impl Into<String>) -> Status {
    error_status(Code::Unauthenticated, REASON_UNAUTHENTICATED, message)
}

/// `PERMISSION_DENIED` / `KER-ATH-403`.
pub fn permission_denied() -> Status {
    error_status(
        Code::PermissionDenied,
        REASON_PERMISSION_DENIED,
        "the caller is not allowed to perform this action",
    )
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

    #[test]
    fn field_status_carries_violation() {
        let status = field_status("PMS_PRT_012", "email", "e-mail is not valid");
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status.get_details_bad_request().expect("bad request");
        assert_eq!(violations.field_violations[0].field, "email");
        assert_eq!(reason_of(&status).as_deref(), Some("PMS_PRT_012"));
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
