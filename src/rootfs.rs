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
    /// An image's merged layers.
    Image,
}

impl RootOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            RootOrigin::Sysroot => "--sysroot",
            RootOrigin::StoreRoot => "the root above the input's nix/store",
            RootOrigin::Host => "the host",
            RootOrigin::DebianCross => "Debian's cross sysroot, found automatically",
            RootOrigin::Image => "the image's layers",
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

/// What a tree says about one path: enough to walk it like a kernel would.
#[derive(Debug, PartialEq, Eq)]
pub enum NodeKind {
    Symlink(String),
    Other,
}

/// A tree of guest paths: a real directory, or an image's merged layers.
pub trait Tree {
    /// `None` when nothing exists at `guest_path` (given without following its last link).
    fn node(&self, guest_path: &str) -> Option<NodeKind>;
}

/// A real directory seen as a root.
pub struct DirTree<'a>(pub &'a Path);

impl Tree for DirTree<'_> {
    fn node(&self, guest_path: &str) -> Option<NodeKind> {
        let host = self.0.join(guest_path.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&host).ok()?;
            Some(NodeKind::Symlink(target.to_string_lossy().into_owned()))
        } else {
            Some(NodeKind::Other)
        }
    }
}

/// Walk `guest_path` component by component below `root`.
pub fn resolve_in(root: &Path, guest_path: &str) -> Option<PathBuf> {
    resolve_guest(&DirTree(root), guest_path)
        .map(|canonical| root.join(canonical.trim_start_matches('/')))
}

/// The canonical guest path `guest_path` ends at, following symlinks inside the tree. Absolute
/// link targets restart at the tree's root and `..` stops at it, so nothing outside is reached.
pub fn resolve_guest(tree: &dyn Tree, guest_path: &str) -> Option<String> {
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
        resolved.push(part);
        let here = format!("/{}", resolved.join("/"));
        match tree.node(&here)? {
            NodeKind::Other => {}
            NodeKind::Symlink(target) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
        }
    }
    Some(format!("/{}", resolved.join("/")))
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
