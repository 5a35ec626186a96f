//! Starting a real FTM management service inside a test process (used by this crate's tests
//! and by the tests of other crates, e.g. the end-to-end suite).

use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::config::DatabaseSettings;
use pmp_common::testing::Spawned;

use crate::RepositoryWrapper;
use crate::config::{DEFAULTS, ENV_PREFIX, FtmSettings};

/// Settings for a test service: the given database, the registry at `registry_address`
/// (partners and user-token keys), the certificate store at `store_address`, and the
/// service identity keys of `service_keys`. Short
/// deadlines and leases; the reconciler runs at start-up and then hourly (tests that need
/// it sooner set `consistency.reconcile_interval_seconds` or run a
/// [`crate::reconcile::Reconciler`] themselves).
pub fn settings(
    database: DatabaseSettings,
    registry_address: &str,
    store_address: &str,
    service_keys: &ServiceKeyFiles,
) -> anyhow::Result<FtmSettings> {
    let mut settings: FtmSettings =
        pmp_common::config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))?;
    settings.server.listen = "127.0.0.1:0".parse()?;
    settings.server.shutdown_grace_seconds = 5;
    settings.metrics.listen = String::new();
    settings.database = database;
    settings.service_identity.private_key_file = service_keys
        .private_key_file("ftm-management")
        .display()
        .to_string();
    settings.service_identity.generate_key = false;
    settings.service_identity.public_keys_dir = service_keys.public_keys_dir.display().to_string();
    settings.user_tokens.registry_address = registry_address.to_owned();
    settings.registry.address = registry_address.to_owned();
    settings.registry.deadline_ms = 3000;
    settings.certificate_store.address = store_address.to_owned();
    settings.certificate_store.deadline_ms = 3000;
    settings.consistency.lease_seconds = 10;
    settings.consistency.lease_wait_ms = 5000;
    settings.consistency.reconcile_interval_seconds = 3600;
    settings.events = pmp_common::event_feed::testing_settings();
    Ok(settings)
}

/// Runs the service on `127.0.0.1:0`.
pub async fn spawn(settings: FtmSettings) -> anyhow::Result<Spawned> {
    Spawned::service(crate::FtmManagement::default(), settings).await
}

/// Runs the service on `127.0.0.1:0` with its repository passed through `wrapper`.
pub async fn spawn_with_repository(
    settings: FtmSettings,
    wrapper: RepositoryWrapper,
) -> anyhow::Result<Spawned> {
    Spawned::service(
        crate::FtmManagement {
            wrapper: Some(wrapper),
        },
        settings,
    )
    .await
}
