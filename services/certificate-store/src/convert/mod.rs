//! Conversions between protobuf messages and the service's inputs and answers, at the gRPC
//! edge only. Decoding checks what is about the wire shape alone (required fields, enums);
//! everything else is the use cases' business.

use pmp_common::pagination;
use pmp_common::time::timestamp;
use pmp_proto::certstore::v1 as proto;

use crate::domain::{
    CaCertificate, CaType, KeyLocation, Owner, PartnerCertificate, PlatformKeyRecord,
    PlatformKeyState,
};
use crate::error::StoreError;
use crate::service::{
    AddPlatformKey, CaList, CaLookup, CaUpload, CaUploadResult, ListCa, ListPlatformKeys,
    PartnerDeactivation, PartnerLookup, PlatformKeyLookup, PublishedPlatformKeys, SetTrusted,
    TrustPath, UploadCa, UploadPartner, UploadStatus, VerifyTrust, published_until,
};
use crate::trust::Verdict;

mod feed;
pub(crate) use feed::feed_message;

/// `PMS_COR_001` naming `field`, with `message`.
fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::InvalidField {
        field,
        message: message.into(),
    }
}

/// `PMS_COR_001` for a blank required field ("whichever other row might also fit").
fn required(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::InvalidField {
            field,
            message: format!("{field} is required"),
        });
    }
    Ok(())
}

impl From<CaType> for proto::CaType {
    fn from(ca_type: CaType) -> Self {
        match ca_type {
            CaType::Root => proto::CaType::Root,
            CaType::Intermediate => proto::CaType::Intermediate,
        }
    }
}

/// The `CaType` filter of a list request (`None` = both).
fn ca_type_filter(value: i32) -> Result<Option<CaType>, StoreError> {
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
fn owner(request: &proto::UploadPartnerCertificateRequest) -> Result<Owner, StoreError> {
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

impl TryFrom<proto::UploadCaCertificateRequest> for UploadCa {
    type Error = StoreError;

    fn try_from(request: proto::UploadCaCertificateRequest) -> Result<Self, StoreError> {
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        Ok(UploadCa {
            certificate_data: request.certificate_data,
            partner_domain: request.partner_domain,
        })
    }
}

impl TryFrom<proto::ListCaCertificatesRequest> for ListCa {
    type Error = StoreError;

    fn try_from(request: proto::ListCaCertificatesRequest) -> Result<Self, StoreError> {
        Ok(ListCa {
            page_size: pagination::page_size(request.page_size)?,
            partner_domain: request.partner_domain,
            ca_type: ca_type_filter(request.ca_type),
            page_token: request.page_token,
        })
    }
}

impl TryFrom<proto::GetCaCertificateRequest> for CaLookup {
    type Error = StoreError;

    fn try_from(request: proto::GetCaCertificateRequest) -> Result<Self, StoreError> {
        required("certificate_id", &request.certificate_id)?;
        Ok(CaLookup {
            certificate_id: request.certificate_id,
        })
    }
}

impl TryFrom<proto::GetCaTrustPathRequest> for CaLookup {
    type Error = StoreError;

    fn try_from(request: proto::GetCaTrustPathRequest) -> Result<Self, StoreError> {
        required("certificate_id", &request.certificate_id)?;
        Ok(CaLookup {
            certificate_id: request.certificate_id,
        })
    }
}

impl TryFrom<proto::UploadPartnerCertificateRequest> for UploadPartner {
    type Error = StoreError;

    fn try_from(request: proto::UploadPartnerCertificateRequest) -> Result<Self, StoreError> {
        required("owner_id", &request.owner_id)?;
        required("organization_name", &request.organization_name)?;
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        Ok(UploadPartner {
            owner: owner(&request)?,
            organization_name: request.organization_name,
            certificate_data: request.certificate_data,
            partner_domain: request.partner_domain,
        })
    }
}

impl TryFrom<proto::GetPartnerCertificateRequest> for PartnerLookup {
    type Error = StoreError;

    fn try_from(request: proto::GetPartnerCertificateRequest) -> Result<Self, StoreError> {
        required("certificate_id", &request.certificate_id)?;
        Ok(PartnerLookup {
            certificate_id: request.certificate_id,
        })
    }
}

impl TryFrom<proto::SetCertificateTrustedRequest> for SetTrusted {
    type Error = StoreError;

    fn try_from(request: proto::SetCertificateTrustedRequest) -> Result<Self, StoreError> {
        required("certificate_id", &request.certificate_id)?;
        let link_partner = Some(request.partner_id.trim()).filter(|id| !id.is_empty());
        Ok(SetTrusted {
            link_partner: link_partner.map(str::to_owned),
            certificate_id: request.certificate_id,
            trusted: request.trusted,
        })
    }
}

impl TryFrom<proto::SetPartnerDeactivatedRequest> for PartnerDeactivation {
    type Error = StoreError;

    fn try_from(request: proto::SetPartnerDeactivatedRequest) -> Result<Self, StoreError> {
        required("partner_id", &request.partner_id)?;
        Ok(PartnerDeactivation {
            partner_id: request.partner_id.trim().to_owned(),
            deactivated: request.deactivated,
        })
    }
}

impl TryFrom<proto::VerifyCertificateTrustRequest> for VerifyTrust {
    type Error = StoreError;

    fn try_from(request: proto::VerifyCertificateTrustRequest) -> Result<Self, StoreError> {
        required("certificate_data", &request.certificate_data)?;
        required("partner_domain", &request.partner_domain)?;
        Ok(VerifyTrust {
            certificate_data: request.certificate_data,
            partner_domain: request.partner_domain,
        })
    }
}

impl From<UploadStatus> for proto::UploadStatus {
    fn from(status: UploadStatus) -> Self {
        match status {
            UploadStatus::Success => proto::UploadStatus::UploadSuccess,
            UploadStatus::PartialSuccess => proto::UploadStatus::PartialUploadSuccess,
            UploadStatus::Failed => proto::UploadStatus::UploadFailed,
        }
    }
}

impl From<CaUploadResult> for proto::CaUploadResult {
    fn from(result: CaUploadResult) -> Self {
        proto::CaUploadResult {
            certificate_id: result.certificate_id,
            thumbprint: result.thumbprint,
            ca_type: proto::CaType::from(result.ca_type) as i32,
            subject: result.subject,
            error_reason: result.error_reason,
        }
    }
}

impl From<CaUpload> for proto::UploadCaCertificateResponse {
    fn from(upload: CaUpload) -> Self {
        proto::UploadCaCertificateResponse {
            status: proto::UploadStatus::from(upload.status) as i32,
            results: upload.results.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<CaList> for proto::ListCaCertificatesResponse {
    fn from(list: CaList) -> Self {
        proto::ListCaCertificatesResponse {
            ca_certificates: list.ca_certificates.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: i32::try_from(list.total_size).unwrap_or(i32::MAX),
        }
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

impl From<TrustPath> for proto::TrustPath {
    fn from(path: TrustPath) -> Self {
        proto::TrustPath {
            certificates_pem: path.certificates_pem,
            p7b: path.p7b,
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

impl From<PartnerCertificate> for proto::SetCertificateTrustedResponse {
    fn from(certificate: PartnerCertificate) -> Self {
        proto::SetCertificateTrustedResponse {
            certificate_id: certificate.certificate_id,
            trusted: certificate.trusted,
        }
    }
}

impl From<PartnerDeactivation> for proto::SetPartnerDeactivatedResponse {
    fn from(state: PartnerDeactivation) -> Self {
        proto::SetPartnerDeactivatedResponse {
            partner_id: state.partner_id,
            deactivated: state.deactivated,
        }
    }
}

/// The response for the shared (often cached) verdict: it copies its text once.
pub(crate) fn verify_response(verdict: &Verdict) -> proto::VerifyCertificateTrustResponse {
    proto::VerifyCertificateTrustResponse {
        trusted: verdict.trusted,
        chain_pem: verdict
            .chain_pem
            .iter()
            .map(|pem| pem.to_string())
            .collect(),
        reason: verdict.reason.clone(),
    }
}

impl TryFrom<proto::AddPlatformSigningKeyRequest> for AddPlatformKey {
    type Error = StoreError;

    fn try_from(request: proto::AddPlatformSigningKeyRequest) -> Result<Self, StoreError> {
        required("certificate_pem", &request.certificate_pem)?;
        let (label, file) = (request.key_label.trim(), request.key_file.trim());
        let location = match (label.is_empty(), file.is_empty()) {
            (false, true) => KeyLocation::Hsm(label.to_owned()),
            (true, false) => KeyLocation::File(file.to_owned()),
            _ => {
                return Err(StoreError::InvalidField {
                    field: "key_label",
                    message: "exactly one of key_label and key_file is required".into(),
                });
            }
        };
        Ok(AddPlatformKey {
            certificate_pem: request.certificate_pem,
            location,
        })
    }
}

impl TryFrom<proto::ActivatePlatformSigningKeyRequest> for PlatformKeyLookup {
    type Error = StoreError;

    fn try_from(request: proto::ActivatePlatformSigningKeyRequest) -> Result<Self, StoreError> {
        required("key_id", &request.key_id)?;
        Ok(PlatformKeyLookup {
            key_id: request.key_id,
        })
    }
}

impl TryFrom<proto::ListPlatformSigningKeysRequest> for ListPlatformKeys {
    type Error = StoreError;

    fn try_from(_: proto::ListPlatformSigningKeysRequest) -> Result<Self, StoreError> {
        Ok(ListPlatformKeys)
    }
}

fn platform_key_state(state: PlatformKeyState) -> proto::PlatformSigningKeyState {
    match state {
        PlatformKeyState::Next => proto::PlatformSigningKeyState::Next,
        PlatformKeyState::Active => proto::PlatformSigningKeyState::Active,
        PlatformKeyState::Previous => proto::PlatformSigningKeyState::Previous,
    }
}

impl From<PlatformKeyRecord> for proto::PlatformSigningKey {
    fn from(key: PlatformKeyRecord) -> Self {
        let published_until = published_until(&key).map(timestamp);
        proto::PlatformSigningKey {
            state: platform_key_state(key.state) as i32,
            key_location: key.location.to_string(),
            not_after: Some(timestamp(key.not_after)),
            activated_at: key.activated_at.map(timestamp),
            published_until,
            key_id: key.key_id,
            certificate_pem: key.certificate_pem,
        }
    }
}

impl From<PublishedPlatformKeys> for proto::ListPlatformSigningKeysResponse {
    fn from(published: PublishedPlatformKeys) -> Self {
        proto::ListPlatformSigningKeysResponse {
            root_certificate_pem: published.root_certificate_pem,
            keys: published.keys.into_iter().map(Into::into).collect(),
        }
    }
}
