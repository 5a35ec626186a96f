//! Starting a real certificate store inside a test process (used by this crate's tests and
//! by the tests of the services that call it).

use std::path::Path;
use std::sync::OnceLock;

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
    let [root, certificate, key] = provision_platform_pki(directory)?;
    settings.platform.root_certificate_file = root;
    settings.platform.signing_certificate_file = certificate;
    settings.platform.signing_key_file = key;
    Ok(settings)
}

/// Names of the platform PKI files under a test directory: root certificate, signing
/// certificate, signing key.
const PLATFORM_PKI_FILES: [&str; 3] = [
    "platform-root.pem",
    "platform-signing.pem",
    "platform-signing-key.pem",
];

/// Writes a platform PKI (root certificate, signing certificate, signing key) into
/// `directory`, as an operator mounts one in production, unless the files exist; returns
/// their paths in that order. The PKI is generated once per test process and shared: two
/// RSA-3072 keys cost seconds of CPU, which every test platform would otherwise pay at start.
pub fn provision_platform_pki(directory: &Path) -> anyhow::Result<[String; 3]> {
    static GENERATED: OnceLock<Result<[String; 3], String>> = OnceLock::new();
    let contents = GENERATED
        .get_or_init(|| generate_platform_pki().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow::anyhow!("generating the platform PKI: {error}"))?;
    let mut paths = [String::new(), String::new(), String::new()];
    for ((name, content), path) in PLATFORM_PKI_FILES.iter().zip(contents).zip(&mut paths) {
        let file = directory.join(name);
        pmp_common::keys::load_or_generate(&file, || Ok(content.clone().into_bytes()))?;
        *path = file.display().to_string();
    }
    Ok(paths)
}

fn generate_platform_pki() -> anyhow::Result<[String; 3]> {
    let generated = crate::x509::PlatformSigner::generate()?;
    Ok([
        crate::x509::pem_string(&generated.root_certificate)?,
        generated.signer.certificate_pem()?,
        generated.signer.private_key_pem()?,
    ])
}

/// Writes a fresh platform root and a signing certificate it issues for `signing_key`
/// (whose private half is elsewhere, e.g. in an HSM) into `directory` as
/// `platform-root.pem` and `platform-signing.pem`; the root's private key is discarded, as
/// an offline root's would be kept away. Returns the two paths.
pub fn provision_platform_pki_for(
    directory: &Path,
    signing_key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
) -> anyhow::Result<[String; 2]> {
    let (root, signing) = crate::x509::PlatformSigner::issue_for_key(signing_key)?;
    let mut paths = [String::new(), String::new()];
    for ((name, certificate), path) in PLATFORM_PKI_FILES
        .iter()
        .zip([&root, &signing])
        .zip(&mut paths)
    {
        let file = directory.join(name);
        std::fs::write(&file, crate::x509::pem_string(certificate)?)?;
        *path = file.display().to_string();
    }
    Ok(paths)
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

/// Runs the expiry sweep once, as the daily task does; returns how many notices were new.
pub async fn sweep_expiring(
    repository: &dyn crate::storage::CertificateRepository,
) -> Result<usize, crate::error::StoreError> {
    crate::service::sweep(repository).await
}

/// Starts the expiring-certificate gauges over `repository`, recounted every `interval`
/// until `stop` changes, as the service does.
pub fn spawn_expiry_gauges(
    repository: std::sync::Arc<dyn crate::storage::CertificateRepository>,
    metrics: &pmp_common::metrics::Metrics,
    interval: std::time::Duration,
    stop: tokio::sync::watch::Receiver<()>,
) -> Result<(), prometheus::Error> {
    crate::service::spawn_gauges(repository, metrics, interval, stop)
}
