//! Check results, stable check IDs and the expected-platform model shared by every check.

pub mod elf;
pub mod image;
pub mod run;

use crate::platform::Platform;
use serde::Serialize;

/// Stable check IDs: reports, config and docs use these strings.
pub mod ids {
    pub const ELF_FORMAT: &str = "elf.format";
    pub const ELF_MACHINE: &str = "elf.machine";
    pub const ELF_ABI: &str = "elf.abi";
    pub const ELF_INTERP: &str = "elf.interp";
    pub const ELF_INTERP_PRESENT: &str = "elf.interp-present";
    pub const ELF_NEEDED: &str = "elf.needed";
    pub const ELF_IMPURE: &str = "elf.impure";
    pub const RUN_EXEC: &str = "run.exec";
    pub const RUN_OUTPUT: &str = "run.output";
    pub const NIX_EVAL: &str = "nix.eval";
    pub const NIX_BUILD: &str = "nix.build";
    pub const BLOB_DIGEST: &str = "blob.digest";
    pub const BLOB_SIZE: &str = "blob.size";
    pub const LAYER_DIFF_ID: &str = "layer.diff-id";
    pub const IMAGE_CONFIG_PLATFORM: &str = "image.config-platform";
    pub const IMAGE_BINARIES: &str = "image.binaries";
    pub const INDEX_PLATFORM: &str = "index.platform";
    pub const INDEX_DUPLICATE: &str = "index.duplicate";
    pub const INDEX_EXPECTED: &str = "index.expected";
    pub const INDEX_MEDIA_TYPES: &str = "index.media-types";

    /// Every check in report order: integrity, platform truth, binary, run.
    pub const ALL: &[&str] = &[
        NIX_EVAL,
        NIX_BUILD,
        BLOB_DIGEST,
        BLOB_SIZE,
        LAYER_DIFF_ID,
        INDEX_DUPLICATE,
        INDEX_EXPECTED,
        INDEX_MEDIA_TYPES,
        INDEX_PLATFORM,
        IMAGE_CONFIG_PLATFORM,
        IMAGE_BINARIES,
        ELF_FORMAT,
        ELF_MACHINE,
        ELF_ABI,
        ELF_INTERP,
        ELF_INTERP_PRESENT,
        ELF_NEEDED,
        ELF_IMPURE,
        RUN_EXEC,
        RUN_OUTPUT,
    ];

    /// Column order of the human matrix.
    pub const BINARY_CHECKS: &[&str] = &[
        ELF_FORMAT,
        ELF_MACHINE,
        ELF_ABI,
        ELF_INTERP,
        ELF_INTERP_PRESENT,
        ELF_NEEDED,
        ELF_IMPURE,
        RUN_EXEC,
        RUN_OUTPUT,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skip,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's verdict on one artifact. Failures carry expected, found, where and a fix.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CheckResult {
    pub fn new(id: &'static str, status: Status, message: impl Into<String>) -> Self {
        CheckResult {
            id,
            status,
            message: message.into(),
            expected: None,
            found: None,
            location: None,
            hint: None,
        }
    }
    pub fn pass(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(id, Status::Pass, message)
    }
    pub fn fail(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, message)
    }
    pub fn warn(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, message)
    }
    pub fn skip(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(id, Status::Skip, message)
    }
    pub fn expected(mut self, v: impl Into<String>) -> Self {
        self.expected = Some(v.into());
        self
    }
    pub fn found(mut self, v: impl Into<String>) -> Self {
        self.found = Some(v.into());
        self
    }
    pub fn at(mut self, v: impl Into<String>) -> Self {
        self.location = Some(v.into());
        self
    }
    pub fn hint(mut self, v: impl Into<String>) -> Self {
        self.hint = Some(v.into());
        self
    }

    /// The explanation of a finding, labelled, in the order every report shows it.
    pub fn details(&self) -> Vec<(&'static str, &str)> {
        [
            ("expected", &self.expected),
            ("found", &self.found),
            ("where", &self.location),
            ("fix", &self.hint),
        ]
        .into_iter()
        .filter_map(|(label, value)| value.as_deref().map(|v| (label, v)))
        .collect()
    }
}

/// The platform an artifact must be, and what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub platform: Platform,
    pub source: ExpectedSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum ExpectedSource {
    /// `--expect NAME`.
    Flag { name: String },
    /// A triple inside the Nix store name of the input.
    StoreName { store_name: String, triple: String },
    /// The image's config (`architecture`, `os`, `variant`).
    ImageConfig { config: String },
    /// The target it was built for (`mab-verify demo`, and later `build`).
    BuildTarget { target: String },
    /// Nothing else said: the binary's own headers.
    Binary,
}

impl ExpectedSource {
    pub fn describe(&self) -> String {
        match self {
            ExpectedSource::Flag { name } => format!("--expect {name}"),
            ExpectedSource::StoreName { store_name, triple } => {
                format!("store name {store_name} (triple {triple})")
            }
            ExpectedSource::BuildTarget { target } => format!("the build target {target}"),
            ExpectedSource::ImageConfig { config } => format!("the image config {config}"),
            ExpectedSource::Binary => "the binary's own headers".to_string(),
        }
    }
}
