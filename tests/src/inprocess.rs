//! In-process mode of the platform harness: the real registry, certificate store and FTM
//! management services running as tasks of the test process on `127.0.0.1:0`, each with
//! its own database (SQLite or PostgreSQL), wired to each other as in production, plus the
//! workflow steps tests drive through their gRPC APIs.
//!
//! In-process platforms start in a fraction of a second and let a test reach inside: wrap
//! the registry's repository to fail at a chosen point, choose the store's trust policy,
//! read any service's database.

use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Response, Status};

use certificate_store::config::CertStoreSettings;
use certificate_store::domain::TrustPolicy;
use ftm_management::RepositoryWrapper as FtmRepositoryWrapper;
use ftm_management::config::FtmSettings;
use partner_registry::RepositoryWrapper;
use partner_registry::config::RegistrySettings;
use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::db::testing::TestDatabase;
use pmp_common::testing::{Spawned, reserve_address, wait_until_serving, with_token};
use pmp_common::time::SharedClock;
use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as partner;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::service_names;

/// Password of every partner registered through [`InProcessPlatform::register`].
pub const PARTNER_PASSWORD: &str = "partner-password-1";

/// Where the registry and FTM management find the certificate store.
pub enum StoreChoice {
    /// A real certificate store, started with the platform.
    Real,
    /// Any address: a test double of the store, or one that is down.
    Address(String),
}

/// A change to FTM management's settings before it starts.
pub type FtmAdjust = Box<dyn FnOnce(&mut FtmSettings) + Send>;

/// A change to the certificate store's settings before it starts.
pub type StoreAdjust = Box<dyn FnOnce(&mut CertStoreSettings) + Send>;

/// A change to the registry's settings before it starts.
pub type RegistryAdjust = Box<dyn FnOnce(&mut RegistrySettings) + Send>;

/// How to build an in-process platform.
pub struct Options {
    /// "sqlite" or "postgres", for all three databases.
    pub backend: &'static str,
    /// Trust policy of the store's `FTM` domain (`DEVICE` and `AUTH` stay `registered`).
    pub ftm_policy: TrustPolicy,
    /// Wraps the registry's repository (failure injection).
    pub registry_wrapper: Option<RepositoryWrapper>,
    /// Changes the registry's settings.
    pub registry_adjust: Option<RegistryAdjust>,
    /// The registry's clock (leases, login limits); the system's when `None`.
    pub registry_clock: Option<SharedClock>,
    /// Period of the registry's and FTM service's reconcilers.
    pub reconcile_interval_seconds: u64,
    /// The certificate store: real, or a double at an address.
    pub store: StoreChoice,
    /// Changes the real store's settings.
    pub store_adjust: Option<StoreAdjust>,
    /// Wraps FTM management's repository (failure injection).
    pub ftm_wrapper: Option<FtmRepositoryWrapper>,
    /// Changes FTM management's settings.
    pub ftm_adjust: Option<FtmAdjust>,
}

impl Options {
    /// Defaults on `backend`: `registered` policy, no wrapper, hourly reconciliation.
    pub fn on(backend: &'static str) -> Self {
        Options {
            backend,
            ftm_policy: TrustPolicy::Registered,
            registry_wrapper: None,
            registry_adjust: None,
            registry_clock: None,
            reconcile_interval_seconds: 3600,
            store: StoreChoice::Real,
            store_adjust: None,
            ftm_wrapper: None,
            ftm_adjust: None,
        }
    }
}

/// The three services, running in this process.
pub struct InProcessPlatform {
    pub registry: Spawned,
    /// `None` when the platform uses a store at an address ([`StoreChoice::Address`]).
    pub store: Option<Spawned>,
    /// The certificate store's address, real or not.
    pub store_address: String,
    pub ftm: Spawned,
    pub registry_database: TestDatabase,
    /// `None` without a real store.
    pub store_database: Option<TestDatabase>,
    pub ftm_database: TestDatabase,
    /// The services' identity keys (sign service tokens as any of them).
    pub service_keys: ServiceKeyFiles,
    pub directory: tempfile::TempDir,
    /// The registry's settings, which [`InProcessPlatform::restart_registry`] starts from.
    registry_settings: RegistrySettings,
    registry_client: PartnerRegistryClient<Channel>,
    store_client: CertificateStoreClient<Channel>,
    ftm_client: FtmManagementClient<Channel>,
}

impl InProcessPlatform {
    /// Starts the platform and waits until every service is SERVING.
    pub async fn start(options: Options) -> anyhow::Result<InProcessPlatform> {
        let directory = tempfile::tempdir()?;
        let service_keys = ServiceKeyFiles::generate(&directory.path().join("identities"))?;
        let (registry_listener, registry_address) = reserve_address().await?;
        let store = match options.store {
            StoreChoice::Real => {
                let policy = options.ftm_policy;
                let mut adjust = options.store_adjust;
                let adjust: StoreAdjust = Box::new(move |settings| {
                    settings
                        .certificates
                        .trust_policy
                        .insert("FTM".into(), policy);
                    if let Some(adjust) = adjust.take() {
                        adjust(settings);
                    }
                });
                Some(
                    start_store(
                        &directory,
                        &service_keys,
                        &registry_address,
                        options.backend,
                        adjust,
                    )
                    .await?,
                )
            }
            StoreChoice::Address(_) => None,
        };
        let store_address = match (&store, &options.store) {
            (Some((spawned, _)), _) => spawned.address.clone(),
            (None, StoreChoice::Address(address)) => address.clone(),
            (None, StoreChoice::Real) => anyhow::bail!("the real store did not start"),
        };
        let registry_database = TestDatabase::new(options.backend).await?;
        let mut registry_settings = partner_registry::testing::settings(
            directory.path(),
            registry_database.settings.clone(),
            &store_address,
            &service_keys,
        )?;
        registry_settings.consistency.reconcile_interval_seconds =
            options.reconcile_interval_seconds;
        if let Some(adjust) = options.registry_adjust {
            adjust(&mut registry_settings);
        }
        let registry = Spawned::service_on(
            partner_registry::PartnerRegistry {
                wrapper: options.registry_wrapper,
                clock: options.registry_clock,
            },
            registry_settings.clone(),
            registry_listener,
        )?;
        let ftm_database = TestDatabase::new(options.backend).await?;
        let mut ftm_settings = ftm_management::testing::settings(
            ftm_database.settings.clone(),
            &registry_address,
            &store_address,
            &service_keys,
        )?;
        ftm_settings.consistency.reconcile_interval_seconds = options.reconcile_interval_seconds;
        if let Some(adjust) = options.ftm_adjust {
            adjust(&mut ftm_settings);
        }
        let ftm = match options.ftm_wrapper {
            Some(wrapper) => {
                ftm_management::testing::spawn_with_repository(ftm_settings, wrapper).await?
            }
            None => ftm_management::testing::spawn(ftm_settings).await?,
        };
        let timeout = Duration::from_secs(60);
        wait_until_serving(&registry.address, service_names::PARTNER_REGISTRY, timeout).await?;
        if store.is_some() {
            wait_until_serving(&store_address, service_names::CERTIFICATE_STORE, timeout).await?;
        }
        wait_until_serving(&ftm.address, service_names::FTM_MANAGEMENT, timeout).await?;
        let (store, store_database) = store.unzip();
        Ok(InProcessPlatform {
            registry_client: PartnerRegistryClient::new(registry.channel().await?),
            store_client: CertificateStoreClient::new(
                Channel::from_shared(store_address.clone())?.connect_lazy(),
            ),
            ftm_client: FtmManagementClient::new(ftm.channel().await?),
            registry,
            store,
            store_address,
            ftm,
            registry_database,
            store_database,
            ftm_database,
            service_keys,
            directory,
            registry_settings,
        })
    }

    /// Stops the registry (a dependency that goes down); the other services keep running.
    pub async fn stop_registry(&mut self) -> anyhow::Result<()> {
        self.registry.shut_down().await
    }

    /// Stops the registry and starts it again on the same address and database with its
    /// settings changed by `adjust` (e.g. a new token signing key), as a rolling update
    /// would; the other services keep running.
    pub async fn restart_registry(
        &mut self,
        adjust: impl FnOnce(&mut RegistrySettings),
    ) -> anyhow::Result<()> {
        let address = self.registry.address.clone();
        self.registry.shut_down().await?;
        let listener = tokio::net::TcpListener::bind(address.trim_start_matches("http://")).await?;
        adjust(&mut self.registry_settings);
        self.registry =
            partner_registry::testing::spawn_on(self.registry_settings.clone(), listener)?;
        self.registry
            .until_serving(service_names::PARTNER_REGISTRY, Duration::from_secs(60))
            .await
    }

    /// A registry reconciler on the registry's database, reading the time from `clock`
    /// (tests run a pass when they choose, e.g. after moving the clock past every lease).
    pub fn registry_reconciler(
        &self,
        clock: pmp_common::time::SharedClock,
    ) -> anyhow::Result<partner_registry::reconcile::Reconciler> {
        partner_registry::testing::reconciler(
            &self.registry_settings,
            self.registry_database.connection.clone(),
            clock,
        )
    }

    /// A client of the registry.
    pub fn registry(&self) -> PartnerRegistryClient<Channel> {
        self.registry_client.clone()
    }

    /// A client of the certificate store.
    pub fn store(&self) -> CertificateStoreClient<Channel> {
        self.store_client.clone()
    }

    /// A client of FTM management.
    pub fn ftm(&self) -> FtmManagementClient<Channel> {
        self.ftm_client.clone()
    }

    /// An access token of `username`.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, Status> {
        let request = partner::LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        Ok(self
            .registry()
            .login(request)
            .await?
            .into_inner()
            .access_token)
    }

    /// The bootstrap admin's access token.
    pub async fn admin(&self) -> String {
        self.login("admin", partner_registry::testing::TEST_ADMIN_PASSWORD)
            .await
            .unwrap_or_else(|status| panic!("admin login: {status:?}"))
    }

    /// Registers `partner_id` of `partner_type` and organisation `organisation` and logs it
    /// in; returns its token.
    pub async fn register(
        &self,
        partner_id: &str,
        partner_type: &str,
        organisation: &str,
    ) -> String {
        let request = partner::RegisterPartnerRequest {
            partner_id: partner_id.into(),
            password: PARTNER_PASSWORD.into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            organization_name: organisation.into(),
            partner_type: partner_type.into(),
            address: "1 Main Street".into(),
            email: format!("{partner_id}@example.org"),
            phone: "+1 555 0100".into(),
            lang_code: String::new(),
        };
        self.registry()
            .register_partner(request)
            .await
            .unwrap_or_else(|status| panic!("register {partner_id}: {status:?}"));
        self.login(partner_id, PARTNER_PASSWORD)
            .await
            .unwrap_or_else(|status| panic!("login {partner_id}: {status:?}"))
    }

    /// `UploadCaCertificate` as `token`.
    pub async fn upload_ca(
        &self,
        token: &str,
        certificate_data: &str,
        domain: &str,
    ) -> Result<store::UploadCaCertificateResponse, Status> {
        let request = store::UploadCaCertificateRequest {
            certificate_data: certificate_data.into(),
            partner_domain: domain.into(),
        };
        inner(
            self.store()
                .upload_ca_certificate(with_token(request, token))
                .await,
        )
    }

    /// `PartnerRegistry/UploadPartnerCertificate` (domain FTM) as `token`.
    pub async fn upload_partner_certificate(
        &self,
        token: &str,
        partner_id: &str,
        certificate_data: &str,
    ) -> Result<partner::UploadPartnerCertificateResponse, Status> {
        let request = partner::UploadPartnerCertificateRequest {
            partner_id: partner_id.into(),
            certificate_data: certificate_data.into(),
            partner_domain: "FTM".into(),
        };
        inner(
            self.registry()
                .upload_partner_certificate(with_token(request, token))
                .await,
        )
    }

    /// `SetPartnerActive` as `token`.
    pub async fn set_partner_active(
        &self,
        token: &str,
        partner_id: &str,
        active: bool,
    ) -> Result<partner::Partner, Status> {
        let request = partner::SetPartnerActiveRequest {
            partner_id: partner_id.into(),
            active,
        };
        inner(
            self.registry()
                .set_partner_active(with_token(request, token))
                .await,
        )
    }

    /// `GetPartner` as `token`.
    pub async fn partner(&self, token: &str, partner_id: &str) -> Result<partner::Partner, Status> {
        let request = partner::GetPartnerRequest {
            partner_id: partner_id.into(),
        };
        inner(
            self.registry()
                .get_partner(with_token(request, token))
                .await,
        )
    }

    /// `CreateFtm` as `token`.
    pub async fn create_ftm(
        &self,
        token: &str,
        partner_id: &str,
        model: &str,
    ) -> Result<ftm::Ftm, Status> {
        let request = ftm::CreateFtmRequest {
            partner_id: partner_id.into(),
            make: "ACME".into(),
            model: model.into(),
        };
        inner(self.ftm().create_ftm(with_token(request, token)).await)
    }

    /// `UploadFtmCertificate` as `token`.
    pub async fn upload_chip(
        &self,
        token: &str,
        ftm_id: &str,
        certificate_data: &str,
    ) -> Result<ftm::Ftm, Status> {
        let request = ftm::UploadFtmCertificateRequest {
            ftm_id: ftm_id.into(),
            certificate_data: certificate_data.into(),
        };
        inner(
            self.ftm()
                .upload_ftm_certificate(with_token(request, token))
                .await,
        )
    }

    /// `ApproveFtm` as `token`.
    pub async fn approve(&self, token: &str, ftm_id: &str) -> Result<ftm::Ftm, Status> {
        let request = ftm::ApproveFtmRequest {
            ftm_id: ftm_id.into(),
        };
        inner(self.ftm().approve_ftm(with_token(request, token)).await)
    }

    /// `RejectFtm` as `token`.
    pub async fn reject(&self, token: &str, ftm_id: &str) -> Result<ftm::Ftm, Status> {
        let request = ftm::RejectFtmRequest {
            ftm_id: ftm_id.into(),
            reason: "not what was tested".into(),
        };
        inner(self.ftm().reject_ftm(with_token(request, token)).await)
    }

    /// `DeactivateFtm` as `token`.
    pub async fn deactivate_ftm(&self, token: &str, ftm_id: &str) -> Result<ftm::Ftm, Status> {
        let request = ftm::DeactivateFtmRequest {
            ftm_id: ftm_id.into(),
        };
        inner(self.ftm().deactivate_ftm(with_token(request, token)).await)
    }

    /// `VerifyCertificateTrust` of `certificate_data` in `domain`, as a relying service's
    /// user would call it.
    pub async fn verify(
        &self,
        certificate_data: &str,
        domain: &str,
    ) -> Result<store::VerifyCertificateTrustResponse, Status> {
        let token = self.admin().await;
        let request = store::VerifyCertificateTrustRequest {
            certificate_data: certificate_data.into(),
            partner_domain: domain.into(),
        };
        inner(
            self.store()
                .verify_certificate_trust(with_token(request, &token))
                .await,
        )
    }

    /// Whether `certificate_data` verifies as trusted in domain FTM.
    pub async fn trusted(&self, certificate_data: &str) -> bool {
        self.verify(certificate_data, "FTM")
            .await
            .unwrap_or_else(|status| panic!("verify: {status:?}"))
            .trusted
    }
}

fn inner<T>(result: Result<Response<T>, Status>) -> Result<T, Status> {
    result.map(Response::into_inner)
}

/// A real certificate store on `backend` that knows the registry at `registry_address`,
/// its settings changed by `adjust`.
async fn start_store(
    directory: &tempfile::TempDir,
    service_keys: &ServiceKeyFiles,
    registry_address: &str,
    backend: &'static str,
    adjust: StoreAdjust,
) -> anyhow::Result<(Spawned, TestDatabase)> {
    let database = TestDatabase::new(backend).await?;
    let store_directory = directory.path().join("store");
    std::fs::create_dir_all(&store_directory)?;
    let mut settings = certificate_store::testing::settings(
        &store_directory,
        database.settings.clone(),
        registry_address,
        service_keys,
    )?;
    adjust(&mut settings);
    let store = certificate_store::testing::spawn(settings).await?;
    Ok((store, database))
}
