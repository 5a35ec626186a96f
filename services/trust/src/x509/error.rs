//! The certificate errors, one variant per contract rule, each knowing its reason code.

use chrono::{DateTime, Utc};
use openssl::error::ErrorStack;

/// Reason the platform attaches to internal failures (same value as `pmp-common`'s
/// `REASON_INTERNAL`; repeated here to keep this module free of service dependencies).
const REASON_INTERNAL: &str = "PMS_INTERNAL";
/// Reason of a temporary failure (as `pmp-common`'s `REASON_UNAVAILABLE`).
const REASON_UNAVAILABLE: &str = "PMS_UNAVAILABLE";

/// The gRPC status class of an error, so the service can map it without a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `INVALID_ARGUMENT`: the certificate itself is unacceptable.
    InvalidArgument,
    /// `FAILED_PRECONDITION`: the certificate is fine but the store lacks its issuers.
    FailedPrecondition,
    /// `INTERNAL`: a cryptographic library failure; log the detail, answer generically.
    Internal,
    /// `UNAVAILABLE`: the signing key's HSM could not be reached; retrying may succeed.
    Unavailable,
}

/// Why a certificate was refused. Each variant is one rule of the contract; see
/// [`CertError::reason`] for its code. `Display` is the client-safe [`CertError::message`],
/// except for [`CertError::Internal`] whose `Display` carries the detail for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The certificate data is empty or white space (KER-PCM-001).
    #[error("{}", self.message())]
    Blank,
    /// The data is neither PEM nor a base64 PKCS#7 bundle (KER-PCM-001).
    #[error("{}", self.message())]
    NotPemOrP7b,
    /// The data parsed but holds no certificate (an empty PKCS#7, a PEM private key...)
    /// (KER-PCM-001).
    #[error("{}", self.message())]
    NoCertificate,
    /// Exactly one certificate was expected but several were sent (KER-PCM-001).
    #[error("{}", self.message())]
    ExpectedSingleCertificate {
        /// How many certificates the data held.
        found: usize,
    },
    /// More certificates than a request may carry (KER-PCM-001).
    #[error("{}", self.message())]
    TooManyCertificates {
        /// How many certificates the data held.
        found: usize,
        /// The most allowed.
        max: usize,
    },
    /// PEM armour was present but its contents are not a valid certificate (KER-KMS-013).
    #[error("{}", self.message())]
    Unparsable {
        /// Which part failed, in our own words (never OpenSSL's text, which names files).
        detail: String,
    },
    /// Not an X.509 v3 certificate (KER-PCM-007).
    #[error("{}", self.message())]
    NotVersion3 {
        /// The certificate's version (1 or 2).
        version: u8,
    },
    /// Uploaded as a CA without basicConstraints `CA:TRUE` (KER-PCM-019).
    #[error("{}", self.message())]
    NotCa,
    /// RSA key under the minimum, EC key under the minimum, or a key type not accepted
    /// (KER-PCM-013).
    #[error("{}", self.message())]
    WeakKey {
        /// e.g. "RSA 1024 bits".
        key: String,
    },
    /// Signature algorithm other than SHA-256/384/512 with RSA, RSA-PSS or ECDSA
    /// (KER-PCM-014).
    #[error("{}", self.message())]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's name, e.g. "sha1WithRSAEncryption".
        algorithm: String,
    },
    /// notBefore is in the future (KER-PMS-020).
    #[error("{}", self.message())]
    NotYetValid {
        /// The certificate's notBefore.
        not_before: DateTime<Utc>,
    },
    /// notAfter is in the past (KER-PCM-004).
    #[error("{}", self.message())]
    Expired {
        /// The certificate's notAfter.
        not_after: DateTime<Utc>,
    },
    /// A CA certificate expires within the configured number of months (KER-PCM-017).
    #[error("{}", self.message())]
    CaValidityTooShort {
        /// Required remaining validity in months.
        min_months: u32,
    },
    /// A partner/FTM certificate expires within the configured number of days (KER-KMS-021).
    #[error("{}", self.message())]
    PartnerValidityTooShort {
        /// Whole days the certificate is still valid.
        days_left: i64,
        /// Required whole days.
        min_days: i64,
    },
    /// A self-signed certificate uploaded as a partner/FTM certificate (KER-PCM-015).
    #[error("{}", self.message())]
    SelfSigned,
    /// An intermediate CA does not chain to a root of its domain (KER-PCM-005).
    #[error("{}", self.message())]
    RootNotFound {
        /// Path validation's reason, e.g. "unable to get local issuer certificate".
        detail: String,
    },
    /// A partner/FTM certificate does not chain to a CA of its domain (KER-PCM-006).
    #[error("{}", self.message())]
    ChainNotFound {
        /// Path validation's reason.
        detail: String,
    },
    /// Subject O missing, repeated, or not exactly the partner's organisation (KER-PCM-008).
    #[error("{}", self.message())]
    OrganisationMismatch,
    /// The cryptographic library failed; not the client's fault.
    #[error("certificate processing failed: {0}")]
    Internal(String),
    /// The platform signing key could not sign now (its HSM unreachable).
    #[error("platform signing key unavailable: {0}")]
    SigningUnavailable(String),
}

impl From<ErrorStack> for CertError {
    fn from(e: ErrorStack) -> Self {
        CertError::Internal(e.to_string())
    }
}

impl CertError {
    /// The contract's `ErrorInfo.reason` for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            CertError::Blank
            | CertError::NotPemOrP7b
            | CertError::NoCertificate
            | CertError::ExpectedSingleCertificate { .. }
            | CertError::TooManyCertificates { .. } => "KER-PCM-001",
            CertError::Unparsable { .. } => "KER-KMS-013",
            CertError::NotVersion3 { .. } => "KER-PCM-007",
            CertError::NotCa => "KER-PCM-019",
            CertError::WeakKey { .. } => "KER-PCM-013",
            CertError::UnsupportedSignatureAlgorithm { .. } => "KER-PCM-014",
            CertError::NotYetValid { .. } => "KER-PMS-020",
            CertError::Expired { .. } => "KER-PCM-004",
            CertError::CaValidityTooShort { .. } => "KER-PCM-017",
            CertError::PartnerValidityTooShort { .. } => "KER-KMS-021",
            CertError::SelfSigned => "KER-PCM-015",
            CertError::RootNotFound { .. } => "KER-PCM-005",
            CertError::ChainNotFound { .. } => "KER-PCM-006",
            CertError::OrganisationMismatch => "KER-PCM-008",
            CertError::Internal(_) => REASON_INTERNAL,
            CertError::SigningUnavailable(_) => REASON_UNAVAILABLE,
        }
    }

    /// The gRPC status class the contract assigns to this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            CertError::RootNotFound { .. } | CertError::ChainNotFound { .. } => {
                ErrorClass::FailedPrecondition
            }
            CertError::Internal(_) => ErrorClass::Internal,
            CertError::SigningUnavailable(_) => ErrorClass::Unavailable,
            _ => ErrorClass::InvalidArgument,
        }
    }

    /// A short, client-safe message (MOSIP's wording where it has one). Never contains
    /// library output or paths; [`CertError::Internal`] yields a generic text.
    pub fn message(&self) -> String {
        match self {
            CertError::Blank => "Invalid Certificate uploaded: certificate data is blank.".into(),
            CertError::NotPemOrP7b => {
                "Invalid Certificate uploaded: data is not a PEM certificate or a PKCS#7 bundle."
                    .into()
            }
            CertError::NoCertificate => {
                "Invalid Certificate uploaded: the data contains no certificate.".into()
            }
            CertError::ExpectedSingleCertificate { found } => format!(
                "Invalid Certificate uploaded: expected exactly one certificate, found {found}."
            ),
            CertError::TooManyCertificates { found, max } => format!(
                "Invalid Certificate uploaded: at most {max} certificates are accepted, found {found}."
            ),
            CertError::Unparsable { detail } => format!("Certificate Parsing Error: {detail}."),
            CertError::NotVersion3 { version } => {
                format!("Certificate version not supported: v{version}, only X.509 v3 is accepted.")
            }
            CertError::NotCa => {
                "The certificate is not a CA certificate (basicConstraints CA:TRUE is missing)."
                    .into()
            }
            CertError::WeakKey { key } => {
                format!("Partner Certificate Key Size is less than allowed size ({key}).")
            }
            CertError::UnsupportedSignatureAlgorithm { algorithm } => {
                format!("Partner Certificate Signature algorithm not supported ({algorithm}).")
            }
            CertError::NotYetValid { not_before } => format!(
                "Future Dated Certificate not allowed to upload (valid from {}).",
                not_before.to_rfc3339()
            ),
            CertError::Expired { not_after } => format!(
                "Certificate Dates are not valid (expired {}).",
                not_after.to_rfc3339()
            ),
            CertError::CaValidityTooShort { min_months } => format!(
                "The CA Certificate validity is less than required minimum validity ({min_months} months)."
            ),
            CertError::PartnerValidityTooShort {
                days_left,
                min_days,
            } => format!(
                "The PARTNER Certificate validity is less than required minimum validity ({days_left} days left, {min_days} required)."
            ),
            CertError::SelfSigned => "Self Signed Certificate not allowed as partner.".into(),
            CertError::RootNotFound { detail } => {
                format!("Root CA Certificate not found ({detail}).")
            }
            CertError::ChainNotFound { detail } => {
                format!("Root CA/Intermediate CA Certificates not found ({detail}).")
            }
            CertError::OrganisationMismatch => "Partner Organization Name not Matched.".into(),
            CertError::Internal(_) => "internal error".into(),
            CertError::SigningUnavailable(_) => {
                "the platform signing key is unavailable, retry later".into()
            }
        }
    }
}
