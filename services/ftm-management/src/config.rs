//! Settings of the FTM management service (see [`DEFAULTS`] for every key and its default).

use serde::Deserialize;

pub use pmp_common::config::{ConsistencySettings, DependencySettings};
use pmp_common::config::{
    DatabaseSettings, MetricsSettings, ServerSettings, ServiceIdentitySettings, TelemetrySettings,
    UserTokenSettings, Validate,
};
use pmp_common::event_feed::EventFeedSettings;
use pmp_common::tls::TlsSettings;

/// Prefix of environment variables, e.g. `PMP_FTM__DATABASE__URL`.
pub const ENV_PREFIX: &str = "PMP_FTM";

/// Compiled-in defaults: a working single-machine set-up on SQLite under `./data/`, next to
/// the registry (`:50051`) and the certificate store (`:50052`).
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:50053"
shutdown_grace_seconds = 20

[database]
url = "sqlite://data/ftm-management/ftm.db"
max_connections = 8

[telemetry]
log_format = "pretty"
log_level = "info"

[metrics]
listen = "127.0.0.1:9103"

[service_identity]
private_key_file = "data/ftm-management/service-key.pem"
generate_key = true
public_keys_dir = "data/service-keys"

[user_tokens]
issuer = "pmp-partner-registry"
audience = "pmp"
public_key_files = []
registry_address = "http://127.0.0.1:50051"

[registry]
address = "http://127.0.0.1:50051"
deadline_ms = 5000

[certificate_store]
address = "http://127.0.0.1:50052"
deadline_ms = 5000

[consistency]
lease_seconds = 30
lease_wait_ms = 5000
reconcile_interval_seconds = 30
reconcile_batch_size = 100

# WatchFtmEvents: how often a caught-up stream looks for changes made by other replicas (local
# changes wake it at once), the silence after which it sends a heartbeat, how long changes
# are kept for streams that resume, and how many messages a stream queues for its client.
[events]
poll_interval_ms = 500
heartbeat_interval_ms = 2000
retention_hours = 168
buffer = 64
"#;

/// All settings of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtmSettings {
    /// gRPC listener and shutdown grace.
    pub server: ServerSettings,
    /// The service's own database of FTMs and their audit rows.
    pub database: DatabaseSettings,
    /// Logging and tracing.
    pub telemetry: TelemetrySettings,
    /// The Prometheus `/metrics` endpoint (empty `listen` disables it).
    pub metrics: MetricsSettings,
    /// Key signing this service's tokens to its peers, and where the peers' public keys are.
    pub service_identity: ServiceIdentitySettings,
    /// TLS of the gRPC listener and of calls to peers; plain text when left out.
    #[serde(default)]
    pub tls: TlsSettings,
    /// The PKCS#11 token holding the keys configured by label (none by default).
    #[serde(default)]
    pub hsm: pmp_common::signing::HsmSettings,
    /// How callers' access tokens (the registry's, or an OpenID Connect issuer's) are verified.
    pub user_tokens: UserTokenSettings,
    /// The partner registry, where partners are looked up (`GetPartner`).
    pub registry: DependencySettings,
    /// Where chip certificates are validated, stored and marked trusted.
    pub certificate_store: DependencySettings,
    /// Lease and reconciler timing of the steps that span the certificate store.
    pub consistency: ConsistencySettings,
    /// Streams of `WatchFtmEvents`: polling, heartbeats, retention and buffering.
    pub events: EventFeedSettings,
}

impl Validate for FtmSettings {
    fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.database.validate()?;
        self.telemetry.validate()?;
        self.metrics.validate()?;
        self.service_identity.validate()?;
        self.tls.validate()?;
        self.hsm.validate()?;
        self.hsm.validate_label(
            "service_identity.private_key_label",
            &self.service_identity.private_key_label,
        )?;
        self.user_tokens.validate()?;
        self.registry.validate_as("registry")?;
        self.certificate_store.validate_as("certificate_store")?;
        // A step holds the lease across at most three store calls (upload, then untrusting
        // the previous certificate, with the registry look-up before).
        self.consistency
            .validate_for(3, self.certificate_store.deadline_ms)?;
        self.events.validate_as("events")?;
        Ok(())
    }
}

pmp_common::service_settings!(FtmSettings, ENV_PREFIX, DEFAULTS);

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::config::{self, ConfigError};

    fn with_env(pairs: &[(&str, &str)]) -> Result<FtmSettings, ConfigError> {
        config::load_with_env(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(
                pairs
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let settings = with_env(&[]).expect("valid defaults");
        assert_eq!(settings.server.listen.port(), 50053);
        assert_eq!(settings.database.url, "sqlite://data/ftm-management/ftm.db");
        assert_eq!(settings.registry.address, "http://127.0.0.1:50051");
        assert_eq!(settings.metrics.listen, "127.0.0.1:9103");
        assert_eq!(settings.certificate_store.address, "http://127.0.0.1:50052");
        assert_eq!(settings.user_tokens.issuer, "pmp-partner-registry");
        assert_eq!(settings.user_tokens.audience, "pmp");
        assert!(settings.user_tokens.public_key_files.is_empty());
        assert_eq!(
            settings.consistency.reconcile_interval(),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            settings.events.poll_interval(),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            settings.events.heartbeat_interval(),
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            settings.events.retention(),
            std::time::Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(settings.events.buffer, 64);
    }

    #[test]
    fn environment_overrides_and_lists() {
        let settings = with_env(&[
            ("PMP_FTM__CERTIFICATE_STORE__DEADLINE_MS", "2500"),
            ("PMP_FTM__USER_TOKENS__PUBLIC_KEY_FILES", "/a.pem,/b.pem"),
        ])
        .expect("valid");
        assert_eq!(
            settings.certificate_store.deadline(),
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(settings.user_tokens.public_key_files, ["/a.pem", "/b.pem"]);
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (key, value, expected) in [
            (
                "PMP_FTM__CERTIFICATE_STORE__ADDRESS",
                "127.0.0.1:1",
                "certificate_store.address",
            ),
            (
                "PMP_FTM__REGISTRY__DEADLINE_MS",
                "5",
                "registry.deadline_ms",
            ),
            ("PMP_FTM__METRICS__LISTEN", "nowhere", "metrics.listen"),
            (
                "PMP_FTM__CONSISTENCY__LEASE_SECONDS",
                "1",
                "consistency.lease_seconds",
            ),
            (
                "PMP_FTM__CONSISTENCY__RECONCILE_INTERVAL_SECONDS",
                "0",
                "consistency.reconcile_interval_seconds",
            ),
            ("PMP_FTM__EVENTS__BUFFER", "0", "events.buffer"),
            (
                "PMP_FTM__EVENTS__POLL_INTERVAL_MS",
                "1",
                "events.poll_interval_ms",
            ),
            (
                "PMP_FTM__EVENTS__RETENTION_HOURS",
                "0",
                "events.retention_hours",
            ),
        ] {
            let message = with_env(&[(key, value)])
                .expect_err("must be refused")
                .to_string();
            assert!(message.contains(expected), "{key}: {message}");
        }
    }
}
