//! The `run.*` checks: did the binary run, and did it print what its platform should print.

use super::{CheckResult, Expected, ids};
use crate::platform::Platform;
use crate::run::RunReport;

/// What the output must be. Templates are rendered for the expected platform before checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputExpectation {
    Exact(String),
    Regex(String),
    /// Only the exit status counts.
    Nothing,
}

pub const DEFAULT_TEMPLATE: &str = "Hello from {os}/{arch}!";

/// Fill `{os}`, `{arch}` (Rust's ARCH), `{oci_arch}`, `{variant}`, `{triple}` and `{version}`.
pub fn render(template: &str, platform: &Platform, version: Option<&str>) -> String {
    template
        .replace("{os}", platform.os.as_str())
        .replace("{arch}", platform.arch.rust_arch)
        .replace("{oci_arch}", platform.arch.oci_arch)
        .replace("{variant}", platform.arch.oci_variant.unwrap_or(""))
        .replace("{triple}", platform.triple())
        .replace("{version}", version.unwrap_or("{version}"))
}

pub fn check_run(
    run: &RunReport,
    expected: &Expected,
    output: &OutputExpectation,
) -> Vec<CheckResult> {
    match run {
        RunReport::NotRun { reason } => vec![
            CheckResult::skip(ids::RUN_EXEC, reason.clone()),
            CheckResult::skip(ids::RUN_OUTPUT, reason.clone()),
        ],
        RunReport::Failed { reason } => vec![
            CheckResult::fail(ids::RUN_EXEC, reason.clone())
                .expected("the binary starts")
                .found(reason.clone())
                .hint("fix the loader or closure problem the elf.* checks report"),
            CheckResult::skip(ids::RUN_OUTPUT, "not run"),
        ],
        RunReport::Skipped { reason, hint } => vec![
            CheckResult::skip(ids::RUN_EXEC, format!("not run: {reason}")).hint(hint.clone()),
            CheckResult::skip(ids::RUN_OUTPUT, "not run"),
        ],
        RunReport::Ran {
            runner, captured, ..
        } => {
            let exec = exec_result(runner, captured);
            let output = if exec.status == super::Status::Pass {
                output_result(captured, expected, output)
            } else {
                CheckResult::skip(ids::RUN_OUTPUT, "the run failed; output not compared")
            };
            vec![exec, output]
        }
    }
}

/// [`check_run`] under `--require-run` (`required`): a run skipped for want of an emulator
/// fails `run.exec` instead of skipping it.
pub fn check_run_required(
    run: &RunReport,
    expected: &Expected,
    output: &OutputExpectation,
    required: bool,
) -> Vec<CheckResult> {
    let mut results = check_run(run, expected, output);
    if required && matches!(run, RunReport::Skipped { .. }) {
        for c in &mut results {
            if c.id == ids::RUN_EXEC {
                c.status = super::Status::Fail;
            }
        }
    }
    results
}

/// The `run.*` results of a binary whose platform nobody knows: nothing to run it as.
pub fn platform_unknown() -> Vec<CheckResult> {
    vec![
        CheckResult::skip(ids::RUN_EXEC, "platform unknown"),
        CheckResult::skip(ids::RUN_OUTPUT, "platform unknown"),
    ]
}

fn stderr_tail(c: &crate::run::Captured) -> String {
    let tail: String = c
        .stderr
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    if tail.is_empty() {
        "no stderr".to_string()
    } else {
        format!("stderr: {tail}")
    }
}

fn exec_result(runner: &str, c: &crate::run::Captured) -> CheckResult {
    if c.timed_out {
        return CheckResult::fail(ids::RUN_EXEC, "killed: no exit within the time limit")
            .expected("exit status 0 within the time limit")
            .found(format!("still running at the timeout ({})", stderr_tail(c)))
            .at(runner.to_string())
            .hint("the program hangs or waits for input; raise --timeout if it is only slow under emulation");
    }
    if !c.survivors.is_empty() {
        return CheckResult::fail(
            ids::RUN_EXEC,
            format!(
                "left {} process(es) running when it ended (killed): {}",
                c.survivors.len(),
                c.survivors.join("; ")
            ),
        )
        .expected("no process of the run alive when it ends")
        .found(c.survivors.join("; "))
        .at(runner.to_string())
        .hint("a program under test must not daemonize or leave children behind; wait for them before exiting");
    }
    match (c.exit_code, c.signal) {
        (Some(0), _) => CheckResult::pass(ids::RUN_EXEC, format!("exit 0 ({runner})")),
        (code, signal) => {
            let how = match (code, signal) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                (None, None) => "unknown exit".to_string(),
            };
            CheckResult::fail(ids::RUN_EXEC, format!("{how} ({})", stderr_tail(c)))
                .expected("exit status 0")
                .found(how)
                .at(runner.to_string())
                .hint("run the command shown in the report by hand; a loader or library error means the closure or sysroot is incomplete")
        }
    }
}

fn output_result(
    c: &crate::run::Captured,
    expected: &Expected,
    output: &OutputExpectation,
) -> CheckResult {
    let got = c.stdout.strip_suffix('\n').unwrap_or(&c.stdout);
    let got = got.strip_suffix('\r').unwrap_or(got);
    let truncated = if c.stdout_truncated {
        format!(
            " (stdout truncated: {} bytes written, first {} kept)",
            c.stdout_bytes,
            c.stdout.len()
        )
    } else {
        String::new()
    };
    let shown = excerpt(got);
    let (ok, want) = match output {
        OutputExpectation::Nothing => {
            return CheckResult::pass(
                ids::RUN_OUTPUT,
                format!("output not checked (--expect-output none){truncated}"),
            );
        }
        OutputExpectation::Exact(want) => (!c.stdout_truncated && got == want, want.clone()),
        OutputExpectation::Regex(re) => match regex::Regex::new(re) {
            Ok(r) => (r.is_match(got), format!("/{re}/")),
            Err(e) => (false, format!("a valid regex ({e})")),
        },
    };
    if ok {
        CheckResult::pass(ids::RUN_OUTPUT, format!("printed {shown}"))
    } else {
        CheckResult::fail(ids::RUN_OUTPUT, format!("printed {shown}{truncated}"))
            .expected(want)
            .found(shown)
            .hint(format!(
                "the binary does not say what a {} build should: check that the right build was packaged, or set --expect-output",
                expected.platform.oci()
            ))
    }
}

/// First line(s) of output, quoted and bounded for reports.
fn excerpt(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        format!("{s:?}")
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}… ({} bytes)", &s[..end], s.len())
    }
}
