//! `gate ARTIFACT -- CMD`: verify, then run the publishing command only on a pass, with what was verified.

use crate::cli::VerifyFlags;
use crate::error::{Error, Result, exit};
use crate::pipeline::fingerprint::{fingerprint, root_digest, unchanged_since};
use crate::report::Verdict;
use crate::settings::{Settings, env};
use std::path::Path;

/// Verify, then run the command only on a pass, with the verified digest, the report and the
/// platforms in its environment, refusing if the artifact changed in between.
pub fn gate(artifact: &Path, command: &[String], flags: &VerifyFlags) -> Result<u8> {
    let options = Settings::resolve(flags)?;
    let Some((program, rest)) = command.split_first() else {
        return Err(Error::Usage(
            "gate needs a command after --: mab-verify gate ARTIFACT -- CMD ARGS…".into(),
        ));
    };
    // The private copy first: it is what is verified, fingerprinted and given to the
    // command as $MAB_VERIFIED_PATH, so nothing can swap bytes between the check and the copy.
    let (copy_dir, verified) = crate::publish::place::verified_copy(artifact)?;
    let before = fingerprint(&verified)?;
    let input = crate::pipeline::Input {
        path: verified.clone(),
        declared: None,
    };
    let (mut artifacts, _) = crate::pipeline::verify_inputs(&[input], &options)?;
    crate::publish::place::relabel(&mut artifacts, &verified, artifact);
    let report = crate::report::Report::new(
        vec![artifact.display().to_string()],
        artifacts,
        options.strict,
    );
    crate::pipeline::output::print_report(&report, &options.output)?;
    if report.verdict == Verdict::Fail {
        return Err(Error::NotVerified {
            path: artifact.to_path_buf(),
            consequence: format!("not running {program}"),
        });
    }
    let report_file = tempfile::Builder::new()
        .prefix("mab-report-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Error::Io {
            context: "writing the report for the gated command".into(),
            source: e,
        })?;
    std::fs::write(report_file.path(), crate::report::json::render(&report)).map_err(|e| {
        Error::Io {
            context: "writing the report for the gated command".into(),
            source: e,
        }
    })?;
    let digest = root_digest(&verified, &options)?;
    let mut platforms: Vec<String> = report
        .artifacts
        .iter()
        .filter_map(|a| a.platform.clone())
        .collect();
    platforms.sort();
    platforms.dedup();
    // Checked again right before the command: the copy is still what was verified, and so is
    // the original (a command that publishes the original's path must publish these bytes).
    for path in [verified.as_path(), artifact] {
        unchanged_since(
            path,
            &before,
            format!(
                "refusing to run {program}. Verify and publish the same file, with nothing writing to it in between."
            ),
        )?;
    }
    let mut gated = std::process::Command::new(program);
    match crate::run::guard::caller_tmpdir() {
        Some(t) => gated.env("TMPDIR", t),
        None => gated.env_remove("TMPDIR"),
    };
    let status = gated
        .args(rest)
        .env(env::VERIFIED_PATH, &verified)
        .env(env::VERIFIED_DIGEST, &digest)
        .env(env::REPORT, report_file.path())
        .env(env::PLATFORMS, platforms.join(","))
        .status()
        .map_err(|source| Error::Launch {
            program: program.clone(),
            source,
        });
    drop(copy_dir);
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => exit::CHECK_FAILED,
    })
}
