//! Release audit in Markdown: the subject, a platform × check-group matrix, the failures, then
//! per platform what was published (digests, layers, binaries, loaders, libraries), how it ran
//! and every check.

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
    subjects(&mut out, report);
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

    // One column per check group keeps the table readable on any screen; the per-platform
    // detail below lists every check.
    let groups = report.groups();
    let _ = writeln!(out, "| platform | artifact | {} |", groups.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(groups.len()));
    for a in &report.artifacts {
        let marks: Vec<&str> = groups.iter().map(|g| mark(a.group_status(g))).collect();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            a.platform.as_deref().unwrap_or("-"),
            cell(&a.path),
            marks.join(" | ")
        );
    }
    let _ = writeln!(
        out,
        "\n✅ pass · ❌ fail · ⚠️ warning · ⏭️ could not be checked here · ➖ does not apply · · no such check\n"
    );

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
        let _ = writeln!(out, "## Failures\n");
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

    let _ = writeln!(out, "## Per-platform detail\n");
    for a in &report.artifacts {
        details(&mut out, a);
    }
    report.anonymise(&out)
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
    let _ = writeln!(out, "- checks:");
    for c in &a.checks {
        let _ = writeln!(
            out,
            "  - {} `{}` {}",
            mark(Some(c.status)),
            c.id,
            cell(&c.message)
        );
    }
    out.push('\n');
}

/// What was verified, first: per input its digest, size, media type and tag, and per platform
/// the manifest, config and entrypoint digests.
fn subjects(out: &mut String, report: &Report) {
    if report.subjects.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Subject\n");
    for s in &report.subjects {
        let _ = writeln!(out, "- input: `{}`", cell(&s.input));
        let _ = writeln!(out, "  - kind: {}", s.kind);
        if let Some(d) = &s.digest {
            let _ = writeln!(out, "  - digest: `{d}`");
        }
        if let Some(n) = s.size {
            let _ = writeln!(out, "  - size: {n} bytes");
        }
        if let Some(m) = &s.media_type {
            let _ = writeln!(out, "  - media type: `{}`", cell(m));
        }
        if let Some(t) = &s.tag {
            let _ = writeln!(out, "  - tag: `{}`", cell(t));
        }
        match (&s.registry, &s.reference) {
            (Some(registry), Some(r)) => {
                let _ = writeln!(
                    out,
                    "  - served by registry `{}` for `{}`",
                    cell(registry),
                    cell(r)
                );
            }
            (_, Some(r)) => {
                let _ = writeln!(out, "  - published to: `{}`", cell(r));
            }
            _ => {}
        }
        for a in &s.attestations {
            let _ = writeln!(out, "  - attestation: `{}`", cell(a));
        }
        if s.platforms.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        if s.kind == "files" {
            let _ = writeln!(out, "| platform | binary | sha256 |");
            let _ = writeln!(out, "|---|---|---|");
            for p in &s.platforms {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | `{}` |",
                    cell(&p.platform),
                    cell(p.entrypoint.as_deref().unwrap_or("-")),
                    p.entrypoint_sha256.as_deref().unwrap_or("-")
                );
            }
        } else {
            let _ = writeln!(
                out,
                "| platform | manifest | config | entrypoint | entrypoint sha256 |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|");
            for p in &s.platforms {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | `{}` | `{}` | `{}` |",
                    cell(&p.platform),
                    p.manifest.as_deref().unwrap_or("-"),
                    p.config.as_deref().unwrap_or("-"),
                    cell(p.entrypoint.as_deref().unwrap_or("-")),
                    p.entrypoint_sha256.as_deref().unwrap_or("-")
                );
            }
        }
        let _ = writeln!(out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out.push('\n');
}
