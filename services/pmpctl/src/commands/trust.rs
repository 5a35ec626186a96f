//! `pmpctl watch trust`, `pmpctl revoke`, `pmpctl crl get`, `pmpctl expiring`: the trust
//! feed, revocation and expiry (see `WatchTrustChanges`, `RevokeCertificate`, `GetCrl`,
//! `ListExpiringCertificates`).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::trust_change::Change;
use pmp_proto::certstore::v1::{
    CertificateKind, ExpiringCertificate, GetCrlRequest, ListExpiringCertificatesRequest,
    RevocationReason, RevokeCertificateRequest, TrustChange, WatchTrustChangesRequest,
};

use super::Context;
use super::verify::subject_of;
use crate::cli::{CertificateKindArg, CrlCommand, ExpiringArgs, RevokeArgs, WatchTrustArgs};
use crate::failure::{CliError, Service};
use crate::output::{Outcome, OutputMode, Table};
use crate::rpc;
use crate::views::rfc3339;

type Client = CertificateStoreClient<tonic::transport::Channel>;

fn client(context: &Context) -> Result<(rpc::Connection, Client), CliError> {
    let connection = context.connection(Service::CertificateStore)?;
    let client = CertificateStoreClient::new(connection.channel.clone());
    Ok((connection, client))
}

/// One feed message, as printed (one line of text, or one JSON object per line).
#[derive(Debug, Serialize)]
struct ChangeView {
    version: i64,
    time: Option<String>,
    kind: &'static str,
    detail: String,
}

fn change_view(message: &TrustChange) -> ChangeView {
    let (kind, detail) = match &message.change {
        Some(Change::Snapshot(part)) => (
            "SNAPSHOT",
            format!(
                "{} CA certificates, {} stored certificates, {} deactivated partners, {} revocations{}",
                part.ca_certificates.len(),
                part.stored_certificates.len(),
                part.deactivated_partner_ids.len(),
                part.revocations.len(),
                if part.last {
                    ""
                } else {
                    " (more parts follow)"
                }
            ),
        ),
        Some(Change::CaCertificateAdded(ca)) => (
            "CA_CERTIFICATE_ADDED",
            format!("{} {}", ca.partner_domain, subject_of(&ca.certificate_pem)),
        ),
        Some(Change::StoredCertificate(stored)) => (
            "CERTIFICATE_TRUST",
            format!(
                "{} {} partner={} trusted={}",
                stored.partner_domain, stored.identity, stored.partner_id, stored.trusted
            ),
        ),
        Some(Change::Partner(partner)) => (
            if partner.deactivated {
                "PARTNER_DEACTIVATED"
            } else {
                "PARTNER_ACTIVE"
            },
            partner.partner_id.clone(),
        ),
        Some(Change::CertificateRevoked(revocation)) => (
            "CERTIFICATE_REVOKED",
            format!(
                "{} {} reason={}",
                revocation.partner_domain,
                revocation.certificate_id,
                revocation.reason().as_str_name()
            ),
        ),
        Some(Change::CertificateExpiring(expiring)) => (
            "CERTIFICATE_EXPIRING",
            format!(
                "{} {} within {} days (at {})",
                expiring.partner_domain,
                expiring.certificate_id,
                expiring.threshold_days,
                rfc3339(expiring.expiry_time.as_ref()).unwrap_or_default()
            ),
        ),
        Some(Change::Heartbeat(_)) => ("HEARTBEAT", String::new()),
        None => ("UNKNOWN", String::new()),
    };
    ChangeView {
        version: message.version,
        time: rfc3339(message.time.as_ref()),
        kind,
        detail,
    }
}

/// Prints the feed live until it ends, or after `--count` changes (heartbeats not counted
/// and only shown with `--heartbeats`).
pub async fn watch(context: &Context, args: WatchTrustArgs) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = WatchTrustChangesRequest {
        partner_domains: args.domain,
        from_version: args.from_version,
    };
    let mut stream = context
        .stream(&connection, "WatchTrustChanges", request, async |request| {
            client.watch_trust_changes(request).await
        })
        .await?;
    let mut seen = 0;
    let mut last_version = args.from_version;
    while args.count.is_none_or(|count| seen < count) {
        let message = stream
            .message()
            .await
            .map_err(|status| rpc::failure(&connection, status))?;
        let Some(message) = message else { break };
        last_version = message.version;
        let heartbeat = matches!(message.change, Some(Change::Heartbeat(_)));
        if heartbeat && !args.heartbeats {
            continue;
        }
        if !heartbeat {
            seen += 1;
        }
        print_live(context.mode, &change_view(&message))?;
    }
    let summary = WatchSummary {
        changes: seen,
        last_version,
    };
    // The changes were printed as they came; only `--quiet` adds the version to resume from.
    Ok(match context.mode {
        OutputMode::Quiet => Outcome::new(&summary, String::new(), vec![last_version.to_string()])?,
        _ => Outcome::empty(),
    })
}

/// What `watch` ends with.
#[derive(Debug, Serialize)]
struct WatchSummary {
    changes: usize,
    last_version: i64,
}

fn print_live(mode: OutputMode, view: &ChangeView) -> Result<(), CliError> {
    let line = match mode {
        OutputMode::Json => serde_json::to_string(view)
            .map_err(|error| CliError::Local(anyhow::anyhow!("cannot encode output: {error}")))?,
        OutputMode::Table => format!(
            "{:>8}  {}  {:<22} {}",
            view.version,
            view.time.as_deref().unwrap_or("-"),
            view.kind,
            view.detail
        ),
        OutputMode::Quiet => return Ok(()),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::Local(anyhow::anyhow!("cannot write: {error}")))
}

/// JSON of `pmpctl revoke`.
#[derive(Debug, Serialize)]
struct RevocationView {
    certificate_id: String,
    partner_domain: String,
    kind: String,
    reason: String,
    comment: String,
    revocation_time: Option<String>,
    version: i64,
}

pub async fn revoke(context: &Context, args: RevokeArgs) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = RevokeCertificateRequest {
        certificate_id: args.certificate_id,
        reason: RevocationReason::from(args.reason) as i32,
        comment: args.comment.unwrap_or_default(),
    };
    let response = context
        .call(&connection, "RevokeCertificate", request, async |request| {
            client.revoke_certificate(request).await
        })
        .await?;
    let revocation = response.revocation.unwrap_or_default();
    let view = RevocationView {
        certificate_id: revocation.certificate_id.clone(),
        partner_domain: revocation.partner_domain.clone(),
        kind: revocation.kind().as_str_name().to_owned(),
        reason: revocation.reason().as_str_name().to_owned(),
        comment: revocation.comment.clone(),
        revocation_time: rfc3339(revocation.revocation_time.as_ref()),
        version: response.version,
    };
    let text = Table::fields(vec![
        ("CERTIFICATE", view.certificate_id.clone()),
        ("DOMAIN", view.partner_domain.clone()),
        ("KIND", view.kind.clone()),
        ("REASON", view.reason.clone()),
        (
            "REVOKED AT",
            view.revocation_time.clone().unwrap_or_default(),
        ),
        ("VERSION", view.version.to_string()),
    ])
    .render();
    let ids = vec![view.certificate_id.clone()];
    Outcome::new(&view, text, ids)
}

/// JSON of `pmpctl crl get`.
#[derive(Debug, Serialize)]
struct CrlView {
    partner_domain: String,
    revoked_count: i32,
    this_update: Option<String>,
    next_update: Option<String>,
    written_to: String,
}

pub async fn crl(context: &Context, command: CrlCommand) -> Result<Outcome, CliError> {
    let CrlCommand::Get { domain, out, pem } = command;
    let (connection, mut client) = client(context)?;
    let request = GetCrlRequest {
        partner_domain: domain.clone(),
    };
    let response = context
        .call(&connection, "GetCrl", request, async |request| {
            client.get_crl(request).await
        })
        .await?;
    let bytes = if pem {
        openssl::x509::X509Crl::from_der(&response.crl)
            .and_then(|crl| crl.to_pem())
            .map_err(|error| CliError::Local(anyhow::anyhow!("the CRL does not parse: {error}")))?
    } else {
        response.crl.clone()
    };
    write_file(&out, &bytes)?;
    let view = CrlView {
        partner_domain: domain.to_ascii_uppercase(),
        revoked_count: response.revoked_count,
        this_update: rfc3339(response.this_update.as_ref()),
        next_update: rfc3339(response.next_update.as_ref()),
        written_to: out.display().to_string(),
    };
    let text = Table::fields(vec![
        ("DOMAIN", view.partner_domain.clone()),
        ("REVOKED", view.revoked_count.to_string()),
        ("THIS UPDATE", view.this_update.clone().unwrap_or_default()),
        ("NEXT UPDATE", view.next_update.clone().unwrap_or_default()),
        ("WRITTEN TO", view.written_to.clone()),
    ])
    .render();
    let ids = vec![view.written_to.clone()];
    Outcome::new(&view, text, ids)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes)
        .map_err(|error| CliError::Usage(format!("cannot write {}: {error}", path.display())))
}

/// JSON of one expiring certificate.
#[derive(Debug, Serialize)]
struct ExpiringView {
    certificate_id: String,
    kind: String,
    partner_domain: String,
    partner_id: String,
    owner_id: String,
    subject: String,
    expiry_time: Option<String>,
}

impl From<&ExpiringCertificate> for ExpiringView {
    fn from(certificate: &ExpiringCertificate) -> Self {
        ExpiringView {
            certificate_id: certificate.certificate_id.clone(),
            kind: certificate.kind().as_str_name().to_owned(),
            partner_domain: certificate.partner_domain.clone(),
            partner_id: certificate.partner_id.clone(),
            owner_id: certificate.owner_id.clone(),
            subject: certificate.subject.clone(),
            expiry_time: rfc3339(certificate.expiry_time.as_ref()),
        }
    }
}

/// JSON of `pmpctl expiring`.
#[derive(Debug, Serialize)]
struct ExpiringListView {
    certificates: Vec<ExpiringView>,
    next_page_token: Option<String>,
    total_size: i64,
}

pub async fn expiring(context: &Context, args: ExpiringArgs) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let mut certificates = Vec::new();
    let mut page_token = args.page.page_token.clone().unwrap_or_default();
    let total_size = loop {
        let request = ListExpiringCertificatesRequest {
            within: Some(prost_types::Duration {
                seconds: i64::from(args.within_days) * 86_400,
                nanos: 0,
            }),
            partner_domain: args.domain.clone().unwrap_or_default(),
            kind: args
                .kind
                .map_or(CertificateKind::Unspecified, CertificateKind::from)
                .into(),
            page_size: args.page.page_size,
            page_token: page_token.clone(),
        };
        let page = context
            .call(
                &connection,
                "ListExpiringCertificates",
                request,
                async |request| client.list_expiring_certificates(request).await,
            )
            .await?;
        certificates.extend(page.certificates.iter().map(ExpiringView::from));
        page_token = page.next_page_token;
        if !args.page.all || page_token.is_empty() {
            break page.total_size;
        }
    };
    let mut table = Table::with_header(&[
        "CERTIFICATE",
        "KIND",
        "DOMAIN",
        "OWNER",
        "EXPIRES",
        "SUBJECT",
    ]);
    for certificate in &certificates {
        table.push(vec![
            certificate.certificate_id.clone(),
            certificate.kind.clone(),
            certificate.partner_domain.clone(),
            certificate.owner_id.clone(),
            certificate.expiry_time.clone().unwrap_or_default(),
            certificate.subject.clone(),
        ]);
    }
    let ids = certificates
        .iter()
        .map(|c| c.certificate_id.clone())
        .collect();
    let view = ExpiringListView {
        certificates,
        next_page_token: (!page_token.is_empty()).then_some(page_token),
        total_size,
    };
    Outcome::new(&view, table.render(), ids)
}

impl From<CertificateKindArg> for CertificateKind {
    fn from(kind: CertificateKindArg) -> Self {
        match kind {
            CertificateKindArg::Ca => CertificateKind::CaCertificate,
            CertificateKindArg::Partner => CertificateKind::PartnerCertificate,
            CertificateKindArg::Ftm => CertificateKind::FtmCertificate,
        }
    }
}
