//! Registration, login/logout, `whoami` and the registry's token keys.

use chrono::{DateTime, Utc};
use serde::Serialize;

use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::{
    GetTokenVerificationKeysRequest, LoginRequest, RegisterPartnerRequest,
};

use super::{Context, read_password};
use crate::cli::{LoginArgs, RegisterArgs};
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table, or_dash};
use crate::views::{PartnerView, yes_no};

/// `pmpctl register`: the new partner record (`--quiet`: its id).
pub async fn register(context: &Context, args: RegisterArgs) -> Result<Outcome, CliError> {
    let password = read_password(&args.password)?;
    let request = RegisterPartnerRequest {
        partner_id: args.partner_id,
        password,
        first_name: args.first_name,
        last_name: args.last_name,
        organization_name: args.organization,
        partner_type: args.partner_type,
        address: args.address,
        email: args.email,
        phone: args.phone,
        lang_code: args.lang_code.unwrap_or_default(),
    };
    let connection = context.connection(Service::Registry)?;
    let mut client = PartnerRegistryClient::new(connection.channel.clone());
    let partner = context
        .call_anonymous(&connection, "RegisterPartner", request, async |request| {
            client.register_partner(request).await
        })
        .await?;
    let view = PartnerView::from(&partner);
    let text = view.table().render();
    Outcome::new(&view, text, vec![view.partner_id.clone()])
}

/// JSON of `pmpctl login`.
#[derive(Debug, Serialize)]
struct LoginView {
    username: String,
    token_type: String,
    expires_in: i64,
    expires_at: Option<String>,
    roles: Vec<String>,
    /// Where the token was saved; `null` with `--print-token`.
    token_file: Option<String>,
    /// Only with `--print-token`.
    access_token: Option<String>,
}

/// `pmpctl login`: saves the token (0600), or prints it with `--print-token`.
pub async fn login(context: &Context, args: LoginArgs) -> Result<Outcome, CliError> {
    let password = read_password(&args.password)?;
    // Resolve the token file first: no point logging in if the token cannot be kept.
    let token_file = if args.print_token {
        None
    } else {
        Some(context.token_file()?)
    };
    let connection = context.connection(Service::Registry)?;
    let mut client = PartnerRegistryClient::new(connection.channel.clone());
    let request = LoginRequest {
        username: args.username.clone(),
        password,
    };
    let response = context
        .call_anonymous(&connection, "Login", request, async |request| {
            client.login(request).await
        })
        .await?;
    let expires_at = Utc::now()
        .checked_add_signed(chrono::Duration::seconds(response.expires_in))
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut view = LoginView {
        username: args.username,
        token_type: response.token_type,
        expires_in: response.expires_in,
        expires_at,
        roles: response.roles,
        token_file: None,
        access_token: None,
    };
    let Some(token_file) = token_file else {
        let token = response.access_token;
        view.access_token = Some(token.clone());
        return Outcome::new(&view, token.clone(), vec![token]);
    };
    token_file.save(&response.access_token)?;
    view.token_file = Some(token_file.path().display().to_string());
    if context.token_overridden() {
        eprintln!(
            "pmpctl: note: --token / PMPCTL_TOKEN is set and takes precedence over the saved token"
        );
    }
    let text = Table::fields(vec![
        ("LOGGED IN AS", view.username.clone()),
        ("ROLES", or_dash(&view.roles.join(", "))),
        ("EXPIRES", or_dash(view.expires_at.as_deref().unwrap_or(""))),
        (
            "TOKEN FILE",
            or_dash(view.token_file.as_deref().unwrap_or("")),
        ),
    ])
    .render();
    Outcome::new(&view, text, Vec::new())
}

/// JSON of `pmpctl logout`.
#[derive(Debug, Serialize)]
struct LogoutView {
    token_file: String,
    removed: bool,
}

/// `pmpctl logout`: deletes the saved token (not an error when there is none).
pub fn logout(context: &Context) -> Result<Outcome, CliError> {
    let token_file = context.token_file()?;
    let removed = token_file.remove()?;
    let path = token_file.path().display().to_string();
    let text = if removed {
        format!("Logged out: removed {path}\n")
    } else {
        format!("Not logged in: no token at {path}\n")
    };
    if context.token_overridden() {
        eprintln!("pmpctl: note: --token / PMPCTL_TOKEN is still set");
    }
    let view = LogoutView {
        token_file: path,
        removed,
    };
    Outcome::new(&view, text, Vec::new())
}

/// JSON of `pmpctl whoami`.
#[derive(Debug, Serialize)]
struct WhoamiView {
    partner_id: Option<String>,
    roles: Vec<String>,
    issuer: Option<String>,
    expires_at: Option<String>,
    expired: bool,
    /// "option" (--token / PMPCTL_TOKEN) or "file".
    source: &'static str,
}

/// `pmpctl whoami`: what the current token says (not verified: the services decide).
pub fn whoami(context: &Context) -> Result<Outcome, CliError> {
    let claims = context.claims()?;
    let expires = claims
        .exp
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0));
    let view = WhoamiView {
        partner_id: claims.partner_id().map(str::to_owned),
        roles: claims.all_roles(),
        issuer: claims.iss.clone(),
        expires_at: expires.map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        expired: expires.is_some_and(|time| time <= Utc::now()),
        source: if context.token_overridden() {
            "option"
        } else {
            "file"
        },
    };
    let text = Table::fields(vec![
        ("USER", or_dash(view.partner_id.as_deref().unwrap_or(""))),
        ("ROLES", or_dash(&view.roles.join(", "))),
        ("ISSUER", or_dash(view.issuer.as_deref().unwrap_or(""))),
        ("EXPIRES", or_dash(view.expires_at.as_deref().unwrap_or(""))),
        ("EXPIRED", yes_no(view.expired)),
    ])
    .render();
    let ids = view.partner_id.iter().cloned().collect();
    Outcome::new(&view, text, ids)
}

/// JSON of `pmpctl token-keys`.
#[derive(Debug, Serialize)]
struct TokenKeysView {
    issuer: String,
    audience: String,
    public_keys_pem: Vec<String>,
}

/// `pmpctl token-keys`: what verifies the registry's tokens (for configuring other services).
pub async fn token_keys(context: &Context) -> Result<Outcome, CliError> {
    let connection = context.connection(Service::Registry)?;
    let mut client = PartnerRegistryClient::new(connection.channel.clone());
    let response = context
        .call_anonymous(
            &connection,
            "GetTokenVerificationKeys",
            GetTokenVerificationKeysRequest {},
            async |request| client.get_token_verification_keys(request).await,
        )
        .await?;
    let view = TokenKeysView {
        issuer: response.issuer,
        audience: response.audience,
        public_keys_pem: response.public_keys_pem,
    };
    let mut text = Table::fields(vec![
        ("ISSUER", view.issuer.clone()),
        ("AUDIENCE", view.audience.clone()),
        ("KEYS", view.public_keys_pem.len().to_string()),
    ])
    .render();
    for key in &view.public_keys_pem {
        text.push_str(key);
        if !key.ends_with('\n') {
            text.push('\n');
        }
    }
    let ids = vec![view.issuer.clone()];
    Outcome::new(&view, text, ids)
}
