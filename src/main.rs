//! Entry point: parse the command line, run, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mab_verify::cli::Cli::parse();
    match mab_verify::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mab-verify: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
