//! `pmpctl dev certs`: a throw-away PKI for demos and local testing, so that nobody needs
//! OpenSSL recipes (or checked-in keys) to walk through the workflow.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use pmp_dev_certs::DevPki;

use super::Context;
use crate::cli::DevCommand;
use crate::failure::CliError;
use crate::output::{Outcome, Table};

/// The warning printed with every generated PKI.
const DEVELOPMENT_ONLY: &str = "FOR DEVELOPMENT ONLY: these keys are unencrypted and \
generated on this machine; never use them in production.";

/// Runs one `dev` subcommand.
pub fn run(_context: &Context, command: DevCommand) -> Result<Outcome, CliError> {
    match command {
        DevCommand::Certs { org, out, force } => certs(&org, &out, force),
    }
}

/// One file to write; keys are private to the user.
struct OutputFile {
    name: &'static str,
    contents: String,
    private: bool,
}

/// JSON of `dev certs`.
#[derive(Debug, Serialize)]
struct DevCertsView {
    organization: String,
    directory: String,
    /// File name (e.g. "partner.pem") to its path.
    files: std::collections::BTreeMap<&'static str, String>,
    development_only: bool,
}

fn certs(org: &str, out: &Path, force: bool) -> Result<Outcome, CliError> {
    if org.trim().is_empty() {
        return Err(CliError::Usage("--org must not be blank".to_owned()));
    }
    let pki = DevPki::generate(org).context("cannot generate the certificates")?;
    let files = pki_files(&pki).context("cannot encode the certificates")?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if !force {
        refuse_overwrite(out, &files)?;
    }
    let mut written = std::collections::BTreeMap::new();
    for file in &files {
        let path = out.join(file.name);
        write_file(&path, &file.contents, file.private)?;
        written.insert(file.name, path.display().to_string());
    }
    eprintln!("pmpctl: {DEVELOPMENT_ONLY}");
    let view = DevCertsView {
        organization: org.to_owned(),
        directory: out.display().to_string(),
        files: written,
        development_only: true,
    };
    let text = certs_text(&view);
    Outcome::new(&view, text, vec![view.directory.clone()])
}

fn pki_files(pki: &DevPki) -> pmp_dev_certs::Result<Vec<OutputFile>> {
    let public = |name, contents| OutputFile {
        name,
        contents,
        private: false,
    };
    let private = |name, contents| OutputFile {
        name,
        contents,
        private: true,
    };
    Ok(vec![
        public("root.pem", pki.root.pem()?),
        public("intermediate.pem", pki.intermediate.pem()?),
        public("ca-bundle.pem", pki.ca_bundle_pem()?),
        public("partner.pem", pki.partner.pem()?),
        private("partner-key.pem", pki.partner.key_pem()?),
        public("ftm-chip.pem", pki.ftm_chip.pem()?),
        private("ftm-chip-key.pem", pki.ftm_chip.key_pem()?),
    ])
}

fn refuse_overwrite(out: &Path, files: &[OutputFile]) -> Result<(), CliError> {
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|file| out.join(file.name))
        .filter(|path| path.exists())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "{} already exists (use --force to overwrite)",
        existing
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Writes `contents`; private files are created 0600 (and reset to 0600 if they existed).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn certs_text(view: &DevCertsView) -> String {
    let mut table = Table::with_header(&["FILE", "PATH"]);
    for (name, path) in &view.files {
        table.push(vec![(*name).to_owned(), path.clone()]);
    }
    format!(
        "Development PKI for organisation {:?}\n{}\n{DEVELOPMENT_ONLY}\n\
         Upload ca-bundle.pem as admin (`pmpctl ca upload`), then partner.pem \
         (`pmpctl partner cert upload`) and ftm-chip.pem (`pmpctl ftm cert upload`).\n",
        view.organization,
        table.render()
    )
}
