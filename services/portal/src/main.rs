//! The portal binary: `portal [--config FILE]`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

/// Partner Management Portal: the FTM workflow in a browser.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML settings file (also `PMP_PORTAL_CONFIG`); environment variables
    /// `PMP_PORTAL__SECTION__KEY` override it.
    #[arg(long, env = "PMP_PORTAL_CONFIG")]
    config: Option<PathBuf>,
    /// Serve on the listening socket given as standard input instead of binding
    /// `server.listen` (test harnesses and supervisors hand the port over).
    #[arg(long)]
    listener_on_stdin: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match portal::config::PortalSettings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("portal: {error}");
            std::process::exit(2);
        }
    };
    let telemetry = pmp_common::telemetry::init("portal", &settings.telemetry)?;
    let result = serve(settings, cli.listener_on_stdin).await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "portal stopped with an error");
    }
    telemetry.shutdown();
    result
}

async fn serve(
    settings: portal::config::PortalSettings,
    listener_on_stdin: bool,
) -> anyhow::Result<()> {
    let listener = if listener_on_stdin {
        pmp_common::binary::inherited_listener()?
    } else {
        tokio::net::TcpListener::bind(settings.server.listen).await?
    };
    let grace = std::time::Duration::from_secs(settings.server.shutdown_grace_seconds);
    let state = Arc::new(portal::AppState::new(settings)?);
    tracing::info!(address = %listener.local_addr()?, "portal listening");
    portal::serve(
        listener,
        state,
        pmp_common::server::shutdown_signal(),
        grace,
    )
    .await
}
