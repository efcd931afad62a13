//! Outcomes of runs, so the same bytes started the same way run once: keyed by everything the
//! run sees and everything about how it is started; only the raw outcome is kept, and the
//! checks judge it afresh each time (a changed `--expect` needs no new run).
//!
//! An entry is one file, `runs/<key>`: a head line with the payload's checksum, then the
//! payload. It is written beside the cache and renamed into place, so no reader sees half of
//! one; one that fails its checksum or does not parse is removed and the run is done again.

use super::{Cache, FORMAT};
use crate::run::{Captured, Limits, RunReport};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Mutex;

pub const RUNS: &str = "runs";
const MAGIC: &str = "mab-verify-run";

/// Everything that decides a run's outcome, apart from the tool build and its limits (the
/// cache's salt).
#[derive(Debug, Serialize)]
pub struct RunInputs<'a> {
    /// What the run sees, as digests: an image run's rootfs is made from its layers' diff_ids,
    /// in order.
    pub content: Vec<String>,
    /// The program inside what it sees.
    pub entry: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// The platform it runs as (which emulator, which loader names).
    pub platform: String,
    /// `run::runner_identity`: sealing, emulator, each file's identity.
    pub runner: String,
    pub timeout_ns: u128,
    pub output_cap: usize,
}

impl RunInputs<'_> {
    pub fn limits(mut self, limits: Limits) -> Self {
        self.timeout_ns = limits.timeout.as_nanos();
        self.output_cap = limits.output_cap;
        self
    }
}

/// What is kept of a run.
#[derive(Serialize, Deserialize)]
struct Stored {
    runner: String,
    command: Vec<String>,
    duration_ms: u64,
    captured: Captured,
}

/// Keys this process stored: a second image of the same input with the same key runs again
/// rather than reading its sibling's outcome, so one input's report does not depend on which
/// of its images (verified in parallel) ran first.
static STORED_HERE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn stored_here(key: &str) -> bool {
    let set = STORED_HERE.lock().unwrap_or_else(|e| e.into_inner());
    set.as_ref().is_some_and(|s| s.contains(key))
}

impl Cache {
    /// The key of a run with these inputs under this tool and these limits.
    pub fn run_key(&self, inputs: &RunInputs) -> String {
        let mut h = Sha256::new();
        h.update(b"run\0");
        h.update(self.salt.as_bytes());
        h.update(b"\0");
        // Serialising a plain struct of strings and numbers cannot fail.
        h.update(serde_json::to_vec(inputs).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// The outcome stored under `key`, marked `from_cache`; `None` when there is none, it is
    /// damaged (then it is removed), or this process stored it.
    pub fn recall_run(&self, key: &str) -> Option<RunReport> {
        if stored_here(key) {
            return None;
        }
        let path = self.dir.join(RUNS).join(key);
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .ok()?
            .take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .ok()?;
        let Some(stored) = parse(&bytes) else {
            let _ = std::fs::remove_file(&path);
            return None;
        };
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        let mut captured = stored.captured;
        captured.duration_ms = stored.duration_ms;
        let here = tmp_prefix();
        Some(RunReport::Ran {
            runner: relocate(&stored.runner, TMP_MARK, &here),
            command: stored
                .command
                .iter()
                .map(|w| relocate(w, TMP_MARK, &here))
                .collect(),
            captured,
            from_cache: true,
        })
    }

    /// Keep `report` under `key` when it says something about the binary rather than about
    /// this moment. Best effort, like every store.
    pub fn keep_run(&self, key: &str, report: &RunReport) {
        let RunReport::Ran {
            runner,
            command,
            captured,
            from_cache: false,
        } = report
        else {
            return;
        };
        if !worth_keeping(captured) || !self.prepare() {
            return;
        }
        STORED_HERE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(key.to_string());
        let stored = Stored {
            runner: relocate(runner, &tmp_prefix(), TMP_MARK),
            command: command
                .iter()
                .map(|w| relocate(w, &tmp_prefix(), TMP_MARK))
                .collect(),
            duration_ms: captured.duration_ms,
            captured: captured.clone(),
        };
        let Ok(payload) = serde_json::to_vec(&stored) else {
            return;
        };
        let head = format!(
            "{MAGIC} {FORMAT} {}\n",
            hex::encode(Sha256::digest(&payload))
        );
        let to = self.dir.join(RUNS).join(key);
        let written = tempfile::Builder::new()
            .prefix("run-")
            .tempfile_in(self.dir.join(super::entry::TMP))
            .and_then(|mut f| {
                f.write_all(head.as_bytes())?;
                f.write_all(&payload)?;
                f.persist(&to).map_err(|e| e.error)
            });
        if written.is_ok() {
            self.account((head.len() + payload.len()) as u64, &to);
        }
    }
}

/// Stands for the storing process's private temporary directory in a stored runner and
/// command; a recalled run names the same places in this process's one, so reports name them
/// as this run's (`<rootfs of linux/arm64>`), as for a run done now.
const TMP_MARK: &str = "\u{1}tmp\u{1}";

fn tmp_prefix() -> String {
    std::env::temp_dir()
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string()
}

fn relocate(word: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return word.to_string();
    }
    word.replace(from, to)
}

/// Larger than any entry a run can produce (two capped streams, JSON-escaped).
const MAX_ENTRY: u64 = 64 << 20;

/// Runs that ended because of this moment are not kept: a timeout depends on how loaded the
/// machine was, a SIGKILL is ours (timeout, interrupt) or the kernel's (memory), and an
/// interrupted verify killed what it ran. Exits, crashes by other signals and truncated
/// output are the binary's own doing and are kept.
fn worth_keeping(c: &Captured) -> bool {
    !c.timed_out && c.signal != Some(libc::SIGKILL) && !crate::run::guard::interrupted()
}

fn parse(bytes: &[u8]) -> Option<Stored> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&bytes[..newline]).ok()?;
    let payload = &bytes[newline + 1..];
    let mut words = head.split(' ');
    if words.next()? != MAGIC || words.next()? != FORMAT.to_string() {
        return None;
    }
    if words.next()? != hex::encode(Sha256::digest(payload)) || words.next().is_some() {
        return None;
    }
    serde_json::from_slice(payload).ok()
}

/// Say on stderr how many of an input's runs are earlier outcomes (the JSON report marks each
/// one `from_cache`).
pub fn note_hits(path: &std::path::Path, artifacts: &[crate::report::Artifact]) {
    let ran = artifacts.iter().filter_map(|a| match &a.run {
        RunReport::Ran { from_cache, .. } => Some(*from_cache),
        _ => None,
    });
    let (hits, all) = ran.fold((0, 0), |(h, a), c| (h + usize::from(c), a + 1));
    if hits > 0 {
        crate::pipeline::progress(&format!(
            "{}: {hits} of {all} runs' outcomes from the cache (the same bytes, runner and limits)",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Limits as ImageLimits;

    fn cache(dir: &std::path::Path) -> Cache {
        let settings = super::super::CacheSettings {
            dir: dir.to_path_buf(),
            max_bytes: 1 << 20,
        };
        Cache::open(&settings, &ImageLimits::default(), false).unwrap()
    }

    fn ran(exit: Option<i32>, signal: Option<i32>, timed_out: bool) -> RunReport {
        RunReport::Ran {
            runner: "native".into(),
            command: vec!["/bin/hello".into()],
            captured: Captured {
                exit_code: exit,
                signal,
                timed_out,
                duration_ms: 12,
                stdout: "Hello\n".into(),
                stderr: String::new(),
                stdout_truncated: false,
                stderr_truncated: false,
                stdout_bytes: 6,
                stderr_bytes: 0,
                survivors: vec![],
            },
            from_cache: false,
        }
    }

    fn inputs(content: &str) -> RunInputs<'static> {
        RunInputs {
            content: vec![content.to_string()],
            entry: "/bin/hello",
            args: &[],
            env: &[],
            platform: "linux/amd64".into(),
            runner: "native".into(),
            timeout_ns: 0,
            output_cap: 0,
        }
        .limits(Limits::default())
    }

    /// A key stored by another process (this test forgets its own stores).
    fn forget(key: &str) {
        if let Some(set) = STORED_HERE.lock().unwrap().as_mut() {
            set.remove(key);
        }
    }

    #[test]
    fn a_kept_outcome_comes_back_marked_and_only_to_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let key = c.run_key(&inputs("sha256:aa-kept"));
        c.keep_run(&key, &ran(Some(1), None, false));
        assert!(c.recall_run(&key).is_none(), "this process stored it");
        forget(&key);
        let Some(RunReport::Ran {
            captured,
            from_cache,
            ..
        }) = c.recall_run(&key)
        else {
            panic!("the outcome is kept")
        };
        assert!(from_cache);
        assert_eq!((captured.exit_code, captured.duration_ms), (Some(1), 12));
        assert_ne!(key, c.run_key(&inputs("sha256:bb-kept")));
        let longer = inputs("sha256:aa-kept").limits(Limits {
            timeout: std::time::Duration::from_secs(11),
            ..Limits::default()
        });
        assert_ne!(key, c.run_key(&longer), "the limits are in the key");
    }

    #[test]
    fn outcomes_of_the_moment_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        for (i, report) in [
            ran(None, Some(libc::SIGKILL), true),
            ran(None, Some(libc::SIGKILL), false),
            RunReport::Failed {
                reason: "could not start".into(),
            },
            RunReport::Skipped {
                reason: "no qemu".into(),
                hint: "install it".into(),
            },
        ]
        .iter()
        .enumerate()
        {
            let key = c.run_key(&inputs(&format!("sha256:moment-{i}")));
            c.keep_run(&key, report);
            forget(&key);
            assert!(c.recall_run(&key).is_none(), "{report:?}");
        }
        // A crash by the binary's own signal is its outcome.
        let key = c.run_key(&inputs("sha256:segv"));
        c.keep_run(&key, &ran(None, Some(libc::SIGSEGV), false));
        forget(&key);
        assert!(c.recall_run(&key).is_some());
    }

    #[test]
    fn a_damaged_entry_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let key = c.run_key(&inputs("sha256:damaged"));
        c.keep_run(&key, &ran(Some(0), None, false));
        forget(&key);
        let path = dir.path().join(RUNS).join(&key);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("Hello", "Hallo")).unwrap();
        assert!(c.recall_run(&key).is_none());
        assert!(!path.exists(), "removed, so the next run stores a good one");
        assert!(parse(b"").is_none());
        assert!(parse(b"mab-verify-run 1 00\n{}").is_none());
    }
}
