//! A scripted browser for the portal's handler tests: it keeps the session cookie, reads the
//! CSRF token from each page, submits forms (URL-encoded or multipart) and follows
//! redirects, against the portal's router in process, in front of the in-process platform.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use pmp_e2e::inprocess::{InProcessPlatform, Options};
use portal::config::{DEFAULTS, ENV_PREFIX, PortalSettings};
use portal::web::encode_component;

/// The host every request names (forms are checked against it).
pub const HOST: &str = "portal.test";

/// The three services and a portal in front of them.
pub struct Portal {
    pub platform: InProcessPlatform,
    pub router: axum::Router,
    pub state: Arc<portal::AppState>,
    _directory: tempfile::TempDir,
}

impl Portal {
    /// The platform on SQLite and a portal in front of it.
    pub async fn start() -> Portal {
        Self::start_with(Options::on("sqlite"), |_| {}).await
    }

    /// The platform with `options` and a portal whose settings `adjust` may change.
    pub async fn start_with(options: Options, adjust: impl FnOnce(&mut PortalSettings)) -> Portal {
        let platform = InProcessPlatform::start(options).await.expect("platform");
        let directory = tempfile::tempdir().expect("directory");
        let mut settings: PortalSettings =
            pmp_common::config::load_with_env(ENV_PREFIX, DEFAULTS, None, Some(Default::default()))
                .expect("portal settings");
        settings.services.registry = platform.registry.address.clone();
        settings.services.certificate_store = platform.store_address.clone();
        settings.services.ftm_management = platform.ftm.address.clone();
        settings.session.key_file = directory.path().join("session.hex").display().to_string();
        adjust(&mut settings);
        let state = Arc::new(portal::AppState::new(settings).expect("portal state"));
        Portal {
            router: portal::router(Arc::clone(&state)),
            state,
            platform,
            _directory: directory,
        }
    }

    /// A browser with no cookie yet.
    pub fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookie: None,
            csrf: None,
            accept_language: None,
        }
    }

    /// A browser signed in as the platform administrator.
    pub async fn admin(&self) -> Browser {
        let mut browser = self.browser();
        browser
            .sign_in("admin", partner_registry::testing::TEST_ADMIN_PASSWORD)
            .await;
        browser
    }
}

/// One answer of the portal.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the page contains `text` (HTML-escaped as maud writes it).
    #[track_caller]
    pub fn assert_contains(&self, text: &str) {
        let escaped = escape(text);
        assert!(
            self.body.contains(&escaped),
            "page ({}) lacks {text:?}:\n{}",
            self.status,
            self.body
        );
    }

    /// Asserts the page's HTML contains `markup` as is.
    #[track_caller]
    pub fn assert_markup(&self, markup: &str) {
        assert!(
            self.body.contains(markup),
            "page ({}) lacks {markup}:\n{}",
            self.status,
            self.body
        );
    }

    /// Asserts the page does not contain `text`.
    #[track_caller]
    pub fn assert_lacks(&self, text: &str) {
        assert!(
            !self.body.contains(&escape(text)),
            "page ({}) unexpectedly has {text:?}:\n{}",
            self.status,
            self.body
        );
    }

    /// The error shown next to input `name` (its `field-<name>-error` paragraph).
    pub fn field_error(&self, name: &str) -> Option<String> {
        let marker = format!("id=\"field-{name}-error\">");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find("</p>")?;
        Some(unescape(&self.body[start..start + end]))
    }

    /// The first link whose text contains `text`.
    pub fn link(&self, text: &str) -> Option<String> {
        let escaped = escape(text);
        let position = self.body.find(&escaped)?;
        let before = &self.body[..position];
        let href = before.rfind("href=\"")? + 6;
        let end = before[href..].find('"')?;
        Some(unescape(&before[href..href + end]))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A file to upload.
pub struct File<'a> {
    pub field: &'a str,
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// A browser: one cookie jar, the last CSRF token seen.
pub struct Browser {
    router: axum::Router,
    pub cookie: Option<String>,
    csrf: Option<String>,
    pub accept_language: Option<String>,
}

impl Browser {
    /// GET `path` (no redirect followed).
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self
            .request("GET", path)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    /// GET `path`, following redirects.
    pub async fn open(&mut self, path: &str) -> Page {
        let page = self.get(path).await;
        self.follow(page).await
    }

    /// Follows redirects from `page`.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..5 {
            if !page.status.is_redirection() {
                return page;
            }
            let location = page.location().to_owned();
            page = self.get(&location).await;
        }
        page
    }

    /// Submits a URL-encoded form with the current CSRF token (read from the last page
    /// when none was seen yet, by opening `path` first).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf_token(path).await;
        let mut encoded: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{name}={}", encode_component(value)))
            .collect();
        encoded.push(format!("csrf={}", encode_component(&csrf)));
        self.post_raw(
            path,
            "application/x-www-form-urlencoded",
            encoded.join("&").into_bytes(),
        )
        .await
    }

    /// Submits a multipart form (fields and files) with the current CSRF token.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[File<'_>],
    ) -> Page {
        let csrf = self.csrf_token(path).await;
        let boundary = "----portal-test-boundary-7d1";
        let mut body = Vec::new();
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        text("csrf", &csrf);
        for (name, value) in fields {
            text(name, value);
        }
        for file in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    file.field, file.name
                )
                .as_bytes(),
            );
            body.extend_from_slice(file.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.post_raw(
            path,
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await
    }

    /// POSTs `body` as is (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        let request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ORIGIN, format!("http://{HOST}"))
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Signs in and asserts it worked.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        self.open("/sign-in").await;
        let page = self
            .post(
                "/sign-in",
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        self.follow(page).await
    }

    async fn csrf_token(&mut self, path: &str) -> String {
        if self.csrf.is_none() {
            let form_page = path.split('?').next().unwrap_or(path).to_owned();
            self.open(&form_page).await;
        }
        self.csrf.clone().expect("a CSRF token on the page")
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST);
        if let Some(cookie) = &self.cookie {
            builder = builder.header(header::COOKIE, format!("pmp_session={cookie}"));
        }
        if let Some(language) = &self.accept_language {
            builder = builder.header(header::ACCEPT_LANGUAGE, language);
        }
        builder
    }

    async fn send(&mut self, request: Request<Body>) -> Page {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        for value in headers.get_all(header::SET_COOKIE) {
            let value = value.to_str().expect("cookie header");
            if let Some(rest) = value.strip_prefix("pmp_session=") {
                self.cookie = rest.split(';').next().map(str::to_owned);
                self.csrf = None;
            }
        }
        let marker = "name=\"csrf\" value=\"";
        if let Some(start) = body.find(marker) {
            let start = start + marker.len();
            if let Some(end) = body[start..].find('"') {
                self.csrf = Some(body[start..start + end].to_owned());
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }
}

/// The registration form of `partner_id` for `organization`, every field valid.
pub fn registration<'a>(partner_id: &'a str, organization: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("partner_id", partner_id),
        ("password", "a-long-password"),
        ("first_name", "Ada"),
        ("last_name", "Lovelace"),
        ("organization_name", organization),
        ("partner_type", "FTM_Provider"),
        ("address", "1 Main Street, Springfield"),
        ("email", "ada@example.org"),
        ("phone", "+1 555 0100"),
        ("lang_code", "eng"),
    ]
}

/// `registration` with `field` replaced by `value`.
pub fn registration_with<'a>(
    partner_id: &'a str,
    organization: &'a str,
    field: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    registration(partner_id, organization)
        .into_iter()
        .map(|(name, current)| (name, if name == field { value } else { current }))
        .collect()
}
