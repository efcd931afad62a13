//! Finds the binaries to inspect under an input path and where they sit in a Nix store.

use crate::error::{Error, Result};
use crate::inspect::looks_like_binary;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One file to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As the user would write it: the input path plus the file's place below it.
    pub display: String,
    /// The real file, symlinks resolved.
    pub host_path: PathBuf,
    pub store: Option<StoreLocation>,
    /// Found by walking a directory rather than named by the user.
    pub from_walk: bool,
    /// What the producer (a build step) says this file is; outranks every other source.
    pub declared: Option<crate::check::Expected>,
}

/// Where a file lives inside a Nix store (the host's, or one below another root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// `<hash>-name-version`.
    pub store_name: String,
    /// The directory holding `nix/store`; `/` for the host's own store.
    pub root: PathBuf,
}

/// Deepest directory nesting walked; Nix outputs are shallow.
const MAX_DEPTH: usize = 32;

pub fn discover(input: &Path, all: bool) -> Result<Vec<Target>> {
    let meta = std::fs::metadata(input).map_err(|e| {
        Error::input(
            input,
            format!("{e}; build it first (for a Nix output: nix build …) or check the path"),
        )
    })?;
    let real = input
        .canonicalize()
        .map_err(|e| Error::input(input, e.to_string()))?;
    let display_root = input.display().to_string();
    if meta.is_file() {
        return Ok(vec![target(display_root, real, false)]);
    }
    let mut found = Vec::new();
    let preferred: Vec<PathBuf> = ["bin", "libexec"]
        .iter()
        .map(|d| real.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let only_executables = !all;
    if all || preferred.is_empty() {
        walk(&real, &real, 0, only_executables, &mut found)?;
    } else {
        for dir in &preferred {
            walk(&real, dir, 0, true, &mut found)?;
        }
    }
    if found.is_empty() {
        let looked = if all || preferred.is_empty() {
            "anywhere below it".to_string()
        } else {
            "in bin/ and libexec/".to_string()
        };
        return Err(Error::input(
            input,
            format!(
                "no executable binaries found {looked}; pass --all to inspect every ELF file, or point at a binary"
            ),
        ));
    }
    found.sort();
    found.dedup();
    Ok(found
        .into_iter()
        .map(|(rel, host)| {
            target(
                format!("{}/{}", display_root.trim_end_matches('/'), rel),
                host,
                true,
            )
        })
        .collect())
}

fn target(display: String, host_path: PathBuf, from_walk: bool) -> Target {
    let store = store_location(&host_path);
    Target {
        display,
        host_path,
        store,
        from_walk,
        declared: None,
    }
}

pub fn store_location(path: &Path) -> Option<StoreLocation> {
    let text = path.to_str()?;
    let (prefix, rest) = text.split_once("/nix/store/")?;
    let store_name = rest.split('/').next()?.to_string();
    let root = if prefix.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(prefix)
    };
    Some(StoreLocation { store_name, root })
}

/// Collect `(path relative to the input, real path)` of binary files below `dir`.
fn walk(
    base: &Path,
    dir: &Path,
    depth: usize,
    only_executables: bool,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::input(dir, e.to_string()))?;
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(link_meta) = entry.file_type() else {
            continue;
        };
        // Directories are only entered for real, never through symlinks, so loops cannot form.
        if link_meta.is_dir() {
            walk(base, &path, depth + 1, only_executables, out)?;
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if only_executables && meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        if !has_binary_magic(&path) {
            continue;
        }
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        let rel = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .to_string_lossy()
            .to_string();
        out.push((rel, real));
    }
    Ok(())
}

fn has_binary_magic(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && looks_like_binary(&head)
}
