//! `build`: every cross target of a flake built by nix, then verified as one report; and
//! `merge-reports`: per-target JSON reports from CI jobs folded into one verdict.

use super::{Input, Options, conclude, verify_inputs};
use crate::check::{CheckResult, Expected, ExpectedSource, ids};
use crate::cli::VerifyArgs;
use crate::error::{Error, Result, exit};
use crate::nix::{self, Built, NixError};
use crate::report::{Artifact, Report};
use crate::run::RunReport;
use std::path::PathBuf;

fn nix_error(e: NixError) -> Error {
    match e {
        NixError::Missing(why) => Error::Environment {
            what: format!("mab-verify build needs the nix CLI ({why})"),
            hint: "install Nix (apt-get install nix-bin, or the installer from nixos.org), or verify built outputs with mab-verify PATH".into(),
        },
        NixError::Failed { what, message } => Error::Usage(format!("nix {what} failed:\n{message}")),
    }
}

pub fn build(
    flake: &str,
    system: Option<String>,
    attr: &str,
    only: &[String],
    args: &VerifyArgs,
) -> Result<u8> {
    let options = Options::from_args(args)?;
    nix::available().map_err(nix_error)?;
    let system = match system {
        Some(s) => s,
        None => crate::platform::Arch::host()
            .map(|a| a.nix_system())
            .ok_or_else(|| {
                Error::Usage("this machine is no platform in the table; pass --system".into())
            })?,
    };
    let attr = attr.replace("{system}", &system);
    let wanted: Vec<String> = if only.is_empty() {
        options.config.build.targets.clone().unwrap_or_default()
    } else {
        only.to_vec()
    };
    eprintln!("nix: evaluating {flake}#{attr}…");
    let found = nix::discover(flake, &attr, &wanted).map_err(nix_error)?;
    if let Some(missing) = wanted.iter().find(|w| !found.known.contains(w)) {
        return Err(Error::Usage(format!(
            "{flake} has no target {missing} under {attr}; it has: {}",
            found.known.join(", ")
        )));
    }
    let targets = found.targets;
    if targets.is_empty() && found.broken.is_empty() {
        return Err(Error::Usage(format!(
            "{flake} has no derivations under {attr}"
        )));
    }

    let outputs: Vec<&nix::Output> = targets.iter().flat_map(|t| &t.outputs).collect();
    let mut artifacts: Vec<Artifact> = found
        .broken
        .iter()
        .map(|b| eval_failure(flake, &attr, b))
        .collect();
    let built = if outputs.is_empty() {
        Vec::new()
    } else {
        eprintln!(
            "nix: building {} outputs of {} targets…",
            outputs.len(),
            targets.len()
        );
        nix::build(
            flake,
            &attr,
            &outputs,
            &mut nix::progress::Display::for_stderr(),
        )
        .map_err(nix_error)?
    };

    let mut inputs = Vec::new();
    let mut results = built.into_iter();
    for target in &targets {
        let configured = options
            .config
            .build
            .platforms
            .get(&target.name)
            .map(String::as_str);
        let expected = nix::expected_platform(target, &system, configured);
        for output in &target.outputs {
            let installable = format!("{flake}#{attr}.{}", output.attr);
            match results.next() {
                Some(Built::Ok(path)) => match &expected {
                    Some((platform, source)) => inputs.push(Input {
                        path,
                        declared: Some(Expected {
                            platform: *platform,
                            source: ExpectedSource::BuildTarget {
                                target: format!(
                                    "{} ({})",
                                    target.name,
                                    source.describe(&target.name)
                                ),
                            },
                        }),
                    }),
                    None => artifacts.push(problem(
                        &installable,
                        &output.out_path,
                        CheckResult::fail(
                            ids::NIX_BUILD,
                            format!(
                                "built, but nothing says which platform {} is for",
                                target.name
                            ),
                        )
                        .hint(format!(
                            "name it in mab.toml: [build.platforms] {} = \"linux/arm64\"",
                            target.name
                        )),
                    )),
                },
                failed => {
                    let log_tail = match failed {
                        Some(Built::Failed { log_tail }) if !log_tail.is_empty() => log_tail,
                        _ => "no log".to_string(),
                    };
                    artifacts.push(problem(
                        &installable,
                        &output.drv_path,
                        CheckResult::fail(
                            ids::NIX_BUILD,
                            format!("{} failed to build", output.name),
                        )
                        .found(log_tail)
                        .at(output.drv_path.clone())
                        .hint(format!(
                            "nix log {} shows the whole build log",
                            output.drv_path
                        )),
                    ));
                }
            }
        }
    }
    let (verified, missing) = verify_inputs(&inputs, &options)?;
    artifacts.extend(verified);
    let names = targets
        .iter()
        .map(|t| &t.name)
        .chain(found.broken.iter().map(|b| &b.name))
        .map(|name| format!("{flake}#{attr}.{name}"))
        .collect();
    conclude(
        Report::new(names, artifacts, options.strict),
        missing,
        &options,
        args,
    )
}

/// A target asked for that does not evaluate: named, with nix's error.
fn eval_failure(flake: &str, attr: &str, broken: &nix::Broken) -> Artifact {
    let installable = format!("{flake}#{attr}.{}", broken.name);
    problem(
        &installable,
        "",
        CheckResult::fail(
            ids::NIX_EVAL,
            format!("target {} does not evaluate", broken.name),
        )
        .found(broken.error.clone())
        .at(installable.clone())
        .hint(format!(
            "nix eval {installable} --show-trace shows the whole error"
        )),
    )
}

/// An artifact that stands for a build that produced nothing to verify.
fn problem(path: &str, resolved: &str, check: CheckResult) -> Artifact {
    Artifact {
        path: path.to_string(),
        resolved_path: resolved.to_string(),
        sha256: String::new(),
        size: 0,
        kind: "build",
        platform: None,
        expected: None,
        facts: None,
        image: None,
        closure: None,
        run: RunReport::NotRun {
            reason: "not built".into(),
        },
        checks: vec![check],
    }
}

/// Fold JSON reports into one: artifacts concatenated, the summary and verdict computed again
/// from every check, so the result is what one run over all targets would have said.
pub fn merge_reports(paths: &[PathBuf], args: &VerifyArgs) -> Result<u8> {
    let mut inputs = Vec::new();
    let mut artifacts: Vec<serde_json::Value> = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| Error::input(p, e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(p, format!("not a JSON report: {e}")))?;
        if json["schema_version"] != crate::report::SCHEMA_VERSION {
            return Err(Error::input(
                p,
                format!(
                    "schema_version {} is not {}; merge reports written by the same mab-verify",
                    json["schema_version"],
                    crate::report::SCHEMA_VERSION
                ),
            ));
        }
        inputs.extend(json["inputs"].as_array().cloned().unwrap_or_default());
        artifacts.extend(
            json["artifacts"]
                .as_array()
                .cloned()
                .ok_or_else(|| Error::input(p, "has no artifacts list"))?,
        );
    }
    let mut summary = crate::report::Summary {
        artifacts: artifacts.len(),
        ..Default::default()
    };
    for c in artifacts
        .iter()
        .flat_map(|a| a["checks"].as_array().cloned().unwrap_or_default())
    {
        match c["status"].as_str() {
            Some("pass") => summary.pass += 1,
            Some("fail") => summary.fail += 1,
            Some("warn") => summary.warn += 1,
            _ => summary.skip += 1,
        }
    }
    let failed = summary.fail > 0 || (args.strict && summary.warn > 0);
    let merged = serde_json::json!({
        "schema_version": crate::report::SCHEMA_VERSION,
        "tool": { "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
        "inputs": inputs,
        "artifacts": artifacts,
        "summary": summary,
        "verdict": if failed { "fail" } else { "pass" },
    });
    match args.format {
        crate::cli::Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&merged).expect("JSON value")
        ),
        crate::cli::Format::Human => {
            for a in merged["artifacts"].as_array().into_iter().flatten() {
                let worst = a["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["status"].as_str())
                    .fold("pass", |w, s| match (w, s) {
                        ("fail", _) | (_, "fail") => "fail",
                        ("warn", _) | (_, "warn") => "warn",
                        _ => "pass",
                    });
                println!(
                    "{:<5} {}  {}",
                    worst,
                    a["path"].as_str().unwrap_or("?"),
                    a["platform"].as_str().unwrap_or("-")
                );
                for c in a["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["status"] == "fail" || c["status"] == "warn")
                {
                    println!(
                        "      {} {}: {}",
                        c["status"].as_str().unwrap_or(""),
                        c["id"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    );
                }
            }
            println!(
                "{}: {} artifacts from {} reports, {} checks passed, {} failed, {} warnings, {} skipped",
                if failed { "FAIL" } else { "PASS" },
                summary.artifacts,
                paths.len(),
                summary.pass,
                summary.fail,
                summary.warn,
                summary.skip
            );
        }
    }
    Ok(if failed { exit::CHECK_FAILED } else { exit::OK })
}
