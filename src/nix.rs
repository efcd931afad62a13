//! Talks to the real `nix` CLI: discover a flake's cross targets, read what each is built for,
//! build them all in one invocation with live progress, and find what each output became.

mod discover;
pub mod progress;

pub use discover::{Broken, Discovery, discover};

use crate::platform::Platform;
use progress::{Display, Event, Parser, Tally};
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};

#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error("nix is not installed or not on PATH: {0}")]
    Missing(String),
    #[error("nix {what} failed: {message}")]
    Failed { what: String, message: String },
}

/// One buildable output of one target: `packages.<system>.<target>.<output>`, or a flat
/// `packages.<system>.<target>`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Output {
    /// The installable's attribute path below `packages.<system>`.
    #[serde(default)]
    pub attr: String,
    pub name: String,
    pub out_path: String,
    pub drv_path: String,
    /// `stdenv.hostPlatform.config` (or `.system`) when the derivation exposes it.
    pub host: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub outputs: Vec<Output>,
}

/// Where a target's expected platform came from, in the order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformSource {
    Config,
    HostPlatform(String),
    AttributeName,
    StoreName(String),
    Native,
}

impl PlatformSource {
    pub fn describe(&self, target: &str) -> String {
        match self {
            PlatformSource::Config => format!("mab.toml's entry for {target}"),
            PlatformSource::HostPlatform(c) => format!("{target}'s stdenv.hostPlatform ({c})"),
            PlatformSource::AttributeName => format!("the attribute name {target}"),
            PlatformSource::StoreName(n) => format!("the store name {n}"),
            PlatformSource::Native => format!("{target} = the system being built on"),
        }
    }
}

/// The environment every nix invocation gets: flakes on, and whatever the user set.
fn nix(args: &[&str]) -> Command {
    let mut cmd = Command::new("nix");
    cmd.args(["--extra-experimental-features", "nix-command flakes"])
        .args(args);
    cmd
}

pub(crate) fn run_json(what: &str, args: &[&str]) -> Result<serde_json::Value, NixError> {
    let out = nix(args)
        .output()
        .map_err(|e| NixError::Missing(e.to_string()))?;
    if !out.status.success() {
        return Err(NixError::Failed {
            what: what.to_string(),
            message: tail(
                &progress::strip_ansi(&String::from_utf8_lossy(&out.stderr)),
                15,
            ),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| NixError::Failed {
        what: what.to_string(),
        message: format!("unexpected output: {e}"),
    })
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The platform a target is for, and what said so.
pub fn expected_platform(
    target: &Target,
    system: &str,
    configured: Option<&str>,
) -> Option<(Platform, PlatformSource)> {
    if let Some(name) = configured {
        return Platform::parse(name)
            .ok()
            .map(|p| (p, PlatformSource::Config));
    }
    if let Some(host) = target.outputs.iter().find_map(|o| o.host.clone())
        && let Ok(p) = Platform::parse(&host)
    {
        return Some((p, PlatformSource::HostPlatform(host)));
    }
    if target.name == "native" || target.name == "default" {
        return Platform::parse(system)
            .ok()
            .map(|p| (p, PlatformSource::Native));
    }
    if let Ok(p) = Platform::parse(&target.name) {
        return Some((p, PlatformSource::AttributeName));
    }
    target.outputs.iter().find_map(|o| {
        Platform::from_store_name(&o.name)
            .map(|(p, _)| (p, PlatformSource::StoreName(o.name.clone())))
    })
}

/// What happened to each requested output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    Ok(PathBuf),
    Failed { log_tail: String },
}

/// Build every output in one `nix build`, so Nix schedules them (and any remote builders)
/// itself; `--keep-going` so one failure does not hide the others. Progress goes to `display`:
/// each derivation as it starts, the tally as it moves and at least every 10 s.
pub fn build(
    flake: &str,
    attr: &str,
    outputs: &[&Output],
    display: &mut Display,
) -> Result<Vec<Built>, NixError> {
    let installables: Vec<String> = outputs
        .iter()
        .map(|o| format!("{flake}#{attr}.{}", o.attr))
        .collect();
    let mut cmd = nix(&[
        "build",
        "--no-link",
        "--keep-going",
        "--log-format",
        "internal-json",
    ]);
    cmd.args(&installables)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| NixError::Missing(e.to_string()))?;
    let stderr = child.stderr.take().expect("piped");
    // A reader thread, so that a silent stretch (one long build) still gets its tally.
    let (send, lines) = channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut parser = Parser::default();
    let mut tally = Tally::default();
    let mut errors = Vec::new();
    loop {
        match lines.recv_timeout(progress::TALLY_EVERY / 2) {
            Ok(line) => {
                let Some(event) = parser.parse(&line) else {
                    continue;
                };
                match &event {
                    Event::Tally(t) => tally = *t,
                    Event::Error(e) => errors.push(e.clone()),
                    Event::Started { .. } => {}
                }
                display.event(&event, tally);
            }
            Err(RecvTimeoutError::Timeout) => display.tick(tally),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = reader.join();
    display.finish(tally);
    let status = child.wait().map_err(|e| NixError::Missing(e.to_string()))?;
    let mut results = Vec::new();
    for o in outputs {
        if Path::new(&o.out_path).exists() {
            results.push(Built::Ok(PathBuf::from(&o.out_path)));
        } else {
            let log = nix(&["log", &o.drv_path])
                .output()
                .ok()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            let related: Vec<&String> = errors
                .iter()
                .filter(|e| e.contains(&o.drv_path) || e.contains(&o.name))
                .collect();
            let mut text = tail(&log, 20);
            if text.is_empty() {
                text = related
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            if text.is_empty() {
                text = format!("nix build exited with {status}");
            }
            results.push(Built::Failed { log_tail: text });
        }
    }
    Ok(results)
}

pub fn available() -> Result<String, NixError> {
    let out = Command::new("nix")
        .arg("--version")
        .output()
        .map_err(|e| NixError::Missing(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
