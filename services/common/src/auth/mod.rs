//! Authentication and authorisation of callers: end users with tokens, and platform
//! services with their own identity.
//!
//! * End users present JWTs issued by the partner registry (`Login`) or, in production, by
//!   an OpenID Connect issuer such as Keycloak ([`user_tokens`]). Roles come from the `roles`
//!   claim and from Keycloak's `realm_access.roles`; the partner id is `preferred_username`,
//!   else `sub`.
//! * Platform services call each other with short-lived tokens signed by their own key
//!   ([`service_tokens`]), or, with mTLS, with a client certificate naming the service. They
//!   forward the end user's token in [`FORWARDED_USER_HEADER`] for audit and for the user
//!   RPCs they call on the user's behalf.
//! * Each service declares, in one [`ServiceAccess`] table, which services may call which of
//!   its RPCs. A service calling any other RPC — and its forwarded user — is refused with
//!   `PERMISSION_DENIED` `KER-ATH-403`, whatever token it holds.
//!
//! A tonic interceptor ([`AuthInterceptor`]) verifies signatures as a request arrives; the
//! handler then asks for its [`Caller`] with [`caller`], naming its RPC, which applies the
//! service table and fetches rotated user-token keys when a token names an unknown one.

pub mod service_tokens;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod user_tokens;
mod verified;

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

pub use service_tokens::{
    CERTIFICATE_STORE, FTM_MANAGEMENT, PARTNER_REGISTRY, PLATFORM_SERVICES, ServiceKeys,
    ServiceSigner, is_service_token,
};
pub use user_tokens::{
    Claims, KeySource, RealmAccess, TokenIssuer, UserTokenError, UserTokenVerifier, VerificationKey,
};

use crate::error;
use crate::security::{self, SecurityEventKind};

/// Role of platform administrators.
pub const ROLE_PARTNER_ADMIN: &str = "PARTNER_ADMIN";
/// Metadata key carrying the end user's bearer token on service-to-service calls.
pub const FORWARDED_USER_HEADER: &str = "x-pms-user-token";

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that do not verify (`KER-ATH-401`).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the role, ownership or service permission (`KER-ATH-403`).
    #[error("the caller is not allowed to perform this action")]
    PermissionDenied,
}

impl error::ServiceError for AuthError {
    fn disclosure(&self) -> error::Disclosure<'_> {
        match self {
            AuthError::Unauthenticated(_) => error::Disclosure::client(
                tonic::Code::Unauthenticated,
                error::REASON_UNAUTHENTICATED,
            ),
            AuthError::PermissionDenied => error::Disclosure::client(
                tonic::Code::PermissionDenied,
                error::REASON_PERMISSION_DENIED,
            ),
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        error::status_of(&error)
    }
}

/// An authenticated end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The partner id (`preferred_username`, else `sub`).
    pub partner_id: String,
    /// Upper-case role names.
    pub roles: Vec<String>,
    /// The raw bearer token, forwarded on calls to other platform services.
    pub token: String,
}

impl User {
    /// Whether the user holds `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| held.eq_ignore_ascii_case(role))
    }

    /// Whether the user is a platform administrator.
    pub fn is_admin(&self) -> bool {
        self.has_role(ROLE_PARTNER_ADMIN)
    }

    /// Ownership rule of the contract: admins may act on any partner, others on their own.
    pub fn may_act_for(&self, partner_id: &str) -> bool {
        self.is_admin() || self.partner_id == partner_id
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user with their own token.
    User(User),
    /// A platform service allowed to call this RPC, possibly acting for an end user.
    Service {
        /// The calling service's name, e.g. `ftm-management`.
        name: String,
        /// The end user on whose behalf the service calls, when it forwarded one.
        on_behalf_of: Option<User>,
    },
}

impl Caller {
    /// A short name for audit records: the partner id, or `service:<name>[/<partner id>]`.
    pub fn actor(&self) -> String {
        match self {
            Caller::User(user) => user.partner_id.clone(),
            Caller::Service {
                name,
                on_behalf_of: Some(user),
            } => {
                format!("{}@service:{name}", user.partner_id)
            }
            Caller::Service {
                name,
                on_behalf_of: None,
            } => format!("service:{name}"),
        }
    }

    /// The end user, if the caller is one or acts for one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::User(user) => Some(user),
            Caller::Service { on_behalf_of, .. } => on_behalf_of.as_ref(),
        }
    }

    /// The calling service's name, if the caller is a service.
    pub fn service(&self) -> Option<&str> {
        match self {
            Caller::Service { name, .. } => Some(name),
            Caller::User(_) => None,
        }
    }

    /// Whether the caller is a platform service.
    pub fn is_service(&self) -> bool {
        matches!(self, Caller::Service { .. })
    }

    /// `PERMISSION_DENIED` for this caller, recorded as a security event.
    pub fn denied(&self) -> AuthError {
        security::record(SecurityEventKind::PermissionDenied, &self.actor());
        AuthError::PermissionDenied
    }

    /// Admin-only RPCs: an end user holding `PARTNER_ADMIN`.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        match self {
            Caller::User(user) if user.is_admin() => Ok(()),
            _ => Err(self.denied()),
        }
    }

    /// Owner-or-admin RPCs. A platform service allowed to call the RPC has authorised its own
    /// caller, so it may read and act on any partner's records.
    pub fn require_owner_or_admin(&self, partner_id: &str) -> Result<(), AuthError> {
        match self {
            Caller::User(user) if user.may_act_for(partner_id) => Ok(()),
            Caller::Service { .. } => Ok(()),
            _ => Err(self.denied()),
        }
    }

    /// RPCs for administrators and the platform services allowed to call them (the
    /// service's `SERVICE_CALLERS` says which), whoever they act for.
    pub fn require_admin_or_service(&self) -> Result<(), AuthError> {
        match self {
            Caller::User(user) if user.is_admin() => Ok(()),
            Caller::Service { .. } => Ok(()),
            _ => Err(self.denied()),
        }
    }

    /// Internal RPCs that only platform services may call.
    pub fn require_service(&self) -> Result<(), AuthError> {
        if self.is_service() {
            Ok(())
        } else {
            Err(self.denied())
        }
    }
}

/// Which platform services may call which RPCs of a service: `(RPC name, services)`. RPCs
/// not listed accept no service caller. Declared once per service, next to its API.
#[derive(Debug, Clone, Copy)]
pub struct ServiceAccess(pub &'static [(&'static str, &'static [&'static str])]);

impl ServiceAccess {
    /// Whether `service` may call `rpc`.
    pub fn allows(&self, rpc: &str, service: &str) -> bool {
        self.0
            .iter()
            .any(|(name, services)| *name == rpc && services.contains(&service))
    }
}

/// Outcome of looking at a request's credentials; stored in the request extensions.
#[derive(Debug, Clone)]
enum Authentication {
    /// No credentials.
    Anonymous,
    /// A valid user token.
    User(User),
    /// A user token naming a key not loaded (yet): checked again after a key refresh.
    UnknownUserKey(String),
    /// A valid service identity, with the user token it forwarded (not verified yet).
    Service {
        name: String,
        forwarded: Option<String>,
    },
    /// Credentials were present but not acceptable (the reason goes to the log only).
    Rejected {
        reason: String,
        kind: SecurityEventKind,
    },
}

/// Everything that decides who a caller of this service is.
pub struct Authenticator {
    /// This service's name: the audience of service tokens addressed to it.
    service: String,
    users: Arc<UserTokenVerifier>,
    services: Arc<ServiceKeys>,
    access: ServiceAccess,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The authenticator of service `service`.
    pub fn new(
        service: &str,
        users: Arc<UserTokenVerifier>,
        services: Arc<ServiceKeys>,
        access: ServiceAccess,
    ) -> Arc<Self> {
        Arc::new(Authenticator {
            service: service.to_owned(),
            users,
            services,
            access,
        })
    }

    /// The user-token verifier.
    pub fn users(&self) -> &Arc<UserTokenVerifier> {
        &self.users
    }

    fn authenticate(
        &self,
        metadata: &MetadataMap,
        certificate_service: Option<String>,
    ) -> Authentication {
        let Some(value) = metadata.get("authorization") else {
            return match certificate_service {
                Some(name) => Authentication::Service {
                    name,
                    forwarded: forwarded_token(metadata),
                },
                None => Authentication::Anonymous,
            };
        };
        let Some(token) = value.to_str().ok().and_then(bearer_token) else {
            return rejected(
                "authorization is not a bearer token",
                SecurityEventKind::TokenRejected,
            );
        };
        // A user token seen before is answered first, without parsing its header: this
        // is every call on a relying service's hot path.
        if let Some(user) = self.users.verified_before(token) {
            return Authentication::User(user);
        }
        // Likewise a service token seen before: every internal call after a caller's first.
        if let Some(name) = self.services.verified_before(token) {
            return Authentication::Service {
                name,
                forwarded: forwarded_token(metadata),
            };
        }
        if is_service_token(token) {
            return match self.services.verify(token) {
                Ok(name) => Authentication::Service {
                    name,
                    forwarded: forwarded_token(metadata),
                },
                Err(reason) => rejected(
                    &reason.to_string(),
                    SecurityEventKind::ServiceIdentityRefused,
                ),
            };
        }
        match self.users.verify(token) {
            Ok(user) => Authentication::User(user),
            Err(UserTokenError::UnknownKey(_)) => Authentication::UnknownUserKey(token.to_owned()),
            Err(UserTokenError::Invalid(reason)) => {
                rejected(&reason, SecurityEventKind::TokenRejected)
            }
        }
    }
}

fn rejected(reason: &str, kind: SecurityEventKind) -> Authentication {
    Authentication::Rejected {
        reason: reason.to_owned(),
        kind,
    }
}

fn forwarded_token(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get(FORWARDED_USER_HEADER)
        .map(|value| value.to_str().unwrap_or_default().to_owned())
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthenticated(kind: SecurityEventKind, reason: &str, actor: &str) -> AuthError {
    tracing::info!(%reason, "credentials refused");
    security::record(kind, actor);
    AuthError::Unauthenticated("the access token is invalid or expired")
}

/// The authenticated caller of `rpc`, or `UNAUTHENTICATED` (`KER-ATH-401`) without valid
/// credentials, or `PERMISSION_DENIED` (`KER-ATH-403`) for a service not allowed to call
/// `rpc`. Refusals are recorded as security events.
pub async fn caller<T>(request: &Request<T>, rpc: &str) -> Result<Caller, AuthError> {
    let extensions = request.extensions();
    let (Some(authentication), Some(authenticator)) = (
        extensions.get::<Authentication>(),
        extensions.get::<Arc<Authenticator>>(),
    ) else {
        return Err(AuthError::Unauthenticated("an access token is required"));
    };
    match authentication.clone() {
        Authentication::Anonymous => Err(AuthError::Unauthenticated("an access token is required")),
        Authentication::Rejected { reason, kind } => {
            Err(unauthenticated(kind, &reason, "anonymous"))
        }
        Authentication::User(user) => Ok(Caller::User(user)),
        Authentication::UnknownUserKey(token) => {
            match authenticator.users.verify_fresh(&token).await {
                Ok(user) => Ok(Caller::User(user)),
                Err(reason) => Err(unauthenticated(
                    SecurityEventKind::TokenRejected,
                    &reason.to_string(),
                    "anonymous",
                )),
            }
        }
        Authentication::Service { name, forwarded } => {
            let actor = format!("service:{name}");
            if !authenticator.access.allows(rpc, &name) {
                tracing::warn!(service = %name, rpc, "service not allowed to call this RPC");
                security::record(SecurityEventKind::ServiceIdentityRefused, &actor);
                return Err(AuthError::PermissionDenied);
            }
            let on_behalf_of = match forwarded {
                None => None,
                Some(token) => match authenticator.users.verify_fresh(&token).await {
                    Ok(user) => Some(user),
                    Err(reason) => {
                        return Err(unauthenticated(
                            SecurityEventKind::TokenRejected,
                            &format!("forwarded user: {reason}"),
                            &actor,
                        ));
                    }
                },
            };
            Ok(Caller::Service { name, on_behalf_of })
        }
    }
}

/// A tonic interceptor that records the request's credentials, verified, in its
/// extensions. It never rejects on its own: RPCs that need a caller call [`caller`], the
/// others (`RegisterPartner`, `Login`) ignore it, so a stale token does not block a login.
#[derive(Clone)]
pub struct AuthInterceptor {
    authenticator: Arc<Authenticator>,
}

impl AuthInterceptor {
    /// An interceptor using `authenticator`.
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        AuthInterceptor { authenticator }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let certificate_service = crate::tls::peer_service(&request);
        let authentication = self
            .authenticator
            .authenticate(request.metadata(), certificate_service);
        request.extensions_mut().insert(authentication);
        request
            .extensions_mut()
            .insert(Arc::clone(&self.authenticator));
        Ok(request)
    }
}
