//! Layer tars (sorted, fixed mtime, root-owned, modes and symlinks kept) and their compressed blobs.

use super::{Hashing, Result, Sha256, WriteError, io_at};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tar::{EntryType, Header};

/// How a layer blob is compressed: the reader's own enum, so both sides name it alike.
pub use crate::image::Compression;

const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// A finished layer blob: digest and size of the compressed bytes, digest of the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerInfo {
    pub digest: Sha256,
    pub size: u64,
    /// sha256 of the uncompressed tar (what a config's `rootfs.diff_ids` lists).
    pub diff_id: Sha256,
    pub compression: Compression,
}

enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Compresses what is written to it into `out`, hashing both sides as the bytes stream by.
pub struct BlobWriter<W: Write> {
    tar: Hashing<Encoder<Hashing<W>>>,
    compression: Compression,
    /// The encoder is always fed whole `FEED`-byte blocks: deflate's output depends on how its
    /// input arrives, and the blob must depend only on the bytes.
    pending: Vec<u8>,
}

const FEED: usize = 64 << 10;

impl<W: Write> BlobWriter<W> {
    pub fn new(out: W, compression: Compression) -> Result<Self> {
        let out = Hashing::new(out);
        let encoder = match compression {
            Compression::None => Encoder::Plain(out),
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(out, ZSTD_LEVEL)?),
        };
        Ok(BlobWriter {
            tar: Hashing::new(encoder),
            compression,
            pending: Vec::with_capacity(FEED),
        })
    }

    /// Ends the compressed stream; returns the sink and the blob's digests.
    pub fn finish(mut self) -> Result<(W, LayerInfo)> {
        self.tar.write_all(&self.pending)?;
        let (encoder, diff_id, _) = self.tar.finish();
        let (mut out, digest, size) = encoder.finish()?.finish();
        out.flush()?;
        Ok((
            out,
            LayerInfo {
                digest,
                size,
                diff_id,
                compression: self.compression,
            },
        ))
    }
}

impl<W: Write> Write for BlobWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if !self.pending.is_empty() {
            let take = rest.len().min(FEED - self.pending.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < FEED {
                return Ok(buf.len());
            }
            self.tar.write_all(&self.pending)?;
            self.pending.clear();
        }
        let whole = rest.len() - rest.len() % FEED;
        for block in rest[..whole].chunks(FEED) {
            self.tar.write_all(block)?;
        }
        self.pending.extend_from_slice(&rest[whole..]);
        Ok(buf.len())
    }

    /// Writes nothing through: a flush mid-stream would end a deflate block early and make
    /// the blob depend on when it was called. `finish` ends the stream.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One entry of an in-memory layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated, no `.` or `..` components.
    pub path: String,
    pub mode: u32,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Vec<u8>),
    /// Target kept verbatim (absolute or relative).
    Symlink(String),
    /// Target is another entry of the same layer.
    Hardlink(String),
}

/// Streams a deterministic layer tar into a [`BlobWriter`].
///
/// Every header is GNU format (long names and link targets via GNU extensions, no PAX),
/// uid/gid 0, empty user and group names, mtime fixed. Missing parent directories are added
/// (mode 0755) before their first child; add a directory before its contents to choose its
/// mode. A path added twice is an error, as is a path that would leave the root.
pub struct LayerBuilder<W: Write> {
    tar: tar::Builder<BlobWriter<W>>,
    mtime: u64,
    /// Every path written so far, and whether it is a directory.
    seen: BTreeMap<String, bool>,
}

impl<W: Write> LayerBuilder<W> {
    pub fn new(out: W, compression: Compression, mtime: u64) -> Result<Self> {
        Ok(LayerBuilder {
            tar: tar::Builder::new(BlobWriter::new(out, compression)?),
            mtime,
            seen: BTreeMap::new(),
        })
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        if let Some(path) = self.claim(path, true)? {
            let mut h = self.header(EntryType::Directory, mode, 0);
            self.tar
                .append_data(&mut h, format!("{path}/"), io::empty())?;
        }
        Ok(())
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.file_from(path, mode, data.len() as u64, data)
    }

    /// A regular file of exactly `size` bytes read from `data` (streamed, never buffered).
    pub fn file_from(&mut self, path: &str, mode: u32, size: u64, data: impl Read) -> Result<()> {
        let path = self.claim(path, false)?.expect("files are never merged");
        let mut h = self.header(EntryType::Regular, mode, size);
        let exact = Exact {
            inner: data.take(size),
            left: size,
        };
        self.tar.append_data(&mut h, path, exact)?;
        Ok(())
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let path = self.claim(path, false)?.expect("links are never merged");
        let mut h = self.header(EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut h, path, target)?;
        Ok(())
    }

    pub fn hardlink(&mut self, path: &str, mode: u32, target: &str) -> Result<()> {
        let target = clean(target)?;
        let path = self.claim(path, false)?.expect("links are never merged");
        let mut h = self.header(EntryType::Link, mode, 0);
        self.tar.append_link(&mut h, path, target)?;
        Ok(())
    }

    pub fn entry(&mut self, entry: &Entry) -> Result<()> {
        match &entry.kind {
            EntryKind::Dir => self.dir(&entry.path, entry.mode),
            EntryKind::File(data) => self.file(&entry.path, entry.mode, data),
            EntryKind::Symlink(target) => self.symlink(&entry.path, target),
            EntryKind::Hardlink(target) => self.hardlink(&entry.path, entry.mode, target),
        }
    }

    /// `src` (a directory, file or symlink) at `dest`; `dest = ""` puts a directory's
    /// contents at the root. Children in byte order of their names, modes kept, symlinks kept
    /// as symlinks, files streamed from disk.
    pub fn tree(&mut self, src: &Path, dest: &str) -> Result<()> {
        let meta = fs::symlink_metadata(src).map_err(io_at("stat", src))?;
        let mode = meta.permissions().mode();
        let kind = meta.file_type();
        if kind.is_dir() {
            if !dest.is_empty() {
                self.dir(dest, mode)?;
            }
            let mut names = fs::read_dir(src)
                .map_err(io_at("list", src))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
                .map_err(io_at("list", src))?;
            names.sort();
            for name in names {
                let child = src.join(&name);
                let name = name
                    .to_str()
                    .ok_or_else(|| WriteError::UnsafePath(child.display().to_string()))?;
                let to = match dest {
                    "" => name.to_string(),
                    _ => format!("{dest}/{name}"),
                };
                self.tree(&child, &to)?;
            }
            Ok(())
        } else if kind.is_symlink() {
            let target = fs::read_link(src).map_err(io_at("read link", src))?;
            let target = target
                .to_str()
                .ok_or_else(|| WriteError::UnsafePath(target.display().to_string()))?;
            self.symlink(dest, target)
        } else if kind.is_file() {
            let file = File::open(src).map_err(io_at("open", src))?;
            self.file_from(dest, mode, meta.len(), file)
        } else {
            Err(WriteError::FileType(src.to_path_buf()))
        }
    }

    /// Writes the end-of-archive blocks and ends the compressed stream.
    pub fn finish(self) -> Result<(W, LayerInfo)> {
        self.tar.into_inner()?.finish()
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h
    }

    /// The cleaned path when it must be written; `None` for a directory that already exists.
    fn claim(&mut self, path: &str, is_dir: bool) -> Result<Option<String>> {
        let path = clean(path)?;
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.seen.get(parent) {
                Some(true) => {}
                Some(false) => return Err(WriteError::UnsafePath(path)),
                None => {
                    let mut h = self.header(EntryType::Directory, 0o755, 0);
                    self.tar
                        .append_data(&mut h, format!("{parent}/"), io::empty())?;
                    self.seen.insert(parent.to_string(), true);
                }
            }
        }
        match self.seen.get(&path) {
            Some(true) if is_dir => Ok(None),
            Some(_) => Err(WriteError::Duplicate(path)),
            None => {
                self.seen.insert(path.clone(), is_dir);
                Ok(Some(path))
            }
        }
    }
}

/// `path` without trailing slashes, if it is relative and has no empty, `.` or `..` parts.
fn clean(path: &str) -> Result<String> {
    let trimmed = path.trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed.contains('\0')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(WriteError::UnsafePath(path.to_string()))
    } else {
        Ok(trimmed.to_string())
    }
}

/// Yields exactly `left` bytes or fails: a file that shrinks while it is read must not
/// corrupt the tar behind it.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} bytes short of the size in the header", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A layer holding `entries` sorted by path, built in memory.
pub fn layer_from_entries(
    entries: &[Entry],
    compression: Compression,
    mtime: u64,
) -> Result<(Vec<u8>, LayerInfo)> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut layer = LayerBuilder::new(Vec::new(), compression, mtime)?;
    for entry in sorted {
        layer.entry(entry)?;
    }
    layer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sample() -> Vec<Entry> {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        vec![
            Entry {
                path: "bin/hello".into(),
                mode: 0o755,
                kind: EntryKind::File(b"#!/bin/sh\necho hi\n".to_vec()),
            },
            Entry {
                path: "bin/sh".into(),
                mode: 0o777,
                kind: EntryKind::Symlink("/nix/store/x-bash/bin/bash".into()),
            },
            Entry {
                path: long.clone(),
                mode: 0o644,
                kind: EntryKind::File(vec![7; 3000]),
            },
            Entry {
                path: "link".into(),
                mode: 0o644,
                kind: EntryKind::Hardlink(long),
            },
        ]
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn same_entries_give_the_same_bytes() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (a, ia) = layer_from_entries(&sample(), compression, 0).unwrap();
            let mut reversed = sample();
            reversed.reverse();
            let (b, ib) = layer_from_entries(&reversed, compression, 0).unwrap();
            assert_eq!(a, b, "{compression:?}");
            assert_eq!(ia, ib);
            assert_eq!(ia.digest, Sha256::of(&a));
            assert_eq!(ia.size, a.len() as u64);
        }
    }

    /// How a caller happens to split its writes (a tee fed by a tar reader) must not change
    /// the blob: assemble promises the same bytes for the same inputs, across versions.
    #[test]
    fn the_blob_does_not_depend_on_how_writes_are_split() {
        let mut stream = Vec::new();
        let mut seed = 7u32;
        for i in 0..400_000u32 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            stream.push(if i % 3 == 0 {
                (seed >> 16) as u8
            } else {
                b'a' + (i % 7) as u8
            });
        }
        for compression in [Compression::Gzip, Compression::Zstd] {
            let blob = |split: &dyn Fn(usize) -> usize| {
                let mut w = BlobWriter::new(Vec::new(), compression).unwrap();
                let (mut at, mut n) = (0, 0);
                while at < stream.len() {
                    let len = split(n).min(stream.len() - at);
                    w.write_all(&stream[at..at + len]).unwrap();
                    at += len;
                    n += 1;
                }
                w.finish().unwrap()
            };
            let (whole, info) = blob(&|_| usize::MAX);
            let splits: [&dyn Fn(usize) -> usize; 3] =
                [&|_| 1, &|n| 1 + n * 7919 % 70_000, &|_| 65_536];
            for split in splits {
                let (bytes, other) = blob(split);
                assert_eq!(other, info, "{compression:?}");
                assert!(
                    bytes == whole,
                    "{compression:?}: the split changed the blob"
                );
            }
        }
    }

    #[test]
    fn gzip_blob_decompresses_to_the_tar_of_the_diff_id() {
        let (blob, info) = layer_from_entries(&sample(), Compression::Gzip, 0).unwrap();
        let tar = gunzip(&blob);
        assert_eq!(Sha256::of(&tar), info.diff_id);
        assert_ne!(info.digest, info.diff_id);
        let (plain, plain_info) = layer_from_entries(&sample(), Compression::None, 0).unwrap();
        assert_eq!(tar, plain);
        assert_eq!(plain_info.digest, plain_info.diff_id);
        // No name and no time in the gzip header: FLG = 0, MTIME = 0.
        assert_eq!(blob[3], 0);
        assert_eq!(&blob[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn zstd_blob_decompresses_to_the_tar_of_the_diff_id() {
        let (blob, info) = layer_from_entries(&sample(), Compression::Zstd, 0).unwrap();
        let tar = zstd::decode_all(&blob[..]).unwrap();
        assert_eq!(Sha256::of(&tar), info.diff_id);
    }

    #[test]
    fn headers_are_root_owned_with_fixed_mtime_and_parents_first() {
        let (tar, _) = layer_from_entries(&sample(), Compression::None, 1234).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.mtime().unwrap(), 1234);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            seen.push((
                entry.path().unwrap().display().to_string(),
                h.entry_type(),
                h.mode().unwrap(),
            ));
        }
        let names: Vec<&str> = seen.iter().map(|(p, ..)| p.as_str()).collect();
        assert_eq!(names[..3], ["bin/", "bin/hello", "bin/sh"]);
        assert_eq!(seen[1].2, 0o755);
        assert_eq!(seen[2].1, EntryType::Symlink);
        assert!(names.contains(&"link"));
        assert!(
            names.iter().any(|n| n.len() == 241),
            "long name kept: {names:?}"
        );
    }

    #[test]
    fn unsafe_and_duplicate_paths_are_refused() {
        let mut layer = LayerBuilder::new(Vec::new(), Compression::None, 0).unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./x"] {
            assert!(
                matches!(layer.file(bad, 0o644, b""), Err(WriteError::UnsafePath(_))),
                "{bad}"
            );
        }
        layer.file("a", 0o644, b"1").unwrap();
        assert!(matches!(
            layer.file("a", 0o644, b"2"),
            Err(WriteError::Duplicate(_))
        ));
        assert!(matches!(
            layer.file("a/x", 0o644, b""),
            Err(WriteError::UnsafePath(_))
        ));
        assert!(layer.file_from("short", 0o644, 10, &b"abc"[..]).is_err());
    }

    #[test]
    fn trees_are_read_in_order_with_modes_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/z"), b"z").unwrap();
        fs::write(root.join("a"), b"a").unwrap();
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o751)).unwrap();
        symlink("../a", root.join("b/up")).unwrap();
        let build = || {
            let mut layer = LayerBuilder::new(Vec::new(), Compression::None, 0).unwrap();
            layer.tree(root, "top").unwrap();
            layer.finish().unwrap().0
        };
        let tar = build();
        assert_eq!(tar, build());
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(String, u32, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|(p, ..)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "top/",
                "top/a",
                "top/b/",
                "top/b/c/",
                "top/b/c/z",
                "top/b/up"
            ]
        );
        assert_eq!(entries[1].1, 0o751);
        assert_eq!(entries[5].2.as_deref(), Some("../a"));
    }
}
