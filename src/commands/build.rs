//! `build`: every cross target of a flake built by nix, then verified as one report.

use super::conclude;
use crate::check::{self, Expected, ExpectedSource};
use crate::cli::VerifyFlags;
use crate::error::{Error, Result};
use crate::nix::{self, Built, NixError};
use crate::pipeline::{self, Input, progress, verify_inputs};
use crate::report::Report;
use crate::settings::Settings;

fn nix_error(e: NixError) -> Error {
    match e {
        NixError::Missing(why) => Error::Environment {
            what: format!("mab-verify build needs the nix CLI ({why})"),
            hint: "install Nix (apt-get install nix-bin, or the installer from nixos.org), or verify built outputs with mab-verify PATH".into(),
        },
        NixError::Failed { what, message } => Error::Nix { what, message },
    }
}

pub fn build(
    flake: &str,
    system: Option<String>,
    attr: &str,
    only: &[String],
    flags: &VerifyFlags,
) -> Result<u8> {
    let options = Settings::resolve(flags)?;
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
        options.build.targets.clone().unwrap_or_default()
    } else {
        only.to_vec()
    };
    progress(&format!("nix: evaluating {flake}#{attr}…"));
    // Only the targets asked for are evaluated, so a broken sibling hides nothing.
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
    let mut artifacts: Vec<_> = found
        .broken
        .iter()
        .map(|b| {
            let installable = format!("{flake}#{attr}.{}", b.name);
            pipeline::unbuilt(
                &installable,
                "",
                check::nix::eval_failed(&b.name, &b.error, &installable),
            )
        })
        .collect();
    let built = if outputs.is_empty() {
        Vec::new()
    } else {
        progress(&format!(
            "nix: building {} outputs of {} targets…",
            outputs.len(),
            targets.len()
        ));
        nix::build(
            flake,
            &attr,
            &outputs,
            // --quiet: no nix progress either; a failed build is a nix.build result.
            &mut if options.output.quiet {
                nix::progress::Display::lines(Box::new(|_| {}))
            } else {
                nix::progress::Display::for_stderr()
            },
        )
        .map_err(nix_error)?
    };

    let mut inputs = Vec::new();
    let mut results = built.into_iter();
    for target in &targets {
        let configured = options
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
                    None => artifacts.push(pipeline::unbuilt(
                        &installable,
                        &output.out_path,
                        check::nix::no_platform(&target.name),
                    )),
                },
                failed => {
                    let log_tail = match failed {
                        Some(Built::Failed { log_tail }) => Some(log_tail),
                        _ => None,
                    };
                    artifacts.push(pipeline::unbuilt(
                        &installable,
                        &output.drv_path,
                        check::nix::failed(&output.name, log_tail, &output.drv_path),
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
    )
}
