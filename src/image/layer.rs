//! One pass over a layer blob: hash the compressed bytes, decompress, hash the tar, walk its
//! entries, refuse hostile ones and record the ELF facts of every file, all while streaming.

use super::gotar;
use super::plain::{name_hash, path_hash};
use super::{Compression, ImageError, Limits};
use crate::inspect::{BinaryFacts, inspect_stream, looks_like_binary};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Copies what is read into a writer as well (assemble's single pass).
struct Tee<'w, R> {
    inner: R,
    copy: Option<&'w mut dyn Write>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = self.copy.as_mut() {
            w.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    File {
        size: u64,
        executable: bool,
        facts: Option<super::view::FileFacts>,
        /// Mode and digest of every file, kept only when a read records them (`dump`).
        content: Option<Box<Content>>,
    },
    Dir,
    Symlink(String),
    /// Target as a rootfs path (`/a/b`).
    Hardlink(String),
    /// Removes this path from lower layers.
    Whiteout,
    /// Removes everything below this directory from lower layers.
    Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Content {
    pub mode: u32,
    pub sha256: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Rootfs path, `/a/b`.
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerScan {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub uncompressed_size: u64,
    pub compression: Compression,
    pub entries: Vec<Entry>,
    /// Regular files that are neither binaries nor executable: most files of an image, kept
    /// in 16 bytes each, in tar order.
    pub plain: Vec<PlainAt>,
    /// The directories those files are in, each with the first such file's path (to name it
    /// in an error).
    pub plain_dirs: Vec<PlainDir>,
    /// Taken from the fact cache rather than read (`crate::cache`).
    #[serde(skip)]
    pub from_cache: bool,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct PlainAt {
    /// How many of `entries` came before it in the tar.
    pub before: u32,
    /// Index into `plain_dirs`.
    pub dir: u32,
    /// Keyed hash of its file name (`plain::name_hash`); its path's hash joins it to the
    /// directory it lands in.
    pub name: u64,
}

/// A layer's named entries, plain files and their directories, in tar order.
type Walked = (Vec<Entry>, Vec<PlainAt>, Vec<PlainDir>);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlainDir {
    pub path: String,
    pub first_file: String,
}

impl LayerScan {
    pub fn file_count(&self) -> usize {
        self.entries.len() + self.plain.len()
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// An image's decompression limit, shared by its layers as they are read in parallel: each
/// read draws from it, so the first layer to overdraw it stops at once.
#[derive(Debug)]
pub struct Budget {
    left: std::sync::atomic::AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            left: std::sync::atomic::AtomicU64::new(limit),
        }
    }

    /// Draw `n` bytes; false when fewer were left (the budget is then spent).
    pub fn draw(&self, n: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.left
            .fetch_update(Relaxed, Relaxed, |left| Some(left.saturating_sub(n)))
            .is_ok_and(|left| left >= n)
    }
}

/// Decompressed bytes, drawn from the image's budget as they are read.
struct Budgeted<'b, R> {
    inner: R,
    budget: &'b Budget,
    over: bool,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.budget.draw(n as u64) {
            self.over = true;
            return Err(std::io::Error::other(
                "the image's decompression budget is spent",
            ));
        }
        Ok(n)
    }
}

/// Read one layer blob, drawing its decompressed bytes from `budget`.
/// With `spill`, the bytes of every binary are also written there, named by their sha256, so a
/// run can use them without reading the layer again.
pub fn scan(
    blob: impl Read,
    label: &str,
    limits: &Limits,
    budget: &Budget,
    spill: Option<&std::path::Path>,
    tee: Option<(super::TeeSide, &mut dyn Write)>,
    record: bool,
) -> Result<LayerScan, ImageError> {
    let (verbatim, tar_tee): (Option<&mut dyn Write>, Option<&mut dyn Write>) = match tee {
        Some((super::TeeSide::Verbatim, w)) => (Some(w), None),
        Some((super::TeeSide::Tar, w)) => (None, Some(w)),
        None => (None, None),
    };
    let mut compressed = Hashing::new(Tee {
        inner: blob,
        copy: verbatim,
    });
    let hostile = |what: String| ImageError::Hostile(format!("layer {label}: {what}"));
    let (compression, (entries, plain, plain_dirs), diff_id, uncompressed_size) = {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut compressed);
        let head = buffered
            .fill_buf()
            .map_err(|e| hostile(format!("cannot be read: {e}")))?;
        let compression = Compression::sniff(head);
        let decoder = compression
            .decoder(buffered)
            .map_err(|e| hostile(format!("cannot start {compression:?} decompression: {e}")))?;
        let mut raw = Hashing::new(Tee {
            inner: Budgeted {
                inner: decoder,
                budget,
                over: false,
            },
            copy: tar_tee,
        });
        let over_budget = |count: u64| {
            hostile(format!(
                "decompresses past the image's {}-byte limit (raise [limits] max_uncompressed_bytes in mab.toml if this is genuine)",
                limits.max_uncompressed
            ))
            .with_count(count)
        };
        let entries = match walk(&mut raw, label, limits, spill, record) {
            Ok(entries) => entries,
            // A stream cut short by the limit looks truncated to the tar reader: say why.
            Err(_) if raw.inner.inner.over => return Err(over_budget(raw.count)),
            Err(e) => return Err(e),
        };
        // Whatever follows the end-of-archive blocks still belongs to the diff_id.
        if let Err(e) = std::io::copy(&mut raw, &mut std::io::sink()) {
            if raw.inner.inner.over {
                return Err(over_budget(raw.count));
            }
            return Err(hostile(format!(
                "the {compression:?} stream is corrupt or truncated: {e}"
            )));
        }
        let (diff_id, uncompressed_size) = raw.finish();
        (compression, entries, diff_id, uncompressed_size)
    };
    std::io::copy(&mut compressed, &mut std::io::sink())
        .map_err(|e| hostile(format!("cannot be read: {e}")))?;
    let (digest, size) = compressed.finish();
    Ok(LayerScan {
        digest,
        size,
        diff_id,
        uncompressed_size,
        compression,
        entries,
        plain,
        plain_dirs,
        from_cache: false,
    })
}

/// Walk the tar as Go's archive/tar frames it (see `gotar`), refusing what the runtimes would
/// read differently from this reader.
fn walk(
    raw: &mut impl Read,
    label: &str,
    limits: &Limits,
    spill: Option<&std::path::Path>,
    record: bool,
) -> Result<Walked, ImageError> {
    let hostile = |what: String| ImageError::Hostile(format!("layer {label}: {what}"));
    let mut archive = gotar::Reader::new(raw);
    let duplicate =
        |raw_name: &str| hostile(format!("entry {raw_name:?} appears twice in one layer"));
    let mut entries = Vec::new();
    let mut plain = Vec::new();
    let mut plain_dirs: Vec<PlainDir> = Vec::new();
    let mut dir_index: HashMap<String, u32> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    // This layer's paths and their directories, to see a whiteout of something it wrote.
    let mut written: HashSet<u64> = HashSet::new();
    let mut shapes = super::view::Interner::default();
    while let Some(header) = archive
        .next_entry()
        .map_err(|e| hostile(format!("the tar stream {e}")))?
    {
        let raw_name = header.name.clone();
        let path =
            rootfs_path(&raw_name).map_err(|why| hostile(format!("entry {raw_name:?} {why}")))?;
        let kind_byte = header.typeflag;
        let file_name = path.rsplit('/').next().unwrap_or("");
        let parent = parent_of(&path);
        // Runtimes decide a whiteout by its name alone, whatever its type.
        let kind = if file_name == OPAQUE_MARKER {
            Entry {
                path: parent,
                kind: EntryKind::Opaque,
            }
        } else if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(hostile(format!(
                    "entry {raw_name:?} is a whiteout of {hidden:?}, which names no file"
                )));
            }
            Entry {
                path: join(&parent, hidden),
                kind: EntryKind::Whiteout,
            }
        } else if kind_byte == b'5' {
            Entry {
                path,
                kind: EntryKind::Dir,
            }
        } else if kind_byte == b'2' {
            let target = link_target(&header)
                .map_err(|why| hostile(format!("entry {raw_name:?}: {why}")))?;
            if escapes(&parent, &target) {
                return Err(hostile(format!(
                    "symlink {raw_name:?} -> {target:?} points outside the image's root"
                )));
            }
            Entry {
                path,
                kind: EntryKind::Symlink(target),
            }
        } else if kind_byte == b'1' {
            let target = link_target(&header)
                .map_err(|why| hostile(format!("entry {raw_name:?}: {why}")))?;
            let target_path = rootfs_path(&target)
                .map_err(|why| hostile(format!("hardlink {raw_name:?} -> {target:?} {why}")))?;
            Entry {
                path,
                kind: EntryKind::Hardlink(target_path),
            }
        } else if kind_byte == b'0' {
            let size = header.data_len();
            let mode = header.mode;
            let unreadable = |e: std::io::Error| {
                hostile(format!(
                    "entry {raw_name:?} cannot be read, the blob is truncated or corrupt: {e}"
                ))
            };
            let (facts, content) = if record {
                let mut hashing = Hashing::new(&mut archive);
                let facts = read_facts(&mut hashing, size, limits, spill).map_err(unreadable)?;
                std::io::copy(&mut hashing, &mut std::io::sink()).map_err(unreadable)?;
                let (sha256, _) = hashing.finish();
                let content = Content {
                    mode: (mode & 0o7777) as u32,
                    sha256,
                };
                (facts, Some(Box::new(content)))
            } else {
                let facts = read_facts(&mut archive, size, limits, spill).map_err(unreadable)?;
                (facts, None)
            };
            let executable = mode & 0o111 != 0;
            if facts.is_none() && !executable && !record {
                let hash = path_hash(&path);
                if !seen.insert(hash) {
                    return Err(duplicate(&raw_name));
                }
                let dir = *dir_index.entry(parent.clone()).or_insert_with(|| {
                    plain_dirs.push(PlainDir {
                        path: parent.clone(),
                        first_file: path.clone(),
                    });
                    plain_dirs.len() as u32 - 1
                });
                note_written(&mut written, &path);
                plain.push(PlainAt {
                    before: entries.len() as u32,
                    dir,
                    name: name_hash(file_name),
                });
                continue;
            }
            Entry {
                path,
                kind: EntryKind::File {
                    size,
                    executable,
                    facts: facts.map(|f| shapes.intern(f)),
                    content,
                },
            }
        } else if matches!(kind_byte, b'3' | b'4' | b'6') {
            return Err(hostile(format!(
                "entry {raw_name:?} is a device node or FIFO, which an application image has no use for"
            )));
        } else {
            // Includes '7' (contiguous): Go hands it on, and umoci refuses it as unknown.
            return Err(hostile(format!(
                "entry {raw_name:?} has unsupported tar type {:?}",
                kind_byte as char
            )));
        };
        let is_dir = matches!(kind.kind, EntryKind::Dir);
        if !seen.insert(path_hash(&kind.path)) && !is_dir {
            return Err(duplicate(&raw_name));
        }
        if matches!(kind.kind, EntryKind::Whiteout) && written.contains(&path_hash(&kind.path)) {
            // umoci keeps what this layer wrote there, containerd removes it; the spec says
            // a whiteout hides only lower layers. Refused rather than picking one.
            return Err(hostile(format!(
                "entry {raw_name:?} whites out {} after this layer wrote it or something below it (runtimes disagree on what remains)",
                kind.path
            )));
        }
        if !matches!(kind.kind, EntryKind::Whiteout | EntryKind::Opaque) {
            note_written(&mut written, &kind.path);
        }
        entries.push(kind);
    }
    // Held until the image is complete: without the growth slack.
    entries.shrink_to_fit();
    plain.shrink_to_fit();
    Ok((entries, plain, plain_dirs))
}

fn note_written(written: &mut HashSet<u64>, path: &str) {
    let mut p = path;
    while p != "/" && written.insert(path_hash(p)) {
        p = match p.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &p[..i],
        };
    }
}

fn link_target(header: &gotar::Header) -> Result<String, String> {
    Some(header.linkname.clone())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "link without a target".to_string())
}

/// Inspect a file's bytes only when they start like a binary; everything else is skipped
/// without being kept.
fn read_facts(
    entry: &mut impl Read,
    size: u64,
    limits: &Limits,
    spill: Option<&std::path::Path>,
) -> std::io::Result<Option<BinaryFacts>> {
    if size < 4 {
        return Ok(None);
    }
    let mut head = [0u8; 4];
    entry.read_exact(&mut head)?;
    if !looks_like_binary(&head) || size > limits.max_binary_bytes {
        return Ok(None);
    }
    inspect_stream(&head, entry, size, spill).map(Some)
}

/// `./usr/bin/x` → `/usr/bin/x`. Absolute names and `..` are refused: a layer lists paths
/// relative to the rootfs, and anything else is an attempt to write elsewhere.
pub fn rootfs_path(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') {
        return Err("is an absolute path; layer entries must be relative to the rootfs".into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("contains '..', which would leave the rootfs".into()),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

pub fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether a relative link target climbs above the root from `dir`. Absolute targets are
/// resolved from the image's root by whoever follows them, so they cannot escape.
fn escapes(dir: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = dir.split('/').filter(|p| !p.is_empty()).count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_hostile_ones_refused() {
        assert_eq!(rootfs_path("./usr/bin/x").unwrap(), "/usr/bin/x");
        assert_eq!(rootfs_path("usr//bin/").unwrap(), "/usr/bin");
        assert!(rootfs_path("/etc/passwd").is_err());
        assert!(rootfs_path("a/../../b").is_err());
    }

    #[test]
    fn relative_links_that_climb_out_escape() {
        assert!(escapes("/", "../etc"));
        assert!(escapes("/a", "../../b"));
        assert!(!escapes("/a/b", "../c"));
        assert!(!escapes("/a", "/etc/passwd"));
    }
}
