//! What an input lacks before its binaries can be checked: an index with no image, an
//! entrypoint absent from the rootfs, not a binary, or of no known platform.

use super::{CheckResult, ids};
use crate::image::ImageSet;

/// `index.empty`: an input that names no image verified nothing, which is no pass.
pub fn nothing_verified(set: &ImageSet) -> Option<CheckResult> {
    if !set.images.is_empty() {
        return None;
    }
    Some(
        CheckResult::fail(
            ids::INDEX_EMPTY,
            "nothing was verified: the index lists no image manifest",
        )
        .expected("at least one image manifest")
        .found(format!("{} index entries, no image", set.entries.len()))
        .at(set.path.display().to_string())
        .hint("point at the per-platform images, or rebuild the index from them (mab-verify assemble)"),
    )
}

/// `elf.format`: the program `Entrypoint`/`Cmd` names is not in the image's final rootfs.
pub fn entrypoint_not_in_image(program: &str, manifest_digest: &str) -> CheckResult {
    CheckResult::fail(
        ids::ELF_FORMAT,
        format!("the entrypoint {program} does not exist in the image"),
    )
    .expected(format!("{program} inside the image's rootfs"))
    .found("no such file")
    .at(format!("manifest {manifest_digest}"))
    .hint("add the program to the image contents, or fix Entrypoint/Cmd")
}

/// `elf.format` skipped: the entrypoint is a file, but no executable format (a script?).
pub fn entrypoint_not_a_binary(path: &str) -> CheckResult {
    CheckResult::skip(
        ids::ELF_FORMAT,
        format!("entrypoint {path} is not a binary (a script?)"),
    )
}

/// `elf.format`: no platform to hold the entrypoint to, from the config nor the binaries.
pub fn no_platform() -> CheckResult {
    CheckResult::fail(
        ids::ELF_FORMAT,
        "neither the config nor the binaries name a known platform",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn a_missing_entrypoint_names_the_program_and_the_manifest() {
        let r = entrypoint_not_in_image("/bin/app", "sha256:abc");
        assert_eq!((r.id, r.status), (ids::ELF_FORMAT, Status::Fail));
        assert!(r.message.contains("/bin/app"), "{r:?}");
        assert_eq!(r.location.as_deref(), Some("manifest sha256:abc"));
        assert_eq!(entrypoint_not_a_binary("/run.sh").status, Status::Skip);
        assert_eq!(no_platform().status, Status::Fail);
    }
}
