//! The fixtures are what they claim: each hello reads as its row, the Nix-like closures point
//! into their store, and the binaries really run (under qemu-user with the loader cure).

use crate::support;

use mab_verify::demo;
use mab_verify::inspect::closure::{FactCache, HostTree, resolve_closure};
use mab_verify::inspect::{BinaryFacts, Identity, Linkage, inspect_bytes};
use mab_verify::platform::{Arch, Libc, Os};
use mab_verify::rootfs::{Root, RootOrigin, resolve_in};
use rstest::rstest;
use std::path::Path;
use support::{expected_hello, fixtures, row};

/// Every row with a Debian toolchain; `cases_cover_every_row_with_a_toolchain` keeps this
/// list and the `#[case]`s below in step with the table.
const TOOLCHAIN_ROWS: &[&str] = &[
    "x86_64-linux",
    "i686-linux",
    "aarch64-linux",
    "armv7l-linux",
    "armv5tel-linux",
    "riscv64-linux",
    "powerpc64le-linux",
    "s390x-linux",
    "mips64el-linux",
];

fn read_facts(path: &Path) -> BinaryFacts {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    inspect_bytes(&bytes)
}

/// The fixture for `arch`, or `None` after checking that the toolchain really is missing.
fn hello_or_skip(arch: &Arch) -> Option<&'static Path> {
    let fx = fixtures();
    let hello = fx.hello_for(arch);
    if hello.is_none() {
        let reason = demo::missing_toolchain(arch);
        assert!(
            reason.is_some(),
            "{}: the toolchain is installed but no hello fixture was built",
            arch.nix_system()
        );
        eprintln!("skip {}: {}", arch.nix_system(), reason.unwrap_or_default());
    }
    hello
}

#[test]
fn cases_cover_every_row_with_a_toolchain() {
    let table: Vec<String> = support::toolchain_rows().map(|a| a.nix_system()).collect();
    assert_eq!(
        table, TOOLCHAIN_ROWS,
        "update TOOLCHAIN_ROWS and the #[case]s"
    );
}

#[rstest]
#[case::x86_64("x86_64-linux")]
#[case::i686("i686-linux")]
#[case::aarch64("aarch64-linux")]
#[case::armv7l("armv7l-linux")]
#[case::armv5tel("armv5tel-linux")]
#[case::riscv64("riscv64-linux")]
#[case::powerpc64le("powerpc64le-linux")]
#[case::s390x("s390x-linux")]
#[case::mips64el("mips64el-linux")]
fn hello_reads_as_its_row(#[case] system: &str) {
    let arch = row(system);
    let Some(path) = hello_or_skip(arch) else {
        return;
    };
    let facts = read_facts(path);
    let platform = facts
        .platform()
        .unwrap_or_else(|| panic!("{}: no platform in {:?}", path.display(), facts.identity));
    assert_eq!(platform.os, Os::Linux);
    assert!(
        platform.arch == arch,
        "{} was built for {system} but reads as {}",
        path.display(),
        platform.arch.nix_system()
    );
    assert_eq!(platform.libc, Some(Libc::Glibc), "{}", path.display());
    let elf = facts.elf().expect("an ELF");
    assert_eq!(
        elf.interpreter.as_deref(),
        Some(arch.glibc_loader),
        "Debian-style loader path"
    );
    assert!(
        elf.runpath.is_empty() && elf.rpath.is_empty(),
        "no RUNPATH in a Debian build"
    );
}

#[test]
fn every_nix_closure_points_into_its_store() {
    let fx = fixtures();
    assert_eq!(
        fx.nix.len(),
        fx.hello.len(),
        "every row with a hello also has a closure"
    );
    for c in &fx.nix {
        let who = c.arch.nix_system();
        let facts = read_facts(&c.bin);
        assert!(
            facts.platform().is_some_and(|p| p.arch == c.arch),
            "{who}: closure binary reads as {:?}",
            facts.platform().map(|p| p.arch.nix_system())
        );
        let elf = facts.elf().expect("an ELF");
        let interp = elf.interpreter.as_deref().unwrap_or_default();
        assert!(
            interp.starts_with("/nix/store/"),
            "{who}: interpreter {interp}"
        );
        assert_eq!(interp, c.loader, "{who}");
        assert!(
            !elf.runpath.is_empty(),
            "{who}: no DT_RUNPATH (--enable-new-dtags)"
        );
        for dir in &elf.runpath {
            assert!(dir.starts_with("/nix/store/"), "{who}: RUNPATH entry {dir}");
        }
        assert_eq!(elf.runpath, [c.glibc_lib_guest()], "{who}");

        let loader = resolve_in(&c.root, &c.loader).filter(|p| p.is_file());
        let loader =
            loader.unwrap_or_else(|| panic!("{who}: {} missing in {}", c.loader, c.root.display()));
        assert!(
            read_facts(&loader)
                .platform()
                .is_some_and(|p| p.arch == c.arch),
            "{who}: loader platform"
        );

        let root = Root::new(&c.root, RootOrigin::StoreRoot);
        let mut cache = FactCache::default();
        let closure = resolve_closure(
            elf,
            &c.bin_guest(),
            c.arch,
            &mut HostTree {
                root: &root,
                cache: &mut cache,
            },
        );
        assert!(!closure.libraries.is_empty(), "{who}: no DT_NEEDED");
        for lib in &closure.libraries {
            let found = lib
                .found
                .as_ref()
                .unwrap_or_else(|| panic!("{who}: {} unresolved", lib.name));
            assert!(
                found.guest_path.starts_with(&c.glibc_lib_guest()),
                "{who}: {} at {}",
                lib.name,
                found.guest_path
            );
        }

        let result = std::fs::canonicalize(&c.result).expect("result link resolves");
        assert_eq!(
            result,
            std::fs::canonicalize(&c.out).unwrap(),
            "{who}: result link"
        );
        assert!(
            std::fs::read_link(&c.result).unwrap().is_relative(),
            "{who}: result link is relative"
        );
        let store_name = c.out.file_name().unwrap().to_string_lossy();
        let (hash, _) = store_name.split_at(32);
        assert!(
            hash.chars()
                .all(|ch| "0123456789abcdfghijklmnpqrsvwxyz".contains(ch)),
            "{store_name}"
        );
    }
}

fn run_stdout(mut cmd: std::process::Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[rstest]
#[case::aarch64("aarch64-linux")]
#[case::s390x_big_endian("s390x-linux")]
fn fixtures_run_under_qemu_with_the_loader_cure(#[case] system: &str) {
    let arch = row(system);
    let Some(hello) = hello_or_skip(arch) else {
        return;
    };
    if !support::can_run(arch) {
        eprintln!(
            "skip {system}: {} not installed (apt-get install qemu-user)",
            arch.qemu
        );
        return;
    }
    let cmd = support::debian_run_command(arch, hello).expect("the sysroot has a loader");
    assert_eq!(
        run_stdout(cmd),
        expected_hello(arch),
        "Debian-style {system}"
    );

    let closure = fixtures()
        .nix_for(arch)
        .expect("a closure next to the hello");
    assert_eq!(
        run_stdout(closure.run_command()),
        expected_hello(arch),
        "Nix-like {system}"
    );
}

#[test]
fn broken_and_misbehaving_fixtures_are_what_they_claim() {
    let fx = fixtures();
    let host = support::host_row();
    let aarch64 = row("aarch64-linux");
    if let Some(p) = &fx.broken.wrong_loader {
        let f = read_facts(p);
        let elf = f.elf().expect("an ELF");
        assert!(f.platform().is_some_and(|p| p.arch == aarch64));
        assert_eq!(
            elf.interpreter.as_deref(),
            Some(row("x86_64-linux").glibc_loader)
        );
    }
    if let Some(p) = &fx.broken.softfloat_hf_loader {
        let f = read_facts(p);
        assert!(
            f.platform()
                .is_some_and(|p| p.arch == row("armv5tel-linux")),
            "soft-float row"
        );
        assert_eq!(
            f.elf().unwrap().interpreter.as_deref(),
            Some(row("armv7l-linux").glibc_loader)
        );
    }
    if let Some(p) = &fx.broken.truncated {
        assert!(
            matches!(read_facts(p).identity, Identity::Corrupt { .. }),
            "truncated: {:?}",
            read_facts(p).identity
        );
    }
    let not_elf = fx
        .broken
        .not_elf
        .as_ref()
        .expect("not-elf needs no toolchain");
    assert!(matches!(
        read_facts(not_elf).identity,
        Identity::NotBinary { .. }
    ));
    if let Some(c) = &fx.broken.missing_loader {
        assert!(!c.loader_host().exists() && c.bin.exists());
    }
    if let Some(c) = &fx.broken.mixed_closure {
        let lib = read_facts(&c.glibc_lib.join("libgcc_s.so.1"));
        assert!(
            lib.platform().is_some_and(|p| p.arch == host),
            "host libgcc_s in the copy"
        );
    }
    if let Some(p) = &fx.musl_dynamic {
        assert_eq!(
            read_facts(p).elf().unwrap().interpreter.as_deref(),
            Some(host.musl_loader)
        );
        assert_eq!(
            run_stdout(std::process::Command::new(p)),
            expected_hello(host)
        );
    }
    if let Some(p) = &fx.musl_static {
        assert_eq!(read_facts(p).elf().unwrap().linkage, Linkage::Static);
    }
    for s in &fx.sysroots {
        let target = std::fs::read_link(&s.loader_link).expect("a symlink");
        assert!(target.is_absolute(), "{}", target.display());
        assert!(s.lib_dir.join("libc.so.6").is_file() && s.lib_dir.join("libgcc_s.so.1").is_file());
    }
    // The host's liar runs natively: right exit code, wrong hello.
    if let Some(m) = fx.misbehaving_for(host) {
        assert_eq!(
            run_stdout(std::process::Command::new(&m.wrong_arch_output)),
            expected_hello(m.claimed_arch)
        );
        assert_ne!(m.claimed_arch.rust_arch, host.rust_arch);
        let status = std::process::Command::new(&m.exit_one).output().unwrap();
        assert_eq!(status.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&status.stdout),
            expected_hello(host)
        );
    }
}
