//! A certificate store test double: keeps certificates and their trust flag in memory,
//! follows the contract of the calls FTM management makes (idempotent uploads per owner,
//! certificate and domain; `KER-PCM-012` for unknown ids), records what every call carried,
//! and fails on demand — before or after applying a change — to exercise the failure points
//! of the cross-service steps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::{Code, Request, Response, Status};

use pmp_common::error::error_status;
use pmp_common::time::timestamp;
use pmp_proto::certstore::v1::certificate_store_server::{
    CertificateStore, CertificateStoreServer,
};
use pmp_proto::certstore::v1::*;

/// How a call should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `UNAVAILABLE` without doing anything.
    Unavailable,
    /// Apply the change, then answer `UNAVAILABLE` (the reply was "lost").
    UnavailableAfterApplying,
}

/// A stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCertificate {
    pub owner_id: String,
    pub organization_name: String,
    pub certificate_data: String,
    pub partner_domain: String,
    pub owner_type: i32,
    /// The partner the certificate belongs to, as the uploader or a later trust call said.
    pub partner_id: String,
    pub trusted: bool,
}

/// Metadata of a received call.
#[derive(Debug, Clone, Default)]
pub struct RecordedCall {
    pub method: &'static str,
    pub authorization: Option<String>,
    pub forwarded_user: Option<String>,
    pub traceparent: Option<String>,
    pub timeout: Option<String>,
    /// The certificate id or owner id the call was about.
    pub subject: String,
}

#[derive(Default)]
struct State {
    certificates: HashMap<String, FakeCertificate>,
    deactivated_partners: std::collections::HashSet<String>,
    next_id: u64,
    calls: Vec<RecordedCall>,
    faults: HashMap<&'static str, VecDeque<Fault>>,
}

/// The double and its server.
#[derive(Clone, Default)]
pub struct FakeStore {
    state: Arc<Mutex<State>>,
}

/// A running fake store; stops when dropped.
pub struct FakeStoreServer {
    pub store: FakeStore,
    pub address: String,
    _stop: oneshot::Sender<()>,
}

pub const UPLOAD: &str = "UploadPartnerCertificate";
pub const SET_TRUSTED: &str = "SetCertificateTrusted";
pub const GET: &str = "GetPartnerCertificate";
pub const SET_DEACTIVATED: &str = "SetPartnerDeactivated";

/// A PEM-shaped certificate the fake accepts for organisation `org`; `name` tells chips
/// apart (different data = different certificate).
pub fn chip_certificate(name: &str, org: &str) -> String {
    format!("-----BEGIN CERTIFICATE-----\nchip:{name};O={org}\n-----END CERTIFICATE-----\n")
}

impl FakeStore {
    /// Starts the double on `127.0.0.1:0`.
    pub async fn start() -> FakeStoreServer {
        let store = FakeStore::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let service = CertificateStoreServer::new(store.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        FakeStoreServer {
            store,
            address,
            _stop: stop,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake store lock")
    }

    /// Makes the next call of `method` fail with `fault`.
    pub fn fail_next(&self, method: &'static str, fault: Fault) {
        self.state()
            .faults
            .entry(method)
            .or_default()
            .push_back(fault);
    }

    /// Puts a certificate in place directly (test set-up).
    pub fn insert(&self, certificate_id: &str, owner_id: &str, trusted: bool) {
        self.state().certificates.insert(
            certificate_id.to_owned(),
            FakeCertificate {
                owner_id: owner_id.to_owned(),
                organization_name: "set-up".into(),
                certificate_data: format!("set-up:{certificate_id}"),
                partner_domain: "FTM".into(),
                owner_type: OwnerType::Ftm as i32,
                partner_id: String::new(),
                trusted,
            },
        );
    }

    /// Sets a trust flag directly (simulating a call whose effect landed).
    pub fn force_trust(&self, certificate_id: &str, trusted: bool) {
        if let Some(certificate) = self.state().certificates.get_mut(certificate_id) {
            certificate.trusted = trusted;
        }
    }

    /// Whether the registry told the store that `partner_id` is deactivated.
    pub fn partner_deactivated(&self, partner_id: &str) -> bool {
        self.state().deactivated_partners.contains(partner_id)
    }

    pub fn trusted(&self, certificate_id: &str) -> Option<bool> {
        self.state()
            .certificates
            .get(certificate_id)
            .map(|certificate| certificate.trusted)
    }

    pub fn certificate(&self, certificate_id: &str) -> Option<FakeCertificate> {
        self.state().certificates.get(certificate_id).cloned()
    }

    /// Every stored certificate, by id.
    pub fn certificates(&self) -> HashMap<String, FakeCertificate> {
        self.state().certificates.clone()
    }

    /// Ids of the certificates `owner_id` uploaded.
    pub fn certificates_of(&self, owner_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .state()
            .certificates
            .iter()
            .filter(|(_, certificate)| certificate.owner_id == owner_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The calls received for `method`, oldest first.
    pub fn calls(&self, method: &str) -> Vec<RecordedCall> {
        self.state()
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    fn begin<T>(
        &self,
        method: &'static str,
        request: &Request<T>,
        subject: &str,
    ) -> Result<Option<Fault>, Status> {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let call = RecordedCall {
            method,
            authorization: header("authorization"),
            forwarded_user: header("x-pms-user-token"),
            traceparent: header("traceparent"),
            timeout: header("grpc-timeout"),
            subject: subject.to_owned(),
        };
        let authorised = call
            .authorization
            .as_deref()
            .is_some_and(|value| value.starts_with("Bearer "));
        let mut state = self.state();
        state.calls.push(call);
        if !authorised {
            return Err(error_status(
                Code::Unauthenticated,
                "KER-ATH-401",
                "a service token is required",
            ));
        }
        let fault = state.faults.get_mut(method).and_then(VecDeque::pop_front);
        if fault == Some(Fault::Unavailable) {
            return Err(Status::unavailable("fake store is down"));
        }
        Ok(fault)
    }
}

fn lost_reply(fault: Option<Fault>) -> Result<(), Status> {
    if fault == Some(Fault::UnavailableAfterApplying) {
        return Err(Status::unavailable("connection reset after the change"));
    }
    Ok(())
}

fn not_found() -> Status {
    error_status(
        Code::NotFound,
        "KER-PCM-012",
        "partner certificate not found for the given id",
    )
}

#[tonic::async_trait]
impl CertificateStore for FakeStore {
    async fn add_platform_signing_key(
        &self,
        _request: Request<AddPlatformSigningKeyRequest>,
    ) -> Result<Response<PlatformSigningKey>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn activate_platform_signing_key(
        &self,
        _request: Request<ActivatePlatformSigningKeyRequest>,
    ) -> Result<Response<PlatformSigningKey>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_platform_signing_keys(
        &self,
        _request: Request<ListPlatformSigningKeysRequest>,
    ) -> Result<Response<ListPlatformSigningKeysResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    type WatchTrustChangesStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<TrustChange, Status>> + Send + 'static>,
    >;

    async fn watch_trust_changes(
        &self,
        _request: Request<WatchTrustChangesRequest>,
    ) -> Result<Response<Self::WatchTrustChangesStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn revoke_certificate(
        &self,
        _request: Request<RevokeCertificateRequest>,
    ) -> Result<Response<RevokeCertificateResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_crl(
        &self,
        _request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_expiring_certificates(
        &self,
        _request: Request<ListExpiringCertificatesRequest>,
    ) -> Result<Response<ListExpiringCertificatesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn upload_ca_certificate(
        &self,
        _request: Request<UploadCaCertificateRequest>,
    ) -> Result<Response<UploadCaCertificateResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_ca_certificates(
        &self,
        _request: Request<ListCaCertificatesRequest>,
    ) -> Result<Response<ListCaCertificatesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_ca_certificate(
        &self,
        _request: Request<GetCaCertificateRequest>,
    ) -> Result<Response<CaCertificate>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_ca_trust_path(
        &self,
        _request: Request<GetCaTrustPathRequest>,
    ) -> Result<Response<TrustPath>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn upload_partner_certificate(
        &self,
        request: Request<UploadPartnerCertificateRequest>,
    ) -> Result<Response<UploadPartnerCertificateResponse>, Status> {
        let fault = self.begin(UPLOAD, &request, &request.get_ref().owner_id)?;
        let message = request.into_inner();
        if message.certificate_data.contains("not-a-certificate") {
            return Err(error_status(
                Code::InvalidArgument,
                "KER-KMS-013",
                "certificate parsing error",
            ));
        }
        if message.certificate_data.contains("no-chain") {
            return Err(error_status(
                Code::FailedPrecondition,
                "KER-PCM-006",
                "root CA/intermediate CA certificates not found",
            ));
        }
        if !message
            .certificate_data
            .contains(&format!("O={}\n", message.organization_name))
        {
            return Err(error_status(
                Code::InvalidArgument,
                "KER-PCM-008",
                "partner organization name not matched",
            ));
        }
        let certificate_id = {
            let mut state = self.state();
            let existing = state
                .certificates
                .iter()
                .find(|(_, stored)| {
                    stored.owner_id == message.owner_id
                        && stored.certificate_data == message.certificate_data
                        && stored.partner_domain == message.partner_domain
                })
                .map(|(id, _)| id.clone());
            match existing {
                Some(id) => id,
                None => {
                    state.next_id += 1;
                    let id = format!("cert-{}", state.next_id);
                    // Stored untrusted, as the real store does.
                    state.certificates.insert(
                        id.clone(),
                        FakeCertificate {
                            owner_id: message.owner_id.clone(),
                            organization_name: message.organization_name.clone(),
                            certificate_data: message.certificate_data.clone(),
                            partner_domain: message.partner_domain.clone(),
                            owner_type: message.owner_type,
                            partner_id: message.partner_id.clone(),
                            trusted: false,
                        },
                    );
                    id
                }
            }
        };
        lost_reply(fault)?;
        let now = Utc::now();
        Ok(Response::new(UploadPartnerCertificateResponse {
            certificate_id,
            ca_signed_certificate_pem: message.certificate_data.clone(),
            platform_signed_certificate_pem: message.certificate_data,
            chain_pem: Vec::new(),
            not_before: Some(timestamp(now - chrono::Duration::days(1))),
            not_after: Some(timestamp(now + chrono::Duration::days(700))),
        }))
    }

    async fn get_partner_certificate(
        &self,
        request: Request<GetPartnerCertificateRequest>,
    ) -> Result<Response<CertificateBundle>, Status> {
        self.begin(GET, &request, &request.get_ref().certificate_id)?;
        let certificate_id = request.into_inner().certificate_id;
        let certificate = self.certificate(&certificate_id).ok_or_else(not_found)?;
        let now = Utc::now();
        Ok(Response::new(CertificateBundle {
            certificate_id,
            ca_signed_certificate_pem: certificate.certificate_data.clone(),
            platform_signed_certificate_pem: format!("platform:{}", certificate.certificate_data),
            not_before: Some(timestamp(now - chrono::Duration::days(1))),
            not_after: Some(timestamp(now + chrono::Duration::days(700))),
            expired: false,
        }))
    }

    async fn set_certificate_trusted(
        &self,
        request: Request<SetCertificateTrustedRequest>,
    ) -> Result<Response<SetCertificateTrustedResponse>, Status> {
        let fault = self.begin(SET_TRUSTED, &request, &request.get_ref().certificate_id)?;
        let message = request.into_inner();
        {
            let mut state = self.state();
            let certificate = state
                .certificates
                .get_mut(&message.certificate_id)
                .ok_or_else(not_found)?;
            certificate.trusted = message.trusted;
            if certificate.partner_id.is_empty() {
                certificate.partner_id = message.partner_id.clone();
            }
        }
        lost_reply(fault)?;
        Ok(Response::new(SetCertificateTrustedResponse {
            certificate_id: message.certificate_id,
            trusted: message.trusted,
        }))
    }

    async fn set_partner_deactivated(
        &self,
        request: Request<SetPartnerDeactivatedRequest>,
    ) -> Result<Response<SetPartnerDeactivatedResponse>, Status> {
        let fault = self.begin(SET_DEACTIVATED, &request, &request.get_ref().partner_id)?;
        let message = request.into_inner();
        {
            let mut state = self.state();
            if message.deactivated {
                state
                    .deactivated_partners
                    .insert(message.partner_id.clone());
            } else {
                state.deactivated_partners.remove(&message.partner_id);
            }
        }
        lost_reply(fault)?;
        Ok(Response::new(SetPartnerDeactivatedResponse {
            partner_id: message.partner_id,
            deactivated: message.deactivated,
        }))
    }

    async fn verify_certificate_trust(
        &self,
        _request: Request<VerifyCertificateTrustRequest>,
    ) -> Result<Response<VerifyCertificateTrustResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}
