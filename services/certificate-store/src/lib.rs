//! Certificate store service: the CA trust store per partner domain, partner and FTM chip
//! certificates with their platform-signed copies, and the trust decision
//! (`VerifyCertificateTrust`, answered from memory).
//!
//! Trust model (see [`trust`]): a certificate is identified by the SHA-256 of its
//! `tbsCertificate` and held by one owner per domain; it is stored untrusted and trusted in
//! effect only while its owning service has marked it trusted (the registry once it has
//! recorded a partner certificate, ftm-management on approval) and its partner is not
//! deactivated. Under a domain's `registered` policy (the default) a certificate verifies
//! only if such a trusted certificate is on its validated path; under `chain` (MOSIP's rule)
//! a certificate the store has never seen is judged by its chain alone.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod convert;
pub mod domain;
pub mod error;
pub mod grpc;
mod service;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trust;
pub use pmp_trust::x509;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;

use certificate_store_migration::Migrator;
use pmp_common::auth::AuthInterceptor;
use pmp_common::bootstrap::{self, AuthenticatedBody, Context, PlatformService};
use pmp_common::keys;
use pmp_proto::certstore::v1::certificate_store_server::CertificateStoreServer;

use crate::config::{CertStoreSettings, PlatformSettings};
use crate::domain::KeyLocation;
use crate::grpc::SERVICE_CALLERS;
use crate::grpc::StoreGrpc;
use crate::service::{CertificateStoreService, PlatformKeys, ServiceParts, TrustFeed};
use crate::storage::{CertificateRepository, SqlCertificateRepository};
use crate::trust::TrustStore;
use crate::x509::{PlatformSigner, ValidationPolicy};

/// Name of this service in traces, logs and service tokens.
pub const SERVICE_NAME: &str = pmp_common::auth::CERTIFICATE_STORE;

/// The gRPC service as served: the store behind the authentication interceptor.
pub type CertStoreGrpcService =
    InterceptedService<CertificateStoreServer<StoreGrpc>, AuthInterceptor>;

/// The certificate store, as the shared bootstrap starts it.
#[derive(Default)]
pub struct CertificateStore;

impl PlatformService for CertificateStore {
    const NAME: &'static str = SERVICE_NAME;
    type Settings = CertStoreSettings;
    type Server = CertStoreGrpcService;
    type ResponseBody = AuthenticatedBody;
    type Migrator = Migrator;

    /// Loads the platform signer, the user-token keys (waiting for the registry) and the
    /// trust store, starts the trust-store poller, and builds the service.
    async fn build(
        self,
        settings: CertStoreSettings,
        context: Context,
    ) -> anyhow::Result<CertStoreGrpcService> {
        let signer = Arc::new(load_platform_signer(&settings.platform, &settings.hsm).await?);
        let authenticator = bootstrap::user_authenticator(
            SERVICE_NAME,
            &settings.user_tokens,
            &settings.service_identity,
            &settings.tls,
            SERVICE_CALLERS,
        )
        .await?;
        let repository: Arc<dyn CertificateRepository> =
            Arc::new(SqlCertificateRepository::new(context.connection));
        let domains = settings.domains();
        let trust = TrustStore::load(Arc::clone(&repository), settings.trust_settings()).await?;
        trust.spawn_poller(Duration::from_millis(
            settings.certificates.trust_refresh_interval_ms,
        ));
        trust::register_metrics(&trust, &context.metrics)?;
        let policy = ValidationPolicy {
            ca_min_validity_months: settings.certificates.ca_min_validity_months,
            partner_min_validity_days: i64::from(settings.certificates.partner_min_validity_days),
            ..ValidationPolicy::default()
        };
        let platform = PlatformKeys::start(
            Arc::clone(&repository),
            signer,
            configured_key_location(&settings.platform),
            String::from_utf8(keys::read(Path::new(
                &settings.platform.root_certificate_file,
            ))?)?,
            settings.hsm.clone(),
            Duration::from_millis(settings.certificates.trust_refresh_interval_ms),
        )
        .await?;
        let feed = Arc::new(TrustFeed::new(
            Arc::clone(&repository),
            Arc::clone(&trust),
            settings.feed.clone(),
            context.draining.clone(),
        ));
        service::spawn_pruner(
            Arc::clone(&repository),
            Duration::from_secs(settings.feed.retention_hours.saturating_mul(3600)),
            context.stop.clone(),
        );
        service::spawn_sweeper(
            Arc::clone(&repository),
            Duration::from_secs(settings.expiry.sweep_interval_seconds.max(1)),
            context.stop.clone(),
        );
        service::spawn_gauges(
            Arc::clone(&repository),
            &context.metrics,
            Duration::from_secs(settings.expiry.gauge_interval_seconds.max(1)),
            context.stop.clone(),
        )?;
        let parts = ServiceParts {
            platform,
            policy,
            domains,
            feed,
            crl_validity_hours: settings.crl.validity_hours,
        };
        let service = CertificateStoreService::new(repository, trust, parts);
        Ok(bootstrap::authenticated(
            CertificateStoreServer::new(StoreGrpc::new(service))
                .max_decoding_message_size(settings.server.max_message_bytes),
            authenticator,
        ))
    }
}

/// Where the configured platform signing key is.
fn configured_key_location(settings: &PlatformSettings) -> KeyLocation {
    let label = settings.signing_key_label.trim();
    if label.is_empty() {
        KeyLocation::File(settings.signing_key_file.clone())
    } else {
        KeyLocation::Hsm(label.to_owned())
    }
}

/// Loads the platform signing certificate and its key: the key pair labelled
/// `platform.signing_key_label` in the HSM (waiting while it is unreachable), or the key
/// file, a development platform PKI being generated on first start when allowed. A file key
/// is only ever in its 0600 file and in memory.
async fn load_platform_signer(
    settings: &PlatformSettings,
    hsm: &pmp_common::signing::HsmSettings,
) -> anyhow::Result<PlatformSigner> {
    let label = settings.signing_key_label.trim();
    if !label.is_empty() {
        let certificate = keys::read(Path::new(&settings.signing_certificate_file))?;
        let certificate = openssl::x509::X509::from_pem(&certificate).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a PEM certificate",
                settings.signing_certificate_file
            )
        })?;
        let key = pmp_common::signing::open_when_reachable(hsm, label, "the platform signing key")
            .await?;
        return Ok(PlatformSigner::new(certificate, key)?);
    }
    let certificate_path = Path::new(&settings.signing_certificate_file);
    let key_path = Path::new(&settings.signing_key_file);
    if settings.generate && !certificate_path.exists() && !key_path.exists() {
        let generated = PlatformSigner::generate()?;
        let root_pem = x509::pem_string(&generated.root_certificate)?;
        let certificate_pem = generated.signer.certificate_pem()?;
        let key_pem = generated.signer.private_key_pem()?;
        keys::load_or_generate(Path::new(&settings.root_certificate_file), || {
            Ok(root_pem.into_bytes())
        })?;
        keys::load_or_generate(certificate_path, || Ok(certificate_pem.into_bytes()))?;
        keys::load_or_generate(key_path, || Ok(key_pem.into_bytes()))?;
        tracing::warn!(
            certificate = %certificate_path.display(),
            key = %key_path.display(),
            "generated a development platform signing certificate; mount a real one in production"
        );
    }
    let certificate = String::from_utf8(keys::read(certificate_path)?)?;
    let key = String::from_utf8(keys::read(key_path)?)?;
    Ok(PlatformSigner::from_pem(&certificate, &key)?)
}
