//! `merge-reports`: per-target JSON reports from CI jobs folded into one report and one verdict.

use crate::cli::Format;
use crate::error::{Error, Result, exit};
use std::path::PathBuf;

/// Fold JSON reports into one: artifacts concatenated, the summary and verdict computed again
/// from every check, so the result is what one run over all targets would have said.
pub fn merge_reports(paths: &[PathBuf], format: Format, strict: bool) -> Result<u8> {
    let mut inputs = Vec::new();
    let mut subjects = Vec::new();
    let mut artifacts: Vec<serde_json::Value> = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| Error::input(p, e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(p, format!("not a JSON report: {e}")))?;
        if json["schema_version"] != crate::report::SCHEMA_VERSION {
            return Err(Error::input(
                p,
                format!(
                    "schema_version {} is not {}; merge reports written by the same mab-verify",
                    json["schema_version"],
                    crate::report::SCHEMA_VERSION
                ),
            ));
        }
        inputs.extend(json["inputs"].as_array().cloned().unwrap_or_default());
        // Each input keeps the subject its own run named.
        subjects.extend(json["subjects"].as_array().cloned().unwrap_or_default());
        artifacts.extend(
            json["artifacts"]
                .as_array()
                .cloned()
                .ok_or_else(|| Error::input(p, "has no artifacts list"))?,
        );
    }
    let mut summary = crate::report::Summary {
        artifacts: artifacts.len(),
        ..Default::default()
    };
    for c in artifacts
        .iter()
        .flat_map(|a| a["checks"].as_array().cloned().unwrap_or_default())
    {
        match c["status"].as_str() {
            Some("pass") => summary.pass += 1,
            Some("fail") => summary.fail += 1,
            Some("warn") => summary.warn += 1,
            Some("not-applicable") => summary.not_applicable += 1,
            _ => summary.skip += 1,
        }
    }
    let failed = summary.fail > 0 || (strict && summary.warn > 0);
    let merged = serde_json::json!({
        "schema_version": crate::report::SCHEMA_VERSION,
        "tool": { "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
        "generated_at": crate::report::timestamp(),
        "inputs": inputs,
        "subjects": subjects,
        "artifacts": artifacts,
        "summary": summary,
        "verdict": if failed { "fail" } else { "pass" },
    });
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&merged).expect("JSON value")
        ),
        Format::Human => {
            for a in merged["artifacts"].as_array().into_iter().flatten() {
                let worst = a["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["status"].as_str())
                    .fold("pass", |w, s| match (w, s) {
                        ("fail", _) | (_, "fail") => "fail",
                        ("warn", _) | (_, "warn") => "warn",
                        _ => "pass",
                    });
                println!(
                    "{:<5} {}  {}",
                    worst,
                    a["path"].as_str().unwrap_or("?"),
                    a["platform"].as_str().unwrap_or("-")
                );
                for c in a["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["status"] == "fail" || c["status"] == "warn")
                {
                    println!(
                        "      {} {}: {}",
                        c["status"].as_str().unwrap_or(""),
                        c["id"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    );
                }
            }
            println!(
                "{}: {} artifacts from {} reports, {} checks passed, {} failed, {} warnings, {} skipped, {} not applicable",
                if failed { "FAIL" } else { "PASS" },
                summary.artifacts,
                paths.len(),
                summary.pass,
                summary.fail,
                summary.warn,
                summary.skip,
                summary.not_applicable
            );
        }
    }
    Ok(if failed { exit::CHECK_FAILED } else { exit::OK })
}
