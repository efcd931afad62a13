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

/// `path` relative to the checkout (the working directory in Actions), when it lies inside it:
/// only such paths can be shown on the file in a pull request. No line is known for a binary.
fn repo_file(path: &str, cwd: Option<&std::path::Path>) -> Option<String> {
    use std::path::{Component, Path};
    let cwd = cwd?;
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let rel = abs.strip_prefix(cwd).ok()?;
    let inside = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (inside && !rel.as_os_str().is_empty() && abs.exists())
        .then(|| rel.to_string_lossy().trim_start_matches("./").to_string())
}

pub fn annotations(report: &Report) -> String {
    annotations_from(report, std::env::current_dir().ok())
}

/// Annotations with `file=` relative to `cwd` (the repository checkout).
pub fn annotations_from(report: &Report, cwd: Option<std::path::PathBuf>) -> String {
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
            let file = repo_file(&a.resolved_path, cwd.as_deref())
                .map(|f| format!("file={},", escape(&f, true)))
                .unwrap_or_default();
            out.push_str(&format!(
                "::{level} {file}title={}::{}\n",
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
    fn file_is_given_only_for_paths_inside_the_checkout() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("out")).unwrap();
        std::fs::write(repo.path().join("out/app,1.tar"), b"x").unwrap();
        let cwd = Some(repo.path());
        assert_eq!(
            super::repo_file("out/app,1.tar", cwd).as_deref(),
            Some("out/app,1.tar")
        );
        let abs = repo.path().join("out/app,1.tar").display().to_string();
        assert_eq!(
            super::repo_file(&abs, cwd).as_deref(),
            Some("out/app,1.tar")
        );
        assert_eq!(super::repo_file("../elsewhere", cwd), None);
        assert_eq!(super::repo_file("/etc/passwd", cwd), None);
        assert_eq!(super::repo_file("out/missing", cwd), None);
        let mut r = crate::report::sample::multi_arch(true);
        for a in &mut r.artifacts {
            a.resolved_path = "out/app,1.tar".into();
        }
        let notes = super::annotations_from(&r, Some(repo.path().to_path_buf()));
        assert!(
            notes.starts_with("::error file=out/app%2C1.tar,title=elf.machine "),
            "{notes}"
        );
    }

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
