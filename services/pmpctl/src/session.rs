//! The access token between invocations: saved by `login` in the user's configuration
//! directory, readable only by the user (0600, like an SSH key), and what the token says
//! about its holder (decoded locally for `whoami` and default partner ids; the services
//! verify it, never pmpctl).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::failure::CliError;

/// Name of the token file in pmpctl's configuration directory.
const TOKEN_FILE: &str = "token";

/// The token file's location.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The token file in `directory`.
    pub fn in_directory(directory: &Path) -> Self {
        TokenFile {
            path: directory.join(TOKEN_FILE),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `token` atomically (temporary file then rename), readable only by the user;
    /// the directory is created private to the user when missing.
    pub fn save(&self, token: &str) -> Result<(), CliError> {
        let directory = self
            .path
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{} has no directory", self.path.display()))?;
        create_private_directory(directory)?;
        // NamedTempFile creates its file with mode 0600 on Unix.
        let mut file = tempfile::NamedTempFile::new_in(directory)
            .with_context(|| format!("cannot write in {}", directory.display()))?;
        writeln!(file, "{token}").context("cannot write the token")?;
        file.as_file()
            .sync_all()
            .context("cannot write the token")?;
        file.persist(&self.path)
            .with_context(|| format!("cannot save the token to {}", self.path.display()))?;
        restrict_to_owner(&self.path)?;
        Ok(())
    }

    /// The saved token, if there is one.
    pub fn load(&self) -> Result<Option<String>, CliError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text.trim().to_owned()).filter(|token| !token.is_empty())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(CliError::Local(anyhow::anyhow!(
                "cannot read the token file {}: {error}",
                self.path.display()
            ))),
        }
    }

    /// Deletes the file; `false` when there was none.
    pub fn remove(&self) -> Result<bool, CliError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(CliError::Local(anyhow::anyhow!(
                "cannot delete the token file {}: {error}",
                self.path.display()
            ))),
        }
    }
}

#[cfg(unix)]
fn create_private_directory(directory: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    Ok(())
}

#[cfg(not(unix))]
fn create_private_directory(directory: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    Ok(())
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> Result<(), CliError> {
    Ok(())
}

/// The claims pmpctl reads from an access token (registry tokens and Keycloak tokens).
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub realm_access: Option<RealmAccess>,
}

/// Keycloak's `realm_access` claim.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
pub struct RealmAccess {
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    /// Decodes the payload of a JWT without verifying it: good enough to say who the token
    /// is for, never to decide anything (the services do that).
    pub fn decode(token: &str) -> Option<Claims> {
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The partner id of the holder: `preferred_username`, else `sub` (as the services read it).
    pub fn partner_id(&self) -> Option<&str> {
        self.preferred_username
            .as_deref()
            .or(self.sub.as_deref())
            .filter(|id| !id.is_empty())
    }

    /// The `roles` claim and Keycloak realm roles, without duplicates.
    pub fn all_roles(&self) -> Vec<String> {
        let mut roles = self.roles.clone();
        for role in self.realm_access.iter().flat_map(|realm| &realm.roles) {
            if !roles.contains(role) {
                roles.push(role.clone());
            }
        }
        roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn decodes_registry_and_keycloak_claims() {
        let claims = Claims::decode(&token(
            r#"{"sub":"acme","exp":1,"roles":["FTM_PROVIDER"],"realm_access":{"roles":["X","FTM_PROVIDER"]}}"#,
        ))
        .expect("claims");
        assert_eq!(claims.partner_id(), Some("acme"));
        assert_eq!(claims.all_roles(), vec!["FTM_PROVIDER", "X"]);
        assert!(Claims::decode("not-a-token").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_private_and_removable() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().expect("tempdir");
        let file = TokenFile::in_directory(&directory.path().join("pmpctl"));
        file.save("abc").expect("save");
        file.save("def").expect("overwrite");
        let mode = std::fs::metadata(file.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(file.load().expect("load").as_deref(), Some("def"));
        assert!(file.remove().expect("remove"));
        assert!(!file.remove().expect("remove again"));
        assert_eq!(file.load().expect("load"), None);
    }
}
