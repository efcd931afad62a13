//! Runs under real qemu-user: every platform prints its own ARCH, and misbehaving binaries are
//! caught, bounded and cleaned up.

use crate::harness;
use crate::support;

use harness::{check_of, command, mab, run_cmd, status_of};
use rstest::rstest;
use std::path::Path;
use support::{expected_hello, fixtures, hello, host_row, row};

#[test]
fn every_platform_runs_and_prints_its_arch() {
    // Every row with a Debian toolchain, from the table.
    for key in support::toolchain_rows().map(|a| a.key()) {
        let (arch, bin) = hello(key);
        let out = mab([
            "--format",
            "json",
            "--expect",
            &arch.nix_system(),
            bin.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{key}: {}", out.stdout);
        let a = &out.json()["artifacts"][0];
        assert_eq!(a["run"]["state"], "ran", "{a:#}");
        // What the table says the platform's Rust ARCH is, printed by the real binary.
        assert_eq!(a["run"]["stdout"], expected_hello(arch));
        assert_eq!(status_of(a, "run.exec"), "pass");
        assert_eq!(status_of(a, "run.output"), "pass");
        let runner = a["run"]["runner"].as_str().unwrap();
        // The host's row and the 32-bit rows its CPU executes (386 on amd64) run natively.
        if arch.runs_natively() {
            assert!(runner.starts_with("native"), "{runner}");
        } else {
            assert!(runner.starts_with(arch.qemu), "{runner}");
        }
    }
}

#[test]
fn nix_closures_run_with_their_store_loader() {
    // Every row with a Debian toolchain, from the table.
    for key in support::toolchain_rows().map(|a| a.key()) {
        let arch = row(&format!("{key}-linux"));
        let closure = fixtures()
            .nix_for(arch)
            .unwrap_or_else(|| panic!("no nix closure for {key}"));
        let out = mab(["--format", "json", closure.result.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{key}: {}", out.stdout);
        let a = &out.json()["artifacts"][0];
        assert_eq!(a["run"]["stdout"], expected_hello(arch));
        let cmd: Vec<&str> = a["run"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // The loader that ran is the closure's own store loader, not the host's: started by hand
        // (unsealed), or found by the kernel/qemu in a sealed root that holds it.
        let loader = closure.loader_host();
        let runner = a["run"]["runner"].as_str().unwrap();
        let sealed_in = runner
            .split_once("sealed in ")
            .map(|(_, root)| root.split(',').next().unwrap().to_string());
        match sealed_in {
            Some(root) => assert!(loader.starts_with(&root), "{loader:?} not in {root}"),
            None => assert!(cmd.contains(&loader.to_str().unwrap()), "{cmd:?}"),
        }
    }
}

#[rstest]
#[case("aarch64")]
#[case("powerpc64le")]
fn absolute_loader_symlinks_resolve_inside_the_sysroot(#[case] key: &str) {
    let (arch, bin) = hello(key);
    let sysroot = fixtures().sysroot_for(arch).expect("sysroot fixture");
    let link = std::fs::read_link(&sysroot.loader_link).unwrap();
    assert!(
        link.is_absolute(),
        "the fixture's loader link must be absolute: {link:?}"
    );
    let out = mab([
        "--format",
        "json",
        "--sysroot",
        sysroot.dir.to_str().unwrap(),
        bin.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["stdout"], expected_hello(arch));
    let loader = a["closure"]["loader"]["found"]["guest_path"]
        .as_str()
        .unwrap();
    assert_eq!(loader, arch.glibc_loader);
    // Every library the run used lives inside the sysroot: named on the command line
    // (unsealed), or the sysroot is the sealed run's whole root.
    let cmd = a["run"]["command"].to_string();
    let runner = a["run"]["runner"].as_str().unwrap();
    let root = sysroot.dir.to_str().unwrap();
    assert!(
        cmd.contains(root) || runner.contains(&format!("sealed in {root}")),
        "{cmd} {runner}"
    );
}

fn misbehaving(key: &str) -> &'static support::Misbehaving {
    fixtures()
        .misbehaving_for(row(&format!("{key}-linux")))
        .unwrap_or_else(|| panic!("no misbehaving fixtures for {key}"))
}

#[rstest]
#[case("x86_64")]
#[case("aarch64")]
fn a_binary_printing_another_arch_fails_run_output(#[case] key: &str) {
    let m = misbehaving(key);
    let out = mab([
        "--format",
        "json",
        "--expect",
        &m.arch.nix_system(),
        m.wrong_arch_output.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert_eq!(status_of(a, "run.exec"), "pass");
    let c = check_of(a, "run.output");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["expected"], expected_hello(m.arch).trim_end());
    assert!(
        c["found"]
            .as_str()
            .unwrap()
            .contains(m.claimed_arch.rust_arch),
        "{c:#}"
    );
}

#[rstest]
#[case("x86_64")]
#[case("aarch64")]
fn a_binary_exiting_1_fails_run_exec(#[case] key: &str) {
    let m = misbehaving(key);
    let out = mab([
        "--format",
        "json",
        "--expect",
        &m.arch.nix_system(),
        m.exit_one.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    let a = &out.json()["artifacts"][0];
    assert_eq!(status_of(a, "run.exec"), "fail");
    assert_eq!(a["run"]["exit_code"], 1);
    assert_eq!(status_of(a, "run.output"), "skip");
}

fn processes_running(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[rstest]
#[case("x86_64")]
#[case("aarch64")]
fn a_hanging_binary_is_killed_with_its_whole_process_group(#[case] key: &str) {
    let m = misbehaving(key);
    let started = std::time::Instant::now();
    let out = mab([
        "--format",
        "json",
        "--timeout",
        "1",
        "--expect",
        &m.arch.nix_system(),
        m.sleeper.to_str().unwrap(),
    ]);
    assert!(
        started.elapsed().as_secs() < 8,
        "the timeout did not bound the run"
    );
    assert_eq!(out.code, 1);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["timed_out"], true);
    assert_eq!(status_of(a, "run.exec"), "fail");
    // The sleeper forked a child that sleeps too; neither may outlive mab-verify.
    let left = processes_running(m.sleeper.to_str().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_flood_of_output_is_capped_and_reported() {
    let m = misbehaving(host_row().key());
    let out = mab([
        "--format",
        "json",
        "--expect-output",
        "none",
        m.flood.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", &out.stdout[..out.stdout.len().min(2000)]);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["stdout_truncated"], true);
    assert_eq!(a["run"]["stdout"].as_str().unwrap().len(), 1024 * 1024);
    // The fixture writes 100 MiB of filler after its hello; every byte was drained and counted.
    assert!(
        a["run"]["stdout_bytes"].as_u64().unwrap() > 100 * 1024 * 1024,
        "{}",
        a["run"]["stdout_bytes"]
    );
    // An exact expectation never passes on truncated output, and the report says it was cut.
    let out = mab([
        "--format",
        "json",
        "--expect-output",
        "x",
        m.flood.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    let c = check_of(&out.json()["artifacts"][0], "run.output").clone();
    assert!(
        c["message"].as_str().unwrap().contains("truncated"),
        "{c:#}"
    );
}

#[test]
fn without_qemu_the_run_is_a_visible_skip_and_require_run_exits_3() {
    let (arch, bin) = hello("aarch64");
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.env("PATH", empty.path())
        .args(["--format", "json", bin.to_str().unwrap()]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 0, "a skip does not fail the run: {}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["state"], "skipped");
    assert!(
        a["run"]["hint"]
            .as_str()
            .unwrap()
            .contains("apt-get install qemu-user"),
        "{a:#}"
    );
    assert!(a["run"]["reason"].as_str().unwrap().contains(arch.qemu));
    assert_eq!(status_of(a, "run.exec"), "skip");

    let mut cmd = command();
    cmd.env("PATH", empty.path()).args([
        "--require-run",
        "--format",
        "json",
        bin.to_str().unwrap(),
    ]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("linux/arm64"), "{}", out.stderr);
    assert_eq!(out.status("run.exec"), "fail");
}

#[test]
fn an_emulator_override_is_used() {
    let (arch, bin) = hello("aarch64");
    let empty = tempfile::tempdir().unwrap();
    let static_qemu = format!("/usr/bin/{}-static", arch.qemu);
    assert!(
        Path::new(&static_qemu).exists(),
        "qemu-user-static is installed by scripts/setup"
    );
    let mut cmd = command();
    cmd.env("PATH", empty.path())
        .env(arch.qemu_env_var(), &static_qemu)
        .args(["--format", "json", bin.to_str().unwrap()]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert!(
        a["run"]["runner"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-static", arch.qemu)),
        "{a:#}"
    );

    let mut cmd = command();
    cmd.env(arch.qemu_env_var(), "/nonexistent/qemu").args([
        "--format",
        "json",
        bin.to_str().unwrap(),
    ]);
    let out = run_cmd(cmd);
    assert_eq!(out.json()["artifacts"][0]["run"]["state"], "skipped");
}

#[test]
fn output_templates_regexes_and_config() {
    let closure = fixtures()
        .nix_for(row("aarch64-linux"))
        .expect("aarch64 closure");
    let result = closure.result.to_str().unwrap();
    let ok = |args: &[&str]| {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        all.push(result);
        mab(all)
    };
    assert_eq!(ok(&["--expect-output", "Hello from {os}/{arch}!"]).code, 0);
    assert_eq!(
        ok(&["--expect-output", "Hello from {os}/{oci_arch}!"]).code,
        1
    );
    assert_eq!(
        ok(&["--expect-output-regex", "^Hello from linux/aarch6[0-9]!$"]).code,
        0
    );
    assert_eq!(ok(&["--expect-output-regex", "^Bye"]).code, 1);
    assert_eq!(ok(&["--expect-output", "none"]).code, 0);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mab.toml");
    std::fs::write(&cfg, "[run]\nexpect_output = \"Hello from {os}/{arch}!\"\n[platform.aarch64-multiplatform]\nexpect_output = \"nope\"\n").unwrap();
    let out = ok(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 1, "the per-platform section wins: {}", out.stdout);
    assert_eq!(
        check_of(&out.json()["artifacts"][0], "run.output")["expected"],
        "nope"
    );
}

#[test]
fn run_args_reach_the_binary() {
    // /bin/echo is a host binary: its output is exactly its arguments.
    let out = mab([
        "--format",
        "json",
        "--args",
        "--version-like",
        "--args",
        "two",
        "--expect-output",
        "--version-like two",
        "/bin/echo",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn runs_see_a_cleared_environment_and_a_private_directory() {
    let mut cmd = command();
    cmd.env("MAB_SECRET", "leak").args([
        "--format",
        "json",
        "--expect-output",
        "none",
        "/usr/bin/env",
    ]);
    let out = run_cmd(cmd);
    let stdout = out.json()["artifacts"][0]["run"]["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!stdout.contains("MAB_SECRET"), "{stdout}");
    assert!(stdout.contains("LANG=C"), "{stdout}");
    let out = mab([
        "--format",
        "json",
        "--expect-output-regex",
        // Sealed runs see their private directory at a fixed guest path; unsealed ones at
        // its host path.
        r"^(/\.mab-verify/work|/.*/mab-run-[^/]+)$",
        "/bin/pwd",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn no_run_inspects_headers_only() {
    let (_, bin) = hello("aarch64");
    let out = mab(["--no-run", "--format", "json", bin.to_str().unwrap()]);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["state"], "not-run");
    assert_eq!(status_of(a, "run.exec"), "skip");
}

/// What a clean host sees: no foreign libc (installing libstd-rust-dev:ARCH pulls in
/// libc6:ARCH, whose loaders and libraries would otherwise answer for a foreign run). The tool
/// runs in a private mount namespace with an empty tmpfs over each foreign multiarch directory.
#[rstest]
#[case("aarch64")]
#[case("powerpc64le")]
#[case("s390x")]
#[case("armv7l")]
fn foreign_runs_need_nothing_from_the_host(#[case] key: &str) {
    let (arch, bin) = hello(key);
    let triple = arch.toolchain.unwrap().gcc_triple;
    let probe = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: unshare -m is not permitted here; cannot simulate a clean host");
        return;
    }
    let hide = format!("/usr/lib/{triple}");
    assert!(
        std::path::Path::new(&hide).is_dir(),
        "this host has {hide}; the test needs it to hide it"
    );
    let script = format!(
        "mount -t tmpfs none {hide} && test ! -e /lib/{triple}/libc.so.6 && exec \"$0\" --format json \"$1\"",
    );
    let cmd = command();
    let program = cmd.get_program().to_owned();
    let mut wrapped = std::process::Command::new("unshare");
    wrapped
        .args(["-m", "sh", "-c", &script])
        .arg(program)
        .arg(&bin);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let out = run_cmd(wrapped);
    assert_eq!(
        out.code, 0,
        "{key} on a clean host: {}{}",
        out.stdout, out.stderr
    );
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["run"]["stdout"], expected_hello(arch));
}
