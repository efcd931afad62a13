//! Real binaries for other OSes and libcs, built here with Zig (PyPI `ziglang`, see
//! scripts/setup), llvm-lipo and Go: each gets its own platform from the table, and fails
//! the Linux expectation of its CPU.

use mab_verify::platform::{Libc, Os, Platform, SYSTEMS};
use rstest::rstest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const HELLO_C: &str = "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n";
const LIB_C: &str = "#include <stdio.h>\nint f(int x){printf(\"%d\\n\",x);return x+1;}\n";
const HELLO_GO: &str = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n";

static BUILD: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target")
}

fn fixtures_dir() -> PathBuf {
    let dir = target_dir().join("mab-fixtures/foreign-v1");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zig() -> Option<PathBuf> {
    let p = target_dir().join("zig/py/ziglang/zig");
    if p.is_file() {
        Some(p)
    } else {
        crate::harness::missing_tool("zig is not installed");
        None
    }
}

/// Build `name` once (cached under target/), with `cmd` writing to the path it is given.
fn cached(name: &str, cmd: impl FnOnce(&Path) -> Command) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = fixtures_dir().join(name);
    if out.is_file() {
        return out;
    }
    let tmp = fixtures_dir().join(format!("{name}.tmp"));
    let mut c = cmd(&tmp);
    let result = c.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        result.status.success(),
        "building {name} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

fn source(name: &str, text: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    if std::fs::read_to_string(&p).ok().as_deref() != Some(text) {
        std::fs::write(&p, text).unwrap();
    }
    p
}

fn zig_cc(name: &str, target: &str, args: &[&str], src: &Path) -> Option<PathBuf> {
    let zig = zig()?;
    let cache = target_dir().join("zig/cache");
    Some(cached(name, |out| {
        let mut c = Command::new(&zig);
        c.env("ZIG_GLOBAL_CACHE_DIR", &cache)
            .env("ZIG_LOCAL_CACHE_DIR", &cache)
            .args(["cc", "-target", target])
            .args(args)
            .arg(src)
            .arg("-o")
            .arg(out);
        c
    }))
}

struct Out {
    code: i32,
    stdout: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
    fn check(&self, id: &str) -> Value {
        self.json()["artifacts"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn mab(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_mab-verify"))
        .env("XDG_CACHE_HOME", crate::harness::fresh_cache_home())
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn verify(file: &Path, expect: Option<&str>) -> Out {
    let mut args = vec!["--no-run", "--format", "json"];
    if let Some(e) = expect {
        args.extend(["--expect", e]);
    }
    let path = file.to_str().unwrap();
    args.push(path);
    mab(&args)
}

/// The Linux platform of the same CPU, or linux/amd64 for a CPU without Linux (wasm).
fn linux_of(p: &Platform) -> String {
    if p.arch.oses().contains(&Os::Linux) {
        Platform::linux(p.arch).oci()
    } else {
        "linux/amd64".into()
    }
}

/// Each fixture is named by the pkgsCross attribute it stands for; its platform comes from
/// the table, not from this list.
#[rstest]
#[case::freebsd("x86_64-freebsd", "x86_64-freebsd")]
#[case::netbsd("x86_64-netbsd", "x86_64-netbsd")]
#[case::macos_x86_64("x86_64-darwin", "x86_64-macos")]
#[case::macos_aarch64("aarch64-darwin", "aarch64-macos")]
#[case::windows_ucrt("ucrt64", "x86_64-windows-gnu")]
#[case::wasi("wasi32", "wasm32-wasi")]
fn another_os_gets_its_own_platform(#[case] attr: &str, #[case] zig_target: &str) {
    let src = source("hello.c", HELLO_C);
    let Some(bin) = zig_cc(&format!("hello-{attr}"), zig_target, &[], &src) else {
        return;
    };
    let want = Platform::parse(attr).unwrap();
    let out = verify(&bin, None);
    assert_eq!(out.json()["artifacts"][0]["platform"], want.oci(), "{attr}");
    let own = verify(&bin, Some(attr));
    assert_eq!(own.code, 0, "--expect {attr}: {}", own.stdout);
    let linux = linux_of(&want);
    let wrong = verify(&bin, Some(&linux));
    assert_eq!(
        wrong.code, 1,
        "{attr} under --expect {linux}: {}",
        wrong.stdout
    );
    assert_eq!(wrong.check("elf.format")["status"], "fail", "{attr}");
}

/// Debian's mingw-w64 gcc (`gcc-mingw-w64-*`, scripts/setup), which links msvcrt.dll.
fn mingw_gcc(name: &str, triple: &str, src: &Path) -> Option<PathBuf> {
    let gcc = format!("{triple}-gcc");
    if Command::new(&gcc).arg("--version").output().is_err() {
        crate::harness::missing_tool(&format!("{gcc} is not installed"));
        return None;
    }
    Some(cached(name, |out| {
        let mut c = Command::new(&gcc);
        c.arg(src).arg("-o").arg(out);
        c
    }))
}

/// A Windows binary under every Windows attribute of its CPU in the table: those with its
/// C runtime pass, the others fail `elf.interp`; the Linux platform of the CPU fails
/// `elf.format`. `attr` is the attribute the file was built for.
pub(crate) fn windows_runtime_matrix(bin: &Path, attr: &str) {
    let own = Platform::parse(attr).unwrap();
    let libc = own.libc.expect("a Windows attribute pins its C runtime");
    let plain = verify(bin, None);
    let facts = &plain.json()["artifacts"][0]["facts"];
    assert_eq!(facts["libc"], libc.name(), "{attr}: {facts:#}");
    let same_cpu: Vec<_> = SYSTEMS
        .iter()
        .filter(|s| s.os == Os::Windows && s.arch == own.arch.key())
        .collect();
    // i686 has only msvcrt attributes; elsewhere some attribute must be able to fail.
    assert!(!same_cpu.is_empty(), "{attr}");
    for s in same_cpu {
        let out = verify(bin, Some(s.attr));
        let interp = out.check("elf.interp");
        if s.libc == Some(libc) {
            assert_eq!(out.code, 0, "{attr} file under {}: {}", s.attr, out.stdout);
            assert_eq!(interp["status"], "pass", "{attr} under {}", s.attr);
        } else {
            assert_eq!(out.code, 1, "{attr} file under {}: {}", s.attr, out.stdout);
            assert_eq!(
                interp["status"], "fail",
                "{attr} under {}: {interp}",
                s.attr
            );
        }
    }
    let linux = linux_of(&own);
    let wrong = verify(bin, Some(&linux));
    assert_eq!(wrong.code, 1, "{attr} under {linux}: {}", wrong.stdout);
    assert_eq!(wrong.check("elf.format")["status"], "fail", "{attr}");
}

#[rstest]
#[case::mingw_w64_x86_64("mingwW64", "x86_64-w64-mingw32")]
#[case::mingw_w64_i686("mingw32", "i686-w64-mingw32")]
fn a_mingw_msvcrt_binary_is_msvcrt(#[case] attr: &str, #[case] triple: &str) {
    let src = source("hello.c", HELLO_C);
    let Some(bin) = mingw_gcc(&format!("hello-{attr}.exe"), triple, &src) else {
        return;
    };
    windows_runtime_matrix(&bin, attr);
}

#[rstest]
#[case::x86_64("ucrt64", "x86_64-windows-gnu")]
fn a_zig_ucrt_binary_is_mingw_ucrt(#[case] attr: &str, #[case] zig_target: &str) {
    let src = source("hello.c", HELLO_C);
    let Some(bin) = zig_cc(&format!("hello-{attr}"), zig_target, &[], &src) else {
        return;
    };
    windows_runtime_matrix(&bin, attr);
}

#[test]
fn a_universal2_file_is_every_slice() {
    let src = source("hello.c", HELLO_C);
    let (Some(x86), Some(arm)) = (
        zig_cc("hello-x86_64-darwin", "x86_64-macos", &[], &src),
        zig_cc("hello-aarch64-darwin", "aarch64-macos", &[], &src),
    ) else {
        return;
    };
    let fat = cached("hello-universal2", |out| {
        let mut c = Command::new("llvm-lipo-14");
        c.arg("-create").arg(&x86).arg(&arm).arg("-output").arg(out);
        c
    });
    for attr in ["aarch64-darwin", "x86_64-darwin"] {
        let out = verify(&fat, Some(attr));
        assert_eq!(out.code, 0, "--expect {attr}: {}", out.stdout);
    }
    let out = verify(&fat, Some("linux/arm64"));
    assert_eq!(out.code, 1, "{}", out.stdout);
}

/// Rows whose real fixture Zig builds here rather than a Debian cross compiler: those of
/// [`zig_linux`], and wasm32 (the `wasi32` case of `another_os_gets_its_own_platform`).
pub(crate) fn zig_builds_a_fixture_for(key: &str) -> bool {
    zig_linux(key).is_some() || key == "wasm32"
}

/// Zig's CPU word and ABI suffix for a row key (its own naming, not the table's).
fn zig_linux(
    key: &str,
) -> Option<(
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)> {
    Some(match key {
        "x86_64" => ("x86_64", "gnu", "musl", &[]),
        "i686" => ("x86", "gnu", "musl", &[]),
        "aarch64" => ("aarch64", "gnu", "musl", &[]),
        "armv6l" => ("arm", "gnueabihf", "musleabihf", &["-mcpu=arm1176jzf_s"]),
        "riscv64" => ("riscv64", "gnu", "musl", &[]),
        "powerpc64le" => ("powerpc64le", "gnu", "musl", &[]),
        _ => return None,
    })
}

/// Every Linux row where nixpkgs has both a glibc and a musl attribute.
fn rows_with_both() -> Vec<(&'static str, &'static str, &'static str)> {
    let linux = |libc| {
        SYSTEMS
            .iter()
            .filter(move |s| s.os == Os::Linux && s.libc == Some(libc))
    };
    linux(Libc::Glibc)
        .filter_map(|g| {
            linux(Libc::Musl)
                .find(|m| m.arch == g.arch)
                .map(|m| (g.arch, g.attr, m.attr))
        })
        .fold(Vec::new(), |mut v, row| {
            if !v.iter().any(|(a, ..)| *a == row.0) {
                v.push(row);
            }
            v
        })
}

#[test]
fn glibc_and_musl_libraries_are_told_apart_on_every_row_with_both() {
    let src = source("lib.c", LIB_C);
    let mut covered = Vec::new();
    for (key, glibc_attr, musl_attr) in rows_with_both() {
        let Some((cpu, gnu, musl, extra)) = zig_linux(key) else {
            eprintln!("note: no zig target known for row {key}; not covered");
            continue;
        };
        let mut args = vec!["-shared", "-fPIC"];
        args.extend(extra);
        let (Some(glibc_lib), Some(musl_lib)) = (
            zig_cc(
                &format!("lib-{key}-glibc.so"),
                &format!("{cpu}-linux-{gnu}"),
                &args,
                &src,
            ),
            zig_cc(
                &format!("lib-{key}-musl.so"),
                &format!("{cpu}-linux-{musl}"),
                &args,
                &src,
            ),
        ) else {
            return;
        };
        // A musl library passes its own platform, with no musl root anywhere.
        let own = verify(&musl_lib, Some(musl_attr));
        assert_eq!(
            own.code, 0,
            "{key} musl lib under {musl_attr}: {}",
            own.stdout
        );
        for (lib, attr, lib_libc) in [
            (&glibc_lib, musl_attr, "glibc"),
            (&musl_lib, glibc_attr, "musl"),
        ] {
            let out = verify(lib, Some(attr));
            let interp = out.check("elf.interp");
            assert_eq!(
                interp["status"], "fail",
                "{key}: {lib_libc} lib under {attr}: {interp}"
            );
            assert_eq!(out.code, 1);
        }
        let glibc_own = verify(&glibc_lib, Some(glibc_attr));
        assert_eq!(
            glibc_own.check("elf.interp")["status"],
            "pass",
            "{key}: {}",
            glibc_own.stdout
        );
        covered.push(key);
    }
    eprintln!("libc rows covered: {covered:?}");
    assert!(covered.len() >= 4 || zig().is_none(), "{covered:?}");
}

#[test]
fn a_static_armv7_softfp_binary_is_arm_v7_and_not_v5() {
    let src = source("hello.c", HELLO_C);
    let Some(bin) = zig_cc(
        "hello-armv7-static-softfp",
        "arm-linux-musleabi",
        &["-mcpu=cortex_a7", "-static"],
        &src,
    ) else {
        return;
    };
    let out = verify(&bin, Some("linux/arm/v7"));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = verify(&bin, Some("linux/arm/v5"));
    assert_eq!(out.check("elf.abi")["status"], "fail", "{}", out.stdout);
}

fn go_build(name: &str, env: &[(&str, &str)]) -> Option<PathBuf> {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skip: go not installed (scripts/setup installs golang-go)");
        return None;
    }
    let src = source("hello.go", HELLO_GO);
    let cache = target_dir().join("go-cache");
    Some(cached(name, |out| {
        let mut c = Command::new("go");
        c.env("GOCACHE", &cache)
            .env("GOPATH", target_dir().join("go-path"))
            .env("GO111MODULE", "off")
            .env("CGO_ENABLED", "0")
            .envs(env.iter().copied())
            .args(["build", "-o"])
            .arg(out)
            .arg(&src);
        c
    }))
}

#[test]
fn a_go_armv7_binary_fails_v5_and_v6() {
    let Some(bin) = go_build(
        "go-armv7",
        &[("GOOS", "linux"), ("GOARCH", "arm"), ("GOARM", "7")],
    ) else {
        return;
    };
    let ok = verify(&bin, Some("linux/arm/v7"));
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    for older in ["linux/arm/v6", "linux/arm/v5"] {
        let out = verify(&bin, Some(older));
        assert_eq!(out.code, 1, "{older}: {}", out.stdout);
        assert_eq!(out.check("elf.abi")["status"], "fail", "{older}");
    }
}

#[test]
fn a_go_amd64_v3_binary_warns_in_a_plain_amd64_slot() {
    let Some(bin) = go_build(
        "go-amd64-v3",
        &[("GOOS", "linux"), ("GOARCH", "amd64"), ("GOAMD64", "v3")],
    ) else {
        return;
    };
    let out = verify(&bin, Some("linux/amd64"));
    assert_eq!(out.check("elf.abi")["status"], "warn", "{}", out.stdout);
}

#[test]
fn a_go_amd64_v3_binary_fails_a_v2_slot_and_fits_v3() {
    let Some(bin) = go_build(
        "go-amd64-v3",
        &[("GOOS", "linux"), ("GOARCH", "amd64"), ("GOAMD64", "v3")],
    ) else {
        return;
    };
    let v2 = verify(&bin, Some("linux/amd64/v2"));
    assert_eq!(v2.check("elf.abi")["status"], "fail", "{}", v2.stdout);
    assert_eq!(v2.code, 1);
    for slot in ["linux/amd64/v3", "linux/amd64/v4"] {
        let out = verify(&bin, Some(slot));
        assert_eq!(
            out.check("elf.abi")["status"],
            "pass",
            "{slot}: {}",
            out.stdout
        );
    }
}

/// `mab-verify platforms` says UNVERIFIED for every row and `[unverified]` for every system
/// no fixture backs, and never for one that is backed.
#[test]
fn platforms_marks_every_unverified_row_and_system() {
    use mab_verify::platform::{ARCHES, Verified, all_systems};
    let out = mab(&["platforms"]);
    assert_eq!(out.code, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for arch in ARCHES {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(arch.key()))
            .unwrap_or_else(|| panic!("no row line for {}", arch.key()));
        let marked = line.contains("UNVERIFIED");
        assert_eq!(
            marked,
            arch.verified == Verified::Unverified,
            "{}: {line}",
            arch.key()
        );
    }
    let mut unverified = 0;
    for s in all_systems() {
        let line = lines
            .iter()
            .filter(|l| l.starts_with("    "))
            .find(|l| l.split_whitespace().next() == Some(s.attr))
            .unwrap_or_else(|| panic!("no line for {}", s.attr));
        let marked = line.contains("[unverified]");
        assert_eq!(
            marked,
            s.verified == Verified::Unverified,
            "{}: {line}",
            s.attr
        );
        unverified += usize::from(marked);
    }
    eprintln!("systems without a fixture: {unverified}");
}
