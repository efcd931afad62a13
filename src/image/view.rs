//! The final rootfs of an image: layers applied in order with whiteouts, as a tree of nodes
//! that symlink resolution, closure checks and extraction read.

use super::ImageError;
use super::layer::{Entry, EntryKind, LayerScan};
use crate::inspect::closure::FactTree;
use crate::inspect::{BinaryFacts, Identity};
use crate::rootfs::{NodeKind, Root, RootOrigin, Tree};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub enum Node {
    File {
        size: u64,
        executable: bool,
        facts: Option<Box<BinaryFacts>>,
        layer: usize,
    },
    Dir,
    Symlink(String),
}

#[derive(Debug, Default)]
pub struct View {
    pub nodes: BTreeMap<String, Node>,
    /// Shown in reports as the closure's root: `image sha256:…`.
    pub label: String,
}

impl View {
    pub fn new(label: String) -> View {
        View {
            nodes: BTreeMap::new(),
            label,
        }
    }

    /// Apply one layer: its whiteouts first (they only hide lower layers), then its entries.
    pub fn apply(&mut self, index: usize, scan: &LayerScan) -> Result<(), ImageError> {
        for e in &scan.entries {
            match e.kind {
                EntryKind::Whiteout => self.remove_tree(&e.path, true),
                EntryKind::Opaque => self.remove_tree(&e.path, false),
                _ => {}
            }
        }
        for e in &scan.entries {
            self.refuse_write_through_symlink(e, &scan.digest)?;
            let node = match &e.kind {
                EntryKind::Whiteout | EntryKind::Opaque => continue,
                EntryKind::Dir => Node::Dir,
                EntryKind::Symlink(t) => Node::Symlink(t.clone()),
                EntryKind::File {
                    size,
                    executable,
                    facts,
                } => Node::File {
                    size: *size,
                    executable: *executable,
                    facts: facts.clone(),
                    layer: index,
                },
                EntryKind::Hardlink(target) => match self.nodes.get(target) {
                    Some(n @ Node::File { .. }) => n.clone(),
                    _ => {
                        return Err(ImageError::Hostile(format!(
                            "layer {}: hardlink {} -> {target} does not point at a file already in the image",
                            scan.digest, e.path
                        )));
                    }
                },
            };
            // A directory entry over an existing directory keeps what is below it.
            if matches!(node, Node::Dir) && matches!(self.nodes.get(&e.path), Some(Node::Dir)) {
                continue;
            }
            self.remove_tree(&e.path, true);
            self.nodes.insert(e.path.clone(), node);
        }
        Ok(())
    }

    /// Remove everything below `path`, and `path` itself when `including`.
    fn remove_tree(&mut self, path: &str, including: bool) {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let below: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.nodes.remove(&k);
        }
        if including {
            self.nodes.remove(path);
        }
    }

    /// A tar that writes `a/x` after making `a` a symlink writes through the link, wherever
    /// it points: refuse it.
    fn refuse_write_through_symlink(&self, e: &Entry, layer: &str) -> Result<(), ImageError> {
        let mut prefix = String::new();
        let parts: Vec<&str> = e.path.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            prefix.push('/');
            prefix.push_str(part);
            if let Some(Node::Symlink(t)) = self.nodes.get(&prefix) {
                return Err(ImageError::Hostile(format!(
                    "layer {layer}: entry {} is written through the symlink {prefix} -> {t}",
                    e.path
                )));
            }
        }
        Ok(())
    }

    pub fn facts_at(&self, canonical: &str) -> Option<&BinaryFacts> {
        match self.nodes.get(canonical) {
            Some(Node::File { facts: Some(f), .. }) => Some(f),
            _ => None,
        }
    }

    /// Every file in the final rootfs that is an executable binary, with its facts.
    /// ELF programs by their linkage; Mach-O and PE files only when marked executable; never
    /// a file that merely starts like a binary (a text file beginning "MZ").
    pub fn executables(&self) -> impl Iterator<Item = (&String, &BinaryFacts)> {
        self.nodes.iter().filter_map(|(p, n)| match n {
            Node::File {
                facts: Some(f),
                executable,
                ..
            } => {
                let counts = match &f.identity {
                    Identity::Elf(e) => e.is_executable(),
                    Identity::MachO(_) | Identity::Pe(_) => *executable,
                    Identity::Corrupt { .. } | Identity::NotBinary { .. } => false,
                };
                counts.then_some((p, f.as_ref()))
            }
            _ => None,
        })
    }
}

impl Tree for View {
    fn node(&self, guest_path: &str) -> Option<NodeKind> {
        let key = if guest_path.is_empty() {
            "/"
        } else {
            guest_path
        };
        if key == "/" {
            return Some(NodeKind::Other);
        }
        match self.nodes.get(key) {
            Some(Node::Symlink(t)) => Some(NodeKind::Symlink(t.clone())),
            Some(_) => Some(NodeKind::Other),
            // Directories are often implied by their files rather than listed.
            None => {
                let prefix = format!("{key}/");
                self.nodes
                    .range(prefix.clone()..)
                    .next()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|_| NodeKind::Other)
            }
        }
    }
}

impl FactTree for View {
    fn facts(&mut self, canonical: &str) -> Option<BinaryFacts> {
        self.facts_at(canonical).cloned()
    }
    fn root(&self) -> Root {
        Root::new(&self.label, RootOrigin::Image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::inspect_bytes;

    fn file(bytes: &[u8], executable: bool) -> Node {
        Node::File {
            size: bytes.len() as u64,
            executable,
            facts: Some(Box::new(inspect_bytes(bytes))),
            layer: 0,
        }
    }

    #[test]
    fn text_that_starts_like_a_binary_is_no_executable() {
        let mut view = View::new("test".into());
        view.nodes.insert(
            "/etc/notes".into(),
            file(b"MZ is how this note starts", false),
        );
        view.nodes.insert(
            "/bin/tool".into(),
            file(b"MZ is how this script starts too", true),
        );
        assert_eq!(view.executables().count(), 0);
    }

    #[test]
    fn a_real_elf_program_is_an_executable_whatever_its_mode() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut view = View::new("test".into());
        view.nodes.insert("/bin/app".into(), file(&elf, false));
        assert_eq!(view.executables().count(), 1);
    }
}
