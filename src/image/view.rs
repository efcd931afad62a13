//! The final rootfs of an image: layers applied in order with whiteouts, as a tree of nodes
//! that symlink resolution, closure checks and extraction read.

use super::ImageError;
use super::layer::{Content, EntryKind, LayerScan, PlainAt, PlainDir, parent_of};
use super::plain::{PlainFiles, dir_hash, join_hash, path_hash};
use crate::inspect::closure::FactTree;
use crate::inspect::{BinaryFacts, Identity};
use crate::rootfs::{NodeKind, Root, RootOrigin, Tree};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Node {
    File {
        size: u64,
        executable: bool,
        facts: Option<FileFacts>,
        layer: usize,
        /// Mode and digest, when the read recorded them (`dump`).
        content: Option<Box<Content>>,
    },
    Dir,
    Symlink(String),
}

/// A file's facts, kept compact: the identity that many files of an image share (100,000 tiny
/// programs of one build read alike) is held once, each file's own digest and size beside it.
#[derive(Debug, Clone)]
pub struct FileFacts {
    shared: Arc<BinaryFacts>,
    /// The file's sha256 and size when `shared` is an interned identity (its own digest
    /// blanked); `None` when `shared` is this file's facts as read.
    own: Option<([u8; 32], u64)>,
}

// Stored (the fact cache) as the full facts; read back unshared.
impl serde::Serialize for FileFacts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

// Read back (a cache entry of 50,000 files of one build) shared again, as the walk shares them.
impl<'de> serde::Deserialize<'de> for FileFacts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let facts = BinaryFacts::deserialize(deserializer)?;
        Ok(LOADED.with(|shapes| shapes.borrow_mut().intern(facts)))
    }
}

thread_local! {
    /// The shapes of files read back on this thread, held weakly: a shape lives as long as a
    /// file of some view has it.
    static LOADED: std::cell::RefCell<Interner> = Default::default();
}

impl FileFacts {
    /// Facts kept as they are, shared with no other file.
    pub fn alone(facts: BinaryFacts) -> FileFacts {
        FileFacts {
            shared: Arc::new(facts),
            own: None,
        }
    }

    /// This file's facts in full.
    pub fn get(&self) -> BinaryFacts {
        match self.own {
            None => (*self.shared).clone(),
            Some((sha, size)) => BinaryFacts {
                sha256: hex::encode(sha),
                size,
                identity: self.shared.identity.clone(),
            },
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    pub fn sha256(&self) -> String {
        match self.own {
            None => self.shared.sha256.clone(),
            Some((sha, _)) => hex::encode(sha),
        }
    }
}

/// Shares equal identities between the files of one layer (or one cache entry read back).
/// Shapes are held weakly, so an interner that outlives the views (`LOADED`) keeps no facts
/// alive; past `MAX_SHAPES` live shapes it starts over rather than grow.
#[derive(Default)]
pub struct Interner(HashMap<String, std::sync::Weak<BinaryFacts>>);

const MAX_SHAPES: usize = 4096;

impl Interner {
    pub fn intern(&mut self, facts: BinaryFacts) -> FileFacts {
        let mut sha = [0u8; 32];
        if hex::decode_to_slice(&facts.sha256, &mut sha).is_err() {
            return FileFacts::alone(facts);
        }
        // Debug output names every field, so equal text is equal facts.
        let key = format!("{:?}", facts.identity);
        let shared = match self.0.get(&key).and_then(std::sync::Weak::upgrade) {
            Some(s) => s,
            None => {
                if self.0.len() >= MAX_SHAPES {
                    self.0.retain(|_, s| s.strong_count() > 0);
                    if self.0.len() >= MAX_SHAPES {
                        self.0.clear();
                    }
                }
                let s = Arc::new(BinaryFacts {
                    sha256: String::new(),
                    size: 0,
                    identity: facts.identity,
                });
                self.0.insert(key, Arc::downgrade(&s));
                s
            }
        };
        FileFacts {
            shared,
            own: Some((sha, facts.size)),
        }
    }
}

#[derive(Debug, Default)]
pub struct View {
    pub nodes: BTreeMap<String, Node>,
    /// Files no check reads, by path hash only.
    plain: PlainFiles,
    /// The hash of every node's path, while layers are applied, so a plain file written over
    /// a node (known only by its hash) is seen to replace it.
    node_hashes: std::collections::HashSet<u64>,
    /// Every node's path by its hash, made only once a plain file does land on a node: most
    /// images never need it, and it would hold every path twice.
    node_paths: Option<HashMap<u64, String>>,
    /// Shown in reports as the closure's root: `image sha256:…`.
    pub label: String,
    /// Symlink nodes in the tree.
    symlinks: usize,
    /// Bumped whenever a symlink comes or goes, so cached resolutions are redone.
    generation: u64,
    /// Resolved directories by name, valid for one `generation`: each directory is resolved
    /// from its parent's resolution, so deep trees cost linear time.
    dir_cache: std::sync::Mutex<(u64, HashMap<String, String>)>,
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
        self.node_hashes = Default::default();
        self.node_paths = None;
        self.dir_cache = Default::default();
    }

    /// Apply one layer: its whiteouts first (they only hide lower layers), then its entries.
    /// Every path is placed as umoci and containerd place it: its directory resolved through
    /// the symlinks already in the image, inside the root (`bin -> usr/bin` then `bin/app`
    /// writes `/usr/bin/app`); the last component is not followed.
    /// The scan is consumed as it is applied, so its entries and the view's nodes are not both
    /// held in full.
    pub fn apply(&mut self, index: usize, scan: LayerScan) -> Result<(), ImageError> {
        if self.node_hashes.is_empty() && !self.nodes.is_empty() {
            // Dropped by `finish`; a layer after it needs them again.
            self.node_hashes = self.nodes.keys().map(|p| path_hash(p)).collect();
        }
        let hostile = |m: String| ImageError::Hostile(format!("layer {}: {m}", scan.digest));
        // Hardlink targets as the layer found them, before its whiteouts: a link written
        // before the whiteout of its source (in tar order) keeps the source's content.
        let mut before_whiteouts: HashMap<String, Option<Node>> = HashMap::new();
        for e in &scan.entries {
            if let EntryKind::Hardlink(target) = &e.kind {
                let t = self.place(target).map_err(&hostile)?;
                if let Some(n) = self.nodes.get(&t) {
                    before_whiteouts.insert(t, Some(n.clone()));
                } else if self.plain.contains(&t) {
                    before_whiteouts.insert(t, None);
                }
            }
        }
        let mut hidden: Vec<(usize, String, bool)> = Vec::new();
        for (at, e) in scan.entries.iter().enumerate() {
            match e.kind {
                EntryKind::Whiteout => {
                    let p = self.place(&e.path).map_err(&hostile)?;
                    self.remove_tree(&p, true);
                    hidden.push((at, p, true));
                }
                EntryKind::Opaque => {
                    let p = self.resolve_dir(&e.path).map_err(&hostile)?;
                    self.remove_tree(&p, false);
                    hidden.push((at, p, false));
                }
                _ => {}
            }
        }
        let mut dir_hashes: Vec<Option<(u64, u64)>> = vec![None; scan.plain_dirs.len()];
        let mut plain = scan.plain.iter().peekable();
        // Taken from the back of the reversed list and the list shrunk as it goes, so the
        // layer's entries are released while the nodes made of them grow.
        let mut entries = scan.entries;
        entries.reverse();
        for at in 0..entries.len() {
            let Some(e) = entries.pop() else { break };
            if at % 4096 == 4095 {
                entries.shrink_to_fit();
            }
            while let Some(p) = plain.next_if(|p| p.before as usize <= at) {
                self.insert_plain(p, &scan.plain_dirs, &scan.digest, &mut dir_hashes)?;
            }
            if matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                continue;
            }
            let path = self.place(&e.path).map_err(&hostile)?;
            let node = match e.kind {
                EntryKind::Whiteout | EntryKind::Opaque => continue,
                EntryKind::Dir => Node::Dir,
                EntryKind::Symlink(t) => Node::Symlink(t),
                EntryKind::File {
                    size,
                    executable,
                    facts,
                    content,
                } => Node::File {
                    size,
                    executable,
                    facts,
                    layer: index,
                    content,
                },
                EntryKind::Hardlink(target) => {
                    let t = self.place(&target).map_err(&hostile)?;
                    if t == path || t.starts_with(&format!("{path}/")) {
                        // The runtimes clear the link's path first, and its target with it.
                        return Err(hostile(format!(
                            "hardlink {} -> {target} points at itself or below itself",
                            e.path
                        )));
                    }
                    let found = match self.nodes.get(&t) {
                        Some(n) => Some(Some(n.clone())),
                        None if self.plain.contains(&t) => Some(None),
                        None => {
                            let hidden_before = hidden.iter().any(|(w, p, including)| {
                                *w < at
                                    && ((*including && *p == t)
                                        || t.starts_with(&format!("{}/", p.trim_end_matches('/'))))
                            });
                            before_whiteouts.get(&t).cloned().filter(|_| !hidden_before)
                        }
                    };
                    match found {
                        Some(Some(n @ (Node::File { .. } | Node::Symlink(_)))) => n,
                        Some(None) => {
                            self.remove_tree(&path, true);
                            self.plain.insert(path_hash(&path));
                            continue;
                        }
                        _ => {
                            return Err(hostile(format!(
                                "hardlink {} -> {target} does not point at a file already in the image",
                                e.path
                            )));
                        }
                    }
                }
            };
            if matches!(node, Node::Dir) {
                // A directory entry over a directory, listed or only implied by its files,
                // keeps what is below it, as mkdir over an existing one does.
                if matches!(self.nodes.get(&path), Some(Node::Dir)) {
                    continue;
                }
                self.remove_node(&path);
                self.plain.remove(&path);
            } else {
                self.remove_tree(&path, true);
            }
            if matches!(node, Node::Symlink(_)) {
                self.symlinks += 1;
                self.generation += 1;
            }
            self.ensure_dirs(&parent_of(&path));
            self.note_node(&path);
            self.nodes.insert(path, node);
        }
        for p in plain {
            self.insert_plain(p, &scan.plain_dirs, &scan.digest, &mut dir_hashes)?;
        }
        Ok(())
    }

    /// A plain file written over a node replaces it and whatever was below it. `dir_hashes`
    /// caches each directory's resolved hash while no symlink changes.
    fn insert_plain(
        &mut self,
        file: &PlainAt,
        plain_dirs: &[PlainDir],
        digest: &str,
        dir_hashes: &mut [Option<(u64, u64)>],
    ) -> Result<(), ImageError> {
        let dir = &plain_dirs[file.dir as usize];
        let hash = match dir_hashes[file.dir as usize] {
            Some((generation, h)) if generation == self.generation => h,
            _ => {
                let resolved = self.resolve_dir(&dir.path).map_err(|m| {
                    ImageError::Hostile(format!("layer {digest}: entry {}: {m}", dir.first_file))
                })?;
                let h = dir_hash(&resolved);
                self.ensure_dirs(&resolved);
                dir_hashes[file.dir as usize] = Some((self.generation, h));
                h
            }
        };
        let full = join_hash(hash, file.name);
        if self.node_hashes.contains(&full) {
            let nodes = &self.nodes;
            let paths = self
                .node_paths
                .get_or_insert_with(|| nodes.keys().map(|p| (path_hash(p), p.clone())).collect());
            if let Some(path) = paths.get(&full).cloned() {
                self.remove_tree(&path, true);
            }
        }
        self.plain.insert(full);
        Ok(())
    }

    /// The directories a file is written into exist from then on, as the runtimes' MkdirAll
    /// leaves them, even when the file is later removed. Every node's ancestors are
    /// directory nodes.
    fn ensure_dirs(&mut self, dir: &str) {
        let mut d = dir;
        while d != "/" && !d.is_empty() {
            if self.nodes.contains_key(d) {
                break;
            }
            self.plain.remove(d);
            self.note_node(d);
            self.nodes.insert(d.to_string(), Node::Dir);
            d = match d.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &d[..i],
            };
        }
    }

    /// Where an entry named `path` lands: its directory resolved, its name kept.
    fn place(&self, path: &str) -> Result<String, String> {
        if path == "/" {
            return Ok(path.to_string());
        }
        let parent = self.resolve_dir(&parent_of(path))?;
        let name = path.rsplit('/').next().unwrap_or("");
        Ok(if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        })
    }

    /// A directory resolved as `resolve(dir, true)` does, from the nearest ancestor already
    /// resolved in this generation.
    fn resolve_dir(&self, dir: &str) -> Result<String, String> {
        let mut cache = self.dir_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.0 != self.generation {
            cache.1.clear();
            cache.0 = self.generation;
        }
        let mut todo: Vec<(&str, &str)> = Vec::new();
        let mut cur = dir;
        let mut base = loop {
            if cur == "/" || cur.is_empty() {
                break "/".to_string();
            }
            if let Some(r) = cache.1.get(cur) {
                break r.clone();
            }
            let (parent, name) = match cur.rfind('/') {
                Some(0) => ("/", &cur[1..]),
                Some(i) => (&cur[..i], &cur[i + 1..]),
                None => ("/", cur),
            };
            todo.push((cur, name));
            cur = parent;
        };
        for (prefix, name) in todo.into_iter().rev() {
            let candidate = if base == "/" {
                format!("/{name}")
            } else {
                format!("{base}/{name}")
            };
            base = match self.nodes.get(&candidate) {
                Some(Node::Symlink(_)) => self.resolve(&candidate, true)?,
                Some(Node::File { .. }) => {
                    return Err(format!("{dir} goes through the file {candidate}"));
                }
                _ => candidate,
            };
            // Only a directory that exists stays what it is until the generation changes
            // (removing one bumps it); a missing one may become a file.
            if matches!(self.nodes.get(&base), Some(Node::Dir)) {
                cache.1.insert(prefix.to_string(), base.clone());
            }
        }
        Ok(base)
    }

    /// `path` with every symlink on the way followed inside the root, as securejoin does:
    /// absolute targets start at the root, `..` stops there, 255 links at most. With
    /// `follow_last` false the last component is kept as it is.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String, String> {
        let mut pending: std::collections::VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut cur = String::new();
        let mut lens: Vec<usize> = Vec::new();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    if let Some(l) = lens.pop() {
                        cur.truncate(l);
                    }
                    continue;
                }
                _ => {}
            }
            let before = cur.len();
            cur.push('/');
            cur.push_str(&c);
            if !pending.is_empty() || follow_last {
                match self.nodes.get(&cur) {
                    Some(Node::Symlink(t)) => {
                        links += 1;
                        if links > 255 {
                            return Err(format!("{path} goes through more than 255 symlinks"));
                        }
                        cur.truncate(before);
                        if t.starts_with('/') {
                            cur.clear();
                            lens.clear();
                        }
                        for part in t.split('/').filter(|p| !p.is_empty()).rev() {
                            pending.push_front(part.to_string());
                        }
                        continue;
                    }
                    Some(Node::File { .. }) => {
                        return Err(format!("{path} goes through the file {cur}"));
                    }
                    _ => {}
                }
            }
            lens.push(before);
        }
        Ok(if cur.is_empty() { "/".to_string() } else { cur })
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

    /// A node is about to be inserted at `path`.
    fn note_node(&mut self, path: &str) {
        let hash = path_hash(path);
        self.node_hashes.insert(hash);
        if let Some(paths) = &mut self.node_paths {
            paths.insert(hash, path.to_string());
        }
    }

    fn remove_node(&mut self, path: &str) {
        if let Some(n) = self.nodes.remove(path) {
            let hash = path_hash(path);
            self.node_hashes.remove(&hash);
            if let Some(paths) = &mut self.node_paths {
                paths.remove(&hash);
            }
            match n {
                Node::Symlink(_) => {
                    self.symlinks -= 1;
                    self.generation += 1;
                }
                // Cached directory resolutions may have ensured it.
                Node::Dir => self.generation += 1,
                Node::File { .. } => {}
            }
        }
    }

    pub fn facts_at(&self, canonical: &str) -> Option<BinaryFacts> {
        match self.nodes.get(canonical) {
            Some(Node::File { facts: Some(f), .. }) => Some(f.get()),
            _ => None,
        }
    }

    /// Every file in the final rootfs that is an executable binary, with its facts.
    /// ELF programs by their linkage or loader, ELF files too ambiguous to read; Mach-O and PE files only when marked executable; never
    /// a file that merely starts like a binary (a text file beginning "MZ").
    pub fn executables(&self) -> impl Iterator<Item = (&String, BinaryFacts)> {
        self.nodes.iter().filter_map(|(p, n)| match n {
            Node::File {
                facts: Some(f),
                executable,
                ..
            } => {
                let counts = match f.identity() {
                    // A program with a loader runs whatever else it is (a DT_SONAME does not
                    // make a wrong-arch executable a library).
                    Identity::Elf(e) => e.is_executable() || e.interpreter.is_some(),
                    Identity::MachO(_) | Identity::Pe(_) | Identity::Wasm(_) => *executable,
                    // An ELF refused as ambiguous (two PT_INTERP, …) counts, as an outlier:
                    // skipping it would pass whatever the kernel makes of it.
                    Identity::Corrupt { format, .. } => format == "ELF",
                    Identity::NotBinary { .. } => false,
                };
                counts.then(|| (p, f.get()))
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
        self.facts_at(canonical)
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
            facts: Some(FileFacts::alone(inspect_bytes(bytes))),
            layer: 0,
            content: None,
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
                        name: crate::image::plain::name_hash(path.rsplit('/').next().unwrap()),
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
            from_cache: false,
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
            view.apply(i, scan(entries))?;
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
            facts: Some(FileFacts::alone(inspect_bytes(&elf))),
            content: None,
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
    fn files_written_through_an_in_root_symlink_land_where_it_points() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let binary = || EntryKind::File {
            size: elf.len() as u64,
            executable: true,
            facts: Some(FileFacts::alone(inspect_bytes(&elf))),
            content: None,
        };
        let link = || entry("/lib", EntryKind::Symlink("usr/lib".into()));
        // Through a lower layer's symlink: a binary, and a plain file.
        let view = layers(vec![vec![link()], vec![entry("/lib/app", binary())]]).unwrap();
        assert!(view.nodes.contains_key("/usr/lib/app"), "{:?}", view.nodes);
        assert!(!view.nodes.contains_key("/lib/app"));
        let view = layers(vec![vec![link()], vec![plain("/lib/deep/a.conf")]]).unwrap();
        assert_eq!(view.node("/usr/lib/deep/a.conf"), Some(NodeKind::Other));
        // In one layer: the link first, then a file below it; an absolute link too.
        let view = layers(vec![vec![link(), plain("/lib/a.conf")]]).unwrap();
        assert_eq!(view.node("/usr/lib/a.conf"), Some(NodeKind::Other));
        let abs = entry("/bin", EntryKind::Symlink("/usr/bin".into()));
        let view = layers(vec![vec![abs, entry("/bin/app", binary())]]).unwrap();
        assert!(view.nodes.contains_key("/usr/bin/app"));
        // A file written before its directory became a link is only replaced.
        let view = layers(vec![vec![plain("/lib/a.conf"), link()]]).unwrap();
        assert_eq!(view.node("/lib"), Some(NodeKind::Symlink("usr/lib".into())));
        assert_eq!(view.node("/lib/a.conf"), None);
        assert_eq!(view.node("/usr/lib/a.conf"), None);
        // Below a file: refused.
        let below = layers(vec![vec![entry("/f", binary()), entry("/f/x", binary())]]);
        assert!(matches!(below, Err(ImageError::Hostile(m)) if m.contains("through the file")));
    }

    #[test]
    fn a_hardlink_keeps_a_source_whited_out_after_it_and_may_name_a_symlink() {
        let view = layers(vec![
            vec![plain("/etc/a.conf")],
            vec![
                hardlink("/etc/b.conf", "/etc/a.conf"),
                entry("/etc/a.conf", EntryKind::Whiteout),
            ],
        ])
        .unwrap();
        assert_eq!(view.node("/etc/b.conf"), Some(NodeKind::Other));
        assert_eq!(view.node("/etc/a.conf"), None);
        // The whiteout first: the link has nothing to point at.
        let refused = layers(vec![
            vec![plain("/etc/a.conf")],
            vec![
                entry("/etc/a.conf", EntryKind::Whiteout),
                hardlink("/etc/b.conf", "/etc/a.conf"),
            ],
        ]);
        assert!(refused.is_err());
        let view = layers(vec![vec![
            entry("/s", EntryKind::Symlink("t".into())),
            hardlink("/h", "/s"),
        ]])
        .unwrap();
        assert_eq!(view.node("/h"), Some(NodeKind::Symlink("t".into())));
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

    #[test]
    fn files_read_back_from_the_cache_share_their_shape_and_keep_their_digests() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut walk = Interner::default();
        let mut other = inspect_bytes(&elf);
        other.sha256 = "ab".repeat(32);
        other.size = 7;
        let written = vec![walk.intern(inspect_bytes(&elf)), walk.intern(other)];
        let json = serde_json::to_string(&written).unwrap();
        let read: Vec<FileFacts> = serde_json::from_str(&json).unwrap();
        assert!(Arc::ptr_eq(&read[0].shared, &read[1].shared));
        assert_eq!(read[0].sha256(), crate::inspect::sha256_hex(&elf));
        assert_eq!(read[1].sha256(), "ab".repeat(32));
        assert_eq!(read[1].get().size, 7);
        assert_eq!(
            format!("{:?}", read[0].get()),
            format!("{:?}", written[0].get())
        );
    }
}
