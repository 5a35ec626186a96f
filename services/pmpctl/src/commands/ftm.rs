//! `pmpctl ftm ...`: FTMs (secure chips), their chip certificates and their review.

use std::path::Path;

use serde::Serialize;

use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::ftm::v1::{
    ApproveFtmRequest, CreateFtmRequest, DeactivateFtmRequest, Ftm, FtmStatus,
    GetFtmCertificateRequest, GetFtmRequest, ListFtmsRequest, RejectFtmRequest,
    UploadFtmCertificateRequest,
};

use super::partner::bundle_outcome;
use super::{Context, Page, fetch_pages};
use crate::certificate_file::read_certificate;
use crate::cli::{FtmCertCommand, FtmCommand, FtmStatusFilter, PageArgs};
use crate::failure::{CliError, Service};
use crate::output::Outcome;
use crate::rpc::Connection;
use crate::views::{FtmView, non_empty, page_footer};

type Client = FtmManagementClient<tonic::transport::Channel>;

/// Which id `--quiet` prints for an FTM answer.
#[derive(Debug, Clone, Copy)]
enum PrimaryId {
    /// The FTM's id (create, review, show).
    Ftm,
    /// The chip certificate's id (certificate upload: that is what was created).
    Certificate,
}

/// Runs one `ftm` subcommand.
pub async fn run(context: &Context, command: FtmCommand) -> Result<Outcome, CliError> {
    match command {
        FtmCommand::Create {
            make,
            model,
            partner_id,
        } => {
            let partner_id = context.partner_id_or_current(partner_id)?;
            create(context, partner_id, make, model).await
        }
        FtmCommand::Cert(FtmCertCommand::Upload { ftm_id, file }) => {
            upload_certificate(context, ftm_id, &file).await
        }
        FtmCommand::Cert(FtmCertCommand::Show { ftm_id, pem }) => {
            let (connection, mut client) = client(context)?;
            let request = GetFtmCertificateRequest { ftm_id };
            let bundle = context
                .call(&connection, "GetFtmCertificate", request, async |request| {
                    client.get_ftm_certificate(request).await
                })
                .await?;
            bundle_outcome(&bundle, &pem)
        }
        FtmCommand::Approve { ftm_id } => approve(context, ftm_id).await,
        FtmCommand::Reject { ftm_id, reason } => reject(context, ftm_id, reason).await,
        FtmCommand::Deactivate { ftm_id } => deactivate(context, ftm_id).await,
        FtmCommand::Show { ftm_id } => show(context, ftm_id).await,
        FtmCommand::List {
            partner_id,
            status,
            make,
            model,
            organization,
            order_by,
            page,
        } => {
            let filter = ListFtmsRequest {
                page_size: 0,
                page_token: String::new(),
                partner_id: partner_id.unwrap_or_default(),
                status: status.map_or(FtmStatus::Unspecified, status_of) as i32,
                make: make.unwrap_or_default(),
                model: model.unwrap_or_default(),
                organization_name: organization.unwrap_or_default(),
                order_by: order_by.unwrap_or_default(),
            };
            list(context, filter, &page).await
        }
    }
}

fn client(context: &Context) -> Result<(Connection, Client), CliError> {
    let connection = context.connection(Service::FtmManagement)?;
    let client = FtmManagementClient::new(connection.channel.clone());
    Ok((connection, client))
}

fn status_of(filter: FtmStatusFilter) -> FtmStatus {
    match filter {
        FtmStatusFilter::PendingCertUpload => FtmStatus::PendingCertUpload,
        FtmStatusFilter::PendingApproval => FtmStatus::PendingApproval,
        FtmStatusFilter::Approved => FtmStatus::Approved,
        FtmStatusFilter::Rejected => FtmStatus::Rejected,
        FtmStatusFilter::Deactivated => FtmStatus::Deactivated,
    }
}

fn ftm_outcome(ftm: &Ftm, primary: PrimaryId) -> Result<Outcome, CliError> {
    let view = FtmView::from(ftm);
    let text = view.table().render();
    let id = match primary {
        PrimaryId::Ftm => Some(view.ftm_id.clone()),
        PrimaryId::Certificate => view.certificate_id.clone(),
    };
    Outcome::new(&view, text, id.into_iter().collect())
}

async fn create(
    context: &Context,
    partner_id: String,
    make: String,
    model: String,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let request = CreateFtmRequest {
        partner_id,
        make,
        model,
    };
    let ftm = context
        .call(&connection, "CreateFtm", request, async |request| {
            client.create_ftm(request).await
        })
        .await?;
    ftm_outcome(&ftm, PrimaryId::Ftm)
}

async fn upload_certificate(
    context: &Context,
    ftm_id: String,
    file: &Path,
) -> Result<Outcome, CliError> {
    let request = UploadFtmCertificateRequest {
        ftm_id,
        certificate_data: read_certificate(file)?,
    };
    let (connection, mut client) = client(context)?;
    let ftm = context
        .call(
            &connection,
            "UploadFtmCertificate",
            request,
            async |request| client.upload_ftm_certificate(request).await,
        )
        .await?;
    ftm_outcome(&ftm, PrimaryId::Certificate)
}

async fn approve(context: &Context, ftm_id: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let ftm = context
        .call(
            &connection,
            "ApproveFtm",
            ApproveFtmRequest { ftm_id },
            async |request| client.approve_ftm(request).await,
        )
        .await?;
    ftm_outcome(&ftm, PrimaryId::Ftm)
}

async fn reject(context: &Context, ftm_id: String, reason: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let ftm = context
        .call(
            &connection,
            "RejectFtm",
            RejectFtmRequest { ftm_id, reason },
            async |request| client.reject_ftm(request).await,
        )
        .await?;
    ftm_outcome(&ftm, PrimaryId::Ftm)
}

async fn deactivate(context: &Context, ftm_id: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let ftm = context
        .call(
            &connection,
            "DeactivateFtm",
            DeactivateFtmRequest { ftm_id },
            async |request| client.deactivate_ftm(request).await,
        )
        .await?;
    ftm_outcome(&ftm, PrimaryId::Ftm)
}

async fn show(context: &Context, ftm_id: String) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let ftm = context
        .call(
            &connection,
            "GetFtm",
            GetFtmRequest { ftm_id },
            async |request| client.get_ftm(request).await,
        )
        .await?;
    ftm_outcome(&ftm, PrimaryId::Ftm)
}

/// JSON of `ftm list`.
#[derive(Debug, Serialize)]
struct FtmListView {
    ftms: Vec<FtmView>,
    next_page_token: Option<String>,
    total_size: i32,
}

async fn list(
    context: &Context,
    filter: ListFtmsRequest,
    page: &PageArgs,
) -> Result<Outcome, CliError> {
    let (connection, mut client) = client(context)?;
    let fetched = fetch_pages(page, async |page_size, page_token| {
        let request = ListFtmsRequest {
            page_size,
            page_token,
            ..filter.clone()
        };
        let response = context
            .call(&connection, "ListFtms", request, async |request| {
                client.list_ftms(request).await
            })
            .await?;
        Ok(Page {
            items: response.ftms.iter().map(Into::into).collect(),
            next_page_token: non_empty(&response.next_page_token),
            total_size: response.total_size,
        })
    })
    .await?;
    let view = FtmListView {
        ftms: fetched.items,
        next_page_token: fetched.next_page_token,
        total_size: fetched.total_size,
    };
    let text = format!(
        "{}{}",
        FtmView::list_table(&view.ftms).render(),
        page_footer(
            view.ftms.len(),
            view.total_size,
            view.next_page_token.as_deref()
        )
    );
    let ids = view.ftms.iter().map(|ftm| ftm.ftm_id.clone()).collect();
    Outcome::new(&view, text, ids)
}
