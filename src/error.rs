//! Errors as values, one variant per expected failure, and the exit code each maps to.

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
    /// An input file or directory that cannot be read as what it claims to be.
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    UnknownPlatform(#[from] crate::platform::UnknownPlatform),
    /// The command line is wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// A config file that cannot be read or parsed.
    #[error("config {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: crate::config::ConfigError,
    },
    /// A flag, `mab.toml` key or environment variable whose value is out of range.
    #[error("{}", setting(key, value, place, allowed))]
    Setting {
        key: String,
        value: String,
        place: String,
        allowed: String,
    },
    /// A `--report FORMAT=FILE` that could not be written.
    #[error("cannot write the {format} report to {}: {source}", path.display())]
    ReportWrite {
        format: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The artifact failed verification, so what was asked for was not done.
    #[error("{}: did not verify; {consequence}", path.display())]
    NotVerified { path: PathBuf, consequence: String },
    /// The artifact's bytes changed between verification and publishing.
    #[error("{} changed after it was verified ({before} → {after}); {consequence}", path.display())]
    Changed {
        path: PathBuf,
        before: String,
        after: String,
        consequence: String,
    },
    /// `assemble` found inputs that disagree with their binaries (a check failure).
    #[error("assemble refused: {0}")]
    AssembleRefused(String),
    /// `assemble` inputs that cannot be read or combined, or an output that cannot be written.
    #[error("{0}")]
    Assemble(String),
    /// A nix command failed.
    #[error("nix {what} failed:\n{message}")]
    Nix { what: String, message: String },
    /// The gated command could not be started.
    #[error("gate: cannot run {program}: {source}")]
    Launch {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The registry refused the push or the credentials (bad or missing credentials, a bad
    /// reference).
    #[error("{0}")]
    Registry(#[source] Box<crate::publish::registry::PushError>),
    /// The registry serves something other than what was pushed.
    #[error("{0}")]
    RegistryChanged(#[source] Box<crate::publish::registry::PushError>),
    /// Something this machine must provide is missing.
    #[error("{what}\n  hint: {hint}")]
    Environment { what: String, hint: String },
    /// A local file operation of the tool itself failed (temporary directories, staging).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// `--timeout 0: give …` for a flag, `FILE: run.timeout_secs = 0: give …` for a key.
fn setting(key: &str, value: &str, place: &str, allowed: &str) -> String {
    if key.starts_with("--") {
        format!("{key} {value}: not allowed; give {allowed}")
    } else {
        format!("{place}: {key} = {value}: not allowed; give {allowed}")
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. }
            | Error::UnknownPlatform(_)
            | Error::Usage(_)
            | Error::Config { .. }
            | Error::Setting { .. }
            | Error::ReportWrite { .. }
            | Error::Assemble(_)
            | Error::Nix { .. }
            | Error::Launch { .. }
            | Error::Registry(_)
            | Error::Io { .. } => exit::BAD_INPUT,
            Error::NotVerified { .. }
            | Error::Changed { .. }
            | Error::AssembleRefused(_)
            | Error::RegistryChanged(_) => exit::CHECK_FAILED,
            Error::Environment { .. } => exit::ENVIRONMENT,
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
