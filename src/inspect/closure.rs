//! Follows a binary's loader and DT_NEEDED chain inside a root and records what each name resolves to.

use super::{BinaryFacts, ElfFacts, inspect_file};
use crate::platform::{Arch, Libc};
use crate::rootfs::Root;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// A file found for a name, with the facts that decide whether it fits.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub guest_path: String,
    /// `linux/arm64` etc., or what the bytes are when no row fits.
    pub platform: String,
    pub fits: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoaderResolution {
    pub path: String,
    pub found: Option<Found>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LibraryResolution {
    pub name: String,
    pub needed_by: String,
    /// The first candidate of the right platform, as the loader would take it.
    pub found: Option<Found>,
    /// Candidates the loader would skip because they are for another platform.
    pub rejected: Vec<Found>,
    pub searched: Vec<String>,
    /// Why the name was deliberately not looked up (musl's `libc.so` without a musl root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClosureFacts {
    pub root: Root,
    pub loader: Option<LoaderResolution>,
    pub libraries: Vec<LibraryResolution>,
}

const MUSL_LIBC_NAME: &str = "libc.so";

/// Most libraries followed for one binary; real closures stay far below this.
const MAX_LIBRARIES: usize = 512;

/// A tree of files whose facts can be asked for: a host directory, or an image's rootfs.
pub trait FactTree: crate::rootfs::Tree {
    /// Facts of the file at a canonical (symlink-free) guest path.
    fn facts(&mut self, canonical: &str) -> Option<BinaryFacts>;
    /// Where this tree is, for reports.
    fn root(&self) -> Root;
}

/// Cache of facts per host file, shared across the binaries of one run.
#[derive(Default)]
pub struct FactCache {
    facts: HashMap<PathBuf, Option<BinaryFacts>>,
}

impl FactCache {
    pub fn get(&mut self, host_path: &Path) -> Option<&BinaryFacts> {
        self.facts
            .entry(host_path.to_path_buf())
            .or_insert_with(|| inspect_file(host_path).ok())
            .as_ref()
    }
}

/// A directory on this machine seen as a root, its files read on demand and cached.
pub struct HostTree<'a> {
    pub root: &'a Root,
    pub cache: &'a mut FactCache,
}

impl crate::rootfs::Tree for HostTree<'_> {
    fn node(&self, guest_path: &str) -> Option<crate::rootfs::NodeKind> {
        crate::rootfs::DirTree(&self.root.dir).node(guest_path)
    }
}

impl FactTree for HostTree<'_> {
    fn facts(&mut self, canonical: &str) -> Option<BinaryFacts> {
        let host = self.root.dir.join(canonical.trim_start_matches('/'));
        self.cache.get(&host).cloned()
    }
    fn root(&self) -> Root {
        self.root.clone()
    }
}

/// The facts of what `guest_path` resolves to, and whether it runs on `arch`.
fn found(
    tree: &mut dyn FactTree,
    arch: &Arch,
    guest_path: &str,
) -> Option<(Found, Option<BinaryFacts>)> {
    let canonical = crate::rootfs::resolve_guest(tree, guest_path)?;
    let facts = tree.facts(&canonical);
    let (platform, fits) = match &facts {
        Some(facts) => match facts.elf() {
            Some(elf) => (
                elf.platform().map_or_else(|| elf.identity(), |p| p.oci()),
                arch.accepts(elf.machine, elf.class, elf.byte_order, &elf.abi),
            ),
            None => (format!("not an ELF ({})", facts.kind()), false),
        },
        None => ("unreadable".to_string(), false),
    };
    Some((
        Found {
            guest_path: guest_path.to_string(),
            platform,
            fits,
        },
        facts,
    ))
}

/// Resolve the loader and, transitively, every DT_NEEDED of `elf` inside `tree`.
/// `guest_path` is where the binary sits as the guest sees it (for `$ORIGIN`).
pub fn resolve_closure(
    elf: &ElfFacts,
    guest_path: &str,
    arch: &'static Arch,
    tree: &mut dyn FactTree,
) -> ClosureFacts {
    let loader = elf.interpreter.as_ref().map(|interp| LoaderResolution {
        path: interp.clone(),
        found: found(tree, arch, interp).map(|(f, _)| f),
    });
    let loader_dir = elf.interpreter.as_deref().and_then(parent_dir);

    let mut libraries: BTreeMap<String, LibraryResolution> = BTreeMap::new();
    let mut queue: VecDeque<(ElfFacts, String)> = VecDeque::new();
    queue.push_back((elf.clone(), guest_path.to_string()));
    let mut seen_files: HashSet<String> = HashSet::from([guest_path.to_string()]);

    while let Some((current, current_path)) = queue.pop_front() {
        let origin = parent_dir(&current_path).unwrap_or_else(|| "/".to_string());
        let mut dirs = search_dirs(&current, &origin, loader_dir.as_deref(), arch);
        // A library checked on its own finds its siblings, as the libraries a process has
        // already loaded satisfy each other's DT_NEEDED.
        if current.linkage == super::Linkage::SharedLibrary && !dirs.contains(&origin) {
            dirs.push(origin.clone());
        }
        for name in &current.needed {
            if libraries.contains_key(name) {
                continue;
            }
            let mut resolution = LibraryResolution {
                name: name.clone(),
                needed_by: current_path.clone(),
                found: None,
                rejected: Vec::new(),
                searched: dirs.clone(),
                skipped: None,
            };
            if libraries.len() >= MAX_LIBRARIES {
                // Past the limit a library is reported unresolved, never silently dropped.
                resolution.searched =
                    vec![format!("(not looked up: over {MAX_LIBRARIES} libraries)")];
                libraries.insert(name.clone(), resolution);
                continue;
            }
            // musl's dynamic loader is its libc: `libc.so` resolves to the loader itself, and
            // is never looked for in a glibc root (a host or cross sysroot `libc.so` is a
            // glibc linker script).
            if name == MUSL_LIBC_NAME
                && (elf.libc() == Some(Libc::Musl) || current.libc() == Some(Libc::Musl))
            {
                let own_loader = loader.as_ref().and_then(|l| l.found.clone());
                let musl_loader = arch
                    .loader(Libc::Musl)
                    .and_then(|path| found(tree, arch, path).map(|(f, _)| f).filter(|f| f.fits));
                match own_loader.or(musl_loader) {
                    Some(l) => resolution.found = Some(l),
                    None => {
                        resolution.skipped = Some(format!(
                            "musl's libc.so is its loader {}, which this root does not hold (not a musl root)",
                            arch.loader(Libc::Musl).unwrap_or("(none for this row)")
                        ))
                    }
                }
                libraries.insert(name.clone(), resolution);
                continue;
            }
            for dir in &dirs {
                let guest = format!("{}/{}", dir.trim_end_matches('/'), name);
                let Some((candidate, facts)) = found(tree, arch, &guest) else {
                    continue;
                };
                if !candidate.fits {
                    resolution.rejected.push(candidate);
                    continue;
                }
                if seen_files.insert(guest.clone())
                    && let Some(lib) = facts.as_ref().and_then(|f| f.elf().cloned())
                {
                    queue.push_back((lib, guest));
                }
                resolution.found = Some(candidate);
                break;
            }
            libraries.insert(name.clone(), resolution);
        }
    }
    ClosureFacts {
        root: tree.root(),
        loader,
        libraries: libraries.into_values().collect(),
    }
}

fn parent_dir(path: &str) -> Option<String> {
    Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().to_string())
        .filter(|p| !p.is_empty())
}

/// The loader's search order: DT_RPATH (only without DT_RUNPATH), DT_RUNPATH, the loader's own
/// directory (a Nix glibc's built-in default), then the standard and multiarch directories.
fn search_dirs(elf: &ElfFacts, origin: &str, loader_dir: Option<&str>, arch: &Arch) -> Vec<String> {
    let expand = |p: &String| p.replace("${ORIGIN}", origin).replace("$ORIGIN", origin);
    let mut dirs: Vec<String> = Vec::new();
    if elf.runpath.is_empty() {
        dirs.extend(elf.rpath.iter().map(expand));
    }
    dirs.extend(elf.runpath.iter().map(expand));
    dirs.extend(loader_dir.map(str::to_string));
    dirs.extend(arch.default_library_dirs());
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}
