//! `pmpctl verify`: would the platform trust this certificate right now?

use serde::Serialize;

use pmp_proto::certstore::v1::VerifyCertificateTrustRequest;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;

use super::Context;
use super::ca::concatenated_pem;
use crate::certificate_file::read_certificate;
use crate::cli::VerifyArgs;
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table, or_dash};
use crate::views::{non_empty, yes_no};

/// JSON of `pmpctl verify`.
#[derive(Debug, Serialize)]
struct VerifyView {
    trusted: bool,
    /// Why not; `null` when trusted.
    reason: Option<String>,
    /// The verified path, leaf first; empty when untrusted.
    chain_pem: Vec<String>,
}

/// Asks the certificate store; an untrusted certificate is an answer, not an error, so the
/// exit code is 0 either way (`--quiet` prints `trusted` or `untrusted` for scripts).
pub async fn run(context: &Context, args: VerifyArgs) -> Result<Outcome, CliError> {
    let request = VerifyCertificateTrustRequest {
        certificate_data: read_certificate(&args.file)?,
        partner_domain: args.domain,
    };
    let connection = context.connection(Service::CertificateStore)?;
    let mut client = CertificateStoreClient::new(connection.channel.clone());
    let response = context
        .call(
            &connection,
            "VerifyCertificateTrust",
            request,
            async |request| client.verify_certificate_trust(request).await,
        )
        .await?;
    let view = VerifyView {
        trusted: response.trusted,
        reason: non_empty(&response.reason),
        chain_pem: response.chain_pem,
    };
    let mut text = Table::fields(vec![
        ("TRUSTED", yes_no(view.trusted)),
        ("REASON", or_dash(view.reason.as_deref().unwrap_or(""))),
        ("CHAIN LENGTH", view.chain_pem.len().to_string()),
    ])
    .render();
    if context.mode == crate::output::OutputMode::Table && !view.chain_pem.is_empty() {
        text.push_str(&concatenated_pem(&view.chain_pem));
    }
    let verdict = if view.trusted { "trusted" } else { "untrusted" };
    Outcome::new(&view, text, vec![verdict.to_owned()])
}
