//! TLS and mutual TLS on every listener and every client, from mounted PEM files.
//!
//! One identity per service serves both sides: its certificate (chain) and key are presented
//! to its clients and, on calls to other services, as its client certificate; the platform
//! CA (`ca_file`) verifies the other services' certificates. On the listener, `client_auth`
//! decides whether clients must present a certificate issued by that CA (`required`), may
//! (`optional`: end users and relying services with bearer tokens, services with
//! certificates) or are not asked (`none`).
//!
//! With mTLS a client certificate names a platform service — and is that service's identity,
//! no token needed — when it carries a URI SAN whose last path segment is the service's
//! name (a SPIFFE id such as `spiffe://pmp/ns/default/sa/ftm-management`) or a DNS SAN equal
//! to the name.

use openssl::x509::X509;
use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::auth::PLATFORM_SERVICES;

/// Whether the listener asks clients for certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificates.
    #[default]
    None,
    /// Clients may present a certificate of the platform CA.
    Optional,
    /// Clients must present a certificate of the platform CA.
    Required,
}

/// TLS of a service (all empty: plain text, for a single development machine).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// This service's certificate chain, PEM (served, and presented on outgoing calls).
    #[serde(default)]
    pub certificate_file: String,
    /// Its private key, PEM.
    #[serde(default)]
    pub key_file: String,
    /// The platform CA, PEM: verifies other services' certificates (as servers, and as
    /// clients when `client_auth` is not `none`).
    #[serde(default)]
    pub ca_file: String,
    /// Client certificates on this service's listener.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

impl TlsSettings {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.certificate_file.trim().is_empty()
    }

    /// Checks that the files are given together.
    pub fn validate(&self) -> Result<(), String> {
        let given = [&self.certificate_file, &self.key_file, &self.ca_file]
            .iter()
            .filter(|file| !file.trim().is_empty())
            .count();
        if given != 0 && given != 3 {
            return Err(
                "tls.certificate_file, tls.key_file and tls.ca_file must be set together".into(),
            );
        }
        if given == 0 && self.client_auth != ClientAuth::None {
            return Err("tls.client_auth needs tls.ca_file and a certificate".into());
        }
        Ok(())
    }

    fn read(path: &str) -> anyhow::Result<Vec<u8>> {
        std::fs::read(path).map_err(|error| anyhow::anyhow!("cannot read {path}: {error}"))
    }

    /// The listener's TLS configuration, if TLS is on.
    pub fn server(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        if !self.enabled() {
            return Ok(None);
        }
        let identity = Identity::from_pem(
            Self::read(&self.certificate_file)?,
            Self::read(&self.key_file)?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        if self.client_auth != ClientAuth::None {
            config = config
                .client_ca_root(Certificate::from_pem(Self::read(&self.ca_file)?))
                .client_auth_optional(self.client_auth == ClientAuth::Optional);
        }
        Ok(Some(config))
    }

    /// The client configuration for calls to other services, if TLS is on: the platform CA
    /// and this service's certificate as client identity.
    pub fn client(&self) -> anyhow::Result<Option<ClientTlsConfig>> {
        if !self.enabled() {
            return Ok(None);
        }
        Ok(Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(Self::read(&self.ca_file)?))
                .identity(Identity::from_pem(
                    Self::read(&self.certificate_file)?,
                    Self::read(&self.key_file)?,
                )),
        ))
    }
}

/// The platform service named by the request's verified client certificate, if any.
pub fn peer_service<T>(request: &tonic::Request<T>) -> Option<String> {
    let certificates = request.peer_certs()?;
    let leaf = X509::from_der(certificates.first()?.as_ref()).ok()?;
    service_of_certificate(&leaf)
}

/// The platform service a certificate names (see the module documentation).
pub fn service_of_certificate(certificate: &X509) -> Option<String> {
    let names = certificate.subject_alt_names()?;
    names.iter().find_map(|name| {
        let candidate = match (name.uri(), name.dnsname()) {
            (Some(uri), _) => uri.rsplit('/').next()?,
            (None, Some(dns)) => dns,
            (None, None) => return None,
        };
        PLATFORM_SERVICES
            .contains(&candidate)
            .then(|| candidate.to_owned())
    })
}
