//! Harness for end-to-end tests, in two modes: [`inprocess`] runs the three services as
//! tasks of the test process; [`Platform`] starts the real `partner-registry`,
//! `certificate-store` and `ftm-management` binaries on free ports, each with its own
//! database (SQLite files or fresh PostgreSQL databases), configured only through
//! environment variables as an operator would, and stops them with SIGTERM.
//!
//! The binaries are taken from the cargo target directory next to the test executable;
//! `make test` builds them first (`cargo build --workspace --bins`).

pub mod inprocess;
pub mod otlp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pmp_common::auth::testing::ServiceKeyFiles;
use pmp_common::db::testing::TestDatabase;
use pmp_proto::service_names;

/// Password of the bootstrap admin of an end-to-end platform.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// One running service binary.
pub struct Process {
    pub name: &'static str,
    pub address: String,
    child: Child,
    log: PathBuf,
}

impl Process {
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
    _databases: Vec<TestDatabase>,
}

/// Where the service binaries are: `PMP_BIN_DIR`, else the target directory of this test.
pub fn binary_directory() -> anyhow::Result<PathBuf> {
    if let Ok(directory) = std::env::var("PMP_BIN_DIR") {
        return Ok(PathBuf::from(directory));
    }
    let executable = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>
    executable
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot locate the target directory from {}",
                executable.display()
            )
        })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(
    name: &'static str,
    port: u16,
    environment: &[(String, String)],
    directory: &Path,
) -> anyhow::Result<Process> {
    let binary = binary_directory()?.join(name);
    if !binary.exists() {
        anyhow::bail!(
            "{} is missing: run `cargo build --workspace --bins` first",
            binary.display()
        );
    }
    let log = directory.join(format!("{name}.log"));
    let output = std::fs::File::create(&log)?;
    let child = Command::new(&binary)
        .envs(
            environment
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .env("RUST_LOG", "info")
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()?;
    Ok(Process {
        name,
        address: format!("http://127.0.0.1:{port}"),
        child,
        log,
    })
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
        let service_keys = ServiceKeyFiles::generate(&root.join("identities"))?;
        let identity = |service: &str| {
            vec![
                (
                    "SERVICE_IDENTITY__PRIVATE_KEY_FILE",
                    service_keys.private_key_file(service).display().to_string(),
                ),
                ("SERVICE_IDENTITY__GENERATE_KEY", "false".to_owned()),
                (
                    "SERVICE_IDENTITY__PUBLIC_KEYS_DIR",
                    service_keys.public_keys_dir.display().to_string(),
                ),
            ]
        };
        let (registry_port, store_port, ftm_port) = (free_port()?, free_port()?, free_port()?);
        let registry_address = format!("http://127.0.0.1:{registry_port}");
        let store_address = format!("http://127.0.0.1:{store_port}");
        let registry_environment = env(
            "PMP_REGISTRY",
            &[
                ("SERVER__LISTEN", format!("127.0.0.1:{registry_port}")),
                ("METRICS__LISTEN", String::new()),
                ("DATABASE__URL", urls[0].clone()),
                (
                    "TOKENS__SIGNING_KEY_FILE",
                    root.join("registry-key.pem").display().to_string(),
                ),
                ("ADMIN__PASSWORD", ADMIN_PASSWORD.to_owned()),
                ("CERTIFICATE_STORE__ADDRESS", store_address.clone()),
            ],
            identity("partner-registry"),
        );
        let store_environment = env(
            "PMP_CERTSTORE",
            &[
                ("SERVER__LISTEN", format!("127.0.0.1:{store_port}")),
                ("METRICS__LISTEN", String::new()),
                ("DATABASE__URL", urls[1].clone()),
                ("USER_TOKENS__REGISTRY_ADDRESS", registry_address.clone()),
                (
                    "PLATFORM__ROOT_CERTIFICATE_FILE",
                    root.join("platform-root.pem").display().to_string(),
                ),
                (
                    "PLATFORM__SIGNING_CERTIFICATE_FILE",
                    root.join("platform-signing.pem").display().to_string(),
                ),
                (
                    "PLATFORM__SIGNING_KEY_FILE",
                    root.join("platform-signing-key.pem").display().to_string(),
                ),
            ],
            identity("certificate-store"),
        );
        let ftm_environment = env(
            "PMP_FTM",
            &[
                ("SERVER__LISTEN", format!("127.0.0.1:{ftm_port}")),
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
        let registry = spawn(
            "partner-registry",
            registry_port,
            &with_extra(registry_environment),
            root,
        )?;
        let certstore = spawn(
            "certificate-store",
            store_port,
            &with_extra(store_environment),
            root,
        )?;
        let ftm = spawn(
            "ftm-management",
            ftm_port,
            &with_extra(ftm_environment),
            root,
        )?;
        let platform = Platform {
            registry,
            certstore,
            ftm,
            directory,
            _databases: databases,
        };
        platform.wait_until_serving().await?;
        Ok(platform)
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(60);
        for (process, service) in [
            (&self.registry, service_names::PARTNER_REGISTRY),
            (&self.certstore, service_names::CERTIFICATE_STORE),
            (&self.ftm, service_names::FTM_MANAGEMENT),
        ] {
            if let Err(error) =
                pmp_common::testing::wait_until_serving(&process.address, service, timeout).await
            {
                anyhow::bail!("{error}\n--- {} log ---\n{}", process.name, process.log());
            }
        }
        Ok(())
    }

    /// A gRPC channel to `address`.
    pub async fn channel(address: &str) -> anyhow::Result<tonic::transport::Channel> {
        Ok(tonic::transport::Channel::from_shared(address.to_owned())?
            .connect()
            .await?)
    }
}
