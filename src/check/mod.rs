//! Check results, stable check IDs and the expected-platform model shared by every check.

pub mod catalogue;
pub mod elf;
pub mod image;
pub mod nix;
pub mod run;
pub mod structure;

use crate::platform::Platform;
use serde::Serialize;

pub use catalogue::{CheckId, Severity};

/// Stable check IDs as strings, thin aliases of the catalogue (`CheckId`).
pub mod ids {
    use super::CheckId;

    pub const ELF_FORMAT: &str = CheckId::ElfFormat.as_str();
    pub const ELF_MACHINE: &str = CheckId::ElfMachine.as_str();
    pub const ELF_ABI: &str = CheckId::ElfAbi.as_str();
    pub const ELF_INTERP: &str = CheckId::ElfInterp.as_str();
    pub const ELF_INTERP_PRESENT: &str = CheckId::ElfInterpPresent.as_str();
    pub const ELF_NEEDED: &str = CheckId::ElfNeeded.as_str();
    pub const ELF_IMPURE: &str = CheckId::ElfImpure.as_str();
    pub const RUN_EXEC: &str = CheckId::RunExec.as_str();
    pub const RUN_OUTPUT: &str = CheckId::RunOutput.as_str();
    pub const NIX_BUILD: &str = CheckId::NixBuild.as_str();
    pub const BLOB_DIGEST: &str = CheckId::BlobDigest.as_str();
    pub const BLOB_SIZE: &str = CheckId::BlobSize.as_str();
    pub const LAYER_DIFF_ID: &str = CheckId::LayerDiffId.as_str();
    pub const IMAGE_CONFIG_PLATFORM: &str = CheckId::ImageConfigPlatform.as_str();
    pub const IMAGE_BINARIES: &str = CheckId::ImageBinaries.as_str();
    pub const INDEX_PLATFORM: &str = CheckId::IndexPlatform.as_str();
    pub const INDEX_DUPLICATE: &str = CheckId::IndexDuplicate.as_str();
    pub const INDEX_EXPECTED: &str = CheckId::IndexExpected.as_str();
    pub const INDEX_MEDIA_TYPES: &str = CheckId::IndexMediaTypes.as_str();
    pub const INDEX_EMPTY: &str = CheckId::IndexEmpty.as_str();
    pub const NIX_EVAL: &str = CheckId::NixEval.as_str();
    pub const IMAGE_ENTRYPOINT: &str = CheckId::ImageEntrypoint.as_str();

    /// Every check in report order: integrity, platform truth, binary, run.
    pub const ALL: &[&str] = &[
        NIX_BUILD,
        NIX_EVAL,
        BLOB_DIGEST,
        BLOB_SIZE,
        LAYER_DIFF_ID,
        INDEX_DUPLICATE,
        INDEX_EXPECTED,
        INDEX_MEDIA_TYPES,
        INDEX_EMPTY,
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
        IMAGE_ENTRYPOINT,
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
    /// Does not apply to this artifact, or is meaningless after another check's failure.
    #[serde(rename = "not-applicable")]
    NotApplicable,
    /// Could not be checked here (no emulator, no sysroot): something a user can fix.
    Skip,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::NotApplicable => "not-applicable",
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
    pub fn not_applicable(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(id, Status::NotApplicable, message)
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

/// Checks that mean nothing once `elf.machine` fails (`CheckId::depends_on`): the loader, the
/// libraries and the run.
pub const NEEDS_MACHINE: &[&str] = &[
    ids::ELF_INTERP,
    ids::ELF_INTERP_PRESENT,
    ids::ELF_NEEDED,
    ids::RUN_EXEC,
    ids::RUN_OUTPUT,
];

/// What a check that depends on the machine says when the machine is wrong.
pub const NOT_THIS_MACHINE: &str = "not checked: the binary is not for this machine";

/// Whether `checks` hold a failed `elf.machine`.
pub fn wrong_machine(checks: &[CheckResult]) -> bool {
    checks
        .iter()
        .any(|c| c.id == ids::ELF_MACHINE && c.status == Status::Fail)
}

/// One cause, one failure: after a failed `elf.machine`, the checks that follow from it are
/// not applicable instead of failing too.
pub fn apply_dependencies(checks: &mut [CheckResult]) {
    if wrong_machine(checks) {
        for c in checks.iter_mut().filter(|c| NEEDS_MACHINE.contains(&c.id)) {
            *c = CheckResult::not_applicable(c.id, NOT_THIS_MACHINE);
        }
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
