//! Layered configuration: compiled-in defaults, then an optional file given by `--config`,
//! then environment variables (`<PREFIX>__SECTION__KEY`, e.g. `PMP_REGISTRY__DATABASE__URL`).
//!
//! Every service's settings struct uses `#[serde(deny_unknown_fields)]`, so a misspelt key
//! fails at start-up instead of being silently ignored, and implements [`Validate`] so that
//! values are checked once, with a message that names the key.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Configuration could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Checks a loaded configuration beyond what its types express.
pub trait Validate {
    /// Returns a message naming the offending key when a value is not acceptable.
    fn validate(&self) -> Result<(), String>;
}

/// Loads `T` from `defaults` (TOML), the optional `file`, and environment variables that
/// start with `env_prefix` followed by `__` (nested keys separated by `__`).
pub fn load<T>(env_prefix: &str, defaults: &str, file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    load_with_env(env_prefix, defaults, file, None)
}

/// Like [`load`], with the environment given explicitly (tests use this instead of mutating
/// the process environment).
pub fn load_with_env<T>(
    env_prefix: &str,
    defaults: &str,
    file: Option<&Path>,
    environment: Option<std::collections::HashMap<String, String>>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let env_source = config::Environment::with_prefix(env_prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(environment);
    let env_source = LIST_KEYS
        .iter()
        .fold(env_source, |source, key| source.with_list_parse_key(key));
    let settings: T = builder.add_source(env_source).build()?.try_deserialize()?;
    settings.validate().map_err(ConfigError::Invalid)?;
    Ok(settings)
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: [&str; 3] = [
    "user_tokens.public_key_files",
    "certificates.allowed_domains",
    "registration.languages",
];

/// Where and how a gRPC server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind, e.g. `127.0.0.1:50051` or `0.0.0.0:50051` in a container.
    pub listen: SocketAddr,
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_seconds: u64,
    /// Largest request message accepted, in bytes (1 MiB by default): a larger one is
    /// refused from its length prefix, before it is read.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Calls served at once, server-wide; beyond it calls are refused with
    /// `RESOURCE_EXHAUSTED` (health and reflection are never refused).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

fn default_max_message_bytes() -> usize {
    1024 * 1024
}

fn default_max_concurrent_requests() -> usize {
    256
}

impl ServerSettings {
    /// The grace period of a graceful shutdown.
    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// The service's own database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `pretty` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `info,sqlx=warn`; `RUST_LOG` overrides it.
    pub log_level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `host:port` serving `/metrics` over HTTP; empty disables the endpoint.
    pub listen: String,
}

impl Validate for MetricsSettings {
    fn validate(&self) -> Result<(), String> {
        let listen = self.listen.trim();
        if !listen.is_empty() && listen.parse::<SocketAddr>().is_err() {
            return Err("metrics.listen must be host:port (e.g. 127.0.0.1:9101) or empty".into());
        }
        Ok(())
    }
}

/// How this service proves its identity to other platform services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAuthSettings {
    /// File holding the secret shared by the platform's services (a mounted Kubernetes
    /// Secret in production).
    pub secret_file: String,
    /// Generate the file (mode 0600) when it does not exist: convenient for a single machine,
    /// wrong for a cluster, where every replica must share one secret.
    pub generate_secret: bool,
}

impl ServiceAuthSettings {
    /// Loads (or, if allowed, generates) the shared service secret.
    pub fn load_secret(&self) -> anyhow::Result<Vec<u8>> {
        let path = std::path::Path::new(&self.secret_file);
        let secret = if self.generate_secret {
            let (secret, generated) =
                crate::keys::load_or_generate(path, crate::keys::generate_secret)?;
            if generated {
                tracing::info!(path = %path.display(), "generated the shared service-token secret");
            }
            secret
        } else {
            crate::keys::read(path)?
        };
        let secret: Vec<u8> = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
        if secret.len() < 32 {
            anyhow::bail!("service_auth.secret_file must hold at least 32 characters");
        }
        Ok(secret)
    }
}

/// How a service verifies end-user tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokenSettings {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// PEM public keys (file paths) that verify tokens, e.g. Keycloak's realm key.
    pub public_key_files: Vec<String>,
    /// When set, the keys are also fetched from the partner registry at start-up
    /// (`GetTokenVerificationKeys`), e.g. `http://127.0.0.1:50051`.
    pub registry_address: String,
}

impl Validate for UserTokenSettings {
    fn validate(&self) -> Result<(), String> {
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return Err("user_tokens.issuer and user_tokens.audience must be set".into());
        }
        if self.public_key_files.is_empty() && self.registry_address.trim().is_empty() {
            return Err("user_tokens needs public_key_files or registry_address".into());
        }
        Ok(())
    }
}

impl Validate for ServiceAuthSettings {
    fn validate(&self) -> Result<(), String> {
        if self.secret_file.trim().is_empty() {
            return Err("service_auth.secret_file must be set".into());
        }
        Ok(())
    }
}

/// Another platform service this one calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySettings {
    /// e.g. `http://127.0.0.1:50052`.
    pub address: String,
    /// Deadline of every call.
    pub deadline_ms: u64,
}

impl DependencySettings {
    /// The deadline as a duration.
    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.deadline_ms)
    }

    /// Checks the address and deadline; `name` is the settings section, e.g. `registry`.
    pub fn validate_as(&self, name: &str) -> Result<(), String> {
        if !self.address.starts_with("http") {
            return Err(format!("{name}.address must be an http:// or https:// URL"));
        }
        if !(100..=120_000).contains(&self.deadline_ms) {
            return Err(format!("{name}.deadline_ms must be between 100 and 120000"));
        }
        Ok(())
    }
}

/// How a service keeps steps that span another service consistent: per-record leases taken
/// before the first remote call, and a reconciler that completes the steps a failure or a
/// crash interrupted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencySettings {
    /// How long a step may hold a record's lease before the reconciler may take it over.
    /// Must exceed the time the step's remote calls can take (their deadlines).
    pub lease_seconds: u64,
    /// How long a request waits for a concurrent change of the same record to finish before
    /// it answers `UNAVAILABLE`.
    pub lease_wait_ms: u64,
    /// Period of the reconciliation pass (it also runs once at start-up).
    pub reconcile_interval_seconds: u64,
    /// Records repaired per reconciliation round.
    pub reconcile_batch_size: u64,
}

impl ConsistencySettings {
    /// The lease duration.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_seconds)
    }

    /// The lease wait.
    pub fn lease_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_wait_ms)
    }

    /// The reconciliation period.
    pub fn reconcile_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.reconcile_interval_seconds)
    }

    /// Checks the values; a step holds its lease across at most `remote_calls` calls of
    /// `remote_deadline_ms` each, and the lease must outlive them with room to spare.
    pub fn validate_for(&self, remote_calls: u64, remote_deadline_ms: u64) -> Result<(), String> {
        let needed_ms = remote_deadline_ms.saturating_mul(remote_calls);
        if self.lease_seconds.saturating_mul(1000) < needed_ms || self.lease_seconds > 3600 {
            return Err(format!(
                "consistency.lease_seconds must cover {remote_calls} remote call deadlines and be at most 3600"
            ));
        }
        if !(10..=600_000).contains(&self.lease_wait_ms) {
            return Err("consistency.lease_wait_ms must be between 10 and 600000".into());
        }
        if !(1..=86_400).contains(&self.reconcile_interval_seconds) {
            return Err(
                "consistency.reconcile_interval_seconds must be between 1 and 86400".into(),
            );
        }
        if !(1..=10_000).contains(&self.reconcile_batch_size) {
            return Err("consistency.reconcile_batch_size must be between 1 and 10000".into());
        }
        Ok(())
    }
}

impl Validate for ServerSettings {
    fn validate(&self) -> Result<(), String> {
        if self.shutdown_grace_seconds == 0 || self.shutdown_grace_seconds > 600 {
            return Err("server.shutdown_grace_seconds must be between 1 and 600".into());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err("server.max_message_bytes must be between 1024 and 67108864".into());
        }
        if !(1..=100_000).contains(&self.max_concurrent_requests) {
            return Err("server.max_concurrent_requests must be between 1 and 100000".into());
        }
        Ok(())
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.url.trim();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database.url must start with sqlite: or postgres://".into());
        }
        if self.max_connections == 0 {
            return Err("database.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

impl Validate for TelemetrySettings {
    fn validate(&self) -> Result<(), String> {
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map(|_| ())
            .map_err(|error| format!("telemetry.log_level is not a valid filter: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
    }

    impl Validate for Sample {
        fn validate(&self) -> Result<(), String> {
            self.server.validate()?;
            self.database.validate()
        }
    }

    const DEFAULTS: &str = r#"
        [server]
        listen = "127.0.0.1:50051"
        shutdown_grace_seconds = 10
        [database]
        url = "sqlite://data/x.db"
        max_connections = 5
    "#;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_then_environment() {
        let sample: Sample = load_with_env(
            "PMP_TEST",
            DEFAULTS,
            None,
            env(&[("PMP_TEST__DATABASE__URL", "postgres://db/x")]),
        )
        .expect("loads");
        assert_eq!(sample.database.url, "postgres://db/x");
        assert_eq!(sample.server.listen.port(), 50051);
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[database]\nmax_connections = 9\n").expect("write");
        let sample: Sample =
            load_with_env("PMP_TEST", DEFAULTS, Some(&path), env(&[])).expect("loads");
        assert_eq!(sample.database.max_connections, 9);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let result: Result<Sample, _> = load_with_env(
            "PMP_TEST",
            DEFAULTS,
            None,
            env(&[("PMP_TEST__DATABASE__URLL", "x")]),
        );
        let message = result.expect_err("must fail").to_string();
        assert!(message.contains("urll"), "{message}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let result: Result<Sample, _> = load_with_env(
            "PMP_TEST",
            DEFAULTS,
            None,
            env(&[("PMP_TEST__DATABASE__URL", "mysql://x")]),
        );
        let message = result.expect_err("must fail").to_string();
        assert!(message.contains("database.url"), "{message}");
    }
}
