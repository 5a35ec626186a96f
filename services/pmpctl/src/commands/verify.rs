//! `pmpctl verify`: would the platform trust this certificate right now?

use serde::Serialize;

use pmp_proto::certstore::v1::VerifyCertificateTrustRequest;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;

use super::Context;
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
    let mut fields = vec![
        ("TRUSTED", yes_no(view.trusted)),
        ("REASON", or_dash(view.reason.as_deref().unwrap_or(""))),
    ];
    // The chain as subjects, leaf first; `-o json` carries the PEMs themselves.
    for (index, pem) in view.chain_pem.iter().enumerate() {
        fields.push((if index == 0 { "CHAIN" } else { "" }, subject_of(pem)));
    }
    let text = Table::fields(fields).render();
    let verdict = if view.trusted { "trusted" } else { "untrusted" };
    Outcome::new(&view, text, vec![verdict.to_owned()])
}

/// The one-line subject of a PEM certificate (or a note when it does not parse).
pub(super) fn subject_of(pem: &str) -> String {
    let Ok(certificate) = openssl::x509::X509::from_pem(pem.as_bytes()) else {
        return "(unreadable certificate)".to_owned();
    };
    certificate
        .subject_name()
        .entries()
        .filter_map(|entry| {
            let key = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}
