//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on the blocking
//! thread pool, never on the async runtime's worker threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::RegistryError;

/// Hashes `password` into a PHC string (`$argon2id$...`).
pub async fn hash(password: String) -> Result<String, RegistryError> {
    tokio::task::spawn_blocking(move || {
        let mut salt_bytes = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt_bytes).map_err(|error| {
            RegistryError::Internal(format!("no randomness for the salt: {error}"))
        })?;
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|error| RegistryError::Internal(format!("salt encoding failed: {error}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| RegistryError::Internal(format!("password hashing failed: {error}")))
    })
    .await
    .map_err(|error| RegistryError::Internal(format!("hashing task failed: {error}")))?
}

/// Whether `password` matches the PHC string `hash`.
pub async fn verify(password: String, hash: String) -> Result<bool, RegistryError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|error| RegistryError::Internal(format!("stored hash unreadable: {error}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|error| RegistryError::Internal(format!("verification task failed: {error}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let hashed = hash("correct horse".into()).await.expect("hash");
        assert!(hashed.starts_with("$argon2id$"));
        assert!(
            verify("correct horse".into(), hashed.clone())
                .await
                .expect("verify")
        );
        assert!(!verify("wrong horse".into(), hashed).await.expect("verify"));
    }
}
