//! `mab-verify PATH` on real cross-built binaries: platforms, name forms, broken fixtures, bad input.

use crate::harness;
use crate::support;

use harness::{check_of, mab, status_of};
use mab_verify::platform::{ARCHES, Platform, Verified};
use rstest::rstest;
use support::{fixtures, hello, row};

/// Every row the table marks as verified has a real binary here, so no row's claim goes untested:
/// a Debian cross build, or one Zig builds in `foreign_platforms` (glibc and musl, run under qemu).
#[test]
fn every_verified_row_has_a_fixture() {
    for arch in ARCHES.iter().filter(|a| a.verified == Verified::Fixture) {
        assert!(
            fixtures().hello_for(arch).is_some()
                || crate::foreign_platforms::zig_builds_a_fixture_for(arch.key()),
            "{} is marked verified but has no fixture: {:?}",
            arch.key(),
            fixtures().missing_reason(arch)
        );
    }
}

#[test]
fn every_name_form_of_a_row_accepts_its_binary() {
    // Every row with a Debian toolchain, from the table.
    for key in support::toolchain_rows().map(|a| a.key()) {
        let (arch, bin) = hello(key);
        let mut names = vec![Platform::linux(arch).oci(), arch.nix_system()];
        names.extend(
            arch.systems()
                .filter(|s| s.os == mab_verify::platform::Os::Linux)
                .filter(|s| s.libc == Some(mab_verify::platform::Libc::Glibc))
                .map(|s| s.attr.to_string()),
        );
        names.extend(arch.glibc_triples.iter().map(|s| s.to_string()));
        for name in names {
            let out = mab([
                "--no-run",
                "--format",
                "json",
                "--expect",
                &name,
                bin.to_str().unwrap(),
            ]);
            assert_eq!(out.code, 0, "--expect {name} on {key}:\n{}", out.stdout);
            let json = out.json();
            let a = &json["artifacts"][0];
            assert_eq!(a["platform"], Platform::linux(arch).oci(), "{name}");
            assert_eq!(a["expected"]["from"], "flag");
            assert_eq!(a["kind"], "elf");
            assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
        }
    }
}

/// For each row, a platform of another machine must fail elf.machine.
#[test]
fn a_binary_fails_against_another_machine() {
    // Every row with a Debian toolchain, from the table.
    for key in support::toolchain_rows().map(|a| a.key()) {
        let (arch, bin) = hello(key);
        let other = ARCHES.iter().find(|o| !o.same_machine(arch)).unwrap();
        let out = mab([
            "--no-run",
            "--format",
            "json",
            "--expect",
            &Platform::linux(other).oci(),
            bin.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 1, "{}", out.stdout);
        let a = &out.json()["artifacts"][0];
        assert_eq!(status_of(a, "elf.machine"), "fail");
        let c = check_of(a, "elf.machine");
        assert!(
            c["found"]
                .as_str()
                .unwrap()
                .contains(&Platform::linux(arch).oci()),
            "{c:#}"
        );
        assert!(
            c["hint"]
                .as_str()
                .unwrap()
                .contains(other.nix_system().as_str()),
            "{c:#}"
        );
    }
}

/// armhf and armel share EM_ARM: only the float ABI and the architecture version differ.
#[rstest]
#[case("armv7l", "linux/arm/v5", "soft-float")]
#[case("armv5tel", "linux/arm/v7", "hard-float")]
fn arm_float_abi_is_told_apart(
    #[case] key: &str,
    #[case] expect: &str,
    #[case] platform_uses: &str,
) {
    let (_, bin) = hello(key);
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        expect,
        bin.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert_eq!(status_of(a, "elf.machine"), "pass");
    assert_eq!(status_of(a, "elf.abi"), "fail");
    let msg = check_of(a, "elf.abi")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&format!("platform uses {platform_uses}")),
        "{msg}"
    );
}

#[test]
fn armhf_records_v7_and_armel_v5_from_the_attributes() {
    for (key, version, hard) in [("armv7l", 7, true), ("armv5tel", 5, false)] {
        let (_, bin) = hello(key);
        let facts = mab_verify::inspect::inspect_bytes(&std::fs::read(bin).unwrap());
        let abi = facts.elf().unwrap().abi;
        let mab_verify::platform::ObservedAbi::Arm {
            hard_float,
            arch_version,
            eabi_version,
            version_from,
            ..
        } = abi
        else {
            panic!("{key}: {abi:?}");
        };
        assert_eq!(
            (hard_float, arch_version, eabi_version, version_from),
            (
                Some(hard),
                Some(version),
                5,
                Some(mab_verify::platform::ArmVersionSource::Attributes)
            ),
            "{key}"
        );
    }
}

#[test]
fn a_nix_closure_infers_its_platform_from_the_store_name() {
    for closure in &fixtures().nix {
        let out = mab([
            "--no-run",
            "--format",
            "json",
            closure.result.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{}:\n{}", closure.arch.key(), out.stdout);
        let json = out.json();
        let a = &json["artifacts"][0];
        assert!(
            a["path"]
                .as_str()
                .unwrap()
                .ends_with("result/bin/multi-arch-demo"),
            "{}",
            a["path"]
        );
        assert_eq!(a["platform"], Platform::linux(closure.arch).oci());
        if closure.arch.is_host() {
            // Native Nix builds carry no triple in their store names.
            assert_eq!(a["expected"]["from"], "binary");
        } else {
            assert_eq!(a["expected"]["from"], "store-name");
            assert_eq!(a["expected"]["triple"], closure.arch.glibc_triples[0]);
        }
        for id in [
            "elf.interp",
            "elf.interp-present",
            "elf.needed",
            "elf.impure",
        ] {
            assert_eq!(
                status_of(a, id),
                "pass",
                "{id} on {}: {:#}",
                closure.arch.key(),
                check_of(a, id)
            );
        }
        let libs = a["closure"]["libraries"].as_array().unwrap();
        assert!(
            libs.iter().all(|l| l["found"]["guest_path"]
                .as_str()
                .unwrap()
                .starts_with("/nix/store/")),
            "{libs:#?}"
        );
    }
}

struct BrokenCase {
    name: &'static str,
    expect: Option<&'static str>,
    failing: &'static str,
    message_has: &'static str,
}

#[rstest]
#[case(BrokenCase { name: "wrong_loader", expect: None, failing: "elf.interp", message_has: "loader of linux/amd64" })]
#[case(BrokenCase { name: "softfloat_hf_loader", expect: None, failing: "elf.interp", message_has: "linux/arm/v7" })]
#[case(BrokenCase { name: "softfloat_hf_loader", expect: Some("linux/arm/v7"), failing: "elf.abi", message_has: "soft-float" })]
#[case(BrokenCase { name: "mixed_closure", expect: None, failing: "elf.needed", message_has: "libgcc_s.so.1" })]
#[case(BrokenCase { name: "missing_loader", expect: None, failing: "elf.interp-present", message_has: "does not exist" })]
#[case(BrokenCase { name: "truncated", expect: None, failing: "elf.format", message_has: "cannot be parsed" })]
#[case(BrokenCase { name: "not_elf", expect: None, failing: "elf.format", message_has: "not an executable" })]
fn broken_fixtures_fail_with_the_right_check(#[case] case: BrokenCase) {
    let b = &fixtures().broken;
    let path = match case.name {
        "wrong_loader" => b.wrong_loader.clone(),
        "softfloat_hf_loader" => b.softfloat_hf_loader.clone(),
        "mixed_closure" => b.mixed_closure.as_ref().map(|c| c.result.clone()),
        "missing_loader" => b.missing_loader.as_ref().map(|c| c.result.clone()),
        "truncated" => b.truncated.clone(),
        "not_elf" => b.not_elf.clone(),
        other => panic!("unknown case {other}"),
    }
    .unwrap_or_else(|| panic!("fixture {} was not built", case.name));
    let mut args = vec!["--no-run".to_string(), "--format".into(), "json".into()];
    if let Some(e) = case.expect {
        args.extend(["--expect".to_string(), e.to_string()]);
    }
    args.push(path.display().to_string());
    let out = mab(&args);
    assert_eq!(out.code, 1, "{}: {}", case.name, out.stdout);
    let a = &out.json()["artifacts"][0];
    let c = check_of(a, case.failing);
    assert_eq!(c["status"], "fail", "{}: {c:#}", case.name);
    let text = format!("{} {} {}", c["message"], c["expected"], c["found"]);
    assert!(text.contains(case.message_has), "{}: {c:#}", case.name);
    assert!(
        c["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "a failure says how to fix it: {c:#}"
    );
}

#[test]
fn the_mixed_closure_names_the_foreign_library_and_its_platform() {
    let closure = fixtures()
        .broken
        .mixed_closure
        .as_ref()
        .expect("mixed closure fixture");
    let out = mab([
        "--no-run",
        "--format",
        "json",
        closure.result.to_str().unwrap(),
    ]);
    let a = &out.json()["artifacts"][0];
    let msg = check_of(a, "elf.needed")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("libgcc_s.so.1") && msg.contains(&Platform::linux(support::host_row()).oci()),
        "{msg}"
    );
}

#[test]
fn musl_binaries_are_recognised() {
    let f = fixtures();
    let dynamic = f.musl_dynamic.as_ref().expect("musl dynamic fixture");
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        "musl64",
        dynamic.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let interp = check_of(&out.json()["artifacts"][0], "elf.interp")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        interp.contains(support::host_row().musl_loader) && interp.contains("musl"),
        "{interp}"
    );
    // A glibc platform name refuses the musl loader.
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        "gnu64",
        dynamic.to_str().unwrap(),
    ]);
    assert_eq!(out.status("elf.interp"), "fail");

    let stat = f.musl_static.as_ref().expect("musl static fixture");
    let out = mab(["--no-run", "--format", "json", stat.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert!(
        a["facts"]["linkage"]
            .as_str()
            .unwrap()
            .starts_with("static"),
        "{a:#}"
    );
    assert_eq!(status_of(a, "elf.needed"), "pass");
}

#[test]
fn a_directory_inspects_bin_and_libexec_and_all_inspects_libraries() {
    let closure = fixtures()
        .nix_for(row("aarch64-linux"))
        .expect("aarch64 closure");
    let out = mab([
        "--no-run",
        "--format",
        "json",
        closure.root.to_str().unwrap(),
    ]);
    // The fake root has no bin/: every executable below it is found, libraries are not.
    let json = out.json();
    let paths: Vec<&str> = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("bin/multi-arch-demo")),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains("libc.so")), "{paths:?}");
    let all = mab([
        "--no-run",
        "--all",
        "--format",
        "json",
        closure.root.to_str().unwrap(),
    ]);
    let json = all.json();
    let libs = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["path"].as_str().unwrap().contains("libc.so"))
        .count();
    assert_eq!(libs, 1, "{}", all.stdout);
}

#[test]
fn macho_and_pe_are_recognised_by_machine() {
    let dir = tempfile::tempdir().unwrap();
    // A minimal 64-bit Mach-O header: MH_MAGIC_64, CPU_TYPE_ARM64, MH_EXECUTE, no load commands.
    let mut macho = Vec::new();
    for word in [0xfeed_facfu32, 0x0100_000c, 0, 2, 0, 0, 0, 0] {
        macho.extend_from_slice(&word.to_le_bytes());
    }
    let path = dir.path().join("app-darwin");
    std::fs::write(&path, &macho).unwrap();
    let out = mab([
        "--format",
        "json",
        "--expect",
        "aarch64-darwin",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["kind"], "macho");
    assert_eq!(a["platform"], "darwin/arm64");
    // Not runnable here, so --require-run must count it as not run.
    assert_eq!(a["run"]["state"], "skipped");
    let out = mab([
        "--format",
        "json",
        "--expect",
        "x86_64-darwin",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status("elf.machine"), "fail");
    let out = mab([
        "--format",
        "json",
        "--expect",
        "linux/arm64",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status("elf.format"), "fail");
}

#[rstest]
#[case::missing_path(&["/nonexistent/result"], "No such file")]
#[case::unknown_platform(&["--expect", "aarch64-multiplatfrom", "/bin/true"], "did you mean aarch64-multiplatform")]
#[case::no_paths(&[], "nothing to verify")]
#[case::bad_timeout(&["--timeout", "0", "/bin/true"], "--timeout 0")]
#[case::sysroot_not_a_dir(&["--sysroot", "/bin/true", "/bin/true"], "--sysroot must be a directory")]
#[case::unknown_flag(&["--frobnicate", "/bin/true"], "unexpected argument")]
#[case::bad_format(&["--format", "yaml", "/bin/true"], "invalid value")]
fn bad_input_exits_2_with_a_clear_message(#[case] args: &[&str], #[case] says: &str) {
    let out = mab(args);
    assert_eq!(out.code, 2, "{args:?}: {}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
}

#[test]
fn an_empty_directory_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = mab([dir.path()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no executable binaries found"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_broken_config_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mab.toml");
    std::fs::write(&cfg, "[run]\ntimeout_secs = \"ten\"\n").unwrap();
    let out = mab(["--config", cfg.to_str().unwrap(), "/bin/true"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("mab.toml"), "{}", out.stderr);
}

#[test]
fn platforms_lists_every_row() {
    let out = mab(["platforms"]);
    assert_eq!(out.code, 0);
    for arch in ARCHES {
        assert!(out.stdout.contains(arch.key()), "{}", arch.key());
        assert!(out.stdout.contains(arch.qemu));
    }
    for s in mab_verify::platform::SYSTEMS {
        let p = Platform::parse(s.attr).unwrap();
        let line = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("    "))
            .find(|l| l.split_whitespace().next() == Some(s.attr))
            .unwrap_or_else(|| panic!("no line for {}", s.attr));
        assert!(line.contains(&p.oci()), "{line}");
    }
}

#[test]
fn warnings_fail_only_with_strict() {
    // A Debian-style binary copied into a store path: its loader is outside /nix/store.
    let (_, bin) = hello("aarch64");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir
        .path()
        .join("nix/store/0000000000000000000000000000000a-app-aarch64-unknown-linux-gnu-1.0/bin");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::copy(&bin, out_dir.join("app")).unwrap();
    let target = out_dir.join("app");
    let sysroot = "/usr/aarch64-linux-gnu";
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--sysroot",
        sysroot,
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status("elf.impure"), "warn", "{}", out.stdout);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let strict = mab([
        "--no-run",
        "--strict",
        "--format",
        "json",
        "--sysroot",
        sysroot,
        target.to_str().unwrap(),
    ]);
    assert_ne!(out.code, strict.code);
    assert_eq!(strict.code, 1);
}

/// Debian's s390x and mips64el libc pad PT_INTERP with a second NUL. The loader name ends at
/// the first NUL, as the kernel reads it; readelf is the independent reader here.
#[rstest]
#[case("/usr/s390x-linux-gnu/lib/libc.so.6")]
#[case("/usr/mips64el-linux-gnuabi64/lib/libc.so.6")]
fn a_padded_interpreter_ends_at_its_first_nul(#[case] path: &str) {
    let readelf = std::process::Command::new("readelf")
        .args(["-lW", path])
        .output()
        .expect("readelf runs");
    let listing = String::from_utf8_lossy(&readelf.stdout);
    let wanted = listing
        .split("[Requesting program interpreter: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("readelf names no interpreter for {path}:\n{listing}"));
    let out = mab(["--no-run", "--format", "json", "--all", path]);
    let a = &out.json()["artifacts"][0];
    assert_eq!(a["facts"]["interpreter"], wanted, "{a:#}");
    assert_eq!(status_of(a, "elf.interp"), "pass", "{a:#}");
}

/// Crash reproducers the `binary` fuzz target saved: each must now be inspected without a
/// panic (test builds keep overflow checks, as the fuzz build does).
#[rstest]
#[case("overflow-dt-strtab-offset.elf")]
fn saved_binary_fuzz_crashes_are_inspected_without_a_panic(#[case] name: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/binary")
        .join(name);
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--all",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.code == 0 || out.code == 1,
        "{name}: exit {}: {}",
        out.code,
        out.stderr
    );
    let a = &out.json()["artifacts"][0];
    assert!(a["facts"]["kind"].is_string(), "{a:#}");
}
