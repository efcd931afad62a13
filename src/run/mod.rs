//! Decides how a binary runs here (natively or under qemu-user, with which loader and libraries)
//! and runs it inside limits.

pub mod exec;
pub mod guard;
pub mod leftovers;
pub mod seal;

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
        /// The outcome of an earlier run of the same bytes under the same runner and limits
        /// (`crate::cache::runs`); the checks judged it afresh.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        from_cache: bool,
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
    if let Some(p) = crate::settings::env::get(&var) {
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

/// Everything about this machine's way of running `emulator` that can change a run's outcome:
/// the sealing mechanism and the emulator (and the static one a sealed run would use instead),
/// each file named by path and identified by device, inode, size and times, so a replaced or
/// copied binary is another runner.
pub fn runner_identity(emulator: &Emulator) -> String {
    let mut id = match seal::mechanism() {
        seal::Mechanism::Bwrap(bwrap) => format!("sealed {}", file_identity(bwrap)),
        seal::Mechanism::Unsealed { why } => format!("unsealed ({why})"),
    };
    match emulator {
        Emulator::Native => id.push_str(" native"),
        Emulator::Qemu { path, .. } => {
            id.push_str(&format!(" qemu {}", file_identity(path)));
            let used = static_variant(path);
            if &used != path {
                id.push_str(&format!(" static {}", file_identity(&used)));
            }
        }
    }
    id
}

fn file_identity(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{}:{}:{}:{}:{}.{}:{}.{}",
            path.display(),
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ),
        Err(_) => format!("{}:missing", path.display()),
    }
}

/// Build the command line: sealed where this machine allows it, else the unsealed fallback.
pub fn plan(
    binary: &Path,
    elf: &ElfFacts,
    closure: Option<&ClosureFacts>,
    emulator: &Emulator,
    args: &[String],
    env: Vec<(String, String)>,
) -> Result<Invocation, String> {
    match seal::mechanism() {
        seal::Mechanism::Bwrap(bwrap) => match emulator {
            // A dynamically linked qemu cannot start inside a foreign root: seal the host root
            // instead and let qemu's -L, with the root's own loader, find the guest's files.
            Emulator::Qemu { path, .. }
                if closure.is_some_and(|c| !c.root.is_host())
                    && !is_static(&static_variant(path)) =>
            {
                let root = &closure.expect("checked above").root;
                let mut inv = plan_unsealed(binary, elf, closure, emulator, args, env)?;
                let mut binds = vec![(root.dir.clone(), root.dir.display().to_string())];
                if !binary.starts_with(&root.dir) {
                    binds.push((binary.to_path_buf(), binary.display().to_string()));
                }
                binds.push((path.clone(), path.display().to_string()));
                inv.runner.push_str(
                    ", sealed, host root read-only (no static qemu: -L falls through to the host)",
                );
                inv.sandbox = Some(seal::Sandbox {
                    bwrap: bwrap.clone(),
                    root: PathBuf::from("/"),
                    binds,
                });
                Ok(inv)
            }
            _ => Ok(plan_sealed(bwrap, binary, closure, emulator, args, env)),
        },
        seal::Mechanism::Unsealed { why } => {
            let mut inv = plan_unsealed(binary, elf, closure, emulator, args, env)?;
            inv.runner.push_str(&format!(", not sealed ({why})"));
            Ok(inv)
        }
    }
}

/// Inside the sandbox the checked root is `/`, so the kernel (or qemu) reads the binary's own
/// PT_INTERP and the loader finds its libraries exactly where the checks looked: no explicit
/// loader, no `-L` overlay that falls through to the host.
fn plan_sealed(
    bwrap: &Path,
    binary: &Path,
    closure: Option<&ClosureFacts>,
    emulator: &Emulator,
    args: &[String],
    env: Vec<(String, String)>,
) -> Invocation {
    let root = closure.map(|c| &c.root).filter(|r| !r.is_host());
    let root_dir = root.map_or_else(|| PathBuf::from("/"), |r| r.dir.clone());
    let mut binds = Vec::new();
    let guest_binary = match root.and_then(|r| r.guest_path_of(binary)) {
        Some(inside) => inside,
        None => {
            let guest = binary.display().to_string();
            // On the host root the binary's directory comes along ($ORIGIN libraries); in
            // another root only the file itself, at the path the checks used.
            match (root, binary.parent()) {
                (None, Some(dir)) if dir != Path::new("/") => {
                    binds.push((dir.to_path_buf(), dir.display().to_string()))
                }
                _ => binds.push((binary.to_path_buf(), guest.clone())),
            }
            guest
        }
    };
    let place = match root {
        Some(r) => format!("sealed in {}", r.dir.display()),
        None => "sealed, host root read-only".to_string(),
    };
    let (program, mut argv, runner) = match emulator {
        Emulator::Native => (
            PathBuf::from(&guest_binary),
            vec![],
            format!("native, {place}"),
        ),
        Emulator::Qemu { path, .. } => {
            let qemu = static_variant(path);
            let name = qemu.file_name().map_or_else(
                || qemu.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            let program = if root.is_some() {
                // A dynamic qemu would need the host's libraries inside the guest root.
                let guest = format!("{}/{name}", seal::GUEST_TOOLS);
                binds.push((qemu.clone(), guest.clone()));
                PathBuf::from(guest)
            } else {
                // It may sit where the sandbox hides the host (an override under /tmp).
                binds.push((qemu.clone(), qemu.display().to_string()));
                qemu.clone()
            };
            // `-L /`: no compiled-in prefix of qemu's can redirect the guest's paths.
            (
                program,
                vec!["-L".to_string(), "/".to_string(), guest_binary.clone()],
                format!("{name}, {place}"),
            )
        }
    };
    argv.extend(args.iter().cloned());
    Invocation {
        program,
        args: argv,
        env,
        runner,
        sandbox: Some(seal::Sandbox {
            bwrap: bwrap.to_path_buf(),
            root: root_dir,
            binds,
        }),
    }
}

/// `qemu-aarch64-static` beside (or on PATH instead of) a dynamically linked `qemu-aarch64`;
/// the emulator itself when it is static already or no static one exists.
fn is_static(p: &Path) -> bool {
    crate::inspect::inspect_file(p)
        .ok()
        .and_then(|f| f.elf().map(|e| e.interpreter.is_none()))
        .unwrap_or(false)
}

/// Memoised per process: each answer reads (and hashes) the emulators, megabytes each, and
/// every image run asks, twice with the run cache (its key, then the plan).
fn static_variant(qemu: &Path) -> PathBuf {
    static KNOWN: std::sync::Mutex<BTreeMap<PathBuf, PathBuf>> =
        std::sync::Mutex::new(BTreeMap::new());
    if let Some(known) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).get(qemu) {
        return known.clone();
    }
    let found = find_static_variant(qemu);
    KNOWN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(qemu.to_path_buf(), found.clone());
    found
}

fn find_static_variant(qemu: &Path) -> PathBuf {
    if is_static(qemu) {
        return qemu.to_path_buf();
    }
    let Some(name) = qemu
        .file_name()
        .map(|n| format!("{}-static", n.to_string_lossy()))
    else {
        return qemu.to_path_buf();
    };
    let beside = qemu.with_file_name(&name);
    if is_static(&beside) {
        return beside;
    }
    search_path(
        &name,
        crate::settings::env::get(crate::settings::env::PATH).as_deref(),
    )
    .filter(|p| is_static(p))
    .unwrap_or_else(|| qemu.to_path_buf())
}

/// Without namespaces: with a root other than the host, the root's own loader is started
/// explicitly with the root's library directories, so that neither the host's ld.so.cache nor
/// its multiarch directories can leak in (qemu's -L falls through to the host for missing paths).
fn plan_unsealed(
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
        sandbox: None,
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
