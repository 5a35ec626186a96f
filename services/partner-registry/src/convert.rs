//! Conversions between protobuf messages and domain types, at the service edge only.

use pmp_common::time::timestamp;
use pmp_proto::partner::v1 as proto;

use crate::domain::{Partner, PartnerStatus, RegistrationInput};
use crate::error::RegistryError;

impl From<proto::RegisterPartnerRequest> for RegistrationInput {
    fn from(request: proto::RegisterPartnerRequest) -> Self {
        RegistrationInput {
            partner_id: request.partner_id,
            password: request.password,
            first_name: request.first_name,
            last_name: request.last_name,
            organization_name: request.organization_name,
            partner_type: request.partner_type,
            address: request.address,
            email: request.email,
            phone: request.phone,
            lang_code: request.lang_code,
        }
    }
}

impl From<PartnerStatus> for proto::PartnerStatus {
    fn from(status: PartnerStatus) -> Self {
        match status {
            PartnerStatus::InProgress => proto::PartnerStatus::InProgress,
            PartnerStatus::Active => proto::PartnerStatus::Active,
            PartnerStatus::Deactivated => proto::PartnerStatus::Deactivated,
        }
    }
}

/// The filter value of a `PartnerStatus` enum (`None` = no filter).
pub fn status_filter(value: i32) -> Result<Option<PartnerStatus>, RegistryError> {
    match proto::PartnerStatus::try_from(value) {
        Ok(proto::PartnerStatus::Unspecified) => Ok(None),
        Ok(proto::PartnerStatus::InProgress) => Ok(Some(PartnerStatus::InProgress)),
        Ok(proto::PartnerStatus::Active) => Ok(Some(PartnerStatus::Active)),
        Ok(proto::PartnerStatus::Deactivated) => Ok(Some(PartnerStatus::Deactivated)),
        Err(_) => Err(RegistryError::InvalidField {
            field: "status",
            message: "status is not a known partner status".into(),
        }),
    }
}

impl From<Partner> for proto::Partner {
    fn from(partner: Partner) -> Self {
        proto::Partner {
            partner_id: partner.partner_id,
            first_name: partner.first_name,
            last_name: partner.last_name,
            organization_name: partner.organization_name,
            partner_type: partner.partner_type,
            address: partner.address,
            email: partner.email,
            phone: partner.phone,
            lang_code: partner.lang_code,
            status: proto::PartnerStatus::from(partner.status) as i32,
            certificate_id: partner.certificate_id.unwrap_or_default(),
            create_time: Some(timestamp(partner.create_time)),
            update_time: Some(timestamp(partner.update_time)),
        }
    }
}
