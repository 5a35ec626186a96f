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
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} stayed empty while another process was writing it")]
    Empty { path: String },
    #[error("cannot generate key material: {0}")]
    Generate(String),
}

/// Returns the file's contents, creating it with `generate()` (mode 0600) when it does not
/// exist. Returns `(contents, generated)`.
pub fn load_or_generate(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, String>,
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
    let contents = generate().map_err(KeyFileError::Generate)?;
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
pub fn generate_ec_private_key_pem() -> Result<Vec<u8>, String> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
        .map_err(|error| error.to_string())?;
    let key = openssl::ec::EcKey::generate(&group).map_err(|error| error.to_string())?;
    let pkey = openssl::pkey::PKey::from_ec_key(key).map_err(|error| error.to_string())?;
    pkey.private_key_to_pem_pkcs8()
        .map_err(|error| error.to_string())
}

/// The PEM public key of a PEM private key.
pub fn public_key_pem(private_key_pem: &[u8]) -> Result<String, String> {
    let key = openssl::pkey::PKey::private_key_from_pem(private_key_pem)
        .map_err(|error| error.to_string())?;
    let public = key.public_key_to_pem().map_err(|error| error.to_string())?;
    String::from_utf8(public).map_err(|error| error.to_string())
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
