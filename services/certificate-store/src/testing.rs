//! Starting a real certificate store inside a test process (used by this crate's tests and
//! by the tests of the services that call it).

use std::path::Path;

use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::config::DatabaseSettings;
use pmp_common::testing::Spawned;

use crate::config::{CertStoreSettings, DEFAULTS, ENV_PREFIX};

/// Settings for a test certificate store: platform key files under `directory`, the given
/// database, user-token keys from the registry at `registry_address` (or, when it is empty,
/// from `public_key_files`), and the service identity keys of `service_keys`.
pub fn settings(
    directory: &Path,
    database: DatabaseSettings,
    registry_address: &str,
    service_keys: &ServiceKeyFiles,
) -> anyhow::Result<CertStoreSettings> {
    let mut settings: CertStoreSettings =
        pmp_common::config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))?;
    settings.server.listen = "127.0.0.1:0".parse()?;
    settings.server.shutdown_grace_seconds = 5;
    settings.metrics.listen = String::new();
    settings.database = database;
    settings.service_identity.private_key_file = service_keys
        .private_key_file("certificate-store")
        .display()
        .to_string();
    settings.service_identity.generate_key = false;
    settings.service_identity.public_keys_dir = service_keys.public_keys_dir.display().to_string();
    settings.user_tokens.registry_address = registry_address.to_owned();
    settings.certificates.trust_refresh_interval_ms = 500;
    settings.platform.root_certificate_file =
        directory.join("platform-root.pem").display().to_string();
    settings.platform.signing_certificate_file =
        directory.join("platform-signing.pem").display().to_string();
    settings.platform.signing_key_file = directory
        .join("platform-signing-key.pem")
        .display()
        .to_string();
    Ok(settings)
}

/// Runs the certificate store on `127.0.0.1:0`.
pub async fn spawn(settings: CertStoreSettings) -> anyhow::Result<Spawned> {
    Spawned::service(crate::CertificateStore, settings).await
}

/// Runs the service on a listener bound beforehand (see
/// [`pmp_common::testing::reserve_address`]).
pub fn spawn_on(
    settings: CertStoreSettings,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Spawned> {
    Spawned::service_on(crate::CertificateStore, settings, listener)
}
