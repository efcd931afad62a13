//! Resolves guest paths inside a root directory as the guest would, never leaving the root.

use serde::Serialize;
use std::path::{Component, Path, PathBuf};

/// Where a binary's loader and libraries are looked up, and why that place was chosen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Root {
    pub dir: PathBuf,
    pub origin: RootOrigin,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootOrigin {
    /// Given with `--sysroot`.
    Sysroot,
    /// The directory above a `nix/store` the input lives in.
    StoreRoot,
    /// The host itself (host-platform binaries and the host's /nix/store).
    Host,
    /// Debian's cross sysroot `/usr/<triple>`, used when nothing else was given.
    DebianCross,
}

impl RootOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            RootOrigin::Sysroot => "--sysroot",
            RootOrigin::StoreRoot => "the root above the input's nix/store",
            RootOrigin::Host => "the host",
            RootOrigin::DebianCross => "Debian's cross sysroot, found automatically",
        }
    }
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>, origin: RootOrigin) -> Root {
        Root {
            dir: dir.into(),
            origin,
        }
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// The host file a guest absolute path names, following symlinks inside the root.
    pub fn resolve(&self, guest_path: &str) -> Option<PathBuf> {
        resolve_in(&self.dir, guest_path)
    }

    /// The guest path of a host path that lies inside this root.
    pub fn guest_path_of(&self, host_path: &Path) -> Option<String> {
        let rel = host_path.strip_prefix(&self.dir).ok()?;
        Some(format!("/{}", rel.to_string_lossy()))
    }
}

/// Most hops a chain of symlinks may take, as in Linux's ELOOP limit.
const MAX_SYMLINK_HOPS: usize = 40;

/// Walk `guest_path` component by component below `root`. Absolute link targets restart at
/// the root and `..` stops at it, so nothing outside `root` is ever reached.
pub fn resolve_in(root: &Path, guest_path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = components(guest_path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = join(root, &resolved).join(&part);
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            let target = target.to_string_lossy().to_string();
            if target.starts_with('/') {
                resolved.clear();
            }
            let mut more = components(&target);
            more.reverse();
            pending.extend(more);
        } else {
            resolved.push(part);
        }
    }
    Some(join(root, &resolved))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::write(root.join("lib/ld64.so.2"), b"x").unwrap();
        symlink("/lib/ld64.so.2", root.join("lib64/ld64.so.2")).unwrap();
        assert_eq!(
            resolve_in(root, "/lib64/ld64.so.2"),
            Some(root.join("lib/ld64.so.2"))
        );
    }

    #[test]
    fn dotdot_and_escaping_links_are_clamped_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(dir.path().join("secret"), b"outside").unwrap();
        symlink("../../secret", root.join("a/escape")).unwrap();
        // `../../secret` from /a clamps to /secret inside the root, which does not exist.
        assert_eq!(resolve_in(&root, "/a/escape"), None);
        assert_eq!(resolve_in(&root, "/../../secret"), None);
    }

    #[test]
    fn symlink_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/b", dir.path().join("a")).unwrap();
        symlink("/a", dir.path().join("b")).unwrap();
        assert_eq!(resolve_in(dir.path(), "/a"), None);
    }
}
