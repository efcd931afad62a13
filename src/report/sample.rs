//! Constructed reports for the renderers' unit snapshot tests (no toolchain, no images).

use super::subject::Subject;
use super::{Artifact, ExpectedReport, ImageReport, Report};
use crate::check::{CheckResult, ExpectedSource, ids};
use crate::image::{Compression, LayerFacts, RootDescriptor};
use crate::run::RunReport;
use crate::run::exec::Captured;

const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const AMD64: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const ARM64: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
const CONFIG: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
const LAYER: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
const BINARY: &str = "6666666666666666666666666666666666666666666666666666666666666666";

fn captured(stdout: &str, ms: u64) -> Captured {
    Captured {
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        duration_ms: ms,
        stdout: stdout.into(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        stdout_bytes: stdout.len() as u64,
        stderr_bytes: 0,
        survivors: Vec::new(),
    }
}

fn image(
    input: &str,
    platform: &str,
    digest: &str,
    checks: Vec<CheckResult>,
    run: RunReport,
) -> Artifact {
    Artifact {
        path: format!("{input}@{platform}"),
        resolved_path: input.into(),
        sha256: digest.trim_start_matches("sha256:").into(),
        size: 0,
        kind: "image",
        platform: Some(platform.into()),
        expected: Some(ExpectedReport {
            platform: platform.into(),
            source: ExpectedSource::ImageConfig {
                config: CONFIG.into(),
            },
        }),
        facts: None,
        image: Some(ImageReport {
            digest: digest.into(),
            media_type: crate::image::docs::OCI_MANIFEST.into(),
            config_digest: CONFIG.into(),
            index_platform: Some(platform.into()),
            config_platform: platform.into(),
            layers: vec![LayerFacts {
                digest: LAYER.into(),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                compression: Some(Compression::Gzip),
                diff_id: Some(LAYER.into()),
                declared_diff_id: Some(LAYER.into()),
                files: 3,
                damage: None,
                from_cache: false,
            }],
            entrypoint: Some("/bin/hello".into()),
            entrypoint_sha256: Some(BINARY.into()),
            executables: 1,
            outliers: Vec::new(),
            listed_in: vec!["index.json".into()],
            attached: Vec::new(),
        }),
        closure: None,
        run,
        checks,
        subject: None,
    }
}

/// A multi-arch OCI archive: an index and two images. With `failing`, the arm64 image holds
/// an amd64 binary (elf.machine fails, its dependants do not apply) and a check is skipped.
pub fn multi_arch(failing: bool) -> Report {
    let input = "app.oci.tar";
    let tmp = std::env::temp_dir();
    let tmp = tmp.display().to_string();
    let tmp = tmp.trim_end_matches('/');
    let rootfs = format!("{tmp}/mab-rootfs-Ab12Cd");
    let index = Artifact {
        path: format!("{input}@index"),
        resolved_path: input.into(),
        sha256: INDEX.trim_start_matches("sha256:").into(),
        size: 612,
        kind: "index",
        platform: None,
        expected: None,
        facts: None,
        image: None,
        closure: None,
        run: RunReport::NotRun {
            reason: "an index has nothing to run".into(),
        },
        checks: vec![
            CheckResult::pass(ids::BLOB_DIGEST, "2 blobs match their digests"),
            CheckResult::pass(ids::INDEX_DUPLICATE, "no platform twice"),
            CheckResult::pass(ids::INDEX_EXPECTED, "linux/amd64, linux/arm64 present"),
        ],
        subject: None,
    };
    let good = |platform: &str| {
        vec![
            CheckResult::pass(ids::BLOB_DIGEST, "4 blobs match their digests"),
            CheckResult::pass(
                ids::IMAGE_CONFIG_PLATFORM,
                format!("config says {platform}"),
            ),
            CheckResult::pass(ids::ELF_MACHINE, "machine matches"),
            CheckResult::not_applicable(ids::ELF_IMPURE, "not a Nix output"),
            CheckResult::pass(ids::ELF_NEEDED, "no libraries"),
            CheckResult::pass(ids::RUN_EXEC, "exit 0 (qemu)"),
            CheckResult::pass(ids::RUN_OUTPUT, "printed the greeting"),
        ]
    };
    let amd64 = image(
        input,
        "linux/amd64",
        AMD64,
        good("linux/amd64"),
        RunReport::Ran {
            runner: "native, sealed, host root read-only".into(),
            command: vec!["/bin/hello".into()],
            captured: captured("Hello from linux/x86_64!\n", 12),
            from_cache: false,
        },
    );
    let arm64 = if failing {
        image(
            input,
            "linux/arm64",
            ARM64,
            vec![
                CheckResult::pass(ids::BLOB_DIGEST, "4 blobs match their digests"),
                CheckResult::fail(ids::ELF_MACHINE, "the entrypoint is for x86-64, not aarch64")
                    .expected("EM_AARCH64 (183), 64-bit, little-endian")
                    .found("EM_X86_64 (62), 64-bit, little-endian")
                    .at("/bin/hello")
                    .hint("build the arm64 image from the aarch64 output (pkgsCross.aarch64-multiplatform)"),
                CheckResult::not_applicable(ids::ELF_NEEDED, crate::check::NOT_THIS_MACHINE),
                CheckResult::skip(ids::RUN_EXEC, "no qemu-aarch64 on PATH")
                    .hint("apt-get install qemu-user"),
                CheckResult::not_applicable(ids::RUN_OUTPUT, crate::check::NOT_THIS_MACHINE),
            ],
            RunReport::Skipped {
                reason: "no qemu-aarch64 on PATH".into(),
                hint: "apt-get install qemu-user".into(),
            },
        )
    } else {
        image(
            input,
            "linux/arm64",
            ARM64,
            good("linux/arm64"),
            RunReport::Ran {
                runner: format!("qemu-aarch64, sealed in {rootfs}"),
                command: vec![
                    format!("{rootfs}/qemu-aarch64"),
                    "-L".into(),
                    "/".into(),
                    "/bin/hello".into(),
                ],
                captured: captured("Hello from linux/aarch64!\n", 340),
                from_cache: false,
            },
        )
    };
    let mut artifacts = vec![index, amd64, arm64];
    let root = RootDescriptor {
        digest: INDEX.into(),
        size: 612,
        media_type: crate::image::docs::OCI_INDEX.into(),
        ref_name: Some("latest".into()),
    };
    artifacts[0].subject = Some(Subject::of_images(input, Some(&root), &artifacts));
    let mut report = Report::new(vec![input.into()], artifacts, false);
    report.generated_at = "2024-01-02T03:04:05Z".into();
    report
}
