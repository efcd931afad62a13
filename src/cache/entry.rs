//! One cache entry on disk: `head` (format, payload checksum, whether the spilled binaries are
//! kept, total bytes), `facts.json` (the scan) and `bin/<sha256>` (the binaries a run needs).

use super::FORMAT;
use crate::image::layer::{EntryKind, LayerScan};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

pub const ENTRIES: &str = "entries";
pub const TMP: &str = "tmp";
const HEAD: &str = "head";
const FACTS: &str = "facts.json";
const BIN: &str = "bin";

/// What `head` says.
pub struct Head {
    checksum: String,
    pub binaries: bool,
    pub bytes: u64,
}

pub fn read_head(dir: &Path) -> Option<Head> {
    let mut text = String::new();
    std::fs::File::open(dir.join(HEAD))
        .ok()?
        .take(512)
        .read_to_string(&mut text)
        .ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != "mab-verify-cache" || words.next()? != FORMAT.to_string() {
        return None;
    }
    let checksum = words.next()?.to_string();
    let binaries = match words.next()? {
        "binaries=1" => true,
        "binaries=0" => false,
        _ => return None,
    };
    let bytes = words.next()?.strip_prefix("bytes=")?.parse().ok()?;
    Some(Head {
        checksum,
        binaries,
        bytes,
    })
}

/// An entry that a run with (or without) spilled binaries can use, judged by its head.
pub fn usable(dir: &Path, need_binaries: bool) -> bool {
    read_head(dir).is_some_and(|h| h.binaries || !need_binaries)
}

/// The entry's scan, when it parses and its checksum holds; a broken entry is removed so the
/// read that follows can store a good one.
pub fn load(dir: &Path, digest: &str, need_binaries: bool) -> Option<LayerScan> {
    let head = match read_head(dir) {
        Some(h) => h,
        None => {
            if dir.exists() {
                discard(dir);
            }
            return None;
        }
    };
    if need_binaries && !head.binaries {
        return None;
    }
    let parsed = std::fs::File::open(dir.join(FACTS)).ok().and_then(|f| {
        // Hashed in large reads beneath the buffer serde_json takes its bytes from.
        let mut buffered = BufReader::with_capacity(
            256 * 1024,
            HashingRead {
                inner: f,
                hasher: Sha256::new(),
            },
        );
        let scan: Option<LayerScan> = serde_json::from_reader(&mut buffered).ok();
        // from_reader stops at the end of the value: the rest must be empty.
        let mut rest = Vec::new();
        buffered.read_to_end(&mut rest).ok()?;
        let sum = hex::encode(buffered.into_inner().hasher.finalize());
        scan.filter(|s| rest.is_empty() && sum == head.checksum && s.digest == digest)
    });
    if parsed.is_none() {
        discard(dir);
    }
    parsed
}

/// Write an entry for `scan` beside the cache (in `tmp/`) and rename it into `dir`; the
/// bytes it takes.
pub fn write(
    root: &Path,
    dir: &Path,
    scan: &LayerScan,
    spill: Option<&Path>,
) -> std::io::Result<u64> {
    let tmp = tempfile::Builder::new()
        .prefix("new-")
        .tempdir_in(root.join(TMP))?;
    let mut bytes = 0u64;
    if let Some(spill) = spill {
        std::fs::create_dir(tmp.path().join(BIN))?;
        for sha in &binaries(scan) {
            let to = tmp.path().join(BIN).join(sha);
            link_or_copy(&spill.join(sha), &to)?;
            bytes += std::fs::metadata(&to)?.len();
        }
    }
    // Buffered above the hashing: serde_json writes in pieces of a few bytes, and the hash
    // and the file then see large writes only (per-piece hashing doubled a store's cost).
    let mut buffered = BufWriter::with_capacity(
        256 * 1024,
        HashingWrite {
            inner: std::fs::File::create(tmp.path().join(FACTS))?,
            hasher: Sha256::new(),
            count: 0,
        },
    );
    serde_json::to_writer(&mut buffered, scan)?;
    let out = buffered.into_inner().map_err(|e| e.into_error())?;
    // The head itself, at most this long.
    bytes += out.count + 128;
    let head = format!(
        "mab-verify-cache {FORMAT} {} binaries={} bytes={bytes}\n",
        hex::encode(out.hasher.finalize()),
        u8::from(spill.is_some())
    );
    std::fs::write(tmp.path().join(HEAD), head)?;
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, dir).is_ok() {
        return Ok(bytes);
    }
    // Another process stored this digest meanwhile. Keep theirs unless it lacks the binaries.
    if usable(dir, spill.is_some()) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(0);
    }
    discard(dir);
    let renamed = std::fs::rename(&tmp, dir);
    if renamed.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    renamed.map(|()| bytes)
}

/// Put the entry's binaries where the run looks for them (`spill/<sha256>`), each checked
/// against its digest first: a cached binary that changed on disk is not run.
pub fn link_binaries(dir: &Path, scan: &LayerScan, spill: &Path) -> std::io::Result<()> {
    for sha in &binaries(scan) {
        let to = spill.join(sha);
        if to.exists() {
            continue;
        }
        let from = dir.join(BIN).join(sha);
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&from)?, &mut HashSink(&mut hasher))?;
        if hex::encode(hasher.finalize()) != *sha {
            return Err(std::io::Error::other(
                "a cached binary does not match its digest",
            ));
        }
        link_or_copy(&from, &to)?;
    }
    Ok(())
}

/// Mark the entry as just used (LRU order is the head's mtime).
pub fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::options().write(true).open(dir.join(HEAD)) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Move an entry out of `entries/` (atomically, so no reader sees it half removed), then
/// delete it.
pub fn discard(dir: &Path) {
    let Some(root) = dir.parent().and_then(Path::parent) else {
        return;
    };
    let Ok(trash) = tempfile::Builder::new()
        .prefix("old-")
        .tempdir_in(root.join(TMP))
    else {
        return;
    };
    let target = trash.path().join("entry");
    if std::fs::rename(dir, &target).is_err() {
        return;
    }
    drop(trash);
}

/// The digests of the binaries a scan spilled: every file it has facts of.
fn binaries(scan: &LayerScan) -> BTreeSet<String> {
    scan.entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { facts: Some(f), .. } => Some(f.sha256()),
            _ => None,
        })
        .collect()
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

struct HashingRead<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct HashingWrite<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashSink<'h>(&'h mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
