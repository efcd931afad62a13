//! One file per subcommand: resolved settings in, a verdict (an exit code) out.

mod assemble;
mod build;
mod completions;
mod demo;
mod gate;
mod man;
mod merge_reports;
pub mod platforms;
mod push;
mod verify;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result, exit};
use crate::report::{self, Report};
use crate::settings::Settings;

pub fn run(cli: Cli) -> Result<u8> {
    settle_allocator();
    let (inputs, junit) = junit_reports(&cli);
    let outcome = dispatch(cli);
    if let Err(e) = &outcome {
        report::junit::write_error_reports(&inputs, &junit, e);
    }
    outcome
}

/// The inputs and `--report junit=FILE` files of a command that verifies: where the error of
/// a run that could not complete goes.
fn junit_reports(cli: &Cli) -> (Vec<String>, Vec<std::path::PathBuf>) {
    let shown = |p: &std::path::Path| p.display().to_string();
    let (inputs, flags) = match &cli.command {
        None => (cli.paths.iter().map(|p| shown(p)).collect(), &cli.verify),
        Some(Command::Gate {
            artifact, verify, ..
        })
        | Some(Command::Push {
            artifact, verify, ..
        }) => (vec![shown(artifact)], &**verify),
        Some(Command::Assemble { output, verify, .. }) => (vec![shown(output)], &**verify),
        Some(Command::Build { flake, verify, .. }) => (vec![flake.clone()], &**verify),
        Some(Command::Demo { out, verify }) => (vec![shown(out)], &**verify),
        Some(_) => return (Vec::new(), Vec::new()),
    };
    let junit = flags
        .reports
        .iter()
        .filter(|r| r.format == crate::cli::ReportFormat::Junit)
        .map(|r| r.path.clone())
        .collect();
    (inputs, junit)
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Some(Command::Completions { shell }) => completions::completions(shell),
        Some(Command::Man) => man::man(),
        Some(Command::Platforms) => {
            print!("{}", platforms::platforms_table());
            Ok(exit::OK)
        }
        Some(Command::Demo { out, verify }) => demo::demo(&out, &verify),
        Some(Command::Build {
            flake,
            system,
            targets,
            attr,
            verify,
        }) => build::build(&flake, system, &attr, &targets, &verify),
        Some(Command::Gate {
            artifact,
            command,
            verify,
        }) => gate::gate(
            &crate::image::reference::local_artifact(&artifact, "gate")?,
            &command,
            &verify,
        ),
        Some(Command::Push {
            artifact,
            reference,
            remote,
            allow_remote_plain_http,
            attach_attestation,
            verify,
        }) => push::push(
            &crate::image::reference::local_artifact(&artifact, "push")?,
            &reference,
            &crate::image::reference::RemoteSettings::from_flags(remote, !verify.quiet)?,
            allow_remote_plain_http,
            &verify,
            attach_attestation,
        ),
        Some(Command::MergeReports {
            files,
            format,
            strict,
        }) => merge_reports::merge_reports(&files, format, strict),
        Some(Command::Assemble {
            output,
            layout,
            tag,
            compression,
            fix_config,
            inputs,
            verify,
        }) => assemble::assemble(
            assemble::Layout {
                output,
                layout,
                tag,
                compression,
                fix_config,
                inputs,
            },
            &verify,
        ),
        None => {
            if cli.paths.is_empty() {
                return Err(Error::Usage(
                    "nothing to verify: give a binary or directory (for example ./result), or run `mab-verify demo`; see --help".into(),
                ));
            }
            if let Some(e) = mistyped_subcommand(&cli.paths) {
                return Err(e);
            }
            let mut settings = Settings::resolve(&cli.verify)?;
            settings.all = cli.all;
            settings.remote =
                crate::image::reference::RemoteSettings::from_flags(cli.remote, !cli.verify.quiet)?;
            verify::verify(&cli.paths, &settings)
        }
    }
}

/// `mab-verify plaforms`: a path that does not exist and is one edit from a subcommand.
fn mistyped_subcommand(paths: &[std::path::PathBuf]) -> Option<Error> {
    use clap::CommandFactory;
    let first = paths.first()?;
    let word = first.to_str()?;
    if first.exists() || word.contains('/') {
        return None;
    }
    let command = Cli::command();
    let near = command
        .get_subcommands()
        .map(|c| c.get_name())
        .find(|name| strsim::levenshtein(word, name) <= 1)?;
    Some(Error::Usage(format!(
        "{word} is neither a file nor a subcommand; did you mean `mab-verify {near}`? (see --help)"
    )))
}

/// Print the report and turn it into the exit code (3 for --require-run without emulators).
pub(crate) fn conclude(report: Report, mut missing: Vec<String>, options: &Settings) -> Result<u8> {
    crate::pipeline::print_report(&report, &options.output)?;
    if options.require_run && !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(Error::Environment {
            what: format!("--require-run: cannot run {} here", missing.join(", ")),
            hint: "apt-get install qemu-user, or set MAB_QEMU_<ARCH> / [qemu] in mab.toml".into(),
        });
    }
    Ok(match report.verdict {
        report::Verdict::Pass => exit::OK,
        report::Verdict::Fail => exit::CHECK_FAILED,
    })
}

/// glibc raises its mmap threshold each time a large block is freed, up to 32 MiB, and then
/// keeps freed buffers of binaries and layers in the heap for good. A fixed threshold hands
/// them back at once, so peak memory does not grow with how many large files an image holds.
fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}
