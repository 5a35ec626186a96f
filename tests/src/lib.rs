//! Harness for end-to-end tests, in two modes: [`inprocess`] runs the three services as
//! tasks of the test process; [`Platform`] starts the real `partner-registry`,
//! `certificate-store` and `ftm-management` binaries on free ports, each with its own
//! database (SQLite files or fresh PostgreSQL databases), configured only through
//! environment variables as an operator would, and stops them with SIGTERM.
//!
//! [`Platform::start_portal`] adds the `portal` web server in front of a running platform
//! (the browser tests drive it in Chromium).
//!
//! The binaries are built from the current sources into the cargo target directory next
//! to the test executable on first use (see [`binary_directory`]).

pub mod inprocess;
mod keys;
pub mod otlp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;

use pmp_common::signing::HsmSettings;

use crate::keys::Keys;
use pmp_common::db::testing::TestDatabase;
pub use pmp_dev_certs::tls::TlsFiles;
use pmp_proto::service_names;

/// Password of the bootstrap admin of an end-to-end platform.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// One running service binary.
pub struct Process {
    pub name: &'static str,
    /// `http://127.0.0.1:<port>`, or `https://…` when the platform runs TLS.
    pub address: String,
    /// How the harness itself connects when the platform runs TLS.
    client_tls: Option<ClientTlsConfig>,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Sends SIGTERM without waiting: the process's shutdown runs while the caller watches.
    pub fn send_sigterm(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        Ok(())
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns its exit status.
    /// Waiting is async so that this process's own client connections keep answering the
    /// server's graceful-shutdown handshake (HTTP/2 GOAWAY and PING).
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        anyhow::bail!("{} did not stop within 10 s of SIGTERM", self.name)
    }

    /// The process's exit status if it exits within `patience` (a start-up refusal).
    pub async fn exit_within(
        &mut self,
        patience: Duration,
    ) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(None)
    }

    /// Kills the process (SIGKILL) and reaps it: a crash, or a node lost.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// A channel to the service (over TLS with the harness's own client certificate when
    /// the platform runs TLS).
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let mut endpoint = Endpoint::from_shared(self.address.clone())?;
        if let Some(tls) = &self.client_tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        Ok(endpoint.connect().await?)
    }

    /// Waits (up to a minute) until the process reports its own service SERVING.
    pub async fn wait_serving(&self) -> anyhow::Result<()> {
        if self.serves(grpc_service_name(self.name)?).await {
            Ok(())
        } else {
            anyhow::bail!(
                "{} did not become SERVING within a minute\n--- log ---\n{}",
                self.name,
                self.log()
            )
        }
    }

    /// Whether `service` turns SERVING within a minute.
    async fn serves(&self, service: &str) -> bool {
        for _ in 0..1200 {
            if let Ok(channel) = self.channel().await
                && let Ok(ServingStatus::Serving) =
                    pmp_common::testing::health_status(channel, service).await
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The operating system's id of the process (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The three services, running.
pub struct Platform {
    pub registry: Process,
    pub certstore: Process,
    pub ftm: Process,
    pub directory: tempfile::TempDir,
    /// The databases of the registry, the store and FTM management, in that order (load
    /// tests seed them directly).
    pub database_urls: [String; 3],
    /// The environment each service was started with, by binary name (for replicas).
    environments: Vec<(&'static str, Vec<(String, String)>)>,
    client_tls: Option<ClientTlsConfig>,
    _databases: Vec<TestDatabase>,
}

/// The gRPC service a binary serves, by the binary's name.
fn grpc_service_name(binary: &str) -> anyhow::Result<&'static str> {
    match binary {
        "partner-registry" => Ok(service_names::PARTNER_REGISTRY),
        "certificate-store" => Ok(service_names::CERTIFICATE_STORE),
        "ftm-management" => Ok(service_names::FTM_MANAGEMENT),
        other => anyhow::bail!("{other} is not one of the platform's services"),
    }
}

/// Where the service binaries are: `PMP_BIN_DIR` (binaries the caller built, e.g. a
/// release to test), else the target directory of this test, where the first call builds
/// them from the current sources (`cargo test --workspace --no-run`, which builds the
/// binaries exactly as `cargo test --workspace` does, so nothing is built twice with
/// different features; a release build for benchmarks), so a test never runs binaries
/// older than the code it tests.
pub fn binary_directory() -> anyhow::Result<PathBuf> {
    if let Ok(directory) = std::env::var("PMP_BIN_DIR") {
        return Ok(PathBuf::from(directory));
    }
    let executable = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>
    let directory = executable
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot locate the target directory from {}",
                executable.display()
            )
        })?;
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_binaries(&directory))
        .clone()
        .map_err(anyhow::Error::msg)?;
    Ok(directory)
}

fn build_binaries(directory: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    // Benchmarks run in release: they measure the binaries as shipped.
    let arguments: &[&str] = if directory.file_name().is_some_and(|name| name == "release") {
        &["build", "--release", "--workspace", "--bins", "--quiet"]
    } else {
        &["test", "--workspace", "--no-run", "--quiet"]
    };
    command
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The target directory is this test's own: CARGO_TARGET_DIR (inherited) or the
    // workspace default. Setting it here would change cargo's fingerprints and rebuild.
    // What cargo sets for the test process itself (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, …)
    // is not inherited: build scripts that read such variables (ring's) would see them
    // change between this build and one from a shell, and every crate above them would be
    // rebuilt each time (about a minute).
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_tests) {
            command.env_remove(&name);
        }
    }
    let output = command
        .output()
        .map_err(|error| format!("cannot run cargo to build the service binaries: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the service binaries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Whether cargo sets environment variable `name` for the test (or binary) it runs, as
/// opposed to configuration (CARGO_HOME, CARGO_TARGET_DIR, CARGO_PROFILE_…) a build must see.
fn set_by_cargo_for_tests(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    NAMES.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// A listening socket on a free port, handed to the service it is for (so no other
/// process can take the port in between), and its port.
fn listener() -> anyhow::Result<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

fn spawn(
    name: &'static str,
    (listener, port): (std::net::TcpListener, u16),
    environment: &[(String, String)],
    directory: &Path,
    client_tls: Option<ClientTlsConfig>,
) -> anyhow::Result<Process> {
    let binary = binary_directory()?.join(name);
    if !binary.exists() {
        anyhow::bail!(
            "{} is missing: run `cargo build --workspace --bins` first",
            binary.display()
        );
    }
    let log = directory.join(format!("{name}-{port}.log"));
    let output = std::fs::File::create(&log)?;
    let child = Command::new(&binary)
        .arg("--listener-on-stdin")
        .env("RUST_LOG", "info")
        .envs(
            environment
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .current_dir(directory)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()?;
    let scheme = if client_tls.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(Process {
        name,
        address: format!("{scheme}://127.0.0.1:{port}"),
        client_tls,
        child,
        log,
    })
}

/// The harness's certificate, issued by `tls`'s CA: a client of the platform that is not
/// one of its services.
pub const HARNESS_CERTIFICATE: &str = "harness";

fn harness_tls(tls: &TlsFiles) -> anyhow::Result<ClientTlsConfig> {
    tls.issue(HARNESS_CERTIFICATE, &["URI:spiffe://pmp/e2e-harness"])?;
    client_tls(tls, HARNESS_CERTIFICATE)
}

/// A client TLS configuration trusting `tls`'s CA and presenting its certificate `name`.
pub fn client_tls(tls: &TlsFiles, name: &str) -> anyhow::Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(tls.ca_file())?))
        .identity(Identity::from_pem(
            std::fs::read(tls.certificate_file(name))?,
            std::fs::read(tls.key_file(name))?,
        )))
}

/// The TLS settings of `service`: its own certificate, the CA, client certificates required.
fn tls_environment(tls: &TlsFiles, service: &str) -> Vec<(&'static str, String)> {
    let path = |path: PathBuf| path.display().to_string();
    vec![
        ("TLS__CERTIFICATE_FILE", path(tls.certificate_file(service))),
        ("TLS__KEY_FILE", path(tls.key_file(service))),
        ("TLS__CA_FILE", path(tls.ca_file())),
        ("TLS__CLIENT_AUTH", "required".to_owned()),
    ]
}

fn env(
    prefix: &str,
    pairs: &[(&str, String)],
    identity: Vec<(&str, String)>,
) -> Vec<(String, String)> {
    pairs
        .iter()
        .chain(&identity)
        .map(|(key, value)| (format!("{prefix}__{key}"), value.clone()))
        .collect()
}

impl Platform {
    /// Starts the three services on `backend` ("sqlite" or "postgres") and waits until all
    /// report SERVING.
    pub async fn start(backend: &str) -> anyhow::Result<Platform> {
        Self::start_with(backend, &[]).await
    }

    /// [`Platform::start`] with extra environment for every service (e.g. the OTLP endpoint).
    pub async fn start_with(backend: &str, extra: &[(&str, &str)]) -> anyhow::Result<Platform> {
        Self::launch(backend, extra, None, None).await
    }

    /// [`Platform::start`] with every private key in the PKCS#11 token of `hsm`: generated
    /// there by the harness (the key ceremony: each service's identity key, the registry's
    /// token key, the platform signing key, RSA-3072, whose certificate a fresh platform
    /// root issues and whose root key is discarded). Only public keys and certificates are
    /// written to the platform's directory.
    pub async fn start_hsm(backend: &str, hsm: &HsmSettings) -> anyhow::Result<Platform> {
        Self::launch(backend, &[], None, Some(hsm)).await
    }

    /// [`Platform::start`] with every listener and every call between the services on
    /// mutual TLS (client certificates required), from certificates of `tls` named after
    /// each service (see [`TlsFiles::generate`]); the harness connects with `tls`'s
    /// certificate `harness`, which names no service.
    pub async fn start_tls(backend: &str, tls: &TlsFiles) -> anyhow::Result<Platform> {
        Self::launch(backend, &[], Some(tls), None).await
    }

    async fn launch(
        backend: &str,
        extra: &[(&str, &str)],
        tls: Option<&TlsFiles>,
        hsm: Option<&HsmSettings>,
    ) -> anyhow::Result<Platform> {
        let directory = tempfile::tempdir()?;
        let root = directory.path();
        let mut databases = Vec::new();
        let mut urls = Vec::new();
        for name in ["registry", "certstore", "ftm"] {
            if backend == "postgres" {
                let database = TestDatabase::postgres().await?;
                urls.push(database.settings.url.clone());
                databases.push(database);
            } else {
                urls.push(format!("sqlite://{}/{name}.db", root.display()));
            }
        }
        let keys = match hsm {
            None => Keys::files(root)?,
            Some(hsm) => Keys::in_hsm(root, hsm)?,
        };
        let identity = |service: &str| keys.identity(service);
        let (registry_listener, store_listener, ftm_listener) =
            (listener()?, listener()?, listener()?);
        let (registry_port, store_port) = (registry_listener.1, store_listener.1);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let registry_address = format!("{scheme}://127.0.0.1:{registry_port}");
        let store_address = format!("{scheme}://127.0.0.1:{store_port}");
        let identity = |service: &str| {
            let mut identity = identity(service);
            if let Some(tls) = tls {
                identity.extend(tls_environment(tls, service));
            }
            identity
        };
        let registry_environment = env(
            "PMP_REGISTRY",
            &[
                ("METRICS__LISTEN", String::new()),
                ("DATABASE__URL", urls[0].clone()),
                ("ADMIN__PASSWORD", ADMIN_PASSWORD.to_owned()),
                ("CERTIFICATE_STORE__ADDRESS", store_address.clone()),
            ],
            identity("partner-registry")
                .into_iter()
                .chain(keys.token_key())
                .collect(),
        );
        let store_environment = env(
            "PMP_CERTSTORE",
            &[
                ("METRICS__LISTEN", String::new()),
                ("DATABASE__URL", urls[1].clone()),
                ("USER_TOKENS__REGISTRY_ADDRESS", registry_address.clone()),
                ("PLATFORM__GENERATE", "false".to_owned()),
            ],
            identity("certificate-store")
                .into_iter()
                .chain(keys.platform_key()?)
                .collect(),
        );
        let ftm_environment = env(
            "PMP_FTM",
            &[
                ("METRICS__LISTEN", String::new()),
                ("DATABASE__URL", urls[2].clone()),
                ("USER_TOKENS__REGISTRY_ADDRESS", registry_address.clone()),
                ("REGISTRY__ADDRESS", registry_address.clone()),
                ("CERTIFICATE_STORE__ADDRESS", store_address.clone()),
            ],
            identity("ftm-management"),
        );
        let with_extra = |mut environment: Vec<(String, String)>| {
            environment.extend(
                extra
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.to_string())),
            );
            environment
        };
        let client_tls = tls.map(harness_tls).transpose()?;
        let environments = vec![
            ("partner-registry", with_extra(registry_environment)),
            ("certificate-store", with_extra(store_environment)),
            ("ftm-management", with_extra(ftm_environment)),
        ];
        let spawn = |index: usize, listener| {
            let (name, environment) = &environments[index];
            spawn(name, listener, environment, root, client_tls.clone())
        };
        let registry = spawn(0, registry_listener)?;
        let certstore = spawn(1, store_listener)?;
        let ftm = spawn(2, ftm_listener)?;
        let platform = Platform {
            registry,
            certstore,
            ftm,
            directory,
            database_urls: [urls[0].clone(), urls[1].clone(), urls[2].clone()],
            environments,
            client_tls,
            _databases: databases,
        };
        platform.wait_until_serving().await?;
        Ok(platform)
    }

    /// Kills the certificate store with SIGKILL (a crash: nothing is flushed or drained) and
    /// starts it again on the same address and database; waits until it serves. Its clients
    /// reconnect to the same address, as they would to a restarted pod behind a Service.
    pub async fn crash_and_restart_certstore(&mut self) -> anyhow::Result<()> {
        self.certstore.kill()?;
        let port: u16 = self
            .certstore
            .address
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no port in {}", self.certstore.address))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        let environment = self.environment_of("certificate-store", &[])?;
        self.certstore = spawn(
            "certificate-store",
            (listener, port),
            &environment,
            self.directory.path(),
            self.client_tls.clone(),
        )?;
        self.certstore.wait_serving().await
    }

    /// Starts another process of service `name` (`partner-registry`, `certificate-store`,
    /// `ftm-management`) on a port of its own, with the environment the platform's process
    /// got plus `overrides` (full variable names): a replica. Does not wait for it to
    /// serve (see [`Process::wait_serving`]), so several can start at the same moment.
    pub fn spawn_replica(
        &self,
        name: &'static str,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<Process> {
        let environment = self.environment_of(name, overrides)?;
        spawn(
            name,
            listener()?,
            &environment,
            self.directory.path(),
            self.client_tls.clone(),
        )
    }

    /// Runs `name <arguments>` (e.g. `migrate`) to completion with the service's
    /// environment plus `overrides`; returns its exit status and combined output.
    pub fn run_command(
        &self,
        name: &'static str,
        arguments: &[&str],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let output = Command::new(binary_directory()?.join(name))
            .args(arguments)
            .env("RUST_LOG", "info")
            .envs(self.environment_of(name, overrides)?)
            .current_dir(self.directory.path())
            .stdin(Stdio::null())
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status, text))
    }

    fn environment_of(
        &self,
        name: &str,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let (_, environment) = self
            .environments
            .iter()
            .find(|(binary, _)| *binary == name)
            .ok_or_else(|| anyhow::anyhow!("{name} is not one of the platform's services"))?;
        let mut environment = environment.clone();
        environment.extend(
            overrides
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string())),
        );
        Ok(environment)
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        for process in [&self.registry, &self.certstore, &self.ftm] {
            process.wait_serving().await?;
        }
        Ok(())
    }

    /// Starts the `portal` binary in front of the three services, as an operator would:
    /// configured only through `PMP_PORTAL__…` environment variables (the services'
    /// addresses, a session key generated into the platform's directory), on a listener the
    /// harness binds and hands over like the services'. Returns once the portal answers
    /// `GET /healthz`; its [`Process::address`] is `http://127.0.0.1:<port>`, and
    /// [`Process::terminate`] stops it. Plain HTTP towards the services only: a platform
    /// started with [`Platform::start_tls`] is refused.
    pub async fn start_portal(&self) -> anyhow::Result<Process> {
        if self.registry.client_tls.is_some() {
            anyhow::bail!("the harness starts the portal in front of a plain-HTTP platform only");
        }
        let root = self.directory.path();
        let environment: Vec<(String, String)> = [
            ("SERVICES__REGISTRY", self.registry.address.clone()),
            (
                "SERVICES__CERTIFICATE_STORE",
                self.certstore.address.clone(),
            ),
            ("SERVICES__FTM_MANAGEMENT", self.ftm.address.clone()),
            (
                "SESSION__KEY_FILE",
                root.join("portal-session-key.hex").display().to_string(),
            ),
            ("SESSION__GENERATE_KEY", "true".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (format!("PMP_PORTAL__{key}"), value))
        .collect();
        let portal = spawn("portal", listener()?, &environment, root, None)?;
        if let Err(error) = portal_health(&portal.address).await {
            anyhow::bail!(
                "the portal did not answer GET /healthz: {error:#}\n--- log ---\n{}",
                portal.log()
            );
        }
        Ok(portal)
    }

    /// A gRPC channel to `address`.
    pub async fn channel(address: &str) -> anyhow::Result<tonic::transport::Channel> {
        Ok(tonic::transport::Channel::from_shared(address.to_owned())?
            .connect()
            .await?)
    }
}

/// `GET /healthz` of the portal at `address` (`http://host:port`), answered `200 ok` within
/// a minute. One request, no polling: the harness bound the listener before the portal
/// started, so the connection waits in its backlog until the portal accepts it, and fails
/// at once if the portal exits (its listener closes with it).
async fn portal_health(address: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = address
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{address} is not an http:// address"))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within a minute"))??;
    if answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok") {
        Ok(())
    } else {
        anyhow::bail!("unexpected answer: {answer}")
    }
}
