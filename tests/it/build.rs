//! `mab-verify build` with the real nix CLI, offline, against a fixture flake that needs no
//! nixpkgs; and `merge-reports` reproducing the single-run verdict.

use crate::harness;
use crate::nix_versions;
use crate::support;

use harness::{Outcome, command, run_cmd};
use nix_versions::{Nix, NixVersion, nix};
use rstest::rstest;
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

fn build(nix: &Nix, flake: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = command();
    cmd.env("NIX_CONFIG", NIX_CONFIG)
        .env("PATH", &nix.path)
        .arg("build")
        .arg("--flake")
        .arg(flake)
        .args(extra);
    run_cmd(cmd)
}

fn artifacts(json: &Value) -> &Vec<Value> {
    json["artifacts"].as_array().unwrap()
}

#[rstest]
fn every_target_is_built_with_nix_and_verified(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let out = build(&nix, &flake, &["--format", "json"]);
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

#[rstest]
fn a_failing_build_does_not_hide_the_others(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
    let broken = text.replace(
        "native.myproject = place",
        "broken.myproject = builtins.derivation { inherit system; name = \"broken-1.0\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo compiler exploded >&2; exit 3\" ]; };\n        native.myproject = place",
    );
    std::fs::write(flake.join("flake.nix"), broken).unwrap();
    let out = build(
        &nix,
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

#[rstest]
fn an_unknown_target_is_bad_input_and_missing_nix_exits_3(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let out = build(&nix, &flake, &["--target", "sparc"]);
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

#[rstest]
fn merge_reports_reproduces_the_single_run_verdict(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture_flake(dir.path());
    let targets = ["native", "aarch64", "aarch64-multiplatform"];
    let mut args = vec!["--format", "json", "--no-run"];
    for t in targets {
        args.extend(["--target", t]);
    }
    let single = build(&nix, &flake, &args);
    let mut parts = Vec::new();
    for t in targets {
        let part = build(
            &nix,
            &flake,
            &["--format", "json", "--no-run", "--target", t],
        );
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

/// The fixture flake plus a sibling that does not evaluate: the seed article's own typo, a
/// path that does not exist.
fn flake_with_broken_sibling(dir: &Path) -> PathBuf {
    let flake = fixture_flake(dir);
    let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
    let broken = text.replace(
        "native.myproject = place",
        "typo.myproject = import ./default { };\n        native.myproject = place",
    );
    assert_ne!(broken, text);
    std::fs::write(flake.join("flake.nix"), broken).unwrap();
    flake
}

#[rstest]
fn a_broken_sibling_does_not_block_the_target_asked_for(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = flake_with_broken_sibling(dir.path());
    let out = build(
        &nix,
        &flake,
        &["--format", "json", "--no-run", "--target", "native"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    assert!(
        artifacts(&json).iter().all(|a| a["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != "nix.eval")),
        "the sibling is not evaluated: {json:#}"
    );
    assert!(artifacts(&json).iter().any(|a| a["kind"] == "elf"));
}

#[rstest]
fn a_broken_target_asked_for_is_a_named_eval_failure_in_every_report(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = flake_with_broken_sibling(dir.path());
    let report = |ext: &str| dir.path().join(format!("report.{ext}"));
    let flags: Vec<String> = [("json", "json"), ("junit", "xml"), ("markdown", "md")]
        .iter()
        .flat_map(|(f, ext)| {
            [
                "--report".to_string(),
                format!("{f}={}", report(ext).display()),
            ]
        })
        .collect();
    for targets in [&["typo"][..], &["typo", "native"]] {
        let mut args: Vec<&str> = vec!["--format", "json", "--no-run"];
        for t in targets {
            args.extend(["--target", t]);
        }
        args.extend(flags.iter().map(String::as_str));
        let out = build(&nix, &flake, &args);
        assert_eq!(out.code, 1, "{targets:?}: {}{}", out.stdout, out.stderr);
        let json = out.json();
        let failed: Vec<&Value> = artifacts(&json)
            .iter()
            .filter(|a| a["checks"][0]["id"] == "nix.eval")
            .collect();
        assert_eq!(failed.len(), 1, "{json:#}");
        let check = &failed[0]["checks"][0];
        assert_eq!(check["status"], "fail");
        assert!(
            check["message"].as_str().unwrap().contains("typo"),
            "{check:#}"
        );
        // nix's own words: 2.8 and 2.26 both name the missing path.
        assert!(
            check["found"].as_str().unwrap().contains("default"),
            "{check:#}"
        );
        let others = artifacts(&json)
            .iter()
            .filter(|a| a["kind"] == "elf")
            .count();
        assert_eq!(
            others,
            targets.len() - 1,
            "the sibling asked for is still verified"
        );
        let written = |ext: &str| std::fs::read_to_string(report(ext)).unwrap();
        let report_json: Value = serde_json::from_str(&written("json")).unwrap();
        assert_eq!(report_json["verdict"], "fail");
        assert!(written("xml").contains("nix.eval"), "{}", written("xml"));
        assert!(written("md").contains("nix.eval"), "{}", written("md"));
        for ext in ["json", "xml", "md"] {
            std::fs::remove_file(report(ext)).unwrap();
        }
    }
}

/// What CI sees (stderr not a terminal): a line per derivation built, and a tally that keeps
/// coming while one build is silent for longer than 10 s.
#[rstest]
fn a_ci_log_shows_each_build_and_a_tally_every_10_s(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = dir.path().join("flake");
    std::fs::create_dir_all(&flake).unwrap();
    let host = fixtures().hello_for(host_row()).unwrap();
    // A nonce, so that the store never has these outputs from an earlier run.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let system = host_row().nix_system();
    std::fs::write(
        flake.join("flake.nix"),
        format!(
            r#"{{
  outputs = {{ self }}: let system = "{system}"; in {{
    packages.${{system}} = {{
      native.slow = builtins.derivation {{
        inherit system; name = "slow-1.0"; nonce = "{nonce}"; builder = "/bin/sh";
        args = [ "-c" "/bin/sleep 12; /bin/mkdir -p $out/bin; /bin/cp {host} $out/bin/multi-arch-demo" ];
      }};
      native.fails = builtins.derivation {{
        inherit system; name = "fails-1.0"; nonce = "{nonce}"; builder = "/bin/sh";
        args = [ "-c" "echo compiler exploded >&2; exit 3" ];
      }};
    }};
  }};
}}
"#,
            host = host.display()
        ),
    )
    .unwrap();
    let out = build(&nix, &flake, &["--format", "json", "--no-run"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    for name in ["slow-1.0", "fails-1.0"] {
        assert!(
            lines.contains(&format!("nix: building {name}").as_str()),
            "{}",
            out.stderr
        );
    }
    // Only the 10 s tick prints while nothing finishes: the slow build is running then.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("nix: built 0/") && l.ends_with(" 1 running")),
        "a tally while the slow build runs: {}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("nix: built 1/") && l.ends_with(", 1 failed")),
        "the final tally: {}",
        out.stderr
    );
}

/// The fixture flake with `checks` made by the repo's own nix/checks.nix, run by `nix flake
/// check` with this build's mab-verify. Targets move to legacyPackages: flake check refuses
/// nested sets under packages.
fn flake_with_checks(dir: &Path) -> PathBuf {
    let flake = fixture_flake(dir);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/checks.nix"),
        flake.join("checks.nix"),
    )
    .unwrap();
    let tool = dir.join("tool");
    std::fs::create_dir_all(tool.join("bin")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_mab-verify"),
        tool.join("bin/mab-verify"),
    )
    .unwrap();
    let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
    let with_checks = text
        .replacen(
            "    in {\n",
            &format!(
                r#"      runCommand = name: env: script: builtins.derivation {{
        inherit system name;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = builtins.concatStringsSep ":" (map (p: "${{p}}/bin") env.nativeBuildInputs);
      }};
    in {{
      checks.${{system}} = import ./checks.nix {{
        inherit runCommand;
        mab-verify = "{}";
        flags = [ "--no-run" ];
      }} self.legacyPackages.${{system}};
"#,
                tool.display()
            ),
            1,
        )
        .replacen("packages.${system} = {", "legacyPackages.${system} = {", 1)
        // The liar as pkgsCross would make it: its stdenv says aarch64. (mab-verify reads a
        // store name's triple only below /nix/store; the current nix's store is elsewhere.)
        .replacen(
            "aarch64-multiplatform.myproject = place \"multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0-wrong\" \"",
            "aarch64-multiplatform.myproject = { stdenv.hostPlatform.config = \"aarch64-unknown-linux-gnu\"; } // place \"multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0-wrong\" \"",
            1,
        );
    assert!(with_checks.contains("{ stdenv.hostPlatform.config = \"aarch64"));
    std::fs::write(flake.join("flake.nix"), with_checks).unwrap();
    flake
}

#[rstest]
fn nix_flake_check_passes_honest_targets_and_fails_the_lying_one(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = flake_with_checks(dir.path());
    let run = |args: &[&str]| {
        let out = nix
            .command("nix")
            .args(args)
            .current_dir(&flake)
            .env("NIX_CONFIG", NIX_CONFIG)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, stderr) = run(&["flake", "check", "--keep-going", "path:."]);
    assert!(!ok, "the lying target fails flake check: {stderr}");
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("builder for") && l.contains("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{stderr}");
    // Exit code 1 is a failed check (2 would be bad input, such as an --expect nix wrote wrong).
    assert!(
        failed[0].contains("mab-verify-aarch64-multiplatform.drv")
            && failed[0].contains("exit code 1"),
        "{stderr}"
    );

    let system = host_row().nix_system();
    let honest = ["native", "aarch64", "armv7", "riscv64"];
    let installables: Vec<String> = honest
        .iter()
        .map(|t| format!("path:.#checks.{system}.{t}"))
        .collect();
    let mut args = vec!["build", "--no-link", "--json"];
    args.extend(installables.iter().map(String::as_str));
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let built: Value = serde_json::from_str(&stdout).unwrap();
    let built = built.as_array().unwrap();
    assert_eq!(built.len(), honest.len());
    for b in built {
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(b["outputs"]["out"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(report["verdict"], "pass", "{report:#}");
        assert!(!artifacts(&report).is_empty());
    }
}

/// An sshd on a free loopback port, accepting one key made for the test; stopped on drop.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path) -> Option<Sshd> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() || !Path::new("/run/sshd").is_dir() {
        let why = "no /usr/sbin/sshd or /run/sshd (scripts/setup installs openssh-server)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: {why}");
        eprintln!("\n!!!!! SKIPPED remote builder: {why} !!!!!\n");
        return None;
    }
    let keygen = |path: &Path| {
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen");
    };
    let (host_key, key) = (dir.join("host_key"), dir.join("client_key"));
    keygen(&host_key);
    keygen(&key);
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n",
            host_key.display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Ready when it accepts connections.
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 20, "sshd did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(Sshd { child, port, key })
}

/// The verdict-relevant content of a report, without store paths (they differ by nonce).
fn verdicts(json: &Value) -> Vec<String> {
    let mut rows: Vec<String> = artifacts(json)
        .iter()
        .map(|a| {
            let checks: Vec<String> = a["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{}={}", c["id"], c["status"]))
                .collect();
            format!(
                "{} {} {} {} run={} [{}]",
                a["kind"],
                a["platform"],
                a["expected"]["target"],
                a["expected"]["platform"],
                a["run"]["stdout"],
                checks.join(" ")
            )
        })
        .collect();
    rows.sort();
    rows
}

#[rstest]
fn a_loopback_remote_builder_gives_the_same_verified_report(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = sshd(&dir.path().join("ssh").tap_mkdir()) else {
        return;
    };
    // The builder must not share the local store's database (its output locks would deadlock
    // on loopback): its nix sees a store dir of its own, bound over the same path in a private
    // mount namespace, and its own state dir.
    let (store_dir, program) = match version {
        NixVersion::Debian => (
            PathBuf::from("/nix/store"),
            PathBuf::from("/usr/bin/nix-store"),
        ),
        NixVersion::Current => {
            let bin = nix_versions::current_nix_bin();
            (bin.parent().unwrap().join("store"), bin.join("nix-store"))
        }
    };
    let remote_root = dir.path().join("builder").tap_mkdir();
    std::fs::create_dir_all(remote_root.join("store")).unwrap();
    let remote_program = remote_root.join("nix-store");
    std::fs::write(
        &remote_program,
        format!(
            "#!/bin/sh\nexec unshare --mount --propagation private -- /bin/sh -c 'mount --bind {root}/store {store} && NIX_STATE_DIR={root}/var/nix NIX_LOG_DIR={root}/var/log NIX_CONFIG=\"sandbox = false\nbuild-users-group =\nsubstituters =\" exec {program} \"$@\"' sh \"$@\"\n",
            root = remote_root.display(),
            store = store_dir.display(),
            program = program.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &remote_program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The user's machines line, unchanged: only NIX_CONFIG says where builds go.
    let remote_program = format!("?remote-program={}", remote_program.display());
    let system = host_row().nix_system();
    let remote_config = format!(
        "{NIX_CONFIG}max-jobs = 0\nbuilders = ssh://root@127.0.0.1{remote_program} {system} {} 2\nbuilders-use-substitutes = false\n",
        sshd.key.display()
    );
    let ssh_opts = format!(
        "-p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        sshd.port
    );
    let run = |nonce: &str, config: &str| {
        let flake = fixture_flake(&dir.path().join(nonce).tap_mkdir());
        let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
        // A nonce per build, so the store never holds these outputs already.
        let fresh = text.replace(
            "inherit system name;",
            &format!(
                "inherit system name; nonce = \"{nonce}-{:?}\";",
                std::time::SystemTime::now()
            ),
        );
        assert_ne!(fresh, text);
        std::fs::write(flake.join("flake.nix"), fresh).unwrap();
        let mut cmd = command();
        cmd.env("NIX_CONFIG", config)
            .env("NIX_SSHOPTS", &ssh_opts)
            .env("PATH", &nix.path)
            .arg("build")
            .arg("--flake")
            .arg(&flake)
            .args([
                "--format", "json", "--target", "native", "--target", "aarch64",
            ]);
        run_cmd(cmd)
    };
    let remote = run("remote", &remote_config);
    assert_eq!(remote.code, 0, "{}{}", remote.stdout, remote.stderr);
    assert!(
        remote
            .stderr
            .lines()
            .any(|l| l.starts_with("nix: building ") && l.contains(" on ssh://root@127.0.0.1")),
        "the builds went to the remote builder: {}",
        remote.stderr
    );
    let local = run("local", NIX_CONFIG);
    assert_eq!(local.code, 0, "{}{}", local.stdout, local.stderr);
    assert!(!local.stderr.contains(" on ssh://"), "{}", local.stderr);
    assert_eq!(verdicts(&remote.json()), verdicts(&local.json()));
    assert!(!verdicts(&local.json()).is_empty());
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// On a terminal (a pty from util-linux `script`) progress is one live bar redrawn in place,
/// not the CI log's lines.
#[rstest]
fn a_terminal_gets_a_live_bar_instead_of_lines(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(nix) = nix(version) else { return };
    let dir = tempfile::tempdir().unwrap();
    let flake = dir.path().join("flake");
    std::fs::create_dir_all(&flake).unwrap();
    let host = fixtures().hello_for(host_row()).unwrap();
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let system = host_row().nix_system();
    std::fs::write(
        flake.join("flake.nix"),
        format!(
            r#"{{ outputs = {{ self }}: {{ packages.{system}.native = builtins.derivation {{
  system = "{system}"; name = "live-1.0"; nonce = "{nonce}"; builder = "/bin/sh";
  args = [ "-c" "/bin/sleep 1; /bin/mkdir -p $out/bin; /bin/cp {host} $out/bin/multi-arch-demo" ];
}}; }}; }}
"#,
            host = host.display()
        ),
    )
    .unwrap();
    let inner = format!(
        "{} build --no-run --flake {}",
        env!("CARGO_BIN_EXE_mab-verify"),
        flake.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("XDG_CACHE_HOME", crate::harness::fresh_cache_home())
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("PATH", &nix.path)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\x1b[2K"),
        "the bar redraws its line: {text:?}"
    );
    assert!(!text.contains("nix: building live-1.0"), "{text:?}");
}
