//! Runs: whether a binary can run here, and one bounded run of it under its platform's settings.

use super::binaries::Prepared;
use crate::check::run::OutputExpectation;
use crate::check::{Status, ids};
use crate::inspect::Linkage;
use crate::inspect::closure::ClosureFacts;
use crate::platform::Platform;
use crate::run::{self, Limits, RunReport};
use crate::settings::Settings;
use std::path::Path;

/// Why this binary cannot be run here, if it cannot.
pub(crate) fn not_runnable(p: &Prepared) -> Option<String> {
    let Some(elf) = p.facts.elf() else {
        return Some(format!("a {} file cannot be run here", p.facts.kind()));
    };
    if !elf.is_executable() {
        return Some("not an executable".into());
    }
    if p.checks
        .iter()
        .any(|c| c.id == ids::ELF_FORMAT && c.status == Status::Fail)
    {
        return Some("not a valid executable".into());
    }
    if p.expected.is_none() {
        return Some("platform unknown".into());
    }
    if crate::check::wrong_machine(&p.checks) {
        return Some(crate::check::NOT_THIS_MACHINE.into());
    }
    None
}

pub(crate) fn execute(
    p: &Prepared,
    options: &Settings,
    overrides: &run::EmulatorOverrides,
) -> RunReport {
    if options.no_run {
        return RunReport::NotRun {
            reason: "--no-run".into(),
        };
    }
    if let Some((reason, hint)) = crate::check::elf::foreign_run_skip(&p.facts) {
        return RunReport::Skipped { reason, hint };
    }
    if let Some(reason) = not_runnable(p) {
        return RunReport::NotRun { reason };
    }
    let (Some(elf), Some(expected)) = (p.facts.elf(), &p.expected) else {
        return RunReport::NotRun {
            reason: "platform unknown".into(),
        };
    };
    run_elf(
        &p.target.host_path,
        elf,
        p.closure.as_ref(),
        &expected.platform,
        options,
        overrides,
        None,
        run::exec::minimal_env(),
    )
}

/// Run one ELF as `platform`, inside the run limits. `image_args` are an image's own
/// Entrypoint/Cmd arguments, used unless config or flags give others.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_elf(
    binary: &Path,
    elf: &crate::inspect::ElfFacts,
    closure: Option<&ClosureFacts>,
    platform: &Platform,
    options: &Settings,
    overrides: &run::EmulatorOverrides,
    image_args: Option<Vec<String>>,
    env: Vec<(String, String)>,
) -> RunReport {
    let emulator = match run::find_emulator(
        platform.arch,
        overrides,
        crate::settings::env::get(crate::settings::env::PATH).as_deref(),
    ) {
        Ok(e) => e,
        Err(missing) => {
            return RunReport::Skipped {
                reason: missing.reason,
                hint: missing.hint,
            };
        }
    };
    if elf.linkage == Linkage::Dynamic && closure.is_none() {
        return RunReport::Skipped {
            reason: format!(
                "no sysroot holding the loader {}",
                elf.interpreter.as_deref().unwrap_or("?")
            ),
            hint: "pass --sysroot DIR".into(),
        };
    }
    let settings = options.run_for(platform);
    let args = settings.args.clone().or(image_args).unwrap_or_default();
    let invocation = match run::plan(binary, elf, closure, &emulator, &args, env) {
        Ok(i) => i,
        Err(reason) => return RunReport::Failed { reason },
    };
    let limits: Limits = settings.limits();
    let mut command = vec![invocation.program.display().to_string()];
    command.extend(invocation.args.iter().cloned());
    match run::exec::run_bounded(&invocation, limits) {
        Ok(captured) => RunReport::Ran {
            runner: invocation.runner,
            command,
            captured,
            from_cache: false,
        },
        Err(e) => RunReport::Failed {
            reason: format!("could not start {}: {e}", command[0]),
        },
    }
}

/// The output a binary of `platform` must print.
pub(crate) fn expected_output(
    platform: &Platform,
    found_version: Option<String>,
    options: &Settings,
) -> OutputExpectation {
    options
        .run_for(platform)
        .expectation(platform, found_version)
}
