//! Loose binaries and directories: inspect each, check it against its expected platform, run it.

use super::execute::{execute, expected_output, not_runnable};
use super::expect::{choose_root, expected_for, expected_set};
use super::progress;
use crate::check::elf::{BinaryContext, ClosureState, check_binary};
use crate::check::run::{OutputExpectation, check_run_required, platform_unknown};
use crate::check::{CheckResult, Expected};
use crate::discover::Target;
use crate::inspect::closure::{ClosureFacts, FactCache, HostTree, resolve_closure};
use crate::inspect::{BinaryFacts, inspect_bytes, inspect_file};
use crate::platform::Platform;
use crate::report::{Artifact, ExpectedReport, Report};
use crate::run::RunReport;
use crate::settings::Settings;
use rayon::prelude::*;

pub struct Outcome {
    pub report: Report,
    /// Platforms whose runs were skipped for want of an emulator.
    pub missing_emulators: Vec<String>,
}

/// One binary between inspection and its run.
pub(crate) struct Prepared {
    pub(crate) target: Target,
    pub(crate) facts: BinaryFacts,
    pub(crate) expected: Option<Expected>,
    pub(crate) closure: Option<ClosureFacts>,
    pub(crate) checks: Vec<CheckResult>,
}

pub fn verify_binaries(inputs: Vec<String>, targets: Vec<Target>, options: &Settings) -> Outcome {
    progress(&format!("inspecting {} binaries…", targets.len()));
    let mut cache = FactCache::default();
    let prepared: Vec<Prepared> = targets
        .into_iter()
        .map(|t| prepare(t, options, &mut cache))
        // A walk without --all looks for programs: libraries and loaders marked executable stay out.
        .filter(|p| {
            !p.target.from_walk || options.all || p.facts.elf().is_none_or(|e| e.is_executable())
        })
        .collect();
    let to_run = prepared
        .iter()
        .filter(|p| !options.no_run && not_runnable(p).is_none())
        .count();
    if to_run > 0 {
        progress(&format!("running {to_run} binaries…"));
    }
    let overrides = options.emulators.clone();
    let results: Vec<(Prepared, RunReport)> = prepared
        .into_par_iter()
        .map(|p| {
            let run = execute(&p, options, &overrides);
            (p, run)
        })
        .collect();
    let present: Vec<Platform> = results
        .iter()
        .filter_map(|(p, _)| p.facts.platform())
        .collect();
    let mut missing = Vec::new();
    let mut artifacts: Vec<Artifact> = results
        .into_iter()
        .map(|(p, run)| {
            if let (RunReport::Skipped { .. }, Some(e)) = (&run, &p.expected) {
                missing.push(e.platform.oci());
            }
            artifact(p, run, options)
        })
        .collect();
    missing.sort();
    missing.dedup();
    // With one --expect every binary is held to it (elf.machine); with several, each is held to
    // its own, and only the set check sees that one is missing.
    if !artifacts.is_empty()
        && let Some(set) = expected_set(&present, options)
    {
        artifacts.push(set);
    }
    Outcome {
        report: Report::new(inputs, artifacts, options.strict),
        missing_emulators: missing,
    }
}

fn prepare(target: Target, options: &Settings, cache: &mut FactCache) -> Prepared {
    let facts = match inspect_file(&target.host_path) {
        Ok(facts) => facts,
        Err(e) => inspect_bytes(format!("unreadable: {e}").as_bytes()),
    };
    let expected = expected_for(&target, &facts, options);
    let nix_output = target.store.is_some();
    let (closure, no_root_hint) = match (facts.elf(), &expected) {
        (Some(elf), Some(exp)) if elf.interpreter.is_some() || !elf.needed.is_empty() => {
            match choose_root(
                &target,
                exp,
                elf.interpreter.as_deref(),
                options.sysroot.as_deref(),
            ) {
                Some(root) => {
                    let guest = root
                        .guest_path_of(&target.host_path)
                        .unwrap_or_else(|| target.host_path.display().to_string());
                    (
                        Some(resolve_closure(
                            elf,
                            &guest,
                            exp.platform.arch,
                            &mut HostTree { root: &root, cache },
                        )),
                        "",
                    )
                }
                None => (
                    None,
                    "pass --sysroot DIR (the target's root: a Debian cross sysroot such as /usr/aarch64-linux-gnu, an unpacked image, or a Nix closure root)",
                ),
            }
        }
        _ => (None, "no loader or libraries to look up"),
    };
    let checks = match &expected {
        Some(exp) => check_binary(&BinaryContext {
            path: &target.display,
            facts: &facts,
            expected: exp,
            closure: match &closure {
                Some(c) => ClosureState::Resolved(c),
                None => ClosureState::NoRoot(no_root_hint),
            },
            nix_output,
        }),
        None => crate::check::elf::unidentified(&target.display, &facts),
    };
    Prepared {
        target,
        facts,
        expected,
        closure,
        checks,
    }
}

fn output_expectation(p: &Prepared, options: &Settings) -> OutputExpectation {
    let Some(expected) = &p.expected else {
        return OutputExpectation::Nothing;
    };
    expected_output(&expected.platform, store_version(p), options)
}

/// `1.0.0` from a store name `<hash>-multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0`.
fn store_version(p: &Prepared) -> Option<String> {
    let name = &p.target.store.as_ref()?.store_name;
    let last = name.rsplit('-').next()?;
    last.chars()
        .next()
        .filter(char::is_ascii_digit)
        .map(|_| last.to_string())
}

fn artifact(p: Prepared, run: RunReport, options: &Settings) -> Artifact {
    let mut checks = p.checks.clone();
    match &p.expected {
        Some(expected) => checks.extend(check_run_required(
            &run,
            expected,
            &output_expectation(&p, options),
            options.require_run,
        )),
        None => checks.extend(platform_unknown()),
    }
    crate::check::apply_dependencies(&mut checks);
    Artifact {
        path: p.target.display.clone(),
        resolved_path: p.target.host_path.display().to_string(),
        sha256: p.facts.sha256.clone(),
        size: p.facts.size,
        kind: p.facts.kind(),
        platform: p.facts.platform().map(|pl| pl.oci()),
        expected: p.expected.as_ref().map(|e| ExpectedReport {
            platform: e.platform.oci(),
            source: e.source.clone(),
        }),
        facts: Some(p.facts.identity.clone()),
        image: None,
        closure: p.closure,
        run,
        checks,
        subject: None,
    }
}
