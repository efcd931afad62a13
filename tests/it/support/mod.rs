//! Shared test support: real cross-compiled fixtures, built once per target dir and reused.
//!
//! `fixtures()` builds every fixture the machine's toolchains allow into
//! `<target dir>/mab-fixtures/v1/`, under a file lock and behind a completion stamp, so
//! parallel test binaries share one build and later runs (and CI caches of `target/`) reuse
//! it. Rows whose toolchain is missing are absent; a note on stderr says why.
//!
//! Layout below `v1/` (`<key>` is the row's key, `<h>` a deterministic 32-char store hash):
//! - `hello/<key>/multi-arch-demo`                     Debian-style demo of each buildable row
//! - `musl/{dynamic,static}/multi-arch-demo`           host C hello built with musl-gcc
//! - `nix/<key>/`                                      fake root of a Nix-like closure:
//!   `nix/store/<h>-glibc-<triple>-2.36/lib/*`, `nix/store/<h>-multi-arch-demo-<triple>-1.0.0/bin/multi-arch-demo`,
//!   `result -> nix/store/<h>-multi-arch-demo-…` (host row: `glibc-2.36`, `multi-arch-demo-1.0.0`)
//! - `broken/{wrong-loader,softfloat-hf-loader,truncated,not-elf}/multi-arch-demo`,
//!   `broken/{mixed-closure,missing-loader}/` (copies of the aarch64 closure root)
//! - `misbehaving/<key>/{wrong-arch-output,exit-one,sleeper,flood}` (host row and aarch64)
//! - `sysroots/<key>/` Debian multiarch sysroot with an absolute loader symlink
//!   (aarch64, powerpc64le)
//!
//! Container images made from the closures live in `images-v1/` beside `v1/`: see [`images`].

mod build;
pub mod images;

use mab_verify::demo;
use mab_verify::platform::{ARCHES, Arch, Platform};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Bump when the layout changes in a way the fingerprint cannot see.
pub const FIXTURES_VERSION: &str = "v1";

/// Every fixture that exists on this machine.
#[derive(Debug)]
pub struct Fixtures {
    /// `<target dir>/mab-fixtures/v1`.
    pub dir: PathBuf,
    /// Debian-style demo of every buildable row (standard loader path).
    pub hello: Vec<(&'static Arch, PathBuf)>,
    /// Host C hello linked against musl (loader `/lib/ld-musl-<arch>.so.1`).
    pub musl_dynamic: Option<PathBuf>,
    /// Host C hello linked statically against musl.
    pub musl_static: Option<PathBuf>,
    /// Nix-like closure of every buildable glibc row.
    pub nix: Vec<NixClosure>,
    pub broken: Broken,
    /// Misbehaving run fixtures, for the host row and aarch64.
    pub misbehaving: Vec<Misbehaving>,
    /// Debian multiarch sysroots with absolute loader symlinks (aarch64, powerpc64le).
    pub sysroots: Vec<Sysroot>,
    /// Rows that could not be built here, and why.
    pub missing: Vec<(&'static Arch, String)>,
}

/// A fake root holding a Nix-like store closure of the demo.
#[derive(Debug, Clone)]
pub struct NixClosure {
    pub arch: &'static Arch,
    /// The fake root: holds `nix/store/…` and `result`.
    pub root: PathBuf,
    /// Host path of the demo's store output (`<root>/nix/store/<h>-multi-arch-demo-…`).
    pub out: PathBuf,
    /// Host path of `<out>/bin/multi-arch-demo`.
    pub bin: PathBuf,
    /// `<root>/result`, a relative symlink to the output.
    pub result: PathBuf,
    /// The binary's PT_INTERP, a guest path: `/nix/store/<h>-glibc-…/lib/<loader>`.
    pub loader: String,
    /// Host path of the store glibc's `lib/` (also the binary's RUNPATH, as a guest path).
    pub glibc_lib: PathBuf,
}

/// Deliberately broken artifacts; each is `None` when its row cannot be built here.
#[derive(Debug, Default)]
pub struct Broken {
    /// aarch64 demo whose PT_INTERP is the x86_64 glibc loader.
    pub wrong_loader: Option<PathBuf>,
    /// armv5tel (soft-float) demo whose PT_INTERP is the armv7l hard-float loader.
    pub softfloat_hf_loader: Option<PathBuf>,
    /// aarch64 closure whose store glibc `libgcc_s.so.1` is the host's x86_64 one.
    pub mixed_closure: Option<NixClosure>,
    /// aarch64 closure without its loader file.
    pub missing_loader: Option<NixClosure>,
    /// The first third of the aarch64 demo's bytes.
    pub truncated: Option<PathBuf>,
    /// An executable `#!/bin/sh` script that prints the host's hello.
    pub not_elf: Option<PathBuf>,
}

/// C variants of the demo that misbehave at run time (dynamic glibc, Debian style).
#[derive(Debug, Clone)]
pub struct Misbehaving {
    pub arch: &'static Arch,
    /// Prints `Hello from linux/<claimed_arch.rust_arch>!` instead of its own row's.
    pub wrong_arch_output: PathBuf,
    /// The row whose hello `wrong_arch_output` prints.
    pub claimed_arch: &'static Arch,
    /// Prints the right hello, then exits 1.
    pub exit_one: PathBuf,
    /// Prints the hello and `sleeper parent=PID child=PID`, forks a sleeping child, sleeps forever.
    pub sleeper: PathBuf,
    /// Prints the hello, then 100 MiB to stdout, exits 0.
    pub flood: PathBuf,
}

/// A Debian multiarch-style sysroot: libraries in `lib/<gcc_triple>/`, and the loader's
/// standard path an ABSOLUTE symlink to `/lib/<gcc_triple>/<loader>`.
#[derive(Debug, Clone)]
pub struct Sysroot {
    pub arch: &'static Arch,
    pub dir: PathBuf,
    /// `<dir>/lib/<gcc_triple>`.
    pub lib_dir: PathBuf,
    /// `<dir><glibc_loader>`, the absolute symlink.
    pub loader_link: PathBuf,
}

impl Fixtures {
    pub fn hello_for(&self, arch: &Arch) -> Option<&Path> {
        self.hello
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, p)| p.as_path())
    }

    pub fn nix_for(&self, arch: &Arch) -> Option<&NixClosure> {
        self.nix.iter().find(|n| n.arch == arch)
    }

    pub fn misbehaving_for(&self, arch: &Arch) -> Option<&Misbehaving> {
        self.misbehaving.iter().find(|m| m.arch == arch)
    }

    pub fn sysroot_for(&self, arch: &Arch) -> Option<&Sysroot> {
        self.sysroots.iter().find(|s| s.arch == arch)
    }

    /// Why `arch` has no fixtures here, if it has none.
    pub fn missing_reason(&self, arch: &Arch) -> Option<&str> {
        self.missing
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, r)| r.as_str())
    }
}

impl NixClosure {
    /// Host path of the loader file (may be absent, as in `broken.missing_loader`).
    pub fn loader_host(&self) -> PathBuf {
        self.root.join(self.loader.trim_start_matches('/'))
    }

    /// The binary's path as the guest sees it (`/nix/store/…/bin/multi-arch-demo`).
    pub fn bin_guest(&self) -> String {
        let rel = self
            .bin
            .strip_prefix(&self.root)
            .expect("binary inside the root");
        format!("/{}", rel.display())
    }

    /// The store glibc's lib dir as a guest path (the binary's RUNPATH).
    pub fn glibc_lib_guest(&self) -> String {
        let rel = self
            .glibc_lib
            .strip_prefix(&self.root)
            .expect("glibc inside the root");
        format!("/{}", rel.display())
    }

    /// Runs the binary with the closure's own loader and libraries only (the loader cure).
    pub fn run_command(&self) -> Command {
        loader_cure_command(
            self.arch,
            &self.loader_host(),
            &[self.glibc_lib.as_path()],
            &self.bin,
        )
    }
}

/// The table row a name means; panics on names the table does not know.
pub fn row(name: &str) -> &'static Arch {
    Platform::parse(name)
        .unwrap_or_else(|e| panic!("{name} is not a platform: {e}"))
        .arch
}

/// The row this machine runs natively.
pub fn host_row() -> &'static Arch {
    Arch::host().expect("the host is a row of the platform table")
}

/// `Hello from linux/<rust_arch>!\n`, what the demo prints on `arch`.
pub fn expected_hello(arch: &Arch) -> String {
    format!("Hello from linux/{}!\n", arch.rust_arch)
}

/// Whether this row's qemu-user is installed (the host row never needs it).
pub fn can_run(arch: &Arch) -> bool {
    arch.is_host() || demo::find_program(arch.qemu).is_some()
}

/// `[qemu-<arch>] LOADER --inhibit-cache --library-path DIRS BIN`, with a cleared environment
/// and stdin closed: the run uses exactly `lib_dirs` and never the host's ld.so.cache or
/// multiarch directories (a naive `qemu -L SYSROOT` picks those up on this machine).
pub fn loader_cure_command<P: AsRef<Path>>(
    arch: &Arch,
    loader: &Path,
    lib_dirs: &[P],
    bin: &Path,
) -> Command {
    let mut cmd = if arch.is_host() {
        Command::new(loader)
    } else {
        let mut cmd = Command::new(arch.qemu);
        cmd.arg(loader);
        cmd
    };
    let dirs =
        std::env::join_paths(lib_dirs.iter().map(AsRef::as_ref)).expect("library dirs without ':'");
    cmd.arg("--inhibit-cache")
        .arg("--library-path")
        .arg(dirs)
        .arg(bin)
        .env_clear()
        .stdin(Stdio::null());
    cmd
}

/// Runs a Debian-style binary of `arch` with the Debian sysroot's loader and libraries.
pub fn debian_run_command(arch: &Arch, bin: &Path) -> Option<Command> {
    let loader = demo::sysroot_loader(arch)?;
    Some(loader_cure_command(
        arch,
        &loader,
        &demo::sysroot_lib_dirs(arch),
        bin,
    ))
}

/// Nix-base32 style store hash: 32 characters from sha256 of the name.
pub fn store_hash(name: &str) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";
    sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

/// The fixtures, built on first use (once per target dir, shared across processes).
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Result<Fixtures, String>> = OnceLock::new();
    match FIXTURES.get_or_init(build::prepare) {
        Ok(f) => f,
        Err(e) => panic!("test fixtures could not be built:\n{e}"),
    }
}

/// `<target dir>/mab-fixtures`: `CARGO_TARGET_DIR` or `<manifest dir>/target`.
pub fn fixtures_base() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    }
    .join("mab-fixtures")
}

/// Rows with a Debian toolchain, in table order.
pub fn toolchain_rows() -> impl Iterator<Item = &'static Arch> {
    ARCHES.iter().filter(|a| a.toolchain.is_some())
}

/// The Debian-style demo of the row `<key>-linux`, which every buildable row must have.
pub fn hello(key: &str) -> (&'static Arch, PathBuf) {
    let arch = row(&format!("{key}-linux"));
    let path = fixtures().hello_for(arch).unwrap_or_else(|| {
        panic!(
            "no fixture for {key}: {}",
            fixtures().missing_reason(arch).unwrap_or("not built")
        )
    });
    (arch, path.to_path_buf())
}
