//! Runs the real `mab-verify` binary and reads its JSON report, for integration tests.

pub mod registry;

use serde_json::Value;
use std::ffi::OsStr;
use std::process::Command;

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Status of check `id` on the only (or first) artifact.
    pub fn status(&self, id: &str) -> String {
        status_of(&self.json()["artifacts"][0], id)
    }

    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked"),
            "mab-verify panicked:\n{}",
            self.stderr
        );
    }
}

pub fn status_of(artifact: &Value, id: &str) -> String {
    check_of(artifact, id)["status"]
        .as_str()
        .unwrap_or("missing")
        .to_string()
}

pub fn check_of<'a>(artifact: &'a Value, id: &str) -> &'a Value {
    artifact["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {artifact:#}"))
}

pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mab-verify"));
    // A fixed timestamp keeps reports reproducible; CI variables must not leak in.
    cmd.env_remove("MAB_QEMU_AARCH64")
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        // Never the real ~/.cache; and a fresh cache per command, so every run is cold unless
        // a test shares a --cache-dir on purpose (tests/it/cache.rs).
        .env("XDG_CACHE_HOME", fresh_cache_home());
    cmd
}

/// A new, empty directory for one command's `XDG_CACHE_HOME`, below the target dir: this
/// process's ones in `it-cache-home/<pid>/`, and those of finished processes removed.
pub fn fresh_cache_home() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static BASE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-cache-home");
        for old in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let pid = old.file_name().to_string_lossy().into_owned();
            if !std::path::Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        root.join(std::process::id().to_string())
    });
    let dir = base.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&dir).expect("a cache home below the target dir");
    dir
}

pub fn run_cmd(mut cmd: Command) -> Outcome {
    let out = cmd.output().expect("mab-verify starts");
    let outcome = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    outcome.assert_no_panic();
    outcome
}

pub fn mab<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command();
    cmd.args(args);
    run_cmd(cmd)
}

pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// [`snapshot_settings`] with insta's filters for what differs between machines and runs:
/// each `(text, placeholder)` (longest first, so a path is not half-replaced by its own
/// prefix), durations, hashes, build-ids and sizes.
pub fn filtered_settings(replacements: &[(&str, &str)]) -> insta::Settings {
    let mut s = snapshot_settings();
    let mut pairs: Vec<_> = replacements.iter().filter(|(n, _)| !n.is_empty()).collect();
    pairs.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (needle, placeholder) in pairs {
        s.add_filter(&regex::escape(needle), *placeholder);
    }
    s.add_filter(r"\b\d+ ms\b", "[ms] ms");
    s.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#);
    s.add_filter(r"\b[0-9a-f]{64}\b", "[sha256]");
    s.add_filter(r"\b[0-9a-f]{40}\b", "[build-id]");
    s.add_filter(
        r#""(size|stdout_bytes|stderr_bytes)": \d+"#,
        r#""$1": "[n]""#,
    );
    s
}

/// `skopeo --insecure-policy ARGS…`, an independent reader: its stdout, or a panic with its stderr.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A tool a test needs is missing: a skip on a developer's machine, a failure in CI, where
/// `scripts/setup` has installed everything.
pub fn missing_tool(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI: {why} (scripts/setup installs it)"
    );
    eprintln!("skip: {why} (run scripts/setup)");
}
