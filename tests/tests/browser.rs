//! The portal in real Chromium: the three service binaries and the `portal` binary, started
//! as an operator would, driven by `tests/browser/workflow.mjs` (Playwright and axe-core,
//! pinned by `tests/browser/package-lock.json`) through the whole FTM workflow of a partner
//! and the partner administrator, keyboard only, in French and Arabic, at phone width, with
//! axe-core on every page. Screenshots go to `target/portal-screenshots/`.
//!
//! Needs Node.js (20 or later) and Chromium (`/usr/bin/chromium`, or `CHROMIUM`); installs
//! the pinned npm packages with `npm ci` when `tests/browser/node_modules` is missing.
//! `PMP_SKIP_BROWSER_TESTS=1` skips the test on a machine without them; otherwise a missing
//! tool fails it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pmp_dev_certs::{CertificateSpec, DevPki};
use pmp_e2e::{ADMIN_PASSWORD, Platform};

/// The organisation the partner registers and its certificates carry.
const ORG: &str = "ACME Chips";

/// Longest the browser run may take (it takes well under a minute).
const BROWSER_RUN_LIMIT: Duration = Duration::from_secs(300);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace")
        .to_path_buf()
}

/// `target/portal-screenshots` of the target directory this test was built into.
fn screenshot_directory() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|executable| executable.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("portal-screenshots")
}

/// Runs `program arguments` and returns its output, or explains why it could not start.
fn run(program: &str, arguments: &[&str]) -> Result<std::process::Output, String> {
    std::process::Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("cannot run `{program}`: {error}"))
}

/// Node.js, Chromium and the pinned npm packages, or why they are missing.
fn browser_tools(browser_directory: &Path) -> Result<String, String> {
    let node = run("node", &["--version"]).map_err(|error| {
        format!("{error}; install Node.js 20 or later (or set PMP_SKIP_BROWSER_TESTS=1)")
    })?;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "Chromium is not at {chromium}: `apt-get install chromium`, or set CHROMIUM to a \
             Chromium binary (or PMP_SKIP_BROWSER_TESTS=1 to skip the browser tests)"
        ));
    }
    if !browser_directory.join("node_modules").exists() {
        let directory = browser_directory.display().to_string();
        let installed = run(
            "npm",
            &["ci", "--no-audit", "--no-fund", "--prefix", &directory],
        )
        .map_err(|error| format!("{error}; install npm (it comes with Node.js)"))?;
        if !installed.status.success() {
            return Err(format!(
                "`npm ci --prefix {directory}` failed:\n{}{}",
                String::from_utf8_lossy(&installed.stdout),
                String::from_utf8_lossy(&installed.stderr)
            ));
        }
    }
    Ok(format!(
        "node {}, {chromium}",
        String::from_utf8_lossy(&node.stdout).trim()
    ))
}

#[tokio::test]
async fn the_portal_workflow_in_chromium() {
    if std::env::var("PMP_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: PMP_SKIP_BROWSER_TESTS=1 (the portal's browser tests did not run)");
        return;
    }
    let browser_directory = workspace_root().join("tests").join("browser");
    let tools = browser_tools(&browser_directory).unwrap_or_else(|error| panic!("{error}"));

    let mut platform = Platform::start("sqlite").await.expect("platform");
    let mut portal = platform.start_portal().await.expect("portal");

    // The certificates of the partner's organisation, as files the browser picks.
    let pki = DevPki::generate(ORG).expect("PKI");
    let second_chip = CertificateSpec::ftm_chip(&format!("{ORG} FTM Chip 2"), ORG)
        .issued_by(&pki.intermediate)
        .expect("second chip certificate");
    let inputs = platform.directory.path().join("browser-inputs");
    std::fs::create_dir_all(&inputs).expect("inputs directory");
    let write = |name: &str, bytes: &[u8]| {
        let file = inputs.join(name);
        std::fs::write(&file, bytes).expect("input file");
        file.display().to_string()
    };
    let ca_bundle = write(
        "ftm-ca-bundle.pem",
        pki.ca_bundle_pem().expect("pem").as_bytes(),
    );
    let partner_der = write("partner.der", &pki.partner.der().expect("der"));
    let chip = write("chip.pem", pki.ftm_chip.pem().expect("pem").as_bytes());
    let chip2 = write("chip-2.pem", second_chip.pem().expect("pem").as_bytes());
    let screenshots = screenshot_directory();

    let started = Instant::now();
    let script = browser_directory.join("workflow.mjs");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .current_dir(&browser_directory)
        .env("PORTAL_URL", &portal.address)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ORG", ORG)
        .env("CA_BUNDLE_FILE", &ca_bundle)
        .env("PARTNER_CERT_DER_FILE", &partner_der)
        .env("CHIP_CERT_PEM_FILE", &chip)
        .env("CHIP2_CERT_PEM_FILE", &chip2)
        .env("SCREENSHOT_DIR", &screenshots)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {BROWSER_RUN_LIMIT:?}",
                script.display()
            )
        })
        .expect("node runs the browser workflow");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let took = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "the browser workflow failed ({}) after {took:.1} s ({tools}); screenshots in {}\n\
         --- workflow.mjs ---\n{stdout}{stderr}\n--- portal log ---\n{}",
        output.status,
        screenshots.display(),
        portal.log()
    );
    println!(
        "{tools}; browser workflow took {took:.1} s; screenshots in {}\n{stdout}{stderr}",
        screenshots.display()
    );

    let status = portal.terminate().await.expect("the portal stops");
    assert!(status.success(), "portal exit status {status}");
    for process in [
        &mut platform.registry,
        &mut platform.certstore,
        &mut platform.ftm,
    ] {
        process.terminate().await.expect("the service stops");
    }
}
