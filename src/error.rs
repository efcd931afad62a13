//! Errors as values and the exit codes they map to.

use std::path::PathBuf;

/// Documented exit codes (README "Exit codes").
pub mod exit {
    /// Every check passed (warnings too, unless `--strict`).
    pub const OK: u8 = 0;
    /// At least one check failed.
    pub const CHECK_FAILED: u8 = 1;
    /// The input or the command line is wrong.
    pub const BAD_INPUT: u8 = 2;
    /// Something the environment must provide is missing (qemu with `--require-run`).
    pub const ENVIRONMENT: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    UnknownPlatform(#[from] crate::platform::UnknownPlatform),
    #[error("{0}")]
    Usage(String),
    #[error("config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{what}\n  hint: {hint}")]
    Environment { what: String, hint: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Environment { .. } => exit::ENVIRONMENT,
            Error::Io { .. } => exit::BAD_INPUT,
            _ => exit::BAD_INPUT,
        }
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
