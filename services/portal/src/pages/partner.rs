//! The partner's own pages: the home page with their profile and next step, and the
//! partner certificate (upload, and download of the CA-signed and platform-signed copies).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use pmp_proto::ftm::v1 as ftm;
use pmp_proto::partner::v1 as registry;

use crate::backend::Failure;
use crate::views;
use crate::web::{Ctx, Submitted, done};

/// The partner domains a certificate may be uploaded for.
pub(crate) const DOMAINS: &[(&str, &str)] = &[
    ("FTM", "domain.ftm"),
    ("DEVICE", "domain.device"),
    ("AUTH", "domain.auth"),
];

/// The catalogue key of a partner status.
pub(crate) fn partner_status_key(status: i32) -> &'static str {
    match registry::PartnerStatus::try_from(status) {
        Ok(registry::PartnerStatus::InProgress) => "partner_status.in_progress",
        Ok(registry::PartnerStatus::Active) => "partner_status.active",
        Ok(registry::PartnerStatus::Deactivated) => "partner_status.deactivated",
        _ => "partner_status.unknown",
    }
}

/// The home page: a partner's profile and what to do next; an administrator's work list.
pub(crate) async fn home(ctx: Ctx) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    if user.is_admin() {
        return admin_home(&ctx).await;
    }
    let partner = match own_partner(&ctx, &user.partner_id).await {
        Ok(partner) => partner,
        Err(failure) => return ctx.failure_page(&failure),
    };
    let content = html! {
        (next_step(&ctx, &partner))
        h2 { (ctx.t("home.profile")) }
        (profile(&ctx, &partner))
    };
    views::page(&ctx, StatusCode::OK, "home.title", content)
}

async fn admin_home(ctx: &Ctx) -> Response {
    let pending = ftm::ListFtmsRequest {
        page_size: 1,
        status: ftm::FtmStatus::PendingApproval.into(),
        ..Default::default()
    };
    let pending = ctx
        .state
        .backend
        .ftm(ctx.token(), pending, async |mut client, request| {
            client.list_ftms(request).await
        })
        .await;
    let content = html! {
        @match pending {
            Ok(list) => p {
                (ctx.texts().format("home.pending_reviews", &[("count", &list.total_size.to_string())]))
                " " a href="/admin/review" { (ctx.t("nav.review")) }
            },
            Err(failure) => div class="alert" role="alert" { p { (ctx.failure_message(&failure)) } },
        }
        ul class="actions" {
            li { a href="/admin/ca" { (ctx.t("nav.trust_store")) } }
            li { a href="/admin/partners" { (ctx.t("nav.partners")) } }
            li { a href="/ftms" { (ctx.t("nav.ftms")) } }
            li { a href="/verify" { (ctx.t("nav.verify")) } }
        }
    };
    views::page(ctx, StatusCode::OK, "home.admin_title", content)
}

async fn own_partner(ctx: &Ctx, partner_id: &str) -> Result<registry::Partner, Failure> {
    let request = registry::GetPartnerRequest {
        partner_id: partner_id.to_owned(),
    };
    ctx.state
        .backend
        .registry(ctx.token(), request, async |mut client, request| {
            client.get_partner(request).await
        })
        .await
}

fn next_step(ctx: &Ctx, partner: &registry::Partner) -> Markup {
    let status = registry::PartnerStatus::try_from(partner.status);
    html! {
        div class="panel" {
            p {
                (ctx.t("home.status")) " "
                strong class={ "status status-" (partner.status) } { (ctx.t(partner_status_key(partner.status))) }
            }
            @match status {
                Ok(registry::PartnerStatus::InProgress) => p {
                    (ctx.t("home.next_certificate")) " "
                    a href="/certificate" { (ctx.t("nav.certificate")) }
                },
                Ok(registry::PartnerStatus::Active) => p {
                    (ctx.t("home.next_ftms")) " "
                    a href="/ftms" { (ctx.t("nav.ftms")) }
                },
                Ok(registry::PartnerStatus::Deactivated) => p { (ctx.t("home.deactivated")) },
                _ => {},
            }
        }
    }
}

/// The partner's registered details.
pub(crate) fn profile(ctx: &Ctx, partner: &registry::Partner) -> Markup {
    let rows: [(&str, &str); 8] = [
        ("field.partner_id", &partner.partner_id),
        ("field.organization_name", &partner.organization_name),
        ("field.partner_type", &partner.partner_type),
        ("field.first_name", &partner.first_name),
        ("field.last_name", &partner.last_name),
        ("field.email", &partner.email),
        ("field.phone", &partner.phone),
        ("field.address", &partner.address),
    ];
    html! {
        dl class="details" {
            @for (label, value) in rows {
                dt { (ctx.t(label)) }
                dd { (value) }
            }
            dt { (ctx.t("field.status")) }
            dd { (ctx.t(partner_status_key(partner.status))) }
            dt { (ctx.t("field.registered")) }
            dd { (views::timestamp(partner.create_time.as_ref())) }
        }
    }
}

/// The partner certificate page: the current certificate, if any, and the upload form.
pub(crate) async fn certificate_form(ctx: Ctx) -> Response {
    certificate_page(&ctx, StatusCode::OK, "FTM", "", None).await
}

async fn certificate_page(
    ctx: &Ctx,
    status: StatusCode,
    domain: &str,
    pasted: &str,
    failure: Option<&Failure>,
) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let current = current_certificate(ctx, &user.partner_id).await;
    let content = html! {
        @match &current {
            Ok(Some(bundle)) => section class="panel" aria-labelledby="current-certificate" {
                h2 id="current-certificate" { (ctx.t("certificate.current")) }
                dl class="details" {
                    dt { (ctx.t("field.certificate_id")) } dd { code { (bundle.certificate_id) } }
                    dt { (ctx.t("field.not_before")) } dd { (views::timestamp(bundle.not_before.as_ref())) }
                    dt { (ctx.t("field.not_after")) } dd { (views::timestamp(bundle.not_after.as_ref())) }
                    @if bundle.expired { dt { (ctx.t("field.status")) } dd { (ctx.t("certificate.expired")) } }
                }
                ul class="actions" {
                    li { a href="/certificate/ca-signed.pem" download { (ctx.t("certificate.download_ca_signed")) } }
                    li { a href="/certificate/platform-signed.pem" download { (ctx.t("certificate.download_platform_signed")) } }
                }
            },
            Ok(None) => p { (ctx.t("certificate.none")) },
            Err(failure) => div class="alert" role="alert" { p { (ctx.failure_message(failure)) } },
        }
        h2 { (ctx.t("certificate.upload")) }
        form method="post" action="/certificate" enctype="multipart/form-data" class="panel" {
            (views::csrf(ctx))
            (views::failure_summary(ctx, failure))
            (views::select(ctx, "partner_domain", "field.partner_domain", DOMAINS, domain))
            (views::certificate_input(ctx, failure, pasted))
            button type="submit" { (ctx.t("certificate.submit")) }
        }
    };
    views::page(ctx, status, "certificate.title", content)
}

async fn current_certificate(
    ctx: &Ctx,
    partner_id: &str,
) -> Result<Option<pmp_proto::certstore::v1::CertificateBundle>, Failure> {
    let request = registry::GetPartnerCertificateRequest {
        partner_id: partner_id.to_owned(),
    };
    let answered = ctx
        .state
        .backend
        .registry(ctx.token(), request, async |mut client, request| {
            client.get_partner_certificate(request).await
        })
        .await;
    match answered {
        Ok(bundle) => Ok(Some(bundle)),
        Err(failure) if failure.code == tonic::Code::NotFound => Ok(None),
        Err(failure) => Err(failure),
    }
}

/// Uploads the partner's certificate through the registry (which adds the registered
/// organisation name); the first accepted one makes the partner active.
pub(crate) async fn upload_certificate(ctx: Ctx, form: Submitted) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let certificate_data = super::certificate_data(&form);
    let request = registry::UploadPartnerCertificateRequest {
        partner_id: user.partner_id.clone(),
        certificate_data,
        partner_domain: form.text("partner_domain").to_owned(),
    };
    let answered = ctx
        .state
        .backend
        .registry(ctx.token(), request, async |mut client, request| {
            client.upload_partner_certificate(request).await
        })
        .await;
    match answered {
        Ok(_) => done("/certificate", "certificate_uploaded"),
        Err(failure) if failure.is_unauthenticated() => ctx.failure_page(&failure),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            let pasted = form.text("certificate_text");
            let domain = form.text("partner_domain");
            certificate_page(&ctx, status, domain, pasted, Some(&failure)).await
        }
    }
}

/// Downloads the CA-signed (`ca-signed.pem`) or platform-signed (`platform-signed.pem`)
/// partner certificate.
pub(crate) async fn download_certificate(ctx: Ctx, Path(kind): Path<String>) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let bundle = match current_certificate(&ctx, &user.partner_id).await {
        Ok(Some(bundle)) => bundle,
        Ok(None) => return super::not_found(ctx).await,
        Err(failure) => return ctx.failure_page(&failure),
    };
    let pem = match kind.as_str() {
        "ca-signed.pem" => bundle.ca_signed_certificate_pem,
        "platform-signed.pem" => bundle.platform_signed_certificate_pem,
        _ => return super::not_found(ctx).await,
    };
    super::pem_download(&format!("{}-{kind}", user.partner_id), pem)
}
