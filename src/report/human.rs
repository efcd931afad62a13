//! Terminal report: one row per binary, one column per check, failures explained underneath.

use super::{Artifact, Report, Verdict};
use crate::check::{Status, ids};
use crate::run::RunReport;
use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// The terminal's width: a matrix wider than this shows check groups, not checks.
    pub width: Option<usize>,
}

impl Style {
    /// For stdout: its terminal's width when it is one.
    pub fn stdout(color: bool) -> Style {
        Style {
            color,
            width: terminal_width(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn status(&self, s: Status, text: &str) -> String {
        let code = match s {
            Status::Pass => "32",
            Status::Fail => "1;31",
            Status::Warn => "33",
            Status::Skip | Status::NotApplicable => "2",
        };
        self.paint(code, text)
    }
}

/// Short column headers.
fn header(id: &str) -> &str {
    match id {
        ids::ELF_INTERP_PRESENT => "loader",
        ids::INDEX_PLATFORM => "index",
        ids::IMAGE_CONFIG_PLATFORM => "config",
        ids::INDEX_MEDIA_TYPES => "media",
        ids::INDEX_DUPLICATE => "dup",
        other => other.split('.').nth(1).unwrap_or(other),
    }
}

/// `-` is "does not apply"; `skip` is "could not be checked here", which a user can fix.
fn cell(check: Option<&crate::check::CheckResult>) -> (&'static str, Status) {
    match check.map(|c| (c.status, c.hint.is_some())) {
        Some((Status::Pass, _)) => ("ok", Status::Pass),
        Some((Status::Fail, _)) => ("FAIL", Status::Fail),
        Some((Status::Warn, _)) => ("warn", Status::Warn),
        Some((Status::Skip, true)) => ("skip", Status::Warn),
        Some((Status::Skip, false)) | Some((Status::NotApplicable, _)) | None => {
            ("-", Status::Skip)
        }
    }
}

/// A group's worst check as a cell; `skip` only when a user could fix it (a hint).
fn group_cell(a: &Artifact, group: &str) -> (&'static str, Status) {
    let worst = a
        .checks
        .iter()
        .filter(|c| super::group_of(c.id) == group)
        .max_by_key(|c| match (c.status, c.hint.is_some()) {
            (Status::Fail, _) => 5,
            (Status::Warn, _) => 4,
            (Status::Skip, true) => 3,
            (Status::Pass, _) => 2,
            (Status::Skip, false) => 1,
            (Status::NotApplicable, _) => 0,
        });
    cell(worst)
}

/// The columns of the terminal on stdout, if stdout is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ only fills the winsize struct it is given.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0)
            .then_some(usize::from(size.ws_col))
    }
}

pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    subjects(&mut out, report);
    let checks = report.columns();
    let groups = report.groups();
    let mut name_width = report
        .artifacts
        .iter()
        .map(|a| a.path.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 60);
    let platform_width = report
        .artifacts
        .iter()
        .map(|a| platform_cell(a).len())
        .max()
        .unwrap_or(8)
        .max(8);
    let line_width = |cols: &[&str]| -> usize {
        name_width
            + 2
            + platform_width
            + cols
                .iter()
                .map(|c| 2 + header(c).len().max(4))
                .sum::<usize>()
    };
    // Too wide for the terminal: one column per group (binaries, closure, run, image, index).
    let grouped = style.width.is_some_and(|w| line_width(&checks) > w);
    let cols = if grouped { groups } else { checks };
    // Still too wide: the artifact names give way (shortened from the left, as paths are).
    if let Some(w) = style.width {
        let over = line_width(&cols).saturating_sub(w);
        name_width = name_width.saturating_sub(over).max(12.min(name_width));
    }
    let widths: Vec<usize> = cols.iter().map(|c| header(c).len().max(4)).collect();

    let noun = if only_binaries(report) {
        "binary"
    } else {
        "artifact"
    };
    let _ = write!(out, "{noun:<name_width$}  {:<platform_width$}", "platform");
    for (c, w) in cols.iter().zip(&widths) {
        let _ = write!(out, "  {:<w$}", header(c));
    }
    out.push('\n');
    for a in &report.artifacts {
        let _ = write!(
            out,
            "{:<name_width$}  {:<platform_width$}",
            shorten(&a.path, name_width),
            platform_cell(a)
        );
        for (c, w) in cols.iter().zip(&widths) {
            let (text, s) = if grouped {
                group_cell(a, c)
            } else {
                cell(a.checks.iter().find(|r| r.id == *c))
            };
            let padded = format!("{text:<w$}");
            let _ = write!(out, "  {}", style.status(s, &padded));
        }
        out.push('\n');
    }
    out.push('\n');
    for a in &report.artifacts {
        details(&mut out, a, style);
    }
    summary(&mut out, report, style);
    out
}

/// `--quiet`: only the artifacts with failures or warnings, those findings, and the verdict.
pub fn render_quiet(report: &Report, style: Style) -> String {
    let mut out = String::new();
    for a in &report.artifacts {
        let findings: Vec<_> = a
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
            .collect();
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{} {}", style.status(Status::Fail, "✗"), a.path);
        for c in findings {
            let label = style.status(c.status, c.status.as_str());
            let _ = writeln!(out, "    {label} {}: {}", c.id, c.message);
            for (name, value) in c.details() {
                let _ = writeln!(out, "        {name:<8} {value}");
            }
        }
    }
    summary(&mut out, report, style);
    out
}

fn only_binaries(report: &Report) -> bool {
    report
        .artifacts
        .iter()
        .all(|a| a.image.is_none() && !matches!(a.kind, "index" | "set"))
}

fn platform_cell(a: &Artifact) -> String {
    match (&a.platform, a.kind) {
        (Some(p), _) => p.clone(),
        (None, "index" | "set") => "-".to_string(),
        (None, _) => "?".to_string(),
    }
}

fn shorten(path: &str, width: usize) -> String {
    let n = path.chars().count();
    if n <= width {
        return path.to_string();
    }
    let tail: String = path.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

fn details(out: &mut String, a: &Artifact, style: Style) {
    let worst = a
        .checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass);
    let could_not_check = a
        .checks
        .iter()
        .any(|c| c.status == Status::Skip && c.hint.is_some());
    let mark = match worst {
        Status::Fail => style.status(Status::Fail, "✗"),
        Status::Warn => style.status(Status::Warn, "!"),
        _ if could_not_check => style.status(Status::Warn, "?"),
        _ => style.status(Status::Pass, "✓"),
    };
    let _ = writeln!(out, "{mark} {}", a.path);
    if !matches!(a.kind, "index" | "set") {
        match &a.expected {
            Some(e) => {
                let _ = writeln!(
                    out,
                    "    expected {} from {}",
                    e.platform,
                    e.source.describe()
                );
            }
            None => {
                let _ = writeln!(out, "    expected platform unknown: pass --expect PLATFORM");
            }
        }
    }
    match &a.image {
        Some(img) => {
            let _ = writeln!(
                out,
                "    manifest {} · config {} · {} layers",
                img.digest,
                img.config_digest,
                img.layers.len()
            );
            if let Some(e) = &img.entrypoint {
                let _ = writeln!(out, "    entrypoint {e} · {} executables", img.executables);
            }
        }
        None if !a.sha256.is_empty() => {
            let _ = writeln!(out, "    sha256 {}", a.sha256);
        }
        None => {}
    }
    match &a.run {
        RunReport::Ran {
            runner,
            captured,
            from_cache,
            ..
        } => {
            let status = match (captured.timed_out, captured.exit_code, captured.signal) {
                (true, _, _) => "timed out".to_string(),
                (_, Some(c), _) => format!("exit {c}"),
                (_, None, Some(s)) => format!("signal {s}"),
                _ => "no status".to_string(),
            };
            let first = captured.stdout.lines().next().unwrap_or("");
            let _ = writeln!(
                out,
                "    run: {runner} · {status} · {} ms{} · stdout {first:?}{}",
                captured.duration_ms,
                if *from_cache {
                    " (earlier run, cached)"
                } else {
                    ""
                },
                if captured.stdout_truncated {
                    " (truncated)"
                } else {
                    ""
                }
            );
        }
        RunReport::Skipped { reason, hint } => {
            let _ = writeln!(
                out,
                "    run: {} {reason} ({hint})",
                style.status(Status::Skip, "skipped:")
            );
        }
        RunReport::Failed { reason } => {
            let _ = writeln!(
                out,
                "    run: {} {reason}",
                style.status(Status::Fail, "failed:")
            );
        }
        RunReport::NotRun { reason } => {
            let _ = writeln!(out, "    run: not run ({reason})");
        }
    }
    for c in a
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
    {
        let label = style.status(c.status, c.status.as_str());
        let _ = writeln!(out, "    {label} {}: {}", c.id, c.message);
        for (name, value) in c.details() {
            let _ = writeln!(out, "        {name:<8} {value}");
        }
    }
    out.push('\n');
}

fn summary(out: &mut String, report: &Report, style: Style) {
    let s = &report.summary;
    let verdict = match report.verdict {
        Verdict::Pass => style.status(Status::Pass, "PASS"),
        Verdict::Fail => style.status(Status::Fail, "FAIL"),
    };
    let not_applicable = match s.not_applicable {
        0 => String::new(),
        n => format!(", {n} not applicable"),
    };
    let _ = writeln!(
        out,
        "{verdict}: {} {}, {} checks passed, {} failed, {} warnings, {} skipped{not_applicable}",
        s.artifacts,
        if only_binaries(report) {
            "binaries"
        } else {
            "artifacts"
        },
        s.pass,
        s.fail,
        s.warn,
        s.skip
    );
}

/// What was verified, before anything else: the input, its digest and tag, each platform's
/// manifest, config and entrypoint.
fn subjects(out: &mut String, report: &Report) {
    for s in &report.subjects {
        let _ = writeln!(out, "subject {}: {}", s.input, s.headline());
        if s.kind == "files" {
            continue;
        }
        for p in &s.platforms {
            let _ = writeln!(
                out,
                "    {}  manifest {} · config {} · entrypoint {} sha256:{}",
                p.platform,
                p.manifest.as_deref().unwrap_or("-"),
                p.config.as_deref().unwrap_or("-"),
                p.entrypoint.as_deref().unwrap_or("-"),
                p.entrypoint_sha256.as_deref().unwrap_or("-"),
            );
        }
    }
    if !report.subjects.is_empty() {
        out.push('\n');
    }
}
