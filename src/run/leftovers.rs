//! What a killed mab-verify leaves: its private temporary directory (`$TMPDIR/mab-verify-*`,
//! holding push's unpacked archive, spilled binaries, run roots) is locked while the process
//! lives, and the next mab-verify removes those whose process is gone. SIGKILL runs no
//! cleanup, so no process can promise to remove its own.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Written once the directory is locked: a directory with it and no lock holder is stale.
const MARKER: &str = ".mab-verify-locked";
/// A directory without the marker is being set up, or its process died in the instant
/// between creating and locking it; only that second kind gets this old.
const UNMARKED_GRACE: Duration = Duration::from_secs(3600);

/// Lock `dir` for as long as the returned file stays open (the process's lifetime: the
/// descriptor is close-on-exec, so no child holds it), then mark it as locked.
pub fn lock(dir: &Path) -> io::Result<File> {
    let lock = File::open(dir)?;
    flock(&lock, libc::LOCK_EX)?;
    File::create(dir.join(MARKER))?;
    Ok(lock)
}

/// The directories named `prefix*` in `base`, owned by this user, whose process is gone,
/// removed; returns them.
pub fn remove_stale(base: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else {
        return removed;
    };
    // SAFETY: geteuid cannot fail and takes no arguments.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // lstat: a symlink of that name is not a directory of ours.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let marked = path.join(MARKER).exists();
        let old = meta
            .modified()
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > UNMARKED_GRACE);
        if !marked && !old {
            continue;
        }
        let Ok(dir) = File::open(&path) else { continue };
        // A live mab-verify holds the lock: not ours to touch.
        if flock(&dir, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn flock(file: &File, how: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid open descriptor; flock takes no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unlocked_marked_directories_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            let p = base.path().join(n);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("data"), b"x").unwrap();
            p
        };
        let (live, dead, fresh, other) = (dir("p-live"), dir("p-dead"), dir("p-fresh"), dir("q"));
        let _held = lock(&live).unwrap();
        drop(lock(&dead).unwrap());
        std::fs::write(other.join(MARKER), b"").unwrap();
        assert_eq!(remove_stale(base.path(), "p-"), vec![dead.clone()]);
        assert!(live.exists() && fresh.exists() && other.exists() && !dead.exists());
    }
}
