//! The final rootfs of an image: layers applied in order with whiteouts, as a tree of nodes
//! that symlink resolution, closure checks and extraction read.

use super::ImageError;
use super::layer::{EntryKind, LayerScan, PlainAt, parent_of};
use super::plain::{PlainFiles, path_hash};
use crate::inspect::closure::FactTree;
use crate::inspect::{BinaryFacts, Identity};
use crate::rootfs::{NodeKind, Root, RootOrigin, Tree};
use std::collections::{BTreeMap, HashMap};

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
    /// Files no check reads, by path hash only.
    plain: PlainFiles,
    /// The path of every node by its hash, so a plain file written over a node (known only by
    /// its hash) can replace it.
    node_paths: HashMap<u64, String>,
    /// Shown in reports as the closure's root: `image sha256:…`.
    pub label: String,
}

impl View {
    pub fn new(label: String) -> View {
        View {
            label,
            ..View::default()
        }
    }

    /// Room for the plain files of layers about to be applied.
    pub fn reserve_plain(&mut self, files: usize) {
        self.plain.reserve(files);
    }

    /// Every layer is applied: compact what is kept for the checks that read the view.
    pub fn finish(&mut self) {
        self.plain.freeze();
        self.node_paths = HashMap::new();
    }

    /// Apply one layer: its whiteouts first (they only hide lower layers), then its entries.
    pub fn apply(&mut self, index: usize, scan: &LayerScan) -> Result<(), ImageError> {
        if self.node_paths.is_empty() && !self.nodes.is_empty() {
            // Dropped by `finish`; a layer after it needs them again.
            self.node_paths = self
                .nodes
                .keys()
                .map(|p| (path_hash(p), p.clone()))
                .collect();
        }
        for e in &scan.entries {
            match e.kind {
                EntryKind::Whiteout => self.remove_tree(&e.path, true),
                EntryKind::Opaque => self.remove_tree(&e.path, false),
                _ => {}
            }
        }
        let mut plain = scan.plain.iter().peekable();
        for (at, e) in scan.entries.iter().enumerate() {
            while let Some(p) = plain.next_if(|p| p.before as usize <= at) {
                self.insert_plain(p, scan)?;
            }
            self.refuse_write_through_symlink(&parent_of(&e.path), &e.path, &scan.digest)?;
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
                    None if self.plain.contains(target) => {
                        self.remove_tree(&e.path, true);
                        self.plain.insert(path_hash(&e.path));
                        continue;
                    }
                    _ => {
                        return Err(ImageError::Hostile(format!(
                            "layer {}: hardlink {} -> {target} does not point at a file already in the image",
                            scan.digest, e.path
                        )));
                    }
                },
            };
            if matches!(node, Node::Dir) {
                // A directory entry over a directory, listed or only implied by its files,
                // keeps what is below it, as mkdir over an existing one does.
                if matches!(self.nodes.get(&e.path), Some(Node::Dir)) {
                    continue;
                }
                self.remove_node(&e.path);
                self.plain.remove(&e.path);
            } else {
                self.remove_tree(&e.path, true);
            }
            self.node_paths.insert(path_hash(&e.path), e.path.clone());
            self.nodes.insert(e.path.clone(), node);
        }
        for p in plain {
            self.insert_plain(p, scan)?;
        }
        Ok(())
    }

    /// A plain file written over a node replaces it and whatever was below it.
    fn insert_plain(&mut self, file: &PlainAt, scan: &LayerScan) -> Result<(), ImageError> {
        let dir = &scan.plain_dirs[file.dir as usize];
        self.refuse_write_through_symlink(&dir.path, &dir.first_file, &scan.digest)?;
        if let Some(path) = self.node_paths.get(&file.hash).cloned() {
            self.remove_tree(&path, true);
        }
        self.plain.insert(file.hash);
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
            self.remove_node(&k);
        }
        self.plain.clear_below(path);
        if including {
            self.remove_node(path);
            self.plain.remove(path);
        }
    }

    fn remove_node(&mut self, path: &str) {
        if self.nodes.remove(path).is_some() {
            self.node_paths.remove(&path_hash(path));
        }
    }

    /// A tar that writes `a/x` after making `a` a symlink writes through the link, wherever
    /// it points: refuse it. `dir` is the entry's directory; `entry` names it in the error.
    fn refuse_write_through_symlink(
        &self,
        dir: &str,
        entry: &str,
        layer: &str,
    ) -> Result<(), ImageError> {
        let mut prefix = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            if let Some(Node::Symlink(t)) = self.nodes.get(&prefix) {
                return Err(ImageError::Hostile(format!(
                    "layer {layer}: entry {entry} is written through the symlink {prefix} -> {t}"
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
                    Identity::MachO(_) | Identity::Pe(_) | Identity::Wasm(_) => *executable,
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
            None if self.plain.contains(key) => Some(NodeKind::Other),
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
    use crate::image::layer::Entry;
    use crate::inspect::inspect_bytes;

    fn file(bytes: &[u8], executable: bool) -> Node {
        Node::File {
            size: bytes.len() as u64,
            executable,
            facts: Some(Box::new(inspect_bytes(bytes))),
            layer: 0,
        }
    }

    /// `None` stands for a plain file, as the layer walk records it.
    fn scan(list: Vec<(Option<Entry>, &str)>) -> LayerScan {
        let mut entries = Vec::new();
        let mut plain = Vec::new();
        let mut plain_dirs = Vec::new();
        for (entry, path) in list {
            match entry {
                Some(e) => entries.push(e),
                None => {
                    plain_dirs.push(crate::image::layer::PlainDir {
                        path: parent_of(path),
                        first_file: path.to_string(),
                    });
                    plain.push(PlainAt {
                        before: entries.len() as u32,
                        dir: plain_dirs.len() as u32 - 1,
                        hash: path_hash(path),
                    });
                }
            }
        }
        LayerScan {
            digest: "sha256:test".into(),
            size: 0,
            diff_id: String::new(),
            uncompressed_size: 0,
            compression: super::super::Compression::None,
            entries,
            plain,
            plain_dirs,
        }
    }
    fn entry(path: &str, kind: EntryKind) -> (Option<Entry>, &str) {
        let e = Entry {
            path: path.into(),
            kind,
        };
        (Some(e), path)
    }
    fn plain(path: &str) -> (Option<Entry>, &str) {
        (None, path)
    }
    fn hardlink<'a>(path: &'a str, target: &str) -> (Option<Entry>, &'a str) {
        entry(path, EntryKind::Hardlink(target.into()))
    }
    fn layers(list: Vec<Vec<(Option<Entry>, &str)>>) -> Result<View, ImageError> {
        let mut view = View::new("test".into());
        for (i, entries) in list.into_iter().enumerate() {
            view.apply(i, &scan(entries))?;
        }
        Ok(view)
    }

    #[test]
    fn a_directory_entry_over_an_implied_directory_keeps_its_files() {
        let view = layers(vec![
            vec![plain("/data/a.txt")],
            vec![
                entry("/data", EntryKind::Dir),
                hardlink("/data/b.txt", "/data/a.txt"),
            ],
        ])
        .expect("the hardlink finds a.txt");
        assert_eq!(view.node("/data/a.txt"), Some(NodeKind::Other));
        assert_eq!(view.node("/data/b.txt"), Some(NodeKind::Other));
    }

    #[test]
    fn a_hardlink_to_a_whited_out_or_cleared_file_is_refused() {
        let whited = layers(vec![
            vec![plain("/etc/a.conf")],
            vec![entry("/etc/a.conf", EntryKind::Whiteout)],
            vec![hardlink("/etc/b.conf", "/etc/a.conf")],
        ]);
        assert!(
            matches!(&whited, Err(ImageError::Hostile(m)) if m.contains("/etc/b.conf")),
            "{whited:?}"
        );
        let cleared = layers(vec![
            vec![plain("/etc/x/a.conf")],
            vec![entry("/etc", EntryKind::Opaque), plain("/etc/x/c.conf")],
            vec![hardlink("/etc/x/b.conf", "/etc/x/a.conf")],
        ]);
        assert!(
            matches!(cleared, Err(ImageError::Hostile(_))),
            "{cleared:?}"
        );
        // Written in the opaque layer itself, after the clearing: kept.
        let view = layers(vec![
            vec![plain("/etc/x/a.conf")],
            vec![entry("/etc", EntryKind::Opaque), plain("/etc/x/c.conf")],
        ])
        .unwrap();
        assert_eq!(view.node("/etc/x/c.conf"), Some(NodeKind::Other));
        assert_eq!(view.node("/etc/x/a.conf"), None);
    }

    #[test]
    fn a_plain_file_over_a_binary_replaces_it_and_back() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let binary = || EntryKind::File {
            size: elf.len() as u64,
            executable: true,
            facts: Some(Box::new(inspect_bytes(&elf))),
        };
        let view = layers(vec![
            vec![entry("/bin/app", binary())],
            vec![plain("/bin/app")],
        ])
        .unwrap();
        assert_eq!(view.executables().count(), 0);
        assert_eq!(view.node("/bin/app"), Some(NodeKind::Other));
        let view = layers(vec![
            vec![plain("/bin/app")],
            vec![entry("/bin/app", binary())],
        ])
        .unwrap();
        assert_eq!(view.executables().count(), 1);
        // A plain file over a directory takes what was below it.
        let view = layers(vec![
            vec![entry("/opt", EntryKind::Dir), entry("/opt/app", binary())],
            vec![plain("/opt")],
        ])
        .unwrap();
        assert_eq!(view.executables().count(), 0);
        assert_eq!(view.node("/opt/app"), None);
    }

    #[test]
    fn files_written_through_a_symlink_are_refused_and_named() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let binary = || EntryKind::File {
            size: elf.len() as u64,
            executable: true,
            facts: Some(Box::new(inspect_bytes(&elf))),
        };
        let link = || entry("/lib", EntryKind::Symlink("usr/lib".into()));
        let refused = |result: Result<View, ImageError>, entry: &str| match result {
            Err(ImageError::Hostile(m)) => {
                assert!(m.contains(entry) && m.contains("symlink /lib"), "{m}")
            }
            other => panic!("{entry}: {other:?}"),
        };
        // Through a lower layer's symlink: a binary, and a plain file.
        refused(
            layers(vec![vec![link()], vec![entry("/lib/app", binary())]]),
            "/lib/app",
        );
        refused(
            layers(vec![vec![link()], vec![plain("/lib/deep/a.conf")]]),
            "/lib/deep/a.conf",
        );
        // In one layer: the link first, then a file below it.
        refused(
            layers(vec![vec![link(), plain("/lib/a.conf")]]),
            "/lib/a.conf",
        );
        // A file written before its directory became a link is only replaced.
        let view = layers(vec![vec![plain("/lib/a.conf"), link()]]).unwrap();
        assert_eq!(view.node("/lib/a.conf"), None);
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
