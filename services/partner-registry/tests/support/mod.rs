//! The test registry shared by this crate's integration tests: the platform harness
//! (`pmp_e2e::inprocess`) on a database of either backend, with the registry's settings a
//! test may adjust and the certificate store down, and helpers for the requests every test
//! makes.

#![allow(dead_code)]

use std::time::Duration;

use tonic::transport::Channel;

use partner_registry::testing::TEST_ADMIN_PASSWORD;
use pmp_common::auth::TokenIssuer;
use pmp_e2e::inprocess::{InProcessPlatform, Options, StoreChoice};
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::*;

/// Nothing listens here: the certificate store is "down".
pub const UNREACHABLE_STORE: &str = "http://127.0.0.1:9";

pub struct Registry {
    services: InProcessPlatform,
    pub client: PartnerRegistryClient<Channel>,
}

impl std::ops::Deref for Registry {
    type Target = InProcessPlatform;

    fn deref(&self) -> &InProcessPlatform {
        &self.services
    }
}

impl Registry {
    pub async fn start() -> Registry {
        Self::start_with("sqlite", |_| {}).await
    }

    /// A registry on `backend` whose test settings `adjust` may change before it starts.
    pub async fn start_with(
        backend: &'static str,
        adjust: impl FnOnce(&mut partner_registry::config::RegistrySettings) + Send + 'static,
    ) -> Registry {
        Self::start_on_clock(backend, adjust, None).await
    }

    /// [`Registry::start_with`], reading the time from `clock` when given. The registry runs
    /// on the platform harness with the certificate store down ([`UNREACHABLE_STORE`]).
    pub async fn start_on_clock(
        backend: &'static str,
        adjust: impl FnOnce(&mut partner_registry::config::RegistrySettings) + Send + 'static,
        clock: Option<pmp_common::time::SharedClock>,
    ) -> Registry {
        let services = InProcessPlatform::start(Options {
            store: StoreChoice::Address(UNREACHABLE_STORE.into()),
            registry_adjust: Some(Box::new(adjust)),
            registry_clock: clock,
            ..Options::on(backend)
        })
        .await
        .expect("platform");
        Registry {
            client: services.registry(),
            services,
        }
    }

    /// Stops the registry gracefully; it must stop cleanly.
    pub async fn stop(mut self) {
        self.services.stop_registry().await.expect("clean stop");
    }

    pub fn client(&self) -> PartnerRegistryClient<Channel> {
        self.client.clone()
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        self.client()
            .login(LoginRequest {
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

    pub async fn register(
        &self,
        request: RegisterPartnerRequest,
    ) -> Result<Partner, tonic::Status> {
        self.client()
            .register_partner(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// An issuer holding the registry's own key, to forge expired tokens.
    pub fn registry_key_issuer(&self) -> TokenIssuer {
        let key =
            std::fs::read_to_string(self.services.directory.path().join("token-signing-key.pem"))
                .expect("key");
        TokenIssuer::new(
            &key,
            &[],
            "pmp-partner-registry",
            "pmp",
            Duration::from_secs(60),
        )
        .expect("issuer")
    }
}

pub fn registration(partner_id: &str) -> RegisterPartnerRequest {
    RegisterPartnerRequest {
        partner_id: partner_id.into(),
        password: "partner-password".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        organization_name: "ACME Chips Ltd".into(),
        partner_type: "FTM_PROVIDER".into(),
        address: "1 Main Street, Springfield".into(),
        email: format!("{partner_id}@acme.example"),
        phone: "+1 (555) 0100000".into(),
        lang_code: String::new(),
    }
}
