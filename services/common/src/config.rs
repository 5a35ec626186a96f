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
    /// A file or variable could not be read or does not fit the settings' types.
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of its range (the message names the key).
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
        .source(environment);
    let settings: T = builder.add_source(env_source).build()?.try_deserialize()?;
    settings.validate().map_err(ConfigError::Invalid)?;
    Ok(settings)
}

/// Deserializes a list setting from a list (TOML arrays) or from one comma-separated
/// value (environment variables): `#[serde(deserialize_with = "pmp_common::config::list")]`
/// on a `Vec<String>` field. Blank items are dropped.
pub fn list<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct ListVisitor;

    impl<'de> serde::de::Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a list, or comma-separated values")
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Vec<String>, E> {
            Ok(value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut sequence: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = sequence.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}

/// Where and how a gRPC server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind, e.g. `127.0.0.1:50051` or `0.0.0.0:50051` in a container.
    pub listen: SocketAddr,
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_seconds: u64,
    /// How long the server keeps accepting calls after SIGTERM/SIGINT while reporting
    /// NOT_SERVING, before it drains: the time load balancers (Kubernetes endpoints,
    /// clients re-resolving DNS) take to stop sending new calls. 0 in development.
    #[serde(default)]
    pub shutdown_delay_seconds: u64,
    /// Largest request message accepted, in bytes (1 MiB by default): a larger one is
    /// refused from its length prefix, before it is read.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Calls served at once, server-wide; beyond it calls are refused with
    /// `RESOURCE_EXHAUSTED` (health and reflection are never refused).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Which calls get an access-log line (`pmp::access`).
    #[serde(default)]
    pub access_log: AccessLogSettings,
}

/// The access log: one line per call costs about as much as answering a cached
/// `VerifyCertificateTrust`, so a relying service's hot path may sample successful calls.
/// Failed and slow calls are always logged; the metrics count every call either way.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogSettings {
    /// Log one successful call in this many: 1 logs all, 0 none.
    pub successes_one_in: u64,
    /// Calls taking at least this long are logged whatever their outcome.
    pub slow_ms: u64,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            successes_one_in: 1,
            slow_ms: 500,
        }
    }
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

    /// How long calls are still accepted after the shutdown signal.
    pub fn shutdown_delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_delay_seconds)
    }
}

/// The service's own database.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// A file holding the URL instead (a mounted Secret), so that a password in it never
    /// sits in the process environment; takes precedence over `url` when set.
    #[serde(default)]
    pub url_file: String,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
}

impl DatabaseSettings {
    /// The URL to connect to: the contents of `url_file` when set, else `url`.
    pub fn connection_url(&self) -> Result<String, String> {
        if self.url_file.trim().is_empty() {
            return Ok(self.url.trim().to_owned());
        }
        std::fs::read_to_string(self.url_file.trim())
            .map(|contents| contents.trim().to_owned())
            .map_err(|error| format!("database.url_file {}: {error}", self.url_file.trim()))
    }
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
    /// For people at a terminal (colours only on a terminal).
    Pretty,
    /// One JSON object per line, for log collectors.
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

/// This service's identity towards the other platform services, and how it recognises
/// theirs (see [`crate::auth::service_tokens`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceIdentitySettings {
    /// This service's EC P-256 private key (PEM) that signs its service tokens: a mounted
    /// Secret of its own in production.
    pub private_key_file: String,
    /// Instead of the file: the label of the key pair in the service's HSM (`hsm.*`).
    #[serde(default)]
    pub private_key_label: String,
    /// Generate the key (mode 0600) on first start when the file does not exist, and publish
    /// its public key into `public_keys_dir`: convenient on one machine, wrong for a
    /// cluster, where keys are provisioned.
    pub generate_key: bool,
    /// Directory of the platform services' public keys, `<service>.pem` (a ConfigMap mounted
    /// as a directory); `<service>.<suffix>.pem` adds a key during a rotation.
    pub public_keys_dir: String,
}

impl Validate for ServiceIdentitySettings {
    fn validate(&self) -> Result<(), String> {
        let no_key =
            self.private_key_file.trim().is_empty() && self.private_key_label.trim().is_empty();
        if no_key || self.public_keys_dir.trim().is_empty() {
            return Err(
                "service_identity.private_key_file and service_identity.public_keys_dir must be set"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How a service verifies end-user tokens (see [`crate::auth::user_tokens`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokenSettings {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// PEM public keys (file paths) that verify tokens, e.g. Keycloak's realm key.
    #[serde(deserialize_with = "list")]
    pub public_key_files: Vec<String>,
    /// The partner registry (`GetTokenVerificationKeys`), e.g. `http://127.0.0.1:50051`.
    pub registry_address: String,
    /// A JWKS URL, e.g. Keycloak's `https://…/realms/mosip/protocol/openid-connect/certs`;
    /// used instead of `registry_address` when set.
    #[serde(default)]
    pub jwks_url: String,
    /// How often the remote keys are fetched again (besides on unknown key ids).
    #[serde(default = "default_refresh_interval_seconds")]
    pub refresh_interval_seconds: u64,
    /// Clock difference tolerated on `exp`, `nbf` and `iat`, at most 60 s.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// Fetch remote keys over plain text from hosts other than this machine too: never in
    /// production, where a network attacker could inject a key.
    #[serde(default)]
    pub allow_plaintext_key_fetch: bool,
}

fn default_refresh_interval_seconds() -> u64 {
    300
}

fn default_leeway_seconds() -> u64 {
    30
}

impl Validate for UserTokenSettings {
    fn validate(&self) -> Result<(), String> {
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return Err("user_tokens.issuer and user_tokens.audience must be set".into());
        }
        if self.public_key_files.is_empty()
            && self.registry_address.trim().is_empty()
            && self.jwks_url.trim().is_empty()
        {
            return Err("user_tokens needs public_key_files, registry_address or jwks_url".into());
        }
        if self.leeway_seconds > crate::auth::user_tokens::MAX_LEEWAY_SECONDS {
            return Err("user_tokens.leeway_seconds must be at most 60".into());
        }
        if !(1..=86_400).contains(&self.refresh_interval_seconds) {
            return Err("user_tokens.refresh_interval_seconds must be between 1 and 86400".into());
        }
        for (key, address) in [
            ("user_tokens.registry_address", &self.registry_address),
            ("user_tokens.jwks_url", &self.jwks_url),
        ] {
            if !self.allow_plaintext_key_fetch && !secure_or_local(address) {
                return Err(format!(
                    "{key} must be https:// (plain text is allowed only to this machine, or with user_tokens.allow_plaintext_key_fetch)"
                ));
            }
        }
        Ok(())
    }
}

/// Whether keys may be fetched from `address`: empty, TLS, or plain text to this machine.
pub fn secure_or_local(address: &str) -> bool {
    let address = address.trim();
    if address.is_empty() || address.starts_with("https://") {
        return true;
    }
    let Some(rest) = address.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a service's address setting: one http:// or https:// URL, or several separated by
/// commas (replicas; see [`DependencySettings::address`]). `name` is the setting's path.
pub fn validate_addresses(name: &str, addresses: &str) -> Result<(), String> {
    let mut urls = addresses.split(',').map(str::trim);
    if urls.all(|url| url.starts_with("http://") || url.starts_with("https://")) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be an http:// or https:// URL, or several separated by commas"
        ))
    }
}

/// Checks a re-resolution interval setting (milliseconds); `name` is the setting's path.
pub fn validate_resolve_interval(name: &str, milliseconds: u64) -> Result<(), String> {
    if (100..=600_000).contains(&milliseconds) {
        Ok(())
    } else {
        Err(format!("{name} must be between 100 and 600000"))
    }
}

/// Another platform service this one calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySettings {
    /// e.g. `http://127.0.0.1:50052`; several URLs separated by commas are replicas of one
    /// service. Each host is resolved again every `resolve_interval_ms`, and calls spread
    /// over every address it names (a Kubernetes headless Service names its ready pods).
    pub address: String,
    /// Deadline of every call, retries included.
    pub deadline_ms: u64,
    /// Attempts per call when the service is unavailable (1: no retry); see
    /// [`crate::client::RetryPolicy`].
    #[serde(default = "default_retry_attempts")]
    pub retry_attempts: u32,
    /// How often the addresses' host names are resolved again, to follow replicas coming and
    /// going.
    #[serde(default = "default_resolve_interval_ms")]
    pub resolve_interval_ms: u64,
}

fn default_retry_attempts() -> u32 {
    3
}

fn default_resolve_interval_ms() -> u64 {
    5000
}

impl DependencySettings {
    /// The deadline as a duration.
    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.deadline_ms)
    }

    /// The re-resolution interval as a duration.
    pub fn resolve_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.resolve_interval_ms)
    }

    /// Checks the address and deadline; `name` is the settings section, e.g. `registry`.
    pub fn validate_as(&self, name: &str) -> Result<(), String> {
        validate_addresses(&format!("{name}.address"), &self.address)?;
        if !(100..=120_000).contains(&self.deadline_ms) {
            return Err(format!("{name}.deadline_ms must be between 100 and 120000"));
        }
        if !(1..=10).contains(&self.retry_attempts) {
            return Err(format!("{name}.retry_attempts must be between 1 and 10"));
        }
        validate_resolve_interval(
            &format!("{name}.resolve_interval_ms"),
            self.resolve_interval_ms,
        )?;
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
        if self.shutdown_delay_seconds > 300 {
            return Err("server.shutdown_delay_seconds must be at most 300".into());
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

impl std::fmt::Debug for DatabaseSettings {
    // A PostgreSQL URL may carry a password: it never appears in logs or panics.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DatabaseSettings")
            .field("url", &redacted_url(&self.url))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `url` with the password of its user information replaced by `<redacted>`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    match authority.rsplit_once('@') {
        Some((user_information, host)) if user_information.contains(':') => {
            let user = user_information.split(':').next().unwrap_or_default();
            let separator = if path.is_empty() && !rest.contains('/') {
                ""
            } else {
                "/"
            };
            format!("{scheme}://{user}:<redacted>@{host}{separator}{path}")
        }
        _ => url.to_owned(),
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self) -> Result<(), String> {
        let url = self.connection_url()?;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(if self.url_file.trim().is_empty() {
                "database.url must start with sqlite: or postgres://".into()
            } else {
                "database.url_file must hold a URL starting with sqlite: or postgres://".into()
            });
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
    fn access_log_settings_come_from_the_environment_one_by_one() {
        let sample: Sample = load_with_env(
            "PMP_TEST",
            DEFAULTS,
            None,
            env(&[("PMP_TEST__SERVER__ACCESS_LOG__SUCCESSES_ONE_IN", "100")]),
        )
        .expect("loads");
        assert_eq!(sample.server.access_log.successes_one_in, 100);
        assert_eq!(
            sample.server.access_log.slow_ms, 500,
            "the other keeps its default"
        );
        let defaults: Sample = load_with_env("PMP_TEST", DEFAULTS, None, env(&[])).expect("loads");
        assert_eq!(defaults.server.access_log.successes_one_in, 1);
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
    fn the_database_url_may_come_from_a_mounted_file() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("url");
        std::fs::write(&path, "postgres://app:s3cr3t@db/registry\n").expect("write");
        let settings = DatabaseSettings {
            url: "sqlite://ignored.db".into(),
            url_file: path.display().to_string(),
            max_connections: 2,
        };
        assert_eq!(
            settings.connection_url().as_deref(),
            Ok("postgres://app:s3cr3t@db/registry"),
            "the file wins over url"
        );
        assert!(settings.validate().is_ok());
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        std::fs::write(&path, "mysql://db/registry").expect("write");
        let refused = settings.validate().expect_err("not a supported URL");
        assert!(refused.contains("database.url_file"), "{refused}");
        let missing = DatabaseSettings {
            url_file: directory.path().join("absent").display().to_string(),
            ..settings
        };
        let refused = missing.validate().expect_err("no such file");
        assert!(refused.contains("absent"), "{refused}");
    }

    #[test]
    fn database_passwords_never_show_in_debug_output() {
        let settings = DatabaseSettings {
            url: "postgres://pmp:s3cr3t@db:5432/registry".into(),
            url_file: String::new(),
            max_connections: 4,
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(
            printed.contains("postgres://pmp:<redacted>@db:5432/registry"),
            "{printed}"
        );
        assert_eq!(redacted_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(redacted_url("postgres://pmp@db/x"), "postgres://pmp@db/x");
    }

    #[test]
    fn plain_text_key_sources_are_only_local() {
        for local in [
            "",
            "https://keys.example/jwks",
            "http://127.0.0.1:50051",
            "http://localhost:8080/x",
            "http://[::1]:80",
        ] {
            assert!(secure_or_local(local), "{local}");
        }
        for remote in ["http://registry:50051", "http://10.0.0.5/jwks", "ftp://x"] {
            assert!(!secure_or_local(remote), "{remote}");
        }
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
