//! Talks to the real `nix` CLI: discover a flake's cross targets, read what each is built for,
//! build them all in one invocation with live progress, and find what each output became.

use crate::platform::Platform;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

fn run_json(what: &str, args: &[&str]) -> Result<serde_json::Value, NixError> {
    let out = nix(args)
        .output()
        .map_err(|e| NixError::Missing(e.to_string()))?;
    if !out.status.success() {
        return Err(NixError::Failed {
            what: what.to_string(),
            message: tail(&String::from_utf8_lossy(&out.stderr), 15),
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

/// The Nix expression applied to `packages.<system>`: every derivation one or two levels down,
/// with its out and drv paths and, when present, its host platform.
const DISCOVER: &str = r#"pkgs:
let
  isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation";
  info = attr: d: {
    inherit attr;
    name = d.name;
    # Not outPath: toJSON turns any set with an outPath into that string.
    out_path = d.outPath;
    drv_path = d.drvPath;
    host = if d ? stdenv && d.stdenv ? hostPlatform then (d.stdenv.hostPlatform.config or d.stdenv.hostPlatform.system or null) else null;
  };
in builtins.mapAttrs (target: v:
  if isDrv v then [ (info target v) ]
  else if builtins.isAttrs v then
    builtins.filter (x: x != null) (builtins.attrValues (builtins.mapAttrs (o: d: if isDrv d then info "${target}.${o}" d else null) v))
  else []) pkgs"#;

/// Targets below `attr` (`packages.x86_64-linux`).
pub fn discover(flake: &str, attr: &str) -> Result<Vec<Target>, NixError> {
    let installable = format!("{flake}#{attr}");
    let value = run_json(
        "eval",
        &["eval", "--json", &installable, "--apply", DISCOVER],
    )?;
    let map: BTreeMap<String, Vec<Output>> =
        serde_json::from_value(value).map_err(|e| NixError::Failed {
            what: "eval".into(),
            message: e.to_string(),
        })?;
    Ok(map
        .into_iter()
        .filter(|(_, o)| !o.is_empty())
        .map(|(name, outputs)| Target { name, outputs })
        .collect())
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
/// itself; `--keep-going` so one failure does not hide the others. `progress` gets a line per
/// build that starts or fails.
pub fn build(
    flake: &str,
    attr: &str,
    outputs: &[&Output],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Built>, NixError> {
    let installables: Vec<String> = outputs
        .iter()
        .map(|o| format!("{flake}#{attr}.{}", o.attr))
        .collect();
    let mut cmd = nix(&[
        "build",
        "--no-link",
        "--json",
        "--keep-going",
        "--log-format",
        "internal-json",
    ]);
    cmd.args(&installables)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| NixError::Missing(e.to_string()))?;
    let stderr = child.stderr.take().expect("piped");
    let mut errors = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let Some(json) = line.strip_prefix("@nix ") else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else {
            continue;
        };
        match event["action"].as_str() {
            // 105 is actBuild in Nix's logger: one per derivation being built.
            Some("start") if event["type"] == 105 => {
                if let Some(text) = event["text"].as_str() {
                    progress(text);
                }
            }
            Some("msg") if event["level"].as_u64() == Some(0) => {
                if let Some(text) = event["msg"].as_str() {
                    errors.push(strip_ansi(text));
                }
            }
            _ => {}
        }
    }
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

fn strip_ansi(text: &str) -> String {
    let re = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("static regex");
    re.replace_all(text, "").into_owned()
}

pub fn available() -> Result<String, NixError> {
    let out = Command::new("nix")
        .arg("--version")
        .output()
        .map_err(|e| NixError::Missing(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
