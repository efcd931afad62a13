//! A content-addressed cache of layer scans, so bytes already verified are inflated and
//! walked once: keyed by the compressed digest, the tool and every setting that changes facts.
//!
//! An entry is only ever used after the blob's compressed bytes have been hashed again and
//! found equal to the digest it is keyed by: the digest proves the content, the cache only
//! saves the inflating, the tar walk and the ELF parsing. Entries are written to a temporary
//! directory and renamed into place (no reader sees half of one), carry a checksum of their
//! payload (a torn or edited one is dropped and rebuilt) and are evicted least recently used
//! first once the cache outgrows its bound.

mod entry;
mod evict;
pub mod runs;

use crate::image::layer::{Budget, EntryKind, Hashing, LayerScan};
use crate::image::{ImageError, Limits};
use crate::inspect::Identity;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Default bound of the cache directory: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// Where the cache lives and how large it may grow (resolved by settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// An open cache: its directory and the part of every key that the run fixes.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    /// The tool build and the fact-changing settings, hashed into every key.
    salt: String,
    /// Whether the directories exist (made at the first store, once).
    prepared: std::sync::OnceLock<bool>,
    /// What the cache holds as far as this process knows: measured by one scan at its first
    /// store, then counted up by what it stores. Only when that passes the bound is the
    /// directory scanned again and evicted from, so a store costs no scan of every entry.
    usage: std::sync::Mutex<Option<u64>>,
}

/// Bump when the stored shape of a scan changes.
const FORMAT: u32 = 1;

impl Cache {
    /// The cache for a run with these settings. Nothing is created until a layer is stored,
    /// so runs that read no image leave no trace.
    pub fn open(settings: &CacheSettings, limits: &Limits, all: bool) -> Option<Cache> {
        Some(Cache {
            dir: settings.dir.clone(),
            max_bytes: settings.max_bytes,
            salt: salt(limits, all),
            prepared: std::sync::OnceLock::new(),
            usage: std::sync::Mutex::new(None),
        })
    }

    /// Create the cache's directories; a cache that cannot be made is said once and skipped:
    /// a cache is a saving, never a requirement.
    fn prepare(&self) -> bool {
        *self.prepared.get_or_init(|| self.make_dirs())
    }

    fn make_dirs(&self) -> bool {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        for sub in [entry::ENTRIES, entry::TMP, runs::RUNS] {
            if let Err(e) = std::fs::create_dir_all(self.dir.join(sub)) {
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    crate::pipeline::progress(&format!(
                        "cache {} cannot be used ({e}); verifying without it",
                        self.dir.display()
                    ));
                }
                return false;
            }
        }
        true
    }

    fn key(&self, digest: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update(b"\0");
        h.update(digest.as_bytes());
        hex::encode(h.finalize())
    }

    fn entry_dir(&self, digest: &str) -> PathBuf {
        self.dir.join(entry::ENTRIES).join(self.key(digest))
    }

    /// The scan of `reader`'s blob, from the cache when an entry for `digest` exists and the
    /// blob's bytes hash to it; `None` when the blob must be read in full (no entry, an
    /// unusable one, other bytes, or the image's budget would be overdrawn: the full read
    /// then reports exactly what a run without the cache reports).
    pub fn confirm(
        &self,
        digest: &str,
        reader: impl Read,
        budget: &Budget,
        spill: Option<&Path>,
    ) -> Result<Option<LayerScan>, ImageError> {
        let dir = self.entry_dir(digest);
        let Some(mut scan) = entry::load(&dir, digest, spill.is_some()) else {
            return Ok(None);
        };
        let mut hashing = Hashing::new(reader);
        if std::io::copy(&mut hashing, &mut std::io::sink()).is_err() {
            return Ok(None);
        }
        let (actual, size) = hashing.finish();
        if actual != digest || size != scan.size {
            return Ok(None);
        }
        // Binaries first: an entry evicted meanwhile falls back to a full read before the
        // image's budget is drawn from.
        if let Some(spill) = spill
            && entry::link_binaries(&dir, &scan, spill).is_err()
        {
            return Ok(None);
        }
        if !budget.draw(scan.uncompressed_size) {
            return Ok(None);
        }
        entry::touch(&dir);
        scan.from_cache = true;
        Ok(Some(scan))
    }

    /// Keep `scan` (and, with `spill`, the binaries it spilled there) for later runs. Best
    /// effort: a cache that cannot be written only costs the next run its saving.
    pub fn store(&self, scan: &LayerScan, spill: Option<&Path>) {
        if !cacheable(scan) {
            return;
        }
        let dir = self.entry_dir(&scan.digest);
        if entry::usable(&dir, spill.is_some()) || !self.prepare() {
            return;
        }
        if let Ok(bytes) = entry::write(&self.dir, &dir, scan, spill) {
            self.account(bytes, &dir);
        }
    }

    /// Count `bytes` just stored at `fresh` and evict when the cache may be over its bound.
    /// Other processes' stores are seen at the next scan (this process's first store, or the
    /// next time its own count passes the bound), so the bound holds up to what processes
    /// sharing the cache store at the same moment.
    fn account(&self, bytes: u64, fresh: &Path) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let known = usage.map(|u| u.saturating_add(bytes));
        *usage = match known {
            Some(total) if total <= self.max_bytes => Some(total),
            _ => Some(evict::enforce(&self.dir, self.max_bytes, fresh)),
        };
    }
}

/// Say on stderr how many of a set's layers the cache answered (the JSON report marks each
/// one `from_cache`).
pub fn note_hits(set: &crate::image::ImageSet) {
    let layers = set.images.iter().flat_map(|i| &i.layers);
    let (hits, all) = layers.fold((0, 0), |(h, a), l| (h + usize::from(l.from_cache), a + 1));
    if hits > 0 {
        crate::pipeline::progress(&format!(
            "{}: {hits} of {all} layers' facts from the cache (their bytes hashed again)",
            set.path.display()
        ));
    }
}

/// The blob digest a layer member's name promises (`blobs/sha256/<hex>`), the key it is
/// looked up by before its bytes are hashed.
pub fn digest_named_by(member: &str) -> Option<String> {
    let hex = member.strip_prefix("blobs/sha256/")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("sha256:{hex}"))
}

/// Mach-O, PE and wasm facts carry resolved platform rows that are not stored; their layers
/// are read in full every time rather than cached without them.
fn cacheable(scan: &LayerScan) -> bool {
    scan.entries.iter().all(|e| match &e.kind {
        EntryKind::File {
            facts: Some(f),
            content,
            ..
        } => {
            content.is_none()
                && !matches!(
                    f.identity(),
                    Identity::MachO(_) | Identity::Pe(_) | Identity::Wasm(_)
                )
        }
        EntryKind::File { content, .. } => content.is_none(),
        _ => true,
    })
}

/// The tool build (its version and the executable itself, so a rebuilt tool never trusts an
/// older one's facts) and every setting that changes what a scan records.
fn salt(limits: &Limits, all: bool) -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{modified}", m.len())
        })
        .unwrap_or_default();
    format!(
        "mab-verify-cache {FORMAT} {} {exe} max_binary_bytes={} max_uncompressed={} max_json={} max_nesting={} all={all}",
        env!("CARGO_PKG_VERSION"),
        limits.max_binary_bytes,
        limits.max_uncompressed,
        limits.max_json,
        limits.max_nesting,
    )
}

#[cfg(test)]
mod tests;
