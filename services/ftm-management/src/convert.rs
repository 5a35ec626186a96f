//! Conversions between protobuf messages and domain types, at the service edge only.

use pmp_common::time::timestamp;
use pmp_proto::ftm::v1 as proto;

use crate::domain::{Ftm, FtmStatus};
use crate::error::FtmError;

impl From<FtmStatus> for proto::FtmStatus {
    fn from(status: FtmStatus) -> Self {
        match status {
            FtmStatus::PendingCertUpload => proto::FtmStatus::PendingCertUpload,
            FtmStatus::PendingApproval => proto::FtmStatus::PendingApproval,
            FtmStatus::Approved => proto::FtmStatus::Approved,
            FtmStatus::Rejected => proto::FtmStatus::Rejected,
            FtmStatus::Deactivated => proto::FtmStatus::Deactivated,
        }
    }
}

/// The filter value of an `FtmStatus` enum number: `Ok(None)` for UNSPECIFIED (no filter),
/// `PMS_COR_001` for a number the contract does not define.
pub fn status_filter(value: i32) -> Result<Option<FtmStatus>, FtmError> {
    match proto::FtmStatus::try_from(value) {
        Ok(proto::FtmStatus::Unspecified) => Ok(None),
        Ok(proto::FtmStatus::PendingCertUpload) => Ok(Some(FtmStatus::PendingCertUpload)),
        Ok(proto::FtmStatus::PendingApproval) => Ok(Some(FtmStatus::PendingApproval)),
        Ok(proto::FtmStatus::Approved) => Ok(Some(FtmStatus::Approved)),
        Ok(proto::FtmStatus::Rejected) => Ok(Some(FtmStatus::Rejected)),
        Ok(proto::FtmStatus::Deactivated) => Ok(Some(FtmStatus::Deactivated)),
        Err(_) => Err(FtmError::InvalidField {
            field: "status",
            message: "status is not a known FTM status".into(),
        }),
    }
}

impl From<Ftm> for proto::Ftm {
    fn from(ftm: Ftm) -> Self {
        proto::Ftm {
            ftm_id: ftm.ftm_id,
            partner_id: ftm.partner_id,
            organization_name: ftm.organization_name,
            make: ftm.make,
            model: ftm.model,
            status: proto::FtmStatus::from(ftm.status) as i32,
            certificate_id: ftm.certificate_id.unwrap_or_default(),
            certificate_expiry_time: ftm.certificate_expiry_time.map(timestamp),
            reject_reason: ftm.reject_reason.unwrap_or_default(),
            create_time: Some(timestamp(ftm.create_time)),
            update_time: Some(timestamp(ftm.update_time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::error::ServiceError as _;

    #[test]
    fn every_status_maps_both_ways() {
        for status in FtmStatus::ALL {
            let wire = proto::FtmStatus::from(status) as i32;
            assert_eq!(status_filter(wire).expect("known"), Some(status));
        }
        assert_eq!(status_filter(0).expect("unspecified"), None);
        let unknown = status_filter(42).expect_err("unknown");
        assert_eq!(unknown.reason(), "PMS_COR_001");
    }
}
