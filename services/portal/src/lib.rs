//! The Partner Management Portal: the FTM workflow for people, in a browser. A web server
//! that renders HTML on the server (no scripts) and calls the three platform services over
//! gRPC with the signed-in user's token; it keeps no data of its own. See `README.md`
//! ("Portal") for the pages and `ARCHITECTURE.md` for where it sits.

#![warn(missing_docs, unreachable_pub)]

pub mod backend;
pub mod config;
pub mod i18n;
mod pages;
pub mod session;
mod views;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

use crate::backend::Backend;
use crate::config::PortalSettings;
use crate::i18n::Catalogs;
use crate::session::SessionKey;

/// What every request of the portal shares.
#[derive(Debug)]
pub struct AppState {
    /// The portal's settings.
    pub settings: PortalSettings,
    /// Message catalogues of every language.
    pub catalogs: Catalogs,
    /// Seals the session cookies.
    pub session_key: SessionKey,
    /// Clients of the platform services.
    pub backend: Backend,
}

impl AppState {
    /// The state of a portal with `settings`: catalogues parsed, session key loaded (or
    /// created), channels to the services prepared (connected on first use).
    pub fn new(settings: PortalSettings) -> anyhow::Result<AppState> {
        Ok(AppState {
            catalogs: Catalogs::load()?,
            session_key: SessionKey::load(&settings.session)?,
            backend: Backend::connect(&settings.services, &settings.tls)?,
            settings,
        })
    }
}

/// Every page and form of the portal, behind the session cookie, the security headers and
/// the upload size limit.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.settings.server.max_upload_bytes;
    Router::new()
        .route("/", get(pages::auth::root))
        .route(
            "/sign-in",
            get(pages::auth::sign_in_form).post(pages::auth::sign_in),
        )
        .route("/sign-out", post(pages::auth::sign_out))
        .route(
            "/register",
            get(pages::auth::register_form).post(pages::auth::register),
        )
        .route("/language/{code}", get(pages::auth::choose_language))
        .route("/home", get(pages::partner::home))
        .route(
            "/certificate",
            get(pages::partner::certificate_form).post(pages::partner::upload_certificate),
        )
        .route(
            "/certificate/{kind}",
            get(pages::partner::download_certificate),
        )
        .route("/ftms", get(pages::ftm::list).post(pages::ftm::create))
        .route("/ftms/{id}", get(pages::ftm::detail))
        .route(
            "/ftms/{id}/certificate",
            post(pages::ftm::upload_certificate),
        )
        .route(
            "/ftms/{id}/certificate.pem",
            get(pages::ftm::download_certificate),
        )
        .route("/ftms/{id}/approve", post(pages::ftm::approve))
        .route("/ftms/{id}/reject", post(pages::ftm::reject))
        .route("/ftms/{id}/deactivate", post(pages::ftm::deactivate))
        .route("/admin/review", get(pages::admin::review))
        .route(
            "/admin/ca",
            get(pages::admin::ca_list).post(pages::admin::ca_upload),
        )
        .route("/admin/ca/{id}", get(pages::admin::ca_detail))
        .route(
            "/admin/ca/{id}/trust-path.pem",
            get(pages::admin::trust_path),
        )
        .route("/admin/partners", get(pages::admin::partners))
        .route(
            "/admin/partners/{id}/active",
            post(pages::admin::set_active),
        )
        .route(
            "/verify",
            get(pages::verify::form).post(pages::verify::check),
        )
        .route("/static/portal.css", get(pages::stylesheet))
        .route("/healthz", get(pages::health))
        .fallback(pages::not_found)
        .layer(from_fn_with_state(Arc::clone(&state), web::session_cookie))
        .layer(from_fn(web::access_log))
        .layer(from_fn(web::security_headers))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the portal on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for at most `grace`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    let (stopping_sender, mut stopping) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_sender.send(true);
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        _ = stopping.wait_for(|stopping| *stopping) => {}
    }
    tracing::info!("portal stopping: finishing requests in flight");
    match tokio::time::timeout(grace, server).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!(?grace, "requests still in flight after the grace period");
            Ok(())
        }
    }
}
