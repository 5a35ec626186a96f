//! Secret material kept in files: loaded when configured, generated on first start otherwise.
//!
//! Private keys and secrets never go into a database column or a log line. Generated files
//! are created with mode 0600 and with `create_new`, so two processes starting at the same
//! time cannot overwrite each other's secret: the loser reads the winner's file.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// A secret file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file (or directory) exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file or its directory cannot be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Another process created the file but never wrote it.
    #[error("{path} stayed empty while another process was writing it")]
    Empty {
        /// The file.
        path: String,
    },
    /// Generating the material failed.
    #[error("cannot generate key material: {0}")]
    Generate(#[from] KeyError),
    /// The file holds something that is not a usable key.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: KeyError,
    },
}

/// Key material that is not usable: not a key, a key of a kind the platform does not use,
/// or a cryptographic library failing on it. Never carries the key itself.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a PEM key of the expected kind (named).
    #[error("{0} is not a PEM key")]
    NotPem(String),
    /// A well-formed key of a type or size the platform does not accept.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// OpenSSL failed on a key it had parsed.
    #[error("key encoding failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// The JWT library refused a key or could not sign.
    #[error("token library: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// A JWK or JWKS document that does not parse.
    #[error("not a JWK document: {0}")]
    Document(#[from] serde_json::Error),
    /// The key could not sign (an HSM unreachable) or is not usable.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
}

/// PEM output of OpenSSL as text (PEM is ASCII, so nothing is ever replaced).
pub fn pem_text(pem: Vec<u8>) -> String {
    String::from_utf8(pem)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Returns the file's contents, creating it with `generate()` (mode 0600) when it does not
/// exist. Returns `(contents, generated)`.
pub fn load_or_generate(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, KeyError>,
) -> Result<(Vec<u8>, bool), KeyFileError> {
    let display = path.display().to_string();
    if let Ok(contents) = read_complete(path) {
        return Ok((contents, false));
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| KeyFileError::Create {
            path: display.clone(),
            source,
        })?;
    }
    let contents = generate()?;
    match create_private(path) {
        Ok(mut file) => {
            file.write_all(&contents)
                .and_then(|()| file.sync_all())
                .map_err(|source| KeyFileError::Create {
                    path: display,
                    source,
                })?;
            Ok((contents, true))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            wait_for_contents(path).map(|contents| (contents, false))
        }
        Err(source) => Err(KeyFileError::Create {
            path: display,
            source,
        }),
    }
}

/// Reads a file that must exist.
pub fn read(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_complete(path: &Path) -> std::io::Result<Vec<u8>> {
    let contents = std::fs::read(path)?;
    if contents.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "empty",
        ));
    }
    Ok(contents)
}

/// Another process created the file a moment ago; give it time to finish writing.
fn wait_for_contents(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    for _ in 0..50 {
        if let Ok(contents) = read_complete(path) {
            return Ok(contents);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(KeyFileError::Empty {
        path: path.display().to_string(),
    })
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// A new P-256 private key as PKCS#8 PEM.
pub fn generate_ec_private_key_pem() -> Result<Vec<u8>, KeyError> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let key = openssl::ec::EcKey::generate(&group)?;
    Ok(openssl::pkey::PKey::from_ec_key(key)?.private_key_to_pem_pkcs8()?)
}

/// The PEM public key of a PEM private key.
pub fn public_key_pem(private_key_pem: &[u8]) -> Result<String, KeyError> {
    let key = openssl::pkey::PKey::private_key_from_pem(private_key_pem)
        .map_err(|_| KeyError::NotPem("the private key".into()))?;
    Ok(pem_text(key.public_key_to_pem()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/secret");
        let (first, generated) =
            load_or_generate(&path, generate_ec_private_key_pem).expect("generate");
        assert!(generated);
        let (second, generated) =
            load_or_generate(&path, generate_ec_private_key_pem).expect("load");
        assert!(!generated);
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn public_key_matches_private_key() {
        let private = generate_ec_private_key_pem().expect("key");
        let public = public_key_pem(&private).expect("public");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
