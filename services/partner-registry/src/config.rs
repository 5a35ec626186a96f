//! Settings of the partner registry (see `DEFAULTS` for every key and its default).

use serde::Deserialize;

pub use pmp_common::config::{ConsistencySettings, DependencySettings};
use pmp_common::config::{
    DatabaseSettings, MetricsSettings, ServerSettings, ServiceIdentitySettings, TelemetrySettings,
    Validate,
};
use pmp_common::event_feed::EventFeedSettings;
use pmp_common::tls::TlsSettings;

use crate::limits::LimitSettings;

/// Prefix of environment variables, e.g. `PMP_REGISTRY__DATABASE__URL`.
pub const ENV_PREFIX: &str = "PMP_REGISTRY";

/// Compiled-in defaults: a working single-machine set-up on SQLite under `./data/`.
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:50051"
shutdown_grace_seconds = 20

[database]
url = "sqlite://data/partner-registry/registry.db"
max_connections = 8

[telemetry]
log_format = "pretty"
log_level = "info"

[metrics]
listen = "127.0.0.1:9101"

[tokens]
issuer = "pmp-partner-registry"
audience = "pmp"
lifetime_seconds = 900
signing_key_file = "data/partner-registry/token-signing-key.pem"
generate_signing_key = true
previous_public_key_files = []

[service_identity]
private_key_file = "data/partner-registry/service-key.pem"
generate_key = true
public_keys_dir = "data/service-keys"

[admin]
username = "admin"
password = ""
password_file = ""

[registration]
languages = ["eng", "ara", "fra"]
default_language = "eng"

# Online guessing and hashing floods: failed logins per user name and per client address,
# and registrations per address, in a sliding window; argon2 threads (0: one per core) and
# how many password checks may wait for one.
[limits]
failures_per_user = 5
failures_per_address = 50
registrations_per_address = 20
window_seconds = 900
hashing_threads = 0
hashing_queue = 32

[certificate_store]
address = "http://127.0.0.1:50052"
deadline_ms = 5000

[consistency]
lease_seconds = 30
lease_wait_ms = 5000
reconcile_interval_seconds = 30
reconcile_batch_size = 100

# WatchPartnerEvents: how often a caught-up stream looks for changes made by other replicas (local
# changes wake it at once), the silence after which it sends a heartbeat, how long changes
# are kept for streams that resume, and how many messages a stream queues for its client.
[events]
poll_interval_ms = 500
heartbeat_interval_ms = 2000
retention_hours = 168
buffer = 64
"#;

/// All settings of the registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// gRPC listener and shutdown grace.
    pub server: ServerSettings,
    /// The registry's own database of users, partners and partner types.
    pub database: DatabaseSettings,
    /// Logging and tracing.
    pub telemetry: TelemetrySettings,
    /// Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// Signing and lifetime of the user access tokens `Login` issues.
    pub tokens: TokenSettings,
    /// Key signing this service's tokens to its peers, and where the peers' public keys are.
    pub service_identity: ServiceIdentitySettings,
    /// TLS of the gRPC listener and of calls to peers; plain text when left out.
    #[serde(default)]
    pub tls: TlsSettings,
    /// The PKCS#11 token holding the keys configured by label (none by default).
    #[serde(default)]
    pub hsm: pmp_common::signing::HsmSettings,
    /// The bootstrap administrator account.
    pub admin: AdminSettings,
    /// Languages a partner may register with.
    pub registration: RegistrationSettings,
    /// Throttling of failed logins and registrations, and the password-hashing pool.
    pub limits: LimitSettings,
    /// Where and how the certificate store (which validates partner certificates) is called.
    pub certificate_store: DependencySettings,
    /// How steps that span the certificate store are kept consistent (see `service`).
    pub consistency: ConsistencySettings,
    /// Streams of `WatchPartnerEvents`: polling, heartbeats, retention and buffering.
    pub events: EventFeedSettings,
}

/// Access tokens issued by `Login`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// `iss` claim of issued tokens; verifiers accept only this issuer.
    pub issuer: String,
    /// `aud` claim of issued tokens: the platform services that accept them.
    pub audience: String,
    /// Token lifetime; short, since tokens cannot be revoked.
    pub lifetime_seconds: u64,
    /// PKCS#8 PEM private key (EC P-256/P-384 or RSA) that signs tokens.
    pub signing_key_file: String,
    /// Instead of the file: the label of the signing key pair in the HSM (`hsm.*`).
    #[serde(default)]
    pub signing_key_label: String,
    /// Generate the key (mode 0600) on first start when the file does not exist.
    pub generate_signing_key: bool,
    /// Public keys (PEM files) of earlier signing keys, still published while tokens they
    /// signed are valid: rotate by moving the old key's public half here and mounting a new
    /// signing key.
    #[serde(default, deserialize_with = "pmp_common::config::list")]
    pub previous_public_key_files: Vec<String>,
    /// How often replicas look for a token key activated elsewhere (rotation).
    #[serde(default = "default_key_refresh_interval_ms")]
    pub key_refresh_interval_ms: u64,
}

fn default_key_refresh_interval_ms() -> u64 {
    5000
}

/// The bootstrap administrator; nothing is created without a password. Its user name is
/// reserved (nobody can register it) and its password follows the configuration at every
/// start.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// User name of the administrator account, reserved from registration.
    pub username: String,
    /// The password itself (e.g. from `PMP_REGISTRY__ADMIN__PASSWORD`)...
    pub password: String,
    /// ...or a file holding it (a mounted secret).
    pub password_file: String,
}

impl std::fmt::Debug for AdminSettings {
    // The password never appears in logs or panics.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AdminSettings")
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl AdminSettings {
    /// The configured password, if any.
    pub fn configured_password(&self) -> anyhow::Result<Option<String>> {
        if !self.password.is_empty() {
            return Ok(Some(self.password.clone()));
        }
        if self.password_file.trim().is_empty() {
            return Ok(None);
        }
        let contents = std::fs::read_to_string(&self.password_file)
            .map_err(|error| anyhow::anyhow!("cannot read admin.password_file: {error}"))?;
        let password = contents.trim_end_matches(['\n', '\r']).to_owned();
        Ok((!password.is_empty()).then_some(password))
    }
}

/// Registration rules that are configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Supported `lang_code` values.
    #[serde(deserialize_with = "pmp_common::config::list")]
    pub languages: Vec<String>,
    /// `lang_code` of partners that send none.
    pub default_language: String,
}

impl Validate for RegistrySettings {
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
        self.hsm
            .validate_label("tokens.signing_key_label", &self.tokens.signing_key_label)?;
        self.limits.validate()?;
        if !(60..=86_400).contains(&self.tokens.lifetime_seconds) {
            return Err("tokens.lifetime_seconds must be between 60 and 86400".into());
        }
        if self.tokens.signing_key_file.trim().is_empty()
            && self.tokens.signing_key_label.trim().is_empty()
        {
            return Err("tokens.signing_key_file or tokens.signing_key_label must be set".into());
        }
        if self.admin.username.trim().is_empty()
            || self.admin.username.chars().any(char::is_whitespace)
        {
            return Err("admin.username must be a non-empty name without white space".into());
        }
        if !self.admin.password.is_empty() && self.admin.password.chars().count() < 8 {
            return Err("admin.password must be at least 8 characters".into());
        }
        if !self
            .registration
            .languages
            .contains(&self.registration.default_language)
        {
            return Err(
                "registration.default_language must be one of registration.languages".into(),
            );
        }
        self.certificate_store.validate_as("certificate_store")?;
        // A step holds the lease across at most three store calls (upload, untrust the
        // replaced certificate, trust the new one).
        self.consistency
            .validate_for(4, self.certificate_store.deadline_ms)?;
        self.events.validate_as("events")?;
        Ok(())
    }
}

pmp_common::service_settings!(RegistrySettings, ENV_PREFIX, DEFAULTS);

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::config;

    #[test]
    fn defaults_are_valid() {
        let settings: RegistrySettings =
            config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))
                .expect("valid defaults");
        assert_eq!(settings.server.listen.port(), 50051);
        assert_eq!(settings.registration.languages, ["eng", "ara", "fra"]);
        assert_eq!(settings.events.poll_interval_ms, 500);
        assert_eq!(settings.events.heartbeat_interval_ms, 2000);
        assert_eq!(settings.events.retention_hours, 168);
        assert_eq!(settings.events.buffer, 64);
    }

    #[test]
    fn event_settings_out_of_range_are_refused() {
        for (key, value) in [
            ("PMP_REGISTRY__EVENTS__HEARTBEAT_INTERVAL_MS", "0"),
            ("PMP_REGISTRY__EVENTS__BUFFER", "100000"),
        ] {
            let environment = [(key.to_owned(), value.to_owned())];
            let message = config::load_with_env::<RegistrySettings>(
                ENV_PREFIX,
                DEFAULTS,
                None,
                Some(environment.into_iter().collect()),
            )
            .expect_err("refused")
            .to_string();
            assert!(message.contains("events."), "{key}: {message}");
        }
    }

    #[test]
    fn the_admin_password_never_shows_in_debug_output() {
        let environment = [(
            "PMP_REGISTRY__ADMIN__PASSWORD".to_owned(),
            "admin-pass-123".to_owned(),
        )];
        let settings: RegistrySettings = config::load_with_env(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(environment.into_iter().collect()),
        )
        .expect("valid");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("admin-pass-123"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn admin_password_from_environment() {
        let environment = [(
            "PMP_REGISTRY__ADMIN__PASSWORD".to_owned(),
            "admin-pass-123".to_owned(),
        )];
        let settings: RegistrySettings = config::load_with_env(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(environment.into_iter().collect()),
        )
        .expect("valid");
        assert_eq!(
            settings
                .admin
                .configured_password()
                .expect("read")
                .as_deref(),
            Some("admin-pass-123")
        );
    }
}
