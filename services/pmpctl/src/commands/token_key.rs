//! `pmpctl token-key ...`: the registry's token signing keys and their rotation (admin):
//! list them, add a key (published at once), activate it.

use serde::Serialize;

use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::{
    ActivateTokenSigningKeyRequest, AddTokenSigningKeyRequest, ListTokenSigningKeysRequest,
    TokenSigningKey, TokenSigningKeyState,
};

use super::Context;
use crate::cli::TokenKeyCommand;
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table, option_or_dash};
use crate::views::rfc3339;

/// Runs one `token-key` subcommand.
pub async fn run(context: &Context, command: TokenKeyCommand) -> Result<Outcome, CliError> {
    let connection = context.connection(Service::Registry)?;
    let mut client = PartnerRegistryClient::new(connection.channel.clone());
    match command {
        TokenKeyCommand::List => {
            let listed = context
                .call(
                    &connection,
                    "ListTokenSigningKeys",
                    ListTokenSigningKeysRequest {},
                    async |request| client.list_token_signing_keys(request).await,
                )
                .await?;
            keys_outcome(listed.keys.iter().map(Into::into).collect())
        }
        TokenKeyCommand::Add {
            key_label,
            key_path,
        } => {
            let request = AddTokenSigningKeyRequest {
                key_label: key_label.unwrap_or_default(),
                key_file: key_path.unwrap_or_default(),
            };
            let added = context
                .call(
                    &connection,
                    "AddTokenSigningKey",
                    request,
                    async |request| client.add_token_signing_key(request).await,
                )
                .await?;
            keys_outcome(vec![(&added).into()])
        }
        TokenKeyCommand::Activate { key_id } => {
            let request = ActivateTokenSigningKeyRequest { key_id };
            let activated = context
                .call(
                    &connection,
                    "ActivateTokenSigningKey",
                    request,
                    async |request| client.activate_token_signing_key(request).await,
                )
                .await?;
            keys_outcome(vec![(&activated).into()])
        }
    }
}

/// JSON of one token signing key.
#[derive(Debug, Serialize)]
struct TokenKeyView {
    key_id: String,
    state: String,
    key_location: String,
    activated_at: Option<String>,
    published_until: Option<String>,
    public_key_pem: String,
}

impl From<&TokenSigningKey> for TokenKeyView {
    fn from(key: &TokenSigningKey) -> Self {
        let state = match key.state() {
            TokenSigningKeyState::Next => "NEXT",
            TokenSigningKeyState::Active => "ACTIVE",
            TokenSigningKeyState::Previous => "PREVIOUS",
            TokenSigningKeyState::Unspecified => "UNSPECIFIED",
        };
        TokenKeyView {
            key_id: key.key_id.clone(),
            state: state.to_owned(),
            key_location: key.key_location.clone(),
            activated_at: rfc3339(key.activated_at.as_ref()),
            published_until: rfc3339(key.published_until.as_ref()),
            public_key_pem: key.public_key_pem.clone(),
        }
    }
}

/// The keys as a table, JSON (a list) and ids.
fn keys_outcome(keys: Vec<TokenKeyView>) -> Result<Outcome, CliError> {
    let mut table = Table::with_header(&["KEY ID", "STATE", "KEY", "ACTIVATED", "PUBLISHED UNTIL"]);
    for key in &keys {
        table.push(vec![
            key.key_id.clone(),
            key.state.clone(),
            key.key_location.clone(),
            option_or_dash(key.activated_at.as_deref()),
            option_or_dash(key.published_until.as_deref()),
        ]);
    }
    let ids = keys.iter().map(|key| key.key_id.clone()).collect();
    match keys.as_slice() {
        [one] => Outcome::new(one, table.render(), ids),
        _ => Outcome::new(&keys, table.render(), ids),
    }
}
