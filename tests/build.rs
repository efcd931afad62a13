//! `mab-verify build` with the real nix CLI, offline, against a fixture flake that needs no
//! nixpkgs; and `merge-reports` reproducing the single-run verdict.

mod harness;
mod support;

use harness::{Outcome, command, run_cmd};
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::images::images;
use support::{expected_hello, fixtures, host_row, row};

/// Flakes on, no sandbox (builders read the fixtures from target/), no substituters (offline).
const NIX_CONFIG: &str = "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nbuild-users-group =\n";

/// A flake whose targets place prebuilt fixtures, compile one with the host's cross gcc inside
/// the build, and include one that lies: its name says aarch64, its content is x86_64.
fn fixture_flake(dir: &Path) -> PathBuf {
    let f = fixtures();
    let host = f.hello_for(host_row()).unwrap();
    let aarch64 = f.hello_for(row("aarch64-linux")).unwrap();
    let armv7 = f.hello_for(row("armv7l-linux")).unwrap();
    let docker = images().docker_archive_for(row("aarch64-linux")).unwrap();
    let hello_c = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/hello.c");
    let flake = dir.join("flake");
    std::fs::create_dir_all(&flake).unwrap();
    let riscv = row("riscv64-linux");
    let gcc = format!("/usr/bin/{}-gcc", riscv.toolchain.unwrap().gcc_triple);
    std::fs::write(
        flake.join("build-riscv64.sh"),
        format!(
            "set -eu\n/bin/mkdir -p \"$out/bin\"\n{gcc} -O2 '-DMAB_ARCH=\"{}\"' {} -o \"$out/bin/multi-arch-demo\"\n",
            riscv.rust_arch,
            hello_c.display()
        ),
    )
    .unwrap();
    let system = host_row().nix_system();
    std::fs::write(
        flake.join("flake.nix"),
        format!(
            r#"{{
  outputs = {{ self }}:
    let
      system = "{system}";
      place = name: src: builtins.derivation {{
        inherit system name;
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin && /bin/cp {{src}} $out/bin/multi-arch-demo" ];
      }};
      file = name: src: builtins.derivation {{
        inherit system name;
        builder = "/bin/sh";
        args = [ "-c" "/bin/cp {{src}} $out" ];
      }};
    in {{
      packages.${{system}} = {{
        native.myproject = place "multi-arch-demo-1.0.0" "{host}";
        aarch64 = {{
          myproject = place "multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0" "{aarch64}";
          docker = file "docker-image-multi-arch-demo.tar.gz" "{docker}";
        }};
        armv7.myproject = (place "multi-arch-demo-1.0.0" "{armv7}") // {{
          stdenv.hostPlatform.config = "armv7l-unknown-linux-gnueabihf";
        }};
        riscv64.myproject = builtins.derivation {{
          inherit system;
          name = "multi-arch-demo-riscv64-unknown-linux-gnu-1.0.0";
          builder = "/bin/sh";
          args = [ ./build-riscv64.sh ];
        }};
        aarch64-multiplatform.myproject = place "multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0-wrong" "{host}";
      }};
    }};
}}
"#,
            host = host.display(),
            aarch64 = aarch64.display(),
            armv7 = armv7.display(),
            docker = docker.display(),
        )
        .replace("{src}", "${src}"),
    )
    .unwrap();
    flake
}

fn build(flake: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = command();
    cmd.env("NIX_CONFIG", NIX_CONFIG)
        .arg("build")
        .arg("--flake")
        .arg(flake)
        .args(extra);
    run_cmd(cmd)
}

fn artifacts(json: &Value) -> &Vec<Value> {
    json["artifacts"].as_array().unwrap()
}

#[test]
fn every_target_is_built_with_nix_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let out = build(&flake, &["--format", "json"]);
    assert_eq!(
        out.code, 1,
        "the lying target fails the run: {}{}",
        out.stdout, out.stderr
    );
    let json = out.json();
    let find = |needle: &str| -> Vec<&Value> {
        artifacts(&json)
            .iter()
            .filter(|a| {
                a["expected"]["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(needle))
            })
            .collect()
    };
    for (target, key) in [
        ("native ", "x86_64"),
        ("aarch64 ", "aarch64"),
        ("armv7 ", "armv7l"),
        ("riscv64 ", "riscv64"),
    ] {
        let arch = row(&format!("{key}-linux"));
        let found = find(target);
        assert!(
            !found.is_empty(),
            "no artifact for target {target}: {}",
            out.stdout
        );
        for a in found {
            let failing: Vec<&Value> = a["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["status"] == "fail")
                .collect();
            assert!(failing.is_empty(), "{target}: {failing:#?}");
            if a["kind"] == "elf" {
                assert_eq!(a["run"]["stdout"], expected_hello(arch), "{target}");
            }
        }
    }
    // What decided each platform is reported.
    let armv7 = find("armv7 ");
    assert!(
        armv7[0]["expected"]["target"]
            .as_str()
            .unwrap()
            .contains("stdenv.hostPlatform"),
        "{:#}",
        armv7[0]
    );
    let native = find("native ");
    assert!(
        native[0]["expected"]["target"]
            .as_str()
            .unwrap()
            .contains("system being built on")
    );
    // The docker output of aarch64 is verified as an image of that platform.
    let image = artifacts(&json)
        .iter()
        .find(|a| {
            a["kind"] == "image"
                && a["path"]
                    .as_str()
                    .unwrap()
                    .contains("docker-image-multi-arch-demo")
        })
        .expect("the docker output is verified as an image");
    assert_eq!(image["platform"], "linux/arm64");
    let index = artifacts(&json)
        .iter()
        .find(|a| {
            a["kind"] == "index"
                && a["path"]
                    .as_str()
                    .unwrap()
                    .contains("docker-image-multi-arch-demo")
        })
        .expect("the image is held to its target's platform");
    assert_eq!(harness::status_of(index, "index.expected"), "pass");
    // The riscv64 target was compiled by the cross gcc inside the nix build.
    assert!(
        find("riscv64 ")
            .iter()
            .any(|a| a["run"]["stdout"] == expected_hello(row("riscv64-linux")))
    );
    // The lying target: named for aarch64, built for x86_64.
    let wrong = find("aarch64-multiplatform ");
    let machine = wrong[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "elf.machine")
        .unwrap();
    assert_eq!(machine["status"], "fail", "{machine:#}");
    assert!(machine["found"].as_str().unwrap().contains("linux/amd64"));
}

#[test]
fn a_failing_build_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
    let broken = text.replace(
        "native.myproject = place",
        "broken.myproject = builtins.derivation { inherit system; name = \"broken-1.0\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo compiler exploded >&2; exit 3\" ]; };\n        native.myproject = place",
    );
    std::fs::write(flake.join("flake.nix"), broken).unwrap();
    let out = build(
        &flake,
        &[
            "--format", "json", "--no-run", "--target", "broken", "--target", "native",
        ],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let failed = artifacts(&json)
        .iter()
        .find(|a| a["kind"] == "build")
        .expect("the failed build is reported");
    let check = &failed["checks"][0];
    assert_eq!(check["id"], "nix.build");
    assert!(
        check["found"]
            .as_str()
            .unwrap()
            .contains("compiler exploded"),
        "{check:#}"
    );
    assert!(
        artifacts(&json)
            .iter()
            .any(|a| a["kind"] == "elf" && a["platform"] == "linux/amd64"),
        "native still built and verified"
    );
}

#[test]
fn an_unknown_target_is_bad_input_and_missing_nix_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let out = build(&flake, &["--target", "sparc"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no target sparc") && out.stderr.contains("aarch64"),
        "{}",
        out.stderr
    );

    let empty = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.env("PATH", empty.path())
        .arg("build")
        .arg("--flake")
        .arg(&flake);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("nix"), "{}", out.stderr);
}

#[test]
fn merge_reports_reproduces_the_single_run_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let targets = ["native", "aarch64", "aarch64-multiplatform"];
    let mut args = vec!["--format", "json", "--no-run"];
    for t in targets {
        args.extend(["--target", t]);
    }
    let single = build(&flake, &args);
    let mut parts = Vec::new();
    for t in targets {
        let part = build(&flake, &["--format", "json", "--no-run", "--target", t]);
        let file = dir.path().join(format!("{t}.json"));
        std::fs::write(&file, &part.stdout).unwrap();
        parts.push(file);
    }
    let mut cmd = command();
    cmd.arg("merge-reports")
        .arg("--format")
        .arg("json")
        .args(&parts);
    let merged = run_cmd(cmd);
    assert_eq!(merged.code, single.code);
    let (m, s) = (merged.json(), single.json());
    assert_eq!(m["verdict"], s["verdict"]);
    assert_eq!(m["summary"], s["summary"]);
    let paths = |j: &Value| {
        let mut p: Vec<String> = artifacts(j)
            .iter()
            .map(|a| a["path"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    assert_eq!(paths(&m), paths(&s));

    // A report from elsewhere that is not JSON is bad input.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let mut cmd = command();
    cmd.arg("merge-reports").arg(&junk);
    assert_eq!(run_cmd(cmd).code, 2);
}
