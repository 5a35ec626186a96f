//! `partner-registry` binary.

use std::path::PathBuf;

use clap::Parser;

use pmp_common::config::LogFormat;

/// Partner registry of the FTM partner management platform.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); environment variables `PMP_REGISTRY__*` override it.
    #[arg(long, env = "PMP_REGISTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Log format, overriding `telemetry.log_format`.
    #[arg(long, value_parser = ["pretty", "json"])]
    log_format: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = match partner_registry::config::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("partner-registry: {error}");
            std::process::exit(2);
        }
    };
    if let Some(format) = cli.log_format.as_deref() {
        settings.telemetry.log_format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        };
    }
    let telemetry =
        pmp_common::telemetry::init(partner_registry::SERVICE_NAME, &settings.telemetry)?;
    let listener = tokio::net::TcpListener::bind(settings.server.listen).await?;
    let result =
        partner_registry::run(settings, listener, pmp_common::server::shutdown_signal()).await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "partner-registry stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
