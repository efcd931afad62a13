//! Images and indexes: formats written by us and by umoci/skopeo, platform truth, broken and
//! hostile archives, and runs of every platform's entrypoint under qemu.

use crate::harness;
use crate::support;

use harness::{check_of, command, mab, run_cmd, status_of};
use mab_verify::platform::Platform;
use rstest::rstest;
use serde_json::Value;
use std::path::Path;
use support::images::{ImageFixtures, images};
use support::{expected_hello, row};

fn image_artifacts(json: &Value) -> Vec<&Value> {
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .collect()
}

fn index_artifact(json: &Value) -> &Value {
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "index")
        .expect("an index artifact")
}

type Pick = fn(&ImageFixtures, &mab_verify::platform::Arch) -> Option<std::path::PathBuf>;

#[rstest]
fn every_format_of_every_platform_verifies_and_runs(
    #[values("x86_64", "aarch64", "armv7l", "riscv64")] key: &str,
    #[values(
        ("docker-archive.tar.gz", (|f, a| f.docker_archive_for(a).map(Path::to_path_buf)) as Pick),
        ("oci-layout", (|f, a| f.oci_layout_for(a).map(Path::to_path_buf)) as Pick),
        ("oci-archive", (|f, a| f.oci_archive_for(a).map(Path::to_path_buf)) as Pick),
        ("umoci-layout", (|f, a| f.umoci_layout_for(a).map(Path::to_path_buf)) as Pick),
        ("skopeo-docker-archive", (|f, a| f.skopeo_docker_archive_for(a).map(Path::to_path_buf)) as Pick),
        ("skopeo-oci-archive", (|f, a| f.skopeo_oci_archive_for(a).map(Path::to_path_buf)) as Pick),
    )]
    format: (&str, Pick),
) {
    let arch = row(&format!("{key}-linux"));
    let path =
        format.1(images(), arch).unwrap_or_else(|| panic!("no {} fixture for {key}", format.0));
    let out = mab(["--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{} {key}: {}", format.0, out.stdout);
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), 1, "{}", out.stdout);
    let img = imgs[0];
    assert_eq!(img["platform"], Platform::linux(arch).oci());
    assert_eq!(img["run"]["stdout"], expected_hello(arch), "{img:#}");
    assert!(
        img["image"]["entrypoint"]
            .as_str()
            .unwrap()
            .ends_with("/bin/multi-arch-demo")
    );
    for id in [
        "blob.digest",
        "layer.diff-id",
        "image.config-platform",
        "image.binaries",
        "elf.needed",
        "run.output",
    ] {
        // umoci writes arm with no variant: a warning to add it (issue 16).
        let no_variant = img["image"]["config_platform"] != img["platform"];
        let want = if id == "image.config-platform" && no_variant {
            "warn"
        } else {
            "pass"
        };
        assert_eq!(
            status_of(img, id),
            want,
            "{id} on {} {key}: {:#}",
            format.0,
            check_of(img, id)
        );
    }
}

#[rstest]
#[case::layout(|f: &ImageFixtures| f.multi_layout.clone())]
#[case::archive(|f: &ImageFixtures| f.multi_archive.clone())]
#[case::nested_index(|f: &ImageFixtures| f.nested_index.clone())]
#[case::docker_manifest_list(|f: &ImageFixtures| f.docker_manifest_list.clone())]
fn a_three_platform_index_verifies_every_platform(
    #[case] pick: fn(&ImageFixtures) -> std::path::PathBuf,
) {
    let f = images();
    let path = pick(f);
    let mut args = vec!["--format".to_string(), "json".into()];
    for arch in &f.multi_rows {
        args.extend(["--expect".into(), Platform::linux(arch).oci()]);
    }
    args.push(path.display().to_string());
    let out = mab(&args);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), f.multi_rows.len());
    for arch in &f.multi_rows {
        let img = imgs
            .iter()
            .find(|i| i["platform"] == Platform::linux(arch).oci())
            .expect("image of each platform");
        assert_eq!(img["run"]["stdout"], expected_hello(arch));
        assert_eq!(status_of(img, "index.platform"), "pass");
    }
    let index = index_artifact(&json);
    for id in ["index.duplicate", "index.expected", "index.media-types"] {
        assert_eq!(status_of(index, id), "pass", "{id}: {index:#}");
    }
}

#[rstest]
#[case::zstd(|f: &ImageFixtures| f.zstd_layout.clone(), "zstd")]
#[case::uncompressed(|f: &ImageFixtures| f.uncompressed_layout.clone(), "none")]
fn zstd_and_uncompressed_layers_are_read(
    #[case] pick: fn(&ImageFixtures) -> std::path::PathBuf,
    #[case] compression: &str,
) {
    let out = mab(["--format", "json", pick(images()).to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let json = out.json();
    let img = image_artifacts(&json)[0];
    let layers = img["image"]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    assert!(
        layers.iter().all(|l| l["compression"] == compression),
        "{layers:#?}"
    );
    assert_eq!(status_of(img, "layer.diff-id"), "pass");
}

#[test]
fn platform_selects_one_image_of_an_index() {
    let f = images();
    let out = mab([
        "--format",
        "json",
        "--platform",
        "linux/arm64",
        f.multi_archive.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0]["platform"], "linux/arm64");
}

#[test]
fn a_missing_or_unexpected_platform_fails_index_expected() {
    let f = images();
    let archive = f.multi_archive.to_str().unwrap();
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        "linux/amd64",
        "--expect",
        "linux/s390x",
        archive,
    ]);
    assert_eq!(out.code, 1);
    let json = out.json();
    let c = check_of(index_artifact(&json), "index.expected").clone();
    assert_eq!(c["status"], "fail");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("missing linux/s390x") && msg.contains("unexpected linux/arm64"),
        "{msg}"
    );
    let allowed = mab([
        "--no-run",
        "--format",
        "json",
        "--allow-extra",
        "--expect",
        "linux/amd64",
        archive,
    ]);
    assert_eq!(allowed.code, 0, "{}", allowed.stdout);
}

struct Broken {
    name: &'static str,
    failing: &'static str,
    says: &'static str,
}

#[rstest]
#[case(Broken { name: "lying_config", failing: "image.config-platform", says: "linux/arm64" })]
#[case(Broken { name: "swapped_index", failing: "index.platform", says: "its config says" })]
#[case(Broken { name: "softfloat_v7", failing: "elf.abi", says: "soft-float" })]
#[case(Broken { name: "duplicate_platform", failing: "index.duplicate", says: "linux/arm64" })]
#[case(Broken { name: "missing_blob", failing: "blob.digest", says: "is missing" })]
#[case(Broken { name: "digest_mismatch", failing: "blob.digest", says: "hashes to" })]
#[case(Broken { name: "diff_id_mismatch", failing: "layer.diff-id", says: "uncompresses to" })]
#[case(Broken { name: "truncated_blob", failing: "blob.digest", says: "truncated" })]
fn broken_images_fail_with_the_right_check(#[case] case: Broken) {
    let dir = images().dir.join("broken").join(case.name);
    let out = mab(["--no-run", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}: {}{}", case.name, out.stdout, out.stderr);
    let json = out.json();
    let hit = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["checks"].as_array().unwrap())
        .find(|c| c["id"] == case.failing && c["status"] == "fail")
        .unwrap_or_else(|| {
            panic!(
                "{}: no failing {} in {}",
                case.name, case.failing, out.stdout
            )
        });
    let text = format!("{} {} {}", hit["message"], hit["found"], hit["location"]);
    assert!(text.contains(case.says), "{}: {hit:#}", case.name);
    assert!(hit["hint"].as_str().is_some_and(|h| !h.is_empty()));
}

#[test]
fn the_lying_image_names_its_outliers() {
    let out = mab([
        "--no-run",
        "--format",
        "json",
        images().broken.lying_config.to_str().unwrap(),
    ]);
    let json = out.json();
    let img = image_artifacts(&json)[0];
    assert_eq!(img["platform"], "linux/arm64");
    let outliers = img["image"]["outliers"].as_array().unwrap();
    assert!(!outliers.is_empty());
    assert!(
        outliers.iter().all(|o| o["platform"] == "linux/arm64"),
        "{outliers:#?}"
    );
    assert_eq!(img["image"]["config_platform"], "linux/amd64");
}

#[test]
fn mixed_media_types_warn_and_fail_only_with_strict() {
    let path = images()
        .broken
        .mixed_media_types
        .to_str()
        .unwrap()
        .to_string();
    let out = mab(["--no-run", "--format", "json", &path]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        status_of(index_artifact(&out.json()), "index.media-types"),
        "warn"
    );
    assert_eq!(mab(["--no-run", "--strict", &path]).code, 1);
}

/// Runs mab-verify with a private TMPDIR and working directory, and proves that it exits 2,
/// names the problem, and leaves nothing behind in either.
fn assert_refused(path: &Path, config: Option<&str>, says: &str) {
    let canary = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.current_dir(canary.path()).env("TMPDIR", tmp.path());
    if let Some(c) = config {
        let cfg = tmp.path().join("mab.toml");
        std::fs::write(&cfg, c).unwrap();
        cmd.arg("--config").arg(&cfg);
    }
    cmd.arg(path);
    let out = run_cmd(cmd);
    assert_eq!(
        out.code,
        2,
        "{}: {}{}",
        path.display(),
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(says),
        "{}: {}",
        path.display(),
        out.stderr
    );
    let left: Vec<_> = std::fs::read_dir(canary.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "wrote into the working directory: {left:?}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "mab.toml")
        .collect();
    assert!(left.is_empty(), "left temporary files: {left:?}");
}

#[rstest]
#[case("dotdot", "'..'")]
#[case("absolute", "absolute path")]
#[case("symlink_escape", "points outside")]
#[case("symlink_chain_escape", "outside")]
#[case("hardlink_escape", "hardlink")]
#[case("device_node", "device node")]
#[case("duplicate_entry", "appears twice")]
#[case("whiteout_dotdot", "whiteout")]
fn hostile_layers_are_refused(#[case] name: &str, #[case] says: &str) {
    assert_refused(&images().dir.join("hostile").join(name), None, says);
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let limit = "[limits]\nmax_uncompressed_bytes = 67108864\n";
    assert_refused(
        &images().hostile.gzip_bomb,
        Some(limit),
        "67108864-byte limit",
    );
}

#[rstest]
#[case("json_too_large", "4194304-byte limit")]
#[case("deep_nesting", "nest deeper than 8")]
fn malformed_archives_exit_2(#[case] name: &str, #[case] says: &str) {
    assert_refused(&images().dir.join("broken").join(name), None, says);
}

/// The three-platform layout with its amd64 entry replaced by the lying image (config says
/// amd64, binaries are arm64): blobs merged, index rewritten.
pub(crate) fn index_with_one_lying_platform(dir: &Path) -> std::path::PathBuf {
    let f = images();
    let out = dir.join("lying-index");
    let copy = |from: &Path| {
        for entry in std::fs::read_dir(from.join("blobs/sha256"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(
                entry.path(),
                out.join("blobs/sha256").join(entry.file_name()),
            )
            .unwrap();
        }
    };
    std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    std::fs::copy(f.multi_layout.join("oci-layout"), out.join("oci-layout")).unwrap();
    copy(&f.multi_layout);
    copy(&f.broken.lying_config);
    let lying: Value =
        serde_json::from_slice(&std::fs::read(f.broken.lying_config.join("index.json")).unwrap())
            .unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(f.multi_layout.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array_mut().unwrap();
    let amd64 = entries
        .iter()
        .position(|e| e["platform"]["architecture"] == "amd64")
        .expect("an amd64 entry");
    let mut liar = lying["manifests"][0].clone();
    liar.as_object_mut().unwrap().remove("annotations");
    entries[amd64] = liar;
    std::fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    out
}

fn lying_index_report(format: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let layout = index_with_one_lying_platform(dir.path());
    let mut cmd = command();
    cmd.current_dir(dir.path()).args([
        "--format",
        format,
        "--expect",
        "linux/amd64",
        "--expect",
        "linux/arm64",
        "--expect",
        "linux/arm/v7",
        layout.file_name().unwrap().to_str().unwrap(),
    ]);
    let out = run_cmd(cmd);
    (out.code, out.stdout)
}

/// The lying-index snapshots' filters: the usual ones, and a rootfs directory if one shows.
fn lying_filters() -> insta::Settings {
    let mut s = harness::filtered_settings(&[]);
    s.add_filter(r"[^\s\x22]*/mab-rootfs-[A-Za-z0-9]+", "[rootfs]");
    s
}

#[test]
fn human_report_of_an_index_with_one_lying_platform() {
    let (code, text) = lying_index_report("human");
    assert_eq!(code, 1);
    lying_filters().bind(|| insta::assert_snapshot!("index_lying_human", text));
}

#[test]
fn json_report_of_an_index_with_one_lying_platform() {
    let (code, text) = lying_index_report("json");
    assert_eq!(code, 1);
    lying_filters().bind(|| insta::assert_snapshot!("index_lying_json", text));
}

/// A copy of one platform's layout whose manifest declares the wrong size for its config.
fn config_size_lie(dir: &Path) -> std::path::PathBuf {
    let src = images().oci_layout_for(row("aarch64-linux")).unwrap();
    let out = dir.join("config-size-lie");
    std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    for entry in std::fs::read_dir(src.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(
            entry.path(),
            out.join("blobs/sha256").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::copy(src.join("oci-layout"), out.join("oci-layout")).unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(src.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(src.join("blobs/sha256").join(&digest)).unwrap())
            .unwrap();
    let size = manifest["config"]["size"].as_u64().unwrap();
    manifest["config"]["size"] = (size + 7).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let new_digest = mab_verify::inspect::sha256_hex(&bytes);
    std::fs::write(out.join("blobs/sha256").join(&new_digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{new_digest}").into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    out
}

#[test]
fn a_config_descriptor_with_the_wrong_size_fails_blob_size() {
    let dir = tempfile::tempdir().unwrap();
    let layout = config_size_lie(dir.path());
    let out = mab(["--no-run", "--format", "json", layout.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let img = image_artifacts(&json)[0];
    let c = check_of(img, "blob.size");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["message"].as_str().unwrap().contains("config"), "{c:#}");
    assert_eq!(status_of(img, "blob.digest"), "pass");
}

/// Found by the `archive` fuzz target: a tar header claiming a 512 MiB binary in a 6 KiB
/// archive. Under a 400 MB address-space limit the reader must refuse it, not abort.
#[rstest]
#[case("archive/oom-declared-size-512MiB.oci.tar")]
fn a_header_claiming_a_huge_file_allocates_nothing_up_front(#[case] name: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(name);
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 400000; exec \"$0\" --no-run \"$1\""])
        .arg(env!("CARGO_BIN_EXE_mab-verify"))
        .arg(&file)
        .env("XDG_CACHE_HOME", crate::harness::fresh_cache_home())
        .output()
        .unwrap();
    let code = out.status.code();
    assert_eq!(
        code,
        Some(2),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
