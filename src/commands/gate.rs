//! `gate ARTIFACT -- CMD`: verify, then run the publishing command only on a pass, with what was verified.

use crate::cli::VerifyFlags;
use crate::error::{Error, Result, exit};
use crate::pipeline::fingerprint::{fingerprint, root_digest, unchanged_since};
use crate::pipeline::verify_one;
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
    let before = fingerprint(artifact)?;
    let report = verify_one(artifact, &options)?;
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
    let digest = root_digest(artifact, &options)?;
    let mut platforms: Vec<String> = report
        .artifacts
        .iter()
        .filter_map(|a| a.platform.clone())
        .collect();
    platforms.sort();
    platforms.dedup();
    // The bytes the command publishes must be the bytes that were verified.
    unchanged_since(
        artifact,
        &before,
        format!(
            "refusing to run {program}. Verify and publish the same file, with nothing writing to it in between."
        ),
    )?;
    // A private, read-only copy of exactly the verified bytes, for commands that can take a
    // path: nothing else can write it, whatever happens to the original.
    let (copy_dir, verified) =
        crate::publish::place::verified_copy(artifact, &before, fingerprint)?;
    // Checked again right before the command: the original is what was verified.
    unchanged_since(artifact, &before, format!("refusing to run {program}"))?;
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
    crate::publish::place::release(copy_dir.path());
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => exit::CHECK_FAILED,
    })
}
