//! Ends mab-verify cleanly on SIGTERM, SIGINT or SIGHUP: every run it started is killed and
//! every temporary directory it made is removed, because they all live in one private
//! directory that goes with the process.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static PRIVATE_TMP: Mutex<Option<PathBuf>> = Mutex::new(None);
static CALLER_TMPDIR: Mutex<Option<Option<std::ffi::OsString>>> = Mutex::new(None);
/// Held for the process's lifetime: the private directory's lock (see `leftovers`).
static PRIVATE_LOCK: Mutex<Option<std::fs::File>> = Mutex::new(None);
const PRIVATE_PREFIX: &str = "mab-verify-";

/// True once a termination signal arrived: no new run starts.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A live run's process group, killed if mab-verify is told to stop.
pub struct Registered(i32);

pub fn register_group(pgid: i32) -> Registered {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
    Registered(pgid)
}

impl Drop for Registered {
    fn drop(&mut self) {
        GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|g| *g != self.0);
    }
}

/// The caller's own `TMPDIR` (unset: `None`), for commands mab-verify starts on its behalf.
pub fn caller_tmpdir() -> Option<std::ffi::OsString> {
    CALLER_TMPDIR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| crate::settings::env::get(crate::settings::env::TMPDIR))
}

/// Removes the private temporary directory when mab-verify returns normally.
pub struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if interrupted() {
            // The signal thread is cleaning up and ends the process with 128+signal; a
            // verdict reached meanwhile (runs it killed) must not become the exit status.
            loop {
                std::thread::park();
            }
        }
        if let Some(dir) = PRIVATE_TMP.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Call first thing in `main`, before any thread exists: blocks the termination signals (every
/// later thread inherits that; children get a clean mask from std), starts the thread that
/// waits for them, and points `TMPDIR` at a private directory so every temporary file of
/// this process is under one path that can be removed at once.
pub fn install() -> std::io::Result<Installed> {
    let caller = crate::settings::env::get(crate::settings::env::TMPDIR);
    // What a mab-verify killed by SIGKILL left (no signal handler runs for it).
    super::leftovers::remove_stale(&std::env::temp_dir(), PRIVATE_PREFIX);
    let dir = tempfile::Builder::new()
        .prefix(PRIVATE_PREFIX)
        .tempdir()?
        .keep();
    let lock = super::leftovers::lock(&dir);
    *PRIVATE_LOCK.lock().unwrap_or_else(|e| e.into_inner()) = lock.ok();
    *CALLER_TMPDIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(caller);
    *PRIVATE_TMP.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.clone());
    // From here on an early return removes the directory again.
    let installed = Installed;
    // SAFETY: called before any other thread exists, so nothing reads the environment
    // concurrently; the signal calls only change this process's mask.
    unsafe {
        std::env::set_var("TMPDIR", &dir);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set_copy = set;
        std::thread::Builder::new()
            .name("mab-signals".into())
            .spawn(move || {
                let mut sig = 0;
                libc::sigwait(&set_copy, &mut sig);
                INTERRUPTED.store(true, Ordering::SeqCst);
                let groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
                // SIGTERM first: an unsealed run's init then stops and kills its descendants.
                for g in &groups {
                    libc::kill(-*g, libc::SIGTERM);
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
                for g in &groups {
                    libc::kill(-*g, libc::SIGKILL);
                }
                if let Some(dir) = PRIVATE_TMP.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                eprintln!(
                    "mab-verify: stopped by signal {sig}; runs killed, temporary files removed"
                );
                libc::_exit(128 + sig);
            })?;
    }
    // Built now, so a process or thread limit is a clear error here and never a panic inside
    // the first parallel loop (rayon's lazy global pool panics when it cannot spawn).
    rayon::ThreadPoolBuilder::new()
        .build_global()
        .map_err(|e| std::io::Error::other(format!("cannot start worker threads: {e}")))?;
    Ok(installed)
}
