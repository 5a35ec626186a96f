//! "Verify a certificate": paste or upload a certificate, see whether the platform trusts
//! it in a domain right now, why not, and the chain it was verified through. The same
//! pieces show a chip certificate on its FTM's page.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use openssl::x509::X509;

use pmp_proto::certstore::v1 as store;

use crate::backend::Failure;
use crate::views;
use crate::web::{Ctx, Submitted};

/// Known untrusted reasons of the store (its answer is English text) and their messages.
const REASONS: &[(&str, &str)] = &[
    ("not registered", "verify.reason.not_registered"),
    ("certificate is not trusted", "verify.reason.not_trusted"),
    (
        "an issuer in the chain is not trusted",
        "verify.reason.issuer_not_trusted",
    ),
    ("certificate has expired", "verify.reason.expired"),
    (
        "certificate is not yet valid",
        "verify.reason.not_yet_valid",
    ),
    (
        "unable to get local issuer certificate",
        "verify.reason.unknown_issuer",
    ),
];

/// The verify form.
pub(crate) async fn form(ctx: Ctx) -> Response {
    if let Err(response) = ctx.require_user() {
        return *response;
    }
    page(&ctx, StatusCode::OK, "FTM", "", None)
}

/// Verifies the submitted certificate in the chosen domain.
pub(crate) async fn check(ctx: Ctx, form: Submitted) -> Response {
    if let Err(response) = ctx.require_user() {
        return *response;
    }
    let certificate = super::certificate_data(&form);
    let domain = form.text("partner_domain").to_owned();
    let verdict = verdict(&ctx, &certificate, &domain).await;
    match verdict {
        Err(failure) if failure.is_unauthenticated() => ctx.failure_page(&failure),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            let pasted = form.text("certificate_text");
            page(&ctx, status, &domain, pasted, Some(&failure))
        }
        Ok(answer) => {
            let result = html! {
                section class="panel" aria-labelledby="verdict" aria-live="polite" {
                    h2 id="verdict" { (ctx.t("verify.result")) }
                    (describe(&ctx, &certificate))
                    (verdict_markup(&ctx, &Ok(answer)))
                }
            };
            page_with(&ctx, StatusCode::OK, &domain, "", None, result)
        }
    }
}

fn page(
    ctx: &Ctx,
    status: StatusCode,
    domain: &str,
    pasted: &str,
    failure: Option<&Failure>,
) -> Response {
    page_with(ctx, status, domain, pasted, failure, html! {})
}

fn page_with(
    ctx: &Ctx,
    status: StatusCode,
    domain: &str,
    pasted: &str,
    failure: Option<&Failure>,
    result: Markup,
) -> Response {
    let content = html! {
        (result)
        form method="post" action="/verify" enctype="multipart/form-data" class="panel" {
            (views::csrf(ctx))
            (views::failure_summary(ctx, failure))
            (views::select(ctx, "partner_domain", "field.partner_domain", super::partner::DOMAINS, domain))
            (views::certificate_input(ctx, failure, pasted))
            button type="submit" { (ctx.t("verify.submit")) }
        }
    };
    views::page(ctx, status, "verify.title", content)
}

/// Asks the store whether `certificate` is trusted in `domain` now.
pub(crate) async fn verdict(
    ctx: &Ctx,
    certificate: &str,
    domain: &str,
) -> Result<store::VerifyCertificateTrustResponse, Failure> {
    let request = store::VerifyCertificateTrustRequest {
        certificate_data: certificate.to_owned(),
        partner_domain: domain.to_owned(),
    };
    ctx.state
        .backend
        .store(ctx.token(), request, async |mut client, request| {
            client.verify_certificate_trust(request).await
        })
        .await
}

/// Trusted or not, why not, and the chain.
pub(crate) fn verdict_markup(
    ctx: &Ctx,
    verdict: &Result<store::VerifyCertificateTrustResponse, Failure>,
) -> Markup {
    match verdict {
        Err(failure) => {
            html! { div class="alert" role="alert" { p { (ctx.failure_message(failure)) } } }
        }
        Ok(answer) if answer.trusted => html! {
            p class="verdict trusted" { strong { (ctx.t("verify.trusted")) } }
            h3 { (ctx.t("verify.chain")) }
            ol class="chain" {
                @for pem in &answer.chain_pem {
                    li { (subject_of(pem).unwrap_or_default()) }
                }
            }
        },
        Ok(answer) => html! {
            p class="verdict untrusted" { strong { (ctx.t("verify.untrusted")) } }
            p { (reason_message(ctx, &answer.reason)) }
            p class="hint" { (ctx.t("verify.technical_reason")) " " code lang="en" { (answer.reason) } }
        },
    }
}

fn reason_message(ctx: &Ctx, reason: &str) -> String {
    REASONS
        .iter()
        .find(|(known, _)| reason.starts_with(known))
        .map(|(_, key)| ctx.t(key).to_owned())
        .unwrap_or_else(|| ctx.t("verify.reason.other").to_owned())
}

/// Subject, issuer, serial number and validity of the first certificate in `pem`.
pub(crate) fn describe(ctx: &Ctx, pem: &str) -> Markup {
    let Some(certificate) = X509::stack_from_pem(pem.as_bytes())
        .ok()
        .and_then(|stack| stack.into_iter().next())
    else {
        return html! {};
    };
    let serial = certificate
        .serial_number()
        .to_bn()
        .ok()
        .and_then(|number| number.to_hex_str().ok().map(|hex| hex.to_string()))
        .unwrap_or_default();
    html! {
        dl class="details" {
            dt { (ctx.t("field.subject")) } dd { (name(certificate.subject_name())) }
            dt { (ctx.t("field.issuer")) } dd { (name(certificate.issuer_name())) }
            dt { (ctx.t("field.serial_number")) } dd { code { (serial) } }
            dt { (ctx.t("field.not_before")) } dd { (certificate.not_before().to_string()) }
            dt { (ctx.t("field.not_after")) } dd { (certificate.not_after().to_string()) }
        }
    }
}

fn subject_of(pem: &str) -> Option<String> {
    X509::from_pem(pem.as_bytes())
        .ok()
        .map(|certificate| name(certificate.subject_name()))
}

/// `CN=…, O=…, C=…` of an X.509 name.
pub(crate) fn name(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .filter_map(|entry| {
            let field = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{field}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
