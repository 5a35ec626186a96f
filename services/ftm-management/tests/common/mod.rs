//! The test platform: a real partner registry, a certificate store (the test double of
//! `fake_store`, or any address), and the FTM management service under test, all in-process
//! on `127.0.0.1:0`, plus helpers for partners, tokens and invariants.

#![allow(dead_code)]

pub mod failing;
pub mod fake_store;

use pmp_common::lease::LeaseStore;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Request, Status};

use ftm_management::RepositoryWrapper;
use ftm_management::config::FtmSettings;
use ftm_management::domain::{Ftm, FtmStatus};
use ftm_management::reconcile::{self, Reconciler};
use ftm_management::storage::{FtmRepository, SqlFtmRepository};
use ftm_management::upstream::Upstream;
use partner_registry::storage::{PartnerRepository, SqlPartnerRepository};
use partner_registry::testing::TEST_ADMIN_PASSWORD;
use pmp_common::audit::AuditEvent;
use pmp_common::client::PeerChannel;
use pmp_common::testing::with_token;
use pmp_common::time::ManualClock;
use pmp_proto::ftm::v1 as proto;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use fake_store::{FakeStore, FakeStoreServer};
use pmp_e2e::inprocess::{FtmAdjust, InProcessPlatform};

/// Nothing listens here: a dependency that is down.
pub const UNREACHABLE: &str = "http://127.0.0.1:9";
/// Password of every test partner.
pub const PARTNER_PASSWORD: &str = "partner-password";

/// Where the FTM service's certificate store is.
pub enum StoreChoice {
    /// The in-memory double.
    Fake,
    /// Any address (e.g. [`UNREACHABLE`], or a real store).
    Address(String),
}

/// A change to the FTM service's settings.
pub type Adjust = Box<dyn FnOnce(&mut FtmSettings) + Send>;

/// How to build the platform.
pub struct Options {
    /// Backend of the FTM service's database ("sqlite" or "postgres").
    pub backend: &'static str,
    pub store: StoreChoice,
    pub wrapper: Option<RepositoryWrapper>,
    /// Changes to the FTM service's settings.
    pub adjust: Option<Adjust>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: "sqlite",
            store: StoreChoice::Fake,
            wrapper: None,
            adjust: None,
        }
    }
}

/// The running platform: the platform harness's in-process services, with the store
/// replaced by the double (or an address) and the FTM service configured by the test.
pub struct Platform {
    services: InProcessPlatform,
    pub fake: Option<FakeStoreServer>,
    pub client: FtmManagementClient<Channel>,
    /// Direct access to the FTM service's database.
    pub repository: Arc<SqlFtmRepository>,
    pub lease: Duration,
    /// The clock of [`Platform::reconciler`]: tests move it past a lease instead of waiting.
    pub clock: Arc<ManualClock>,
}

impl Platform {
    /// Registry + fake store + FTM service on SQLite.
    pub async fn start() -> Platform {
        Platform::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Platform {
        let fake = match options.store {
            StoreChoice::Fake => Some(FakeStore::start().await),
            StoreChoice::Address(_) => None,
        };
        let store_address = match (&fake, options.store) {
            (Some(fake), _) => fake.address.clone(),
            (None, StoreChoice::Address(address)) => address,
            (None, StoreChoice::Fake) => unreachable!(),
        };
        let lease = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let seen = Arc::clone(&lease);
        let fake_in_use = fake.is_some();
        let adjust = options.adjust;
        let ftm_adjust: FtmAdjust = Box::new(move |settings: &mut FtmSettings| {
            if fake_in_use {
                // Every injected fault reaches the service: the client stack's own retries
                // are tested on their own.
                settings.registry.retry_attempts = 1;
                settings.certificate_store.retry_attempts = 1;
            }
            if let Some(adjust) = adjust {
                adjust(settings);
            }
            *seen.lock().expect("lease") = settings.consistency.lease();
        });
        let services = InProcessPlatform::start(pmp_e2e::inprocess::Options {
            store: pmp_e2e::inprocess::StoreChoice::Address(store_address),
            ftm_wrapper: options.wrapper,
            ftm_adjust: Some(ftm_adjust),
            ..pmp_e2e::inprocess::Options::on(options.backend)
        })
        .await
        .expect("platform");
        let repository = Arc::new(SqlFtmRepository::new(
            services.ftm_database.connection.clone(),
        ));
        let lease = *lease.lock().expect("lease");
        Platform {
            client: services.ftm(),
            services,
            fake,
            repository,
            lease,
            clock: Arc::new(ManualClock::starting_now()),
        }
    }

    /// The certificate store double.
    pub fn store(&self) -> &FakeStore {
        &self.fake.as_ref().expect("fake store").store
    }

    /// A token of platform service `service` for calls to FTM management.
    pub fn service_token(&self, service: &str) -> String {
        self.services
            .service_keys
            .signer(service)
            .token_for("ftm-management")
            .expect("service token")
    }

    pub fn client(&self) -> FtmManagementClient<Channel> {
        self.client.clone()
    }

    fn registry_client(&self) -> PartnerRegistryClient<Channel> {
        let channel = Channel::from_shared(self.services.registry.address.clone())
            .expect("address")
            .connect_lazy();
        PartnerRegistryClient::new(channel)
    }

    fn registry_repository(&self) -> SqlPartnerRepository {
        SqlPartnerRepository::new(self.services.registry_database.connection.clone())
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        self.registry_client()
            .login(registry::LoginRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", TEST_ADMIN_PASSWORD).await
    }

    /// Registers a partner (IN_PROGRESS) of `partner_type` with organisation `org`.
    pub async fn register(&self, partner_id: &str, partner_type: &str, org: &str) {
        self.registry_client()
            .register_partner(registry::RegisterPartnerRequest {
                partner_id: partner_id.into(),
                password: PARTNER_PASSWORD.into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                organization_name: org.into(),
                partner_type: partner_type.into(),
                address: "1 Main Street".into(),
                email: format!("{partner_id}@example.org"),
                phone: "+1 555 0100".into(),
                lang_code: String::new(),
            })
            .await
            .expect("registered");
    }

    /// Makes a partner ACTIVE as an accepted partner certificate would (set-up through the
    /// registry's repository: without a real certificate store the API cannot do it).
    pub async fn activate(&self, partner_id: &str) {
        let token = self.registry_lease(partner_id).await;
        self.registry_repository()
            .attach_certificate(
                partner_id,
                &format!("partner-cert-{partner_id}"),
                AuditEvent::now(
                    "test",
                    "PARTNER_CERTIFICATE_UPLOADED",
                    partner_id,
                    Some("IN_PROGRESS"),
                    Some("ACTIVE"),
                ),
                &token,
            )
            .await
            .expect("activated");
        self.registry_repository()
            .release_lease(partner_id, &token)
            .await
            .expect("lease released");
    }

    /// Takes the partner's lease in the registry's database, as a registry step would.
    async fn registry_lease(&self, partner_id: &str) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let now = chrono::Utc::now();
        assert!(
            self.registry_repository()
                .acquire_lease(partner_id, &token, now + chrono::Duration::seconds(30), now)
                .await
                .expect("lease"),
            "the partner's lease is free"
        );
        token
    }

    /// Sets a partner's status in the registry directly.
    pub async fn set_partner_status(
        &self,
        partner_id: &str,
        status: partner_registry::domain::PartnerStatus,
    ) {
        let token = self.registry_lease(partner_id).await;
        self.registry_repository()
            .set_status(
                partner_id,
                status,
                AuditEvent::now(
                    "test",
                    "PARTNER_STATUS",
                    partner_id,
                    None,
                    Some(status.as_str()),
                ),
                &token,
            )
            .await
            .expect("status set");
        self.registry_repository()
            .release_lease(partner_id, &token)
            .await
            .expect("lease released");
    }

    /// An ACTIVE FTM provider with organisation `org`; returns its token.
    pub async fn provider_with_org(&self, partner_id: &str, org: &str) -> String {
        self.register(partner_id, "FTM_Provider", org).await;
        self.activate(partner_id).await;
        self.login(partner_id, PARTNER_PASSWORD).await
    }

    /// An ACTIVE FTM provider of organisation `<partner_id> Chips`; returns its token.
    pub async fn provider(&self, partner_id: &str) -> String {
        self.provider_with_org(partner_id, &org_of(partner_id))
            .await
    }

    pub async fn create(
        &self,
        token: &str,
        partner_id: &str,
        make: &str,
        model: &str,
    ) -> Result<proto::Ftm, Status> {
        self.client()
            .create_ftm(with_token(
                proto::CreateFtmRequest {
                    partner_id: partner_id.into(),
                    make: make.into(),
                    model: model.into(),
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn upload(
        &self,
        token: Option<&str>,
        ftm_id: &str,
        certificate_data: &str,
    ) -> Result<proto::Ftm, Status> {
        let message = proto::UploadFtmCertificateRequest {
            ftm_id: ftm_id.into(),
            certificate_data: certificate_data.into(),
        };
        self.client()
            .upload_ftm_certificate(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn approve(&self, token: Option<&str>, ftm_id: &str) -> Result<proto::Ftm, Status> {
        let message = proto::ApproveFtmRequest {
            ftm_id: ftm_id.into(),
        };
        self.client()
            .approve_ftm(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn reject(
        &self,
        token: Option<&str>,
        ftm_id: &str,
        reason: &str,
    ) -> Result<proto::Ftm, Status> {
        let message = proto::RejectFtmRequest {
            ftm_id: ftm_id.into(),
            reason: reason.into(),
        };
        self.client()
            .reject_ftm(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn deactivate(
        &self,
        token: Option<&str>,
        ftm_id: &str,
    ) -> Result<proto::Ftm, Status> {
        let message = proto::DeactivateFtmRequest {
            ftm_id: ftm_id.into(),
        };
        self.client()
            .deactivate_ftm(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn get(&self, token: Option<&str>, ftm_id: &str) -> Result<proto::Ftm, Status> {
        let message = proto::GetFtmRequest {
            ftm_id: ftm_id.into(),
        };
        self.client()
            .get_ftm(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn certificate(
        &self,
        token: Option<&str>,
        ftm_id: &str,
    ) -> Result<pmp_proto::certstore::v1::CertificateBundle, Status> {
        let message = proto::GetFtmCertificateRequest {
            ftm_id: ftm_id.into(),
        };
        self.client()
            .get_ftm_certificate(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn list(
        &self,
        token: Option<&str>,
        message: proto::ListFtmsRequest,
    ) -> Result<proto::ListFtmsResponse, Status> {
        self.client()
            .list_ftms(request(message, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The stored FTM.
    pub async fn stored(&self, ftm_id: &str) -> Ftm {
        self.repository
            .find(ftm_id)
            .await
            .expect("query")
            .expect("exists")
    }

    /// Actions of the FTM's audit rows, oldest first.
    pub async fn audit_actions(&self, ftm_id: &str) -> Vec<String> {
        self.repository
            .audit_events(ftm_id)
            .await
            .expect("audit")
            .into_iter()
            .map(|event| event.action)
            .collect()
    }

    /// A reconciler over the service's database and the platform's store, as the service
    /// runs it in the background.
    pub fn reconciler(&self) -> Reconciler {
        let signer = Arc::new(self.services.service_keys.signer("ftm-management"));
        let tls = pmp_common::tls::TlsSettings::default();
        let peer = |name: &'static str, address: &str| {
            let dependency = pmp_common::config::DependencySettings {
                address: address.to_owned(),
                deadline_ms: 3000,
                retry_attempts: 1,
                resolve_interval_ms: 5000,
            };
            PeerChannel::connect(name, &dependency, &signer, &tls).expect("peer")
        };
        let upstream = Upstream::new(
            peer("partner-registry", &self.services.registry.address),
            peer("certificate-store", &self.services.store_address),
        );
        let repository: Arc<dyn FtmRepository> = self.repository.clone();
        reconcile::reconciler(repository, upstream, self.clock.clone(), self.lease, 100)
    }

    /// Puts an FTM in `status` directly (set-up for state-machine tests; the cross-service
    /// paths to each state are tested on their own). FTMs past PENDING_CERT_UPLOAD get a
    /// certificate in the fake store, trusted exactly when APPROVED.
    pub async fn ftm_in_status(&self, partner_id: &str, make: &str, status: FtmStatus) -> Ftm {
        let now = ftm_management::domain::now();
        let ftm_id = ftm_management::domain::new_ftm_id();
        let certificate_id =
            (status != FtmStatus::PendingCertUpload).then(|| format!("{ftm_id}-cert"));
        if let Some(certificate_id) = &certificate_id {
            self.store()
                .insert(certificate_id, &ftm_id, status == FtmStatus::Approved);
        }
        let ftm = Ftm {
            ftm_id,
            partner_id: partner_id.into(),
            organization_name: org_of(partner_id),
            make: make.into(),
            model: "Model 1".into(),
            status,
            certificate_id,
            certificate_expiry_time: None,
            reject_reason: (status == FtmStatus::Rejected).then(|| "set-up".to_owned()),
            create_time: now,
            update_time: now,
        };
        self.repository
            .import(std::slice::from_ref(&ftm))
            .await
            .expect("inserted");
        ftm
    }

    /// The contract's safety rule, checked against both databases: a chip certificate is
    /// trusted only if it is the current certificate of an APPROVED FTM.
    pub async fn assert_trust_matches_status(&self) {
        for (certificate_id, certificate) in self.store().certificates() {
            if !certificate.trusted || !certificate.owner_id.starts_with("ftm_") {
                continue;
            }
            let ftm = self.stored(&certificate.owner_id).await;
            assert_eq!(
                ftm.status,
                FtmStatus::Approved,
                "{certificate_id} is trusted while its FTM is {:?}",
                ftm.status
            );
            assert_eq!(
                ftm.certificate_id.as_deref(),
                Some(certificate_id.as_str()),
                "a replaced certificate is still trusted"
            );
        }
    }

    /// Stops the registry (a dependency going down).
    pub async fn stop_registry(&mut self) {
        self.services
            .stop_registry()
            .await
            .expect("registry stopped");
    }
}

/// Organisation name of the test partner `partner_id`.
pub fn org_of(partner_id: &str) -> String {
    format!("{partner_id} Chips")
}

/// A request with the token, or anonymous.
pub fn request<T>(message: T, token: Option<&str>) -> Request<T> {
    match token {
        Some(token) => with_token(message, token),
        None => Request::new(message),
    }
}

/// The proto status of an FTM.
pub fn status_of(ftm: &proto::Ftm) -> FtmStatus {
    match ftm.status() {
        proto::FtmStatus::PendingCertUpload => FtmStatus::PendingCertUpload,
        proto::FtmStatus::PendingApproval => FtmStatus::PendingApproval,
        proto::FtmStatus::Approved => FtmStatus::Approved,
        proto::FtmStatus::Rejected => FtmStatus::Rejected,
        proto::FtmStatus::Deactivated => FtmStatus::Deactivated,
        proto::FtmStatus::Unspecified => panic!("unspecified status"),
    }
}
