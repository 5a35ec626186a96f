//! The partner administrator's pages: the FTM review queue, the trust store (CA upload with
//! per-certificate results, list with filters, details and trust path), and partners
//! (list with filters, activate and deactivate).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use pmp_proto::certstore::v1 as store;
use pmp_proto::partner::v1 as registry;

use crate::backend::Failure;
use crate::views::{self, Field};
use crate::web::{Ctx, Submitted, done, encode_component};

use super::ftm::ListQuery;
use super::partner::{DOMAINS, partner_status_key};

/// The review queue: FTMs waiting for approval, oldest first.
pub(crate) async fn review(ctx: Ctx) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let query = ListQuery::review_queue();
    let content = match super::ftm::fetch(&ctx, &query).await {
        Ok(page) => html! {
            p { (ctx.t("review.explain")) }
            (super::ftm::table(&ctx, &page, true, &query))
        },
        Err(failure) => return ctx.failure_page(&failure),
    };
    views::page(&ctx, StatusCode::OK, "review.title", content)
}

/// Trust-store filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CaQuery {
    #[serde(default)]
    partner_domain: String,
    #[serde(default)]
    ca_type: String,
    #[serde(default)]
    page_token: String,
}

const CA_TYPES: &[(&str, &str)] = &[
    ("", "filter.any_type"),
    ("ROOT", "ca_type.root"),
    ("INTERMEDIATE", "ca_type.intermediate"),
];

fn ca_type_key(ca_type: i32) -> &'static str {
    match store::CaType::try_from(ca_type) {
        Ok(store::CaType::Root) => "ca_type.root",
        Ok(store::CaType::Intermediate) => "ca_type.intermediate",
        _ => "ca_type.unknown",
    }
}

/// The trust store: CA certificates with filters, and the upload form.
pub(crate) async fn ca_list(ctx: Ctx, Query(query): Query<CaQuery>) -> Response {
    ca_page(&ctx, StatusCode::OK, &query, "FTM", None, html! {}).await
}

async fn ca_page(
    ctx: &Ctx,
    status: StatusCode,
    query: &CaQuery,
    upload_domain: &str,
    failure: Option<&Failure>,
    results: Markup,
) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let request = store::ListCaCertificatesRequest {
        partner_domain: query.partner_domain.clone(),
        ca_type: store::CaType::from_str_name(&query.ca_type)
            .unwrap_or(store::CaType::Unspecified)
            .into(),
        page_size: 20,
        page_token: query.page_token.clone(),
    };
    let listed = ctx
        .state
        .backend
        .store(ctx.token(), request, async |mut client, request| {
            client.list_ca_certificates(request).await
        })
        .await;
    if let Err(failure) = &listed
        && failure.is_unauthenticated()
    {
        return ctx.failure_page(failure);
    }
    let any_domain: Vec<(&str, &str)> = std::iter::once(("", "filter.any_domain"))
        .chain(DOMAINS.iter().copied())
        .collect();
    let content = html! {
        (results)
        section class="panel" aria-labelledby="upload-ca" {
            h2 id="upload-ca" { (ctx.t("ca.upload")) }
            p class="hint" { (ctx.t("ca.upload_hint")) }
            form method="post" action="/admin/ca" enctype="multipart/form-data" {
                (views::csrf(ctx))
                (views::failure_summary(ctx, failure))
                (views::select(ctx, "partner_domain", "field.partner_domain", DOMAINS, upload_domain))
                (views::certificate_input(ctx, failure, ""))
                button type="submit" { (ctx.t("ca.submit")) }
            }
        }
        h2 { (ctx.t("ca.list")) }
        form method="get" action="/admin/ca" class="filters" role="search" aria-label=(ctx.t("filter.label")) {
            (views::filter_select(ctx, "partner_domain", "field.partner_domain", &any_domain, &query.partner_domain))
            (views::filter_select(ctx, "ca_type", "field.ca_type", CA_TYPES, &query.ca_type))
            button type="submit" { (ctx.t("filter.apply")) }
        }
        @match &listed {
            Ok(page) => (ca_table(ctx, page, query)),
            Err(failure) => div class="alert" role="alert" { p { (ctx.failure_message(failure)) } },
        }
    };
    views::page(ctx, status, "ca.title", content)
}

fn ca_table(ctx: &Ctx, page: &store::ListCaCertificatesResponse, query: &CaQuery) -> Markup {
    let filters = views::query_string(&[
        ("partner_domain", &query.partner_domain),
        ("ca_type", &query.ca_type),
    ]);
    html! {
        p role="status" { (ctx.texts().format("list.total", &[("count", &page.total_size.to_string())])) }
        @if !page.ca_certificates.is_empty() {
            div class="table" { table {
                caption class="visually-hidden" { (ctx.t("ca.list")) }
                thead { tr {
                    th scope="col" { (ctx.t("field.subject")) }
                    th scope="col" { (ctx.t("field.ca_type")) }
                    th scope="col" { (ctx.t("field.partner_domain")) }
                    th scope="col" { (ctx.t("field.not_after")) }
                } }
                tbody {
                    @for certificate in &page.ca_certificates {
                        tr {
                            td { a href={ "/admin/ca/" (encode_component(&certificate.certificate_id)) } { (certificate.subject) } }
                            td { (ctx.t(ca_type_key(certificate.ca_type))) }
                            td { (certificate.partner_domain) }
                            td { (views::timestamp(certificate.not_after.as_ref())) }
                        }
                    }
                }
            } }
        }
        (views::paging(ctx, &filters, &query.page_token, &page.next_page_token))
    }
}

/// Uploads one CA certificate or a bundle; shows the result of each certificate.
pub(crate) async fn ca_upload(ctx: Ctx, form: Submitted) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let domain = form.text("partner_domain").to_owned();
    let request = store::UploadCaCertificateRequest {
        certificate_data: super::certificate_data(&form),
        partner_domain: domain.clone(),
    };
    let answered = ctx
        .state
        .backend
        .store(ctx.token(), request, async |mut client, request| {
            client.upload_ca_certificate(request).await
        })
        .await;
    let query = CaQuery::default();
    match answered {
        Ok(uploaded) => {
            let results = upload_results(&ctx, &uploaded);
            ca_page(&ctx, StatusCode::OK, &query, &domain, None, results).await
        }
        Err(failure) if failure.is_unauthenticated() => ctx.failure_page(&failure),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            ca_page(&ctx, status, &query, &domain, Some(&failure), html! {}).await
        }
    }
}

fn upload_results(ctx: &Ctx, uploaded: &store::UploadCaCertificateResponse) -> Markup {
    let summary = match store::UploadStatus::try_from(uploaded.status) {
        Ok(store::UploadStatus::UploadSuccess) => "ca.result.success",
        Ok(store::UploadStatus::PartialUploadSuccess) => "ca.result.partial",
        _ => "ca.result.failed",
    };
    html! {
        section class="panel" aria-labelledby="upload-results" {
            h2 id="upload-results" { (ctx.t("ca.results")) }
            div class=(if summary == "ca.result.success" { "notice" } else { "alert" }) role="status" {
                p { (ctx.t(summary)) }
            }
            div class="table" { table {
                thead { tr {
                    th scope="col" { (ctx.t("field.subject")) }
                    th scope="col" { (ctx.t("field.ca_type")) }
                    th scope="col" { (ctx.t("ca.outcome")) }
                } }
                tbody {
                    @for result in &uploaded.results {
                        tr {
                            td { (result.subject) }
                            td { (ctx.t(ca_type_key(result.ca_type))) }
                            td {
                                @if result.error_reason.is_empty() {
                                    a href={ "/admin/ca/" (encode_component(&result.certificate_id)) } { (ctx.t("ca.outcome.stored")) }
                                } @else {
                                    (reason_text(ctx, &result.error_reason))
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// The message of a contract reason code, or the code itself when unknown.
fn reason_text(ctx: &Ctx, reason: &str) -> String {
    let key = format!("reason.{reason}");
    let texts = ctx.texts();
    if texts.has(&key) {
        texts.get(&key).to_owned()
    } else {
        reason.to_owned()
    }
}

/// One CA certificate: its details and PEM, and its trust path to download.
pub(crate) async fn ca_detail(ctx: Ctx, Path(certificate_id): Path<String>) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let request = store::GetCaCertificateRequest {
        certificate_id: certificate_id.clone(),
    };
    let certificate = match ctx
        .state
        .backend
        .store(ctx.token(), request, async |mut client, request| {
            client.get_ca_certificate(request).await
        })
        .await
    {
        Ok(certificate) => certificate,
        Err(failure) => return ctx.failure_page(&failure),
    };
    let id = encode_component(&certificate.certificate_id);
    let content = html! {
        dl class="details" {
            dt { (ctx.t("field.subject")) } dd { (certificate.subject) }
            dt { (ctx.t("field.issuer")) } dd { (certificate.issuer) }
            dt { (ctx.t("field.ca_type")) } dd { (ctx.t(ca_type_key(certificate.ca_type))) }
            dt { (ctx.t("field.partner_domain")) } dd { (certificate.partner_domain) }
            dt { (ctx.t("field.serial_number")) } dd { code { (certificate.serial_number) } }
            dt { (ctx.t("field.thumbprint")) } dd { code class="wrap" { (certificate.thumbprint) } }
            dt { (ctx.t("field.not_before")) } dd { (views::timestamp(certificate.not_before.as_ref())) }
            dt { (ctx.t("field.not_after")) } dd { (views::timestamp(certificate.not_after.as_ref())) }
            dt { (ctx.t("field.uploaded")) } dd { (views::timestamp(certificate.upload_time.as_ref())) }
            @if !certificate.issuer_certificate_id.is_empty() {
                dt { (ctx.t("field.issuer_certificate")) }
                dd { a href={ "/admin/ca/" (encode_component(&certificate.issuer_certificate_id)) } { (ctx.t("ca.issuer_link")) } }
            }
        }
        p { a href={ "/admin/ca/" (id) "/trust-path.pem" } download { (ctx.t("ca.download_trust_path")) } }
        details {
            summary { (ctx.t("ca.pem")) }
            pre { code { (certificate.certificate_pem) } }
        }
        (views::back_link(&ctx, "/admin/ca", "ca.back"))
    };
    views::page(&ctx, StatusCode::OK, "ca.detail_title", content)
}

/// Downloads a CA certificate's trust path (PEM, leaf first).
pub(crate) async fn trust_path(ctx: Ctx, Path(certificate_id): Path<String>) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let request = store::GetCaTrustPathRequest {
        certificate_id: certificate_id.clone(),
    };
    match ctx
        .state
        .backend
        .store(ctx.token(), request, async |mut client, request| {
            client.get_ca_trust_path(request).await
        })
        .await
    {
        Ok(path) => super::pem_download(
            &format!("trust-path-{certificate_id}.pem"),
            path.certificates_pem.concat(),
        ),
        Err(failure) => ctx.failure_page(&failure),
    }
}

/// Partner list filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PartnerQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    partner_type: String,
    #[serde(default)]
    page_token: String,
}

const PARTNER_STATUSES: &[(&str, &str)] = &[
    ("", "filter.any_status"),
    ("IN_PROGRESS", "partner_status.in_progress"),
    ("ACTIVE", "partner_status.active"),
    ("DEACTIVATED", "partner_status.deactivated"),
];

/// Partners, with filters, and their activation switch.
pub(crate) async fn partners(ctx: Ctx, Query(query): Query<PartnerQuery>) -> Response {
    partners_page(&ctx, StatusCode::OK, &query, None).await
}

async fn partners_page(
    ctx: &Ctx,
    status: StatusCode,
    query: &PartnerQuery,
    failure: Option<&Failure>,
) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let request = registry::ListPartnersRequest {
        page_size: 20,
        page_token: query.page_token.clone(),
        partner_type: query.partner_type.trim().to_owned(),
        status: registry::PartnerStatus::from_str_name(&query.status)
            .unwrap_or(registry::PartnerStatus::Unspecified)
            .into(),
    };
    let listed = ctx
        .state
        .backend
        .registry(ctx.token(), request, async |mut client, request| {
            client.list_partners(request).await
        })
        .await;
    if let Err(failure) = &listed
        && failure.is_unauthenticated()
    {
        return ctx.failure_page(failure);
    }
    let content = html! {
        (views::failure_summary(ctx, failure))
        form method="get" action="/admin/partners" class="filters" role="search" aria-label=(ctx.t("filter.label")) {
            (views::filter_select(ctx, "status", "field.status", PARTNER_STATUSES, &query.status))
            (Field::text("partner_type", "field.partner_type", &query.partner_type, 36).optional().filter().render(ctx, None))
            button type="submit" { (ctx.t("filter.apply")) }
        }
        @match &listed {
            Ok(page) => (partner_table(ctx, page, query)),
            Err(failure) => div class="alert" role="alert" { p { (ctx.failure_message(failure)) } },
        }
    };
    views::page(ctx, status, "partners.title", content)
}

fn partner_table(ctx: &Ctx, page: &registry::ListPartnersResponse, query: &PartnerQuery) -> Markup {
    let filters = views::query_string(&[
        ("status", &query.status),
        ("partner_type", &query.partner_type),
    ]);
    html! {
        p role="status" { (ctx.texts().format("list.total", &[("count", &page.total_size.to_string())])) }
        @if !page.partners.is_empty() {
            div class="table" { table {
                caption class="visually-hidden" { (ctx.t("partners.title")) }
                thead { tr {
                    th scope="col" { (ctx.t("field.partner_id")) }
                    th scope="col" { (ctx.t("field.organization_name")) }
                    th scope="col" { (ctx.t("field.partner_type")) }
                    th scope="col" { (ctx.t("field.status")) }
                    th scope="col" { (ctx.t("partners.action")) }
                } }
                tbody {
                    @for partner in &page.partners {
                        tr {
                            td { (partner.partner_id) }
                            td { (partner.organization_name) }
                            td { (partner.partner_type) }
                            td { (ctx.t(partner_status_key(partner.status))) }
                            td { (activation_form(ctx, partner)) }
                        }
                    }
                }
            } }
        }
        (views::paging(ctx, &filters, &query.page_token, &page.next_page_token))
    }
}

fn activation_form(ctx: &Ctx, partner: &registry::Partner) -> Markup {
    let active = partner.status == i32::from(registry::PartnerStatus::Active);
    let deactivated = partner.status == i32::from(registry::PartnerStatus::Deactivated);
    if !active && !deactivated {
        return html! {};
    }
    let (value, label) = if active {
        ("false", "partners.deactivate")
    } else {
        ("true", "partners.activate")
    };
    html! {
        form method="post" action={ "/admin/partners/" (encode_component(&partner.partner_id)) "/active" } class="inline" {
            (views::csrf(ctx))
            input type="hidden" name="active" value=(value);
            button type="submit" class="secondary" aria-label={ (ctx.t(label)) " " (partner.partner_id) } { (ctx.t(label)) }
        }
    }
}

/// Activates or deactivates a partner.
pub(crate) async fn set_active(
    ctx: Ctx,
    Path(partner_id): Path<String>,
    form: Submitted,
) -> Response {
    if let Err(response) = ctx.require_admin() {
        return *response;
    }
    let active = form.text("active") == "true";
    let request = registry::SetPartnerActiveRequest { partner_id, active };
    let answered = ctx
        .state
        .backend
        .registry(ctx.token(), request, async |mut client, request| {
            client.set_partner_active(request).await
        })
        .await;
    match answered {
        Ok(_) if active => done("/admin/partners", "partner_activated"),
        Ok(_) => done("/admin/partners", "partner_deactivated"),
        Err(failure) if failure.is_unauthenticated() => ctx.failure_page(&failure),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            partners_page(&ctx, status, &PartnerQuery::default(), Some(&failure)).await
        }
    }
}
