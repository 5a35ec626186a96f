//! Conversions between protobuf messages and domain types, at the service edge only.

use pmp_common::time::timestamp;
use pmp_proto::certstore::v1 as proto;

use crate::domain::{CaCertificate, CaType, CertificateKind, PartnerCertificate};
use crate::error::StoreError;

impl From<CaType> for proto::CaType {
    fn from(ca_type: CaType) -> Self {
        match ca_type {
            CaType::Root => proto::CaType::Root,
            CaType::Intermediate => proto::CaType::Intermediate,
        }
    }
}

/// The `CaType` filter of a list request (`None` = both).
pub fn ca_type_filter(value: i32) -> Result<Option<CaType>, StoreError> {
    match proto::CaType::try_from(value) {
        Ok(proto::CaType::Unspecified) => Ok(None),
        Ok(proto::CaType::Root) => Ok(Some(CaType::Root)),
        Ok(proto::CaType::Intermediate) => Ok(Some(CaType::Intermediate)),
        Err(_) => Err(StoreError::InvalidField {
            field: "ca_type",
            message: "ca_type is not a known CA type".into(),
        }),
    }
}

/// The kind of an uploaded certificate; unspecified fails closed (untrusted until approved).
pub fn certificate_kind(value: i32) -> Result<CertificateKind, StoreError> {
    match proto::CertificateKind::try_from(value) {
        Ok(proto::CertificateKind::Partner) => Ok(CertificateKind::Partner),
        Ok(proto::CertificateKind::FtmChip | proto::CertificateKind::Unspecified) => {
            Ok(CertificateKind::FtmChip)
        }
        Err(_) => Err(StoreError::InvalidField {
            field: "certificate_kind",
            message: "certificate_kind is not a known kind".into(),
        }),
    }
}

impl From<CaCertificate> for proto::CaCertificate {
    fn from(certificate: CaCertificate) -> Self {
        proto::CaCertificate {
            certificate_id: certificate.certificate_id,
            partner_domain: certificate.partner_domain,
            ca_type: proto::CaType::from(certificate.ca_type) as i32,
            subject: certificate.subject,
            issuer: certificate.issuer,
            serial_number: certificate.serial_number,
            thumbprint: certificate.thumbprint,
            not_before: Some(timestamp(certificate.not_before)),
            not_after: Some(timestamp(certificate.not_after)),
            upload_time: Some(timestamp(certificate.upload_time)),
            certificate_pem: certificate.certificate_pem,
            issuer_certificate_id: certificate.issuer_certificate_id,
        }
    }
}

impl From<PartnerCertificate> for proto::CertificateBundle {
    fn from(certificate: PartnerCertificate) -> Self {
        proto::CertificateBundle {
            expired: certificate.not_after < chrono::Utc::now(),
            certificate_id: certificate.certificate_id,
            ca_signed_certificate_pem: certificate.ca_signed_pem,
            platform_signed_certificate_pem: certificate.platform_signed_pem,
            not_before: Some(timestamp(certificate.not_before)),
            not_after: Some(timestamp(certificate.not_after)),
        }
    }
}

impl From<PartnerCertificate> for proto::UploadPartnerCertificateResponse {
    fn from(certificate: PartnerCertificate) -> Self {
        proto::UploadPartnerCertificateResponse {
            certificate_id: certificate.certificate_id,
            ca_signed_certificate_pem: certificate.ca_signed_pem,
            platform_signed_certificate_pem: certificate.platform_signed_pem,
            chain_pem: certificate.chain_pem,
            not_before: Some(timestamp(certificate.not_before)),
            not_after: Some(timestamp(certificate.not_after)),
        }
    }
}
