//! Entry point: parse the command line, run, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = mab_verify::run::seal::init_if_requested() {
        return code;
    }
    let cleanup = match mab_verify::run::guard::install() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mab-verify: error: cannot start: {e} (out of processes or threads?)");
            return ExitCode::from(3);
        }
    };
    let cli = match mab_verify::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            drop(cleanup);
            e.exit()
        }
    };
    match mab_verify::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mab-verify: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
