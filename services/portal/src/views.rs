//! The page frame and the pieces every form uses: labelled inputs with their error next to
//! them, the CSRF field, notices and the error summary. Semantic HTML, no scripts; maud
//! escapes every value.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::backend::Failure;
use crate::i18n::Language;
use crate::web::{Ctx, encode_component};

/// Notices a page may show after a redirect (`?notice=`), by catalogue key suffix; anything
/// else in the query is ignored.
const NOTICES: &[&str] = &[
    "registered",
    "signed_out",
    "expired",
    "certificate_uploaded",
    "ftm_created",
    "ftm_certificate_uploaded",
    "ftm_approved",
    "ftm_rejected",
    "ftm_deactivated",
    "partner_activated",
    "partner_deactivated",
];

/// A whole page: `title_key` names its heading, `content` its body.
pub(crate) fn page(ctx: &Ctx, status: StatusCode, title_key: &str, content: Markup) -> Response {
    let language = ctx.language;
    let title = ctx.t(title_key);
    let markup = html! {
        (DOCTYPE)
        html lang=(language.tag()) dir=(language.direction()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (ctx.t("app.name")) }
                link rel="stylesheet" href="/static/portal.css";
            }
            body {
                a class="skip" href="#main" { (ctx.t("nav.skip")) }
                (header(ctx))
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (notice(ctx))
                    (content)
                }
                footer { p { (ctx.t("app.footer")) } }
            }
        }
    };
    (status, markup).into_response()
}

/// A page with one message (errors, refusals).
pub(crate) fn message_page(
    ctx: &Ctx,
    status: StatusCode,
    title_key: &str,
    message: &str,
) -> Response {
    let content = html! {
        div class=(if status.is_success() { "notice" } else { "alert" }) role="alert" {
            p { (message) }
        }
        p { a href="/" { (ctx.t("nav.home")) } }
    };
    page(ctx, status, title_key, content)
}

fn header(ctx: &Ctx) -> Markup {
    html! {
        header class="top" {
            a class="brand" href="/" { (ctx.t("app.name")) }
            nav aria-label=(ctx.t("nav.main")) {
                ul {
                    @if let Some(user) = ctx.user() {
                        li { a href="/home" { (ctx.t("nav.home")) } }
                        @if user.is_admin() {
                            li { a href="/admin/review" { (ctx.t("nav.review")) } }
                            li { a href="/ftms" { (ctx.t("nav.ftms")) } }
                            li { a href="/admin/partners" { (ctx.t("nav.partners")) } }
                            li { a href="/admin/ca" { (ctx.t("nav.trust_store")) } }
                        } @else {
                            li { a href="/certificate" { (ctx.t("nav.certificate")) } }
                            li { a href="/ftms" { (ctx.t("nav.ftms")) } }
                        }
                        li { a href="/verify" { (ctx.t("nav.verify")) } }
                        li {
                            form method="post" action="/sign-out" class="inline" {
                                (csrf(ctx))
                                button type="submit" class="link" {
                                    (ctx.t("nav.sign_out")) " (" (user.partner_id) ")"
                                }
                            }
                        }
                    } @else {
                        li { a href="/sign-in" { (ctx.t("nav.sign_in")) } }
                        li { a href="/register" { (ctx.t("nav.register")) } }
                    }
                }
            }
            nav aria-label=(ctx.t("nav.language")) class="languages" {
                ul {
                    @for language in Language::ALL {
                        li {
                            @if language == ctx.language {
                                span aria-current="true" lang=(language.tag()) { (language.own_name()) }
                            } @else {
                                a href={ "/language/" (language.code()) "?back=" (encode_component(&ctx.path)) }
                                    lang=(language.tag()) hreflang=(language.tag()) {
                                    (language.own_name())
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn notice(ctx: &Ctx) -> Markup {
    let requested = ctx
        .path
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("notice="));
    let Some(known) = requested.and_then(|notice| NOTICES.iter().find(|known| **known == notice))
    else {
        return html! {};
    };
    let key = format!("notice.{known}");
    html! {
        div class="notice" role="status" { p { (ctx.texts().get(&key)) } }
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.session.csrf); }
}

/// The summary of a failed submission at the top of a form (announced by screen readers).
pub(crate) fn failure_summary(ctx: &Ctx, failure: Option<&Failure>) -> Markup {
    match failure {
        Some(failure) => html! {
            div class="alert" role="alert" id="form-error" {
                p { (ctx.failure_message(failure)) }
            }
        },
        None => html! {},
    }
}

/// One labelled input.
pub(crate) struct Field<'a> {
    /// The form field name (and the contract's field name for error matching).
    pub(crate) name: &'a str,
    /// Catalogue key of the label.
    pub(crate) label: &'a str,
    /// `text`, `email`, `password`, `tel`, ...
    pub(crate) kind: &'a str,
    /// The value to show again after a failed submission.
    pub(crate) value: &'a str,
    /// Whether the field must be filled.
    pub(crate) required: bool,
    /// The `autocomplete` token.
    pub(crate) autocomplete: &'a str,
    /// Largest length the contract accepts.
    pub(crate) max_length: usize,
    /// Catalogue key of a hint shown under the label, if any.
    pub(crate) hint: Option<&'a str>,
    /// Start of the element ids: `field` (`field-<name>`), or `filter` in a list's filter
    /// form, so that ids stay unique (and labels name their own input) on a page that has
    /// both a filter and a form with a field of the same name.
    pub(crate) id_prefix: &'a str,
}

impl<'a> Field<'a> {
    /// A required text field.
    pub(crate) fn text(name: &'a str, label: &'a str, value: &'a str, max_length: usize) -> Self {
        Field {
            name,
            label,
            kind: "text",
            value,
            required: true,
            autocomplete: "off",
            max_length,
            hint: None,
            id_prefix: "field",
        }
    }

    /// The same field with another input type.
    pub(crate) fn kind(self, kind: &'a str) -> Self {
        Field { kind, ..self }
    }

    /// The same field with an `autocomplete` token.
    pub(crate) fn autocomplete(self, autocomplete: &'a str) -> Self {
        Field {
            autocomplete,
            ..self
        }
    }

    /// The same field, optional.
    pub(crate) fn optional(self) -> Self {
        Field {
            required: false,
            ..self
        }
    }

    /// The same field in a list's filter form (ids `filter-<name>`).
    pub(crate) fn filter(self) -> Self {
        Field {
            id_prefix: "filter",
            ..self
        }
    }

    /// The same field with a hint.
    pub(crate) fn hint(self, hint: &'a str) -> Self {
        Field {
            hint: Some(hint),
            ..self
        }
    }

    /// The label, input, hint and (when `failure` concerns it) the error.
    pub(crate) fn render(&self, ctx: &Ctx, failure: Option<&Failure>) -> Markup {
        let error = failure
            .filter(|failure| failure.concerns(self.name))
            .map(|failure| ctx.failure_message(failure));
        let id = format!("{}-{}", self.id_prefix, self.name);
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let described_by = [
            self.hint.map(|_| hint_id.as_str()),
            error.as_ref().map(|_| error_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let value = if self.kind == "password" {
            ""
        } else {
            self.value
        };
        html! {
            div class=(if error.is_some() { "field invalid" } else { "field" }) {
                label for=(id) {
                    (ctx.t(self.label))
                    @if !self.required { " " span class="optional" { (ctx.t("form.optional")) } }
                }
                @if let Some(hint) = self.hint { p class="hint" id=(hint_id) { (ctx.t(hint)) } }
                @if let Some(error) = &error { p class="error" id=(error_id) { (error) } }
                input id=(id) name=(self.name) type=(self.kind) value=(value)
                    maxlength=(self.max_length) autocomplete=(self.autocomplete)
                    required[self.required]
                    aria-invalid=[error.as_ref().map(|_| "true")]
                    aria-describedby=[(!described_by.is_empty()).then_some(described_by.as_str())];
            }
        }
    }
}

/// A `<select>` of `options` (value, catalogue key of the label).
pub(crate) fn select(
    ctx: &Ctx,
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
) -> Markup {
    select_with_id(
        ctx,
        &format!("field-{name}"),
        name,
        label,
        options,
        selected,
    )
}

/// [`select`] in a list's filter form (id `filter-<name>`, see [`Field::filter`]).
pub(crate) fn filter_select(
    ctx: &Ctx,
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
) -> Markup {
    select_with_id(
        ctx,
        &format!("filter-{name}"),
        name,
        label,
        options,
        selected,
    )
}

fn select_with_id(
    ctx: &Ctx,
    id: &str,
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (ctx.t(label)) }
            select id=(id) name=(name) {
                @for (value, option_label) in options {
                    option value=(value) selected[*value == selected] { (ctx.t(option_label)) }
                }
            }
        }
    }
}

/// A certificate input: a file picker (PEM or DER) or pasted PEM text.
pub(crate) fn certificate_input(ctx: &Ctx, failure: Option<&Failure>, pasted: &str) -> Markup {
    let error = failure
        .filter(|failure| failure.concerns("certificate_data"))
        .map(|failure| ctx.failure_message(failure));
    html! {
        fieldset class=(if error.is_some() { "invalid" } else { "" }) {
            legend { (ctx.t("certificate.legend")) }
            @if let Some(error) = &error { p class="error" id="certificate-error" { (error) } }
            div class="field" {
                label for="field-certificate_file" { (ctx.t("certificate.file")) }
                p class="hint" id="field-certificate_file-hint" { (ctx.t("certificate.file_hint")) }
                input id="field-certificate_file" name="certificate_file" type="file"
                    accept=".pem,.crt,.cer,.der,.p7b,.p7c"
                    aria-describedby="field-certificate_file-hint";
            }
            div class="field" {
                label for="field-certificate_text" { (ctx.t("certificate.text")) }
                textarea id="field-certificate_text" name="certificate_text" rows="8"
                    spellcheck="false" { (pasted) }
            }
        }
    }
}

/// A date for people: `2027-01-31 14:05 UTC`.
pub(crate) fn timestamp(value: Option<&prost_types::Timestamp>) -> String {
    value
        .and_then(|value| chrono::DateTime::from_timestamp(value.seconds, 0))
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A link back to a list page.
pub(crate) fn back_link(ctx: &Ctx, href: &str, label_key: &str) -> Markup {
    html! { p { a href=(href) { (ctx.t(label_key)) } } }
}

/// "First page" and "Next page" links of a list; `filters` is the query string of its
/// filters (without the page token).
pub(crate) fn paging(ctx: &Ctx, filters: &str, current_token: &str, next_token: &str) -> Markup {
    let with_token = |token: &str| {
        let token = (!token.is_empty()).then(|| format!("page_token={}", encode_component(token)));
        let parts: Vec<&str> = [Some(filters), token.as_deref()]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect();
        format!("?{}", parts.join("&"))
    };
    html! {
        nav aria-label=(ctx.t("list.paging")) class="paging" {
            @if !current_token.is_empty() {
                a href=(with_token("")) { (ctx.t("list.first_page")) }
            }
            @if !next_token.is_empty() {
                " " a href=(with_token(next_token)) rel="next" { (ctx.t("list.next_page")) }
            }
        }
    }
}

/// The query string of the non-empty `pairs`.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}
