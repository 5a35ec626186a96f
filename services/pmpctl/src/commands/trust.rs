//! `pmpctl revoke`, `pmpctl crl get`, `pmpctl expiring`: revocation and expiry (see
//! `RevokeCertificate`, `GetCrl`, `ListExpiringCertificates`; `watch trust` is in `watch`).

use std::path::Path;

use serde::Serialize;

use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::{
    CertificateKind, ExpiringCertificate, GetCrlRequest, ListExpiringCertificatesRequest,
    RevocationReason, RevokeCertificateRequest,
};

use super::Context;
use crate::cli::{CertificateKindArg, CrlCommand, ExpiringArgs, RevokeArgs};
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table};
use crate::rpc;
use crate::views::rfc3339;

type Client = CertificateStoreClient<tonic::transport::Channel>;

fn client(context: &Context) -> Result<(rpc::Connection, Client), CliError> {
    let connection = context.connection(Service::CertificateStore)?;
    let client = CertificateStoreClient::new(connection.channel.clone());
    Ok((connection, client))
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
