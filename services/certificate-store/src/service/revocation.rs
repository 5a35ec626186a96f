//! Revocation (`RevokeCertificate`) and the CRL of each domain's revoked platform-signed
//! copies (`GetCrl`).

use chrono::{DateTime, Utc};
use openssl::bn::BigNum;
use openssl::x509::X509;

use pmp_common::auth::Caller;

use super::{CertificateStoreService, CrlRequest, Revoke, authorize, blocking};
use crate::domain::{AuditEvent, CertificateKind, Revocation};
use crate::error::StoreError;
use crate::x509::{CrlValidity, RevokedEntry};

/// A signed CRL and what it says.
#[derive(Debug, Clone)]
pub(crate) struct Crl {
    pub(crate) der: Vec<u8>,
    pub(crate) this_update: DateTime<Utc>,
    pub(crate) next_update: DateTime<Utc>,
    pub(crate) revoked_count: usize,
}

/// A recorded revocation and the trust-store version it moved to.
#[derive(Debug, Clone)]
pub(crate) struct Revoked {
    pub(crate) revocation: Revocation,
    pub(crate) version: i64,
}

impl CertificateStoreService {
    /// Revokes a CA or a stored partner/FTM certificate for good, and brings the trust
    /// store up to it before answering (with the version of the revocation).
    pub(crate) async fn revoke(
        &self,
        caller: &Caller,
        request: Revoke,
    ) -> Result<Revoked, StoreError> {
        authorize(caller, &request)?;
        let (partner_domain, identity, kind, serial_number) =
            self.revocation_target(&request.certificate_id).await?;
        let revocation = Revocation {
            partner_domain,
            identity,
            certificate_id: request.certificate_id,
            kind,
            serial_number,
            reason: request.reason,
            comment: request.comment,
            revoked_by: caller.actor(),
            revoked_at: Utc::now(),
        };
        let audit = AuditEvent::now(
            &caller.actor(),
            "CERTIFICATE_REVOKED",
            &revocation.certificate_id,
            None,
            Some(&format!("reason {}", revocation.reason.code())),
        );
        let version = self.repository.revoke(&revocation, audit).await?;
        self.trust.refresh().await?;
        tracing::info!(
            certificate_id = %revocation.certificate_id,
            domain = %revocation.partner_domain,
            reason = revocation.reason.code(),
            "certificate revoked"
        );
        Ok(Revoked {
            revocation,
            version,
        })
    }

    /// The domain, identity, kind and platform copy's serial of the certificate `id` names.
    async fn revocation_target(
        &self,
        certificate_id: &str,
    ) -> Result<(String, String, CertificateKind, String), StoreError> {
        if let Some(ca) = self.repository.find_ca(certificate_id).await? {
            return Ok((
                ca.partner_domain,
                ca.identity,
                CertificateKind::Ca,
                String::new(),
            ));
        }
        let stored = self
            .repository
            .find_partner_certificate(certificate_id)
            .await?
            .ok_or(StoreError::CertificateNotFound)?;
        let copy = stored.platform_signed_pem.clone();
        let serial = blocking(move || {
            let copy = X509::from_pem(copy.as_bytes()).map_err(|error| {
                StoreError::Internal(format!("stored copy unreadable: {error}"))
            })?;
            let serial = copy
                .serial_number()
                .to_bn()
                .map_err(crate::x509::CertError::from)?;
            Ok(serial
                .to_hex_str()
                .map_err(crate::x509::CertError::from)?
                .to_string())
        })
        .await?;
        Ok((
            stored.partner_domain,
            stored.identity,
            CertificateKind::of_owner(&stored.owner),
            serial,
        ))
    }

    /// The domain's CRL: every revoked platform-signed copy the active signing key issued,
    /// signed by that key.
    pub(crate) async fn crl(
        &self,
        caller: &Caller,
        request: CrlRequest,
    ) -> Result<Crl, StoreError> {
        authorize(caller, &request)?;
        let domain = self.domain(&request.partner_domain)?;
        let copies = self.repository.revoked_copies(&domain).await?;
        let signer = self.platform.signer();
        let validity_hours = i64::try_from(self.crl_validity_hours).unwrap_or(24 * 365);
        let number = u64::try_from(self.repository.trust_version().await?).unwrap_or(0);
        blocking(move || {
            let signing_key = signer
                .certificate
                .public_key()
                .map_err(crate::x509::CertError::from)?;
            let mut listed = Vec::new();
            for (revocation, pem) in &copies {
                let copy = X509::from_pem(pem.as_bytes()).map_err(crate::x509::CertError::from)?;
                // Only the active key's copies: a CRL speaks for one issuer.
                if copy.verify(&signing_key).unwrap_or(false) {
                    let serial: BigNum = copy
                        .serial_number()
                        .to_bn()
                        .map_err(crate::x509::CertError::from)?;
                    listed.push((serial, revocation.revoked_at, revocation.reason.code()));
                }
            }
            crate::x509::clear_error_queue();
            let entries: Vec<RevokedEntry<'_>> = listed
                .iter()
                .map(|(serial, revoked_at, reason)| RevokedEntry {
                    serial,
                    revoked_at: *revoked_at,
                    reason: *reason,
                })
                .collect();
            let this_update = Utc::now();
            let next_update = this_update + chrono::Duration::hours(validity_hours);
            let der = signer.sign_crl(
                &entries,
                CrlValidity {
                    this_update,
                    next_update,
                    number,
                },
            )?;
            Ok(Crl {
                der,
                this_update,
                next_update,
                revoked_count: entries.len(),
            })
        })
        .await
    }
}
