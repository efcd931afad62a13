//! JUnit XML for CI test views: one test case per artifact and check.

use super::Report;
use crate::check::Status;
use std::fmt::Write;

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

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let tests = s.pass + s.fail + s.warn + s.skip + s.not_applicable;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mab-verify\" tests=\"{tests}\" failures=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
        s.fail,
        s.skip + s.not_applicable,
        xml(&report.generated_at)
    );
    for a in &report.artifacts {
        let failures = a.checks.iter().filter(|c| c.status == Status::Fail).count();
        let skipped = a
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Skip | Status::NotApplicable))
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            xml(&a.path),
            a.checks.len()
        );
        for c in &a.checks {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&a.path),
                xml(c.id)
            );
            let detail: Vec<String> = c
                .details()
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect();
            match c.status {
                Status::Pass => out.push_str("/>\n"),
                Status::Fail => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&c.message),
                        xml(&detail.join("\n"))
                    );
                }
                Status::Skip => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&c.message)
                    );
                }
                Status::NotApplicable => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"not applicable: {}\"/>\n    </testcase>",
                        xml(&c.message)
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
    out.push_str("</testsuites>\n");
    out
}
