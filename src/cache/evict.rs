//! Keeps the cache within its bound: least recently used entries go first, and what crashed
//! writers left in `tmp/` goes after an hour.

use super::entry::{self, ENTRIES, TMP};
use super::runs::RUNS;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Leftovers in `tmp/` older than this belong to no live writer.
const STALE: Duration = Duration::from_secs(3600);

/// Evict until the entries' total is at most `max_bytes`, and return what is left. `fresh`
/// (just stored) goes last, and only when it alone is larger than the bound.
pub fn enforce(root: &Path, max_bytes: u64, fresh: &Path) -> u64 {
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(root.join(ENTRIES))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = e.path();
        let used = std::fs::metadata(dir.join("head"))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // A broken head counts as nothing and is the first to go.
        let bytes = entry::read_head(&dir).map_or(0, |h| h.bytes);
        entries.push((used, bytes, dir));
    }
    // Run outcomes are single files, judged by their own size.
    for e in std::fs::read_dir(root.join(RUNS))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(m) = e.metadata() else { continue };
        let used = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        entries.push((used, m.len(), e.path()));
    }
    let mut total: u64 = entries.iter().map(|(_, b, _)| b).sum();
    entries.sort_by_key(|(used, _, dir)| (dir == fresh, *used));
    for (_, bytes, path) in &entries {
        if total <= max_bytes {
            break;
        }
        if path.starts_with(root.join(RUNS)) {
            let _ = std::fs::remove_file(path);
        } else {
            entry::discard(path);
        }
        total = total.saturating_sub(*bytes);
    }
    clean_tmp(root);
    total
}

fn clean_tmp(root: &Path) {
    let Ok(listing) = std::fs::read_dir(root.join(TMP)) else {
        return;
    };
    let now = SystemTime::now();
    for e in listing.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
