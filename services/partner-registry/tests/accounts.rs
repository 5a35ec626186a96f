//! Abuse resistance of the registry's anonymous RPCs and the edges of its accounts, over
//! gRPC against a real in-process registry: login failures locked per user name and per
//! client address (with `RetryInfo`), registrations limited per address, bounded password
//! hashing, the password length limit, the reserved bootstrap admin name and its password
//! following the configuration, and the security events all of this leaves behind.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use partner_registry::config::RegistrySettings;
use partner_registry::testing::{self, TEST_ADMIN_PASSWORD};
use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::db::testing::{TestDatabase, backends};
use pmp_common::testing::assert_error;
use pmp_common::time::ManualClock;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::{LoginRequest, LoginResponse};
use pmp_proto::service_names::PARTNER_REGISTRY;

use support::{Registry, UNREACHABLE_STORE, registration};

const PASSWORD: &str = "partner-password";

/// Limits for one test: `adjust` on top of limits no other check reaches.
fn limits(
    adjust: impl FnOnce(&mut RegistrySettings) + Send + 'static,
) -> impl FnOnce(&mut RegistrySettings) + Send + 'static {
    move |settings| {
        settings.limits.window_seconds = 600;
        adjust(settings);
    }
}

async fn login(
    registry: &Registry,
    username: &str,
    password: &str,
) -> Result<LoginResponse, Status> {
    registry
        .client()
        .login(LoginRequest {
            username: username.into(),
            password: password.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts a lock-out refusal and returns its retry delay.
#[track_caller]
fn assert_locked<T: std::fmt::Debug>(result: Result<T, Status>, window: Duration) -> Duration {
    let status = result.expect_err("locked out");
    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| panic!("RetryInfo with a delay: {status:?}"));
    assert_error::<()>(Err(status), Code::ResourceExhausted, "KER-ATH-429");
    assert!(
        !delay.is_zero() && delay <= window,
        "retry delay {delay:?} within the window {window:?}"
    );
    delay
}

#[tokio::test]
async fn failed_logins_lock_the_user_name_even_for_the_right_password() {
    for backend in backends() {
        let registry = Registry::start_with(
            backend,
            limits(|settings| settings.limits.failures_per_user = 3),
        )
        .await;
        for partner_id in ["alice", "bob"] {
            registry
                .register(registration(partner_id))
                .await
                .expect("registered");
        }
        for _ in 0..3 {
            assert_error(
                login(&registry, "alice", "guess").await,
                Code::Unauthenticated,
                "KER-ATH-401",
            );
        }
        assert_locked(
            login(&registry, "alice", PASSWORD).await,
            Duration::from_secs(600),
        );
        assert_locked(
            login(&registry, "alice", "guess").await,
            Duration::from_secs(600),
        );
        login(&registry, "bob", PASSWORD)
            .await
            .expect("other user names are not locked");
        registry.stop().await;
    }
}

#[tokio::test]
async fn failed_logins_lock_the_client_address_across_user_names() {
    let registry = Registry::start_with(
        "sqlite",
        limits(|settings| settings.limits.failures_per_address = 4),
    )
    .await;
    registry
        .register(registration("alice"))
        .await
        .expect("registered");
    for index in 0..4 {
        assert_error(
            login(&registry, &format!("sprayed-{index}"), "Winter2026!").await,
            Code::Unauthenticated,
            "KER-ATH-401",
        );
    }
    assert_locked(
        login(&registry, "alice", PASSWORD).await,
        Duration::from_secs(600),
    );
    registry.stop().await;
}

#[tokio::test]
async fn a_successful_login_clears_the_user_names_failures() {
    let registry = Registry::start_with(
        "sqlite",
        limits(|settings| settings.limits.failures_per_user = 3),
    )
    .await;
    registry
        .register(registration("alice"))
        .await
        .expect("registered");
    for _ in 0..3 {
        for _ in 0..2 {
            assert!(login(&registry, "alice", "typo").await.is_err());
        }
        login(&registry, "alice", PASSWORD)
            .await
            .expect("two failures do not lock, and the success forgets them");
    }
    registry.stop().await;
}

#[tokio::test]
async fn a_lock_ends_once_its_failures_leave_the_window() {
    let window = Duration::from_secs(60);
    let clock = Arc::new(ManualClock::starting_now());
    let registry = Registry::start_on_clock(
        "sqlite",
        move |settings| {
            settings.limits.window_seconds = window.as_secs();
            settings.limits.failures_per_user = 1;
        },
        Some(clock.clone()),
    )
    .await;
    registry
        .register(registration("alice"))
        .await
        .expect("registered");
    assert!(login(&registry, "alice", "typo").await.is_err());
    let delay = assert_locked(login(&registry, "alice", PASSWORD).await, window);
    // Ten seconds short of the delay the lock holds (real time runs on meanwhile)...
    clock.advance(delay.saturating_sub(Duration::from_secs(10)));
    assert_locked(login(&registry, "alice", PASSWORD).await, window);
    // ...and once the delay has passed, it is gone: the retry delay was honest.
    clock.advance(Duration::from_secs(11));
    login(&registry, "alice", PASSWORD)
        .await
        .expect("the retry delay was honest");
    registry.stop().await;
}

#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    for backend in backends() {
        let registry = Registry::start_with(
            backend,
            limits(|settings| settings.limits.registrations_per_address = 2),
        )
        .await;
        for partner_id in ["first", "second"] {
            registry
                .register(registration(partner_id))
                .await
                .expect("registered");
        }
        assert_locked(
            registry.register(registration("third")).await,
            Duration::from_secs(600),
        );
        login(&registry, "first", PASSWORD)
            .await
            .expect("logins are not registrations");
        registry.stop().await;
    }
}

#[tokio::test]
async fn passwords_are_limited_to_128_bytes() {
    let registry = Registry::start().await;
    let longest = "p".repeat(128);
    let too_long = "é".repeat(65); // 65 characters, 130 bytes
    let mut accepted = registration("longest");
    accepted.password = longest.clone();
    registry
        .register(accepted)
        .await
        .expect("128 bytes is allowed");
    login(&registry, "longest", &longest).await.expect("login");
    let mut refused = registration("too-long");
    refused.password = too_long.clone();
    assert_error(
        registry.register(refused).await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        login(&registry, "longest", &too_long).await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    registry.stop().await;
}

#[tokio::test]
async fn a_flood_of_logins_beyond_the_hashing_queue_is_refused_not_queued() {
    let registry = Registry::start_with("sqlite", |settings| {
        settings.limits.hashing_threads = 1;
        settings.limits.hashing_queue = 1;
    })
    .await;
    registry
        .register(registration("alice"))
        .await
        .expect("registered");
    let attempts = (0..100).map(|index| {
        let client = registry.client();
        async move {
            let mut client = client;
            client
                .login(LoginRequest {
                    username: format!("flood-{index}"),
                    password: "x".into(),
                })
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let mut overloaded = 0;
    for result in results {
        let status = result.expect_err("nobody logs in");
        match status.code() {
            Code::Unauthenticated => {}
            Code::ResourceExhausted => {
                assert_error::<()>(
                    Err(status),
                    Code::ResourceExhausted,
                    "PMS_RESOURCE_EXHAUSTED",
                );
                overloaded += 1;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    assert!(
        overloaded > 0,
        "one hashing thread and a queue of one cannot take 100 at once"
    );
    login(&registry, "alice", PASSWORD)
        .await
        .expect("the registry recovers once the flood is over");
    registry.stop().await;
}

#[tokio::test]
async fn nobody_can_register_the_bootstrap_admins_name() {
    for password in [TEST_ADMIN_PASSWORD, ""] {
        let registry = Registry::start_with("sqlite", |settings| {
            settings.admin.password = password.to_owned();
        })
        .await;
        for name in ["admin", "ADMIN", "Admin"] {
            assert_error(
                registry.register(registration(name)).await,
                Code::AlreadyExists,
                "PMS_PRT_051",
            );
        }
        registry.stop().await;
    }
}

/// A registry on `database` with admin password `password`; `None` when it refused to start.
async fn registry_on(
    database: &TestDatabase,
    keys: &ServiceKeyFiles,
    directory: &std::path::Path,
    adjust: impl FnOnce(&mut RegistrySettings),
) -> anyhow::Result<(
    pmp_common::testing::Spawned,
    PartnerRegistryClient<tonic::transport::Channel>,
)> {
    let mut settings = testing::settings(
        directory,
        database.settings.clone(),
        UNREACHABLE_STORE,
        keys,
    )?;
    adjust(&mut settings);
    let mut server = testing::spawn(settings).await?;
    server
        .until_serving(PARTNER_REGISTRY, Duration::from_secs(20))
        .await?;
    let client = PartnerRegistryClient::new(server.channel().await?);
    Ok((server, client))
}

#[tokio::test]
async fn the_admin_password_follows_the_configuration_at_every_start() {
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        let directory = tempfile::tempdir().expect("directory");
        let keys = ServiceKeyFiles::generate(&directory.path().join("identities")).expect("keys");
        let admin_login = |password: &str| LoginRequest {
            username: "admin".into(),
            password: password.into(),
        };
        let (server, mut client) = registry_on(&database, &keys, directory.path(), |_| {})
            .await
            .expect("first start");
        client
            .login(admin_login(TEST_ADMIN_PASSWORD))
            .await
            .expect("admin");
        client
            .register_partner(registration("root"))
            .await
            .expect("a partner named root");
        server.stop().await.expect("stop");

        let rotated = "rotated-admin-secret-2";
        let (server, mut client) = registry_on(&database, &keys, directory.path(), |settings| {
            settings.admin.password = rotated.to_owned();
        })
        .await
        .expect("second start");
        assert_error(
            client.login(admin_login(TEST_ADMIN_PASSWORD)).await,
            Code::Unauthenticated,
            "KER-ATH-401",
        );
        let admin = client
            .login(admin_login(rotated))
            .await
            .expect("the configured password")
            .into_inner();
        assert!(admin.roles.iter().any(|role| role == "PARTNER_ADMIN"));
        server.stop().await.expect("stop");

        let refused = registry_on(&database, &keys, directory.path(), |settings| {
            settings.admin.username = "root".to_owned();
        })
        .await;
        let refusal = refused
            .err()
            .expect("a registry whose admin name is a partner's must not start");
        assert!(
            format!("{refusal:#}").contains("root is a registered partner"),
            "{refusal:#}"
        );
    }
}

#[tokio::test]
async fn security_events_are_counted_and_audited() {
    let registry = Registry::start_with("sqlite", move |settings| {
        settings.metrics.listen = "127.0.0.1:0".into();
        settings.limits.failures_per_user = 2;
    })
    .await;
    let metrics = registry
        .registry
        .metrics_address
        .clone()
        .expect("a metrics endpoint");
    registry
        .register(registration("alice"))
        .await
        .expect("registered");
    for _ in 0..2 {
        assert!(login(&registry, "alice", "typo").await.is_err());
    }
    assert!(login(&registry, "alice", PASSWORD).await.is_err());
    assert!(
        login(&registry, "bob", PASSWORD).await.is_err(),
        "bob does not exist"
    );
    let admin_only = registry
        .client()
        .list_partners(pmp_common::testing::with_token(
            Default::default(),
            "not.a.token",
        ))
        .await;
    assert_error(admin_only, Code::Unauthenticated, "KER-ATH-401");

    let samples = pmp_common::testing::scrape_metrics(&metrics)
        .await
        .expect("metrics");
    let count = |kind: &str| {
        pmp_common::testing::sample_value(&samples, "pmp_security_events_total", &[("kind", kind)])
            .unwrap_or_default()
    };
    assert_eq!(count("LOGIN_FAILED"), 3.0, "two typos and an unknown user");
    assert_eq!(count("LOCKED_OUT"), 1.0);
    assert_eq!(count("TOKEN_REJECTED"), 1.0);

    let expected = [
        "alice LOGIN_FAILED Login",
        "alice LOCKED_OUT Login",
        "bob LOGIN_FAILED Login",
        "anonymous TOKEN_REJECTED ListPartners",
    ];
    let rows = audit_rows(&registry, &expected).await;
    for row in expected {
        assert!(
            rows.iter().any(|written| written == row),
            "{row} in {rows:#?}"
        );
    }
    registry.stop().await;
}

/// The registry's audit rows as `actor action entity`, once the asynchronous writes of
/// `expected` landed (or after five seconds).
async fn audit_rows(registry: &Registry, expected: &[&str]) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let connection = &registry.registry_database.connection;
    let mut rows = Vec::new();
    for _ in 0..50 {
        let statement = Statement::from_string(
            connection.get_database_backend(),
            "SELECT actor, action, entity_id FROM audit_events ORDER BY id",
        );
        rows = connection
            .query_all_raw(statement)
            .await
            .expect("audit rows")
            .iter()
            .map(|row| {
                let text = |column: &str| row.try_get::<String>("", column).unwrap_or_default();
                format!("{} {} {}", text("actor"), text("action"), text("entity_id"))
            })
            .collect();
        if expected
            .iter()
            .all(|row| rows.iter().any(|written| written == row))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}
