//! The report model every output format is built from: artifacts, their facts and check results.

pub mod attestation;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
#[cfg(test)]
mod sample;
pub mod subject;
#[cfg(test)]
mod tests;

use crate::check::{CheckResult, ExpectedSource, Status};
use crate::inspect::Identity;
use crate::inspect::closure::ClosureFacts;
use crate::run::RunReport;
use serde::Serialize;

/// Bump on any incompatible change to the JSON shape.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// RFC 3339, UTC; `SOURCE_DATE_EPOCH` when set, so reports can be reproduced.
    pub generated_at: String,
    pub inputs: Vec<String>,
    /// What was verified, first: each input's reference, root digest and platforms.
    pub subjects: Vec<subject::Subject>,
    pub artifacts: Vec<Artifact>,
    pub summary: Summary,
    pub verdict: Verdict,
    /// What varies between runs and machines (durations); absent when `SOURCE_DATE_EPOCH` is
    /// set, so a reproducible report is byte-identical run to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
}

/// Durations and host details: the one part of a report that is not reproducible.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Host {
    pub note: &'static str,
    /// Each run's wall time, by artifact path.
    pub durations_ms: std::collections::BTreeMap<String, u64>,
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
    /// The subject of the input this artifact came from, carried to `Report::new`, which
    /// moves it to `Report::subjects`.
    #[serde(skip)]
    pub subject: Option<subject::Subject>,
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
    pub entrypoint_sha256: Option<String>,
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
    pub fn new(inputs: Vec<String>, mut artifacts: Vec<Artifact>, strict: bool) -> Report {
        let subjects = subject::collect(&inputs, &mut artifacts);
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
            subjects,
            artifacts,
            summary,
            verdict: if failed { Verdict::Fail } else { Verdict::Pass },
            host: None,
        }
        .with_host()
    }

    /// Durations go in the host section, unless the report is to be reproducible.
    fn with_host(mut self) -> Report {
        if reproducible() {
            return self;
        }
        let durations_ms = self
            .artifacts
            .iter()
            .filter_map(|a| match &a.run {
                RunReport::Ran { captured, .. } => Some((a.path.clone(), captured.duration_ms)),
                _ => None,
            })
            .collect();
        self.host = Some(Host {
            note: "varies between runs and machines; absent when SOURCE_DATE_EPOCH is set",
            durations_ms,
        });
        self
    }

    /// A run's duration in seconds as reports that must be reproducible show it: 0 when
    /// `SOURCE_DATE_EPOCH` is set.
    pub fn seconds(&self, artifact: &Artifact) -> f64 {
        self.host
            .as_ref()
            .and_then(|h| h.durations_ms.get(&artifact.path))
            .map_or(0.0, |ms| *ms as f64 / 1000.0)
    }

    /// `text` with this run's temporary directories named for what they hold
    /// (`<rootfs of linux/arm64>`), so the same inputs give the same report anywhere.
    pub fn anonymise(&self, text: &str) -> String {
        let tmp = std::env::temp_dir();
        let tmp = tmp.to_string_lossy();
        let tmp = tmp.trim_end_matches('/');
        let pattern = format!(r"{}/(mab-[a-z]+-|\.tmp)[A-Za-z0-9_]+", regex::escape(tmp));
        let Ok(re) = regex::Regex::new(&pattern) else {
            return text.to_string();
        };
        let mut names: Vec<(String, String)> = Vec::new();
        for a in &self.artifacts {
            let RunReport::Ran {
                runner, command, ..
            } = &a.run
            else {
                continue;
            };
            for word in std::iter::once(runner).chain(command) {
                for m in re.find_iter(word) {
                    if m.as_str().contains("/mab-rootfs-") {
                        let platform = a.platform.as_deref().unwrap_or("this image");
                        names.push((m.as_str().to_string(), format!("<rootfs of {platform}>")));
                    }
                }
            }
        }
        let mut out = text.to_string();
        for (dir, name) in &names {
            out = out.replace(dir.as_str(), name);
        }
        re.replace_all(&out, "<temporary directory>").into_owned()
    }

    /// The check groups some artifact has, in [`GROUPS`] order: the columns of a compact matrix.
    pub fn groups(&self) -> Vec<&'static str> {
        GROUPS
            .iter()
            .filter(|g| {
                self.artifacts
                    .iter()
                    .any(|a| a.checks.iter().any(|c| group_of(c.id) == **g))
            })
            .copied()
            .collect()
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

/// `SOURCE_DATE_EPOCH` is set: reports must not vary run to run.
pub fn reproducible() -> bool {
    matches!(crate::settings::env::source_date_epoch(), Ok(Some(_)))
}

pub(crate) fn timestamp() -> String {
    let when = crate::settings::env::source_date_epoch()
        .ok()
        .flatten()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or_else(std::time::SystemTime::now);
    humantime::format_rfc3339_seconds(when).to_string()
}

/// Check groups of the compact matrices, in order.
pub const GROUPS: [&str; 7] = [
    "build", "binaries", "closure", "run", "image", "index", "other",
];

/// The group a check belongs to, by its ID's family (new checks fall in by their prefix).
pub fn group_of(id: &str) -> &'static str {
    match id.split_once('.').map_or(id, |(family, _)| family) {
        _ if matches!(id, "elf.interp-present" | "elf.needed" | "elf.impure") => "closure",
        "nix" => "build",
        "elf" => "binaries",
        "run" => "run",
        "blob" | "layer" | "image" => "image",
        "index" => "index",
        _ => "other",
    }
}

/// How bad a status is, for the one mark of a group: does-not-apply is the mildest.
fn severity(s: Status) -> u8 {
    match s {
        Status::NotApplicable => 0,
        Status::Pass => 1,
        Status::Skip => 2,
        Status::Warn => 3,
        Status::Fail => 4,
    }
}

impl Artifact {
    /// The worst status of this artifact's checks in `group`; `None` when it has none there.
    pub fn group_status(&self, group: &str) -> Option<Status> {
        self.checks
            .iter()
            .filter(|c| group_of(c.id) == group)
            .map(|c| c.status)
            .max_by_key(|s| severity(*s))
    }
}
