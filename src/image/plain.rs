//! Regular files no check reads (not binaries, not executable), kept as keyed path hashes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

/// Keyed per process, so a crafted image cannot aim for collisions.
static PATH_KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// The keyed 64-bit hash that stands for a rootfs path. Built from its directory's hash and
/// its name's, so a file can be placed in a directory its layer did not name (the target of
/// a symlink on the way) from its name's hash alone.
pub fn path_hash(path: &str) -> u64 {
    let (dir, name) = match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    join_hash(dir_hash(dir), name_hash(name))
}

pub fn dir_hash(dir: &str) -> u64 {
    PATH_KEY.hash_one(("d", dir))
}

pub fn name_hash(name: &str) -> u64 {
    PATH_KEY.hash_one(("n", name))
}

pub fn join_hash(dir: u64, name: u64) -> u64 {
    PATH_KEY.hash_one((dir, name))
}

/// Most files of an image are data that no check looks at. Remembering only that they exist,
/// and since when, keeps memory flat in the file count while whiteouts, opaque directories
/// and hardlinks still see them exactly: a file is present unless a directory above it was
/// cleared after it was written.
#[derive(Debug, Default)]
pub struct PlainFiles {
    /// Path hash → when it was written, while layers are being applied.
    written: HashMap<u64, u64>,
    /// The same once the image is complete (`freeze`): sorted by hash, 16 bytes a file
    /// instead of a hash table's ~28.
    frozen: Vec<(u64, u64)>,
    cleared_below: HashMap<u64, u64>,
    clock: u64,
}

impl PlainFiles {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Room for `more` files, so the table does not grow (and briefly exist twice) on the way.
    pub fn reserve(&mut self, more: usize) {
        self.thaw();
        self.written.reserve(more);
    }

    /// No more layers come: keep the files in a sorted list.
    pub fn freeze(&mut self) {
        self.thaw();
        self.frozen = self.written.drain().collect();
        self.frozen.sort_unstable();
        self.written = HashMap::new();
    }

    fn thaw(&mut self) {
        if !self.frozen.is_empty() {
            self.written.extend(std::mem::take(&mut self.frozen));
        }
    }

    fn written_at(&self, hash: u64) -> Option<u64> {
        self.written.get(&hash).copied().or_else(|| {
            self.frozen
                .binary_search_by_key(&hash, |(h, _)| *h)
                .ok()
                .map(|i| self.frozen[i].1)
        })
    }

    pub fn insert(&mut self, hash: u64) {
        self.thaw();
        let now = self.tick();
        self.written.insert(hash, now);
    }

    pub fn remove(&mut self, path: &str) {
        self.thaw();
        self.written.remove(&path_hash(path));
    }

    /// Everything below directory `dir` is gone from now on.
    pub fn clear_below(&mut self, dir: &str) {
        if self.written.is_empty() && self.frozen.is_empty() {
            return;
        }
        let now = self.tick();
        self.cleared_below.insert(path_hash(dir), now);
    }

    pub fn contains(&self, path: &str) -> bool {
        let Some(written) = self.written_at(path_hash(path)) else {
            return false;
        };
        let mut ancestor = path;
        while let Some(cut) = ancestor.rfind('/') {
            ancestor = if cut == 0 { "/" } else { &ancestor[..cut] };
            if self
                .cleared_below
                .get(&path_hash(ancestor))
                .is_some_and(|&at| at > written)
            {
                return false;
            }
            if ancestor == "/" {
                break;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_gone_once_a_directory_above_it_is_cleared() {
        let mut plain = PlainFiles::default();
        plain.insert(path_hash("/a/b/c.txt"));
        plain.insert(path_hash("/x.txt"));
        assert!(plain.contains("/a/b/c.txt"));
        plain.clear_below("/a");
        assert!(!plain.contains("/a/b/c.txt"));
        assert!(plain.contains("/x.txt"));
        // Written again after the clearing: present.
        plain.insert(path_hash("/a/b/c.txt"));
        assert!(plain.contains("/a/b/c.txt"));
        plain.clear_below("/");
        assert!(!plain.contains("/x.txt"));
        assert!(!plain.contains("/a/b/c.txt"));
    }

    #[test]
    fn a_frozen_set_answers_the_same_and_thaws_for_more_layers() {
        let mut plain = PlainFiles::default();
        plain.insert(path_hash("/a/b/c.txt"));
        plain.insert(path_hash("/x.txt"));
        plain.clear_below("/a");
        plain.insert(path_hash("/a/d.txt"));
        plain.freeze();
        assert!(!plain.contains("/a/b/c.txt"));
        assert!(plain.contains("/a/d.txt"));
        assert!(plain.contains("/x.txt"));
        plain.remove("/x.txt");
        assert!(!plain.contains("/x.txt"));
        assert!(plain.contains("/a/d.txt"));
    }

    #[test]
    fn removing_a_file_removes_only_it() {
        let mut plain = PlainFiles::default();
        plain.insert(path_hash("/etc/a"));
        plain.insert(path_hash("/etc/ab"));
        plain.remove("/etc/a");
        assert!(!plain.contains("/etc/a"));
        assert!(plain.contains("/etc/ab"));
        assert!(!plain.contains("/etc"));
    }
}
