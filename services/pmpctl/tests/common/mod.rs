//! The test platform for the CLI: the platform harness's in-process services
//! (`pmp_e2e::inprocess`) on SQLite, and a runner for the built `pmpctl` binary with its
//! own configuration directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use pmp_e2e::inprocess::{InProcessPlatform, Options};

pub use partner_registry::testing::TEST_ADMIN_PASSWORD;
#[allow(unused_imports)]
pub use pmp_common::testing::eventually;

/// Nothing listens here.
pub const UNREACHABLE: &str = "http://127.0.0.1:9";
/// Password of every test partner.
pub const PARTNER_PASSWORD: &str = "partner-password";

/// Running services and the addresses pmpctl is given.
pub struct Platform {
    pub registry_address: String,
    pub store_address: String,
    /// `None`: pmpctl is pointed at an address where nothing listens.
    pub ftm_address: Option<String>,
    services: InProcessPlatform,
}

impl std::ops::Deref for Platform {
    type Target = InProcessPlatform;

    fn deref(&self) -> &InProcessPlatform {
        &self.services
    }
}

impl Platform {
    /// The platform, with pmpctl's FTM address pointing nowhere (registry and store tests).
    pub async fn start() -> Platform {
        let services = InProcessPlatform::start(Options::on("sqlite"))
            .await
            .expect("platform");
        Platform {
            registry_address: services.registry.address.clone(),
            store_address: services.store_address.clone(),
            ftm_address: None,
            services,
        }
    }

    /// The platform with the certificate store's settings changed by `adjust` (e.g. a
    /// platform PKI whose root key the test keeps).
    pub async fn start_with_store(adjust: pmp_e2e::inprocess::StoreAdjust) -> Platform {
        let services = InProcessPlatform::start(Options {
            store_adjust: Some(adjust),
            ..Options::on("sqlite")
        })
        .await
        .expect("platform");
        Platform {
            registry_address: services.registry.address.clone(),
            store_address: services.store_address.clone(),
            ftm_address: None,
            services,
        }
    }

    /// The platform, FTM management included.
    pub async fn start_with_ftm() -> Platform {
        let mut platform = Platform::start().await;
        platform.ftm_address = Some(platform.services.ftm.address.clone());
        platform
    }

    /// A pmpctl user with an empty configuration directory, pointed at this platform.
    pub fn user(&self) -> User {
        User {
            config_home: tempfile::tempdir().expect("config home"),
            registry: self.registry_address.clone(),
            store: self.store_address.clone(),
            ftm: self
                .ftm_address
                .clone()
                .unwrap_or_else(|| UNREACHABLE.to_owned()),
        }
    }
}

/// One person at a terminal: their own `XDG_CONFIG_HOME` (so their own saved token).
pub struct User {
    pub config_home: tempfile::TempDir,
    registry: String,
    store: String,
    ftm: String,
}

/// What a pmpctl run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "pmpctl failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }

    /// Asserts the exit code and that stderr contains every one of `needles`.
    #[track_caller]
    pub fn fails_with(&self, code: i32, needles: &[&str]) {
        assert_eq!(
            self.code, code,
            "wrong exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                self.stderr
            );
        }
    }
}

impl User {
    /// pmpctl's directory of this user.
    pub fn config_directory(&self) -> PathBuf {
        self.config_home.path().join("pmpctl")
    }

    /// The saved token file.
    pub fn token_file(&self) -> PathBuf {
        self.config_directory().join("token")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pmpctl"));
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config_home.path())
            .env("HOME", self.config_home.path())
            .env("PMPCTL_REGISTRY", &self.registry)
            .env("PMPCTL_CERTSTORE", &self.store)
            .env("PMPCTL_FTM", &self.ftm)
            .env_remove("PMPCTL_TOKEN")
            .env_remove("PMPCTL_CONFIG")
            .env_remove("PMPCTL_TIMEOUT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `pmpctl args...` with nothing on stdin.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None).await
    }

    /// Runs `pmpctl args...` with extra environment and optional stdin.
    pub async fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("pmpctl starts");
        if let Some(input) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(input.as_bytes()).await.expect("stdin");
            drop(pipe);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("pmpctl finishes within a minute")
            .expect("pmpctl output");
        Run::from_output(output)
    }

    /// Registers `partner_id` (FTM_Provider of `org`) with [`PARTNER_PASSWORD`] from stdin.
    pub async fn register(&self, partner_id: &str, org: &str) -> Run {
        let email = format!("{partner_id}@acme.example");
        self.run_with(
            &[
                "register",
                "--partner-id",
                partner_id,
                "--password-stdin",
                "--first-name",
                "Ada",
                "--last-name",
                "Lovelace",
                "--organization",
                org,
                "--address",
                "1 Main Street",
                "--email",
                &email,
                "--phone",
                "+1 555 0100",
            ],
            &[],
            Some(&format!("{PARTNER_PASSWORD}\n")),
        )
        .await
    }

    /// Logs in and saves the token.
    pub async fn login(&self, username: &str, password: &str) -> Run {
        self.run_with(
            &["login", username, "--password-stdin"],
            &[],
            Some(&format!("{password}\n")),
        )
        .await
    }

    /// Registers and logs in a partner.
    pub async fn become_partner(&self, partner_id: &str, org: &str) {
        self.register(partner_id, org).await.ok();
        self.login(partner_id, PARTNER_PASSWORD).await.ok();
    }

    /// Logs in as the bootstrap admin.
    pub async fn become_admin(&self) {
        self.login("admin", TEST_ADMIN_PASSWORD).await.ok();
    }
}

/// Generates a dev PKI for `org` into `directory` with `pmpctl dev certs`.
pub async fn dev_certs(user: &User, org: &str, directory: &Path) -> Run {
    let out = directory.display().to_string();
    user.run(&["dev", "certs", "--org", org, "--out", &out])
        .await
}

/// `path` as a `&str` argument.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// File mode bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
