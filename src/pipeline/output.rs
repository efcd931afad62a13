//! The report stage: stdout in `--format`, every `--report FORMAT=FILE`, GitHub annotations.

use crate::cli::{Format, ReportFormat, ReportSpec};
use crate::error::{Error, Result};
use crate::report::{self, Report};
use crate::settings::OutputSettings;

/// Print the report on stdout in `--format`, write every `--report FORMAT=FILE`, and in GitHub
/// Actions add annotations and the Markdown audit to the step summary.
pub fn print_report(report: &Report, output: &OutputSettings) -> Result<()> {
    let text = match output.format {
        Format::Json => report::json::render(report),
        Format::Human if output.quiet => {
            report::human::render_quiet(report, report::human::Style::stdout(output.color))
        }
        Format::Human => report::human::render(report, report::human::Style::stdout(output.color)),
    };
    // File names in the report are data: GitHub must not read workflow commands in them.
    let text = if output.github.is_some() {
        report::github::fence(&text)
    } else {
        text
    };
    print!("{text}");
    let mut unwritten = None;
    for spec in &output.reports {
        if let Err(e) = write_report(report, spec, output) {
            eprintln!("mab-verify: error: {e}");
            unwritten.get_or_insert(e);
        }
    }
    if let Some(step_summary) = &output.github {
        let notes = report::github::annotations(report);
        // JSON on stdout must stay JSON; the runner reads commands from stderr too.
        match output.format {
            Format::Json => eprint!("{notes}"),
            Format::Human => print!("{notes}"),
        }
        if let Some(summary) = step_summary {
            use std::io::Write;
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(summary)
                .and_then(|mut f| f.write_all(report::markdown::render(report).as_bytes()));
            if let Err(e) = appended {
                eprintln!(
                    "mab-verify: cannot append to GITHUB_STEP_SUMMARY {}: {e}",
                    summary.display()
                );
            }
        }
    }
    match unwritten {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One `--report FORMAT=FILE`.
fn write_report(report: &Report, spec: &ReportSpec, output: &OutputSettings) -> Result<()> {
    let text = match spec.format {
        ReportFormat::Human => report::human::render(
            report,
            report::human::Style {
                color: false,
                width: None,
            },
        ),
        ReportFormat::Json => report::json::render(report),
        ReportFormat::Markdown => report::markdown::render(report),
        ReportFormat::Attestation => report::attestation::render(report, &output.policy),
        ReportFormat::Junit => {
            report::junit::mark_written();
            report::junit::render(report)
        }
    };
    std::fs::write(&spec.path, text).map_err(|source| Error::ReportWrite {
        format: spec.format.as_str(),
        path: spec.path.clone(),
        source,
    })
}
