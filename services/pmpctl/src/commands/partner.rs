//! `pmpctl partner ...`: partner records, the partner certificate and (admin) activation.

use std::path::Path;

use serde::Serialize;

use pmp_proto::certstore::v1::CertificateBundle;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::{
    GetPartnerCertificateRequest, GetPartnerRequest, ListPartnersRequest, PartnerStatus,
    SetPartnerActiveRequest, UploadPartnerCertificateRequest,
};

use super::{Context, Page, fetch_pages};
use crate::certificate_file::read_certificate;
use crate::cli::{PageArgs, PartnerCertCommand, PartnerCommand, PartnerStatusFilter, PemChoice};
use crate::failure::{CliError, Service};
use crate::output::{Outcome, Table};
use crate::rpc::Connection;
use crate::views::{CertificateBundleView, PartnerView, non_empty, page_footer};

type Client = PartnerRegistryClient<tonic::transport::Channel>;

/// Runs one `partner` subcommand.
pub async fn run(context: &Context, command: PartnerCommand) -> Result<Outcome, CliError> {
    match command {
        PartnerCommand::Show { partner_id } => {
            show(context, context.partner_id_or_current(partner_id)?).await
        }
        PartnerCommand::List {
            partner_type,
            status,
            page,
        } => list(context, partner_type, status, &page).await,
        PartnerCommand::Cert(PartnerCertCommand::Upload {
            file,
            partner_id,
            domain,
        }) => {
            let partner_id = context.partner_id_or_current(partner_id)?;
            upload_certificate(context, partner_id, &file, domain).await
        }
        PartnerCommand::Cert(PartnerCertCommand::Show { partner_id, pem }) => {
            let partner_id = context.partner_id_or_current(partner_id)?;
            show_certificate(context, partner_id, &pem).await
        }
        PartnerCommand::Activate { partner_id } => set_active(context, partner_id, true).await,
        PartnerCommand::Deactivate { partner_id } => set_active(context, partner_id, false).await,
    }
}

fn client(context: &Context) -> Result<(Connection, Client), CliError> {
    let connection = context.connection(Service::Registry)?;
    let client = PartnerRegistryClient::new(connection.channel.clone());
    Ok((connection, client))
}

/// A partner as a field table, with its id for `--quiet`.
fn partner_outcome(partner: &pmp_proto::partner::v1::Partner) -> Result<Outcome, CliError> {
    let view = PartnerView::from(partner);
    let text = view.table().render();
    Outcome::new(&view, text, vec![view.partner_id.clone()])
}

async fn show(context: &Context, partner_id: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = GetPartnerRequest { partner_id };
    let partner = context
        .call(&connection, "GetPartner", request, async |request| {
            client.get_partner(request).await
        })
        .await?;
    partner_outcome(&partner)
}

/// JSON of `partner list`.
#[derive(Debug, Serialize)]
struct PartnerListView {
    partners: Vec<PartnerView>,
    next_page_token: Option<String>,
    total_size: i32,
}

async fn list(
    context: &Context,
    partner_type: Option<String>,
    status: Option<PartnerStatusFilter>,
    page: &PageArgs,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let status = match status {
        None => PartnerStatus::Unspecified,
        Some(PartnerStatusFilter::InProgress) => PartnerStatus::InProgress,
        Some(PartnerStatusFilter::Active) => PartnerStatus::Active,
        Some(PartnerStatusFilter::Deactivated) => PartnerStatus::Deactivated,
    };
    let fetched = fetch_pages(page, async |page_size, page_token| {
        let request = ListPartnersRequest {
            page_size,
            page_token,
            partner_type: partner_type.clone().unwrap_or_default(),
            status: status as i32,
        };
        let response = context
            .call(&connection, "ListPartners", request, async |request| {
                client.list_partners(request).await
            })
            .await?;
        Ok(Page {
            items: response.partners.iter().map(Into::into).collect(),
            next_page_token: non_empty(&response.next_page_token),
            total_size: response.total_size,
        })
    })
    .await?;
    let view = PartnerListView {
        partners: fetched.items,
        next_page_token: fetched.next_page_token,
        total_size: fetched.total_size,
    };
    let text = format!(
        "{}{}",
        PartnerView::list_table(&view.partners).render(),
        page_footer(
            view.partners.len(),
            view.total_size,
            view.next_page_token.as_deref()
        )
    );
    let ids = view
        .partners
        .iter()
        .map(|partner| partner.partner_id.clone())
        .collect();
    Outcome::new(&view, text, ids)
}

/// JSON of `partner cert upload`.
#[derive(Debug, Serialize)]
struct CertificateUploadView {
    certificate_id: String,
    /// The platform-signed copy (PEM).
    signed_certificate_pem: String,
    partner: Option<PartnerView>,
}

async fn upload_certificate(
    context: &Context,
    partner_id: String,
    file: &Path,
    domain: String,
) -> Result<Outcome, CliError> {
    let request = UploadPartnerCertificateRequest {
        partner_id,
        certificate_data: read_certificate(file)?,
        partner_domain: domain,
    };
    let (connection, mut client) = client(context)?;
    let response = context
        .call(
            &connection,
            "UploadPartnerCertificate",
            request,
            async |request| client.upload_partner_certificate(request).await,
        )
        .await?;
    let view = CertificateUploadView {
        certificate_id: response.certificate_id,
        signed_certificate_pem: response.signed_certificate_data,
        partner: response.partner.as_ref().map(PartnerView::from),
    };
    let mut rows = vec![("CERTIFICATE ID", view.certificate_id.clone())];
    if let Some(partner) = &view.partner {
        rows.push(("PARTNER ID", partner.partner_id.clone()));
        rows.push(("PARTNER STATUS", partner.status.clone()));
    }
    let text = Table::fields(rows).render();
    Outcome::new(&view, text, vec![view.certificate_id.clone()])
}

async fn show_certificate(
    context: &Context,
    partner_id: String,
    pem: &PemChoice,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = GetPartnerCertificateRequest { partner_id };
    let bundle = context
        .call(
            &connection,
            "GetPartnerCertificate",
            request,
            async |request| client.get_partner_certificate(request).await,
        )
        .await?;
    bundle_outcome(&bundle, pem)
}

/// A stored certificate: summary table, or one of its PEMs with `--pem` / `--platform-pem`.
pub fn bundle_outcome(bundle: &CertificateBundle, pem: &PemChoice) -> Result<Outcome, CliError> {
    let view = CertificateBundleView::from(bundle);
    let text = if pem.pem {
        view.ca_signed_certificate_pem.clone()
    } else if pem.platform_pem {
        view.platform_signed_certificate_pem.clone()
    } else {
        view.table().render()
    };
    Outcome::new(&view, text, vec![view.certificate_id.clone()])
}

async fn set_active(
    context: &Context,
    partner_id: String,
    active: bool,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = SetPartnerActiveRequest { partner_id, active };
    let partner = context
        .call(&connection, "SetPartnerActive", request, async |request| {
            client.set_partner_active(request).await
        })
        .await?;
    partner_outcome(&partner)
}
