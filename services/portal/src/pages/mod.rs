//! The pages, by role and workflow step. Each handler reads the page context, calls the
//! services with the user's token, and renders the answer or explains the failure.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod ftm;
pub(crate) mod partner;
pub(crate) mod verify;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::web::Ctx;

/// The style sheet (compiled in; the only resource the Content-Security-Policy allows).
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}

/// Liveness and readiness: the portal keeps no state, so it is ready when it answers
/// (a service that is down is explained on the pages that need it).
pub(crate) async fn health() -> &'static str {
    "ok"
}

/// Any other path.
pub(crate) async fn not_found(ctx: Ctx) -> Response {
    crate::views::message_page(
        &ctx,
        StatusCode::NOT_FOUND,
        "error.not_found_title",
        ctx.t("error.page_not_found"),
    )
}

/// A PEM file download (the name keeps letters, digits, `-`, `_` and `.` only).
pub(crate) fn pem_download(file_name: &str, pem: String) -> Response {
    let file_name: String = file_name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "-_.".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        pem,
    )
        .into_response()
}

/// The certificate a form carries, as the services take it: a chosen file (PEM text as is,
/// DER converted to PEM, anything else base64-encoded so that the store can try it as a
/// PKCS#7 bundle and explain a refusal), else the pasted text.
pub(crate) fn certificate_data(submitted: &crate::web::Submitted) -> String {
    let Some(upload) = submitted.file("certificate_file") else {
        return submitted.text("certificate_text").to_owned();
    };
    if let Ok(text) = std::str::from_utf8(&upload.bytes)
        && text.contains("-----BEGIN")
    {
        return text.to_owned();
    }
    if let Ok(certificate) = openssl::x509::X509::from_der(&upload.bytes)
        && let Ok(pem) = certificate.to_pem()
        && let Ok(pem) = String::from_utf8(pem)
    {
        return pem;
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&upload.bytes)
}
