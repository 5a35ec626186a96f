//! The command tree, in the order of the FTM onboarding workflow: register and log in, let
//! the admin load the trust store, upload the partner certificate, then create, certify and
//! review FTMs, and verify chip certificates.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::OutputFormat;

/// Shown by `pmpctl --help`: where addresses and the token come from, and the exit codes
/// scripts can rely on.
const AFTER_LONG_HELP: &str = "\
Addresses: --registry/--certstore/--ftm, else PMPCTL_REGISTRY/PMPCTL_CERTSTORE/PMPCTL_FTM,
else the keys registry/certstore/ftm of $XDG_CONFIG_HOME/pmpctl/config.toml (or
~/.config/pmpctl/config.toml, or --config FILE), else http://127.0.0.1:50051/50052/50053.

TLS: https:// addresses are verified with --ca-file (or PMPCTL_CA_FILE, or the key ca_file
of config.toml); --cert-file and --key-file (cert_file, key_file) add a client certificate
for services that require mutual TLS.

Token: --token or PMPCTL_TOKEN, else the file `token` next to config.toml, written by
`pmpctl login` (mode 0600) and removed by `pmpctl logout`.

Exit codes:
  0  success (also `verify` of an untrusted certificate: the answer is in the output)
  1  any other failure (internal server error, local I/O error, unexpected answer)
  2  usage error: bad arguments, unreadable configuration, missing password or id
  3  authentication/authorization: UNAUTHENTICATED (KER-ATH-401), PERMISSION_DENIED (KER-ATH-403)
  4  not found: NOT_FOUND (e.g. PMS_PRT_005, KER-PCM-012, PMP_AUT_031)
  5  invalid input: INVALID_ARGUMENT, OUT_OF_RANGE (e.g. PMS_COR_001, KER-PCM-004)
  6  conflict/precondition: ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED (e.g. PMS_PRT_051,
     KER-PCM-006); also `ca upload` when the store kept none of the certificates
  7  unavailable: UNAVAILABLE, DEADLINE_EXCEEDED (service down, unreachable or too slow)

Errors are printed on stderr as `error: <GRPC_CODE> <REASON>: <message>`, e.g.
  error: ALREADY_EXISTS PMS_PRT_051: a partner is already registered with this id";

/// pmpctl: command-line client of the FTM partner management platform.
#[derive(Debug, Parser)]
#[command(
    name = "pmpctl",
    version,
    about = "Command-line client of the FTM partner management platform",
    long_about = "Command-line client of the FTM partner management platform (MOSIP Partner \
Management for Foundational Trust Providers): register and log in, load the CA trust store, \
upload partner certificates, create, certify and review FTMs, and verify chip certificates.\n\n\
Output is an aligned table by default; --output json prints a stable JSON document for \
scripts and --quiet only the id of what the command created or acted on.",
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalOptions {
    /// Partner registry address.
    #[arg(long, global = true, env = "PMPCTL_REGISTRY", value_name = "URL")]
    pub registry: Option<String>,
    /// Certificate store address.
    #[arg(long, global = true, env = "PMPCTL_CERTSTORE", value_name = "URL")]
    pub certstore: Option<String>,
    /// FTM management address.
    #[arg(long, global = true, env = "PMPCTL_FTM", value_name = "URL")]
    pub ftm: Option<String>,
    /// CA certificate (PEM) that verifies the services on https:// addresses.
    #[arg(long, global = true, env = "PMPCTL_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for services that require mutual TLS.
    #[arg(
        long,
        global = true,
        env = "PMPCTL_CERT_FILE",
        value_name = "FILE",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(
        long,
        global = true,
        env = "PMPCTL_KEY_FILE",
        value_name = "FILE",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
    /// Configuration file (default: $XDG_CONFIG_HOME/pmpctl/config.toml).
    #[arg(long, global = true, env = "PMPCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Access token to use instead of the one saved by `pmpctl login`.
    #[arg(
        long,
        global = true,
        env = "PMPCTL_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,
    /// Output format.
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,
    /// Print only the id of what the command created or acted on (one per line).
    #[arg(long, short = 'q', global = true, conflicts_with = "output")]
    pub quiet: bool,
    /// Deadline of each call, in seconds.
    #[arg(
        long,
        global = true,
        env = "PMPCTL_TIMEOUT",
        default_value_t = 10,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub timeout: u64,
    /// Print the trace id, outcome and duration of each call on stderr.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a new partner (no login needed); the partner starts IN_PROGRESS.
    Register(RegisterArgs),
    /// Log in and save the access token for the next commands.
    Login(LoginArgs),
    /// Delete the saved access token.
    Logout,
    /// Show who the current token belongs to (decoded locally, not verified).
    Whoami,
    /// CA certificates of the trust store (admin).
    #[command(subcommand)]
    Ca(CaCommand),
    /// Partner records and partner certificates.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// FTMs (secure chips) and their review.
    #[command(subcommand)]
    Ftm(FtmCommand),
    /// Platform signing keys: list them, and rotate (add, then activate) (admin).
    #[command(subcommand)]
    PlatformKey(PlatformKeyCommand),
    /// The registry's token signing keys: list them, and rotate (add, then activate) (admin).
    #[command(subcommand)]
    TokenKey(TokenKeyCommand),
    /// Check whether a certificate (or PEM chain, leaf first) is trusted in a domain now.
    Verify(VerifyArgs),
    /// Revoke a CA or partner/FTM certificate for good (admin).
    Revoke(RevokeArgs),
    /// Certificate revocation lists of the platform-signed copies.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Certificates that expire soon, soonest first (admin).
    Expiring(ExpiringArgs),
    /// Show the public keys, issuer and audience of the registry's access tokens.
    TokenKeys,
    /// Development helpers (never for production).
    #[command(subcommand)]
    Dev(DevCommand),
    /// gRPC health of the three services; exit 7 unless all are SERVING.
    Health(HealthArgs),
    /// Follow a change feed live, one line each (admin): partners, FTMs, or the trust store.
    #[command(subcommand)]
    Watch(crate::commands::watch::WatchCommand),
}

/// An RFC 5280 revocation reason (certificateHold and removeFromCRL are not offered:
/// revocation is for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevocationReasonArg {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl From<RevocationReasonArg> for pmp_proto::certstore::v1::RevocationReason {
    fn from(reason: RevocationReasonArg) -> Self {
        use pmp_proto::certstore::v1::RevocationReason as Reason;
        match reason {
            RevocationReasonArg::Unspecified => Reason::Unspecified,
            RevocationReasonArg::KeyCompromise => Reason::KeyCompromise,
            RevocationReasonArg::CaCompromise => Reason::CaCompromise,
            RevocationReasonArg::AffiliationChanged => Reason::AffiliationChanged,
            RevocationReasonArg::Superseded => Reason::Superseded,
            RevocationReasonArg::CessationOfOperation => Reason::CessationOfOperation,
            RevocationReasonArg::PrivilegeWithdrawn => Reason::PrivilegeWithdrawn,
            RevocationReasonArg::AaCompromise => Reason::AaCompromise,
        }
    }
}

/// `pmpctl revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The CA certificate id or partner/FTM certificate id.
    pub certificate_id: String,
    /// Why, as RFC 5280 names it.
    #[arg(long, value_enum)]
    pub reason: RevocationReasonArg,
    /// A note for the audit trail.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `pmpctl crl ...`.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Fetch a domain's CRL, signed by the active platform signing key.
    Get {
        /// The partner domain.
        #[arg(long)]
        domain: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Write PEM instead of DER.
        #[arg(long)]
        pem: bool,
    },
}

/// What kind of certificate to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertificateKindArg {
    Ca,
    Partner,
    Ftm,
}

/// `pmpctl expiring`.
#[derive(Debug, Args)]
pub struct ExpiringArgs {
    /// How many days ahead to look.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub within_days: u32,
    /// Only this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only this kind.
    #[arg(long, value_enum)]
    pub kind: Option<CertificateKindArg>,
    #[command(flatten)]
    pub page: PageArgs,
}

/// `pmpctl platform-key ...`.
#[derive(Debug, Subcommand)]
pub enum PlatformKeyCommand {
    /// The platform root and every published signing key (what verifies platform-signed
    /// copies).
    List {
        /// Also write the platform root certificate (PEM) to this file.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Rotation step 1: add a signing certificate issued by the platform root, with where
    /// its key is; it is published at once and signs nothing until activated.
    Add {
        /// The signing certificate (PEM).
        certificate: PathBuf,
        /// The key pair's label in the certificate store's HSM.
        #[arg(
            long,
            conflicts_with = "key_path",
            required_unless_present = "key_path"
        )]
        key_label: Option<String>,
        /// Or: a PEM key file at this path on every certificate-store replica (`--key-file`
        /// is pmpctl's own TLS key).
        #[arg(long)]
        key_path: Option<String>,
    },
    /// Rotation step 2: sign every new platform-signed copy with this key; the key it
    /// replaces stays published until the copies it signed expire.
    Activate {
        /// The key id (`platform-key list`).
        key_id: String,
    },
}

/// `pmpctl token-key ...`.
#[derive(Debug, Subcommand)]
pub enum TokenKeyCommand {
    /// Every recorded token signing key and its state.
    List,
    /// Rotation step 1: add a key (published at once, so every service holds it before it
    /// signs; activate after `user_tokens.refresh_interval_seconds`).
    Add {
        /// The key pair's label in the registry's HSM.
        #[arg(
            long,
            conflicts_with = "key_path",
            required_unless_present = "key_path"
        )]
        key_label: Option<String>,
        /// Or: a PEM key file at this path on every registry replica.
        #[arg(long)]
        key_path: Option<String>,
    },
    /// Rotation step 2: sign every new token with this key; the key it replaces stays
    /// published until its tokens expire.
    Activate {
        /// The key id (`token-key list`), the `kid` of the tokens it signs.
        key_id: String,
    },
}

/// `pmpctl health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Keep checking for up to this many seconds until every service is SERVING.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

/// Where a password comes from; never from an echoing prompt.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// The password (visible in the process list and shell history: prefer --password-stdin).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `pmpctl register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Partner id, also the user name (1-36 characters, no white space).
    #[arg(long)]
    pub partner_id: String,
    #[command(flatten)]
    pub password: PasswordSource,
    #[arg(long)]
    pub first_name: String,
    #[arg(long)]
    pub last_name: String,
    /// Organisation name; partner and FTM certificates must carry it exactly as subject O.
    #[arg(long, visible_alias = "organisation")]
    pub organization: String,
    /// Partner type code, case-insensitive (FTM_Provider, Device_Provider, Auth_Partner...).
    #[arg(long, default_value = "FTM_Provider")]
    pub partner_type: String,
    #[arg(long)]
    pub address: String,
    #[arg(long)]
    pub email: String,
    /// 1-16 digits, spaces, +, -, ( or ).
    #[arg(long)]
    pub phone: String,
    /// Language code (default on the server: eng).
    #[arg(long)]
    pub lang_code: Option<String>,
}

/// `pmpctl login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name (the partner id, or the admin account's name).
    pub username: String,
    #[command(flatten)]
    pub password: PasswordSource,
    /// Print the token on stdout instead of saving it (for PMPCTL_TOKEN in scripts).
    #[arg(long)]
    pub print_token: bool,
}

/// Paging options of the list commands (AIP-158).
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Results per page (0 = server default, 20; at most 500).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    pub page_size: i32,
    /// Token of the page to fetch, from a previous listing.
    #[arg(long, conflicts_with = "all")]
    pub page_token: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

/// `pmpctl ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Upload root and intermediate CA certificates (PEM, concatenated PEM or PKCS#7).
    Upload {
        /// Certificate file (.pem, .cer, .p7b; binary DER is accepted).
        file: PathBuf,
        /// Partner domain (FTM, DEVICE, AUTH).
        #[arg(long, default_value = "FTM")]
        domain: String,
    },
    /// List the trust store.
    List {
        /// Only this partner domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only roots or only intermediates.
        #[arg(long = "type", value_enum)]
        ca_type: Option<CaTypeFilter>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one CA certificate.
    Show {
        certificate_id: String,
        /// Print only the certificate as PEM.
        #[arg(long)]
        pem: bool,
    },
    /// Print the path of a CA certificate up to its root (PEM, leaf first).
    TrustPath {
        certificate_id: String,
        /// Also write the path as a DER PKCS#7 bundle to this file.
        #[arg(long, value_name = "FILE")]
        p7b: Option<PathBuf>,
    },
}

/// `--type` of `ca list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CaTypeFilter {
    Root,
    Intermediate,
}

/// `pmpctl partner ...`.
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Show a partner (default: the logged-in partner).
    Show { partner_id: Option<String> },
    /// List partners (admin).
    List {
        /// Only this partner type (e.g. FTM_Provider).
        #[arg(long = "type")]
        partner_type: Option<String>,
        #[arg(long, value_enum)]
        status: Option<PartnerStatusFilter>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// The partner certificate.
    #[command(subcommand)]
    Cert(PartnerCertCommand),
    /// Re-activate a deactivated partner (admin).
    Activate { partner_id: String },
    /// Deactivate a partner (admin); its certificate stops being trusted.
    Deactivate { partner_id: String },
}

/// `--status` of `partner list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PartnerStatusFilter {
    #[value(alias = "in_progress")]
    InProgress,
    Active,
    Deactivated,
}

/// `pmpctl partner cert ...`.
#[derive(Debug, Subcommand)]
pub enum PartnerCertCommand {
    /// Upload the partner certificate (issued by a CA of the domain, subject O = organisation);
    /// the first accepted certificate makes the partner ACTIVE.
    Upload {
        /// Certificate file (.pem or binary DER .cer).
        file: PathBuf,
        /// Partner id (default: the logged-in partner).
        #[arg(long)]
        partner_id: Option<String>,
        /// Partner domain (FTM, DEVICE, AUTH).
        #[arg(long, default_value = "FTM")]
        domain: String,
    },
    /// Show the partner certificate (default: of the logged-in partner).
    Show {
        partner_id: Option<String>,
        #[command(flatten)]
        pem: PemChoice,
    },
}

/// Which PEM a `cert show` prints instead of the summary.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct PemChoice {
    /// Print only the certificate as uploaded (CA-signed), as PEM.
    #[arg(long)]
    pub pem: bool,
    /// Print only the platform-signed copy, as PEM.
    #[arg(long)]
    pub platform_pem: bool,
}

/// `pmpctl ftm ...`.
#[derive(Debug, Subcommand)]
pub enum FtmCommand {
    /// Register an FTM (chip make and model); it starts PENDING_CERT_UPLOAD.
    Create {
        #[arg(long)]
        make: String,
        #[arg(long)]
        model: String,
        /// The FTM provider's partner id (default: the logged-in partner).
        #[arg(long)]
        partner_id: Option<String>,
    },
    /// The FTM chip certificate.
    #[command(subcommand)]
    Cert(FtmCertCommand),
    /// Approve an FTM pending approval (admin); its chip certificate becomes trusted.
    Approve { ftm_id: String },
    /// Reject an FTM pending approval (admin).
    Reject {
        ftm_id: String,
        /// Why (1-512 characters).
        #[arg(long)]
        reason: String,
    },
    /// Deactivate an approved FTM; its chip certificate stops being trusted.
    Deactivate { ftm_id: String },
    /// Show an FTM.
    Show { ftm_id: String },
    /// List FTMs (admin: all; others: their own).
    List {
        #[arg(long)]
        partner_id: Option<String>,
        #[arg(long, value_enum)]
        status: Option<FtmStatusFilter>,
        /// Case-insensitive substring of the make.
        #[arg(long)]
        make: Option<String>,
        /// Case-insensitive substring of the model.
        #[arg(long)]
        model: Option<String>,
        /// Case-insensitive substring of the organisation name.
        #[arg(long, visible_alias = "organisation")]
        organization: Option<String>,
        /// create_time, update_time, make, model, partner_id or status, optionally " desc".
        #[arg(long)]
        order_by: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `--status` of `ftm list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FtmStatusFilter {
    #[value(alias = "pending_cert_upload")]
    PendingCertUpload,
    #[value(alias = "pending_approval")]
    PendingApproval,
    Approved,
    Rejected,
    Deactivated,
}

/// `pmpctl ftm cert ...`.
#[derive(Debug, Subcommand)]
pub enum FtmCertCommand {
    /// Upload (or renew) the chip certificate; the FTM becomes PENDING_APPROVAL.
    Upload {
        ftm_id: String,
        /// Certificate file (.pem or binary DER .cer).
        file: PathBuf,
    },
    /// Show the chip certificate.
    Show {
        ftm_id: String,
        #[command(flatten)]
        pem: PemChoice,
    },
}

/// `pmpctl verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Certificate file (PEM certificate or chain leaf first, PKCS#7, binary DER).
    pub file: PathBuf,
    /// Partner domain (FTM, DEVICE, AUTH).
    #[arg(long, default_value = "FTM")]
    pub domain: String,
}

/// `pmpctl dev ...`.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Generate a throw-away PKI for an organisation (development and demos only).
    Certs {
        /// Organisation name (becomes subject O; must equal the partner's organisation).
        #[arg(long, visible_alias = "organisation")]
        org: String,
        /// Directory to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_follow_subcommands() {
        let cli = Cli::try_parse_from(["pmpctl", "partner", "show", "p1", "--output", "json"])
            .expect("parse");
        assert_eq!(cli.global.output, OutputFormat::Json);
    }

    #[test]
    fn quiet_conflicts_with_explicit_output() {
        assert!(Cli::try_parse_from(["pmpctl", "-q", "-o", "json", "whoami"]).is_err());
        assert!(Cli::try_parse_from(["pmpctl", "-q", "whoami"]).is_ok());
    }

    #[test]
    fn login_needs_exactly_one_password_source() {
        assert!(Cli::try_parse_from(["pmpctl", "login", "admin"]).is_err());
        assert!(
            Cli::try_parse_from([
                "pmpctl",
                "login",
                "admin",
                "--password",
                "x",
                "--password-stdin"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["pmpctl", "login", "admin", "--password-stdin"]).is_ok());
    }
}
