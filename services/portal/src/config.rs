//! Settings of the portal (see [`DEFAULTS`] for every key and its default).

use std::net::SocketAddr;

use serde::Deserialize;

use pmp_common::config::{TelemetrySettings, Validate};
use pmp_common::tls::TlsSettings;

use crate::i18n::Language;

/// Prefix of environment variables, e.g. `PMP_PORTAL__SERVICES__REGISTRY`.
pub const ENV_PREFIX: &str = "PMP_PORTAL";

/// Compiled-in defaults: the portal on `127.0.0.1:8080` in front of the three services on
/// their default ports, keeping its cookie key under `./data/`.
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:8080"
shutdown_grace_seconds = 10
# Largest accepted form or upload (certificates are a few kilobytes).
max_upload_bytes = 262144

[services]
registry = "http://127.0.0.1:50051"
certificate_store = "http://127.0.0.1:50052"
ftm_management = "http://127.0.0.1:50053"
deadline_ms = 10000

[session]
# 32 random bytes (hex) sealing the session cookie; every replica needs the same key.
key_file = "data/portal/session-key.hex"
generate_key = true
# Mark the cookie Secure: on whenever browsers reach the portal over HTTPS (directly or
# through an ingress that terminates TLS).
secure_cookie = false

[languages]
default = "eng"

[telemetry]
log_format = "pretty"
log_level = "info"
"#;

/// All settings of the portal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// HTTP listener and limits.
    pub server: PortalServerSettings,
    /// Where the platform services are.
    pub services: ServiceAddresses,
    /// The session cookie.
    pub session: SessionSettings,
    /// Language of visitors who have not chosen one.
    pub languages: LanguageSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// TLS towards the services (the portal's own HTTPS is terminated in front of it).
    #[serde(default)]
    pub tls: TlsSettings,
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalServerSettings {
    /// `host:port`.
    pub listen: SocketAddr,
    /// How long requests in flight may finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Largest request body (forms and certificate uploads).
    pub max_upload_bytes: usize,
}

/// Addresses of the three services (`http://` or `https://`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAddresses {
    /// Partner registry. Like the other two: one URL, or several separated by commas; each
    /// host is resolved again every `resolve_interval_ms` and calls spread over every
    /// address it names (a Kubernetes headless Service names its ready pods).
    pub registry: String,
    /// Certificate store.
    pub certificate_store: String,
    /// FTM management.
    pub ftm_management: String,
    /// Deadline of every call.
    pub deadline_ms: u64,
    /// How often the services' host names are resolved again.
    #[serde(default = "default_resolve_interval_ms")]
    pub resolve_interval_ms: u64,
}

fn default_resolve_interval_ms() -> u64 {
    5000
}

/// The sealed session cookie.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// File holding the 32-byte key, hex-encoded.
    pub key_file: String,
    /// Create the key file when it does not exist (development; production mounts a Secret).
    pub generate_key: bool,
    /// Send the cookie over HTTPS only.
    pub secure_cookie: bool,
}

/// Languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSettings {
    /// `eng`, `fra` or `ara`.
    pub default: String,
}

impl PortalSettings {
    /// Loads defaults, the optional file and `PMP_PORTAL__…` environment variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, pmp_common::config::ConfigError> {
        pmp_common::config::load(ENV_PREFIX, DEFAULTS, file)
    }

    /// The language of visitors who have not chosen one.
    pub fn default_language(&self) -> Language {
        Language::from_code(&self.languages.default).unwrap_or_default()
    }
}

impl Validate for PortalSettings {
    fn validate(&self) -> Result<(), String> {
        for (name, address) in [
            ("services.registry", &self.services.registry),
            (
                "services.certificate_store",
                &self.services.certificate_store,
            ),
            ("services.ftm_management", &self.services.ftm_management),
        ] {
            pmp_common::config::validate_addresses(name, address)?;
        }
        pmp_common::config::validate_resolve_interval(
            "services.resolve_interval_ms",
            self.services.resolve_interval_ms,
        )?;
        if !(100..=120_000).contains(&self.services.deadline_ms) {
            return Err("services.deadline_ms must be between 100 and 120000".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.server.max_upload_bytes) {
            return Err("server.max_upload_bytes must be between 1 KiB and 16 MiB".into());
        }
        if Language::from_code(&self.languages.default).is_none() {
            return Err("languages.default must be one of eng, fra, ara".into());
        }
        if self.session.key_file.trim().is_empty() {
            return Err("session.key_file is required".into());
        }
        self.tls.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let settings: PortalSettings =
            pmp_common::config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))
                .expect("valid defaults");
        assert_eq!(settings.server.listen.port(), 8080);
        assert_eq!(settings.default_language(), Language::English);
    }

    #[test]
    fn an_unknown_default_language_is_refused() {
        let environment = [(
            "PMP_PORTAL__LANGUAGES__DEFAULT".to_owned(),
            "deu".to_owned(),
        )];
        let refused = pmp_common::config::load_with_env::<PortalSettings>(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(environment.into_iter().collect()),
        );
        assert!(format!("{:?}", refused.err()).contains("languages.default"));
    }
}
