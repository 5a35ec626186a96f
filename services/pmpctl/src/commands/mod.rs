//! Running a parsed command line: the shared [`Context`] (addresses, token, deadlines,
//! output mode) and one module per area of the workflow.

mod account;
mod ca;
mod dev;
mod ftm;
mod health;
mod partner;
mod platform_key;
mod token_key;
mod trust;
mod verify;
pub mod watch;

use std::io::BufRead;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic::{Request, Response, Status};

use crate::cli::{Cli, Command, GlobalOptions, PageArgs, PasswordSource};
use crate::failure::{CliError, EXIT_AUTH, Service};
use crate::output::OutputMode;
use crate::rpc::{self, Authentication, CallOptions, Connection};
use crate::session::{Claims, TokenFile};
use crate::settings::{self, FileSettings};

/// Runs `cli` and prints its result; the error is printed by the caller.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let context = Context::new(cli.global);
    let outcome = match cli.command {
        Command::Register(args) => account::register(&context, args).await?,
        Command::Login(args) => account::login(&context, args).await?,
        Command::Logout => account::logout(&context)?,
        Command::Whoami => account::whoami(&context)?,
        Command::TokenKeys => account::token_keys(&context).await?,
        Command::Ca(command) => ca::run(&context, command).await?,
        Command::Partner(command) => partner::run(&context, command).await?,
        Command::Ftm(command) => ftm::run(&context, command).await?,
        Command::PlatformKey(command) => platform_key::run(&context, command).await?,
        Command::TokenKey(command) => token_key::run(&context, command).await?,
        Command::Verify(args) => verify::run(&context, args).await?,
        Command::Revoke(args) => trust::revoke(&context, args).await?,
        Command::Crl(command) => trust::crl(&context, command).await?,
        Command::Expiring(args) => trust::expiring(&context, args).await?,
        Command::Dev(command) => dev::run(&context, command)?,
        Command::Health(args) => health::run(&context, args).await?,
        Command::Watch(command) => watch::run(&context, command).await?,
    };
    outcome.finish(context.mode)
}

/// What every command needs from the global options.
pub struct Context {
    options: GlobalOptions,
    /// How the result is printed.
    pub mode: OutputMode,
    call_options: CallOptions,
}

impl Context {
    fn new(options: GlobalOptions) -> Self {
        let mode = OutputMode::new(options.output, options.quiet);
        let call_options = CallOptions {
            timeout: Duration::from_secs(options.timeout),
            verbose: options.verbose,
        };
        Context {
            options,
            mode,
            call_options,
        }
    }

    /// A channel to `service` at the address from flag/environment, config file or default.
    pub fn connection(&self, service: Service) -> Result<Connection, CliError> {
        let given = match service {
            Service::Registry => self.options.registry.clone(),
            Service::CertificateStore => self.options.certstore.clone(),
            Service::FtmManagement => self.options.ftm.clone(),
        };
        let file = FileSettings::load(self.options.config.as_deref())?;
        let address = match given.filter(|address| !address.trim().is_empty()) {
            Some(address) => address,
            None => file
                .address(service)
                .unwrap_or_else(|| settings::default_address(service))
                .to_owned(),
        };
        let address = settings::normalise_address(&address);
        let tls = if address.starts_with("https://") {
            Some(self.tls(&file)?)
        } else {
            None
        };
        Connection::open(service, &address, self.call_options.timeout, tls)
    }

    /// The TLS client configuration from flags/environment, else the configuration file.
    fn tls(&self, file: &FileSettings) -> Result<ClientTlsConfig, CliError> {
        let options = &self.options;
        let ca_file = options
            .ca_file
            .as_ref()
            .or(file.ca_file.as_ref())
            .ok_or_else(|| {
                CliError::Usage("https:// addresses need --ca-file (or PMPCTL_CA_FILE)".to_owned())
            })?;
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca_file)?));
        let client = match (&options.cert_file, &options.key_file) {
            (Some(certificate), Some(key)) => Some((certificate, key)),
            _ => file.cert_file.as_ref().zip(file.key_file.as_ref()),
        };
        if let Some((certificate, key)) = client {
            config = config.identity(Identity::from_pem(read(certificate)?, read(key)?));
        }
        Ok(config)
    }

    /// Where `login` saves the token.
    pub fn token_file(&self) -> Result<TokenFile, CliError> {
        let directory = settings::config_directory().ok_or_else(|| {
            CliError::Usage(
                "cannot find a configuration directory: set XDG_CONFIG_HOME or HOME, or use \
                 --token / `login --print-token`"
                    .to_owned(),
            )
        })?;
        Ok(TokenFile::in_directory(&directory))
    }

    /// Whether `--token` / `PMPCTL_TOKEN` is in effect (it shadows the saved token).
    pub fn token_overridden(&self) -> bool {
        self.options
            .token
            .as_deref()
            .is_some_and(|token| !token.trim().is_empty())
    }

    /// The token to send: `--token` / `PMPCTL_TOKEN`, else the saved one, else none (the
    /// service then answers UNAUTHENTICATED, which says exactly what is wrong).
    pub fn token(&self) -> Result<Option<String>, CliError> {
        if self.token_overridden() {
            return Ok(self
                .options
                .token
                .as_deref()
                .map(|token| token.trim().to_owned()));
        }
        match settings::config_directory() {
            Some(directory) => TokenFile::in_directory(&directory).load(),
            None => Ok(None),
        }
    }

    /// The claims of the current token; an auth failure when there is no token.
    pub fn claims(&self) -> Result<Claims, CliError> {
        let token = self.token()?.ok_or_else(|| CliError::Refused {
            message: "not logged in: run `pmpctl login` or pass --token / PMPCTL_TOKEN".to_owned(),
            exit_code: EXIT_AUTH,
        })?;
        Claims::decode(&token)
            .ok_or_else(|| CliError::Usage("the access token is not a readable JWT".to_owned()))
    }

    /// `given`, or the partner id of the logged-in user.
    pub fn partner_id_or_current(&self, given: Option<String>) -> Result<String, CliError> {
        if let Some(partner_id) = given {
            return Ok(partner_id);
        }
        let claims = self.claims().map_err(|_| {
            CliError::Usage("give a partner id, or log in as the partner first".to_owned())
        })?;
        claims
            .partner_id()
            .map(str::to_owned)
            .ok_or_else(|| CliError::Usage("give a partner id: the token names no user".into()))
    }

    /// An authenticated unary call (see [`rpc::unary`]).
    pub async fn call<T, R>(
        &self,
        connection: &Connection,
        method: &str,
        message: T,
        send: impl AsyncFnOnce(Request<T>) -> Result<Response<R>, Status>,
    ) -> Result<R, CliError> {
        let token = self.token()?;
        rpc::unary(
            connection,
            method,
            Authentication::Bearer,
            token.as_deref(),
            &self.call_options,
            message,
            send,
        )
        .await
    }

    /// A call of an RPC that needs no token (registration, login, token keys).
    pub async fn call_anonymous<T, R>(
        &self,
        connection: &Connection,
        method: &str,
        message: T,
        send: impl AsyncFnOnce(Request<T>) -> Result<Response<R>, Status>,
    ) -> Result<R, CliError> {
        rpc::unary(
            connection,
            method,
            Authentication::Anonymous,
            None,
            &self.call_options,
            message,
            send,
        )
        .await
    }
}

/// The password from `--password` or the first line of stdin, never from an echoing prompt.
pub fn read_password(source: &PasswordSource) -> Result<String, CliError> {
    let password = match (&source.password, source.password_stdin) {
        (Some(password), _) => password.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|error| CliError::Usage(format!("cannot read stdin: {error}")))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, false) => String::new(),
    };
    if password.is_empty() {
        return Err(CliError::Usage(
            "a password is required: --password-stdin (or --password)".to_owned(),
        ));
    }
    Ok(password)
}

/// One page of a listing: the items, the next page token (if any) and the total count.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
    pub total_size: i32,
}

/// Largest page the services serve; `--all` asks for it to make few calls.
const MAX_PAGE_SIZE: i32 = 500;

/// Fetches the page `page` asks for, or with `--all` every page from the first, through
/// `fetch(page_size, page_token)`.
pub async fn fetch_pages<T>(
    page: &PageArgs,
    mut fetch: impl AsyncFnMut(i32, String) -> Result<Page<T>, CliError>,
) -> Result<Page<T>, CliError> {
    if !page.all {
        return fetch(page.page_size, page.page_token.clone().unwrap_or_default()).await;
    }
    let page_size = if page.page_size == 0 {
        MAX_PAGE_SIZE
    } else {
        page.page_size
    };
    let mut collected = fetch(page_size, String::new()).await?;
    while let Some(token) = collected.next_page_token.take() {
        let next = fetch(page_size, token.clone()).await?;
        if next.next_page_token.as_deref() == Some(token.as_str()) || next.items.is_empty() {
            break;
        }
        collected.items.extend(next.items);
        collected.next_page_token = next.next_page_token;
        collected.total_size = next.total_size;
    }
    Ok(collected)
}

/// The contents of a TLS file named on the command line or in the configuration.
fn read(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|error| CliError::Usage(format!("cannot read {}: {error}", path.display())))
}
