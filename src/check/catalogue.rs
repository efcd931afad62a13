//! The check catalogue: the one place a check's ID, title, severity, documentation and
//! dependencies live.

/// Every check, in report order: integrity, platform truth, binary, run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    NixBuild,
    NixEval,
    BlobDigest,
    BlobSize,
    LayerDiffId,
    IndexDuplicate,
    IndexExpected,
    IndexMediaTypes,
    IndexEmpty,
    IndexPlatform,
    ImageConfigPlatform,
    ImageBinaries,
    ElfFormat,
    ElfMachine,
    ElfAbi,
    ElfInterp,
    ElfInterpPresent,
    ElfNeeded,
    ElfImpure,
    RunExec,
    RunOutput,
    ImageEntrypoint,
}

/// What a failure of a check means for the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A failure fails the run.
    Error,
    /// Reported as a warning; fails the run only with `--strict`.
    Warning,
}

impl CheckId {
    pub const ALL: &[CheckId] = &[
        CheckId::NixBuild,
        CheckId::NixEval,
        CheckId::BlobDigest,
        CheckId::BlobSize,
        CheckId::LayerDiffId,
        CheckId::IndexDuplicate,
        CheckId::IndexExpected,
        CheckId::IndexMediaTypes,
        CheckId::IndexEmpty,
        CheckId::IndexPlatform,
        CheckId::ImageConfigPlatform,
        CheckId::ImageBinaries,
        CheckId::ElfFormat,
        CheckId::ElfMachine,
        CheckId::ElfAbi,
        CheckId::ElfInterp,
        CheckId::ElfInterpPresent,
        CheckId::ElfNeeded,
        CheckId::ElfImpure,
        CheckId::RunExec,
        CheckId::RunOutput,
        CheckId::ImageEntrypoint,
    ];

    /// The stable ID reports, config and docs use.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckId::NixBuild => "nix.build",
            CheckId::NixEval => "nix.eval",
            CheckId::BlobDigest => "blob.digest",
            CheckId::BlobSize => "blob.size",
            CheckId::LayerDiffId => "layer.diff-id",
            CheckId::IndexDuplicate => "index.duplicate",
            CheckId::IndexExpected => "index.expected",
            CheckId::IndexMediaTypes => "index.media-types",
            CheckId::IndexEmpty => "index.empty",
            CheckId::IndexPlatform => "index.platform",
            CheckId::ImageConfigPlatform => "image.config-platform",
            CheckId::ImageBinaries => "image.binaries",
            CheckId::ElfFormat => "elf.format",
            CheckId::ElfMachine => "elf.machine",
            CheckId::ElfAbi => "elf.abi",
            CheckId::ElfInterp => "elf.interp",
            CheckId::ElfInterpPresent => "elf.interp-present",
            CheckId::ElfNeeded => "elf.needed",
            CheckId::ElfImpure => "elf.impure",
            CheckId::RunExec => "run.exec",
            CheckId::RunOutput => "run.output",
            CheckId::ImageEntrypoint => "image.entrypoint",
        }
    }

    pub fn parse(id: &str) -> Option<CheckId> {
        CheckId::ALL.iter().copied().find(|c| c.as_str() == id)
    }

    /// A few words, for headings.
    pub const fn title(self) -> &'static str {
        match self {
            CheckId::NixBuild => "nix build",
            CheckId::NixEval => "nix eval",
            CheckId::BlobDigest => "blob digests",
            CheckId::BlobSize => "blob sizes",
            CheckId::LayerDiffId => "layer diff_ids",
            CheckId::IndexDuplicate => "no duplicate platform",
            CheckId::IndexExpected => "expected platforms present",
            CheckId::IndexMediaTypes => "consistent media types",
            CheckId::IndexEmpty => "something verified",
            CheckId::IndexPlatform => "index platform truthful",
            CheckId::ImageConfigPlatform => "config platform truthful",
            CheckId::ImageBinaries => "every binary of the platform",
            CheckId::ElfFormat => "executable format",
            CheckId::ElfMachine => "machine, class, byte order",
            CheckId::ElfAbi => "float ABI and ISA version",
            CheckId::ElfInterp => "loader name",
            CheckId::ElfInterpPresent => "loader present",
            CheckId::ElfNeeded => "libraries resolve",
            CheckId::ElfImpure => "pure Nix closure",
            CheckId::RunExec => "it runs",
            CheckId::RunOutput => "it prints what it should",
            CheckId::ImageEntrypoint => "an entrypoint to run",
        }
    }

    /// What a pass proves: the README's check table says exactly this.
    pub const fn docs(self) -> &'static str {
        match self {
            CheckId::NixEval => {
                "a flake target that was asked for evaluates; a broken one is named with nix's error and does not hide the others (`mab-verify build`)"
            }
            CheckId::NixBuild => {
                "a flake target built, and something says which platform it is for (`mab-verify build`)"
            }
            CheckId::BlobDigest => {
                "every referenced blob is present and hashes to its descriptor's digest"
            }
            CheckId::BlobSize => "every blob's length equals its descriptor's size",
            CheckId::LayerDiffId => {
                "the config's `rootfs.diff_ids` are the digests of the uncompressed layers"
            }
            CheckId::IndexDuplicate => "no platform listed twice",
            CheckId::IndexExpected => {
                "every `--expect` (else `mab.toml` `expect`) platform present among an index's images, or among the binaries given with several `--expect` (a `set` artifact), nothing else unless `--allow-extra`"
            }
            CheckId::IndexEmpty => {
                "the input names at least one image: an index with no manifests verified nothing and fails"
            }
            CheckId::IndexMediaTypes => {
                "warning: OCI and Docker media types mixed in one index (podman does this)"
            }
            CheckId::IndexPlatform => {
                "each index entry's platform matches its config and its binaries"
            }
            CheckId::ImageConfigPlatform => {
                "the config's os/architecture/variant is what the entrypoint's binary is"
            }
            CheckId::ImageBinaries => {
                "every executable in the final rootfs is of the image's platform (outliers named)"
            }
            CheckId::ElfFormat => {
                "an executable of the expected kind (ELF, Mach-O, PE); truncated or foreign files fail"
            }
            CheckId::ElfMachine => "machine, class and byte order match the platform",
            CheckId::ElfAbi => {
                "float ABI and ARM version (armhf v7 hard-float vs armel v5 soft-float), RISC-V float ABI, MIPS n64, PowerPC ELFv2"
            }
            CheckId::ElfInterp => {
                "the loader is the platform's (glibc or musl) or a Nix store loader built for the same platform; static and static-pie recognised"
            }
            CheckId::ElfInterpPresent => {
                "the loader exists in the closure/sysroot and is itself an ELF of the platform"
            }
            CheckId::ElfNeeded => {
                "every DT_NEEDED resolves (RPATH, RUNPATH, `$ORIGIN`, default dirs) to a library of the platform, transitively"
            }
            CheckId::ElfImpure => {
                "warning: a Nix output whose loader or RUNPATH points outside `/nix/store`"
            }
            CheckId::RunExec => "it ran and exited 0 within the time limit",
            CheckId::RunOutput => {
                "its stdout matches the expectation (default `Hello from {os}/{arch}!`)"
            }
            CheckId::ImageEntrypoint => {
                "warning: the image config names no `Entrypoint` or `Cmd` (base and library images); every binary in it is still checked"
            }
        }
    }

    pub const fn severity(self) -> Severity {
        match self {
            CheckId::ElfImpure | CheckId::IndexMediaTypes | CheckId::ImageEntrypoint => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }

    /// The check whose failure makes this one meaningless (reported as not applicable).
    pub const fn depends_on(self) -> Option<CheckId> {
        match self {
            CheckId::ElfInterp
            | CheckId::ElfInterpPresent
            | CheckId::ElfNeeded
            | CheckId::RunExec
            | CheckId::RunOutput => Some(CheckId::ElfMachine),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for c in CheckId::ALL {
            assert_eq!(CheckId::parse(c.as_str()), Some(*c));
        }
        let mut ids: Vec<&str> = CheckId::ALL.iter().map(|c| c.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CheckId::ALL.len());
    }

    #[test]
    fn the_id_constants_are_the_catalogue() {
        let consts: Vec<&str> = crate::check::ids::ALL.to_vec();
        let catalogue: Vec<&str> = CheckId::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            consts, catalogue,
            "every ids::ALL entry needs a CheckId, in the same order"
        );
    }

    #[test]
    fn needs_machine_is_what_depends_on_the_machine() {
        let dependents: Vec<&str> = CheckId::ALL
            .iter()
            .filter(|c| c.depends_on() == Some(CheckId::ElfMachine))
            .map(|c| c.as_str())
            .collect();
        assert_eq!(dependents, crate::check::NEEDS_MACHINE);
    }

    #[test]
    fn the_readme_check_table_is_the_catalogue() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Checks").expect("a Checks section")..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let rows: Vec<(&str, &str)> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` | "))
            .map(|(id, rest)| (id, rest.strip_suffix(" |").unwrap_or(rest)))
            .collect();
        for c in CheckId::ALL {
            let row = rows.iter().find(|(id, _)| *id == c.as_str());
            assert_eq!(
                row.map(|(_, d)| *d),
                Some(c.docs()),
                "README check table row for {}",
                c.as_str()
            );
        }
        assert_eq!(
            rows.len(),
            CheckId::ALL.len(),
            "README documents a check the catalogue lacks"
        );
    }
}
