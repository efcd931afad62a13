//! `assemble`: a multi-arch OCI archive or layout from per-platform images, checked by
//! skopeo, umoci and a real registry; and the article's push script as an input.

use crate::harness;
use crate::harness::registry;
use crate::support;

use harness::{command, mab, run_cmd, status_of};
use mab_verify::platform::{Arch, Platform};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::images::images;
use support::{expected_hello, row};

fn three() -> Vec<(&'static Arch, PathBuf)> {
    ["x86_64-linux", "aarch64-linux", "armv7l-linux"]
        .iter()
        .map(|n| {
            let arch = row(n);
            (
                arch,
                images()
                    .docker_archive_for(arch)
                    .expect("docker-archive fixture")
                    .to_path_buf(),
            )
        })
        .collect()
}

fn assemble(out: &Path, extra: &[&str], inputs: &[&Path]) -> harness::Outcome {
    let mut cmd = command();
    cmd.arg("assemble")
        .arg("-o")
        .arg(out)
        .args(extra)
        .args(inputs);
    run_cmd(cmd)
}

fn skopeo(args: &[&str]) -> String {
    String::from_utf8_lossy(&harness::skopeo(args)).into_owned()
}

fn sha256(path: &Path) -> String {
    mab_verify::inspect::sha256_hex(&std::fs::read(path).unwrap())
}

#[test]
fn three_platforms_assemble_verify_and_read_back_with_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.oci.tar");
    let inputs = three();
    let paths: Vec<&Path> = inputs.iter().map(|(_, p)| p.as_path()).collect();
    let res = assemble(&out, &["--tag", "v1", "--format", "json"], &paths);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    // skopeo, not our reader, says what the index holds.
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v1", out.display()),
    ]))
    .unwrap();
    let listed: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
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
        .collect();
    let mut want: Vec<String> = inputs
        .iter()
        .map(|(a, _)| Platform::linux(a).oci())
        .collect();
    let mut got = listed.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(
        raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["mediaType"] == "application/vnd.oci.image.manifest.v1+json")
    );
    // And the result verifies clean, running every platform.
    let verified = mab(["--format", "json", out.to_str().unwrap()]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
}

#[test]
fn the_same_inputs_in_any_order_give_the_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let inputs = three();
    let forward: Vec<&Path> = inputs.iter().map(|(_, p)| p.as_path()).collect();
    let backward: Vec<&Path> = forward.iter().rev().copied().collect();
    let one = a.path().join("one.oci.tar");
    let two = b.path().join("two.oci.tar");
    assert_eq!(assemble(&one, &["--no-run"], &forward).code, 0);
    assert_eq!(assemble(&two, &["--no-run"], &backward).code, 0);
    assert_eq!(sha256(&one), sha256(&two));
    let zstd = a.path().join("z.oci.tar");
    assert_eq!(
        assemble(&zstd, &["--no-run", "--compression", "zstd"], &forward).code,
        0
    );
    assert_ne!(
        sha256(&zstd),
        sha256(&one),
        "the compression option changes the layers"
    );
}

#[test]
fn a_lying_input_is_refused_and_fix_config_mends_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.oci.tar");
    let liar = &images().broken.lying_config;
    let res = assemble(&out, &["--no-run"], &[liar.as_path()]);
    assert_eq!(res.code, 1, "{}", res.stderr);
    assert!(
        res.stderr.contains("linux/amd64") && res.stderr.contains("--fix-config"),
        "{}",
        res.stderr
    );
    assert!(!out.exists(), "nothing is written when assembly is refused");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no staging left behind"
    );

    let res = assemble(&out, &["--no-run", "--fix-config"], &[liar.as_path()]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stderr.contains("config fixed"), "{}", res.stderr);
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]))
    .unwrap();
    assert_eq!(raw["manifests"][0]["platform"]["architecture"], "arm64");
    // The rewritten config itself now says arm64 (skopeo picks the image by platform).
    let config: Value = serde_json::from_str(&skopeo(&[
        "--override-arch",
        "arm64",
        "inspect",
        "--config",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]))
    .unwrap();
    assert_eq!(config["architecture"], "arm64");
}

#[test]
fn two_inputs_for_one_platform_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let arm64 = images().docker_archive_for(row("aarch64-linux")).unwrap();
    let again = images().oci_archive_for(row("aarch64-linux")).unwrap();
    let res = assemble(&dir.path().join("x.tar"), &["--no-run"], &[arm64, again]);
    assert_eq!(res.code, 2);
    assert!(
        res.stderr.contains("two inputs for linux/arm64"),
        "{}",
        res.stderr
    );
}

#[test]
fn a_layout_output_unpacks_with_umoci_per_platform() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app-oci");
    let inputs = three();
    let paths: Vec<&Path> = inputs.iter().map(|(_, p)| p.as_path()).collect();
    assert_eq!(
        assemble(&out, &["--layout", "--tag", "v1", "--no-run"], &paths).code,
        0
    );
    for (arch, _) in &inputs {
        // umoci 0.4.7 calls a tag that names an index ambiguous: select one platform first.
        let single = dir.path().join(format!("single-{}", arch.key()));
        let mut args = vec![
            "copy".to_string(),
            "--override-arch".into(),
            arch.oci_arch.into(),
        ];
        if let Some(v) = arch.oci_variant {
            args.extend(["--override-variant".into(), v.into()]);
        }
        args.extend([
            format!("oci:{}:v1", out.display()),
            format!("oci:{}:v1", single.display()),
        ]);
        skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let bundle = dir.path().join(format!("bundle-{}", arch.key()));
        let status = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:v1", single.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "umoci unpack {}: {}",
            arch.key(),
            String::from_utf8_lossy(&status.stderr)
        );
        assert!(bundle.join("rootfs/nix/store").is_dir());
    }
}

#[test]
fn a_registry_serves_each_platform_of_the_assembled_index() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.oci.tar");
    let inputs = three();
    let paths: Vec<&Path> = inputs.iter().map(|(_, p)| p.as_path()).collect();
    assert_eq!(assemble(&out, &["--no-run"], &paths).code, 0);
    let registry = registry::Registry::start(None);
    let reference = format!("docker://{}/demo:test", registry.addr);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", out.display()),
        &reference,
    ]);
    for (arch, _) in &inputs {
        let fetched = dir.path().join(format!("{}.tar", arch.key()));
        let mut args = vec![
            "copy".to_string(),
            "--src-tls-verify=false".into(),
            "--override-arch".into(),
            arch.oci_arch.into(),
        ];
        if let Some(v) = arch.oci_variant {
            args.extend(["--override-variant".into(), v.into()]);
        }
        args.extend([
            reference.clone(),
            format!("docker-archive:{}", fetched.display()),
        ]);
        skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // What the registry handed out for this platform really is this platform's build.
        let res = mab(["--format", "json", fetched.to_str().unwrap()]);
        assert_eq!(res.code, 0, "{}: {}", arch.key(), res.stdout);
        let json = res.json();
        let img = json["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "image")
            .unwrap();
        assert_eq!(img["platform"], Platform::linux(arch).oci());
        assert_eq!(img["run"]["stdout"], expected_hello(arch));
    }
}

fn push_script(dir: &Path, archives: &[&Path]) -> PathBuf {
    let result = dir.join("result");
    std::fs::create_dir_all(result.join("bin")).unwrap();
    let args: Vec<String> = archives
        .iter()
        .map(|a| format!("  docker-archive:{} \\", a.display()))
        .collect();
    std::fs::write(
        result.join("bin/manifest"),
        format!("#!/bin/sh\nset -eu\nMANIFEST=\"$1\"\npodman manifest create \"$MANIFEST\" \\\n{}\n\npodman manifest push --all \"$MANIFEST\" \"$@\"\n", args.join("\n")),
    )
    .unwrap();
    result
}

#[test]
fn the_push_script_is_verified_as_one_set() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = three();
    let paths: Vec<&Path> = inputs[..2].iter().map(|(_, p)| p.as_path()).collect();
    let result = push_script(dir.path(), &paths);
    let res = mab([
        "--format",
        "json",
        "--expect",
        "linux/amd64",
        "--expect",
        "linux/arm64",
        result.to_str().unwrap(),
    ]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let json = res.json();
    let imgs: Vec<&Value> = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .collect();
    assert_eq!(imgs.len(), 2);
    for (arch, _) in &inputs[..2] {
        let img = imgs
            .iter()
            .find(|i| i["platform"] == Platform::linux(arch).oci())
            .expect("each platform");
        assert_eq!(img["run"]["stdout"], expected_hello(arch));
    }
    let index = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "index")
        .unwrap();
    assert_eq!(status_of(index, "index.expected"), "pass");

    // The same script with a lying image in it fails.
    let dir2 = tempfile::tempdir().unwrap();
    let liar = images()
        .skopeo_docker_archive_for(row("x86_64-linux"))
        .unwrap();
    let bad = push_script(dir2.path(), &[liar, liar]);
    let res = mab(["--no-run", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(res.code, 1, "a platform listed twice: {}", res.stdout);
}

#[test]
fn a_push_script_naming_a_missing_archive_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let result = push_script(dir.path(), &[Path::new("/nix/store/does-not-exist.tar.gz")]);
    let res = mab([result.to_str().unwrap()]);
    assert_eq!(res.code, 2);
    assert!(
        res.stderr.contains("does-not-exist.tar.gz"),
        "{}",
        res.stderr
    );
}

#[test]
fn assemble_needs_no_home_no_path_and_no_network() {
    // As inside a Nix build: an empty environment and a fresh working directory.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.oci.tar");
    let inputs = three();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mab-verify"));
    cmd.env_clear()
        .env("TMPDIR", dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .current_dir(dir.path())
        .args(["assemble", "--no-run", "-o"])
        .arg(&out)
        .args(inputs.iter().map(|(_, p)| p));
    let res = run_cmd(cmd);
    assert_eq!(res.code, 0, "{}", res.stderr);
    let with_env = dir.path().join("again.oci.tar");
    let paths: Vec<&Path> = inputs.iter().map(|(_, p)| p.as_path()).collect();
    assert_eq!(assemble(&with_env, &["--no-run"], &paths).code, 0);
    assert_eq!(
        sha256(&out),
        sha256(&with_env),
        "the environment does not change the output"
    );
    // SOURCE_DATE_EPOCH is the one variable that does: it dates the archive's entries.
    let epoch0 = dir.path().join("epoch0.oci.tar");
    let mut cmd = command();
    cmd.env("SOURCE_DATE_EPOCH", "0")
        .args(["assemble", "--no-run", "-o"])
        .arg(&epoch0)
        .args(&paths);
    assert_eq!(run_cmd(cmd).code, 0);
    assert_ne!(sha256(&epoch0), sha256(&out));
}
