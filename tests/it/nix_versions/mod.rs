//! The two nix versions the Nix tests run against: Debian bookworm's 2.8 on PATH, and the
//! current one (Debian trixie's 2.26) that `scripts/current-nix` installs under target/.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NixVersion {
    /// Whatever `nix` is on PATH: Debian bookworm's nix-bin 2.8 under scripts/setup.
    Debian,
    /// `target/nix-trixie/bin/nix`, made by scripts/current-nix.
    Current,
}

/// A nix the tests can run: the PATH that selects it and what `nix --version` said.
#[derive(Debug, Clone)]
pub struct Nix {
    pub path: OsString,
    pub reported: String,
    /// (major, minor) from `nix --version`.
    pub release: (u32, u32),
}

impl Nix {
    /// A command for `program` (nix, nix-instantiate, …) from this nix.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &self.path);
        cmd
    }
}

fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    }
}

/// The directory holding the current nix's wrapper.
pub fn current_nix_bin() -> PathBuf {
    target_dir().join("nix-trixie/bin")
}

fn path_with(dir: Option<&Path>) -> OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = dir.map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::split_paths(&inherited).filter(|d| Some(d.as_path()) != dir));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

fn parse_release(reported: &str) -> Option<(u32, u32)> {
    let version = reported.split_whitespace().last()?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The nix of `version`, or why it is not here. In CI (CI=true) both must be: a missing one
/// panics there instead of skipping, so a broken setup cannot pass as green.
pub fn nix(version: NixVersion) -> Option<Nix> {
    let path = match version {
        NixVersion::Debian => path_with(None),
        NixVersion::Current => path_with(Some(&current_nix_bin())),
    };
    let reported = Command::new("nix")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let problem = match (&reported, version) {
        (None, _) => Some(format!("no {version:?} nix runs")),
        (Some(r), NixVersion::Current) if !current_nix_bin().join("nix").exists() => Some(format!(
            "{} missing (found only {r})",
            current_nix_bin().display()
        )),
        (Some(r), NixVersion::Current) if parse_release(r).is_none_or(|v| v < (2, 18)) => {
            Some(format!("the current nix reports {r}, not >= 2.18"))
        }
        _ => None,
    };
    if let Some(problem) = problem {
        let hint = "scripts/setup installs both (scripts/current-nix makes the current one)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI needs both nix versions: {problem}; {hint}");
        }
        eprintln!("\n!!!!! SKIPPED for nix {version:?}: {problem}; {hint} !!!!!\n");
        return None;
    }
    let reported = reported.expect("checked above");
    let release = parse_release(&reported).unwrap_or((0, 0));
    Some(Nix {
        path,
        reported,
        release,
    })
}
