//! Helpers for tests of every service: throw-away keys, tokens of any shape, and service
//! identities provisioned as an operator would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::service_tokens::{PLATFORM_SERVICES, ServiceKeys, ServiceSigner};
use super::user_tokens::{Claims, TokenIssuer, UserTokenVerifier, VerificationKey, now_seconds};
use super::{Authenticator, ServiceAccess};

/// Issuer used by test tokens.
pub const TEST_ISSUER: &str = "pmp-test";
/// Audience used by test tokens.
pub const TEST_AUDIENCE: &str = "pmp";

/// A freshly generated P-256 key pair, as (private PKCS#8 PEM, public PEM).
pub fn generate_ec_key_pem() -> (String, String) {
    let private = crate::keys::generate_ec_private_key_pem().expect("EC key");
    let public = crate::keys::public_key_pem(&private).expect("public key");
    (String::from_utf8(private).expect("utf8"), public)
}

/// Signs test tokens and builds matching verifiers.
pub struct TestTokens {
    /// Signs tokens the verifiers accept.
    pub issuer: TokenIssuer,
    /// The issuer's public key.
    pub public_key_pem: String,
    /// An issuer with an unrelated key: its tokens must be refused.
    pub foreign_issuer: TokenIssuer,
}

impl Default for TestTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTokens {
    /// New keys.
    pub fn new() -> Self {
        let (private, public) = generate_ec_key_pem();
        let (foreign_private, _) = generate_ec_key_pem();
        let lifetime = Duration::from_secs(600);
        TestTokens {
            issuer: TokenIssuer::new(&private, &[], TEST_ISSUER, TEST_AUDIENCE, lifetime)
                .expect("issuer"),
            public_key_pem: public,
            foreign_issuer: TokenIssuer::new(
                &foreign_private,
                &[],
                TEST_ISSUER,
                TEST_AUDIENCE,
                lifetime,
            )
            .expect("issuer"),
        }
    }

    /// A verifier accepting these test tokens.
    pub fn verifier(&self) -> Arc<UserTokenVerifier> {
        let key = VerificationKey::from_pem(&self.public_key_pem).expect("key");
        Arc::new(UserTokenVerifier::new(
            TEST_ISSUER,
            TEST_AUDIENCE,
            30,
            vec![key],
            None,
        ))
    }

    /// An authenticator of service `service` accepting these tokens and the given services'
    /// tokens, with access table `access`.
    pub fn authenticator(
        &self,
        service: &str,
        services: &[&ServiceSigner],
        access: ServiceAccess,
    ) -> Arc<Authenticator> {
        let pems: Vec<(&str, &str)> = services
            .iter()
            .map(|signer| (signer.name(), signer.public_key_pem()))
            .collect();
        Authenticator::new(
            service,
            self.verifier(),
            Arc::new(ServiceKeys::from_pems(service, &pems).expect("service keys")),
            access,
        )
    }

    /// A valid token for `partner_id` with `roles`.
    pub fn token(&self, partner_id: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|role| role.to_string()).collect();
        self.issuer.issue(partner_id, &roles).expect("token")
    }

    /// A token whose times are shifted: `issued_offset` and `expires_offset` seconds from now.
    pub fn token_at(
        &self,
        partner_id: &str,
        roles: &[&str],
        issued_offset: i64,
        expires_offset: i64,
    ) -> String {
        let now = now_seconds() as i64;
        self.issuer
            .sign(&Claims {
                sub: partner_id.into(),
                preferred_username: Some(partner_id.into()),
                roles: roles.iter().map(|role| role.to_string()).collect(),
                iss: TEST_ISSUER.into(),
                aud: TEST_AUDIENCE.into(),
                iat: (now + issued_offset) as u64,
                nbf: Some((now + issued_offset) as u64),
                exp: (now + expires_offset) as u64,
                ..Claims::default()
            })
            .expect("token")
    }

    /// A token that expired ten minutes ago.
    pub fn expired_token(&self, partner_id: &str, roles: &[&str]) -> String {
        self.token_at(partner_id, roles, -1200, -600)
    }

    /// A token signed by a key the verifier does not know.
    pub fn foreign_token(&self, partner_id: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|role| role.to_string()).collect();
        self.foreign_issuer
            .issue(partner_id, &roles)
            .expect("token")
    }
}

/// The private keys of the platform's services and the directory of their public keys,
/// provisioned as an operator would before starting the services.
pub struct ServiceKeyFiles {
    /// Where the private keys are (`<service>.key.pem`).
    pub directory: PathBuf,
    /// The public keys, as `service_identity.public_keys_dir` expects them.
    pub public_keys_dir: PathBuf,
}

impl ServiceKeyFiles {
    /// Generates a key per platform service under `directory`.
    pub fn generate(directory: &Path) -> std::io::Result<Self> {
        let public_keys_dir = directory.join("service-keys");
        std::fs::create_dir_all(&public_keys_dir)?;
        for service in PLATFORM_SERVICES {
            let (private, public) = generate_ec_key_pem();
            std::fs::write(directory.join(format!("{service}-key.pem")), private)?;
            std::fs::write(public_keys_dir.join(format!("{service}.pem")), public)?;
        }
        Ok(ServiceKeyFiles {
            directory: directory.to_owned(),
            public_keys_dir,
        })
    }

    /// Keys generated earlier by [`ServiceKeyFiles::generate`] in `directory`.
    pub fn at(directory: &Path) -> Self {
        ServiceKeyFiles {
            directory: directory.to_owned(),
            public_keys_dir: directory.join("service-keys"),
        }
    }

    /// The private key file of `service`.
    pub fn private_key_file(&self, service: &str) -> PathBuf {
        self.directory.join(format!("{service}-key.pem"))
    }

    /// The identity of `service`, as that service signs its tokens.
    pub fn signer(&self, service: &str) -> ServiceSigner {
        let pem = std::fs::read(self.private_key_file(service)).expect("service key");
        ServiceSigner::from_pem(service, &pem).expect("signer")
    }
}

/// A signer for `service` with a fresh key nobody trusts.
pub fn untrusted_signer(service: &str) -> ServiceSigner {
    let (private, _) = generate_ec_key_pem();
    ServiceSigner::from_pem(service, private.as_bytes()).expect("signer")
}
