//! Domain types of the registry and the validation rules of `RegisterPartner`.
//!
//! Requests are turned into these types at the service edge; storage speaks only these.

use chrono::{DateTime, Utc};

use crate::error::RegistryError;

/// Lifecycle of a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartnerStatus {
    /// Registered, no accepted certificate yet.
    InProgress,
    /// A partner certificate was accepted.
    Active,
    /// Deactivated by an admin.
    Deactivated,
}

impl PartnerStatus {
    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerStatus::InProgress => "IN_PROGRESS",
            PartnerStatus::Active => "ACTIVE",
            PartnerStatus::Deactivated => "DEACTIVATED",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "IN_PROGRESS" => Some(PartnerStatus::InProgress),
            "ACTIVE" => Some(PartnerStatus::Active),
            "DEACTIVATED" => Some(PartnerStatus::Deactivated),
            _ => None,
        }
    }
}

/// A stored partner record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// The partner's login name, chosen at registration and immutable.
    pub partner_id: String,
    /// Given name of the partner's contact person.
    pub first_name: String,
    /// Family name of the partner's contact person.
    pub last_name: String,
    /// Organisation the partner certificate must be issued to.
    pub organization_name: String,
    /// Canonical partner-type code, e.g. `FTM_Provider`.
    pub partner_type: String,
    /// Postal address of the organisation.
    pub address: String,
    /// Contact e-mail, unique across partners (case-insensitively).
    pub email: String,
    /// Contact phone number.
    pub phone: String,
    /// Preferred language, one of `registration.languages`.
    pub lang_code: String,
    /// Where the partner is in its lifecycle.
    pub status: PartnerStatus,
    /// Certificate-store id of the partner's accepted certificate, once one is.
    pub certificate_id: Option<String>,
    /// When the partner registered.
    pub create_time: DateTime<Utc>,
    /// Last change to the record (status or certificate).
    pub update_time: DateTime<Utc>,
}

/// A password as it arrived: kept out of `Debug` output (and so out of logs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The clear text, for the checks and the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password(password.to_owned())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Password(<redacted>)")
    }
}

/// A validated registration, before the partner type is resolved against the seed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Login name requested for the new partner.
    pub partner_id: String,
    /// The new partner's password, hashed before it is stored.
    pub password: Password,
    /// Given name of the contact person, trimmed.
    pub first_name: String,
    /// Family name of the contact person, trimmed.
    pub last_name: String,
    /// Organisation name, trimmed; partner certificates must name it.
    pub organization_name: String,
    /// As sent by the client; resolved case-insensitively to the canonical code.
    pub partner_type: String,
    /// Postal address, trimmed.
    pub address: String,
    /// Contact e-mail, checked for shape (uniqueness is the database's).
    pub email: String,
    /// Contact phone, checked for shape.
    pub phone: String,
    /// Language code as configured (the default when none was sent).
    pub lang_code: String,
}

/// Raw registration fields, as they arrive.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    /// Requested login name; no white space, at most 36 characters.
    pub partner_id: String,
    /// Requested password: at least 8 characters, at most [`MAX_PASSWORD_BYTES`] bytes.
    pub password: Password,
    /// Contact given name, at most 64 characters.
    pub first_name: String,
    /// Contact family name, at most 64 characters.
    pub last_name: String,
    /// Organisation name, at most 128 characters.
    pub organization_name: String,
    /// Partner-type code as typed, e.g. `ftm_provider`.
    pub partner_type: String,
    /// Postal address, at most 2000 characters.
    pub address: String,
    /// Contact e-mail, at most 254 characters.
    pub email: String,
    /// Contact phone: digits, spaces, `+`, `-`, `(`, `)`.
    pub phone: String,
    /// Language code; blank for the configured default.
    pub lang_code: String,
}

/// The role a partner of `partner_type` gets, e.g. `FTM_Provider` → `FTM_PROVIDER`.
pub fn role_of_partner_type(partner_type: &str) -> String {
    partner_type.to_ascii_uppercase()
}

/// `PMS_COR_001` for a blank `value`.
pub(crate) fn require_field(field: &'static str, value: &str) -> Result<(), RegistryError> {
    if value.trim().is_empty() {
        return Err(RegistryError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    Ok(())
}

fn required<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, RegistryError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(RegistryError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    if trimmed.chars().count() > max {
        return Err(RegistryError::InvalidField {
            field,
            message: format!("{field} must be at most {max} characters"),
        });
    }
    Ok(trimmed)
}

/// E-mail shape check: a local part of word characters, `.`, `+`, `-`; a domain of labels with
/// a final label of at least two letters (MOSIP's `pmp.partner.valid.email.address.regex`).
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// Phone: 1–16 characters of digits, spaces, `+`, `-`, `(`, `)`, with at least one digit.
pub fn is_valid_phone(phone: &str) -> bool {
    let length = phone.chars().count();
    (1..=16).contains(&length)
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
        && phone.chars().any(|c| c.is_ascii_digit())
}

impl RegistrationInput {
    /// Applies the contract's rules in its order: blank/over-long fields (`PMS_COR_001`, which
    /// wins whenever it fits), then e-mail, phone, partner id, language and password.
    pub fn validate(
        self,
        languages: &[String],
        default_language: &str,
    ) -> Result<Registration, RegistryError> {
        if self.partner_id.is_empty() || self.partner_id.trim().is_empty() {
            return Err(RegistryError::InvalidField {
                field: "partner_id",
                message: "partner_id is required".into(),
            });
        }
        if self.password.expose().is_empty() {
            return Err(RegistryError::InvalidField {
                field: "password",
                message: "password is required".into(),
            });
        }
        check_password_length(self.password.expose())?;
        let first_name = required("first_name", &self.first_name, 64)?;
        let last_name = required("last_name", &self.last_name, 64)?;
        let organization_name = required("organization_name", &self.organization_name, 128)?;
        let partner_type = required("partner_type", &self.partner_type, 36)?;
        let address = required("address", &self.address, 2000)?;
        let email = required("email", &self.email, 254)?;
        let phone = required("phone", &self.phone, usize::MAX)?;
        if !is_valid_email(email) {
            return Err(RegistryError::InvalidEmail);
        }
        if !is_valid_phone(phone) {
            return Err(RegistryError::InvalidPhone);
        }
        if self.partner_id.chars().any(char::is_whitespace) {
            return Err(RegistryError::PartnerIdWhitespace);
        }
        if self.partner_id.chars().count() > 36 {
            return Err(RegistryError::PartnerIdTooLong);
        }
        let lang_code = match self.lang_code.trim() {
            "" => default_language.to_owned(),
            code => languages
                .iter()
                .find(|known| known.eq_ignore_ascii_case(code))
                .cloned()
                .ok_or(RegistryError::UnsupportedLanguage)?,
        };
        let password = self.password.expose();
        if password.chars().count() < 8 || password == self.partner_id {
            return Err(RegistryError::WeakPassword);
        }
        Ok(Registration {
            partner_id: self.partner_id,
            password: self.password,
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            organization_name: organization_name.to_owned(),
            partner_type: partner_type.to_owned(),
            address: address.to_owned(),
            email: email.to_owned(),
            phone: phone.to_owned(),
            lang_code,
        })
    }
}

/// Filters of `ListPartners`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerFilter {
    /// Canonical partner type.
    pub partner_type: Option<String>,
    /// Only partners in this lifecycle state.
    pub status: Option<PartnerStatus>,
}

pub use pmp_common::audit::AuditEvent;

/// What a watcher (`WatchPartnerEvents`) knows of a partner: a snapshot entry, and the
/// partner of a registration event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartnerState {
    /// The partner's id.
    pub partner_id: String,
    /// Its lifecycle state.
    pub status: PartnerStatus,
    /// Organisation its certificates are issued to.
    pub organization_name: String,
    /// Canonical partner type code.
    pub partner_type: String,
    /// Certificate store id of its current certificate.
    pub certificate_id: Option<String>,
}

impl From<&Partner> for PartnerState {
    fn from(partner: &Partner) -> Self {
        PartnerState {
            partner_id: partner.partner_id.clone(),
            status: partner.status,
            organization_name: partner.organization_name.clone(),
            partner_type: partner.partner_type.clone(),
            certificate_id: partner.certificate_id.clone(),
        }
    }
}

/// A change of a partner, recorded in the registry's outbox in the transaction of the
/// change and streamed by `WatchPartnerEvents`. Stored as JSON: fields and variants may be
/// added, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum PartnerEvent {
    /// A partner registered (IN_PROGRESS).
    Registered {
        /// The new partner.
        partner: PartnerState,
    },
    /// A partner's certificate was accepted and recorded.
    CertificateUploaded {
        /// The partner.
        partner_id: String,
        /// Certificate store id of the certificate.
        certificate_id: String,
    },
    /// A partner became ACTIVE (first certificate, or re-activation), or was re-activated
    /// without a certificate (IN_PROGRESS again).
    Activated {
        /// The partner.
        partner_id: String,
        /// Its status now.
        status: PartnerStatus,
    },
    /// An admin deactivated a partner.
    Deactivated {
        /// The partner.
        partner_id: String,
    },
}

impl PartnerEvent {
    /// The events that take a partner from `before` to `after` (nothing when they are
    /// equal): a recorded certificate, then the status change.
    pub fn between(before: &Partner, after: &Partner) -> Vec<PartnerEvent> {
        let mut events = Vec::new();
        if let (Some(certificate_id), true) = (
            &after.certificate_id,
            after.certificate_id != before.certificate_id,
        ) {
            events.push(PartnerEvent::CertificateUploaded {
                partner_id: after.partner_id.clone(),
                certificate_id: certificate_id.clone(),
            });
        }
        if after.status != before.status {
            let partner_id = after.partner_id.clone();
            events.push(match after.status {
                PartnerStatus::Deactivated => PartnerEvent::Deactivated { partner_id },
                status => PartnerEvent::Activated { partner_id, status },
            });
        }
        events
    }
}

impl pmp_common::event_feed::FeedEvent for PartnerEvent {
    fn kind(&self) -> &'static str {
        match self {
            PartnerEvent::Registered { .. } => "PARTNER_REGISTERED",
            PartnerEvent::CertificateUploaded { .. } => "PARTNER_CERTIFICATE_UPLOADED",
            PartnerEvent::Activated { .. } => "PARTNER_ACTIVATED",
            PartnerEvent::Deactivated { .. } => "PARTNER_DEACTIVATED",
        }
    }
}

/// Longest password accepted, in bytes: hashing cost must not grow with the input.
pub const MAX_PASSWORD_BYTES: usize = 128;

/// `PMS_COR_001` for a password over [`MAX_PASSWORD_BYTES`].
pub fn check_password_length(password: &str) -> Result<(), RegistryError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RegistryError::InvalidField {
            field: "password",
            message: format!("password must be at most {MAX_PASSWORD_BYTES} bytes"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RegistrationInput {
        RegistrationInput {
            partner_id: "acme-ftm".into(),
            password: "s3cret-pass".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            organization_name: "ACME Chips".into(),
            partner_type: "ftm_provider".into(),
            address: "1 Main St".into(),
            email: "ada@acme.example".into(),
            phone: "+1 (555) 0100000".into(),
            lang_code: String::new(),
        }
    }

    fn languages() -> Vec<String> {
        vec!["eng".into(), "ara".into(), "fra".into()]
    }

    fn reason(input: RegistrationInput) -> String {
        let error = input.validate(&languages(), "eng").expect_err("must fail");
        pmp_common::error::reason_of(&pmp_common::error::status_of(&error)).unwrap_or_default()
    }

    #[test]
    fn valid_input_is_accepted_with_default_language() {
        let registration = input().validate(&languages(), "eng").expect("valid");
        assert_eq!(registration.lang_code, "eng");
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert_eq!(
            reason(RegistrationInput {
                first_name: " ".into(),
                ..input()
            }),
            "PMS_COR_001"
        );
        assert_eq!(
            reason(RegistrationInput {
                address: "x".repeat(2001),
                ..input()
            }),
            "PMS_COR_001"
        );
        assert_eq!(
            reason(RegistrationInput {
                email: "not-an-email".into(),
                ..input()
            }),
            "PMS_PRT_012"
        );
        assert_eq!(
            reason(RegistrationInput {
                phone: "12ab".into(),
                ..input()
            }),
            "PMS_PRT_013"
        );
        assert_eq!(
            reason(RegistrationInput {
                phone: "1".repeat(17),
                ..input()
            }),
            "PMS_PRT_013"
        );
        assert_eq!(
            reason(RegistrationInput {
                partner_id: "a b".into(),
                ..input()
            }),
            "PMS_PRT_066"
        );
        assert_eq!(
            reason(RegistrationInput {
                partner_id: "a".repeat(37),
                ..input()
            }),
            "PMS_PRT_052"
        );
        assert_eq!(
            reason(RegistrationInput {
                lang_code: "deu".into(),
                ..input()
            }),
            "PMS_PRT_056"
        );
        assert_eq!(
            reason(RegistrationInput {
                password: "short".into(),
                ..input()
            }),
            "PMS_PRT_014"
        );
        assert_eq!(
            reason(RegistrationInput {
                password: "acme-ftm".into(),
                ..input()
            }),
            "PMS_PRT_014"
        );
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let shown = format!("{:?}", input().validate(&languages(), "eng"));
        assert!(!shown.contains("s3cret-pass"), "{shown}");
        assert!(!format!("{:?}", input()).contains("s3cret-pass"));
    }

    #[test]
    fn blank_wins_over_other_rules() {
        assert_eq!(
            reason(RegistrationInput {
                email: String::new(),
                partner_id: "a b".into(),
                ..input()
            }),
            "PMS_COR_001"
        );
    }

    #[test]
    fn email_shapes() {
        assert!(is_valid_email("a.b+c@x-y.example.org"));
        for bad in [
            "a@b",
            "@x.org",
            "a@.org",
            "a b@x.org",
            "a@x.o",
            "a..b@x.org",
            "a@x.12",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
