//! `pmpctl ca ...`: the trust store of CA certificates (admin only).

use std::path::Path;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::certstore::v1::{
    CaType, GetCaCertificateRequest, GetCaTrustPathRequest, ListCaCertificatesRequest,
    UploadCaCertificateRequest, UploadStatus,
};

use super::{Context, Page, fetch_pages};
use crate::certificate_file::read_certificate;
use crate::cli::{CaCommand, CaTypeFilter, PageArgs};
use crate::failure::{CliError, EXIT_CONFLICT, Service};
use crate::output::{Outcome, Table, or_dash};
use crate::views::{CaCertificateView, ca_type_name, non_empty, page_footer, upload_status_name};

/// Runs one `ca` subcommand.
pub async fn run(context: &Context, command: CaCommand) -> Result<Outcome, CliError> {
    match command {
        CaCommand::Upload { file, domain } => upload(context, &file, domain).await,
        CaCommand::List {
            domain,
            ca_type,
            page,
        } => list(context, domain, ca_type, &page).await,
        CaCommand::Show {
            certificate_id,
            pem,
        } => show(context, certificate_id, pem).await,
        CaCommand::TrustPath {
            certificate_id,
            p7b,
        } => trust_path(context, certificate_id, p7b.as_deref()).await,
    }
}

fn client(context: &Context) -> Result<(crate::rpc::Connection, Client), CliError> {
    let connection = context.connection(Service::CertificateStore)?;
    let client = CertificateStoreClient::new(connection.channel.clone());
    Ok((connection, client))
}

type Client = CertificateStoreClient<tonic::transport::Channel>;

/// JSON of one certificate of a CA upload.
#[derive(Debug, Serialize)]
struct CaUploadResultView {
    certificate_id: Option<String>,
    thumbprint: String,
    ca_type: String,
    subject: String,
    /// `null` when stored, else the reason code (e.g. KER-PCM-005).
    error_reason: Option<String>,
}

/// JSON of `ca upload`.
#[derive(Debug, Serialize)]
struct CaUploadView {
    status: String,
    results: Vec<CaUploadResultView>,
}

async fn upload(context: &Context, file: &Path, domain: String) -> Result<Outcome, CliError> {
    let request = UploadCaCertificateRequest {
        certificate_data: read_certificate(file)?,
        partner_domain: domain,
    };
    let (connection, mut client) = client(context)?;
    let response = context
        .call(
            &connection,
            "UploadCaCertificate",
            request,
            async |request| client.upload_ca_certificate(request).await,
        )
        .await?;
    let view = CaUploadView {
        status: upload_status_name(response.status),
        results: response
            .results
            .iter()
            .map(|result| CaUploadResultView {
                certificate_id: non_empty(&result.certificate_id),
                thumbprint: result.thumbprint.clone(),
                ca_type: ca_type_name(result.ca_type),
                subject: result.subject.clone(),
                error_reason: non_empty(&result.error_reason),
            })
            .collect(),
    };
    let ids = view
        .results
        .iter()
        .filter_map(|result| result.certificate_id.clone())
        .collect();
    let outcome = Outcome::new(&view, upload_table(&view), ids)?;
    Ok(match UploadStatus::try_from(response.status) {
        Ok(UploadStatus::UploadFailed) => outcome.failing(CliError::Refused {
            message: "UPLOAD_FAILED: the certificate store kept none of the certificates"
                .to_owned(),
            exit_code: EXIT_CONFLICT,
        }),
        Ok(UploadStatus::PartialUploadSuccess) => {
            eprintln!("pmpctl: warning: some certificates were refused (see ERROR)");
            outcome
        }
        _ => outcome,
    })
}

fn upload_table(view: &CaUploadView) -> String {
    let mut table = Table::with_header(&["CERTIFICATE ID", "TYPE", "ERROR", "SUBJECT"]);
    for result in &view.results {
        table.push(vec![
            or_dash(result.certificate_id.as_deref().unwrap_or("")),
            result.ca_type.clone(),
            or_dash(result.error_reason.as_deref().unwrap_or("")),
            result.subject.clone(),
        ]);
    }
    format!("{}\n{}", view.status, table.render())
}

/// JSON of `ca list`.
#[derive(Debug, Serialize)]
struct CaListView {
    ca_certificates: Vec<CaCertificateView>,
    next_page_token: Option<String>,
    total_size: i32,
}

async fn list(
    context: &Context,
    domain: Option<String>,
    ca_type: Option<CaTypeFilter>,
    page: &PageArgs,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let ca_type = match ca_type {
        None => CaType::Unspecified,
        Some(CaTypeFilter::Root) => CaType::Root,
        Some(CaTypeFilter::Intermediate) => CaType::Intermediate,
    };
    let fetched = fetch_pages(page, async |page_size, page_token| {
        let request = ListCaCertificatesRequest {
            partner_domain: domain.clone().unwrap_or_default(),
            ca_type: ca_type as i32,
            page_size,
            page_token,
        };
        let response = context
            .call(
                &connection,
                "ListCaCertificates",
                request,
                async |request| client.list_ca_certificates(request).await,
            )
            .await?;
        Ok(Page {
            items: response.ca_certificates.iter().map(Into::into).collect(),
            next_page_token: non_empty(&response.next_page_token),
            total_size: response.total_size,
        })
    })
    .await?;
    let view = CaListView {
        ca_certificates: fetched.items,
        next_page_token: fetched.next_page_token,
        total_size: fetched.total_size,
    };
    let text = format!(
        "{}{}",
        CaCertificateView::list_table(&view.ca_certificates).render(),
        page_footer(
            view.ca_certificates.len(),
            view.total_size,
            view.next_page_token.as_deref()
        )
    );
    let ids = view
        .ca_certificates
        .iter()
        .map(|certificate| certificate.certificate_id.clone())
        .collect();
    Outcome::new(&view, text, ids)
}

async fn show(context: &Context, certificate_id: String, pem: bool) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = GetCaCertificateRequest { certificate_id };
    let certificate = context
        .call(&connection, "GetCaCertificate", request, async |request| {
            client.get_ca_certificate(request).await
        })
        .await?;
    let view = CaCertificateView::from(&certificate);
    let text = if pem {
        view.certificate_pem.clone()
    } else {
        view.table().render()
    };
    Outcome::new(&view, text, vec![view.certificate_id.clone()])
}

/// JSON of `ca trust-path`.
#[derive(Debug, Serialize)]
struct TrustPathView {
    /// Leaf (the requested CA) first, root last.
    certificates_pem: Vec<String>,
    /// The same path as DER PKCS#7, base64.
    p7b_base64: String,
}

async fn trust_path(
    context: &Context,
    certificate_id: String,
    p7b_file: Option<&Path>,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = GetCaTrustPathRequest {
        certificate_id: certificate_id.clone(),
    };
    let path = context
        .call(&connection, "GetCaTrustPath", request, async |request| {
            client.get_ca_trust_path(request).await
        })
        .await?;
    if let Some(file) = p7b_file {
        std::fs::write(file, &path.p7b)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    let view = TrustPathView {
        certificates_pem: path.certificates_pem,
        p7b_base64: STANDARD.encode(&path.p7b),
    };
    let text = concatenated_pem(&view.certificates_pem);
    Outcome::new(&view, text, vec![certificate_id])
}

/// PEM blocks one after the other, each ending with a new line (what `cat a.pem b.pem` gives).
pub fn concatenated_pem(pems: &[String]) -> String {
    let mut text = String::new();
    for pem in pems {
        text.push_str(pem);
        if !pem.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}
