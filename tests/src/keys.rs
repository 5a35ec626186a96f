//! The private keys of an end-to-end platform: PEM files the harness writes (the default),
//! or key pairs it generates inside a PKCS#11 token, of which only public keys and
//! certificates reach the platform's directory.

use std::path::{Path, PathBuf};

use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::signing::{HsmSettings, KeyAlgorithm, generate_key_pair};

/// Label of the registry's token signing key in the token.
const TOKEN_KEY_LABEL: &str = "registry-tokens";
/// Label of the platform signing key in the token.
const PLATFORM_KEY_LABEL: &str = "platform-signing";

/// Where the keys are.
enum Where {
    Files(ServiceKeyFiles),
    Hsm {
        settings: HsmSettings,
        public_keys_dir: PathBuf,
    },
}

/// The keys of one platform, and the environment that hands them to each service.
pub(crate) struct Keys {
    root: PathBuf,
    place: Where,
}

type Environment = Vec<(&'static str, String)>;

fn identity_label(service: &str) -> String {
    format!("{service}-identity")
}

impl Keys {
    /// Key files under `root`.
    pub(crate) fn files(root: &Path) -> anyhow::Result<Keys> {
        Ok(Keys {
            root: root.to_owned(),
            place: Where::Files(ServiceKeyFiles::generate(&root.join("identities"))?),
        })
    }

    /// Key pairs generated in the token of `hsm`; the services' public keys under `root`.
    pub(crate) fn in_hsm(root: &Path, hsm: &HsmSettings) -> anyhow::Result<Keys> {
        let public_keys_dir = root.join("service-keys");
        std::fs::create_dir_all(&public_keys_dir)?;
        for service in pmp_common::auth::PLATFORM_SERVICES {
            let public = generate_key_pair(hsm, &identity_label(service), KeyAlgorithm::EcP256)?;
            std::fs::write(
                public_keys_dir.join(format!("{service}.pem")),
                public.public_key_to_pem()?,
            )?;
        }
        generate_key_pair(hsm, TOKEN_KEY_LABEL, KeyAlgorithm::EcP256)?;
        Ok(Keys {
            root: root.to_owned(),
            place: Where::Hsm {
                settings: hsm.clone(),
                public_keys_dir,
            },
        })
    }

    /// The service identity (and, with an HSM, the token's settings) of `service`.
    pub(crate) fn identity(&self, service: &str) -> Environment {
        match &self.place {
            Where::Files(files) => vec![
                (
                    "SERVICE_IDENTITY__PRIVATE_KEY_FILE",
                    files.private_key_file(service).display().to_string(),
                ),
                ("SERVICE_IDENTITY__GENERATE_KEY", "false".to_owned()),
                (
                    "SERVICE_IDENTITY__PUBLIC_KEYS_DIR",
                    files.public_keys_dir.display().to_string(),
                ),
            ],
            Where::Hsm {
                settings,
                public_keys_dir,
            } => vec![
                (
                    "SERVICE_IDENTITY__PRIVATE_KEY_LABEL",
                    identity_label(service),
                ),
                ("SERVICE_IDENTITY__GENERATE_KEY", "false".to_owned()),
                (
                    "SERVICE_IDENTITY__PUBLIC_KEYS_DIR",
                    public_keys_dir.display().to_string(),
                ),
                ("HSM__MODULE", settings.module.clone()),
                ("HSM__TOKEN_LABEL", settings.token_label.clone()),
                ("HSM__PIN_FILE", settings.pin_file.clone()),
            ],
        }
    }

    /// The registry's token signing key.
    pub(crate) fn token_key(&self) -> Environment {
        match &self.place {
            Where::Files(_) => vec![(
                "TOKENS__SIGNING_KEY_FILE",
                self.root.join("registry-key.pem").display().to_string(),
            )],
            Where::Hsm { .. } => vec![
                ("TOKENS__SIGNING_KEY_LABEL", TOKEN_KEY_LABEL.to_owned()),
                ("TOKENS__GENERATE_SIGNING_KEY", "false".to_owned()),
            ],
        }
    }

    /// The platform root, signing certificate and signing key of the certificate store.
    pub(crate) fn platform_key(&self) -> anyhow::Result<Environment> {
        match &self.place {
            Where::Files(_) => {
                let [root, certificate, key] =
                    certificate_store::testing::provision_platform_pki(&self.root)?;
                Ok(vec![
                    ("PLATFORM__ROOT_CERTIFICATE_FILE", root),
                    ("PLATFORM__SIGNING_CERTIFICATE_FILE", certificate),
                    ("PLATFORM__SIGNING_KEY_FILE", key),
                ])
            }
            Where::Hsm { settings, .. } => {
                let public = generate_key_pair(
                    settings,
                    PLATFORM_KEY_LABEL,
                    KeyAlgorithm::Rsa { bits: 3072 },
                )?;
                let [root, certificate] =
                    certificate_store::testing::provision_platform_pki_for(&self.root, &public)?;
                Ok(vec![
                    ("PLATFORM__ROOT_CERTIFICATE_FILE", root),
                    ("PLATFORM__SIGNING_CERTIFICATE_FILE", certificate),
                    ("PLATFORM__SIGNING_KEY_LABEL", PLATFORM_KEY_LABEL.to_owned()),
                ])
            }
        }
    }
}
