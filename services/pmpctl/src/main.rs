//! `pmpctl`: the command-line client of the FTM partner management platform.
//!
//! Every RPC a person or a script needs is one command, organised by the onboarding
//! workflow (register, log in, trust store, partner certificate, FTMs, verification).
//! Output is a table, JSON (`--output json`) or ids only (`--quiet`); failures print
//! `error: <GRPC_CODE> <REASON>: <message>` and exit with a code per class of failure
//! (see `pmpctl --help`).

mod certificate_file;
mod cli;
mod commands;
mod failure;
mod output;
mod rpc;
mod session;
mod settings;
mod views;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // clap prints usage errors and exits with 2 (help and version with 0).
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
