//! The platform services as the portal calls them: generated tonic clients over lazily
//! connected channels, every call with the signed-in user's bearer token, a deadline and
//! the current trace context, and every failure decoded into a [`Failure`] the pages can
//! explain.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use pmp_common::client::BalancedChannel;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use crate::config::ServiceAddresses;

/// Which service a failure came from (the "unavailable" banner names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Partner registry.
    Registry,
    /// Certificate store.
    CertificateStore,
    /// FTM management.
    FtmManagement,
}

impl Service {
    /// The catalogue key of its name.
    pub fn name_key(self) -> &'static str {
        match self {
            Service::Registry => "service.registry",
            Service::CertificateStore => "service.certificate_store",
            Service::FtmManagement => "service.ftm_management",
        }
    }
}

/// A call that did not succeed, as the pages need it: the contract's reason, the fields it
/// concerns and, for a rate limit, when to try again. Never the raw message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The service that answered (or did not).
    pub service: Service,
    /// The gRPC code.
    pub code: Code,
    /// The contract's reason (`ErrorInfo.reason`), when the service gave one.
    pub reason: Option<String>,
    /// The request fields it concerns (`BadRequest` field violations).
    pub fields: Vec<String>,
    /// How long to wait before retrying (`RetryInfo`), for rate limits.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// Decodes `status` from `service`.
    pub fn from_status(service: Service, status: &Status) -> Failure {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .map(|info| info.reason.clone())
            .filter(|reason| !reason.is_empty());
        let fields = details
            .bad_request()
            .map(|request| {
                request
                    .field_violations
                    .iter()
                    .map(|violation| violation.field.clone())
                    .collect()
            })
            .unwrap_or_default();
        let retry_after = details
            .retry_info()
            .and_then(|info| info.retry_delay)
            .filter(|delay| !delay.is_zero());
        if !matches!(status.code(), Code::InvalidArgument | Code::NotFound) {
            tracing::info!(
                ?service,
                code = ?status.code(),
                reason = reason.as_deref().unwrap_or(""),
                message = status.message(),
                "a service refused or failed a portal call"
            );
        }
        Failure {
            service,
            code: status.code(),
            reason,
            fields,
            retry_after,
        }
    }

    /// Whether the user's session is no longer accepted (expired or revoked token).
    pub fn is_unauthenticated(&self) -> bool {
        self.code == Code::Unauthenticated
    }

    /// Whether the service could not be reached or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.code, Code::Unavailable | Code::DeadlineExceeded)
    }

    /// Whether the failure concerns `field`.
    pub fn concerns(&self, field: &str) -> bool {
        self.fields.iter().any(|concerned| concerned == field)
    }
}

/// Clients of the three services.
#[derive(Debug, Clone)]
pub struct Backend {
    registry: PartnerRegistryClient<BalancedChannel>,
    store: CertificateStoreClient<BalancedChannel>,
    ftm: FtmManagementClient<BalancedChannel>,
    deadline: Duration,
}

impl Backend {
    /// Channels to the services; nothing connects until the first call, so the portal
    /// starts (and shows a clear banner) while a service is down.
    pub fn connect(
        addresses: &ServiceAddresses,
        tls: &pmp_common::tls::TlsSettings,
    ) -> anyhow::Result<Backend> {
        let connect_timeout = Duration::from_secs(2);
        let client_tls = tls.client()?;
        let resolve_interval = Duration::from_millis(addresses.resolve_interval_ms);
        let channel = |name: &str, address: &str| {
            BalancedChannel::new(
                name,
                address,
                connect_timeout,
                client_tls.clone(),
                resolve_interval,
            )
        };
        Ok(Backend {
            registry: PartnerRegistryClient::new(channel("partner registry", &addresses.registry)?),
            store: CertificateStoreClient::new(channel(
                "certificate store",
                &addresses.certificate_store,
            )?),
            ftm: FtmManagementClient::new(channel("FTM management", &addresses.ftm_management)?),
            deadline: Duration::from_millis(addresses.deadline_ms),
        })
    }

    /// Calls the partner registry: `call` gets a client and the request (with `token`,
    /// deadline and trace context) and makes the call; a failure is decoded.
    pub async fn registry<T, R>(
        &self,
        token: Option<&str>,
        message: T,
        call: impl AsyncFnOnce(PartnerRegistryClient<BalancedChannel>, Request<T>) -> CallResult<R>,
    ) -> Result<R, Failure> {
        let request = self.request(message, token);
        answer(
            Service::Registry,
            call(self.registry.clone(), request).await,
        )
    }

    /// Calls the certificate store (see [`Backend::registry`]).
    pub async fn store<T, R>(
        &self,
        token: Option<&str>,
        message: T,
        call: impl AsyncFnOnce(CertificateStoreClient<BalancedChannel>, Request<T>) -> CallResult<R>,
    ) -> Result<R, Failure> {
        let request = self.request(message, token);
        answer(
            Service::CertificateStore,
            call(self.store.clone(), request).await,
        )
    }

    /// Calls FTM management (see [`Backend::registry`]).
    pub async fn ftm<T, R>(
        &self,
        token: Option<&str>,
        message: T,
        call: impl AsyncFnOnce(FtmManagementClient<BalancedChannel>, Request<T>) -> CallResult<R>,
    ) -> Result<R, Failure> {
        let request = self.request(message, token);
        answer(
            Service::FtmManagement,
            call(self.ftm.clone(), request).await,
        )
    }

    /// A request carrying `token` (when signed in), the deadline and the trace context.
    fn request<T>(&self, message: T, token: Option<&str>) -> Request<T> {
        let mut headers = http::HeaderMap::new();
        pmp_common::telemetry::inject_trace_headers(&mut headers);
        let mut request = Request::new(message);
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
        if let Some(token) = token
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            request.metadata_mut().insert("authorization", value);
        }
        request.set_timeout(self.deadline);
        request
    }
}

/// What a generated client's call returns.
pub type CallResult<R> = Result<tonic::Response<R>, Status>;

/// Turns a call's result into the answer or a [`Failure`] of `service`.
fn answer<T>(service: Service, result: CallResult<T>) -> Result<T, Failure> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| Failure::from_status(service, &status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_reason_fields_and_retry_delay() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "e-mail not valid",
            tonic_types::ErrorDetails::with_error_info("PMS_PRT_012", "pms.mosip.io", [])
                .add_bad_request_violation("email", "not an address")
                .to_owned(),
        );
        let failure = Failure::from_status(Service::Registry, &status);
        assert_eq!(failure.reason.as_deref(), Some("PMS_PRT_012"));
        assert!(failure.concerns("email"));
        assert!(!failure.is_unavailable());

        let limited = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(90))),
        );
        let failure = Failure::from_status(Service::Registry, &limited);
        assert_eq!(failure.retry_after, Some(Duration::from_secs(90)));

        let down = Failure::from_status(Service::FtmManagement, &Status::unavailable("down"));
        assert!(down.is_unavailable());
        assert_eq!(down.reason, None);
    }
}
