//! GitHub Actions workflow commands: one `::error`/`::warning` annotation per finding.

use super::Report;
use crate::check::Status;

/// Workflow-command data escaping, as the runner expects.
fn escape(text: &str, property: bool) -> String {
    let t = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        t.replace(':', "%3A").replace(',', "%2C")
    } else {
        t
    }
}

pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    for a in &report.artifacts {
        for c in a
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        {
            let level = if c.status == Status::Fail {
                "error"
            } else {
                "warning"
            };
            let mut body = c.message.clone();
            if let Some(fix) = &c.hint {
                body.push_str(&format!("\nfix: {fix}"));
            }
            out.push_str(&format!(
                "::{level} title={}::{}\n",
                escape(&format!("{} {}", c.id, a.path), true),
                escape(&body, false)
            ));
        }
    }
    out
}
