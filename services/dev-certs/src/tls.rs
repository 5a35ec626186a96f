//! Throw-away TLS material for running the platform over mutual TLS in tests and on a
//! development machine: one CA, and per service a certificate that is both its server
//! certificate and its client identity.
//!
//! Each service certificate names the service the way the platform reads identities from
//! client certificates: a SPIFFE-style URI SAN ending in the service name
//! (`spiffe://pmp/<service>`) and a DNS SAN of the name, plus `localhost` and `127.0.0.1`
//! so that clients on the machine can verify the server.

use std::path::{Path, PathBuf};

use crate::{CertificateSpec, Issued, KeySpec, Result};

/// A CA and the certificates it issued, written as PEM files into one directory.
pub struct TlsFiles {
    /// Where the files are.
    pub directory: PathBuf,
    /// The CA (to issue further certificates in a test).
    pub ca: Issued,
}

impl TlsFiles {
    /// A new CA (`ca.pem`) and, for each of `services`, `<service>.pem` and
    /// `<service>-key.pem`, in `directory`.
    pub fn generate(directory: &Path, services: &[&str]) -> Result<TlsFiles> {
        std::fs::create_dir_all(directory)?;
        let ca = CertificateSpec::ca("PMP Development TLS CA")
            .organisation("PMP Development")
            .key(KeySpec::EcP256)
            .valid_from_days(-1)
            .valid_for_days(30)
            .self_signed()?;
        std::fs::write(directory.join("ca.pem"), ca.pem()?)?;
        let files = TlsFiles {
            directory: directory.to_owned(),
            ca,
        };
        for service in services {
            files.issue(
                service,
                &[
                    &format!("URI:spiffe://pmp/{service}"),
                    &format!("DNS:{service}"),
                    "DNS:localhost",
                    "IP:127.0.0.1",
                ],
            )?;
        }
        Ok(files)
    }

    /// Issues a certificate with subject CN `name` and the given subjectAltName entries
    /// (`DNS:…`, `IP:…`, `URI:…`) and writes `<name>.pem` and `<name>-key.pem`.
    pub fn issue(&self, name: &str, subject_alt_names: &[&str]) -> Result<Issued> {
        let mut spec = CertificateSpec::leaf(name)
            .organisation("PMP Development")
            .key(KeySpec::EcP256)
            .valid_from_days(-1)
            .valid_for_days(30)
            .for_tls();
        for entry in subject_alt_names {
            spec = spec.subject_alt_name(entry);
        }
        let issued = spec.issued_by(&self.ca)?;
        std::fs::write(self.certificate_file(name), issued.pem()?)?;
        std::fs::write(self.key_file(name), issued.key_pem()?)?;
        Ok(issued)
    }

    /// The CA's certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.directory.join("ca.pem")
    }

    /// The certificate file of `name`.
    pub fn certificate_file(&self, name: &str) -> PathBuf {
        self.directory.join(format!("{name}.pem"))
    }

    /// The private key file of `name`.
    pub fn key_file(&self, name: &str) -> PathBuf {
        self.directory.join(format!("{name}-key.pem"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_certificates_name_the_service_and_verify_against_the_ca() {
        let directory = std::env::temp_dir().join(format!("pmp-tls-{}", std::process::id()));
        let files = TlsFiles::generate(&directory, &["ftm-management"]).expect("files");
        let pem = std::fs::read(files.certificate_file("ftm-management")).expect("pem");
        let certificate = openssl::x509::X509::from_pem(&pem).expect("certificate");
        let names: Vec<String> = certificate
            .subject_alt_names()
            .expect("SANs")
            .iter()
            .map(|name| {
                name.uri()
                    .or(name.dnsname())
                    .map(str::to_owned)
                    .or(name.ipaddress().map(|ip| format!("{ip:?}")))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(names[0], "spiffe://pmp/ftm-management");
        assert_eq!(names[1], "ftm-management");
        assert_eq!(names[2], "localhost");
        assert_eq!(names[3], "[127, 0, 0, 1]");
        let ca_key = files.ca.certificate.public_key().expect("key");
        assert!(certificate.verify(&ca_key).expect("verify"));
        std::fs::remove_dir_all(&directory).expect("clean up");
    }
}
