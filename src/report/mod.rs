//! The report model every output format is built from: artifacts, their facts and check results.

pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;

use crate::check::{CheckResult, ExpectedSource, Status};
use crate::inspect::Identity;
use crate::inspect::closure::ClosureFacts;
use crate::run::RunReport;
use serde::Serialize;

/// Bump on any incompatible change to the JSON shape.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// RFC 3339, UTC; `SOURCE_DATE_EPOCH` when set, so reports can be reproduced.
    pub generated_at: String,
    pub inputs: Vec<String>,
    pub artifacts: Vec<Artifact>,
    pub summary: Summary,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub path: String,
    pub resolved_path: String,
    pub sha256: String,
    pub size: u64,
    pub kind: &'static str,
    /// What the bytes are, in OCI notation (`linux/arm/v7`); absent when no row fits.
    pub platform: Option<String>,
    pub expected: Option<ExpectedReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closure: Option<ClosureFacts>,
    pub run: RunReport,
    pub checks: Vec<CheckResult>,
}

/// What a report says of one platform's image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub digest: String,
    pub media_type: String,
    pub config_digest: String,
    /// The platform its index entry lists, if it came from an index.
    pub index_platform: Option<String>,
    /// The config's os/architecture/variant as written.
    pub config_platform: String,
    pub layers: Vec<crate::image::LayerFacts>,
    pub entrypoint: Option<String>,
    pub executables: usize,
    /// Executables that are not of the image's platform: `{path, platform}`.
    pub outliers: Vec<Outlier>,
    /// Where the manifest is listed (`index.json`, a nested index's digest): once per listing.
    pub listed_in: Vec<String>,
    /// buildx attestations and OCI artifacts about this image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<crate::image::Attachment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outlier {
    pub path: String,
    pub platform: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedReport {
    pub platform: String,
    #[serde(flatten)]
    pub source: ExpectedSource,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub artifacts: usize,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
    pub not_applicable: usize,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl Report {
    pub fn new(inputs: Vec<String>, artifacts: Vec<Artifact>, strict: bool) -> Report {
        let mut summary = Summary {
            artifacts: artifacts.len(),
            ..Summary::default()
        };
        for c in artifacts.iter().flat_map(|a| &a.checks) {
            match c.status {
                Status::Pass => summary.pass += 1,
                Status::Fail => summary.fail += 1,
                Status::Warn => summary.warn += 1,
                Status::Skip => summary.skip += 1,
                Status::NotApplicable => summary.not_applicable += 1,
            }
        }
        let failed = summary.fail > 0 || (strict && summary.warn > 0);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            generated_at: timestamp(),
            inputs,
            artifacts,
            summary,
            verdict: if failed { Verdict::Fail } else { Verdict::Pass },
        }
    }

    /// The checks some artifact has, in the canonical order: the columns of every matrix.
    pub fn columns(&self) -> Vec<&'static str> {
        crate::check::ids::ALL
            .iter()
            .filter(|id| {
                self.artifacts
                    .iter()
                    .any(|a| a.checks.iter().any(|c| c.id == **id))
            })
            .copied()
            .collect()
    }
}

fn timestamp() -> String {
    let when = crate::settings::env::source_date_epoch()
        .ok()
        .flatten()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or_else(std::time::SystemTime::now);
    humantime::format_rfc3339_seconds(when).to_string()
}
