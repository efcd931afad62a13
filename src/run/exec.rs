//! Runs one untrusted command inside limits: sealed (see `seal`) or, where namespaces are not
//! available, supervised by a subreaper; timeout on the whole run, deadline on its output
//! pipes, capped output, cleared environment, closed stdin and a private working directory.

use super::seal::{self, Sandbox};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Stdio;
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
    /// The program as the run sees it: a guest path inside `sandbox`, else a host path.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `native`, or `qemu-aarch64 -L /sysroot` etc.
    pub runner: String,
    /// `None`: the unsealed fallback.
    pub sandbox: Option<Sandbox>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Captured {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Varies run to run: reports carry it in their host section only.
    #[serde(skip)]
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Processes the run left behind when it ended (they were killed), named.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub survivors: Vec<String>,
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

/// How long output pipes may stay open after the run's init is gone (a descendant that
/// escaped everything else would hold them): the timeout must hold regardless.
const PIPE_GRACE: Duration = Duration::from_millis(300);
/// How long the unsealed init gets to stop descendants after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_millis(500);

pub fn run_bounded(inv: &Invocation, limits: Limits) -> std::io::Result<Captured> {
    for attempt in 0.. {
        let captured = run_once(inv, limits)?;
        // The inner bwrap could not exec the program: it never started.
        let not_started = inv.sandbox.is_some()
            && captured.exit_code == Some(1)
            && captured.stdout.is_empty()
            && captured.stderr.starts_with("bwrap: execvp");
        if !not_started {
            return Ok(captured);
        }
        // A file another run's fork still held open for writing: try again shortly.
        if captured.stderr.contains("Text file busy") && attempt < 5 {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let line = captured.stderr.lines().next().unwrap_or_default();
        let why = line.rsplit(": ").next().unwrap_or(line);
        // bwrap's execvp hands a file the kernel refuses (ENOEXEC) to /bin/sh, so a foreign
        // binary in a root without a shell reads as "No such file or directory".
        return Err(std::io::Error::other(format!(
            "{why} in the sealed root (the kernel cannot execute it here)"
        )));
    }
    unreachable!()
}

fn run_once(inv: &Invocation, limits: Limits) -> std::io::Result<Captured> {
    if super::guard::interrupted() {
        return Err(std::io::Error::other("mab-verify is being interrupted"));
    }
    let workdir = tempfile::Builder::new().prefix("mab-run-").tempdir()?;
    let mut cmd = match &inv.sandbox {
        Some(sb) => seal::sealed_command(sb, &inv.program, &inv.args, &inv.env, workdir.path())?,
        None => {
            let mut c = seal::unsealed_command(&inv.program, &inv.args)?;
            c.env_clear()
                .envs(inv.env.iter().map(|(k, v)| (k, v)))
                .env("HOME", workdir.path());
            c
        }
    };
    let (status_read, status_write) = pipe()?;
    seal::pass_status_fd(&mut cmd, status_write.as_raw_fd());
    cmd.current_dir(workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = seal::spawn_exclusive(&mut cmd)?;
    drop(status_write);
    let pgid = child.id() as i32;
    let _registered = super::guard::register_group(pgid);
    let mut out = Capture::new(limits.output_cap);
    let mut err = Capture::new(limits.output_cap);
    let mut fds = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    let deadline = started + limits.timeout;
    let mut timed_out = false;
    let mut status = None;
    let mut ended_at: Option<Instant> = None;
    let mut termed_at: Option<Instant> = None;
    loop {
        if status.is_none() {
            status = child.try_wait()?;
            if status.is_some() {
                ended_at = Some(Instant::now());
            }
        }
        let now = Instant::now();
        let open = fds.iter().any(Option::is_some);
        if status.is_some() && (!open || now >= ended_at.unwrap_or(now) + PIPE_GRACE) {
            break;
        }
        if status.is_none() && (now >= deadline || super::guard::interrupted()) {
            timed_out |= now >= deadline;
            match (&inv.sandbox, termed_at) {
                // Unsealed: our init stops and kills every descendant on SIGTERM.
                (None, None) => {
                    signal(pgid, libc::SIGTERM, false);
                    termed_at = Some(now);
                }
                (None, Some(t)) if now < t + TERM_GRACE => {}
                // Sealed: killing the init tears down the PID namespace.
                _ => {
                    signal(pgid, libc::SIGKILL, true);
                    status = Some(child.wait()?);
                    ended_at = Some(Instant::now());
                }
            }
        }
        pump(&mut fds, &mut out, &mut err, Duration::from_millis(20));
    }
    let duration = started.elapsed();
    // Anything still in the group (a run that never got as far as its init) goes too.
    signal(pgid, libc::SIGKILL, true);
    let report = read_status(status_read);
    let status = status.expect("loop ends with a status");
    let (mut exit_code, mut sig) = (status.code(), status.signal());
    let mut survivors = Vec::new();
    for line in report.lines() {
        if let Some(s) = line.strip_prefix("survivor ") {
            survivors.push(s.to_string());
        } else if let Some(c) = line.strip_prefix("exit ") {
            exit_code = c.parse().ok();
            sig = None;
        } else if let Some(s) = line.strip_prefix("signal ") {
            sig = s.parse().ok();
            exit_code = None;
        } else if let Some(e) = line.strip_prefix("spawn-failed ") {
            return Err(std::io::Error::other(e.to_string()));
        }
    }
    if timed_out {
        exit_code = None;
        sig = Some(libc::SIGKILL);
    }
    Ok(Captured {
        exit_code,
        signal: sig,
        timed_out,
        duration_ms: duration.as_millis() as u64,
        stdout_truncated: out.total > out.kept.len() as u64,
        stderr_truncated: err.total > err.kept.len() as u64,
        stdout: String::from_utf8_lossy(&out.kept).into_owned(),
        stderr: String::from_utf8_lossy(&err.kept).into_owned(),
        stdout_bytes: out.total,
        stderr_bytes: err.total,
        survivors,
    })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh descriptors, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The init's status lines; its write end is closed once the init is gone.
fn read_status(fd: OwnedFd) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_millis(200);
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = until.saturating_duration_since(Instant::now()).as_millis() as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, left) } <= 0 {
            break;
        }
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 || text.len() > 1 << 20 {
            break;
        }
        text.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

struct Capture {
    kept: Vec<u8>,
    total: u64,
    cap: usize,
}

impl Capture {
    fn new(cap: usize) -> Capture {
        Capture {
            kept: Vec::new(),
            total: 0,
            cap,
        }
    }
}

/// Wait up to `wait` for output and take what is there, keeping the first `cap` bytes of each
/// stream and draining the rest, so the writer never blocks on a full pipe. A stream at EOF
/// is closed.
fn pump(fds: &mut [Option<OwnedFd>; 2], out: &mut Capture, err: &mut Capture, wait: Duration) {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_ref().map_or(-1, |f| f.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if polls.iter().all(|p| p.fd < 0) {
        std::thread::sleep(wait.min(Duration::from_millis(5)));
        return;
    }
    // SAFETY: a valid array of pollfds (negative fds are ignored by poll).
    let n = unsafe { libc::poll(polls.as_mut_ptr(), 2, wait.as_millis() as i32) };
    if n <= 0 {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    for (i, p) in polls.iter().enumerate() {
        if p.fd < 0 || p.revents == 0 {
            continue;
        }
        // SAFETY: reading into a buffer we own from a descriptor we own.
        let got = unsafe { libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) };
        if got <= 0 {
            fds[i] = None;
            continue;
        }
        let c = if i == 0 { &mut *out } else { &mut *err };
        let got = got as usize;
        c.total += got as u64;
        let room = c.cap.saturating_sub(c.kept.len());
        c.kept.extend_from_slice(&buf[..got.min(room)]);
    }
}

/// Signal the run's process group (`group`) or just its leader.
fn signal(pgid: i32, sig: i32, group: bool) {
    let target = if group { -pgid } else { pgid };
    // SAFETY: kill(2) on the process (group) we created; no memory involved.
    unsafe {
        libc::kill(target, sig);
    }
}
