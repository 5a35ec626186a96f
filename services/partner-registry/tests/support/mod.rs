//! The test registry shared by this crate's integration tests: a real in-process server on
//! a database of either backend, with settings a test may adjust, and helpers for the
//! requests every test makes.

#![allow(dead_code)]

use std::time::Duration;

use tonic::transport::Channel;

use partner_registry::testing::{self, TEST_ADMIN_PASSWORD};
use pmp_common::auth::TokenIssuer;
use pmp_common::db::testing::TestDatabase;
use pmp_common::testing::{Spawned, wait_until_serving};
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::*;
use pmp_proto::service_names::PARTNER_REGISTRY;

/// Nothing listens here: the certificate store is "down".
pub const UNREACHABLE_STORE: &str = "http://127.0.0.1:9";

pub struct Registry {
    pub server: Spawned,
    pub client: PartnerRegistryClient<Channel>,
    pub directory: tempfile::TempDir,
    pub database: TestDatabase,
}

impl Registry {
    pub async fn start() -> Registry {
        Self::start_with("sqlite", |_| {}).await
    }

    /// A registry on `backend` whose test settings `adjust` may change before it starts.
    pub async fn start_with(
        backend: &str,
        adjust: impl FnOnce(&mut partner_registry::config::RegistrySettings),
    ) -> Registry {
        Self::start_on_clock(backend, adjust, None).await
    }

    /// [`Registry::start_with`], reading the time from `clock` when given.
    pub async fn start_on_clock(
        backend: &str,
        adjust: impl FnOnce(&mut partner_registry::config::RegistrySettings),
        clock: Option<pmp_common::time::SharedClock>,
    ) -> Registry {
        let database = TestDatabase::new(backend).await.expect("database");
        let directory = tempfile::tempdir().expect("tempdir");
        let mut settings = testing::settings(
            directory.path(),
            database.settings.clone(),
            UNREACHABLE_STORE,
            &pmp_common::auth::testing::ServiceKeyFiles::generate(
                &directory.path().join("identities"),
            )
            .expect("service keys"),
        )
        .expect("settings");
        adjust(&mut settings);
        let server = match clock {
            Some(clock) => testing::spawn_with_clock(settings, clock).await,
            None => testing::spawn(settings).await,
        }
        .expect("spawn");
        wait_until_serving(&server.address, PARTNER_REGISTRY, Duration::from_secs(20))
            .await
            .expect("serving");
        let client = PartnerRegistryClient::new(server.channel().await.expect("channel"));
        Registry {
            server,
            client,
            directory,
            database,
        }
    }

    /// Stops the server gracefully; it must stop cleanly.
    pub async fn stop(self) {
        self.server.stop().await.expect("clean stop");
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
        let key = std::fs::read_to_string(self.directory.path().join("token-signing-key.pem"))
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
