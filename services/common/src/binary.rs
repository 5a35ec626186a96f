//! The `main` of every service binary: command line, layered configuration, telemetry,
//! binding, running until SIGTERM/SIGINT, and flushing spans on the way out.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::net::TcpListener;

use crate::bootstrap::{PlatformService, ServiceSettings};
use crate::config::LogFormat;

/// Command line shared by the service binaries.
#[derive(Debug, Parser)]
#[command(version)]
pub struct ServiceCli {
    /// Configuration file (TOML); environment variables `<PREFIX>__SECTION__KEY` override it.
    /// Also taken from `<PREFIX>_CONFIG` (e.g. `PMP_REGISTRY_CONFIG`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format, overriding `telemetry.log_format`.
    #[arg(long, value_parser = ["pretty", "json"])]
    pub log_format: Option<String>,
    /// Serve gRPC on the listening socket given as standard input (inetd "wait" style)
    /// instead of binding `server.listen`: whoever starts the process bound the port and
    /// hands it over, so nobody else can take it in between (test harnesses, supervisors).
    #[arg(long)]
    pub listener_on_stdin: bool,
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
}

/// One-off tasks of a service binary.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Applies the database migrations, then exits (a Helm pre-install/pre-upgrade Job).
    /// Replicas also migrate at start-up, under the same lock, so this is an ordering aid
    /// rather than a requirement.
    Migrate,
    /// Generates a key pair in the configured HSM (`hsm.*`), the private key sensitive and
    /// never extractable, and writes its public key (PEM) to `--public-key-out`: the first
    /// step of a key ceremony.
    GenerateHsmKey {
        /// The key pair's label, which `*_key_label` settings name.
        #[arg(long)]
        label: String,
        /// Where to write the public key.
        #[arg(long)]
        public_key_out: PathBuf,
        /// `ec-p256` (service identities, tokens), `ec-p384`, `rsa-2048` or `rsa-3072`.
        #[arg(long, default_value = "ec-p256", value_parser = parse_algorithm)]
        algorithm: crate::signing::KeyAlgorithm,
    },
}

fn parse_algorithm(text: &str) -> Result<crate::signing::KeyAlgorithm, String> {
    use crate::signing::KeyAlgorithm;
    match text {
        "ec-p256" => Ok(KeyAlgorithm::EcP256),
        "ec-p384" => Ok(KeyAlgorithm::EcP384),
        "rsa-2048" => Ok(KeyAlgorithm::Rsa { bits: 2048 }),
        "rsa-3072" => Ok(KeyAlgorithm::Rsa { bits: 3072 }),
        other => Err(format!(
            "{other}: expected ec-p256, ec-p384, rsa-2048 or rsa-3072"
        )),
    }
}

/// Runs [`ServiceCommand::GenerateHsmKey`].
fn generate_hsm_key(
    hsm: &crate::signing::HsmSettings,
    label: &str,
    algorithm: crate::signing::KeyAlgorithm,
    public_key_out: &std::path::Path,
) -> anyhow::Result<()> {
    if !hsm.enabled() {
        anyhow::bail!("hsm.module is not set: there is no HSM to generate a key in");
    }
    let public = crate::signing::generate_key_pair(hsm, label, algorithm)?;
    std::fs::write(public_key_out, public.public_key_to_pem()?)
        .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", public_key_out.display()))?;
    tracing::info!(label, ?algorithm, token = %hsm.token_label, "generated a key pair in the HSM");
    Ok(())
}

/// The listening socket on standard input (`--listener-on-stdin`), for every binary of the
/// platform, the portal included.
pub fn inherited_listener() -> anyhow::Result<TcpListener> {
    use std::os::fd::AsFd;
    let descriptor = std::io::stdin().as_fd().try_clone_to_owned()?;
    let listener = std::net::TcpListener::from(descriptor);
    listener.local_addr().map_err(|error| {
        anyhow::anyhow!("--listener-on-stdin: standard input is not a TCP socket ({error})")
    })?;
    listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(listener)?)
}

/// The `main` of service `P`: parses the command line, loads the settings (exit code 2 and
/// a clear message when they are invalid), sets up telemetry, binds, and runs the service
/// until a shutdown signal, then flushes spans.
pub async fn main<P>(about: &'static str) -> anyhow::Result<()>
where
    P: PlatformService + Default,
    <P::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError>,
    <P::Server as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
{
    let service_name = P::NAME;
    let env_prefix = <P::Settings as ServiceSettings>::ENV_PREFIX;
    let matches = ServiceCli::command()
        .name(service_name)
        .about(about)
        .get_matches();
    let cli = ServiceCli::from_arg_matches(&matches)?;
    let config = cli
        .config
        .or_else(|| std::env::var_os(format!("{env_prefix}_CONFIG")).map(PathBuf::from));
    let mut settings = match P::Settings::load(config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{service_name}: {error}");
            std::process::exit(2);
        }
    };
    if let Some(format) = cli.log_format.as_deref() {
        settings.telemetry_mut().log_format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        };
    }
    let telemetry = crate::telemetry::init(service_name, settings.telemetry_mut())?;
    match &cli.command {
        Some(ServiceCommand::Migrate) => {
            let result = crate::bootstrap::migrate::<P>(&settings).await;
            telemetry.shutdown();
            return result;
        }
        Some(ServiceCommand::GenerateHsmKey {
            label,
            public_key_out,
            algorithm,
        }) => {
            let result = generate_hsm_key(settings.base().hsm, label, *algorithm, public_key_out);
            telemetry.shutdown();
            return result;
        }
        None => {}
    }
    let listener = if cli.listener_on_stdin {
        inherited_listener()?
    } else {
        TcpListener::bind(settings.listen()).await?
    };
    let listeners = crate::bootstrap::Listeners::new(listener, &settings)?;
    let result = crate::bootstrap::run(
        P::default(),
        settings,
        listeners,
        crate::server::shutdown_signal(),
    )
    .await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "{service_name} stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
