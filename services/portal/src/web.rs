//! The HTTP plumbing every page shares: the session cookie middleware, security headers,
//! the page context extractor, checked form submissions (CSRF, origin, size) and the
//! answers to failures (sign-in again, service unavailable, not allowed).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::backend::Failure;
use crate::i18n::{Language, Texts};
use crate::session::{COOKIE_NAME, Session, SignedIn};

/// The strict Content-Security-Policy of every page: only the portal's own style sheet,
/// no scripts at all, no framing, forms posting to the portal only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The session of the request, put into its extensions by [`session_cookie`].
#[derive(Debug, Clone)]
struct CurrentSession(Session);

/// A session to store in the cookie with this response (sign-in, sign-out, language).
#[derive(Debug, Clone)]
pub struct SetSession(pub Session);

/// Opens the session cookie (or starts an anonymous session), runs the request, and writes
/// the cookie when the session is new or the handler replaced it.
pub async fn session_cookie(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    let opened = cookie_value(request.headers(), COOKIE_NAME)
        .and_then(|value| state.session_key.open(value))
        .map(|mut session| {
            if session
                .user
                .as_ref()
                .is_some_and(|user| user.expires_at <= now)
            {
                session.user = None;
            }
            session
        });
    let is_new = opened.is_none();
    let session = opened.unwrap_or_else(|| Session::anonymous(None));
    request
        .extensions_mut()
        .insert(CurrentSession(session.clone()));
    let mut response = next.run(request).await;
    let replaced = response.extensions_mut().remove::<SetSession>();
    let to_store = match replaced {
        Some(SetSession(replacement)) => Some(replacement),
        None if is_new => Some(session),
        None => None,
    };
    if let Some(session) = to_store {
        match set_cookie_header(&state, &session, now) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(error) => {
                tracing::error!(%error, "the session cookie could not be sealed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    response
}

fn set_cookie_header(state: &AppState, session: &Session, now: i64) -> anyhow::Result<HeaderValue> {
    let sealed = state.session_key.seal(session)?;
    let mut cookie = format!("{COOKIE_NAME}={sealed}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(user) = &session.user {
        cookie.push_str(&format!("; Max-Age={}", (user.expires_at - now).max(0)));
    }
    if state.settings.session.secure_cookie {
        cookie.push_str("; Secure");
    }
    Ok(HeaderValue::from_str(&cookie)?)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// One span and one log line per request: method, path (never the query or the body),
/// status and duration.
pub async fn access_log(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "http request",
        method = %request.method(),
        path = %request.uri().path()
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request"));
    response
}

/// Security headers on every response. The referrer policy is `same-origin`, not
/// `no-referrer`: under `no-referrer` browsers send `Origin: null` with every form POST,
/// which the origin check (rightly) refuses; `same-origin` still gives other sites no
/// referrer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Everything a page needs to render: the state, the visitor's session and language, and
/// the path asked for.
#[derive(Clone)]
pub struct Ctx {
    /// The portal.
    pub state: Arc<AppState>,
    /// The visitor's session.
    pub session: Session,
    /// The language of the page.
    pub language: Language,
    /// The path and query of the request.
    pub path: String,
    /// Whether the request can be repeated by following a link (a GET): only then is it
    /// where the user comes back to after signing in.
    pub repeatable: bool,
}

impl Ctx {
    /// The messages in the page's language.
    pub fn texts(&self) -> Texts<'_> {
        self.state.catalogs.texts(self.language)
    }

    /// The message `key` in the page's language.
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.texts().get(key)
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&SignedIn> {
        self.session.user.as_ref()
    }

    /// The user's token for calls to the services.
    pub fn token(&self) -> Option<&str> {
        self.user().map(|user| user.token.as_str())
    }

    /// The signed-in user, or a redirect to the sign-in page that comes back here.
    pub fn require_user(&self) -> Result<&SignedIn, Box<Response>> {
        self.user()
            .ok_or_else(|| Box::new(sign_in_redirect(self.return_path(), None)))
    }

    /// Where to come back to after signing in: this page, or the home page after a form.
    pub fn return_path(&self) -> &str {
        if self.repeatable { &self.path } else { "/home" }
    }

    /// The signed-in administrator, or a refusal.
    pub fn require_admin(&self) -> Result<&SignedIn, Box<Response>> {
        let user = self.require_user()?;
        if user.is_admin() {
            Ok(user)
        } else {
            Err(Box::new(crate::views::message_page(
                self,
                StatusCode::FORBIDDEN,
                "error.forbidden_title",
                self.t("error.forbidden"),
            )))
        }
    }

    /// What a person should read about `failure`: the contract reason's message in their
    /// language, else a message for the kind of failure. Never the service's own text.
    pub fn failure_message(&self, failure: &Failure) -> String {
        let texts = self.texts();
        if failure.code == tonic::Code::ResourceExhausted {
            let seconds = failure
                .retry_after
                .map(|delay| delay.as_secs())
                .unwrap_or(0);
            let minutes = seconds.div_ceil(60).max(1).to_string();
            return texts.format("error.rate_limited", &[("minutes", minutes.as_str())]);
        }
        if failure.is_unavailable() {
            let service = texts.get(failure.service.name_key());
            return texts.format("error.unavailable", &[("service", service)]);
        }
        if let Some(reason) = &failure.reason {
            let key = format!("reason.{reason}");
            if texts.has(&key) {
                return texts.get(&key).to_owned();
            }
        }
        let key = match failure.code {
            tonic::Code::Unauthenticated => "error.unauthenticated",
            tonic::Code::PermissionDenied => "error.forbidden",
            tonic::Code::NotFound => "error.not_found",
            tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => {
                "error.internal"
            }
            _ => "error.generic",
        };
        texts.get(key).to_owned()
    }

    /// The answer to a failure outside a form: sign in again when the session is no longer
    /// accepted, else a page explaining it with the fitting HTTP status.
    pub fn failure_page(&self, failure: &Failure) -> Response {
        if failure.is_unauthenticated() && self.user().is_some() {
            return signed_out_redirect(self, "expired");
        }
        let status = http_status(failure);
        crate::views::message_page(self, status, "error.title", &self.failure_message(failure))
    }
}

/// The HTTP status of a page that shows `failure`.
pub fn http_status(failure: &Failure) -> StatusCode {
    use tonic::Code;
    match failure.code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// To the sign-in page, coming back to `next` afterwards.
pub fn sign_in_redirect(next: &str, notice: Option<&str>) -> Response {
    let mut target = format!("/sign-in?next={}", encode_component(next));
    if let Some(notice) = notice {
        target.push_str(&format!("&notice={notice}"));
    }
    Redirect::to(&target).into_response()
}

/// Signs the visitor out (keeping their language) and sends them to the sign-in page.
pub fn signed_out_redirect(ctx: &Ctx, notice: &str) -> Response {
    let mut response = sign_in_redirect(ctx.return_path(), Some(notice));
    response
        .extensions_mut()
        .insert(SetSession(Session::anonymous(ctx.session.language)));
    response
}

/// A redirect after a successful form (post/redirect/get), with a notice to show.
pub fn done(target: &str, notice: &str) -> Response {
    let separator = if target.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{target}{separator}notice={notice}")).into_response()
}

/// Percent-encodes a query parameter value.
pub fn encode_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A local path to go back to (never another site: `//host` and `/\host` are refused).
pub fn local_path(candidate: &str) -> Option<&str> {
    let is_local = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && !candidate.chars().any(char::is_control);
    is_local.then_some(candidate)
}

impl<S> FromRequestParts<S> for Ctx
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Ctx, Response> {
        let state = Arc::<AppState>::from_ref(state);
        let session = parts
            .extensions
            .get::<CurrentSession>()
            .map(|current| current.0.clone())
            .unwrap_or_else(|| Session::anonymous(None));
        let browser = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(Language::from_accept_language);
        let language = session
            .language
            .or_else(|| {
                session
                    .user
                    .as_ref()
                    .and_then(|user| user.registered_language)
            })
            .or(browser)
            .unwrap_or_else(|| state.settings.default_language());
        let path = parts
            .uri
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Ctx {
            state,
            session,
            language,
            path,
            repeatable: parts.method == axum::http::Method::GET,
        })
    }
}

/// An uploaded file.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// As the browser named it.
    pub file_name: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// A form submission whose CSRF token and origin were checked: its text fields and files.
#[derive(Debug, Default)]
pub struct Submitted {
    fields: HashMap<String, String>,
    files: HashMap<String, Upload>,
}

impl Submitted {
    /// A text field as sent (empty when absent).
    pub fn raw(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    /// A text field, trimmed.
    pub fn text(&self, name: &str) -> &str {
        self.raw(name).trim()
    }

    /// A file that was chosen (a file input left empty sends no file).
    pub fn file(&self, name: &str) -> Option<&Upload> {
        self.files
            .get(name)
            .filter(|upload| !upload.bytes.is_empty())
    }
}

impl<S> FromRequest<S> for Submitted
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Submitted, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        if !same_origin(&parts.headers) {
            return Err(form_refused(&ctx, StatusCode::FORBIDDEN));
        }
        let request = Request::from_parts(parts, body);
        let is_multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("multipart/form-data"));
        let submitted = if is_multipart {
            read_multipart(request, state).await
        } else {
            axum::Form::<HashMap<String, String>>::from_request(request, state)
                .await
                .map(|form| Submitted {
                    fields: form.0,
                    files: HashMap::new(),
                })
                .map_err(|rejection| rejection.status())
        };
        let submitted = submitted.map_err(|status| form_refused(&ctx, status))?;
        if !ctx.session.csrf_matches(submitted.raw("csrf")) {
            return Err(form_refused(&ctx, StatusCode::FORBIDDEN));
        }
        Ok(submitted)
    }
}

async fn read_multipart<S>(request: Request, state: &S) -> Result<Submitted, StatusCode>
where
    S: Send + Sync,
{
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| rejection.status())?;
    let mut submitted = Submitted::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| error.status())?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let bytes = field.bytes().await.map_err(|error| error.status())?;
                submitted.files.insert(
                    name,
                    Upload {
                        file_name,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            None => {
                let text = field.text().await.map_err(|error| error.status())?;
                submitted.fields.insert(name, text);
            }
        }
    }
    Ok(submitted)
}

/// A form from another site (its `Origin` names another host) is refused; browsers send
/// `Origin` with every POST, so this backs up the SameSite cookie and the CSRF token.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or_default();
    origin_host.eq_ignore_ascii_case(host)
}

fn form_refused(ctx: &Ctx, status: StatusCode) -> Response {
    let key = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "error.too_large"
    } else {
        "error.form_expired"
    };
    crate::views::message_page(ctx, status, "error.title", ctx.t(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/ftms?page=2"), Some("/ftms?page=2"));
        assert_eq!(local_path("//evil.example"), None);
        assert_eq!(local_path("/\\evil.example"), None);
        assert_eq!(local_path("https://evil.example"), None);
        assert_eq!(local_path("/a\nb"), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pmp_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers, "pmp_session"), Some("abc"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }

    #[test]
    fn foreign_origins_are_refused() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_static("portal.example:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://portal.example:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }
}
