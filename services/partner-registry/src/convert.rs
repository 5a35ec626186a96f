//! Conversions between protobuf messages and the service's inputs and outputs, at the gRPC
//! edge only. Decoding checks only the wire shape (required fields, enums), in the order
//! the contract reports them; everything that needs the caller or the data is the service's.

use pmp_common::time::timestamp;
use pmp_proto::partner::v1 as proto;

use pmp_common::event_feed::FeedItem;

use crate::domain::{
    Partner, PartnerEvent, PartnerState, PartnerStatus, RegistrationInput, require_field,
};
use crate::error::RegistryError;
use crate::service::{
    AccessToken, Activation, CertificateUpload, Credentials, EventWatch, PartnerList,
    PartnerLookup, PartnerQuery, UploadedCertificate, VerificationKeys,
};

impl From<proto::RegisterPartnerRequest> for RegistrationInput {
    fn from(request: proto::RegisterPartnerRequest) -> Self {
        RegistrationInput {
            partner_id: request.partner_id,
            password: request.password.into(),
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

impl TryFrom<proto::LoginRequest> for Credentials {
    type Error = RegistryError;

    fn try_from(request: proto::LoginRequest) -> Result<Self, RegistryError> {
        if request.username.is_empty() || request.password.is_empty() {
            return Err(RegistryError::InvalidField {
                field: if request.username.is_empty() {
                    "username"
                } else {
                    "password"
                },
                message: "username and password are required".into(),
            });
        }
        Ok(Credentials {
            username: request.username,
            password: request.password.into(),
        })
    }
}

impl TryFrom<proto::GetPartnerRequest> for PartnerLookup {
    type Error = RegistryError;

    fn try_from(request: proto::GetPartnerRequest) -> Result<Self, RegistryError> {
        lookup(request.partner_id)
    }
}

impl TryFrom<proto::GetPartnerCertificateRequest> for PartnerLookup {
    type Error = RegistryError;

    fn try_from(request: proto::GetPartnerCertificateRequest) -> Result<Self, RegistryError> {
        lookup(request.partner_id)
    }
}

fn lookup(partner_id: String) -> Result<PartnerLookup, RegistryError> {
    require_field("partner_id", &partner_id)?;
    Ok(PartnerLookup { partner_id })
}

impl From<proto::ListPartnersRequest> for PartnerQuery {
    fn from(request: proto::ListPartnersRequest) -> Self {
        PartnerQuery {
            page_size: request.page_size,
            page_token: request.page_token,
            partner_type: request.partner_type,
            status: status_filter(request.status),
        }
    }
}

impl TryFrom<proto::UploadPartnerCertificateRequest> for CertificateUpload {
    type Error = RegistryError;

    /// Only the partner id: the other fields are checked after ownership.
    fn try_from(request: proto::UploadPartnerCertificateRequest) -> Result<Self, RegistryError> {
        require_field("partner_id", &request.partner_id)?;
        Ok(CertificateUpload {
            partner_id: request.partner_id,
            certificate_data: request.certificate_data,
            partner_domain: request.partner_domain,
        })
    }
}

impl From<proto::SetPartnerActiveRequest> for Activation {
    fn from(request: proto::SetPartnerActiveRequest) -> Self {
        Activation {
            partner_id: request.partner_id,
            active: request.active,
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
fn status_filter(value: i32) -> Result<Option<PartnerStatus>, RegistryError> {
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

impl From<AccessToken> for proto::LoginResponse {
    fn from(token: AccessToken) -> Self {
        proto::LoginResponse {
            access_token: token.token,
            token_type: "Bearer".into(),
            expires_in: i64::try_from(token.lifetime.as_secs()).unwrap_or(i64::MAX),
            roles: token.roles,
        }
    }
}

impl From<UploadedCertificate> for proto::UploadPartnerCertificateResponse {
    fn from(uploaded: UploadedCertificate) -> Self {
        proto::UploadPartnerCertificateResponse {
            certificate_id: uploaded.certificate_id,
            signed_certificate_data: uploaded.signed_certificate_pem,
            partner: Some(uploaded.partner.into()),
        }
    }
}

impl From<PartnerList> for proto::ListPartnersResponse {
    fn from(list: PartnerList) -> Self {
        proto::ListPartnersResponse {
            partners: list.partners.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: i32::try_from(list.total_size).unwrap_or(i32::MAX),
        }
    }
}

impl From<VerificationKeys> for proto::GetTokenVerificationKeysResponse {
    fn from(keys: VerificationKeys) -> Self {
        proto::GetTokenVerificationKeysResponse {
            public_keys_pem: keys.public_keys_pem,
            issuer: keys.issuer,
            audience: keys.audience,
            jwks: keys.jwks,
        }
    }
}

/// The key location of an `AddTokenSigningKey` request: exactly one of label and file.
pub(crate) fn key_location(
    request: proto::AddTokenSigningKeyRequest,
) -> Result<pmp_common::signing::KeyLocation, RegistryError> {
    let (label, file) = (request.key_label.trim(), request.key_file.trim());
    pmp_common::signing::KeyLocation::from_columns(label.to_owned(), file.to_owned()).ok_or_else(
        || RegistryError::InvalidField {
            field: "key_label",
            message: "exactly one of key_label and key_file is required".into(),
        },
    )
}

/// A token signing key on the wire.
pub(crate) fn token_key(
    key: crate::storage::TokenKeyRecord,
    lifetime: std::time::Duration,
) -> proto::TokenSigningKey {
    use pmp_common::signing::KeyState;
    let state = match key.state {
        KeyState::Next => proto::TokenSigningKeyState::Next,
        KeyState::Active => proto::TokenSigningKeyState::Active,
        KeyState::Previous => proto::TokenSigningKeyState::Previous,
    };
    proto::TokenSigningKey {
        published_until: crate::service::published_until(&key, lifetime)
            .map(pmp_common::time::timestamp),
        state: state as i32,
        key_location: key.location.to_string(),
        activated_at: key.activated_at.map(pmp_common::time::timestamp),
        key_id: key.key_id,
        public_key_pem: key.public_key_pem,
    }
}

impl TryFrom<proto::WatchPartnerEventsRequest> for EventWatch {
    type Error = RegistryError;

    fn try_from(request: proto::WatchPartnerEventsRequest) -> Result<Self, RegistryError> {
        if request.from_version < 0 {
            return Err(RegistryError::InvalidField {
                field: "from_version",
                message: "from_version must not be negative".into(),
            });
        }
        Ok(EventWatch {
            from_version: request.from_version,
        })
    }
}

fn partner_state(state: PartnerState) -> proto::PartnerState {
    proto::PartnerState {
        active: state.status == PartnerStatus::Active,
        status: proto::PartnerStatus::from(state.status) as i32,
        partner_id: state.partner_id,
        organization_name: state.organization_name,
        partner_type: state.partner_type,
        certificate_id: state.certificate_id.unwrap_or_default(),
    }
}

/// One message of a `WatchPartnerEvents` stream on the wire.
pub(crate) fn partner_event(item: FeedItem<PartnerEvent, PartnerState>) -> proto::PartnerEvent {
    use proto::partner_event::Event;
    let (version, time, event) = item.encode(
        |states, last| {
            Event::Snapshot(proto::PartnerSnapshot {
                partners: states.into_iter().map(partner_state).collect(),
                last,
            })
        },
        || Event::Heartbeat(proto::Heartbeat {}),
        |event| match event {
            PartnerEvent::Registered { partner } => Event::Registered(proto::PartnerRegistered {
                partner: Some(partner_state(partner)),
            }),
            PartnerEvent::CertificateUploaded {
                partner_id,
                certificate_id,
            } => Event::CertificateUploaded(proto::PartnerCertificateUploaded {
                partner_id,
                certificate_id,
            }),
            PartnerEvent::Activated { partner_id, status } => {
                Event::Activated(proto::PartnerActivated {
                    partner_id,
                    status: proto::PartnerStatus::from(status) as i32,
                })
            }
            PartnerEvent::Deactivated { partner_id } => {
                Event::Deactivated(proto::PartnerDeactivated { partner_id })
            }
        },
    );
    proto::PartnerEvent {
        version,
        time: Some(timestamp(time)),
        event: Some(event),
    }
}
