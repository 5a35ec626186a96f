//! Conversions between protobuf messages and domain types, at the gRPC edge only.
//!
//! Decoding a request checks what is purely about its wire shape (required fields, lengths,
//! enum numbers), in the order the contract reports them; everything that depends on the
//! caller or on stored state is the service's.

use pmp_common::pagination;
use pmp_common::time::timestamp;
use pmp_proto::certstore::v1 as store;
use pmp_proto::ftm::v1 as proto;

use pmp_common::event_feed::FeedItem;

use crate::domain::{
    CertificateUpload, EventWatch, Ftm, FtmEvent, FtmListing, FtmRef, FtmSearch, FtmState,
    FtmStatus, MAX_REJECT_REASON_CHARS, NewFtm, Ordering, Rejection, require_id, require_text,
};
use crate::error::FtmError;
use crate::upstream::CertificateBundle;

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
fn status_filter(value: i32) -> Result<Option<FtmStatus>, FtmError> {
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

impl TryFrom<proto::CreateFtmRequest> for NewFtm {
    type Error = FtmError;

    fn try_from(request: proto::CreateFtmRequest) -> Result<Self, FtmError> {
        NewFtm::validate(&request.partner_id, &request.make, &request.model)
    }
}

impl TryFrom<proto::UploadFtmCertificateRequest> for CertificateUpload {
    type Error = FtmError;

    fn try_from(request: proto::UploadFtmCertificateRequest) -> Result<Self, FtmError> {
        require_id("ftm_id", &request.ftm_id)?;
        if request.certificate_data.trim().is_empty() {
            return Err(FtmError::InvalidField {
                field: "certificate_data",
                message: "certificate_data is required".into(),
            });
        }
        Ok(CertificateUpload {
            ftm_id: request.ftm_id,
            certificate_data: request.certificate_data,
        })
    }
}

/// The requests that only name an FTM.
macro_rules! ftm_ref_from {
    ($($request:ty),+) => {$(
        impl TryFrom<$request> for FtmRef {
            type Error = FtmError;

            fn try_from(request: $request) -> Result<Self, FtmError> {
                require_id("ftm_id", &request.ftm_id)?;
                Ok(FtmRef { ftm_id: request.ftm_id })
            }
        }
    )+};
}

ftm_ref_from!(
    proto::ApproveFtmRequest,
    proto::DeactivateFtmRequest,
    proto::GetFtmRequest,
    proto::GetFtmCertificateRequest
);

impl TryFrom<proto::RejectFtmRequest> for Rejection {
    type Error = FtmError;

    fn try_from(request: proto::RejectFtmRequest) -> Result<Self, FtmError> {
        require_id("ftm_id", &request.ftm_id)?;
        let reason = require_text("reason", &request.reason, MAX_REJECT_REASON_CHARS)?;
        Ok(Rejection {
            ftm_id: request.ftm_id,
            reason,
        })
    }
}

impl TryFrom<proto::ListFtmsRequest> for FtmSearch {
    type Error = FtmError;

    fn try_from(request: proto::ListFtmsRequest) -> Result<Self, FtmError> {
        let limit = pagination::page_size(request.page_size)?;
        let ordering = Ordering::parse(&request.order_by)?;
        let status = status_filter(request.status)?;
        let partner_id = request.partner_id.trim();
        Ok(FtmSearch {
            limit,
            page_token: request.page_token,
            partner_id: (!partner_id.is_empty()).then(|| partner_id.to_owned()),
            status,
            make: request.make,
            model: request.model,
            organization_name: request.organization_name,
            ordering,
        })
    }
}

impl From<FtmListing> for proto::ListFtmsResponse {
    fn from(listing: FtmListing) -> Self {
        proto::ListFtmsResponse {
            ftms: listing.ftms.into_iter().map(Into::into).collect(),
            next_page_token: listing.next_page_token,
            total_size: i32::try_from(listing.total_size).unwrap_or(i32::MAX),
        }
    }
}

impl From<CertificateBundle> for store::CertificateBundle {
    fn from(bundle: CertificateBundle) -> Self {
        store::CertificateBundle {
            certificate_id: bundle.certificate_id,
            ca_signed_certificate_pem: bundle.ca_signed_certificate_pem,
            platform_signed_certificate_pem: bundle.platform_signed_certificate_pem,
            not_before: bundle.not_before.map(timestamp),
            not_after: bundle.not_after.map(timestamp),
            expired: bundle.expired,
        }
    }
}

impl TryFrom<proto::WatchFtmEventsRequest> for EventWatch {
    type Error = FtmError;

    fn try_from(request: proto::WatchFtmEventsRequest) -> Result<Self, FtmError> {
        if request.from_version < 0 {
            return Err(FtmError::InvalidField {
                field: "from_version",
                message: "from_version must not be negative".into(),
            });
        }
        Ok(EventWatch {
            from_version: request.from_version,
        })
    }
}

fn ftm_state(state: FtmState) -> proto::FtmState {
    proto::FtmState {
        status: proto::FtmStatus::from(state.status) as i32,
        ftm_id: state.ftm_id,
        partner_id: state.partner_id,
        make: state.make,
        model: state.model,
        certificate_id: state.certificate_id.unwrap_or_default(),
    }
}

/// One message of a `WatchFtmEvents` stream on the wire.
pub(crate) fn ftm_event(item: FeedItem<FtmEvent, FtmState>) -> proto::FtmEvent {
    use proto::ftm_event::Event;
    let (version, time, event) = item.encode(
        |states, last| {
            Event::Snapshot(proto::FtmSnapshot {
                ftms: states.into_iter().map(ftm_state).collect(),
                last,
            })
        },
        || Event::Heartbeat(proto::Heartbeat {}),
        |event| match event {
            FtmEvent::Created { ftm } => Event::Created(proto::FtmCreated {
                ftm: Some(ftm_state(ftm)),
            }),
            FtmEvent::CertificateUploaded {
                ftm_id,
                certificate_id,
            } => Event::CertificateUploaded(proto::FtmCertificateUploaded {
                ftm_id,
                certificate_id,
            }),
            FtmEvent::Approved { ftm_id } => Event::Approved(proto::FtmApproved { ftm_id }),
            FtmEvent::Rejected { ftm_id, reason } => {
                Event::Rejected(proto::FtmRejected { ftm_id, reason })
            }
            FtmEvent::Deactivated { ftm_id } => {
                Event::Deactivated(proto::FtmDeactivated { ftm_id })
            }
        },
    );
    proto::FtmEvent {
        version,
        time: Some(timestamp(time)),
        event: Some(event),
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

    /// The reason and field a rejected request is answered with.
    fn refusal(error: FtmError) -> (String, &'static str) {
        let field = match &error {
            FtmError::InvalidField { field, .. } => field,
            _ => "",
        };
        (error.reason(), field)
    }

    #[test]
    fn requests_are_checked_field_by_field_in_order() {
        let upload = proto::UploadFtmCertificateRequest {
            ftm_id: " ".into(),
            certificate_data: String::new(),
        };
        let error = CertificateUpload::try_from(upload).expect_err("blank id");
        assert_eq!(refusal(error), ("PMS_COR_001".into(), "ftm_id"));
        let upload = proto::UploadFtmCertificateRequest {
            ftm_id: "ftm_1".into(),
            certificate_data: " \n".into(),
        };
        let error = CertificateUpload::try_from(upload).expect_err("blank certificate");
        assert_eq!(refusal(error), ("PMS_COR_001".into(), "certificate_data"));
        let reject = proto::RejectFtmRequest {
            ftm_id: "ftm_1".into(),
            reason: "x".repeat(MAX_REJECT_REASON_CHARS + 1),
        };
        let error = Rejection::try_from(reject).expect_err("long reason");
        assert_eq!(refusal(error), ("PMS_COR_001".into(), "reason"));
        let get = proto::GetFtmRequest { ftm_id: "".into() };
        let error = FtmRef::try_from(get).expect_err("blank id");
        assert_eq!(refusal(error), ("PMS_COR_001".into(), "ftm_id"));
        // Page size before order, order before status.
        let list = proto::ListFtmsRequest {
            page_size: -1,
            order_by: "sideways".into(),
            status: 42,
            ..Default::default()
        };
        let error = FtmSearch::try_from(list.clone()).expect_err("negative size");
        assert_eq!(refusal(error), ("PMS_PRT_361".into(), ""));
        let list = proto::ListFtmsRequest {
            page_size: 0,
            ..list
        };
        let error = FtmSearch::try_from(list.clone()).expect_err("bad order");
        assert_eq!(refusal(error), ("PMS_PRT_357".into(), ""));
        let list = proto::ListFtmsRequest {
            order_by: String::new(),
            ..list
        };
        let error = FtmSearch::try_from(list).expect_err("bad status");
        assert_eq!(refusal(error), ("PMS_COR_001".into(), "status"));
    }

    #[test]
    fn list_partner_filter_is_trimmed_and_optional() {
        let search = |partner_id: &str| {
            FtmSearch::try_from(proto::ListFtmsRequest {
                partner_id: partner_id.into(),
                ..Default::default()
            })
            .expect("valid")
            .partner_id
        };
        assert_eq!(search("  "), None);
        assert_eq!(search(" acme "), Some("acme".to_owned()));
    }

    #[test]
    fn certificate_bundles_pass_through_unchanged() {
        let wire = store::CertificateBundle {
            certificate_id: "cert-1".into(),
            ca_signed_certificate_pem: "ca".into(),
            platform_signed_certificate_pem: "platform".into(),
            not_before: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
            not_after: None,
            expired: true,
        };
        let domain = CertificateBundle::from(wire.clone());
        assert_eq!(store::CertificateBundle::from(domain), wire);
    }
}
