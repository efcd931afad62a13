//! `mab-verify demo --out DIR` keeps what it built, and the README's commands that name the
//! demo's files (the blocks marked `<!-- tests/demo_out.rs runs this block -->`) work on them as
//! written, pushes included (to a real registry on 127.0.0.1, put in place of 127.0.0.1:5000).

use crate::harness;
use crate::harness::registry;

use harness::{command, run_cmd, skopeo};
use mab_verify::demo::missing_toolchain;
use mab_verify::demo::output::{
    ARCHIVE, AUDIT_JSON, AUDIT_JUNIT, AUDIT_MARKDOWN, MARKER, binary_path, image_path,
};
use mab_verify::platform::{ARCHES, Platform};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const README_MARK: &str = "<!-- tests/demo_out.rs runs this block -->";
/// The registry address the README's push examples name.
const README_REGISTRY: &str = "127.0.0.1:5000";
/// Platforms the README's examples name; the demo must have built them.
const README_PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// Every row this machine can build, from the platform table.
fn buildable() -> Vec<Platform> {
    ARCHES
        .iter()
        .filter(|a| missing_toolchain(a).is_none())
        .map(Platform::linux)
        .collect()
}

fn demo(cwd: &Path, out: &str) -> harness::Outcome {
    let mut cmd = command();
    cmd.current_dir(cwd)
        .args(["demo", "--out", out, "--format", "json"]);
    run_cmd(cmd)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The platforms of an index as skopeo (an independent reader) lists them.
fn index_platforms(index: &[u8]) -> BTreeSet<String> {
    let index: Value = serde_json::from_slice(index).unwrap();
    index["manifests"]
        .as_array()
        .expect("an image index")
        .iter()
        .map(|m| {
            let p = &m["platform"];
            match p["variant"].as_str() {
                Some(v) => format!(
                    "{}/{}/{v}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                None => format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
            }
        })
        .collect()
}

/// The commands of the README's marked blocks, in order.
fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut commands = Vec::new();
    let mut blocks = 0;
    for marked in readme.split(README_MARK).skip(1) {
        let block = marked
            .trim_start()
            .strip_prefix("```sh\n")
            .expect("a marked block is a ```sh block");
        let block = &block[..block.find("```").expect("the block ends")];
        commands.extend(
            block
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
        blocks += 1;
    }
    assert!(
        blocks >= 3,
        "the README's image, assemble and gate/push blocks are marked"
    );
    commands
}

/// `sh -c LINE` in `cwd` with this build's mab-verify first on PATH.
fn shell(cwd: &Path, line: &str) -> std::process::Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mab-verify"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", crate::harness::fresh_cache_home())
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("sh runs")
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn demo_keeps_its_files_and_the_readme_commands_work_on_them() {
    let platforms = buildable();
    for name in README_PLATFORMS {
        let p = Platform::parse(name).unwrap();
        assert!(
            platforms.contains(&p),
            "the README's examples need {name}: {}",
            missing_toolchain(p.arch).unwrap_or_default()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let out = demo(cwd, "mab-demo");
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, out.stdout);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    let dir = cwd.join("mab-demo");

    // Every buildable platform's binary and image, and an archive holding exactly those.
    for p in &platforms {
        assert!(binary_path(&dir, p).is_file(), "no binary for {}", p.oci());
        assert!(image_path(&dir, p).is_file(), "no image for {}", p.oci());
    }
    let archive = dir.join(ARCHIVE);
    let index = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", archive.display()),
    ]);
    let wanted: BTreeSet<String> = platforms.iter().map(Platform::oci).collect();
    assert_eq!(index_platforms(&index), wanted);
    // The report covers the binaries and the archive, each platform's image run included.
    let artifacts = report["artifacts"].as_array().unwrap();
    for p in &platforms {
        let image = artifacts
            .iter()
            .find(|a| a["path"] == format!("mab-demo/{ARCHIVE}@{}", p.oci()))
            .unwrap_or_else(|| panic!("no artifact for the {} image in {report:#}", p.oci()));
        let ran = harness::status_of(image, "run.exec");
        assert!(
            ran == "pass" || ran == "skip",
            "{}: run.exec {ran}",
            p.oci()
        );
    }
    let audit: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(AUDIT_JSON)).unwrap()).unwrap();
    assert_eq!(audit["verdict"], "pass");
    assert_eq!(audit["summary"], report["summary"]);
    let markdown = std::fs::read_to_string(dir.join(AUDIT_MARKDOWN)).unwrap();
    assert!(
        markdown.contains("PASS") && markdown.contains(ARCHIVE),
        "{markdown}"
    );
    let junit = std::fs::read_to_string(dir.join(AUDIT_JUNIT)).unwrap();
    assert!(
        junit.contains("failures=\"0\"") && junit.contains("<testsuites"),
        "{junit}"
    );

    // The README's commands, as written, on these files.
    let registry = registry::Registry::start(None);
    for line in readme_commands() {
        let line = line.replace(README_REGISTRY, &registry.addr);
        let ran = shell(cwd, &line);
        assert!(
            ran.status.success(),
            "README command failed ({}): {line}\nstdout:\n{}\nstderr:\n{}",
            ran.status,
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
        if line.contains("gate mab-demo/") && line.contains("echo") {
            let said = String::from_utf8_lossy(&ran.stdout);
            assert!(
                said.contains(&sha256(&index)),
                "gate ran its command with the verified digest: {said}"
            );
        }
    }
    // What the registry holds is what was verified, read back by skopeo.
    let pushed = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/multi-arch-demo:dev", registry.addr),
    ]);
    assert_eq!(sha256(&pushed), sha256(&index));
    let gated = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/app:1.2", registry.addr),
    ]);
    assert_eq!(
        index_platforms(&gated),
        README_PLATFORMS.iter().map(|s| s.to_string()).collect()
    );
    for file in [
        "app.oci.tar",
        "app-oci",
        "app-v1.2.3.oci.tar",
        "audit.md",
        "junit.xml",
        "audit.json",
    ] {
        assert!(cwd.join(file).exists(), "the README's commands made {file}");
    }
}

#[test]
fn a_rerun_replaces_a_previous_output_and_other_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let first = demo(cwd, "out");
    assert_eq!(first.code, 0, "{}", first.stderr);
    let dir = cwd.join("out");
    let before = names_in(&dir);
    assert!(
        before.contains(MARKER) && before.contains(ARCHIVE),
        "{before:?}"
    );
    // Something the demo wrote, gone stale, does not survive a rerun.
    std::fs::write(dir.join(ARCHIVE), b"stale").unwrap();
    let second = demo(cwd, "out");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(names_in(&dir), before);
    assert_ne!(std::fs::read(dir.join(ARCHIVE)).unwrap(), b"stale");
    // Nothing but the output is left next to it (no staging or trash directories).
    assert_eq!(names_in(cwd), BTreeSet::from(["out".to_string()]));

    // A file the demo did not write stops the rerun, and stays.
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let refused = demo(cwd, "out");
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("notes.txt"), "{}", refused.stderr);
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");

    // A directory that was never a demo output is refused whole.
    let other: PathBuf = cwd.join("project");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("Cargo.toml"), b"[package]").unwrap();
    let refused = demo(cwd, "project");
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains(MARKER), "{}", refused.stderr);
    assert_eq!(names_in(&other), BTreeSet::from(["Cargo.toml".to_string()]));
}
