//! SoftHSM2 tokens for tests: each [`SoftHsm`] is a fresh token with its own PIN file, in
//! the token directory named by `SOFTHSM2_CONF` (the workspace's `.cargo/config.toml` points
//! it at `target/softhsm/`), so every process of a test run, services included, sees it.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Public};

use super::{HsmSettings, KeyAlgorithm, SigningError};

/// Where Debian and others install SoftHSM2's PKCS#11 module.
const MODULE_CANDIDATES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// SoftHSM2's module: `PMP_TEST_PKCS11_MODULE`, else the first installed candidate.
pub fn module_path() -> Option<String> {
    if let Ok(module) = std::env::var("PMP_TEST_PKCS11_MODULE") {
        return Some(module);
    }
    MODULE_CANDIDATES
        .iter()
        .find(|candidate| Path::new(candidate).exists())
        .map(|candidate| (*candidate).to_owned())
}

/// A fresh SoftHSM2 token with a user PIN.
#[derive(Debug)]
pub struct SoftHsm {
    /// How a service reaches the token.
    pub settings: HsmSettings,
    /// The token's directory (holds every token of the test run).
    pub token_directory: PathBuf,
}

impl SoftHsm {
    /// Initialises a new token labelled uniquely. Fails with a clear message when SoftHSM2
    /// is not installed (`apt-get install softhsm2`) or `SOFTHSM2_CONF` is not set.
    pub fn start() -> anyhow::Result<SoftHsm> {
        let module = module_path().ok_or_else(|| {
            anyhow::anyhow!("SoftHSM2 is not installed: apt-get install softhsm2")
        })?;
        let configuration = std::env::var("SOFTHSM2_CONF").map_err(|_| {
            anyhow::anyhow!("SOFTHSM2_CONF is not set (run the tests through cargo)")
        })?;
        let configuration = PathBuf::from(configuration);
        let root = configuration
            .parent()
            .ok_or_else(|| anyhow::anyhow!("SOFTHSM2_CONF names no directory"))?;
        let token_directory = root.join("tokens");
        std::fs::create_dir_all(&token_directory)?;
        if !configuration.exists() {
            let text = format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_directory.display()
            );
            // Written to a temporary name and renamed: test processes start together.
            let temporary = root.join(format!("softhsm2.conf.{}", std::process::id()));
            std::fs::write(&temporary, text)?;
            std::fs::rename(&temporary, &configuration)?;
        }
        let token_label = format!("pmp-test-{}", hex::encode(rand::random::<[u8; 6]>()));
        let user_pin = hex::encode(rand::random::<[u8; 8]>());
        super::pkcs11::initialise_token(&module, &token_label, "so-pin-for-tests", &user_pin)?;
        let pin_file = root.join(format!("{token_label}.pin"));
        std::fs::write(&pin_file, format!("{user_pin}\n"))?;
        Ok(SoftHsm {
            settings: HsmSettings {
                module,
                token_label,
                pin_file: pin_file.display().to_string(),
            },
            token_directory,
        })
    }

    /// Generates a key pair labelled `label` in the token.
    pub fn generate(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<PKey<Public>, SigningError> {
        super::generate_key_pair(&self.settings, label, algorithm)
    }

    /// The same token with a PIN file holding a wrong PIN.
    pub fn with_wrong_pin(&self) -> anyhow::Result<HsmSettings> {
        let path = PathBuf::from(&self.settings.pin_file).with_extension("wrong.pin");
        std::fs::write(&path, "not-the-pin\n")?;
        Ok(HsmSettings {
            pin_file: path.display().to_string(),
            ..self.settings.clone()
        })
    }
}
