//! `completions SHELL`: the shell completion script clap_complete writes from the command line.

use crate::cli::Cli;
use crate::error::{Result, exit};
use clap::CommandFactory;

pub fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "mab-verify", &mut std::io::stdout());
    Ok(exit::OK)
}
