//! JUnit XML for CI test views (the Jenkins JUnit schema): a test suite per artifact, a test
//! case per check, the subject as properties.

use super::{Artifact, Report};
use crate::check::{CheckResult, Status};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// A JUnit report of this run's checks was written: an error afterwards must not replace it.
static WRITTEN: AtomicBool = AtomicBool::new(false);

/// Called by whoever writes a rendered JUnit report.
pub fn mark_written() {
    WRITTEN.store(true, Ordering::Relaxed);
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Seconds as the schema wants them: a decimal with three places.
fn secs(seconds: f64) -> String {
    format!("{seconds:.3}")
}

/// The schema's timestamp has no zone designator; ours is always UTC.
fn timestamp(rfc3339: &str) -> String {
    rfc3339.trim_end_matches('Z').to_string()
}

/// Only a real skip (could not be checked here) is `skipped`; "does not apply" passes.
fn is_skip(c: &CheckResult) -> bool {
    c.status == Status::Skip
}

pub fn render(report: &Report) -> String {
    let tests: usize = report.artifacts.iter().map(|a| a.checks.len()).sum();
    let total: f64 = report.artifacts.iter().map(|a| report.seconds(a)).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mab-verify\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" time=\"{}\">",
        report.summary.fail,
        secs(total)
    );
    for a in &report.artifacts {
        suite(&mut out, report, a);
    }
    out.push_str("</testsuites>\n");
    report.anonymise(&out)
}

fn suite(out: &mut String, report: &Report, a: &Artifact) {
    let failures = a.checks.iter().filter(|c| c.status == Status::Fail).count();
    let skipped = a.checks.iter().filter(|c| is_skip(c)).count();
    let time = report.seconds(a);
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
        xml(&a.path),
        a.checks.len(),
        secs(time),
        xml(&timestamp(&report.generated_at))
    );
    let props = properties(report, a);
    if !props.is_empty() {
        out.push_str("    <properties>\n");
        for (name, value) in props {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                xml(&name),
                xml(&value)
            );
        }
        out.push_str("    </properties>\n");
    }
    for c in &a.checks {
        // The run's wall time belongs to the check that ran it.
        let t = if c.id == crate::check::ids::RUN_EXEC {
            time
        } else {
            0.0
        };
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            xml(&a.path),
            xml(c.id),
            secs(t)
        );
        let detail: Vec<String> = c
            .details()
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        match c.status {
            Status::Pass => out.push_str("/>\n"),
            Status::NotApplicable => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>does not apply: {}</system-out>\n    </testcase>",
                    xml(&c.message)
                );
            }
            Status::Fail => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    xml(&c.message),
                    xml(c.id),
                    xml(&detail.join("\n"))
                );
            }
            Status::Skip => {
                let message = match &c.hint {
                    Some(h) => format!("{} (fix: {h})", c.message),
                    None => c.message.clone(),
                };
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(&message)
                );
            }
            Status::Warn => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>warning: {}</system-out>\n    </testcase>",
                    xml(&format!("{}\n{}", c.message, detail.join("\n")))
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

/// The subject this artifact belongs to, and the artifact's own digests.
fn properties(report: &Report, a: &Artifact) -> Vec<(String, String)> {
    let mut props = Vec::new();
    let subject = report
        .subjects
        .iter()
        .find(|s| a.resolved_path == s.input || a.path.starts_with(&s.input));
    if let Some(s) = subject {
        props.push(("subject.input".to_string(), s.input.clone()));
        props.push(("subject.kind".to_string(), s.kind.to_string()));
        props.extend(s.digest.clone().map(|d| ("subject.digest".to_string(), d)));
        props.extend(s.size.map(|n| ("subject.size".to_string(), n.to_string())));
        props.extend(
            s.media_type
                .clone()
                .map(|m| ("subject.media_type".to_string(), m)),
        );
        props.extend(s.tag.clone().map(|t| ("subject.tag".to_string(), t)));
        props.extend(
            s.reference
                .clone()
                .map(|r| ("subject.reference".to_string(), r)),
        );
        props.extend(
            s.registry
                .clone()
                .map(|r| ("subject.registry".to_string(), r)),
        );
    }
    if let Some(p) = &a.platform {
        props.push(("platform".to_string(), p.clone()));
    }
    match &a.image {
        Some(img) => {
            props.push(("manifest".to_string(), img.digest.clone()));
            props.push(("config".to_string(), img.config_digest.clone()));
            props.extend(
                img.entrypoint
                    .clone()
                    .map(|e| ("entrypoint".to_string(), e)),
            );
            props.extend(
                img.entrypoint_sha256
                    .clone()
                    .map(|d| ("entrypoint.sha256".to_string(), d)),
            );
        }
        None if !a.sha256.is_empty() => props.push(("sha256".to_string(), a.sha256.clone())),
        None => {}
    }
    props
}

/// The JUnit of a run that could not complete (exit 2 or 3): one suite with the error as a
/// test case, so CI shows why nothing was verified.
pub fn render_error(inputs: &[String], error: &str, generated_at: &str) -> String {
    let name = if inputs.is_empty() {
        "mab-verify".to_string()
    } else {
        inputs.join(" ")
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<testsuites name=\"mab-verify\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"0.000\">\n",
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\" timestamp=\"{}\">",
        xml(&name),
        xml(&timestamp(generated_at))
    );
    let first = error.lines().next().unwrap_or(error);
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"mab-verify\" time=\"0.000\">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>",
        xml(&name),
        xml(first),
        xml(error)
    );
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// After an error (exit 2 or 3): every `--report junit=FILE` no check results were written to
/// gets the error as its one test case. A file that cannot be written is only reported: the
/// error that ended the run is what the exit code says.
pub fn write_error_reports(
    inputs: &[String],
    files: &[std::path::PathBuf],
    error: &crate::error::Error,
) {
    if WRITTEN.load(Ordering::Relaxed) || files.is_empty() {
        return;
    }
    let text = render_error(
        inputs,
        &format!("{error} (exit {})", error.exit_code()),
        &super::timestamp(),
    );
    for f in files {
        if let Err(e) = std::fs::write(f, &text) {
            eprintln!(
                "mab-verify: error: cannot write the JUnit report {}: {e}",
                f.display()
            );
        }
    }
}
