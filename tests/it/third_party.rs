//! Real third-party binaries: esbuild's per-platform npm packages (Go builds by esbuild's own
//! release process, not by us). Each gets its own platform from the table and fails the Linux
//! expectation of its CPU; the linux-arm one carries GOARM in Go's build info.
//!
//! The tarballs come from `npm pack @esbuild/<name>@VERSION` (the ordinary client), are
//! checked against the sha256 pinned below (a mismatch fails the test, it never skips), and
//! are unpacked once under `<target dir>/mab-fixtures/third-party-v1/`, under a file lock.
//! When npm cannot fetch them the tests skip with a note, except under `CI=true`.

use crate::harness::{Outcome, check_of, mab};
use crate::support::fixtures_base;
use mab_verify::platform::{Format, Os, Platform};
use sha2::Digest;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION: &str = "0.28.2";
const DIR: &str = "third-party-v1";

/// esbuild package (Node's `process.platform`-`process.arch`) and its tarball's sha256.
const PACKAGES: &[(&str, &str)] = &[
    (
        "android-arm64",
        "faf07e1f4ffd327051edaa982cceacff8a15138d4b7cdaa91064a1f0fe6f0943",
    ),
    (
        "freebsd-x64",
        "53e57271b5fc7ab39312b906d3ff84d0633cfd067332f740e4b6f1f46803fb8a",
    ),
    (
        "linux-arm",
        "bdf99344430174119a1403803b4400d1cb93340b6f8fad2433c7cd55841ad327",
    ),
    (
        "linux-arm64",
        "a96dbfa41d3ef5dbd1ef22b1c10d5187be9267e86093a870f06402a7ec931596",
    ),
    (
        "netbsd-x64",
        "caf02fee8a2332d26af62d0a0c53abc35a42de5bcb968d9b94986b2c00c94f95",
    ),
    (
        "openbsd-x64",
        "0dd9cf7fdb29b09cad6d2b191244adcd165444ec25d12ccbe098067d5a6d2ebf",
    ),
    (
        "sunos-x64",
        "86353429e0f040280094dae3073ac1ee9310545b532e1c34a1a3617e4608b9e4",
    ),
    (
        "win32-x64",
        "7286c3611b6f1f4c4d9ec90adcbc478407ff0d28ead96567f361d53e67613e19",
    ),
];

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The binary inside an esbuild package tarball.
fn member(name: &str) -> &'static str {
    if name.starts_with("win32-") {
        "package/esbuild.exe"
    } else {
        "package/bin/esbuild"
    }
}

/// `npm pack` into `dir`; `Err` when npm cannot fetch (offline, registry down).
fn npm_pack(name: &str, dir: &Path) -> Result<PathBuf, String> {
    let spec = format!("@esbuild/{name}@{VERSION}");
    let out = Command::new("npm")
        .args(["pack", &spec, "--pack-destination"])
        .arg(dir)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .output()
        .map_err(|e| format!("npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm pack {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let tgz = dir.join(format!("esbuild-{name}-{VERSION}.tgz"));
    if tgz.is_file() {
        Ok(tgz)
    } else {
        Err(format!("npm pack {spec} wrote no {}", tgz.display()))
    }
}

/// Extracts `member` of a gzipped tarball to `dest` (executable), via a temporary file.
fn extract(tgz: &[u8], member: &str, dest: &Path) {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().expect("tarball entries") {
        let mut entry = entry.expect("tarball entry");
        if entry.path().expect("entry path").as_ref() != Path::new(member) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read tarball member");
        let tmp = dest.with_extension("tmp");
        fs::write(&tmp, &bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::rename(&tmp, dest).unwrap();
        return;
    }
    panic!("{member} not in the tarball");
}

/// Fetches, verifies and unpacks every package (once per target dir); `Err` when npm cannot.
fn prepare() -> Result<Vec<(&'static str, PathBuf)>, String> {
    let base = fixtures_base();
    let dir = base.join(DIR);
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::File::create(base.join(format!("{DIR}.lock"))).unwrap();
    lock.lock().unwrap();
    let mut bins = Vec::new();
    for &(name, sha) in PACKAGES {
        let bin_dir = dir.join(name);
        let bin = bin_dir.join(Path::new(member(name)).file_name().unwrap());
        let tgz = dir.join(format!("esbuild-{name}-{VERSION}.tgz"));
        if !tgz.is_file() {
            let staging = dir.join(format!("{name}.download"));
            let _ = fs::remove_dir_all(&staging);
            fs::create_dir_all(&staging).unwrap();
            let got = npm_pack(name, &staging)?;
            fs::rename(got, &tgz).unwrap();
            let _ = fs::remove_dir_all(&staging);
        }
        let bytes = fs::read(&tgz).unwrap();
        let actual = sha256_hex(&bytes);
        if actual != sha {
            // Keep nothing that failed the pin, so a fixed registry is picked up next time.
            let _ = fs::remove_file(&tgz);
            let _ = fs::remove_dir_all(&bin_dir);
            panic!("@esbuild/{name}@{VERSION}: tarball sha256 is {actual}, pinned {sha}");
        }
        if !bin.is_file() {
            fs::create_dir_all(&bin_dir).unwrap();
            extract(&bytes, member(name), &bin);
        }
        bins.push((name, bin));
    }
    lock.unlock().unwrap();
    Ok(bins)
}

/// The unpacked binary of package `name`, or `None` (after a note) when npm cannot fetch.
fn esbuild(name: &str) -> Option<PathBuf> {
    static BINS: OnceLock<Result<Vec<(&'static str, PathBuf)>, String>> = OnceLock::new();
    match BINS.get_or_init(prepare) {
        Ok(bins) => Some(
            bins.iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{name} is not a pinned package"))
                .1
                .clone(),
        ),
        Err(e) if ci() => panic!("third-party fixtures unavailable under CI=true: {e}"),
        Err(e) => {
            eprintln!("SKIP: third-party fixtures unavailable (set CI=true to fail): {e}");
            None
        }
    }
}

/// The platform a package is for, from the table: Node's names become Go's, which the
/// table parses (Node's `sunos` is Go's `solaris`, which the table calls illumos).
fn platform_of(name: &str) -> Platform {
    let (os, arch) = name.split_once('-').unwrap();
    let os = match os {
        "win32" => "windows",
        "sunos" => "solaris",
        other => other,
    };
    let arch = match arch {
        "x64" => "amd64",
        "ia32" => "386",
        other => other,
    };
    Platform::parse(&format!("{os}/{arch}"))
        .unwrap_or_else(|e| panic!("{name}: {os}/{arch} is not in the table: {e}"))
}

fn verify(bin: &Path, expect: Option<&str>) -> Outcome {
    let mut args = vec!["--format".into(), "json".into(), "--no-run".into()];
    if let Some(e) = expect {
        args.extend(["--expect".into(), e.to_string()]);
    }
    args.push(bin.display().to_string());
    mab::<_, String>(args)
}

/// The package's own platform is what the tool reports, with the table's OS name; under the
/// Linux platform of the same CPU it exits 1 with the format or OS check failing.
fn gets_its_own_platform_and_fails_linux(name: &str) {
    let Some(bin) = esbuild(name) else {
        return;
    };
    let want = platform_of(name);
    assert_ne!(want.os, Os::Linux, "{name}");
    let plain = verify(&bin, None);
    let artifact = &plain.json()["artifacts"][0];
    assert_eq!(artifact["platform"], want.oci(), "{name}: {artifact:#}");
    if want.format() == Format::Elf {
        assert_eq!(artifact["facts"]["os"], want.os.as_str(), "{name}");
    }
    let linux = Platform::linux(want.arch).oci();
    let wrong = verify(&bin, Some(&linux));
    assert_eq!(
        wrong.code, 1,
        "{name} under --expect {linux}: {}",
        wrong.stdout
    );
    let artifact = &wrong.json()["artifacts"][0];
    let failed: Vec<&str> = ["elf.format", "elf.machine", "elf.os"]
        .into_iter()
        .filter(|id| {
            artifact["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == *id && c["status"] == "fail")
        })
        .collect();
    assert!(
        !failed.is_empty(),
        "{name} under --expect {linux}: no format/machine/OS check fails: {artifact:#}"
    );
}

/// The package passes `--expect` of its own platform.
fn passes_its_own_platform(name: &str) {
    let Some(bin) = esbuild(name) else {
        return;
    };
    let want = platform_of(name).oci();
    let own = verify(&bin, Some(&want));
    assert_eq!(own.code, 0, "{name} under --expect {want}: {}", own.stdout);
}

#[test]
fn android_arm64_is_android() {
    gets_its_own_platform_and_fails_linux("android-arm64");
    passes_its_own_platform("android-arm64");
}

#[test]
fn freebsd_amd64_is_freebsd() {
    gets_its_own_platform_and_fails_linux("freebsd-x64");
    passes_its_own_platform("freebsd-x64");
}

#[test]
fn netbsd_amd64_is_netbsd() {
    gets_its_own_platform_and_fails_linux("netbsd-x64");
    passes_its_own_platform("netbsd-x64");
}

#[test]
fn openbsd_amd64_is_openbsd() {
    gets_its_own_platform_and_fails_linux("openbsd-x64");
    passes_its_own_platform("openbsd-x64");
}

/// Go's solaris/amd64 port: EI_OSABI 0 and no note, only the `/lib/amd64/ld.so.1` loader.
#[test]
fn sunos_amd64_is_illumos() {
    gets_its_own_platform_and_fails_linux("sunos-x64");
}

/// nixpkgs has no illumos attribute, but its `x86_64-solaris` double (the table's DOUBLES)
/// makes `illumos/amd64`, `solaris/amd64` and `x86_64-solaris` names of what the tool reports.
#[test]
fn sunos_amd64_passes_illumos_amd64() {
    passes_its_own_platform("sunos-x64");
    let Some(bin) = esbuild("sunos-x64") else {
        return;
    };
    for name in ["illumos/amd64", "x86_64-solaris", "x86_64-unknown-solaris"] {
        let out = verify(&bin, Some(name));
        assert_eq!(out.code, 0, "--expect {name}: {}", out.stdout);
    }
    for other in ["freebsd/amd64", "linux/amd64"] {
        let out = verify(&bin, Some(other));
        assert_eq!(out.code, 1, "--expect {other}: {}", out.stdout);
    }
}

#[test]
fn win32_amd64_is_windows() {
    gets_its_own_platform_and_fails_linux("win32-x64");
    passes_its_own_platform("win32-x64");
}

#[test]
fn linux_arm64_is_linux_arm64() {
    let Some(bin) = esbuild("linux-arm64") else {
        return;
    };
    let want = platform_of("linux-arm64");
    let out = verify(&bin, Some(&want.oci()));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["artifacts"][0]["platform"], want.oci());
}

/// `build\tGOARM=` as Go recorded it: `go version -m` when the installed Go can read the
/// file, else the module-info string itself, which Go brackets with fixed 16-byte sentinels
/// (runtime/debug's `infoStart`/`infoEnd`), read here without the tool.
fn goarm_recorded_by_go(bin: &Path) -> String {
    if let Ok(out) = Command::new("go").args(["version", "-m"]).arg(bin).output()
        && out.status.success()
        && let Some(v) = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("build\tGOARM="))
    {
        return v.to_string();
    }
    const START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    let data = fs::read(bin).unwrap();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(&data, START).expect("Go module info in the binary") + START.len();
    let len = find(&data[start..], END).expect("end of Go module info");
    String::from_utf8_lossy(&data[start..start + len])
        .lines()
        .find_map(|l| l.strip_prefix("build\tGOARM="))
        .expect("GOARM in Go's module info")
        .to_string()
}

/// esbuild 0.28.2 (go1.26.5) has no `.go.buildinfo` section, only the module info string:
/// the tool reads GOARM from that (before, elf.abi skipped and every ARM variant passed).
#[test]
fn linux_arm_reports_goarm_and_fails_older_variants() {
    let Some(bin) = esbuild("linux-arm") else {
        return;
    };
    let goarm: u8 = goarm_recorded_by_go(&bin)
        .parse()
        .expect("GOARM is a number");
    let own = format!("linux/arm/v{goarm}");
    let out = verify(&bin, None);
    assert_eq!(
        out.json()["artifacts"][0]["platform"],
        own,
        "{}",
        out.stdout
    );
    for v in 5..=7u8 {
        let slot = format!("linux/arm/v{v}");
        let out = verify(&bin, Some(&slot));
        let abi = check_of(&out.json()["artifacts"][0], "elf.abi").clone();
        if v >= goarm {
            assert_eq!(out.code, 0, "{slot}: {}", out.stdout);
            assert_eq!(abi["status"], "pass", "{slot}: {abi}");
        } else {
            assert_eq!(out.code, 1, "{slot}: {}", out.stdout);
            assert_eq!(abi["status"], "fail", "{slot}: {abi}");
        }
    }
}

/// A binary inside a wheel on PyPI: built by the package's own release process (CPython's
/// Windows wheels by MSVC, Pillow's iOS wheels by Xcode), fetched with `pip download`.
struct Wheel {
    /// The pkgsCross attribute the binary is for.
    attr: &'static str,
    requirement: &'static str,
    /// pip's `--platform` tag and `--python-version`.
    tag: &'static str,
    python: &'static str,
    file: &'static str,
    sha256: &'static str,
    member: &'static str,
}

const WHEELS: &[Wheel] = &[
    Wheel {
        attr: "x86_64-windows",
        requirement: "markupsafe==3.0.3",
        tag: "win_amd64",
        python: "3.13",
        file: "markupsafe-3.0.3-cp313-cp313-win_amd64.whl",
        sha256: "9a1abfdc021a164803f4d485104931fb8f8c1efd55bc6b748d2f5774e78b62c5",
        member: "markupsafe/_speedups.cp313-win_amd64.pyd",
    },
    Wheel {
        attr: "aarch64-windows",
        requirement: "markupsafe==3.0.3",
        tag: "win_arm64",
        python: "3.13",
        file: "markupsafe-3.0.3-cp313-cp313-win_arm64.whl",
        sha256: "7e68f88e5b8799aa49c85cd116c932a1ac15caaa3f5db09087854d218359e485",
        member: "markupsafe/_speedups.cp313-win_arm64.pyd",
    },
    Wheel {
        attr: "iphone64",
        requirement: "pillow==13.0.0",
        tag: "ios_13_0_arm64_iphoneos",
        python: "3.13",
        file: "pillow-13.0.0-cp313-cp313-ios_13_0_arm64_iphoneos.whl",
        sha256: "e98b4f91f99b24b1da72e10621ba181f7281922384a7403094debb4199de6c00",
        member: "PIL/_imagingmorph.cpython-313-iphoneos.so",
    },
    Wheel {
        attr: "iphone64-simulator",
        requirement: "pillow==13.0.0",
        tag: "ios_13_0_x86_64_iphonesimulator",
        python: "3.13",
        file: "pillow-13.0.0-cp313-cp313-ios_13_0_x86_64_iphonesimulator.whl",
        sha256: "2d50500a4a3bc6469adcdb319cf05d688b08ca3bf0f22a05339f3b25b433a599",
        member: "PIL/_imagingmorph.cpython-313-iphonesimulator.so",
    },
];

/// `pip download` of one pinned wheel into `dir`; `Err` when pip cannot fetch.
fn pip_download(w: &Wheel, dir: &Path) -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--platform", w.tag, "--python-version", w.python, "-d"])
        .arg(dir)
        .arg(w.requirement)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .map_err(|e| format!("python3 -m pip: {e}"))?;
    let got = dir.join(w.file);
    if out.status.success() && got.is_file() {
        Ok(got)
    } else {
        Err(format!(
            "pip download {} ({}) failed: {}",
            w.requirement,
            w.tag,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The wheel's binary for `attr`, checked against its pin and unpacked once (with Python's
/// own zipfile: a wheel is a zip); `None` after a note when pip cannot fetch, except in CI.
fn wheel_binary(attr: &str) -> Option<PathBuf> {
    let w = WHEELS
        .iter()
        .find(|w| w.attr == attr)
        .unwrap_or_else(|| panic!("{attr}: no pinned wheel"));
    let base = fixtures_base();
    let dir = base.join(DIR).join("wheels");
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::File::create(base.join(format!("{DIR}-wheels.lock"))).unwrap();
    lock.lock().unwrap();
    let whl = dir.join(w.file);
    let unpacked = dir.join(format!("{}.d", w.file));
    let bin = unpacked.join(w.member);
    if !whl.is_file() {
        let staging = dir.join(format!("{}.download", w.file));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).unwrap();
        match pip_download(w, &staging) {
            Ok(got) => fs::rename(got, &whl).unwrap(),
            Err(e) if ci() => panic!("wheel fixtures unavailable under CI=true: {e}"),
            Err(e) => {
                eprintln!("SKIP: wheel fixture unavailable (set CI=true to fail): {e}");
                return None;
            }
        }
        let _ = fs::remove_dir_all(&staging);
    }
    let actual = sha256_hex(&fs::read(&whl).unwrap());
    if actual != w.sha256 {
        let _ = fs::remove_file(&whl);
        let _ = fs::remove_dir_all(&unpacked);
        panic!("{}: sha256 is {actual}, pinned {}", w.file, w.sha256);
    }
    if !bin.is_file() {
        let tmp = dir.join(format!("{}.unpack", w.file));
        let _ = fs::remove_dir_all(&tmp);
        let out = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&whl)
            .arg(&tmp)
            .output()
            .expect("python3 -m zipfile");
        assert!(out.status.success(), "unpacking {}: {out:?}", w.file);
        let _ = fs::remove_dir_all(&unpacked);
        fs::rename(&tmp, &unpacked).unwrap();
    }
    lock.unlock().unwrap();
    assert!(bin.is_file(), "{} not in {}", w.member, w.file);
    Some(bin)
}

/// MSVC-built extension modules (vcruntime140.dll, a Rich header) are the `*-windows` (MSVC)
/// attributes, not mingw-w64's ucrt or msvcrt ones; every Windows attribute of the CPU in
/// the table is tried.
#[rstest::rstest]
#[case::x86_64("x86_64-windows")]
#[case::aarch64("aarch64-windows")]
fn an_msvc_binary_is_msvc(#[case] attr: &str) {
    let Some(bin) = wheel_binary(attr) else {
        return;
    };
    crate::foreign_platforms::windows_runtime_matrix(&bin, attr);
}

/// Pillow's iOS extension modules: LC_BUILD_VERSION platform 2 (iphoneos) or 7 (simulator)
/// makes them iOS, which a macOS expectation of the same CPU fails, and so does Linux.
#[rstest::rstest]
#[case::device("iphone64")]
#[case::simulator("iphone64-simulator")]
fn an_ios_library_is_ios_not_darwin(#[case] attr: &str) {
    let Some(bin) = wheel_binary(attr) else {
        return;
    };
    let want = Platform::parse(attr).unwrap();
    assert_eq!(want.os, Os::Ios, "{attr}");
    let plain = verify(&bin, None);
    assert_eq!(
        plain.json()["artifacts"][0]["platform"],
        want.oci(),
        "{attr}"
    );
    for own in [attr.to_string(), want.oci()] {
        let out = verify(&bin, Some(&own));
        assert_eq!(out.code, 0, "{attr} under {own}: {}", out.stdout);
    }
    let darwin = Platform {
        os: Os::Darwin,
        ..want
    };
    let darwin = Platform::parse(&darwin.oci()).unwrap().oci();
    for wrong in [darwin, Platform::linux(want.arch).oci()] {
        let out = verify(&bin, Some(&wrong));
        assert_eq!(out.code, 1, "{attr} under {wrong}: {}", out.stdout);
        let format = check_of(&out.json()["artifacts"][0], "elf.format").clone();
        assert_eq!(format["status"], "fail", "{attr} under {wrong}: {format}");
    }
}
