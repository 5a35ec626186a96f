//! Registration, sign-in, sign-out and the language switcher.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use pmp_proto::partner::v1 as registry;

use crate::backend::Failure;
use crate::i18n::Language;
use crate::session::{Session, SignedIn};
use crate::views::{self, Field};
use crate::web::{Ctx, SetSession, Submitted, done, local_path};

/// The partner types a person registers through the portal (the registry knows more, for
/// other MOSIP partner kinds).
const PARTNER_TYPES: &[(&str, &str)] = &[
    ("FTM_Provider", "partner_type.ftm_provider"),
    ("Device_Provider", "partner_type.device_provider"),
    ("Auth_Partner", "partner_type.auth_partner"),
];

/// `/`: the home page when signed in, else sign-in.
pub(crate) async fn root(ctx: Ctx) -> Response {
    let target = if ctx.user().is_some() {
        "/home"
    } else {
        "/sign-in"
    };
    Redirect::to(target).into_response()
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    #[serde(default)]
    next: String,
}

/// The sign-in form.
pub(crate) async fn sign_in_form(ctx: Ctx, Query(query): Query<SignInQuery>) -> Response {
    sign_in_page(&ctx, StatusCode::OK, "", &query.next, None)
}

fn sign_in_page(
    ctx: &Ctx,
    status: StatusCode,
    username: &str,
    next: &str,
    failure: Option<&Failure>,
) -> Response {
    let content = html! {
        form method="post" action="/sign-in" class="panel" novalidate {
            (views::csrf(ctx))
            input type="hidden" name="next" value=(next);
            (views::failure_summary(ctx, failure))
            (Field::text("username", "field.username", username, 36).autocomplete("username").render(ctx, None))
            (Field::text("password", "field.password", "", 256).kind("password").autocomplete("current-password").render(ctx, None))
            button type="submit" { (ctx.t("sign_in.submit")) }
        }
        p { (ctx.t("sign_in.no_account")) " " a href="/register" { (ctx.t("nav.register")) } }
    };
    views::page(ctx, status, "sign_in.title", content)
}

/// Signs in with the registry; on success the session holds the token and the user goes
/// back where they were going.
pub(crate) async fn sign_in(ctx: Ctx, form: Submitted) -> Response {
    let username = form.text("username");
    let next = local_path(form.text("next")).unwrap_or("/home").to_owned();
    let login = registry::LoginRequest {
        username: username.to_owned(),
        password: form.raw("password").to_owned(),
    };
    let answered = ctx
        .state
        .backend
        .registry(None, login, async |mut client, request| {
            client.login(request).await
        })
        .await;
    let login = match answered {
        Ok(login) => login,
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            return sign_in_page(&ctx, status, username, &next, Some(&failure));
        }
    };
    let registered_language = registered_language(&ctx, username, &login.access_token).await;
    let user = SignedIn {
        partner_id: username.to_owned(),
        token: login.access_token,
        roles: login.roles,
        expires_at: chrono::Utc::now().timestamp() + login.expires_in.max(0),
        registered_language,
    };
    let mut response = Redirect::to(&next).into_response();
    response
        .extensions_mut()
        .insert(SetSession(ctx.session.signed_in(user)));
    response
}

/// The partner's registered language (administrators have no partner record).
async fn registered_language(ctx: &Ctx, partner_id: &str, token: &str) -> Option<Language> {
    let request = registry::GetPartnerRequest {
        partner_id: partner_id.to_owned(),
    };
    let partner = ctx
        .state
        .backend
        .registry(Some(token), request, async |mut client, request| {
            client.get_partner(request).await
        })
        .await
        .ok()?;
    Language::from_code(&partner.lang_code)
}

/// Signs out: a fresh anonymous session replaces the signed-in one.
pub(crate) async fn sign_out(ctx: Ctx, _form: Submitted) -> Response {
    let mut response = done("/sign-in", "signed_out");
    response
        .extensions_mut()
        .insert(SetSession(Session::anonymous(ctx.session.language)));
    response
}

/// The self-registration form.
pub(crate) async fn register_form(ctx: Ctx) -> Response {
    let language = ctx.language.code().to_owned();
    register_page(
        &ctx,
        StatusCode::OK,
        &Registration {
            lang_code: language,
            partner_type: "FTM_Provider".into(),
            ..Registration::default()
        },
        None,
    )
}

/// The registration fields, as typed (shown again after a refusal).
#[derive(Debug, Default)]
struct Registration {
    partner_id: String,
    first_name: String,
    last_name: String,
    organization_name: String,
    partner_type: String,
    address: String,
    email: String,
    phone: String,
    lang_code: String,
}

impl Registration {
    fn from_form(form: &Submitted) -> Registration {
        Registration {
            partner_id: form.text("partner_id").to_owned(),
            first_name: form.text("first_name").to_owned(),
            last_name: form.text("last_name").to_owned(),
            organization_name: form.text("organization_name").to_owned(),
            partner_type: form.text("partner_type").to_owned(),
            address: form.text("address").to_owned(),
            email: form.text("email").to_owned(),
            phone: form.text("phone").to_owned(),
            lang_code: form.text("lang_code").to_owned(),
        }
    }
}

fn register_page(
    ctx: &Ctx,
    status: StatusCode,
    typed: &Registration,
    failure: Option<&Failure>,
) -> Response {
    let languages: Vec<(&str, &str)> = Language::ALL
        .iter()
        .map(|language| (language.code(), language_label(*language)))
        .collect();
    let address_error = failure
        .filter(|failure| failure.concerns("address"))
        .map(|failure| ctx.failure_message(failure));
    let content = html! {
        form method="post" action="/register" class="panel" novalidate {
            (views::csrf(ctx))
            (views::failure_summary(ctx, failure))
            fieldset {
                legend { (ctx.t("register.account")) }
                (Field::text("partner_id", "field.partner_id", &typed.partner_id, 36).autocomplete("username").hint("hint.partner_id").render(ctx, failure))
                (Field::text("password", "field.password", "", 256).kind("password").autocomplete("new-password").hint("hint.password").render(ctx, failure))
            }
            fieldset {
                legend { (ctx.t("register.person")) }
                (Field::text("first_name", "field.first_name", &typed.first_name, 64).autocomplete("given-name").render(ctx, failure))
                (Field::text("last_name", "field.last_name", &typed.last_name, 64).autocomplete("family-name").render(ctx, failure))
                (Field::text("email", "field.email", &typed.email, 254).kind("email").autocomplete("email").render(ctx, failure))
                (Field::text("phone", "field.phone", &typed.phone, 16).kind("tel").autocomplete("tel").hint("hint.phone").render(ctx, failure))
            }
            fieldset {
                legend { (ctx.t("register.organization")) }
                (Field::text("organization_name", "field.organization_name", &typed.organization_name, 128).autocomplete("organization").hint("hint.organization_name").render(ctx, failure))
                (views::select(ctx, "partner_type", "field.partner_type", PARTNER_TYPES, &typed.partner_type))
                div class=(if address_error.is_some() { "field invalid" } else { "field" }) {
                    label for="field-address" { (ctx.t("field.address")) }
                    @if let Some(error) = &address_error { p class="error" id="field-address-error" { (error) } }
                    textarea id="field-address" name="address" rows="3" maxlength="2000" required
                        autocomplete="street-address"
                        aria-invalid=[address_error.as_ref().map(|_| "true")]
                        aria-describedby=[address_error.as_ref().map(|_| "field-address-error")] { (typed.address) }
                }
                (views::select(ctx, "lang_code", "field.lang_code", &languages, &typed.lang_code))
            }
            button type="submit" { (ctx.t("register.submit")) }
        }
    };
    views::page(ctx, status, "register.title", content)
}

fn language_label(language: Language) -> &'static str {
    match language {
        Language::English => "language.eng",
        Language::French => "language.fra",
        Language::Arabic => "language.ara",
    }
}

/// Registers the partner with the registry; a refusal shows the form again with the
/// contract's message next to the field it concerns.
pub(crate) async fn register(ctx: Ctx, form: Submitted) -> Response {
    let typed = Registration::from_form(&form);
    let request = registry::RegisterPartnerRequest {
        partner_id: typed.partner_id.clone(),
        password: form.raw("password").to_owned(),
        first_name: typed.first_name.clone(),
        last_name: typed.last_name.clone(),
        organization_name: typed.organization_name.clone(),
        partner_type: typed.partner_type.clone(),
        address: typed.address.clone(),
        email: typed.email.clone(),
        phone: typed.phone.clone(),
        lang_code: typed.lang_code.clone(),
    };
    let answered = ctx
        .state
        .backend
        .registry(None, request, async |mut client, request| {
            client.register_partner(request).await
        })
        .await;
    match answered {
        Ok(_) => done("/sign-in", "registered"),
        Err(failure) => {
            let status = crate::web::http_status(&failure);
            register_page(&ctx, status, &typed, Some(&failure))
        }
    }
}

/// Where to return after switching language.
#[derive(Debug, Deserialize)]
pub(crate) struct BackQuery {
    #[serde(default)]
    back: String,
}

/// Switches the language (a link, so it works without a form) and returns to the page.
pub(crate) async fn choose_language(
    ctx: Ctx,
    Path(code): Path<String>,
    Query(query): Query<BackQuery>,
) -> Response {
    let back = local_path(&query.back).unwrap_or("/");
    let Some(language) = Language::from_code(&code) else {
        return Redirect::to(back).into_response();
    };
    let mut session = ctx.session.clone();
    session.language = Some(language);
    let mut response = Redirect::to(back).into_response();
    response.extensions_mut().insert(SetSession(session));
    response
}
