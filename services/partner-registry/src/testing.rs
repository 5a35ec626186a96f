//! Starting a real registry inside a test process (used by this crate's tests and by the
//! tests of the services that call it).

use std::path::Path;

use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::config::DatabaseSettings;
use pmp_common::testing::Spawned;

use crate::config::{DEFAULTS, ENV_PREFIX, RegistrySettings};

/// Password of the bootstrap admin in test set-ups.
pub const TEST_ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// Settings for a test registry: keys and secrets under `directory`, the given database,
/// the certificate store at `store_address`, bootstrap admin `admin` with
/// [`TEST_ADMIN_PASSWORD`]. Service identities from `service_keys`.
pub fn settings(
    directory: &Path,
    database: DatabaseSettings,
    store_address: &str,
    service_keys: &ServiceKeyFiles,
) -> anyhow::Result<RegistrySettings> {
    let mut settings: RegistrySettings =
        pmp_common::config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))?;
    settings.server.listen = "127.0.0.1:0".parse()?;
    settings.server.shutdown_grace_seconds = 5;
    settings.metrics.listen = String::new();
    settings.database = database;
    settings.tokens.signing_key_file = directory
        .join("token-signing-key.pem")
        .display()
        .to_string();
    settings.service_identity.private_key_file = service_keys
        .private_key_file("partner-registry")
        .display()
        .to_string();
    settings.service_identity.generate_key = false;
    settings.service_identity.public_keys_dir = service_keys.public_keys_dir.display().to_string();
    settings.admin.password = TEST_ADMIN_PASSWORD.to_owned();
    settings.certificate_store.address = store_address.to_owned();
    settings.certificate_store.deadline_ms = 3000;
    // Limits that the suites never reach; tests of the limits set their own.
    settings.limits.failures_per_user = 10_000;
    settings.limits.failures_per_address = 100_000;
    settings.limits.registrations_per_address = 100_000;
    settings.limits.hashing_threads = 2;
    settings.limits.hashing_queue = 1_000;
    settings.events = pmp_common::event_feed::testing_settings();
    Ok(settings)
}

/// Runs the registry on `127.0.0.1:0`.
pub async fn spawn(settings: RegistrySettings) -> anyhow::Result<Spawned> {
    Spawned::service(crate::PartnerRegistry::default(), settings).await
}

/// Runs the service on a listener bound beforehand (see
/// [`pmp_common::testing::reserve_address`]).
pub fn spawn_on(
    settings: RegistrySettings,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Spawned> {
    Spawned::service_on(crate::PartnerRegistry::default(), settings, listener)
}

/// Runs the registry on a listener bound beforehand, its repository passed through
/// `wrapper` (e.g. a double that fails at chosen points).
pub fn spawn_on_with_repository(
    settings: RegistrySettings,
    listener: tokio::net::TcpListener,
    wrapper: crate::RepositoryWrapper,
) -> anyhow::Result<Spawned> {
    Spawned::service_on(
        crate::PartnerRegistry {
            wrapper: Some(wrapper),
            clock: None,
        },
        settings,
        listener,
    )
}

/// A reconciler like the one a registry runs with `settings` on `connection`, reading the
/// time from `clock`: tests run passes themselves, at the time they choose, instead of
/// waiting for the background task.
pub fn reconciler(
    settings: &RegistrySettings,
    connection: sea_orm::DatabaseConnection,
    clock: pmp_common::time::SharedClock,
) -> anyhow::Result<crate::reconcile::Reconciler> {
    let pem = pmp_common::keys::read(std::path::Path::new(
        &settings.service_identity.private_key_file,
    ))?;
    let signer = std::sync::Arc::new(pmp_common::auth::ServiceSigner::from_pem(
        crate::SERVICE_NAME,
        &pem,
    )?);
    let store = crate::upstream::CertificateStore::new(pmp_common::client::PeerChannel::connect(
        pmp_common::auth::CERTIFICATE_STORE,
        &settings.certificate_store,
        &signer,
        &settings.tls,
    )?);
    let repository = std::sync::Arc::new(crate::storage::SqlPartnerRepository::new(connection));
    Ok(crate::reconcile::reconciler(
        repository,
        store,
        clock,
        settings.consistency.lease(),
        settings.consistency.reconcile_batch_size,
    ))
}

/// Runs the registry on `127.0.0.1:0` reading the time from `clock` (leases and login
/// limits), so a test moves time past a lock-out instead of waiting for it.
pub async fn spawn_with_clock(
    settings: RegistrySettings,
    clock: pmp_common::time::SharedClock,
) -> anyhow::Result<Spawned> {
    Spawned::service(
        crate::PartnerRegistry {
            wrapper: None,
            clock: Some(clock),
        },
        settings,
    )
    .await
}

/// A partner record to store directly (storage tests, bulk imports): IN_PROGRESS, of type
/// `FTM_Provider` and organisation `ACME`, created now.
pub fn partner_record(partner_id: &str, email: &str) -> crate::domain::Partner {
    let now = chrono::Utc::now();
    crate::domain::Partner {
        partner_id: partner_id.into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        organization_name: "ACME".into(),
        partner_type: "FTM_Provider".into(),
        address: "1 Main St".into(),
        email: email.into(),
        phone: "12345".into(),
        lang_code: "eng".into(),
        status: crate::domain::PartnerStatus::InProgress,
        certificate_id: None,
        create_time: now,
        update_time: now,
    }
}
