//! `man`: the manual page in roff, written by clap_mangen from the command line.

use crate::cli::Cli;
use crate::error::{Error, Result, exit};
use clap::CommandFactory;

pub fn man() -> Result<u8> {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        // `mab-verify man | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing the manual page".into(),
            source: e,
        }),
        _ => Ok(exit::OK),
    }
}
