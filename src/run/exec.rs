//! Runs one untrusted command inside limits: timeout on the whole process group, capped output,
//! cleared environment, closed stdin and a private working directory.

use serde::Serialize;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub output_cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            output_cap: 1024 * 1024,
        }
    }
}

/// A command ready to run, with a readable form for reports.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `native`, or `qemu-aarch64 -L /sysroot` etc.
    pub runner: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Captured {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

/// The environment a binary under test sees unless an image says otherwise.
pub fn minimal_env() -> Vec<(String, String)> {
    vec![
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
        ("LANG".to_string(), "C".to_string()),
    ]
}

/// How often the parent looks whether the child finished; runs take milliseconds to seconds.
const POLL: Duration = Duration::from_millis(5);

pub fn run_bounded(inv: &Invocation, limits: Limits) -> std::io::Result<Captured> {
    let workdir = tempfile::Builder::new().prefix("mab-run-").tempdir()?;
    let started = Instant::now();
    let mut child = Command::new(&inv.program)
        .args(&inv.args)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = child.id() as i32;
    let cap = limits.output_cap;
    let stdout = child
        .stdout
        .take()
        .map(|s| std::thread::spawn(move || read_capped(s, cap)));
    let stderr = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || read_capped(s, cap)));

    let deadline = started + limits.timeout;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (status, false);
        }
        if Instant::now() >= deadline {
            kill_group(pgid);
            break (child.wait()?, true);
        }
        std::thread::sleep(POLL);
    };
    let duration = started.elapsed();
    // Children left behind would keep the pipes open and outlive the verdict.
    kill_group(pgid);
    let join = |h: Option<std::thread::JoinHandle<(Vec<u8>, u64)>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (out, out_total) = join(stdout);
    let (err, err_total) = join(stderr);
    Ok(Captured {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        duration_ms: duration.as_millis() as u64,
        stdout_truncated: out_total > out.len() as u64,
        stderr_truncated: err_total > err.len() as u64,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        stdout_bytes: out_total,
        stderr_bytes: err_total,
    })
}

/// Keep the first `cap` bytes and keep draining, so the writer never blocks on a full pipe.
fn read_capped(mut source: impl Read, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match source.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, total)
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created; no memory involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
