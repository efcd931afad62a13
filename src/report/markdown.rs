//! Release audit in Markdown: a platform × check matrix, then per platform what was published
//! (digests, layers, binaries, loaders, libraries) and how it ran.

use super::{Artifact, Report, Verdict};
use crate::check::Status;
use crate::inspect::Identity;
use crate::run::RunReport;
use std::fmt::Write;

fn mark(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Pass) => "✅",
        Some(Status::Fail) => "❌",
        Some(Status::Warn) => "⚠️",
        Some(Status::Skip) => "⏭️",
        Some(Status::NotApplicable) => "➖",
        None => "·",
    }
}

/// Text in a table cell must not break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
    };
    let _ = writeln!(out, "# mab-verify release audit: {verdict}\n");
    let _ = writeln!(
        out,
        "{} {} · {} · inputs: {}\n",
        report.tool.name,
        report.tool.version,
        report.generated_at,
        report
            .inputs
            .iter()
            .map(|i| format!("`{}`", cell(i)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let s = &report.summary;
    let not_applicable = match s.not_applicable {
        0 => String::new(),
        n => format!(" · {n} not applicable"),
    };
    let _ = writeln!(
        out,
        "{} artifacts · {} checks passed · {} failed · {} warnings · {} skipped{not_applicable}\n",
        s.artifacts, s.pass, s.fail, s.warn, s.skip
    );

    let cols = report.columns();
    let _ = writeln!(out, "| platform | artifact | {} |", cols.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(cols.len()));
    for a in &report.artifacts {
        let marks: Vec<&str> = cols
            .iter()
            .map(|c| mark(a.checks.iter().find(|r| r.id == *c).map(|r| r.status)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            a.platform.as_deref().unwrap_or("-"),
            cell(&a.path),
            marks.join(" | ")
        );
    }
    out.push('\n');

    let problems: Vec<(&Artifact, &crate::check::CheckResult)> = report
        .artifacts
        .iter()
        .flat_map(|a| {
            a.checks
                .iter()
                .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
                .map(move |c| (a, c))
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(out, "## Findings\n");
        for (a, c) in problems {
            let _ = writeln!(
                out,
                "- {} **{}** on `{}`: {}",
                mark(Some(c.status)),
                c.id,
                cell(&a.path),
                cell(&c.message)
            );
            for (name, value) in c.details() {
                let _ = writeln!(out, "  - {name}: {}", cell(value));
            }
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Artifacts\n");
    for a in &report.artifacts {
        details(&mut out, a);
    }
    out
}

fn details(out: &mut String, a: &Artifact) {
    let _ = writeln!(out, "### `{}`\n", cell(&a.path));
    if let Some(p) = &a.platform {
        let _ = writeln!(out, "- platform: `{p}`");
    }
    if let Some(e) = &a.expected {
        let _ = writeln!(
            out,
            "- expected: `{}` from {}",
            e.platform,
            cell(&e.source.describe())
        );
    }
    if let Some(img) = &a.image {
        let _ = writeln!(out, "- image digest: `{}` ({})", img.digest, img.media_type);
        let _ = writeln!(
            out,
            "- config digest: `{}` (declares `{}`)",
            img.config_digest, img.config_platform
        );
        if let Some(p) = &img.index_platform {
            let _ = writeln!(out, "- index entry: `{p}`");
        }
        let _ = writeln!(out, "- layers:");
        for l in &img.layers {
            let _ = writeln!(
                out,
                "  - `{}` {} ({}, diff_id `{}`, {} entries)",
                l.digest,
                l.media_type,
                l.compression
                    .map_or("missing".to_string(), |c| format!("{c:?}").to_lowercase()),
                l.diff_id.as_deref().unwrap_or("-"),
                l.files
            );
        }
        if let Some(e) = &img.entrypoint {
            let _ = writeln!(
                out,
                "- entrypoint: `{e}` ({} executables in the image)",
                img.executables
            );
        }
        for o in &img.outliers {
            let _ = writeln!(out, "- outlier: `{}` is `{}`", o.path, o.platform);
        }
    } else if !a.sha256.is_empty() {
        let _ = writeln!(out, "- sha256: `{}`", a.sha256);
    }
    if let Some(Identity::Elf(e)) = &a.facts {
        if let Some(id) = &e.build_id {
            let _ = writeln!(out, "- build-id: `{id}`");
        }
        let _ = writeln!(out, "- binary: {} {:?}, {}", e.identity(), e.linkage, e.abi);
        if let Some(interp) = &e.interpreter {
            let _ = writeln!(out, "- loader: `{interp}`");
        }
        if !e.needed.is_empty() {
            let _ = writeln!(
                out,
                "- libraries: {}",
                e.needed
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    match &a.run {
        RunReport::Ran {
            runner, captured, ..
        } => {
            let status = match (captured.exit_code, captured.signal, captured.timed_out) {
                (_, _, true) => "timed out".to_string(),
                (Some(c), _, _) => format!("exit {c}"),
                (None, Some(s), _) => format!("signal {s}"),
                _ => "no status".to_string(),
            };
            let _ = writeln!(
                out,
                "- run: `{}` → {status}, stdout `{}`",
                cell(runner),
                cell(captured.stdout.lines().next().unwrap_or(""))
            );
        }
        RunReport::Skipped { reason, hint } => {
            let _ = writeln!(out, "- run: skipped ({}; {})", cell(reason), cell(hint));
        }
        RunReport::Failed { reason } => {
            let _ = writeln!(out, "- run: could not start ({})", cell(reason));
        }
        RunReport::NotRun { reason } => {
            let _ = writeln!(out, "- run: not run ({})", cell(reason));
        }
    }
    out.push('\n');
}
