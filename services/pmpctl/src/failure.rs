//! Why a command failed, how that is printed on stderr, and the exit code per class of
//! failure, so that scripts can tell "fix your input" from "log in again" from "retry later".

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Any other failure: internal server error, local I/O error, unexpected answer.
pub const EXIT_OTHER: u8 = 1;
/// Bad arguments or configuration (also what clap uses for usage errors).
pub const EXIT_USAGE: u8 = 2;
/// UNAUTHENTICATED or PERMISSION_DENIED.
pub const EXIT_AUTH: u8 = 3;
/// NOT_FOUND.
pub const EXIT_NOT_FOUND: u8 = 4;
/// INVALID_ARGUMENT or OUT_OF_RANGE.
pub const EXIT_INVALID: u8 = 5;
/// ALREADY_EXISTS, FAILED_PRECONDITION or ABORTED.
pub const EXIT_CONFLICT: u8 = 6;
/// UNAVAILABLE or DEADLINE_EXCEEDED.
pub const EXIT_UNAVAILABLE: u8 = 7;

/// Which platform service a call went to, for messages and trace lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Registry,
    CertificateStore,
    FtmManagement,
}

impl Service {
    /// A name people recognise, for error messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Service::Registry => "partner registry",
            Service::CertificateStore => "certificate store",
            Service::FtmManagement => "FTM management",
        }
    }

    /// The full gRPC service name, as it appears in traces and health checks.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Service::Registry => pmp_proto::service_names::PARTNER_REGISTRY,
            Service::CertificateStore => pmp_proto::service_names::CERTIFICATE_STORE,
            Service::FtmManagement => pmp_proto::service_names::FTM_MANAGEMENT,
        }
    }
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The invocation cannot work as given (missing id, password, bad address or config).
    #[error("{0}")]
    Usage(String),
    /// A service answered with an error status (or could not be reached).
    #[error("{}", describe_status(*.service, .address, .status))]
    Rpc {
        service: Service,
        address: String,
        status: Box<Status>,
    },
    /// The call succeeded but refused what was asked (e.g. a CA bundle of which nothing was
    /// stored); carries its own exit code.
    #[error("{message}")]
    Refused { message: String, exit_code: u8 },
    /// Anything local: files, encoding, certificate generation.
    #[error("{0:#}")]
    Local(#[from] anyhow::Error),
}

impl CliError {
    /// The documented exit code of this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Rpc { status, .. } => exit_code_of(status.code()),
            CliError::Refused { exit_code, .. } => *exit_code,
            CliError::Local(_) => EXIT_OTHER,
        }
    }

    /// A hint for the next step, printed after the error when there is an obvious one.
    pub fn hint(&self) -> Option<&'static str> {
        let CliError::Rpc { status, .. } = self else {
            return None;
        };
        match status.code() {
            Code::Unauthenticated => {
                Some("log in with `pmpctl login`, or pass a token with --token / PMPCTL_TOKEN")
            }
            Code::Unavailable => {
                Some("check the address (--registry/--certstore/--ftm) and that the service runs")
            }
            _ => None,
        }
    }
}

/// The exit code for a gRPC status code.
pub fn exit_code_of(code: Code) -> u8 {
    match code {
        Code::Unauthenticated | Code::PermissionDenied => EXIT_AUTH,
        Code::NotFound => EXIT_NOT_FOUND,
        Code::InvalidArgument | Code::OutOfRange => EXIT_INVALID,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => EXIT_CONFLICT,
        Code::Unavailable | Code::DeadlineExceeded => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    }
}

/// The canonical upper-case name of a gRPC code, as in the gRPC documentation.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The `google.rpc.ErrorInfo` reason of a status, when it carries one.
pub fn reason_of(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .filter(|reason| !reason.is_empty())
}

/// `CODE REASON: message`; statuses without a reason (transport failures, servers that are
/// not ours) name the service and its address instead, which is what the operator needs.
fn describe_status(service: Service, address: &str, status: &Status) -> String {
    let code = code_name(status.code());
    let message = status.message().trim();
    match reason_of(status) {
        Some(reason) => format!("{code} {reason}: {message}"),
        None if message.is_empty() => {
            format!("{code}: {} at {address} failed", service.display_name())
        }
        None => format!("{code}: {} at {address}: {message}", service.display_name()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::ErrorDetails;

    use super::*;

    fn with_reason(code: Code, reason: &str, message: &str) -> Status {
        let details = ErrorDetails::with_error_info(reason, "pms.mosip.io", HashMap::new());
        Status::with_error_details(code, message, details)
    }

    fn rpc(status: Status) -> CliError {
        CliError::Rpc {
            service: Service::Registry,
            address: "http://127.0.0.1:50051".into(),
            status: Box::new(status),
        }
    }

    #[test]
    fn business_errors_show_code_reason_and_message() {
        let error = rpc(with_reason(
            Code::AlreadyExists,
            "PMS_PRT_051",
            "a partner is already registered with this id",
        ));
        assert_eq!(
            error.to_string(),
            "ALREADY_EXISTS PMS_PRT_051: a partner is already registered with this id"
        );
        assert_eq!(error.exit_code(), EXIT_CONFLICT);
    }

    #[test]
    fn transport_errors_name_the_service_and_address() {
        let error = rpc(Status::unavailable("tcp connect error"));
        assert_eq!(
            error.to_string(),
            "UNAVAILABLE: partner registry at http://127.0.0.1:50051: tcp connect error"
        );
        assert_eq!(error.exit_code(), EXIT_UNAVAILABLE);
        assert!(error.hint().is_some());
    }

    #[test]
    fn every_class_has_its_exit_code() {
        assert_eq!(exit_code_of(Code::Unauthenticated), EXIT_AUTH);
        assert_eq!(exit_code_of(Code::PermissionDenied), EXIT_AUTH);
        assert_eq!(exit_code_of(Code::NotFound), EXIT_NOT_FOUND);
        assert_eq!(exit_code_of(Code::InvalidArgument), EXIT_INVALID);
        assert_eq!(exit_code_of(Code::FailedPrecondition), EXIT_CONFLICT);
        assert_eq!(exit_code_of(Code::DeadlineExceeded), EXIT_UNAVAILABLE);
        assert_eq!(exit_code_of(Code::Internal), EXIT_OTHER);
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
    }
}
