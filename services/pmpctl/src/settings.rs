//! Where pmpctl keeps its files and finds the services: flags and environment first (clap
//! reads both), then `config.toml` in the user's configuration directory, then the
//! platform's default local ports.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::failure::{CliError, Service};

/// Default partner registry address (its default listen port).
pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:50051";
/// Default certificate store address.
pub const DEFAULT_CERTSTORE: &str = "http://127.0.0.1:50052";
/// Default FTM management address.
pub const DEFAULT_FTM: &str = "http://127.0.0.1:50053";

/// Name of pmpctl's directory under the configuration home.
const APPLICATION_DIRECTORY: &str = "pmpctl";
/// Name of the configuration file in that directory.
const CONFIG_FILE: &str = "config.toml";

/// `$XDG_CONFIG_HOME/pmpctl`, or `~/.config/pmpctl` when XDG_CONFIG_HOME is unset or not
/// absolute (as the XDG base directory specification asks); `None` without either.
pub fn config_directory() -> Option<PathBuf> {
    let from_xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute());
    let base = from_xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
            .map(|home| home.join(".config"))
    })?;
    Some(base.join(APPLICATION_DIRECTORY))
}

/// The keys of `config.toml`; all optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub registry: Option<String>,
    pub certstore: Option<String>,
    pub ftm: Option<String>,
    /// CA certificate that verifies https:// services.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl FileSettings {
    /// Reads `explicit` (which must exist), or else the default file if there is one.
    pub fn load(explicit: Option<&Path>) -> Result<Self, CliError> {
        match explicit {
            Some(path) => Self::read(path, true),
            None => match config_directory() {
                Some(directory) => Self::read(&directory.join(CONFIG_FILE), false),
                None => Ok(FileSettings::default()),
            },
        }
    }

    fn read(path: &Path, required: bool) -> Result<Self, CliError> {
        let source = config::File::from(path)
            .format(config::FileFormat::Toml)
            .required(required);
        config::Config::builder()
            .add_source(source)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|error| {
                CliError::Usage(format!(
                    "configuration file {} is not valid: {error}",
                    path.display()
                ))
            })
    }

    /// The configured address of `service`, if any.
    pub fn address(&self, service: Service) -> Option<&str> {
        match service {
            Service::Registry => self.registry.as_deref(),
            Service::CertificateStore => self.certstore.as_deref(),
            Service::FtmManagement => self.ftm.as_deref(),
        }
    }
}

/// The built-in address of `service`.
pub fn default_address(service: Service) -> &'static str {
    match service {
        Service::Registry => DEFAULT_REGISTRY,
        Service::CertificateStore => DEFAULT_CERTSTORE,
        Service::FtmManagement => DEFAULT_FTM,
    }
}

/// Adds `http://` to a bare `host:port`, so that `--registry 127.0.0.1:50051` works too.
pub fn normalise_address(address: &str) -> String {
    let address = address.trim();
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_from_toml() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("config.toml");
        std::fs::write(
            &path,
            "registry = \"http://registry:1\"\nftm = \"ftm:3\"\nca_file = \"/etc/pmp/ca.pem\"\n",
        )
        .expect("write");
        let settings = FileSettings::load(Some(&path)).expect("load");
        assert_eq!(
            settings.address(Service::Registry),
            Some("http://registry:1")
        );
        assert_eq!(settings.address(Service::CertificateStore), None);
        assert_eq!(settings.address(Service::FtmManagement), Some("ftm:3"));
        assert_eq!(settings.ca_file, Some(PathBuf::from("/etc/pmp/ca.pem")));
        assert_eq!(settings.cert_file, None);
    }

    #[test]
    fn unknown_keys_and_missing_explicit_files_are_usage_errors() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("config.toml");
        std::fs::write(&path, "registy = \"x\"\n").expect("write");
        assert!(matches!(
            FileSettings::load(Some(&path)),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            FileSettings::load(Some(&directory.path().join("absent.toml"))),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn bare_host_port_gets_a_scheme() {
        assert_eq!(normalise_address("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalise_address(" http://h:2 "), "http://h:2");
    }
}
