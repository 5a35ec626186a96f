//! Settings of the certificate store (see `DEFAULTS` for every key and its default).

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::TrustPolicy;
use crate::trust::TrustSettings;

use pmp_common::config::{
    DatabaseSettings, MetricsSettings, ServerSettings, ServiceIdentitySettings, TelemetrySettings,
    UserTokenSettings, Validate,
};
use pmp_common::tls::TlsSettings;

/// Prefix of environment variables, e.g. `PMP_CERTSTORE__DATABASE__URL`.
pub const ENV_PREFIX: &str = "PMP_CERTSTORE";

/// Compiled-in defaults: a working single-machine set-up on SQLite under `./data/`.
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:50052"
shutdown_grace_seconds = 20

[database]
url = "sqlite://data/certificate-store/certstore.db"
max_connections = 8

[telemetry]
log_format = "pretty"
log_level = "info"

[metrics]
listen = "127.0.0.1:9102"

[service_identity]
private_key_file = "data/certificate-store/service-key.pem"
generate_key = true
public_keys_dir = "data/service-keys"

[user_tokens]
issuer = "pmp-partner-registry"
audience = "pmp"
public_key_files = []
registry_address = "http://127.0.0.1:50051"

[certificates]
allowed_domains = ["FTM", "DEVICE", "AUTH"]
ca_min_validity_months = 12
partner_min_validity_days = 335
trust_refresh_interval_ms = 2000
verify_cache_bytes = 67108864

# Per-domain trust policy: "registered" (default; only approved partner/FTM certificates and
# what they issue verify) or "chain" (MOSIP's rule: anything that chains to the domain's
# CAs). E.g. PMP_CERTSTORE__CERTIFICATES__TRUST_POLICY__DEVICE=chain.
[certificates.trust_policy]

[platform]
root_certificate_file = "data/certificate-store/platform-root.pem"
signing_certificate_file = "data/certificate-store/platform-signing.pem"
signing_key_file = "data/certificate-store/platform-signing-key.pem"
generate = true
"#;

/// All settings of the certificate store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertStoreSettings {
    /// gRPC listener, shutdown grace and message size bound.
    pub server: ServerSettings,
    /// The store's own database: certificates, deactivated partners, trust version, audit.
    pub database: DatabaseSettings,
    /// Logging and tracing.
    pub telemetry: TelemetrySettings,
    /// Prometheus endpoint (empty `listen` disables it).
    pub metrics: MetricsSettings,
    /// Key signing this service's tokens to its peers, and where the peers' public keys are.
    pub service_identity: ServiceIdentitySettings,
    /// How the user access tokens issued by the partner registry are verified.
    pub user_tokens: UserTokenSettings,
    /// TLS of the gRPC listener and of calls to peers; plain text when left out.
    #[serde(default)]
    pub tls: TlsSettings,
    /// The PKCS#11 token holding the keys configured by label (none by default).
    #[serde(default)]
    pub hsm: pmp_common::signing::HsmSettings,
    /// Domains, validity minimums, trust policies and trust-store refresh.
    pub certificates: CertificateSettings,
    /// The platform key that re-signs partner certificates.
    pub platform: PlatformSettings,
    /// The trust change feed (`WatchTrustChanges`).
    #[serde(default)]
    pub feed: FeedSettings,
    /// Expiry: the sweep announcing certificates that cross a threshold, and the gauges.
    #[serde(default)]
    pub expiry: ExpirySettings,
    /// Certificate revocation lists (`GetCrl`).
    #[serde(default)]
    pub crl: CrlSettings,
}

/// How the trust change feed streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedSettings {
    /// A stream that sent nothing for this long sends a heartbeat.
    pub heartbeat_interval_ms: u64,
    /// How often a caught-up stream looks for events written by other replicas (events of
    /// this replica wake it at once).
    pub poll_interval_ms: u64,
    /// How long events are kept for consumers to resume from; older consumers get a fresh
    /// snapshot.
    pub retention_hours: u64,
    /// Messages queued per stream before its reader waits for the consumer (the database
    /// is the buffer beyond that).
    pub buffer: usize,
    /// Approximate size of one snapshot message, below the servers' message size bound.
    pub snapshot_part_bytes: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            heartbeat_interval_ms: 2_000,
            poll_interval_ms: 500,
            retention_hours: 24 * 7,
            buffer: 64,
            snapshot_part_bytes: 256 * 1024,
        }
    }
}

/// Expiry announcements and gauges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpirySettings {
    /// How often the sweep looks for certificates crossing a threshold (daily by default).
    pub sweep_interval_seconds: u64,
    /// How often the expiring-certificate gauges are recounted.
    pub gauge_interval_seconds: u64,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        ExpirySettings {
            sweep_interval_seconds: 24 * 60 * 60,
            gauge_interval_seconds: 60,
        }
    }
}

/// Certificate revocation lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlSettings {
    /// `nextUpdate` of a CRL, after its `thisUpdate`.
    pub validity_hours: u64,
}

impl Default for CrlSettings {
    fn default() -> Self {
        CrlSettings { validity_hours: 24 }
    }
}

/// Certificate rules that are configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSettings {
    /// Partner domains (stored upper-case, matched case-insensitively).
    #[serde(deserialize_with = "pmp_common::config::list")]
    pub allowed_domains: Vec<String>,
    /// Minimum remaining validity of an uploaded CA certificate (KER-PCM-017).
    pub ca_min_validity_months: u32,
    /// Minimum remaining validity of a partner/FTM certificate (KER-KMS-021).
    pub partner_min_validity_days: u32,
    /// How often the trust-store version is polled for changes made by other replicas.
    pub trust_refresh_interval_ms: u64,
    /// Bound of `VerifyCertificateTrust`'s verdict cache, in bytes.
    pub verify_cache_bytes: u64,
    /// Trust policy per domain (keys case-insensitive); unlisted domains are `registered`.
    #[serde(default)]
    pub trust_policy: HashMap<String, TrustPolicy>,
}

/// The platform signing certificate and key (MOSIP's "PMS" key) that re-sign partner
/// certificates: PEM files, mounted from a Kubernetes Secret in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// PEM of the platform root, the anchor platform-signed copies verify against (written
    /// when `generate` creates a development PKI): a signing certificate added for a
    /// rotation must be issued by it.
    pub root_certificate_file: String,
    /// PEM of the certificate that issues the platform-signed copies.
    pub signing_certificate_file: String,
    /// PEM private key of the signing certificate; never leaves its file and memory.
    pub signing_key_file: String,
    /// Instead of the file: the label of the signing certificate's key pair in the HSM
    /// (`hsm.*`); the certificate itself stays a file.
    #[serde(default)]
    pub signing_key_label: String,
    /// Generate a platform root and signing certificate (files 0600) on first start when
    /// the files do not exist. The root's private key is not kept.
    pub generate: bool,
}

impl CertStoreSettings {
    /// The allowed domains, upper-case.
    pub fn domains(&self) -> Vec<String> {
        self.certificates
            .allowed_domains
            .iter()
            .map(|domain| domain.trim().to_ascii_uppercase())
            .collect()
    }

    /// The trust policy of each configured domain, keys upper-case.
    pub fn trust_policies(&self) -> HashMap<String, TrustPolicy> {
        self.certificates
            .trust_policy
            .iter()
            .map(|(domain, policy)| (domain.trim().to_ascii_uppercase(), *policy))
            .collect()
    }

    /// What the in-memory trust store is built with.
    pub fn trust_settings(&self) -> TrustSettings {
        TrustSettings {
            domains: self.domains(),
            policies: self.trust_policies(),
            cache_bytes: self.certificates.verify_cache_bytes,
        }
    }
}

impl Validate for CertStoreSettings {
    fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.database.validate()?;
        self.telemetry.validate()?;
        self.metrics.validate()?;
        self.service_identity.validate()?;
        self.user_tokens.validate()?;
        self.tls.validate()?;
        self.hsm.validate()?;
        self.hsm.validate_label(
            "service_identity.private_key_label",
            &self.service_identity.private_key_label,
        )?;
        self.hsm.validate_label(
            "platform.signing_key_label",
            &self.platform.signing_key_label,
        )?;
        let domains = &self.certificates.allowed_domains;
        if domains.is_empty()
            || domains
                .iter()
                .any(|domain| domain.trim().is_empty() || domain.len() > 36)
        {
            return Err(
                "certificates.allowed_domains must list 1-36 character domain names".into(),
            );
        }
        if !(1..=120).contains(&self.certificates.ca_min_validity_months) {
            return Err("certificates.ca_min_validity_months must be between 1 and 120".into());
        }
        if !(1..=3650).contains(&self.certificates.partner_min_validity_days) {
            return Err("certificates.partner_min_validity_days must be between 1 and 3650".into());
        }
        let domains = self.domains();
        if let Some(unknown) = self
            .trust_policies()
            .keys()
            .find(|domain| !domains.contains(domain))
        {
            return Err(format!(
                "certificates.trust_policy.{unknown} names a domain that is not in certificates.allowed_domains"
            ));
        }
        if !(1024 * 1024..=16 * 1024 * 1024 * 1024).contains(&self.certificates.verify_cache_bytes)
        {
            return Err("certificates.verify_cache_bytes must be between 1 MiB and 16 GiB".into());
        }
        if !(100..=600_000).contains(&self.certificates.trust_refresh_interval_ms) {
            return Err(
                "certificates.trust_refresh_interval_ms must be between 100 and 600000".into(),
            );
        }
        for (key, value) in [
            (
                "platform.root_certificate_file",
                &self.platform.root_certificate_file,
            ),
            (
                "platform.signing_certificate_file",
                &self.platform.signing_certificate_file,
            ),
            ("platform.signing_key_file", &self.platform.signing_key_file),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{key} must be set"));
            }
        }
        if self.platform.generate && !self.platform.signing_key_label.trim().is_empty() {
            return Err(
                "platform.generate must be false when the signing key is in the HSM".into(),
            );
        }
        Ok(())
    }
}

pmp_common::service_settings!(CertStoreSettings, ENV_PREFIX, DEFAULTS);

#[cfg(test)]
mod tests {
    use super::*;
    use pmp_common::config;

    #[test]
    fn defaults_are_valid() {
        let settings: CertStoreSettings =
            config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))
                .expect("valid defaults");
        assert_eq!(settings.domains(), ["FTM", "DEVICE", "AUTH"]);
    }

    #[test]
    fn domains_from_environment() {
        let environment = [(
            "PMP_CERTSTORE__CERTIFICATES__ALLOWED_DOMAINS".to_owned(),
            "ftm,device".to_owned(),
        )];
        let settings: CertStoreSettings = config::load_with_env(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(environment.into_iter().collect()),
        )
        .expect("valid");
        assert_eq!(settings.domains(), ["FTM", "DEVICE"]);
    }

    #[test]
    fn trust_policy_per_domain_from_environment_any_case() {
        let environment = [
            (
                "PMP_CERTSTORE__CERTIFICATES__TRUST_POLICY__FTM".to_owned(),
                "chain".to_owned(),
            ),
            (
                "PMP_CERTSTORE__CERTIFICATES__TRUST_POLICY__device".to_owned(),
                "registered".to_owned(),
            ),
        ];
        let settings: CertStoreSettings = config::load_with_env(
            ENV_PREFIX,
            DEFAULTS,
            None,
            Some(environment.into_iter().collect()),
        )
        .expect("valid");
        let policies = settings.trust_policies();
        assert_eq!(policies.get("FTM"), Some(&TrustPolicy::Chain));
        assert_eq!(policies.get("DEVICE"), Some(&TrustPolicy::Registered));
        assert_eq!(policies.get("AUTH"), None, "unlisted domains default");
        let trust = settings.trust_settings();
        assert_eq!(
            trust.policies.get("AUTH").copied().unwrap_or_default(),
            TrustPolicy::Registered
        );
    }

    #[test]
    fn trust_policy_refuses_unknown_domains_and_values() {
        for (key, value) in [
            (
                "PMP_CERTSTORE__CERTIFICATES__TRUST_POLICY__PASSPORT",
                "chain",
            ),
            ("PMP_CERTSTORE__CERTIFICATES__TRUST_POLICY__FTM", "anything"),
        ] {
            let environment = [(key.to_owned(), value.to_owned())];
            let loaded: Result<CertStoreSettings, _> = config::load_with_env(
                ENV_PREFIX,
                DEFAULTS,
                None,
                Some(environment.into_iter().collect()),
            );
            assert!(loaded.is_err(), "{key}={value} must be refused");
        }
    }
}
