//! Builds the bundled demo program for a platform row with Debian's cross toolchains.
//!
//! Every name used here (compiler, Rust target, sysroot, loader, apt package) comes from the
//! row's [`Toolchain`](crate::platform::Toolchain) and loader fields in the platform table.
//! Rows with a Rust target get `demo/hello.rs` built by Debian's `/usr/bin/rustc` with the
//! row's gcc as linker; rows without one get `demo/hello.c` built by gcc.
//! [`output`] is `mab-verify demo --out DIR`; [`image`] wraps a built binary in an image.

pub mod image;
pub mod output;

use crate::platform::Arch;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust demo: prints `Hello from {OS}/{ARCH}!` from `std::env::consts`.
pub const HELLO_RS: &str = include_str!("../demo/hello.rs");
/// Its C twin: prints `Hello from linux/<MAB_ARCH>!`; `MAB_BEHAVIOUR` selects test variants.
pub const HELLO_C: &str = include_str!("../demo/hello.c");
/// File name of every built demo, as in a Nix output's `bin/`.
pub const DEMO_NAME: &str = "multi-arch-demo";
/// Debian's rustc, which has `libstd-rust-dev:ARCH` for the foreign rows (rustup's does not).
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// musl-tools' wrapper; it builds for the host row only.
pub const MUSL_GCC: &str = "musl-gcc";

/// How many bytes of a failed command's stderr an error keeps.
const STDERR_TAIL: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot build the demo for {system} here: {reason}")]
    Unbuildable { system: String, reason: String },
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed ({status}); end of its stderr:\n{stderr_tail}")]
    Failed {
        command: String,
        status: String,
        stderr_tail: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make an image of the {system} demo: {reason}")]
    Image { system: String, reason: String },
    #[error("cannot write the demo image: {0}")]
    Write(#[from] crate::write::WriteError),
}

/// Variants of `demo/hello.c` for run-check tests (the `MAB_BEHAVIOUR` macro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Prints the hello and exits 0.
    Hello,
    /// Prints the right hello, then exits 1.
    ExitOne,
    /// Prints the hello and `sleeper parent=PID child=PID`, forks a child that sleeps too,
    /// then sleeps forever.
    Sleeper,
    /// Prints the hello, then 100 MiB of filler lines, then exits 0.
    Flood,
}

impl Behaviour {
    /// The `-D` pair that selects this behaviour.
    pub fn define(self) -> (&'static str, &'static str) {
        let value = match self {
            Behaviour::Hello => "MAB_HELLO",
            Behaviour::ExitOne => "MAB_EXIT_ONE",
            Behaviour::Sleeper => "MAB_SLEEPER",
            Behaviour::Flood => "MAB_FLOOD",
        };
        ("MAB_BEHAVIOUR", value)
    }
}

/// A C string literal for a `-D` value: `some-arch` becomes `"some-arch"`.
pub fn c_string_literal(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// `name` as found on PATH (or `name` itself when it is a path to an existing file).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = crate::settings::env::get(crate::settings::env::PATH)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The row's gcc (`<gcc_triple>-gcc`), if the row has a Debian toolchain at all.
pub fn gcc_for(arch: &Arch) -> Option<String> {
    arch.toolchain.map(|tc| format!("{}-gcc", tc.gcc_triple))
}

/// Where this row's glibc libraries live on this machine: the host's multiarch directories
/// for the host row, Debian's cross sysroot (`/usr/<gcc_triple>/lib*`) for the others.
/// Only existing directories are listed.
pub fn sysroot_lib_dirs(arch: &Arch) -> Vec<PathBuf> {
    let Some(tc) = arch.toolchain else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = if arch.is_host() {
        let loader_dir = Path::new(arch.glibc_loader)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/lib"));
        vec![
            PathBuf::from(format!("/lib/{}", tc.gcc_triple)),
            PathBuf::from(format!("/usr/lib/{}", tc.gcc_triple)),
            loader_dir,
        ]
    } else {
        let sysroot = PathBuf::from(format!("/usr/{}", tc.gcc_triple));
        ["lib", "lib64", "lib32"]
            .iter()
            .map(|d| sysroot.join(d))
            .collect()
    };
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The row's glibc loader file on this machine (found by the table's loader file name).
pub fn sysroot_loader(arch: &Arch) -> Option<PathBuf> {
    let name = Path::new(arch.glibc_loader).file_name()?;
    sysroot_lib_dirs(arch)
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// `None` when [`build_hello`] can build this row here; otherwise why not, with the apt
/// command that fixes it.
pub fn missing_toolchain(arch: &Arch) -> Option<String> {
    let Some(tc) = arch.toolchain else {
        return Some(format!(
            "Debian packages no cross toolchain for {} (the row is unverified)",
            arch.nix_system()
        ));
    };
    let foreign = !arch.is_host();
    let mut missing: Vec<String> = Vec::new();
    let mut packages: Vec<String> = Vec::new();
    let gcc = format!("{}-gcc", tc.gcc_triple);
    if find_program(&gcc).is_none() {
        missing.push(gcc);
        // Debian package names cannot hold `_` (a `_` in a triple becomes `-`).
        packages.push(format!("gcc-{}", tc.gcc_triple.replace('_', "-")));
    }
    let has_crt = sysroot_lib_dirs(arch)
        .iter()
        .any(|d| d.join("Scrt1.o").is_file());
    if !has_crt {
        missing.push(format!("glibc development files for {}", tc.gcc_triple));
        packages.push(if foreign {
            format!("libc6-dev-{}-cross", tc.debian_arch)
        } else {
            "libc6-dev".to_string()
        });
    }
    if let Some(target) = tc.rust_target {
        if !Path::new(DEBIAN_RUSTC).is_file() {
            missing.push(DEBIAN_RUSTC.to_string());
            packages.push("rustc".to_string());
        }
        if !rustlib_dir(target).is_dir() {
            missing.push(format!("the Rust std for {target}"));
            packages.push(format!("libstd-rust-dev:{}", tc.debian_arch));
        }
    }
    if missing.is_empty() {
        return None;
    }
    let add_arch = if foreign && packages.iter().any(|p| p.contains(':')) {
        format!(
            "dpkg --add-architecture {} && apt-get update && ",
            tc.debian_arch
        )
    } else {
        String::new()
    };
    Some(format!(
        "{} not installed: {add_arch}apt-get install {}",
        missing.join(", "),
        packages.join(" ")
    ))
}

/// `None` when [`build_c_musl`] can build for this row here; otherwise why not.
pub fn missing_musl_toolchain(arch: &Arch) -> Option<String> {
    if !arch.is_host() {
        return Some(format!(
            "musl-tools' {MUSL_GCC} only builds for the host, not {}",
            arch.nix_system()
        ));
    }
    find_program(MUSL_GCC)
        .is_none()
        .then(|| format!("{MUSL_GCC} not installed: apt-get install musl-tools"))
}

/// Debian's rustc keeps each target's std under `<sysroot>/lib/rustlib/<target>`.
fn rustlib_dir(target: &str) -> PathBuf {
    let sysroot = Path::new(DEBIAN_RUSTC)
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/usr"));
    sysroot.join("lib/rustlib").join(target).join("lib")
}

/// Build the demo for `arch` as Debian would (standard loader path) into
/// `out_dir/multi-arch-demo`.
pub fn build_hello(arch: &'static Arch, out_dir: &Path) -> Result<PathBuf, DemoError> {
    let out = out_dir.join(DEMO_NAME);
    build_hello_with(arch, &[], &out)?;
    Ok(out)
}

/// Build the demo for `arch` to `out`, passing `extra_link_args` to the gcc driver at link
/// time (`-Wl,--dynamic-linker=…`, `-Wl,-rpath,…`, `-static`). Rust where the row has a Rust
/// target, C otherwise.
pub fn build_hello_with(
    arch: &Arch,
    extra_link_args: &[&str],
    out: &Path,
) -> Result<(), DemoError> {
    let has_rust = arch.toolchain.and_then(|tc| tc.rust_target).is_some();
    let (file, text) = if has_rust {
        ("hello.rs", HELLO_RS)
    } else {
        ("hello.c", HELLO_C)
    };
    let scratch = scratch_dir()?;
    let source = scratch.path().join(file);
    std::fs::write(&source, text).map_err(|e| io_error("write", &source, e))?;
    if has_rust {
        build_rust(arch, &source, extra_link_args, out)
    } else {
        build_c(arch, &source, &[], extra_link_args, out)
    }
}

/// Compile a C file for `arch` with the row's gcc. `MAB_ARCH` defaults to the row's Rust
/// `ARCH` as a string literal; `defines` are `-DNAME=VALUE` with VALUE passed verbatim (use
/// [`c_string_literal`] for strings) and may override `MAB_ARCH`.
pub fn build_c(
    arch: &Arch,
    source: &Path,
    defines: &[(&str, &str)],
    extra_link_args: &[&str],
    out: &Path,
) -> Result<(), DemoError> {
    check_buildable(arch)?;
    let gcc = gcc_for(arch).unwrap_or_default();
    build_c_with(&gcc, arch, source, defines, extra_link_args, out)
}

/// [`build_c`] with musl-tools' `musl-gcc` (host row only; dynamic unless `-static` is given).
pub fn build_c_musl(
    arch: &Arch,
    source: &Path,
    defines: &[(&str, &str)],
    extra_link_args: &[&str],
    out: &Path,
) -> Result<(), DemoError> {
    if let Some(reason) = missing_musl_toolchain(arch) {
        return Err(DemoError::Unbuildable {
            system: arch.nix_system(),
            reason,
        });
    }
    build_c_with(MUSL_GCC, arch, source, defines, extra_link_args, out)
}

/// [`build_c`] with an explicit compiler driver.
pub fn build_c_with(
    compiler: &str,
    arch: &Arch,
    source: &Path,
    defines: &[(&str, &str)],
    extra_link_args: &[&str],
    out: &Path,
) -> Result<(), DemoError> {
    prepare_output(out)?;
    let mut cmd = Command::new(compiler);
    cmd.args(["-O2", "-Wall", "-o"]).arg(out);
    if !defines.iter().any(|(name, _)| *name == "MAB_ARCH") {
        cmd.arg(format!("-DMAB_ARCH={}", c_string_literal(arch.rust_arch)));
    }
    for (name, value) in defines {
        cmd.arg(format!("-D{name}={value}"));
    }
    cmd.arg(source).args(extra_link_args);
    run(cmd)
}

/// Compile a Rust file for `arch` with Debian's rustc and the row's gcc as linker; each of
/// `extra_link_args` becomes `-C link-arg=…` (arguments for the gcc driver).
pub fn build_rust(
    arch: &Arch,
    source: &Path,
    extra_link_args: &[&str],
    out: &Path,
) -> Result<(), DemoError> {
    check_buildable(arch)?;
    let (Some(tc), Some(gcc)) = (arch.toolchain, gcc_for(arch)) else {
        unreachable!("check_buildable accepted a row without a toolchain")
    };
    let Some(target) = tc.rust_target else {
        return Err(DemoError::Unbuildable {
            system: arch.nix_system(),
            reason: format!(
                "Debian has no Rust std for {}; build demo/hello.c instead",
                tc.gcc_triple
            ),
        });
    };
    prepare_output(out)?;
    let out = absolute(out)?;
    let source = absolute(source)?;
    // rustc drops intermediate files in its working directory.
    let scratch = scratch_dir()?;
    let mut cmd = Command::new(DEBIAN_RUSTC);
    cmd.current_dir(scratch.path())
        .args([
            "-O",
            "--edition",
            "2021",
            "-C",
            "strip=debuginfo",
            "--target",
            target,
        ])
        .arg("-C")
        .arg(format!("linker={gcc}"));
    for arg in extra_link_args {
        cmd.arg("-C").arg(format!("link-arg={arg}"));
    }
    cmd.arg("-o").arg(&out).arg(&source);
    run(cmd)
}

fn check_buildable(arch: &Arch) -> Result<(), DemoError> {
    match missing_toolchain(arch) {
        None => Ok(()),
        Some(reason) => Err(DemoError::Unbuildable {
            system: arch.nix_system(),
            reason,
        }),
    }
}

fn scratch_dir() -> Result<tempfile::TempDir, DemoError> {
    tempfile::Builder::new()
        .prefix("mab-demo-")
        .tempdir()
        .map_err(|e| io_error("create a temporary directory in", &std::env::temp_dir(), e))
}

fn prepare_output(out: &Path) -> Result<(), DemoError> {
    match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))
        }
        _ => Ok(()),
    }
}

fn absolute(p: &Path) -> Result<PathBuf, DemoError> {
    std::path::absolute(p).map_err(|e| io_error("resolve", p, e))
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> DemoError {
    DemoError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Run a compiler; its environment must not redirect the compiler's own libraries.
fn run(mut cmd: Command) -> Result<(), DemoError> {
    cmd.env_remove("LD_LIBRARY_PATH").stdin(Stdio::null());
    let shown = describe(&cmd);
    let output = cmd.output().map_err(|source| DemoError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut start = stderr.len().saturating_sub(STDERR_TAIL);
    while !stderr.is_char_boundary(start) {
        start += 1;
    }
    Err(DemoError::Failed {
        command: shown,
        status: output.status.to_string(),
        stderr_tail: stderr[start..].trim_end().to_string(),
    })
}

/// The command line as a shell would need it typed.
fn describe(cmd: &Command) -> String {
    let quote = |s: OsString| {
        let s = s.to_string_lossy().into_owned();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@".contains(c))
        {
            s
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(cmd.get_program().to_os_string())
        .chain(cmd.get_args().map(|a| a.to_os_string()))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_escaped() {
        assert_eq!(c_string_literal("some-arch"), "\"some-arch\"");
        assert_eq!(c_string_literal(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn rows_without_a_toolchain_say_why() {
        let row = crate::platform::ARCHES
            .iter()
            .find(|a| a.toolchain.is_none());
        if let Some(row) = row {
            let reason = missing_toolchain(row).expect("a row without a toolchain is unbuildable");
            assert!(reason.contains(&row.nix_system()), "{reason}");
        }
    }

    #[test]
    fn commands_are_shown_quoted() {
        let mut cmd = Command::new("gcc");
        cmd.args(["-DMAB_ARCH=\"some-arch\"", "-o", "a b"]);
        assert_eq!(describe(&cmd), r#"gcc '-DMAB_ARCH="some-arch"' -o 'a b'"#);
    }
}
