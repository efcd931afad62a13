//! Decides how a binary runs here (natively or under qemu-user, with which loader and libraries)
//! and runs it inside limits.

pub mod exec;

use crate::inspect::ElfFacts;
use crate::inspect::closure::ClosureFacts;
use crate::platform::{Arch, Libc};
use crate::rootfs::Root;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use exec::{Captured, Invocation, Limits};

/// What happened when mab-verify tried to run an artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RunReport {
    Ran {
        runner: String,
        command: Vec<String>,
        #[serde(flatten)]
        captured: Captured,
    },
    /// Could not run here; never a pass.
    Skipped { reason: String, hint: String },
    /// Running was not asked for or makes no sense (`--no-run`, a library, a broken file).
    NotRun { reason: String },
    /// It should run but cannot even be started (its loader is missing, exec failed).
    Failed { reason: String },
}

/// How to start code of a foreign (or the host's own) architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulator {
    Native,
    Qemu { path: PathBuf, source: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingEmulator {
    pub reason: String,
    pub hint: String,
}

/// Per-platform emulator overrides from `mab.toml` (`[qemu]` table), keyed by row.
pub type EmulatorOverrides = BTreeMap<&'static str, PathBuf>;

/// Host rows run natively; others through `MAB_QEMU_<ARCH>`, `mab.toml`, `qemu-<arch>` or
/// `qemu-<arch>-static` on PATH, or a registered binfmt_misc interpreter, in that order.
pub fn find_emulator(
    arch: &'static Arch,
    overrides: &EmulatorOverrides,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<Emulator, MissingEmulator> {
    if arch.runs_natively() {
        return Ok(Emulator::Native);
    }
    let var = arch.qemu_env_var();
    if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(Emulator::Qemu {
                path: p,
                source: "environment",
            })
        } else {
            Err(MissingEmulator {
                reason: format!("{var}={} does not name a file", p.display()),
                hint: format!("point {var} at a {} binary or unset it", arch.qemu),
            })
        };
    }
    if let Some(p) = overrides.get(arch.key()) {
        return Ok(Emulator::Qemu {
            path: p.clone(),
            source: "mab.toml",
        });
    }
    for name in [arch.qemu.to_string(), format!("{}-static", arch.qemu)] {
        if let Some(p) = search_path(&name, path_var) {
            return Ok(Emulator::Qemu {
                path: p,
                source: "PATH",
            });
        }
    }
    if let Some(p) = binfmt_interpreter(arch) {
        return Ok(Emulator::Qemu {
            path: p,
            source: "binfmt_misc",
        });
    }
    Err(MissingEmulator {
        reason: format!(
            "{} is not on PATH and no binfmt_misc handler is registered",
            arch.qemu
        ),
        hint: format!(
            "apt-get install qemu-user (or set {var}=/path/to/{})",
            arch.qemu
        ),
    })
}

fn search_path(name: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var?)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A binfmt_misc entry named after the emulator (`qemu-aarch64`), whose interpreter is qemu.
fn binfmt_interpreter(arch: &Arch) -> Option<PathBuf> {
    let entry = Path::new("/proc/sys/fs/binfmt_misc").join(arch.qemu);
    let text = std::fs::read_to_string(entry).ok()?;
    if !text.lines().any(|l| l.trim() == "enabled") {
        return None;
    }
    let interp = text.lines().find_map(|l| l.strip_prefix("interpreter "))?;
    Some(PathBuf::from(interp.trim())).filter(|p| p.is_file())
}

/// Build the command line. With a root other than the host, the root's own loader is started
/// explicitly with the root's library directories, so that neither the host's ld.so.cache nor
/// its multiarch directories can leak in (qemu's -L falls through to the host for missing paths).
pub fn plan(
    binary: &Path,
    elf: &ElfFacts,
    closure: Option<&ClosureFacts>,
    emulator: &Emulator,
    args: &[String],
    env: Vec<(String, String)>,
) -> Result<Invocation, String> {
    let mut argv: Vec<String> = Vec::new();
    let root = closure.map(|c| &c.root).filter(|r| !r.is_host());
    let mut runner = match emulator {
        Emulator::Native => "native".to_string(),
        Emulator::Qemu { path, .. } => {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            argv.push(path.display().to_string());
            if let Some(root) = root {
                argv.push("-L".into());
                argv.push(root.dir.display().to_string());
                format!("{name} -L {}", root.dir.display())
            } else {
                name
            }
        }
    };
    match (elf.interpreter.as_deref(), root, closure) {
        (Some(interp), Some(root), Some(closure)) => {
            let loader = root.resolve(interp).ok_or_else(|| {
                format!("loader {interp} is missing under {}", root.dir.display())
            })?;
            argv.push(loader.display().to_string());
            if elf.libc() != Some(Libc::Musl) {
                argv.push("--inhibit-cache".into());
            }
            argv.push("--library-path".into());
            argv.push(library_path(root, closure, interp));
            runner.push_str(&format!(" via {interp}"));
        }
        (Some(_), None, _) | (None, _, _) => {}
        (Some(_), Some(_), None) => return Err("no closure facts for a dynamic binary".into()),
    }
    argv.push(binary.display().to_string());
    argv.extend(args.iter().cloned());
    let program = PathBuf::from(argv.remove(0));
    Ok(Invocation {
        program,
        args: argv,
        env,
        runner,
    })
}

/// Host directories of every library the closure resolved, then the loader's own directory.
fn library_path(root: &Root, closure: &ClosureFacts, interp: &str) -> String {
    let mut dirs: Vec<String> = Vec::new();
    let guest_files = closure
        .libraries
        .iter()
        .filter_map(|l| l.found.as_ref())
        .map(|f| f.guest_path.as_str())
        .chain([interp]);
    for guest in guest_files {
        // The directory of the file a symlink ends at comes first: opening the link's own
        // directory would let an absolute link escape to the host.
        let resolved_dir = root
            .resolve(guest)
            .and_then(|f| f.parent().map(Path::to_path_buf));
        let link_dir = Path::new(guest)
            .parent()
            .and_then(|d| root.resolve(&d.to_string_lossy()));
        for host in resolved_dir.into_iter().chain(link_dir) {
            let host = host.display().to_string();
            if !dirs.contains(&host) {
                dirs.push(host);
            }
        }
    }
    dirs.join(":")
}
