//! Debian's own `hello` package for every CPU row with a Debian toolchain whose architecture
//! this machine's dpkg knows (scripts/setup adds them): built by Debian, not by us, it must
//! pass its row's glibc platform, loader, libraries and run, from Debian's cross sysroot
//! (`/usr/<triple>`, from `libc6-<arch>-cross`) with no foreign libc installed on the host.
//!
//! The .deb comes from `apt-get download hello:<arch>=VERSION` (apt checks it against the
//! signed archive index) and is unpacked once under `<target>/mab-fixtures/debian-hello-v1/`.
//! When apt cannot fetch, the row skips with a note, except under `CI=true`.

use crate::harness::{Outcome, check_of, mab};
use crate::support::fixtures_base;
use mab_verify::platform::{ARCHES, Arch};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// bookworm's hello, the same version on every architecture.
const VERSION: &str = "2.10-3";
const DIR: &str = "debian-hello-v1";
const GREETING: &str = "Hello, world!";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Debian architectures dpkg installs for here: the native one and the added foreign ones.
fn dpkg_arches() -> Vec<String> {
    let mut arches = Vec::new();
    for flag in ["--print-architecture", "--print-foreign-architectures"] {
        if let Ok(out) = Command::new("dpkg").arg(flag).output() {
            arches.extend(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_string),
            );
        }
    }
    arches
}

/// `usr/bin/hello` of `hello:<arch>`, downloaded and unpacked once; `Err` when apt cannot.
fn hello_deb(debian_arch: &str) -> Result<PathBuf, String> {
    let base = fixtures_base();
    let dir = base.join(DIR).join(debian_arch);
    let bin = dir.join("root/usr/bin/hello");
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::File::create(base.join(format!("{DIR}-{debian_arch}.lock"))).unwrap();
    lock.lock().unwrap();
    if bin.is_file() {
        return Ok(bin);
    }
    let deb = dir.join(format!("hello_{VERSION}_{debian_arch}.deb"));
    if !deb.is_file() {
        let out = Command::new("apt-get")
            .args(["download", &format!("hello:{debian_arch}={VERSION}")])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !out.status.success() || !deb.is_file() {
            return Err(format!(
                "apt-get download hello:{debian_arch}={VERSION}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let tmp = dir.join("root.tmp");
    let _ = fs::remove_dir_all(&tmp);
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tmp)
        .output()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    assert!(
        out.status.success(),
        "dpkg-deb -x {}: {out:?}",
        deb.display()
    );
    fs::rename(&tmp, dir.join("root")).unwrap();
    Ok(bin)
}

fn verify(bin: &Path, arch: &Arch, sysroot: Option<&str>) -> Outcome {
    let expect = arch.glibc_triples[0];
    let mut args: Vec<String> = vec![
        "--format".into(),
        "json".into(),
        "--expect".into(),
        expect.into(),
        "--expect-output".into(),
        GREETING.into(),
    ];
    if let Some(root) = sysroot {
        args.extend(["--sysroot".into(), root.into()]);
    }
    args.push(bin.display().to_string());
    mab::<_, String>(args)
}

#[test]
fn every_debian_port_hello_passes_from_its_sysroot() {
    let known = dpkg_arches();
    let mut covered = Vec::new();
    for arch in ARCHES {
        let Some(tc) = arch.toolchain else { continue };
        if !known.iter().any(|a| a == tc.debian_arch) {
            eprintln!(
                "note: {}: dpkg has no {} architecture here (scripts/setup adds the ones bookworm carries); not covered",
                arch.key(),
                tc.debian_arch
            );
            continue;
        }
        if arch.glibc_triples.is_empty() {
            continue;
        }
        let bin = match hello_deb(tc.debian_arch) {
            Ok(bin) => bin,
            Err(e) if ci() => panic!("Debian hello unavailable under CI=true: {e}"),
            Err(e) => {
                eprintln!("SKIP {}: {e}", arch.key());
                continue;
            }
        };
        // The host's own row runs from the host root; every other from Debian's cross sysroot.
        let sysroot = if arch.is_host() {
            None
        } else {
            arch.debian_cross_sysroot()
        };
        if let Some(root) = &sysroot
            && !Path::new(root).join("lib").is_dir()
        {
            assert!(!ci(), "{root} missing under CI=true (scripts/setup)");
            eprintln!(
                "SKIP {}: no {root} (install libc6-dev-{}-cross)",
                arch.key(),
                tc.debian_arch
            );
            continue;
        }
        let out = verify(&bin, arch, sysroot.as_deref());
        let artifact = &out.json()["artifacts"][0];
        assert_eq!(
            out.code, 0,
            "hello:{} under {} from {sysroot:?}: {artifact:#}",
            tc.debian_arch, arch.glibc_triples[0]
        );
        for id in [
            "elf.machine",
            "elf.interp",
            "elf.needed",
            "run.exec",
            "run.output",
        ] {
            let check = check_of(artifact, id);
            assert_eq!(
                check["status"], "pass",
                "hello:{} {id}: {check}",
                tc.debian_arch
            );
        }
        covered.push(tc.debian_arch);
    }
    eprintln!("Debian hello covered: {covered:?}");
    assert!(!covered.is_empty() || !ci(), "no Debian port covered");
}
