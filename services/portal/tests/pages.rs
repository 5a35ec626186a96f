//! Every page and form of the portal, through its router, in front of the real services
//! (in process, SQLite): the seed workflow of both roles, each validation error shown next
//! to its field, refusals, languages, security headers and a service that is down.

mod support;

use axum::http::StatusCode;
use pmp_dev_certs::DevPki;
use pmp_e2e::inprocess::{Options, StoreChoice};
use support::{Browser, File, Portal, registration, registration_with};

const ORG: &str = "ACME Chips";

/// Registers `partner_id` of `ORG` through the form and signs in.
async fn registered_partner(portal: &Portal, partner_id: &str) -> Browser {
    let mut browser = portal.browser();
    browser.open("/register").await;
    let fields = registration(partner_id, ORG);
    let email = format!("{partner_id}@example.org");
    let fields: Vec<(&str, &str)> = fields
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                if name == "email" {
                    email.as_str()
                } else {
                    value
                },
            )
        })
        .collect();
    let page = browser.post("/register", &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/sign-in?notice=registered");
    browser.sign_in(partner_id, "a-long-password").await;
    browser
}

/// The admin uploads the FTM domain's CAs through the trust-store page.
async fn upload_cas(portal: &Portal, pki: &DevPki) {
    let mut admin = portal.admin().await;
    admin.open("/admin/ca").await;
    let bundle = pki.ca_bundle_pem().expect("bundle");
    let page = admin
        .post_multipart(
            "/admin/ca",
            &[("partner_domain", "FTM"), ("certificate_text", &bundle)],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Every certificate was stored.");
    page.assert_contains("ACME Chips Dev Root CA");
    page.assert_contains("ACME Chips Dev Intermediate CA");
}

#[tokio::test]
async fn seed_workflow_in_the_browser_for_both_roles() {
    let portal = Portal::start().await;
    let pki = DevPki::generate(ORG).expect("PKI");
    let mut partner = registered_partner(&portal, "acme").await;
    let home = partner.open("/home").await;
    home.assert_contains("Waiting for a partner certificate");
    home.assert_contains("upload your partner certificate");

    upload_cas(&portal, &pki).await;

    // The partner certificate, uploaded as a DER file, makes the partner active.
    partner.open("/certificate").await;
    let der = pki.partner.der().expect("der");
    let page = partner
        .post_multipart(
            "/certificate",
            &[("partner_domain", "FTM")],
            &[File {
                field: "certificate_file",
                name: "partner.der",
                bytes: &der,
            }],
        )
        .await;
    assert_eq!(
        page.location(),
        "/certificate?notice=certificate_uploaded",
        "{}",
        page.body
    );
    let page = partner.follow(page).await;
    page.assert_contains("Your certificate was accepted.");
    let download = partner.get("/certificate/platform-signed.pem").await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(download.body.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        download.headers[axum::http::header::CONTENT_DISPOSITION]
            .to_str()
            .expect("header")
            .contains("acme-platform-signed.pem")
    );
    let ca_signed = partner.get("/certificate/ca-signed.pem").await;
    assert_eq!(ca_signed.body, pki.partner.pem().expect("pem"));
    partner
        .open("/home")
        .await
        .assert_contains("Your account is active.");

    // The FTM and its chip certificate.
    let page = partner
        .post("/ftms", &[("make", "  ACME   Secure "), ("model", "S1")])
        .await;
    assert!(page.location().starts_with("/ftms/"), "{}", page.body);
    let ftm_path = page.location().split('?').next().expect("path").to_owned();
    let page = partner.follow(page).await;
    page.assert_contains("The FTM was created.");
    page.assert_contains("ACME Secure");
    page.assert_contains("Waiting for the chip certificate");
    let chip = pki.ftm_chip.pem().expect("pem");
    let page = partner
        .post_multipart(
            &format!("{ftm_path}/certificate"),
            &[("certificate_text", &chip)],
            &[],
        )
        .await;
    let page = partner.follow(page).await;
    page.assert_contains("The chip certificate was accepted and waits for approval.");
    page.assert_contains("Waiting for approval");
    page.assert_contains("CN=ACME Chips FTM Chip");
    page.assert_lacks("Approve");

    // The admin's review queue lists it; the admin approves.
    let mut admin = portal.admin().await;
    let home = admin.open("/home").await;
    home.assert_contains("1 FTM(s) wait for your review.");
    let queue = admin.open("/admin/review").await;
    queue.assert_contains("ACME Secure");
    let detail = admin.open(&ftm_path).await;
    detail.assert_contains("CN=ACME Chips Dev Intermediate CA");
    let page = admin.post(&format!("{ftm_path}/approve"), &[]).await;
    let page = admin.follow(page).await;
    page.assert_contains("The FTM is approved: it is active and trusted.");
    page.assert_contains("Trusted: the platform trusts this certificate in this domain now.");
    admin
        .open("/admin/review")
        .await
        .assert_contains("0 in all.");

    // The verify page agrees.
    admin.open("/verify").await;
    let verdict = admin
        .post_multipart(
            "/verify",
            &[("partner_domain", "FTM"), ("certificate_text", &chip)],
            &[],
        )
        .await;
    verdict.assert_contains("Trusted: the platform trusts this certificate");
    verdict.assert_contains("CN=ACME Chips Dev Root CA");

    // The partner sees it approved in the list, downloads it, and deactivates it.
    let list = partner.open("/ftms").await;
    list.assert_contains("Approved (active and trusted)");
    let download = partner.get(&format!("{ftm_path}/certificate.pem")).await;
    assert_eq!(download.body, chip);
    let page = partner.post(&format!("{ftm_path}/deactivate"), &[]).await;
    let page = partner.follow(page).await;
    page.assert_contains("The FTM was deactivated.");
    page.assert_contains("Not trusted.");
}

#[tokio::test]
async fn a_rejected_ftm_shows_its_reason_to_the_partner() {
    let portal = Portal::start().await;
    let pki = DevPki::generate(ORG).expect("PKI");
    upload_cas(&portal, &pki).await;
    let mut partner = registered_partner(&portal, "acme").await;
    partner.open("/certificate").await;
    let partner_pem = pki.partner.pem().expect("pem");
    partner
        .post_multipart(
            "/certificate",
            &[
                ("partner_domain", "FTM"),
                ("certificate_text", &partner_pem),
            ],
            &[],
        )
        .await;
    let page = partner
        .post("/ftms", &[("make", "ACME"), ("model", "R1")])
        .await;
    let ftm_path = page.location().split('?').next().expect("path").to_owned();
    let chip = pki.ftm_chip.pem().expect("pem");
    partner
        .post_multipart(
            &format!("{ftm_path}/certificate"),
            &[("certificate_text", &chip)],
            &[],
        )
        .await;

    let mut admin = portal.admin().await;
    admin.open(&ftm_path).await;
    let page = admin
        .post(
            &format!("{ftm_path}/reject"),
            &[("reason", "Chip certificate lacks the FIPS profile")],
        )
        .await;
    admin
        .follow(page)
        .await
        .assert_contains("The FTM was rejected.");
    let again = admin.post(&format!("{ftm_path}/approve"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_contains("Only an FTM waiting for approval can be approved or rejected.");

    let page = partner.open(&ftm_path).await;
    page.assert_contains("Rejected");
    page.assert_contains("Chip certificate lacks the FIPS profile");
    let list = partner.open("/ftms?status=REJECTED").await;
    list.assert_contains("1 in all.");
}

#[tokio::test]
async fn registration_errors_are_shown_next_to_their_fields() {
    let portal = Portal::start().await;
    let mut browser = portal.browser();
    browser.open("/register").await;
    let cases: [(&str, &str, &str, &str); 8] = [
        ("first_name", "", "first_name", "Please fill in this field"),
        (
            "email",
            "not-an-address",
            "email",
            "Enter a valid e-mail address.",
        ),
        (
            "phone",
            "call me",
            "phone",
            "Enter a phone number of 1 to 16 digits",
        ),
        (
            "partner_id",
            "with space",
            "partner_id",
            "must not contain spaces",
        ),
        (
            "partner_id",
            "a-partner-id-that-is-far-too-long-for-mosip",
            "partner_id",
            "at most 36 characters",
        ),
        ("password", "short", "password", "The password is too weak"),
        ("partner_type", "Martian", "partner_type", "not known"),
        ("lang_code", "deu", "lang_code", "not supported"),
    ];
    for (field, value, shown_at, message) in cases {
        let page = browser
            .post("/register", &registration_with("ada", ORG, field, value))
            .await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            page.body
        );
        page.assert_contains(message);
        if matches!(shown_at, "partner_type" | "lang_code") {
            continue;
        }
        let next_to_field = page
            .field_error(shown_at)
            .unwrap_or_else(|| panic!("no error next to {shown_at}: {}", page.body));
        assert!(next_to_field.contains(message), "{next_to_field}");
        page.assert_markup("aria-invalid=\"true\"");
        if field != "password" {
            page.assert_markup(&format!("value=\"{value}\""));
        }
    }

    // Taken user name and e-mail.
    let page = browser.post("/register", &registration("ada", ORG)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    browser.open("/register").await;
    let page = browser.post("/register", &registration("ada", ORG)).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    page.assert_contains("This user name is already registered.");
    let page = browser
        .post(
            "/register",
            &registration_with("grace", ORG, "partner_id", "grace"),
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    page.assert_contains("This e-mail address is already registered.");
}

#[tokio::test]
async fn certificate_and_ftm_form_errors_are_explained() {
    let portal = Portal::start().await;
    let pki = DevPki::generate(ORG).expect("PKI");
    let mut partner = registered_partner(&portal, "acme").await;

    // No CA yet: the certificate does not chain; garbage does not parse; nothing chosen.
    partner.open("/certificate").await;
    let pem = pki.partner.pem().expect("pem");
    let cases: [(&str, &str); 3] = [
        (&pem, "does not chain to a CA certificate of this domain"),
        (
            "garbage",
            "Choose a certificate file or paste a certificate",
        ),
        ("", "Please fill in this field"),
    ];
    for (data, message) in cases {
        let page = partner
            .post_multipart(
                "/certificate",
                &[("partner_domain", "FTM"), ("certificate_text", data)],
                &[],
            )
            .await;
        assert!(page.status.is_client_error(), "{}", page.body);
        page.assert_contains(message);
    }

    // An FTM before the partner is active.
    partner.open("/ftms").await;
    let page = partner
        .post("/ftms", &[("make", "ACME"), ("model", "X")])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    page.assert_contains("Only an active FTM provider can register FTMs.");
    let page = partner.post("/ftms", &[("make", ""), ("model", "X")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.field_error("make")
            .is_some_and(|error| error.contains("Please fill in this field")),
        "{}",
        page.body
    );

    // A page token that is not one.
    let page = partner.open("/ftms?page_token=forged").await;
    page.assert_contains("This page link is no longer valid.");
    // An FTM that does not exist.
    let page = partner.open("/ftms/no-such-ftm").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    page.assert_contains("This FTM does not exist.");
}

#[tokio::test]
async fn sign_in_failures_and_rate_limits_are_explained() {
    let portal = Portal::start_with(
        Options {
            registry_adjust: Some(Box::new(|settings| {
                settings.limits.failures_per_user = 2;
            })),
            ..Options::on("sqlite")
        },
        |_| {},
    )
    .await;
    registered_partner(&portal, "acme").await;
    let mut browser = portal.browser();
    browser.open("/sign-in").await;
    for _ in 0..2 {
        let page = browser
            .post(
                "/sign-in",
                &[("username", "acme"), ("password", "wrong-password")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        page.assert_contains("Wrong user name or password.");
        page.assert_markup("value=\"acme\"");
    }
    let page = browser
        .post(
            "/sign-in",
            &[("username", "acme"), ("password", "a-long-password")],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    page.assert_contains("Too many attempts. Please wait");
}

#[tokio::test]
async fn pages_need_sign_in_and_admin_pages_the_admin_role() {
    let portal = Portal::start().await;
    let mut anonymous = portal.browser();
    for path in [
        "/home",
        "/ftms",
        "/certificate",
        "/verify",
        "/admin/ca",
        "/admin/partners",
    ] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            page.location(),
            format!("/sign-in?next={}", portal::web::encode_component(path))
        );
    }
    // A form sent without a session comes back to the home page, not to the form's target.
    anonymous.open("/sign-in").await;
    let page = anonymous.post("/ftms/some-ftm/approve", &[]).await;
    assert_eq!(page.location(), "/sign-in?next=%2Fhome");
    let mut partner = registered_partner(&portal, "acme").await;
    for path in ["/admin/review", "/admin/ca", "/admin/partners"] {
        let page = partner.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        page.assert_contains("Your account is not allowed to do this.");
    }
    // After signing in, the user goes back where they were going.
    let mut browser = portal.browser();
    browser
        .open("/sign-in?next=%2Fftms%3Fstatus%3DAPPROVED")
        .await;
    let page = browser
        .post(
            "/sign-in",
            &[
                ("username", "acme"),
                ("password", "a-long-password"),
                ("next", "/ftms?status=APPROVED"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/ftms?status=APPROVED");
    let page = browser
        .post(
            "/sign-in",
            &[
                ("username", "acme"),
                ("password", "a-long-password"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/home", "never to another site");
}

#[tokio::test]
async fn the_admin_manages_partners_and_the_trust_store() {
    let portal = Portal::start().await;
    let pki = DevPki::generate(ORG).expect("PKI");
    upload_cas(&portal, &pki).await;
    let mut partner = registered_partner(&portal, "acme").await;
    let pem = pki.partner.pem().expect("pem");
    partner.open("/certificate").await;
    partner
        .post_multipart(
            "/certificate",
            &[("partner_domain", "FTM"), ("certificate_text", &pem)],
            &[],
        )
        .await;

    let mut admin = portal.admin().await;
    let list = admin.open("/admin/partners?status=ACTIVE").await;
    list.assert_contains("acme");
    list.assert_contains("1 in all.");
    let page = admin
        .post("/admin/partners/acme/active", &[("active", "false")])
        .await;
    assert_eq!(
        page.location(),
        "/admin/partners?notice=partner_deactivated"
    );
    admin
        .open("/admin/partners?status=DEACTIVATED")
        .await
        .assert_contains("acme");
    partner
        .open("/home")
        .await
        .assert_contains("Your account has been deactivated");
    let page = admin
        .post("/admin/partners/acme/active", &[("active", "true")])
        .await;
    assert_eq!(page.location(), "/admin/partners?notice=partner_activated");
    let page = admin
        .post("/admin/partners/nobody/active", &[("active", "true")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    page.assert_contains("This partner does not exist.");

    // Trust store: filters, details, trust path, a duplicate upload.
    let roots = admin
        .open("/admin/ca?partner_domain=FTM&ca_type=ROOT")
        .await;
    roots.assert_contains("1 in all.");
    let detail_link = roots.link("ACME Chips Dev Root CA").expect("a link");
    let intermediates = admin.open("/admin/ca?ca_type=INTERMEDIATE").await;
    let intermediate = intermediates
        .link("ACME Chips Dev Intermediate CA")
        .expect("a link");
    let detail = admin.open(&intermediate).await;
    detail.assert_contains("Open the issuing CA");
    let path = admin.get(&format!("{intermediate}/trust-path.pem")).await;
    assert_eq!(path.body.matches("BEGIN CERTIFICATE").count(), 2);
    admin.open(&detail_link).await.assert_contains("Root");
    let duplicate = admin
        .post_multipart(
            "/admin/ca",
            &[
                ("partner_domain", "FTM"),
                ("certificate_text", &pki.root.pem().expect("pem")),
            ],
            &[],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    duplicate.assert_contains("already in the trust store");
    let unknown = admin.get("/admin/ca/no-such-id").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forms_from_elsewhere_are_refused() {
    let portal = Portal::start().await;
    let mut browser = portal.browser();
    browser.open("/register").await;
    let without_token = browser
        .post_raw(
            "/register",
            "application/x-www-form-urlencoded",
            b"partner_id=ada".to_vec(),
        )
        .await;
    assert_eq!(without_token.status, StatusCode::FORBIDDEN);
    without_token.assert_contains("This form has expired or did not come from this portal.");

    let mut other = portal.browser();
    other.open("/register").await;
    let stolen_cookie = other.cookie.clone();
    browser.cookie = stolen_cookie;
    let page = browser
        .post("/sign-in", &[("username", "x"), ("password", "y")])
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "another session's token"
    );

    let oversized = "A".repeat(300 * 1024);
    let mut browser = portal.browser();
    browser.open("/register").await;
    let page = browser
        .post(
            "/register",
            &registration_with("ada", ORG, "address", &oversized),
        )
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    page.assert_contains("The upload is too large.");
}

#[tokio::test]
async fn cookies_and_headers_keep_the_token_from_scripts() {
    let portal = Portal::start().await;
    let mut browser = portal.browser();
    let page = browser.get("/sign-in").await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    // Not `no-referrer`: browsers would send `Origin: null` with the forms' POSTs.
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    let cookie = page.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP in development");

    registered_partner(&portal, "acme").await;
    let mut signed_in = portal.browser();
    let home = signed_in.sign_in("acme", "a-long-password").await;
    let token = portal
        .platform
        .login("acme", "a-long-password")
        .await
        .expect("token");
    let token_payload = token.split('.').nth(1).expect("payload");
    home.assert_lacks(token_payload);
    let cookie = signed_in.cookie.clone().expect("cookie");
    assert!(!cookie.contains(token_payload), "the token is sealed");

    let secure = Portal::start_with(Options::on("sqlite"), |settings| {
        settings.session.secure_cookie = true;
    })
    .await;
    let page = secure.browser().get("/sign-in").await;
    assert!(
        page.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Secure")
    );

    let sheet = browser.get("/static/portal.css").await;
    assert_eq!(sheet.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(browser.get("/healthz").await.body, "ok");
    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_contains("There is no page at this address.");
}

#[tokio::test]
async fn pages_speak_the_visitors_language() {
    let portal = Portal::start().await;
    let mut french = portal.browser();
    french.accept_language = Some("fr-FR,fr;q=0.9,en;q=0.5".into());
    let page = french.open("/sign-in").await;
    page.assert_markup("<html lang=\"fr\" dir=\"ltr\">");
    let french_texts = portal.state.catalogs.texts(portal::i18n::Language::French);
    page.assert_contains(french_texts.get("sign_in.title"));
    page.assert_contains(french_texts.get("nav.register"));

    let mut browser = portal.browser();
    let page = browser.get("/language/ara?back=%2Fregister").await;
    assert_eq!(page.location(), "/register");
    let page = browser.open("/register").await;
    page.assert_markup("<html lang=\"ar\" dir=\"rtl\">");
    let arabic = portal.state.catalogs.texts(portal::i18n::Language::Arabic);
    page.assert_contains(arabic.get("register.title"));
    // Errors too.
    let page = browser
        .post("/register", &registration_with("ada", ORG, "email", "nope"))
        .await;
    page.assert_contains(arabic.get("reason.PMS_PRT_012"));
    let page = browser.get("/language/xyz?back=https://evil.example").await;
    assert_eq!(page.location(), "/");

    // A partner registered in French gets French pages once signed in.
    let mut partner = portal.browser();
    partner.open("/register").await;
    let fields = registration_with("marie", ORG, "lang_code", "fra");
    partner.post("/register", &fields).await;
    let home = partner.sign_in("marie", "a-long-password").await;
    home.assert_markup("<html lang=\"fr\"");
}

#[tokio::test]
async fn a_service_that_is_down_shows_a_clear_banner() {
    let portal = Portal::start_with(
        Options {
            store: StoreChoice::Address("http://127.0.0.1:9".into()),
            ..Options::on("sqlite")
        },
        |settings| settings.services.ftm_management = "http://127.0.0.1:9".into(),
    )
    .await;
    let mut partner = registered_partner(&portal, "acme").await;
    let page = partner.open("/ftms").await;
    page.assert_contains("The portal cannot reach FTM management right now.");
    page.assert_lacks("transport error");
    partner.open("/verify").await;
    let page = partner
        .post_multipart(
            "/verify",
            &[("partner_domain", "FTM"), ("certificate_text", "x")],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    page.assert_contains("The portal cannot reach the certificate store right now.");
}

#[tokio::test]
async fn an_expired_session_asks_to_sign_in_again() {
    let portal = Portal::start().await;
    let mut partner = registered_partner(&portal, "acme").await;
    // The registry rotates its signing key away: the session's token stops verifying.
    let key = portal::session::SessionKey::load(&portal.state.settings.session).expect("key");
    let mut session = key
        .open(partner.cookie.as_deref().expect("cookie"))
        .expect("session");
    if let Some(user) = session.user.as_mut() {
        user.token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl".into();
    }
    partner.cookie = Some(key.seal(&session).expect("sealed"));
    let page = partner.get("/ftms").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        page.location().contains("notice=expired"),
        "{}",
        page.location()
    );
    let page = partner.follow(page).await;
    page.assert_contains("Your session has ended. Please sign in again.");
    page.assert_contains("Sign in");
}

#[tokio::test]
async fn verify_review_and_trust_store_errors_are_explained() {
    let portal = Portal::start().await;
    let pki = DevPki::generate(ORG).expect("PKI");
    let mut admin = portal.admin().await;

    // Trust store: an intermediate without its root, then a leaf uploaded as a CA.
    admin.open("/admin/ca").await;
    let intermediate = pki.intermediate.pem().expect("pem");
    let page = admin
        .post_multipart(
            "/admin/ca",
            &[
                ("partner_domain", "FTM"),
                ("certificate_text", &intermediate),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    page.assert_contains("does not chain to a root CA of its domain");
    let leaf = pki.partner.pem().expect("pem");
    let page = admin
        .post_multipart(
            "/admin/ca",
            &[("partner_domain", "FTM"), ("certificate_text", &leaf)],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("This is not a CA certificate");

    // Verify: unreadable data, a domain that is not allowed, an unknown certificate.
    admin.open("/verify").await;
    let cases: [(&str, &str, StatusCode, &str); 3] = [
        (
            "FTM",
            "garbage",
            StatusCode::BAD_REQUEST,
            "Choose a certificate file or paste",
        ),
        (
            "PASSPORT",
            &leaf,
            StatusCode::BAD_REQUEST,
            "This domain is not allowed.",
        ),
        ("FTM", &leaf, StatusCode::OK, "Not trusted."),
    ];
    for (domain, data, status, message) in cases {
        let page = admin
            .post_multipart(
                "/verify",
                &[("partner_domain", domain), ("certificate_text", data)],
                &[],
            )
            .await;
        assert_eq!(page.status, status, "{domain}: {}", page.body);
        page.assert_contains(message);
    }

    // A partner certificate of another organisation.
    upload_cas(&portal, &pki).await;
    let mut partner = registered_partner(&portal, "other").await;
    let foreign = pmp_dev_certs::CertificateSpec::leaf("Other Partner")
        .organisation("Someone Else Ltd")
        .valid_from_days(-1)
        .valid_for_days(730)
        .issued_by(&pki.intermediate)
        .expect("certificate")
        .pem()
        .expect("pem");
    partner.open("/certificate").await;
    let page = partner
        .post_multipart(
            "/certificate",
            &[("partner_domain", "FTM"), ("certificate_text", &foreign)],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_contains("differs from your registered organisation name");

    // Review: a rejection needs a reason.
    let pem = pki.partner.pem().expect("pem");
    let mut acme = registered_partner(&portal, "acme").await;
    acme.open("/certificate").await;
    acme.post_multipart(
        "/certificate",
        &[("partner_domain", "FTM"), ("certificate_text", &pem)],
        &[],
    )
    .await;
    let page = acme
        .post("/ftms", &[("make", "ACME"), ("model", "Q")])
        .await;
    let ftm_path = page.location().split('?').next().expect("path").to_owned();
    let chip = pki.ftm_chip.pem().expect("pem");
    acme.post_multipart(
        &format!("{ftm_path}/certificate"),
        &[("certificate_text", &chip)],
        &[],
    )
    .await;
    admin.open(&ftm_path).await;
    let page = admin
        .post(&format!("{ftm_path}/reject"), &[("reason", " ")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_contains("Please fill in this field");
    page.assert_contains("Waiting for approval");
    // The partner cannot approve its own FTM.
    let page = acme.post(&format!("{ftm_path}/approve"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
}
