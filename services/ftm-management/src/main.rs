//! `ftm-management` binary.

use std::path::PathBuf;

use clap::Parser;

use pmp_common::config::LogFormat;

/// FTM management service of the FTM partner management platform.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); environment variables `PMP_FTM__*` override it.
    #[arg(long, env = "PMP_FTM_CONFIG")]
    config: Option<PathBuf>,
    /// Log format, overriding `telemetry.log_format`.
    #[arg(long, value_parser = ["pretty", "json"])]
    log_format: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = match ftm_management::config::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("ftm-management: {error}");
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
    let telemetry = pmp_common::telemetry::init(ftm_management::SERVICE_NAME, &settings.telemetry)?;
    let listener = tokio::net::TcpListener::bind(settings.server.listen).await?;
    let result =
        ftm_management::run(settings, listener, pmp_common::server::shutdown_signal()).await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "ftm-management stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
