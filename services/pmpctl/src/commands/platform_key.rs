//! `pmpctl platform-key ...`: the platform signing keys and their rotation (admin): list
//! what verifiers of platform-signed copies need, add the certificate of a key from a key
//! ceremony, activate it.

use std::path::Path;

use serde::Serialize;

use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::{
    ActivatePlatformSigningKeyRequest, AddPlatformSigningKeyRequest,
    ListPlatformSigningKeysRequest, PlatformSigningKey, PlatformSigningKeyState,
};

use super::Context;
use crate::certificate_file::read_certificate;
use crate::cli::PlatformKeyCommand;
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table, option_or_dash};
use crate::views::rfc3339;

/// Runs one `platform-key` subcommand.
pub async fn run(context: &Context, command: PlatformKeyCommand) -> Result<Outcome, CliError> {
    match command {
        PlatformKeyCommand::List { root } => list(context, root.as_deref()).await,
        PlatformKeyCommand::Add {
            certificate,
            key_label,
            key_path,
        } => add(context, &certificate, key_label, key_path).await,
        PlatformKeyCommand::Activate { key_id } => activate(context, key_id).await,
    }
}

type Client = CertificateStoreClient<tonic::transport::Channel>;

fn client(context: &Context) -> Result<(crate::rpc::Connection, Client), CliError> {
    let connection = context.connection(Service::CertificateStore)?;
    let client = CertificateStoreClient::new(connection.channel.clone());
    Ok((connection, client))
}

/// JSON of one platform signing key.
#[derive(Debug, Serialize)]
struct PlatformKeyView {
    key_id: String,
    state: String,
    key_location: String,
    not_after: Option<String>,
    activated_at: Option<String>,
    published_until: Option<String>,
    certificate_pem: String,
}

impl From<&PlatformSigningKey> for PlatformKeyView {
    fn from(key: &PlatformSigningKey) -> Self {
        let state = match key.state() {
            PlatformSigningKeyState::Next => "NEXT",
            PlatformSigningKeyState::Active => "ACTIVE",
            PlatformSigningKeyState::Previous => "PREVIOUS",
            PlatformSigningKeyState::Unspecified => "UNSPECIFIED",
        };
        PlatformKeyView {
            key_id: key.key_id.clone(),
            state: state.to_owned(),
            key_location: key.key_location.clone(),
            not_after: rfc3339(key.not_after.as_ref()),
            activated_at: rfc3339(key.activated_at.as_ref()),
            published_until: rfc3339(key.published_until.as_ref()),
            certificate_pem: key.certificate_pem.clone(),
        }
    }
}

impl PlatformKeyView {
    fn table(keys: &[PlatformKeyView]) -> Table {
        let mut table = Table::with_header(&[
            "KEY ID",
            "STATE",
            "KEY",
            "NOT AFTER",
            "ACTIVATED",
            "PUBLISHED UNTIL",
        ]);
        for key in keys {
            table.push(vec![
                key.key_id.clone(),
                key.state.clone(),
                key.key_location.clone(),
                option_or_dash(key.not_after.as_deref()),
                option_or_dash(key.activated_at.as_deref()),
                option_or_dash(key.published_until.as_deref()),
            ]);
        }
        table
    }
}

/// JSON of `platform-key list`.
#[derive(Debug, Serialize)]
struct PlatformKeysView {
    root_certificate_pem: String,
    keys: Vec<PlatformKeyView>,
}

async fn list(context: &Context, root_out: Option<&Path>) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let response = context
        .call(
            &connection,
            "ListPlatformSigningKeys",
            ListPlatformSigningKeysRequest {},
            async |request| client.list_platform_signing_keys(request).await,
        )
        .await?;
    if let Some(path) = root_out {
        std::fs::write(path, &response.root_certificate_pem).map_err(|error| {
            CliError::Usage(format!("cannot write {}: {error}", path.display()))
        })?;
    }
    let view = PlatformKeysView {
        root_certificate_pem: response.root_certificate_pem.clone(),
        keys: response.keys.iter().map(Into::into).collect(),
    };
    let ids = view.keys.iter().map(|key| key.key_id.clone()).collect();
    Outcome::new(&view, PlatformKeyView::table(&view.keys).render(), ids)
}

async fn add(
    context: &Context,
    certificate: &Path,
    key_label: Option<String>,
    key_file: Option<String>,
) -> Result<Outcome, CliError> {
    let request = AddPlatformSigningKeyRequest {
        certificate_pem: read_certificate(certificate)?,
        key_label: key_label.unwrap_or_default(),
        key_file: key_file.unwrap_or_default(),
    };
    let (connection, mut client) = client(context)?;
    let added = context
        .call(
            &connection,
            "AddPlatformSigningKey",
            request,
            async |request| client.add_platform_signing_key(request).await,
        )
        .await?;
    one_key(&added)
}

async fn activate(context: &Context, key_id: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = ActivatePlatformSigningKeyRequest { key_id };
    let activated = context
        .call(
            &connection,
            "ActivatePlatformSigningKey",
            request,
            async |request| client.activate_platform_signing_key(request).await,
        )
        .await?;
    one_key(&activated)
}

fn one_key(key: &PlatformSigningKey) -> Result<Outcome, CliError> {
    let view = PlatformKeyView::from(key);
    let text = PlatformKeyView::table(std::slice::from_ref(&view)).render();
    let ids = vec![view.key_id.clone()];
    Outcome::new(&view, text, ids)
}
