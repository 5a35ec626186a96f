//! Conversions between protobuf messages and domain types, at the service edge only.

use pmp_common::time::timestamp;
use pmp_proto::certstore::v1 as proto;

use crate::domain::{CaCertificate, CaType, Owner, PartnerCertificate};
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

/// The typed owner of an uploaded certificate: `owner_type` is required; a partner
/// certificate belongs to its owner (a different `partner_id` is refused), a chip
/// certificate to the partner named in `partner_id` (required).
pub fn owner(request: &proto::UploadPartnerCertificateRequest) -> Result<Owner, StoreError> {
    let invalid = |field: &'static str, message: &str| StoreError::InvalidField {
        field,
        message: message.to_owned(),
    };
    let owner_id = request.owner_id.trim();
    let partner_id = request.partner_id.trim();
    match proto::OwnerType::try_from(request.owner_type) {
        Ok(proto::OwnerType::Partner) if partner_id.is_empty() || partner_id == owner_id => {
            Ok(Owner::partner(owner_id))
        }
        Ok(proto::OwnerType::Partner) => Err(invalid(
            "partner_id",
            "a partner certificate belongs to its owner: partner_id must be empty or equal owner_id",
        )),
        Ok(proto::OwnerType::Ftm) if !partner_id.is_empty() => Ok(Owner::ftm(owner_id, partner_id)),
        Ok(proto::OwnerType::Ftm) => Err(invalid(
            "partner_id",
            "partner_id is required for an FTM chip certificate",
        )),
        Ok(proto::OwnerType::Unspecified) | Err(_) => Err(invalid(
            "owner_type",
            "owner_type is required: PARTNER or FTM",
        )),
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
