//! The JSON shapes pmpctl promises to scripts, built from the protobuf messages: snake_case
//! field names as in the contract, enums by name (`"ACTIVE"`), times in RFC 3339 (UTC),
//! absent values as `null`. Every key is always present, so `jq .certificate_id` never
//! breaks on a record that has none yet. Each view also renders itself as a table.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use pmp_proto::certstore::v1 as certstore;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as partner;

use crate::output::{Table, option_or_dash, or_dash};

/// RFC 3339 in UTC with a `Z`, fractions only when present; `None` for an absent time.
pub fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(timestamp.seconds, nanos)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// `None` for the empty string, which protobuf uses for "not set".
pub fn non_empty(value: &str) -> Option<String> {
    Some(value.to_owned()).filter(|value| !value.is_empty())
}

/// The name of an enum value, or its number when this pmpctl does not know it (a newer server).
fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |known| name(known).to_owned())
}

/// Name of a `PartnerStatus` number.
pub fn partner_status_name(value: i32) -> String {
    enum_name(value, |status: partner::PartnerStatus| status.as_str_name())
}

/// Name of an `FtmStatus` number.
pub fn ftm_status_name(value: i32) -> String {
    enum_name(value, |status: ftm::FtmStatus| status.as_str_name())
}

/// Name of a `CaType` number.
pub fn ca_type_name(value: i32) -> String {
    enum_name(value, |ca_type: certstore::CaType| ca_type.as_str_name())
}

/// Name of an `UploadStatus` number.
pub fn upload_status_name(value: i32) -> String {
    enum_name(value, |status: certstore::UploadStatus| {
        status.as_str_name()
    })
}

/// A partner record.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerView {
    pub partner_id: String,
    pub first_name: String,
    pub last_name: String,
    pub organization_name: String,
    pub partner_type: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    pub lang_code: String,
    pub status: String,
    pub certificate_id: Option<String>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

impl From<&partner::Partner> for PartnerView {
    fn from(record: &partner::Partner) -> Self {
        PartnerView {
            partner_id: record.partner_id.clone(),
            first_name: record.first_name.clone(),
            last_name: record.last_name.clone(),
            organization_name: record.organization_name.clone(),
            partner_type: record.partner_type.clone(),
            address: record.address.clone(),
            email: record.email.clone(),
            phone: record.phone.clone(),
            lang_code: record.lang_code.clone(),
            status: partner_status_name(record.status),
            certificate_id: non_empty(&record.certificate_id),
            create_time: rfc3339(record.create_time.as_ref()),
            update_time: rfc3339(record.update_time.as_ref()),
        }
    }
}

impl PartnerView {
    /// One partner as a field table.
    pub fn table(&self) -> Table {
        Table::fields(vec![
            ("PARTNER ID", self.partner_id.clone()),
            ("STATUS", self.status.clone()),
            ("NAME", format!("{} {}", self.first_name, self.last_name)),
            ("ORGANIZATION", self.organization_name.clone()),
            ("PARTNER TYPE", self.partner_type.clone()),
            ("EMAIL", self.email.clone()),
            ("PHONE", self.phone.clone()),
            ("ADDRESS", self.address.clone()),
            ("LANGUAGE", or_dash(&self.lang_code)),
            (
                "CERTIFICATE ID",
                option_or_dash(self.certificate_id.as_deref()),
            ),
            ("CREATED", option_or_dash(self.create_time.as_deref())),
            ("UPDATED", option_or_dash(self.update_time.as_deref())),
        ])
    }

    /// Partners as rows of a list.
    pub fn list_table(partners: &[PartnerView]) -> Table {
        let mut table = Table::with_header(&[
            "PARTNER ID",
            "STATUS",
            "TYPE",
            "ORGANIZATION",
            "EMAIL",
            "CERTIFICATE ID",
        ]);
        for view in partners {
            table.push(vec![
                view.partner_id.clone(),
                view.status.clone(),
                view.partner_type.clone(),
                view.organization_name.clone(),
                view.email.clone(),
                option_or_dash(view.certificate_id.as_deref()),
            ]);
        }
        table
    }
}

/// A CA certificate of the trust store.
#[derive(Debug, Clone, Serialize)]
pub struct CaCertificateView {
    pub certificate_id: String,
    pub partner_domain: String,
    pub ca_type: String,
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    pub thumbprint: String,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub upload_time: Option<String>,
    pub issuer_certificate_id: Option<String>,
    pub certificate_pem: String,
}

impl From<&certstore::CaCertificate> for CaCertificateView {
    fn from(record: &certstore::CaCertificate) -> Self {
        CaCertificateView {
            certificate_id: record.certificate_id.clone(),
            partner_domain: record.partner_domain.clone(),
            ca_type: ca_type_name(record.ca_type),
            subject: record.subject.clone(),
            issuer: record.issuer.clone(),
            serial_number: record.serial_number.clone(),
            thumbprint: record.thumbprint.clone(),
            not_before: rfc3339(record.not_before.as_ref()),
            not_after: rfc3339(record.not_after.as_ref()),
            upload_time: rfc3339(record.upload_time.as_ref()),
            issuer_certificate_id: non_empty(&record.issuer_certificate_id),
            certificate_pem: record.certificate_pem.clone(),
        }
    }
}

impl CaCertificateView {
    /// One CA certificate as a field table (without the PEM; `--pem` prints that).
    pub fn table(&self) -> Table {
        Table::fields(vec![
            ("CERTIFICATE ID", self.certificate_id.clone()),
            ("DOMAIN", self.partner_domain.clone()),
            ("TYPE", self.ca_type.clone()),
            ("SUBJECT", self.subject.clone()),
            ("ISSUER", self.issuer.clone()),
            (
                "ISSUER ID",
                option_or_dash(self.issuer_certificate_id.as_deref()),
            ),
            ("SERIAL", self.serial_number.clone()),
            ("THUMBPRINT", self.thumbprint.clone()),
            ("NOT BEFORE", option_or_dash(self.not_before.as_deref())),
            ("NOT AFTER", option_or_dash(self.not_after.as_deref())),
            ("UPLOADED", option_or_dash(self.upload_time.as_deref())),
        ])
    }

    /// CA certificates as rows of a list.
    pub fn list_table(certificates: &[CaCertificateView]) -> Table {
        let mut table =
            Table::with_header(&["CERTIFICATE ID", "DOMAIN", "TYPE", "NOT AFTER", "SUBJECT"]);
        for view in certificates {
            table.push(vec![
                view.certificate_id.clone(),
                view.partner_domain.clone(),
                view.ca_type.clone(),
                option_or_dash(view.not_after.as_deref()),
                view.subject.clone(),
            ]);
        }
        table
    }
}

/// A stored partner or FTM certificate in both forms.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateBundleView {
    pub certificate_id: String,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub expired: bool,
    pub ca_signed_certificate_pem: String,
    pub platform_signed_certificate_pem: String,
}

impl From<&certstore::CertificateBundle> for CertificateBundleView {
    fn from(bundle: &certstore::CertificateBundle) -> Self {
        CertificateBundleView {
            certificate_id: bundle.certificate_id.clone(),
            not_before: rfc3339(bundle.not_before.as_ref()),
            not_after: rfc3339(bundle.not_after.as_ref()),
            expired: bundle.expired,
            ca_signed_certificate_pem: bundle.ca_signed_certificate_pem.clone(),
            platform_signed_certificate_pem: bundle.platform_signed_certificate_pem.clone(),
        }
    }
}

impl CertificateBundleView {
    /// The certificate's summary (the PEMs are printed with `--pem` / `--platform-pem`).
    pub fn table(&self) -> Table {
        Table::fields(vec![
            ("CERTIFICATE ID", self.certificate_id.clone()),
            ("NOT BEFORE", option_or_dash(self.not_before.as_deref())),
            ("NOT AFTER", option_or_dash(self.not_after.as_deref())),
            ("EXPIRED", yes_no(self.expired)),
        ])
    }
}

/// An FTM.
#[derive(Debug, Clone, Serialize)]
pub struct FtmView {
    pub ftm_id: String,
    pub partner_id: String,
    pub organization_name: String,
    pub make: String,
    pub model: String,
    pub status: String,
    pub certificate_id: Option<String>,
    pub certificate_expiry_time: Option<String>,
    pub reject_reason: Option<String>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

impl From<&ftm::Ftm> for FtmView {
    fn from(record: &ftm::Ftm) -> Self {
        FtmView {
            ftm_id: record.ftm_id.clone(),
            partner_id: record.partner_id.clone(),
            organization_name: record.organization_name.clone(),
            make: record.make.clone(),
            model: record.model.clone(),
            status: ftm_status_name(record.status),
            certificate_id: non_empty(&record.certificate_id),
            certificate_expiry_time: rfc3339(record.certificate_expiry_time.as_ref()),
            reject_reason: non_empty(&record.reject_reason),
            create_time: rfc3339(record.create_time.as_ref()),
            update_time: rfc3339(record.update_time.as_ref()),
        }
    }
}

impl FtmView {
    /// One FTM as a field table.
    pub fn table(&self) -> Table {
        Table::fields(vec![
            ("FTM ID", self.ftm_id.clone()),
            ("STATUS", self.status.clone()),
            ("PARTNER ID", self.partner_id.clone()),
            ("ORGANIZATION", self.organization_name.clone()),
            ("MAKE", self.make.clone()),
            ("MODEL", self.model.clone()),
            (
                "CERTIFICATE ID",
                option_or_dash(self.certificate_id.as_deref()),
            ),
            (
                "CERTIFICATE EXPIRY",
                option_or_dash(self.certificate_expiry_time.as_deref()),
            ),
            (
                "REJECT REASON",
                option_or_dash(self.reject_reason.as_deref()),
            ),
            ("CREATED", option_or_dash(self.create_time.as_deref())),
            ("UPDATED", option_or_dash(self.update_time.as_deref())),
        ])
    }

    /// FTMs as rows of a list.
    pub fn list_table(ftms: &[FtmView]) -> Table {
        let mut table = Table::with_header(&[
            "FTM ID",
            "STATUS",
            "PARTNER ID",
            "MAKE",
            "MODEL",
            "CERTIFICATE EXPIRY",
        ]);
        for view in ftms {
            table.push(vec![
                view.ftm_id.clone(),
                view.status.clone(),
                view.partner_id.clone(),
                view.make.clone(),
                view.model.clone(),
                option_or_dash(view.certificate_expiry_time.as_deref()),
            ]);
        }
        table
    }
}

/// The footer under a listed table: how many of how many, and how to get the next page.
pub fn page_footer(shown: usize, total_size: i32, next_page_token: Option<&str>) -> String {
    let mut footer = format!("{shown} of {total_size}");
    if let Some(token) = next_page_token {
        footer.push_str(&format!(" (next page: --page-token {token})"));
    }
    footer.push('\n');
    footer
}

/// "yes"/"no" for booleans in tables.
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let whole = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(
            rfc3339(Some(&whole)).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        let fraction = prost_types::Timestamp {
            seconds: 0,
            nanos: 500_000_000,
        };
        assert_eq!(
            rfc3339(Some(&fraction)).as_deref(),
            Some("1970-01-01T00:00:00.500Z")
        );
        assert_eq!(rfc3339(None), None);
    }

    #[test]
    fn enums_are_named_and_unknown_values_numbered() {
        assert_eq!(partner_status_name(2), "ACTIVE");
        assert_eq!(ftm_status_name(2), "PENDING_APPROVAL");
        assert_eq!(ca_type_name(1), "ROOT");
        assert_eq!(upload_status_name(3), "UPLOAD_FAILED");
        assert_eq!(partner_status_name(99), "99");
    }

    #[test]
    fn partner_json_has_every_key() {
        let view = PartnerView::from(&partner::Partner {
            partner_id: "acme".into(),
            status: 1,
            ..Default::default()
        });
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["status"], "IN_PROGRESS");
        assert!(json["certificate_id"].is_null());
        assert!(
            json.as_object()
                .expect("object")
                .contains_key("create_time")
        );
    }
}
