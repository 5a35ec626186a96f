//! `pmpctl watch partners` and `pmpctl watch ftms`: the live change streams of the registry
//! (`WatchPartnerEvents`) and FTM management (`WatchFtmEvents`), one line per message as it
//! arrives: a table row, a JSON object (`--output json`), or the version (`--quiet`).
//!
//! A stream the server ends with UNAVAILABLE (a replica shutting down) is resumed from the
//! last version printed, so nothing is missed and nothing repeated.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;
use serde::Serialize;
use tonic::Code;

use pmp_proto::certstore::v1 as store;
use pmp_proto::certstore::v1::certificate_store_client::CertificateStoreClient;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as partner;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use super::Context;
use crate::failure::{CliError, Service};
use crate::output::{Outcome, OutputMode};
use crate::rpc::{self, Connection};

/// `pmpctl watch ...`.
#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Partner changes (admin): registered, certificate uploaded, activated, deactivated;
    /// a snapshot of every partner first.
    Partners(WatchArgs),
    /// FTM changes (admin): created, certificate uploaded, approved, rejected, deactivated;
    /// a snapshot of every FTM first.
    Ftms(WatchArgs),
    /// The certificate store's trust feed (platform services and admins): a snapshot of
    /// the trust data, then every trust change (CA added, trust flags, partner states,
    /// revocations, expiry notices).
    Trust(TrustWatchArgs),
}

/// `pmpctl watch trust`.
#[derive(Debug, Args)]
pub struct TrustWatchArgs {
    /// Domains to follow (repeatable); every domain when left out.
    #[arg(long)]
    pub domain: Vec<String>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Where a watch starts and when it stops.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print only the changes after this version (the first column of an earlier watch);
    /// 0 starts with a snapshot.
    #[arg(long, default_value_t = 0, value_name = "VERSION",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub from_version: i64,
    /// Stop after this many lines (default: watch until interrupted).
    #[arg(long, value_name = "LINES")]
    pub limit: Option<u64>,
    /// Also print heartbeats (the server sends one when nothing changed for a while).
    #[arg(long)]
    pub heartbeats: bool,
}

/// One printed line.
#[derive(Debug, Serialize)]
struct EventLine {
    version: i64,
    time: String,
    kind: &'static str,
    /// `partner_id` or `ftm_id`.
    id: String,
    details: Vec<(&'static str, String)>,
}

impl EventLine {
    fn new(version: i64, time: Option<&prost_types::Timestamp>, kind: &'static str) -> Self {
        EventLine {
            version,
            time: time.map(format_time).unwrap_or_default(),
            kind,
            id: String::new(),
            details: Vec::new(),
        }
    }

    fn with(mut self, id: String, details: Vec<(&'static str, String)>) -> Self {
        self.id = id;
        self.details = details;
        self
    }

    fn render(&self, mode: OutputMode) -> Result<String, CliError> {
        Ok(match mode {
            OutputMode::Quiet => self.version.to_string(),
            OutputMode::Json => {
                let mut object = serde_json::json!({
                    "version": self.version,
                    "time": self.time,
                    "kind": self.kind,
                    "id": self.id,
                });
                for (key, value) in &self.details {
                    object[*key] = serde_json::Value::String(value.clone());
                }
                serde_json::to_string(&object).map_err(|error| {
                    CliError::Local(anyhow::anyhow!("cannot encode output: {error}"))
                })?
            }
            OutputMode::Table => {
                let mut line = format!("{:>8}  {}  {:<22}", self.version, self.time, self.kind);
                if !self.id.is_empty() {
                    line.push_str("  ");
                    line.push_str(&self.id);
                }
                for (key, value) in &self.details {
                    line.push_str(&format!("  {key}={value:?}"));
                }
                line
            }
        })
    }
}

fn format_time(time: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn partner_status(value: i32) -> String {
    partner::PartnerStatus::try_from(value)
        .map(|status| status.as_str_name().to_owned())
        .unwrap_or_else(|_| value.to_string())
}

fn ftm_status(value: i32) -> String {
    ftm::FtmStatus::try_from(value)
        .map(|status| status.as_str_name().to_owned())
        .unwrap_or_else(|_| value.to_string())
}

fn partner_state(state: &partner::PartnerState) -> Vec<(&'static str, String)> {
    vec![
        ("status", partner_status(state.status)),
        ("partner_type", state.partner_type.clone()),
        ("organization", state.organization_name.clone()),
        ("certificate_id", state.certificate_id.clone()),
    ]
}

fn ftm_state(state: &ftm::FtmState) -> Vec<(&'static str, String)> {
    vec![
        ("status", ftm_status(state.status)),
        ("partner_id", state.partner_id.clone()),
        ("make", state.make.clone()),
        ("model", state.model.clone()),
        ("certificate_id", state.certificate_id.clone()),
    ]
}

/// The lines of one partner message (a snapshot part has one per partner, and a last line
/// when it is the final part).
fn partner_lines(message: &partner::PartnerEvent) -> Vec<EventLine> {
    use partner::partner_event::Event;
    let named = |kind| EventLine::new(message.version, message.time.as_ref(), kind);
    match &message.event {
        Some(Event::Snapshot(snapshot)) => {
            let mut lines: Vec<EventLine> = snapshot
                .partners
                .iter()
                .map(|state| named("snapshot").with(state.partner_id.clone(), partner_state(state)))
                .collect();
            if snapshot.last {
                lines.push(named("snapshot-end"));
            }
            lines
        }
        Some(Event::Registered(registered)) => registered
            .partner
            .iter()
            .map(|state| named("registered").with(state.partner_id.clone(), partner_state(state)))
            .collect(),
        Some(Event::Activated(activated)) => vec![named("activated").with(
            activated.partner_id.clone(),
            vec![("status", partner_status(activated.status))],
        )],
        Some(Event::Deactivated(deactivated)) => {
            vec![named("deactivated").with(deactivated.partner_id.clone(), Vec::new())]
        }
        Some(Event::CertificateUploaded(uploaded)) => vec![named("certificate-uploaded").with(
            uploaded.partner_id.clone(),
            vec![("certificate_id", uploaded.certificate_id.clone())],
        )],
        Some(Event::Heartbeat(_)) => vec![named("heartbeat")],
        None => vec![named("unknown")],
    }
}

/// The lines of one FTM message.
fn ftm_lines(message: &ftm::FtmEvent) -> Vec<EventLine> {
    use ftm::ftm_event::Event;
    let named = |kind| EventLine::new(message.version, message.time.as_ref(), kind);
    match &message.event {
        Some(Event::Snapshot(snapshot)) => {
            let mut lines: Vec<EventLine> = snapshot
                .ftms
                .iter()
                .map(|state| named("snapshot").with(state.ftm_id.clone(), ftm_state(state)))
                .collect();
            if snapshot.last {
                lines.push(named("snapshot-end"));
            }
            lines
        }
        Some(Event::Created(created)) => created
            .ftm
            .iter()
            .map(|state| named("created").with(state.ftm_id.clone(), ftm_state(state)))
            .collect(),
        Some(Event::CertificateUploaded(uploaded)) => vec![named("certificate-uploaded").with(
            uploaded.ftm_id.clone(),
            vec![("certificate_id", uploaded.certificate_id.clone())],
        )],
        Some(Event::Approved(approved)) => {
            vec![named("approved").with(approved.ftm_id.clone(), Vec::new())]
        }
        Some(Event::Rejected(rejected)) => vec![named("rejected").with(
            rejected.ftm_id.clone(),
            vec![("reason", rejected.reason.clone())],
        )],
        Some(Event::Deactivated(deactivated)) => {
            vec![named("deactivated").with(deactivated.ftm_id.clone(), Vec::new())]
        }
        Some(Event::Heartbeat(_)) => vec![named("heartbeat")],
        None => vec![named("unknown")],
    }
}

/// Runs one `watch` subcommand until the limit, the end of the stream or a failure.
pub async fn run(context: &Context, command: WatchCommand) -> Result<Outcome, CliError> {
    match command {
        WatchCommand::Trust(args) => {
            let connection = context.connection(Service::CertificateStore)?;
            let client = CertificateStoreClient::new(connection.channel.clone());
            let domains = args.domain;
            follow(
                context,
                &connection,
                args.watch,
                async |from_version, token| {
                    let request = rpc::streaming_request(
                        store::WatchTrustChangesRequest {
                            partner_domains: domains.clone(),
                            from_version,
                        },
                        token.as_deref(),
                    );
                    let stream = client.clone().watch_trust_changes(request).await?;
                    Ok(stream
                        .into_inner()
                        .map(|message| {
                            message.map(|message| (message.version, trust_lines(&message)))
                        })
                        .boxed())
                },
            )
            .await
        }
        WatchCommand::Partners(args) => {
            let connection = context.connection(Service::Registry)?;
            let client = PartnerRegistryClient::new(connection.channel.clone());
            follow(context, &connection, args, async |from_version, token| {
                let request = rpc::streaming_request(
                    partner::WatchPartnerEventsRequest { from_version },
                    token.as_deref(),
                );
                let stream = client.clone().watch_partner_events(request).await?;
                Ok(stream
                    .into_inner()
                    .map(|message| {
                        message.map(|message| (message.version, partner_lines(&message)))
                    })
                    .boxed())
            })
            .await
        }
        WatchCommand::Ftms(args) => {
            let connection = context.connection(Service::FtmManagement)?;
            let client = FtmManagementClient::new(connection.channel.clone());
            follow(context, &connection, args, async |from_version, token| {
                let request = rpc::streaming_request(
                    ftm::WatchFtmEventsRequest { from_version },
                    token.as_deref(),
                );
                let stream = client.clone().watch_ftm_events(request).await?;
                Ok(stream
                    .into_inner()
                    .map(|message| message.map(|message| (message.version, ftm_lines(&message))))
                    .boxed())
            })
            .await
        }
    }
}

/// The line of one trust feed message.
fn trust_lines(message: &store::TrustChange) -> Vec<EventLine> {
    use store::trust_change::Change;
    let named = |kind| EventLine::new(message.version, message.time.as_ref(), kind);
    let line = match &message.change {
        Some(Change::Snapshot(part)) => named(if part.last {
            "snapshot-end"
        } else {
            "snapshot"
        })
        .with(
            String::new(),
            vec![
                ("ca_certificates", part.ca_certificates.len().to_string()),
                (
                    "stored_certificates",
                    part.stored_certificates.len().to_string(),
                ),
                (
                    "deactivated_partners",
                    part.deactivated_partner_ids.len().to_string(),
                ),
                ("revocations", part.revocations.len().to_string()),
            ],
        ),
        Some(Change::CaCertificateAdded(ca)) => named("ca-added").with(
            super::verify::subject_of(&ca.certificate_pem),
            vec![("partner_domain", ca.partner_domain.clone())],
        ),
        Some(Change::StoredCertificate(stored)) => named("certificate-trust").with(
            stored.identity.clone(),
            vec![
                ("partner_domain", stored.partner_domain.clone()),
                ("partner_id", stored.partner_id.clone()),
                ("trusted", stored.trusted.to_string()),
            ],
        ),
        Some(Change::Partner(partner)) => named(if partner.deactivated {
            "partner-deactivated"
        } else {
            "partner-active"
        })
        .with(partner.partner_id.clone(), Vec::new()),
        Some(Change::CertificateRevoked(revocation)) => named("revoked").with(
            revocation.certificate_id.clone(),
            vec![
                ("partner_domain", revocation.partner_domain.clone()),
                (
                    "certificate_kind",
                    revocation.kind().as_str_name().to_owned(),
                ),
                ("reason", revocation.reason().as_str_name().to_owned()),
            ],
        ),
        Some(Change::CertificateExpiring(expiring)) => named("expiring").with(
            expiring.certificate_id.clone(),
            vec![
                ("partner_domain", expiring.partner_domain.clone()),
                ("certificate_kind", expiring.kind().as_str_name().to_owned()),
                ("threshold_days", expiring.threshold_days.to_string()),
                (
                    "expiry_time",
                    expiring
                        .expiry_time
                        .as_ref()
                        .map(format_time)
                        .unwrap_or_default(),
                ),
            ],
        ),
        Some(Change::Heartbeat(_)) => named("heartbeat"),
        None => named("unknown"),
    };
    vec![line]
}

/// Each message's version and lines.
type Lines = futures::stream::BoxStream<'static, Result<(i64, Vec<EventLine>), tonic::Status>>;

/// Prints the stream `open(from_version, token)` gives, resuming it from the last version
/// received when the server ends it with UNAVAILABLE after sending something.
async fn follow(
    context: &Context,
    connection: &Connection,
    args: WatchArgs,
    open: impl AsyncFn(i64, Option<String>) -> Result<Lines, tonic::Status>,
) -> Result<Outcome, CliError> {
    let failed = |status: tonic::Status| rpc::failure(connection, status);
    let mut position = args.from_version;
    let mut printed: u64 = 0;
    let mut stdout = std::io::stdout();
    loop {
        let mut stream = open(position, context.token()?).await.map_err(failed)?;
        let mut received = false;
        let ended = loop {
            let Some(message) = stream.next().await else {
                break None;
            };
            let (version, lines) = match message {
                Ok(message) => message,
                Err(status) => break Some(status),
            };
            received = true;
            position = version;
            for line in lines {
                if line.kind == "heartbeat" && !args.heartbeats {
                    continue;
                }
                writeln!(stdout, "{}", line.render(context.mode)?)
                    .and_then(|()| stdout.flush())
                    .map_err(|error| CliError::Local(anyhow::anyhow!("cannot print: {error}")))?;
                printed += 1;
                if args.limit.is_some_and(|limit| printed >= limit) {
                    return Ok(Outcome::empty());
                }
            }
        };
        match ended {
            None => return Ok(Outcome::empty()),
            Some(status) if status.code() == Code::Unavailable && received => {
                eprintln!(
                    "pmpctl: stream ended ({}), resuming from version {position}",
                    status.message()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(status) => return Err(failed(status)),
        }
    }
}
