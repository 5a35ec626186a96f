//! FTMs (chips): the list with the contract's filters, sort and paging; creating one; its
//! page with the chip certificate (upload, details, chain, download) and the review
//! actions (approve, reject with a reason, deactivate).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use pmp_proto::ftm::v1 as ftm;

use crate::backend::Failure;
use crate::views::{self, Field};
use crate::web::{Ctx, Submitted, done, encode_component};

/// Status filter options (value, catalogue key).
const STATUSES: &[(&str, &str)] = &[
    ("", "filter.any_status"),
    ("PENDING_CERT_UPLOAD", "ftm_status.pending_cert_upload"),
    ("PENDING_APPROVAL", "ftm_status.pending_approval"),
    ("APPROVED", "ftm_status.approved"),
    ("REJECTED", "ftm_status.rejected"),
    ("DEACTIVATED", "ftm_status.deactivated"),
];

/// Sort options (the contract's `order_by` values).
const ORDERS: &[(&str, &str)] = &[
    ("create_time desc", "order.newest"),
    ("create_time", "order.oldest"),
    ("update_time desc", "order.recently_updated"),
    ("make", "order.make"),
    ("model", "order.model"),
    ("partner_id", "order.partner"),
    ("status", "order.status"),
];

/// The catalogue key of an FTM status.
pub(crate) fn ftm_status_key(status: i32) -> &'static str {
    match ftm::FtmStatus::try_from(status) {
        Ok(ftm::FtmStatus::PendingCertUpload) => "ftm_status.pending_cert_upload",
        Ok(ftm::FtmStatus::PendingApproval) => "ftm_status.pending_approval",
        Ok(ftm::FtmStatus::Approved) => "ftm_status.approved",
        Ok(ftm::FtmStatus::Rejected) => "ftm_status.rejected",
        Ok(ftm::FtmStatus::Deactivated) => "ftm_status.deactivated",
        _ => "ftm_status.unknown",
    }
}

/// The list filters, as in the query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    make: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    organization_name: String,
    #[serde(default)]
    partner_id: String,
    #[serde(default)]
    order_by: String,
    #[serde(default)]
    page_token: String,
}

impl ListQuery {
    /// The review queue: pending approval, oldest first.
    pub(crate) fn review_queue() -> ListQuery {
        ListQuery {
            status: "PENDING_APPROVAL".into(),
            order_by: "create_time".into(),
            ..ListQuery::default()
        }
    }

    fn request(&self) -> ftm::ListFtmsRequest {
        ftm::ListFtmsRequest {
            page_size: 20,
            page_token: self.page_token.clone(),
            partner_id: self.partner_id.trim().to_owned(),
            status: ftm::FtmStatus::from_str_name(&self.status)
                .unwrap_or(ftm::FtmStatus::Unspecified)
                .into(),
            make: self.make.trim().to_owned(),
            model: self.model.trim().to_owned(),
            organization_name: self.organization_name.trim().to_owned(),
            order_by: if self.order_by.is_empty() {
                "create_time desc".into()
            } else {
                self.order_by.clone()
            },
        }
    }

    /// The query string of the filters (without the page token).
    fn filters(&self) -> String {
        views::query_string(&[
            ("status", &self.status),
            ("make", &self.make),
            ("model", &self.model),
            ("organization_name", &self.organization_name),
            ("partner_id", &self.partner_id),
            ("order_by", &self.order_by),
        ])
    }
}

/// One page of FTMs as the list answered it.
pub(crate) async fn fetch(ctx: &Ctx, query: &ListQuery) -> Result<ftm::ListFtmsResponse, Failure> {
    ctx.state
        .backend
        .ftm(ctx.token(), query.request(), async |mut client, request| {
            client.list_ftms(request).await
        })
        .await
}

/// The FTM list: the caller's own FTMs (all of them for an administrator).
pub(crate) async fn list(ctx: Ctx, Query(query): Query<ListQuery>) -> Response {
    list_page(&ctx, StatusCode::OK, &query, &NewFtm::default(), None).await
}

/// What was typed into the "new FTM" form.
#[derive(Debug, Default)]
struct NewFtm {
    make: String,
    model: String,
    partner_id: String,
}

async fn list_page(
    ctx: &Ctx,
    status: StatusCode,
    query: &ListQuery,
    typed: &NewFtm,
    failure: Option<&Failure>,
) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let listed = fetch(ctx, query).await;
    if let Err(failure) = &listed
        && failure.is_unauthenticated()
    {
        return ctx.failure_page(failure);
    }
    let content = html! {
        (filters(ctx, query, user.is_admin()))
        @match &listed {
            Ok(page) => (table(ctx, page, user.is_admin(), query)),
            Err(failure) => div class="alert" role="alert" { p { (ctx.failure_message(failure)) } },
        }
        section aria-labelledby="new-ftm" class="panel" {
            h2 id="new-ftm" { (ctx.t("ftm.new")) }
            form method="post" action="/ftms" novalidate {
                (views::csrf(ctx))
                (views::failure_summary(ctx, failure))
                @if user.is_admin() {
                    (Field::text("partner_id", "field.partner_id", &typed.partner_id, 36).render(ctx, failure))
                }
                (Field::text("make", "field.make", &typed.make, 36).render(ctx, failure))
                (Field::text("model", "field.model", &typed.model, 36).render(ctx, failure))
                button type="submit" { (ctx.t("ftm.create")) }
            }
        }
    };
    views::page(ctx, status, "ftm.list_title", content)
}

fn filters(ctx: &Ctx, query: &ListQuery, is_admin: bool) -> Markup {
    html! {
        form method="get" action="/ftms" class="filters" role="search" aria-label=(ctx.t("filter.label")) {
            (views::filter_select(ctx, "status", "field.status", STATUSES, &query.status))
            (Field::text("make", "field.make", &query.make, 36).optional().filter().render(ctx, None))
            (Field::text("model", "field.model", &query.model, 36).optional().filter().render(ctx, None))
            @if is_admin {
                (Field::text("organization_name", "field.organization_name", &query.organization_name, 128).optional().filter().render(ctx, None))
                (Field::text("partner_id", "field.partner_id", &query.partner_id, 36).optional().filter().render(ctx, None))
            }
            (views::filter_select(ctx, "order_by", "field.order_by", ORDERS, &query.order_by))
            button type="submit" { (ctx.t("filter.apply")) }
        }
    }
}

/// The table of one page of FTMs, with its paging links.
pub(crate) fn table(
    ctx: &Ctx,
    page: &ftm::ListFtmsResponse,
    show_partner: bool,
    query: &ListQuery,
) -> Markup {
    html! {
        p role="status" { (ctx.texts().format("list.total", &[("count", &page.total_size.to_string())])) }
        @if !page.ftms.is_empty() {
            div class="table" {
                table {
                    caption class="visually-hidden" { (ctx.t("ftm.list_title")) }
                    thead { tr {
                        th scope="col" { (ctx.t("field.make")) }
                        th scope="col" { (ctx.t("field.model")) }
                        @if show_partner {
                            th scope="col" { (ctx.t("field.partner_id")) }
                            th scope="col" { (ctx.t("field.organization_name")) }
                        }
                        th scope="col" { (ctx.t("field.status")) }
                        th scope="col" { (ctx.t("field.updated")) }
                    } }
                    tbody {
                        @for item in &page.ftms {
                            tr {
                                td { a href={ "/ftms/" (encode_component(&item.ftm_id)) } { (item.make) } }
                                td { (item.model) }
                                @if show_partner {
                                    td { (item.partner_id) }
                                    td { (item.organization_name) }
                                }
                                td { (ctx.t(ftm_status_key(item.status))) }
                                td { (views::timestamp(item.update_time.as_ref())) }
                            }
                        }
                    }
                }
            }
        }
        (views::paging(ctx, &query.filters(), &query.page_token, &page.next_page_token))
    }
}

/// Creates an FTM for the signed-in provider (an administrator names the partner).
pub(crate) async fn create(ctx: Ctx, form: Submitted) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let typed = NewFtm {
        make: form.text("make").to_owned(),
        model: form.text("model").to_owned(),
        partner_id: form.text("partner_id").to_owned(),
    };
    let partner_id = if user.is_admin() {
        typed.partner_id.clone()
    } else {
        user.partner_id.clone()
    };
    let request = ftm::CreateFtmRequest {
        partner_id,
        make: typed.make.clone(),
        model: typed.model.clone(),
    };
    let answered = ctx
        .state
        .backend
        .ftm(ctx.token(), request, async |mut client, request| {
            client.create_ftm(request).await
        })
        .await;
    match answered {
        Ok(created) => done(
            &format!("/ftms/{}", encode_component(&created.ftm_id)),
            "ftm_created",
        ),
        Err(failure) if failure.is_unauthenticated() => ctx.failure_page(&failure),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            list_page(&ctx, status, &ListQuery::default(), &typed, Some(&failure)).await
        }
    }
}

/// One FTM: details, certificate and the actions its state and the user's role allow.
pub(crate) async fn detail(ctx: Ctx, Path(ftm_id): Path<String>) -> Response {
    detail_page(&ctx, StatusCode::OK, &ftm_id, None).await
}

async fn detail_page(
    ctx: &Ctx,
    status: StatusCode,
    ftm_id: &str,
    failure: Option<&Failure>,
) -> Response {
    let user = match ctx.require_user() {
        Ok(user) => user.clone(),
        Err(response) => return *response,
    };
    let request = ftm::GetFtmRequest {
        ftm_id: ftm_id.to_owned(),
    };
    let item = match ctx
        .state
        .backend
        .ftm(ctx.token(), request, async |mut client, request| {
            client.get_ftm(request).await
        })
        .await
    {
        Ok(item) => item,
        Err(failure) => return ctx.failure_page(&failure),
    };
    let certificate = if item.certificate_id.is_empty() {
        None
    } else {
        Some(certificate_section(ctx, &item).await)
    };
    let state = ftm::FtmStatus::try_from(item.status).unwrap_or(ftm::FtmStatus::Unspecified);
    let path = format!("/ftms/{}", encode_component(&item.ftm_id));
    let content = html! {
        (views::failure_summary(ctx, failure))
        dl class="details" {
            dt { (ctx.t("field.make")) } dd { (item.make) }
            dt { (ctx.t("field.model")) } dd { (item.model) }
            dt { (ctx.t("field.partner_id")) } dd { (item.partner_id) }
            dt { (ctx.t("field.organization_name")) } dd { (item.organization_name) }
            dt { (ctx.t("field.status")) } dd { strong { (ctx.t(ftm_status_key(item.status))) } }
            @if !item.reject_reason.is_empty() {
                dt { (ctx.t("field.reject_reason")) } dd { (item.reject_reason) }
            }
            dt { (ctx.t("field.ftm_id")) } dd { code { (item.ftm_id) } }
            dt { (ctx.t("field.updated")) } dd { (views::timestamp(item.update_time.as_ref())) }
        }
        @if let Some(certificate) = certificate { (certificate) }
        @if matches!(state, ftm::FtmStatus::PendingCertUpload | ftm::FtmStatus::Approved) {
            section class="panel" aria-labelledby="upload-chip" {
                h2 id="upload-chip" { (ctx.t("ftm.upload_certificate")) }
                @if state == ftm::FtmStatus::Approved { p class="hint" { (ctx.t("ftm.renewal_hint")) } }
                form method="post" action={ (path) "/certificate" } enctype="multipart/form-data" {
                    (views::csrf(ctx))
                    (views::certificate_input(ctx, failure, ""))
                    button type="submit" { (ctx.t("certificate.submit")) }
                }
            }
        }
        @if user.is_admin() && state == ftm::FtmStatus::PendingApproval {
            section class="panel" aria-labelledby="review" {
                h2 id="review" { (ctx.t("ftm.review")) }
                form method="post" action={ (path) "/approve" } class="inline" {
                    (views::csrf(ctx))
                    button type="submit" { (ctx.t("ftm.approve")) }
                }
                form method="post" action={ (path) "/reject" } novalidate {
                    (views::csrf(ctx))
                    div class="field" {
                        label for="field-reason" { (ctx.t("field.reject_reason")) }
                        textarea id="field-reason" name="reason" rows="3" maxlength="256" required {}
                    }
                    button type="submit" class="secondary" { (ctx.t("ftm.reject")) }
                }
            }
        }
        @if state == ftm::FtmStatus::Approved {
            form method="post" action={ (path) "/deactivate" } class="panel" {
                (views::csrf(ctx))
                p { (ctx.t("ftm.deactivate_hint")) }
                button type="submit" class="secondary" { (ctx.t("ftm.deactivate")) }
            }
        }
        (views::back_link(ctx, "/ftms", "ftm.back"))
    };
    views::page(ctx, status, "ftm.detail_title", content)
}

/// The chip certificate: subject, issuer, validity, whether the store trusts it now and
/// through which chain, and a download link.
async fn certificate_section(ctx: &Ctx, item: &ftm::Ftm) -> Markup {
    let request = ftm::GetFtmCertificateRequest {
        ftm_id: item.ftm_id.clone(),
    };
    let bundle = ctx
        .state
        .backend
        .ftm(ctx.token(), request, async |mut client, request| {
            client.get_ftm_certificate(request).await
        })
        .await;
    let bundle = match bundle {
        Ok(bundle) => bundle,
        Err(failure) => {
            return html! { div class="alert" role="alert" { p { (ctx.failure_message(&failure)) } } };
        }
    };
    let verdict = super::verify::verdict(ctx, &bundle.ca_signed_certificate_pem, "FTM").await;
    html! {
        section class="panel" aria-labelledby="chip-certificate" {
            h2 id="chip-certificate" { (ctx.t("ftm.certificate")) }
            (super::verify::describe(ctx, &bundle.ca_signed_certificate_pem))
            (super::verify::verdict_markup(ctx, &verdict))
            p { a href={ "/ftms/" (encode_component(&item.ftm_id)) "/certificate.pem" } download { (ctx.t("certificate.download")) } }
        }
    }
}

/// Downloads the chip certificate (CA-signed, PEM).
pub(crate) async fn download_certificate(ctx: Ctx, Path(ftm_id): Path<String>) -> Response {
    if let Err(response) = ctx.require_user() {
        return *response;
    }
    let request = ftm::GetFtmCertificateRequest {
        ftm_id: ftm_id.clone(),
    };
    match ctx
        .state
        .backend
        .ftm(ctx.token(), request, async |mut client, request| {
            client.get_ftm_certificate(request).await
        })
        .await
    {
        Ok(bundle) => super::pem_download(
            &format!("ftm-{ftm_id}.pem"),
            bundle.ca_signed_certificate_pem,
        ),
        Err(failure) => ctx.failure_page(&failure),
    }
}

/// Uploads the chip certificate; the FTM then waits for approval.
pub(crate) async fn upload_certificate(
    ctx: Ctx,
    Path(ftm_id): Path<String>,
    form: Submitted,
) -> Response {
    let request = ftm::UploadFtmCertificateRequest {
        ftm_id: ftm_id.clone(),
        certificate_data: super::certificate_data(&form),
    };
    let call = async |mut client: Client, request| client.upload_ftm_certificate(request).await;
    act(&ctx, &ftm_id, request, call, "ftm_certificate_uploaded").await
}

/// Approves a pending FTM (administrators).
pub(crate) async fn approve(ctx: Ctx, Path(ftm_id): Path<String>, _form: Submitted) -> Response {
    let request = ftm::ApproveFtmRequest {
        ftm_id: ftm_id.clone(),
    };
    let call = async |mut client: Client, request| client.approve_ftm(request).await;
    act(&ctx, &ftm_id, request, call, "ftm_approved").await
}

/// Rejects a pending FTM with a reason the partner sees (administrators).
pub(crate) async fn reject(ctx: Ctx, Path(ftm_id): Path<String>, form: Submitted) -> Response {
    let request = ftm::RejectFtmRequest {
        ftm_id: ftm_id.clone(),
        reason: form.text("reason").to_owned(),
    };
    let call = async |mut client: Client, request| client.reject_ftm(request).await;
    act(&ctx, &ftm_id, request, call, "ftm_rejected").await
}

/// Deactivates an approved FTM (its owner or an administrator).
pub(crate) async fn deactivate(ctx: Ctx, Path(ftm_id): Path<String>, _form: Submitted) -> Response {
    let request = ftm::DeactivateFtmRequest {
        ftm_id: ftm_id.clone(),
    };
    let call = async |mut client: Client, request| client.deactivate_ftm(request).await;
    act(&ctx, &ftm_id, request, call, "ftm_deactivated").await
}

type Client = pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient<
    pmp_common::client::BalancedChannel,
>;

/// Makes one state-changing call on an FTM for the signed-in user, then shows its page.
async fn act<T>(
    ctx: &Ctx,
    ftm_id: &str,
    request: T,
    call: impl AsyncFnOnce(Client, tonic::Request<T>) -> crate::backend::CallResult<ftm::Ftm>,
    notice: &str,
) -> Response {
    if let Err(response) = ctx.require_user() {
        return *response;
    }
    let result = ctx.state.backend.ftm(ctx.token(), request, call).await;
    after_action(ctx, ftm_id, result, notice).await
}

/// Back to the FTM's page with `notice`, or the page again explaining the failure.
async fn after_action(
    ctx: &Ctx,
    ftm_id: &str,
    result: Result<ftm::Ftm, Failure>,
    notice: &str,
) -> Response {
    match result {
        Ok(_) => done(&format!("/ftms/{}", encode_component(ftm_id)), notice),
        Err(failure) if failure.is_unauthenticated() || failure.code == tonic::Code::NotFound => {
            ctx.failure_page(&failure)
        }
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            detail_page(ctx, status, ftm_id, Some(&failure)).await
        }
    }
}
