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

/// `text` with workflow commands switched off around it (`::stop-commands::`), so names and
/// messages in a human report cannot act as commands. The token is random, so the text cannot
/// end the fence early.
pub fn fence(text: &str) -> String {
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !random {
        // Unguessable enough without urandom: nothing in the input knows this moment.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes.copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    let token = format!("mab-{}", hex::encode(bytes));
    let mut out = format!("::stop-commands::{token}\n{text}");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("::{token}::\n"));
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn data_and_properties_are_escaped_as_github_reads_them() {
        let hostile = "a%b\r\n::error title=x::y, z:w";
        assert_eq!(
            super::escape(hostile, false),
            "a%25b%0D%0A::error title=x::y, z:w"
        );
        assert_eq!(
            super::escape(hostile, true),
            "a%25b%0D%0A%3A%3Aerror title=x%3A%3Ay%2C z%3Aw"
        );
    }

    #[test]
    fn a_fence_holds_the_text_and_cannot_be_closed_by_it() {
        let text = "line\n::error::x\n";
        let fenced = super::fence(text);
        let first = fenced.lines().next().unwrap();
        let token = first.strip_prefix("::stop-commands::").unwrap();
        assert!(token.len() > 20);
        assert_eq!(fenced.lines().last().unwrap(), format!("::{token}::"));
        assert_ne!(super::fence(text), fenced, "a fresh token each time");
    }
}
