//! Domain types of FTM management: the FTM and its review states, the state machine, input
//! rules and list queries. Requests are turned into these types at the service edge; storage
//! speaks only these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::FtmError;

/// Longest make or model, after normalisation (MOSIP: 1–36).
pub const MAX_MAKE_MODEL_CHARS: usize = 36;
/// Longest rejection reason.
pub const MAX_REJECT_REASON_CHARS: usize = 512;
/// Longest partner id (the registry's limit).
pub const MAX_PARTNER_ID_CHARS: usize = 36;
/// Longest value of a substring filter of `ListFtms`.
pub const MAX_FILTER_CHARS: usize = 128;
/// Partner type that may own FTMs, as the registry stores it.
pub const FTM_PROVIDER_PARTNER_TYPE: &str = "FTM_Provider";
/// Role of FTM providers in access tokens.
pub const ROLE_FTM_PROVIDER: &str = "FTM_PROVIDER";
/// Certificate-store domain of chip certificates.
pub const FTM_DOMAIN: &str = "FTM";

/// Review state of an FTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FtmStatus {
    /// Created; no chip certificate yet.
    PendingCertUpload,
    /// A chip certificate was uploaded and waits for an admin.
    PendingApproval,
    /// Approved by an admin: active, its certificate trusted.
    Approved,
    /// Refused by an admin (terminal).
    Rejected,
    /// Deactivated after approval (terminal).
    Deactivated,
}

impl FtmStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [FtmStatus; 5] = [
        FtmStatus::PendingCertUpload,
        FtmStatus::PendingApproval,
        FtmStatus::Approved,
        FtmStatus::Rejected,
        FtmStatus::Deactivated,
    ];

    /// Name stored in the database (also the proto enum value name).
    pub fn as_str(self) -> &'static str {
        match self {
            FtmStatus::PendingCertUpload => "PENDING_CERT_UPLOAD",
            FtmStatus::PendingApproval => "PENDING_APPROVAL",
            FtmStatus::Approved => "APPROVED",
            FtmStatus::Rejected => "REJECTED",
            FtmStatus::Deactivated => "DEACTIVATED",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        FtmStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Whether the chip certificate of an FTM in this status must be trusted by the store.
    pub fn trusts_certificate(self) -> bool {
        self == FtmStatus::Approved
    }
}

/// A stored FTM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ftm {
    /// Server-generated opaque id.
    pub ftm_id: String,
    /// Partner id of the FTM provider that owns the FTM.
    pub partner_id: String,
    /// The provider's organisation name, copied from the registry at creation.
    pub organization_name: String,
    /// Trimmed, inner white space collapsed.
    pub make: String,
    /// Trimmed, inner white space collapsed.
    pub model: String,
    /// Where the FTM is in its review.
    pub status: FtmStatus,
    /// Certificate-store id of the current chip certificate.
    pub certificate_id: Option<String>,
    /// notAfter of the current chip certificate, as the certificate store read it.
    pub certificate_expiry_time: Option<DateTime<Utc>>,
    /// Why an admin rejected the FTM; set only in REJECTED.
    pub reject_reason: Option<String>,
    /// When the FTM was created.
    pub create_time: DateTime<Utc>,
    /// Last state change (upload, review, deactivation).
    pub update_time: DateTime<Utc>,
}

/// A state-changing action on an existing FTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The provider uploads a (new) chip certificate.
    UploadCertificate,
    /// An admin approves the FTM, so its certificate becomes trusted.
    Approve,
    /// An admin refuses the FTM with a reason.
    Reject,
    /// The provider or an admin withdraws an approved FTM, and trust in its certificate.
    Deactivate,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 4] = [
        Action::UploadCertificate,
        Action::Approve,
        Action::Reject,
        Action::Deactivate,
    ];

    /// The status the action leads to.
    pub fn target(self) -> FtmStatus {
        match self {
            Action::UploadCertificate => FtmStatus::PendingApproval,
            Action::Approve => FtmStatus::Approved,
            Action::Reject => FtmStatus::Rejected,
            Action::Deactivate => FtmStatus::Deactivated,
        }
    }

    /// The audit action recorded when it succeeds.
    pub fn audit_action(self) -> AuditAction {
        match self {
            Action::UploadCertificate => AuditAction::CertificateUploaded,
            Action::Approve => AuditAction::Approved,
            Action::Reject => AuditAction::Rejected,
            Action::Deactivate => AuditAction::Deactivated,
        }
    }
}

/// The state machine: whether `action` is allowed on an FTM in `status` (with or without a
/// certificate), and the contract's reason when it is not.
///
/// | status \ action     | upload certificate | approve          | reject            | deactivate        |
/// |---------------------|--------------------|------------------|-------------------|-------------------|
/// | PENDING_CERT_UPLOAD | → PENDING_APPROVAL | PMP_AUT_033      | PMS_FTM_ERROR_012 | PMS_FTM_ERROR_010 |
/// | PENDING_APPROVAL    | PMP_AUT_038        | → APPROVED       | → REJECTED        | PMS_FTM_ERROR_010 |
/// | APPROVED            | → PENDING_APPROVAL | PMS_FTM_ERROR_012| PMS_FTM_ERROR_012 | → DEACTIVATED     |
/// | REJECTED            | PMP_AUT_038        | PMS_FTM_ERROR_012| PMS_FTM_ERROR_012 | PMS_FTM_ERROR_010 |
/// | DEACTIVATED         | PMP_AUT_039        | PMP_AUT_039      | PMS_FTM_ERROR_012 | PMS_FTM_ERROR_007 |
///
/// Approving an FTM without a certificate is `PMP_AUT_033` (the more useful answer for a
/// PENDING_CERT_UPLOAD FTM, as in MOSIP); only uploading and approving name the
/// DEACTIVATED state (`PMP_AUT_039`), as the contract's error table does.
pub fn check_transition(
    status: FtmStatus,
    has_certificate: bool,
    action: Action,
) -> Result<FtmStatus, FtmError> {
    use FtmStatus::*;
    match action {
        Action::UploadCertificate => match status {
            PendingCertUpload | Approved => Ok(PendingApproval),
            Deactivated => Err(FtmError::FtmDeactivated),
            PendingApproval | Rejected => Err(FtmError::UploadNotAllowed),
        },
        Action::Approve => match status {
            Deactivated => Err(FtmError::FtmDeactivated),
            _ if !has_certificate => Err(FtmError::CertificateMissing),
            PendingApproval => Ok(Approved),
            _ => Err(FtmError::NotPendingApproval),
        },
        Action::Reject => match status {
            PendingApproval => Ok(Rejected),
            _ => Err(FtmError::NotPendingApproval),
        },
        Action::Deactivate => match status {
            Approved => Ok(Deactivated),
            Deactivated => Err(FtmError::AlreadyDeactivated),
            _ => Err(FtmError::NotApproved),
        },
    }
}

/// Trims and collapses inner runs of white space to one space.
pub fn normalize_text(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The case-insensitive comparison key of a make, model or organisation name.
pub fn search_key(value: &str) -> String {
    normalize_text(value).to_lowercase()
}

/// A validated `CreateFtm` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFtm {
    /// The owning FTM provider: the caller itself, or the one an admin or service names.
    pub partner_id: String,
    /// Normalised.
    pub make: String,
    /// Normalised.
    pub model: String,
}

fn required(field: &'static str, value: &str) -> Result<(), FtmError> {
    if value.trim().is_empty() {
        return Err(FtmError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    Ok(())
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), FtmError> {
    required(field, value)?;
    if value.chars().count() > max {
        return Err(FtmError::InvalidField {
            field,
            message: format!("{field} must be at most {max} characters"),
        });
    }
    Ok(())
}

/// Checks a required id field (`PMS_COR_001` when blank).
pub fn require_id(field: &'static str, value: &str) -> Result<(), FtmError> {
    bounded(field, value, 64)
}

/// Checks a required free-text field of at most `max` characters after trimming.
pub fn require_text(field: &'static str, value: &str, max: usize) -> Result<String, FtmError> {
    let trimmed = value.trim();
    bounded(field, trimmed, max)?;
    Ok(trimmed.to_owned())
}

impl NewFtm {
    /// Applies the `CreateFtm` field rules: every field required (`PMS_COR_001`), partner id
    /// at most 36 characters, make and model 1–36 characters once trimmed and with inner
    /// white space collapsed (the form they are stored in).
    pub fn validate(partner_id: &str, make: &str, model: &str) -> Result<NewFtm, FtmError> {
        bounded("partner_id", partner_id, MAX_PARTNER_ID_CHARS)?;
        let make = normalize_text(make);
        let model = normalize_text(model);
        bounded("make", &make, MAX_MAKE_MODEL_CHARS)?;
        bounded("model", &model, MAX_MAKE_MODEL_CHARS)?;
        Ok(NewFtm {
            partner_id: partner_id.to_owned(),
            make,
            model,
        })
    }
}

/// A validated `UploadFtmCertificate` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateUpload {
    pub(crate) ftm_id: String,
    /// The chip certificate as sent; the certificate store validates it.
    pub(crate) certificate_data: String,
}

/// A validated request about one FTM (`ApproveFtm`, `DeactivateFtm`, `GetFtm`,
/// `GetFtmCertificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FtmRef {
    pub(crate) ftm_id: String,
}

/// A validated `RejectFtm` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) ftm_id: String,
    /// Trimmed.
    pub(crate) reason: String,
}

/// A `ListFtms` request with its wire fields decoded. The text filters stay as sent: they
/// are checked only once the caller may list the requested scope, as the contract orders
/// its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FtmSearch {
    /// Page size, defaulted and capped.
    pub(crate) limit: u64,
    pub(crate) page_token: String,
    /// Trimmed; `None` when blank (no partner filter).
    pub(crate) partner_id: Option<String>,
    pub(crate) status: Option<FtmStatus>,
    pub(crate) make: String,
    pub(crate) model: String,
    pub(crate) organization_name: String,
    pub(crate) ordering: Ordering,
}

/// One page of a `ListFtms` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FtmListing {
    pub(crate) ftms: Vec<Ftm>,
    /// Empty on the last page.
    pub(crate) next_page_token: String,
    /// Number of FTMs matching the filter (all pages).
    pub(crate) total_size: u64,
}

/// A new server-generated FTM id: `ftm_` and a UUIDv7 (time-ordered, so new rows append to
/// the primary-key index), 36 characters.
pub fn new_ftm_id() -> String {
    format!("ftm_{}", uuid::Uuid::now_v7().simple())
}

/// The current time at the precision both databases store (microseconds), so a value read
/// back equals the value written and keyset cursors compare exactly.
pub fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

/// `time` at microsecond precision.
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

/// What an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// The FTM was created by its provider.
    Created,
    /// A chip certificate was uploaded, waiting for review.
    CertificateUploaded,
    /// An admin approved the FTM.
    Approved,
    /// An admin rejected the FTM.
    Rejected,
    /// The provider or an admin deactivated the FTM.
    Deactivated,
}

impl AuditAction {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "FTM_CREATED",
            AuditAction::CertificateUploaded => "FTM_CERTIFICATE_UPLOADED",
            AuditAction::Approved => "FTM_APPROVED",
            AuditAction::Rejected => "FTM_REJECTED",
            AuditAction::Deactivated => "FTM_DEACTIVATED",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            AuditAction::Created,
            AuditAction::CertificateUploaded,
            AuditAction::Approved,
            AuditAction::Rejected,
            AuditAction::Deactivated,
        ]
        .into_iter()
        .find(|action| action.as_str() == value)
    }
}

/// A state change recorded in the audit table (the platform-wide audit model), written in the
/// transaction of the change itself.
pub use pmp_common::audit::AuditEvent;

/// Where a `WatchFtmEvents` stream starts (not negative: checked when decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWatch {
    /// 0 for a snapshot first; else the last version the client received.
    pub from_version: i64,
}

/// What a watcher (`WatchFtmEvents`) knows of an FTM: a snapshot entry, and the FTM of a
/// creation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtmState {
    /// The FTM's id.
    pub ftm_id: String,
    /// The FTM provider owning it.
    pub partner_id: String,
    /// Its make.
    pub make: String,
    /// Its model.
    pub model: String,
    /// Where it is in its review.
    pub status: FtmStatus,
    /// Certificate store id of its chip certificate.
    pub certificate_id: Option<String>,
}

impl From<&Ftm> for FtmState {
    fn from(ftm: &Ftm) -> Self {
        FtmState {
            ftm_id: ftm.ftm_id.clone(),
            partner_id: ftm.partner_id.clone(),
            make: ftm.make.clone(),
            model: ftm.model.clone(),
            status: ftm.status,
            certificate_id: ftm.certificate_id.clone(),
        }
    }
}

/// A change of an FTM, recorded in the service's outbox in the transaction of the change
/// and streamed by `WatchFtmEvents`. Stored as JSON: fields and variants may be added,
/// never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FtmEvent {
    /// An FTM was created (PENDING_CERT_UPLOAD).
    Created {
        /// The new FTM.
        ftm: FtmState,
    },
    /// A chip certificate was accepted: the FTM is PENDING_APPROVAL.
    CertificateUploaded {
        /// The FTM.
        ftm_id: String,
        /// Certificate store id of the chip certificate.
        certificate_id: String,
    },
    /// An admin approved the FTM.
    Approved {
        /// The FTM.
        ftm_id: String,
    },
    /// An admin rejected the FTM.
    Rejected {
        /// The FTM.
        ftm_id: String,
        /// Why.
        reason: String,
    },
    /// The FTM was deactivated.
    Deactivated {
        /// The FTM.
        ftm_id: String,
    },
}

impl FtmEvent {
    /// The event of a completed action, from the FTM it left (`None` for a status no action
    /// leads to).
    pub fn of_action(ftm: &Ftm) -> Option<FtmEvent> {
        let ftm_id = ftm.ftm_id.clone();
        Some(match ftm.status {
            FtmStatus::PendingCertUpload => return None,
            FtmStatus::PendingApproval => FtmEvent::CertificateUploaded {
                ftm_id,
                certificate_id: ftm.certificate_id.clone()?,
            },
            FtmStatus::Approved => FtmEvent::Approved { ftm_id },
            FtmStatus::Rejected => FtmEvent::Rejected {
                ftm_id,
                reason: ftm.reject_reason.clone().unwrap_or_default(),
            },
            FtmStatus::Deactivated => FtmEvent::Deactivated { ftm_id },
        })
    }
}

impl pmp_common::event_feed::FeedEvent for FtmEvent {
    fn kind(&self) -> &'static str {
        match self {
            FtmEvent::Created { .. } => "FTM_CREATED",
            FtmEvent::CertificateUploaded { .. } => "FTM_CERTIFICATE_UPLOADED",
            FtmEvent::Approved { .. } => "FTM_APPROVED",
            FtmEvent::Rejected { .. } => "FTM_REJECTED",
            FtmEvent::Deactivated { .. } => "FTM_DEACTIVATED",
        }
    }
}

/// The change an action makes to an FTM, applied together with its audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtmChange {
    /// The status after the action.
    pub status: FtmStatus,
    /// Certificate-store id of the chip certificate the FTM holds afterwards.
    pub certificate_id: Option<String>,
    /// notAfter of that certificate.
    pub certificate_expiry_time: Option<DateTime<Utc>>,
    /// The rejection reason; `None` unless the action is a rejection.
    pub reject_reason: Option<String>,
}

/// Column a listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortField {
    /// `create_time`, the default: creation order.
    CreateTime,
    /// `update_time`: most recently changed last (or first, descending).
    UpdateTime,
    /// `make`, case-insensitively.
    Make,
    /// `model`, case-insensitively.
    Model,
    /// `partner_id`: grouped by provider.
    PartnerId,
    /// `status`, by its stored name.
    Status,
}

impl SortField {
    /// Name used in `order_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortField::CreateTime => "create_time",
            SortField::UpdateTime => "update_time",
            SortField::Make => "make",
            SortField::Model => "model",
            SortField::PartnerId => "partner_id",
            SortField::Status => "status",
        }
    }

    /// Whether the column holds a time (else text).
    pub fn is_time(self) -> bool {
        matches!(self, SortField::CreateTime | SortField::UpdateTime)
    }
}

/// Ordering of a listing; ties are broken by `ftm_id` in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ordering {
    /// The column sorted by.
    pub field: SortField,
    /// Whether the order is reversed (`desc`).
    pub descending: bool,
}

impl Default for Ordering {
    fn default() -> Self {
        Ordering {
            field: SortField::CreateTime,
            descending: false,
        }
    }
}

impl Ordering {
    /// Parses `order_by`: one field name, optionally followed by ` desc` or ` asc`
    /// (case-insensitive); empty means `create_time`. `PMS_PRT_357` otherwise.
    pub fn parse(order_by: &str) -> Result<Ordering, FtmError> {
        let words: Vec<&str> = order_by.split_whitespace().collect();
        let (field, descending) = match words.as_slice() {
            [] => return Ok(Ordering::default()),
            [field] => (*field, false),
            [field, direction] if direction.eq_ignore_ascii_case("desc") => (*field, true),
            [field, direction] if direction.eq_ignore_ascii_case("asc") => (*field, false),
            _ => return Err(FtmError::InvalidOrderBy),
        };
        let field = [
            SortField::CreateTime,
            SortField::UpdateTime,
            SortField::Make,
            SortField::Model,
            SortField::PartnerId,
            SortField::Status,
        ]
        .into_iter()
        .find(|candidate| candidate.as_str().eq_ignore_ascii_case(field))
        .ok_or(FtmError::InvalidOrderBy)?;
        Ok(Ordering { field, descending })
    }
}

/// Filters of a listing; text filters hold search keys (see [`search_key`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FtmFilter {
    /// Exact partner id (for non-admins always their own).
    pub partner_id: Option<String>,
    /// Stored status name (see [`FtmStatus::as_str`]).
    pub status: Option<String>,
    /// Case-insensitive substring of the make.
    pub make: Option<String>,
    /// Case-insensitive substring of the model.
    pub model: Option<String>,
    /// Case-insensitive substring of the organisation name.
    pub organization_name: Option<String>,
}

/// Position after the last row of a page: the sort column's value and the FTM id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Value of a time column, in microseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Value of a text column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Id of the last FTM returned: breaks ties between equal sort values.
    pub ftm_id: String,
}

impl Cursor {
    /// The cursor positioned on `ftm` for `field`.
    pub fn after(ftm: &Ftm, field: SortField) -> Cursor {
        let (time, text) = match field {
            SortField::CreateTime => (Some(ftm.create_time.timestamp_micros()), None),
            SortField::UpdateTime => (Some(ftm.update_time.timestamp_micros()), None),
            SortField::Make => (None, Some(search_key(&ftm.make))),
            SortField::Model => (None, Some(search_key(&ftm.model))),
            SortField::PartnerId => (None, Some(ftm.partner_id.clone())),
            SortField::Status => (None, Some(ftm.status.as_str().to_owned())),
        };
        Cursor {
            time,
            text,
            ftm_id: ftm.ftm_id.clone(),
        }
    }

    /// Whether the cursor carries the kind of value `field` needs.
    pub fn fits(&self, field: SortField) -> bool {
        if field.is_time() {
            self.time
                .is_some_and(|micros| DateTime::from_timestamp_micros(micros).is_some())
                && self.text.is_none()
        } else {
            self.text.is_some() && self.time.is_none()
        }
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which FTMs.
    pub filter: FtmFilter,
    /// In which order.
    pub ordering: Ordering,
    /// Where the previous page ended; `None` for the first page.
    pub after: Option<Cursor>,
    /// Page size: at most this many FTMs.
    pub limit: u64,
}

/// One page of FTMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtmPage {
    /// FTMs of this page, in the query's order.
    pub ftms: Vec<Ftm>,
    /// Whether more FTMs follow the last one returned.
    pub has_more: bool,
    /// Number of FTMs matching the filter (all pages).
    pub total_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::error::ServiceError as _;

    #[test]
    fn normalisation_trims_and_collapses() {
        assert_eq!(normalize_text("  Acme \t  Chip\n 3000 "), "Acme Chip 3000");
        assert_eq!(search_key(" ACME  chip "), "acme chip");
        assert_eq!(normalize_text("   "), "");
    }

    #[test]
    fn create_rules() {
        let ftm = NewFtm::validate("acme", "  Secure   Element ", "SE 1").expect("valid");
        assert_eq!(ftm.make, "Secure Element");
        // 36 characters once collapsed, although longer as sent.
        let padded = format!("{}     {}", "a".repeat(20), "b".repeat(15));
        assert!(NewFtm::validate("acme", &padded, "m").is_ok());
        for (partner, make, model) in [
            ("", "m", "m"),
            ("  ", "m", "m"),
            ("acme", " ", "m"),
            ("acme", "m", ""),
            ("acme", &"x".repeat(37), "m"),
            ("acme", "m", &"y".repeat(37)),
            (&"p".repeat(37) as &str, "m", "m"),
        ] {
            let error = NewFtm::validate(partner, make, model).expect_err("invalid");
            assert_eq!(
                error.reason(),
                "PMS_COR_001",
                "{partner:?} {make:?} {model:?}"
            );
        }
    }

    #[test]
    fn ids_are_unique_opaque_and_short() {
        let a = new_ftm_id();
        let b = new_ftm_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("ftm_"));
    }

    #[test]
    fn state_machine_table() {
        use FtmStatus::*;
        let expected: [(FtmStatus, [Result<FtmStatus, &str>; 4]); 5] = [
            (
                PendingCertUpload,
                [
                    Ok(PendingApproval),
                    Err("PMP_AUT_033"),
                    Err("PMS_FTM_ERROR_012"),
                    Err("PMS_FTM_ERROR_010"),
                ],
            ),
            (
                PendingApproval,
                [
                    Err("PMP_AUT_038"),
                    Ok(Approved),
                    Ok(Rejected),
                    Err("PMS_FTM_ERROR_010"),
                ],
            ),
            (
                Approved,
                [
                    Ok(PendingApproval),
                    Err("PMS_FTM_ERROR_012"),
                    Err("PMS_FTM_ERROR_012"),
                    Ok(Deactivated),
                ],
            ),
            (
                Rejected,
                [
                    Err("PMP_AUT_038"),
                    Err("PMS_FTM_ERROR_012"),
                    Err("PMS_FTM_ERROR_012"),
                    Err("PMS_FTM_ERROR_010"),
                ],
            ),
            (
                Deactivated,
                [
                    Err("PMP_AUT_039"),
                    Err("PMP_AUT_039"),
                    Err("PMS_FTM_ERROR_012"),
                    Err("PMS_FTM_ERROR_007"),
                ],
            ),
        ];
        for (status, outcomes) in expected {
            let has_certificate = status != PendingCertUpload;
            for (action, outcome) in Action::ALL.into_iter().zip(outcomes) {
                let actual =
                    check_transition(status, has_certificate, action).map_err(|e| e.reason());
                assert_eq!(
                    actual,
                    outcome.map_err(str::to_owned),
                    "{status:?} × {action:?}"
                );
            }
        }
        // Without a certificate, approval is PMP_AUT_033 whatever the (non-terminal) state.
        assert_eq!(
            check_transition(PendingApproval, false, Action::Approve).map_err(|e| e.reason()),
            Err("PMP_AUT_033".to_owned())
        );
    }

    #[test]
    fn order_by_parsing() {
        assert_eq!(Ordering::parse("").expect("default"), Ordering::default());
        let parsed = Ordering::parse(" Make  DESC ").expect("valid");
        assert_eq!(parsed.field, SortField::Make);
        assert!(parsed.descending);
        assert!(!Ordering::parse("status asc").expect("valid").descending);
        for bad in ["ftm_id", "make sideways", "make desc extra", "create-time"] {
            assert_eq!(
                Ordering::parse(bad).expect_err("invalid").reason(),
                "PMS_PRT_357",
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in FtmStatus::ALL {
            assert_eq!(FtmStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(FtmStatus::parse("approved"), None);
    }
}
