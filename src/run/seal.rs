//! Seals a run with bubblewrap (own PID, user, network, IPC and mount namespaces, a read-only
//! root that is the checked root) and supervises it with a small init that names and kills
//! every process the run left behind.
//!
//! Why bubblewrap: it is Debian's maintained, widely audited sandbox (Flatpak's), needs no
//! setuid or daemon, works as root and as a normal user where user namespaces are allowed,
//! and builds exactly the mount tree we describe with flags — nothing hand-rolled around
//! mount(2) and pivot_root(2) here. Its own PID-1 exits as soon as the command does, which
//! would kill survivors unseen, so the run has two layers: an outer bwrap that only creates the
//! PID namespace (fresh `/proc`) and makes mab-verify's own init (this module) its PID 1, and
//! an inner bwrap, started by that init, that does the rest without a PID namespace of its own.
//! Orphans then fall to our init, which reports them before it tears the namespace down.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// argv[1] that makes the mab-verify binary act as a run's init instead of the CLI.
pub const INIT_ARG: &str = "__mab-verify-run-init";

/// Where the inner sandbox puts what is not part of the checked root.
pub const GUEST_WORK: &str = "/.mab-verify/work";
pub const GUEST_HOME: &str = "/.mab-verify/home";
pub const GUEST_TOOLS: &str = "/.mab-verify/tools";

/// How runs are contained on this machine, decided once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    Bwrap(PathBuf),
    /// Namespaces are not available: bounded run, subreaper, kill of every descendant.
    Unsealed {
        why: String,
    },
}

impl Mechanism {
    pub fn is_sealed(&self) -> bool {
        matches!(self, Mechanism::Bwrap(_))
    }
}

/// `MAB_BWRAP=/path` picks a bubblewrap binary; `MAB_BWRAP=none` forces the unsealed fallback.
pub fn mechanism() -> &'static Mechanism {
    static M: OnceLock<Mechanism> = OnceLock::new();
    M.get_or_init(detect)
}

fn detect() -> Mechanism {
    let chosen = match crate::settings::env::get(crate::settings::env::BWRAP) {
        Some(v) if v == "none" || v.is_empty() => {
            return Mechanism::Unsealed {
                why: "MAB_BWRAP=none".into(),
            };
        }
        Some(v) => Some(PathBuf::from(v)),
        None => crate::settings::env::get(crate::settings::env::PATH).and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("bwrap"))
                .find(|p| p.is_file())
        }),
    };
    let Some(bwrap) = chosen else {
        return Mechanism::Unsealed {
            why: "bubblewrap (bwrap) is not installed; apt-get install bubblewrap".into(),
        };
    };
    // The same two layers a run uses, around `true`, so a refusal shows up here and not as a
    // failed run.
    let probe = std::process::Command::new(&bwrap)
        .args(outer_args())
        .arg("--")
        .arg(&bwrap)
        .args(["--unshare-user-try", "--unshare-net", "--unshare-ipc"])
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--", "true"])
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => Mechanism::Bwrap(bwrap),
        Ok(out) => Mechanism::Unsealed {
            why: format!(
                "{} cannot create namespaces here: {}",
                bwrap.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        Err(e) => Mechanism::Unsealed {
            why: format!("cannot start {}: {e}", bwrap.display()),
        },
    }
}

/// The outer layer: only a PID namespace (and a user namespace where needed), a fresh /proc,
/// and the caller's view of every file otherwise, so the init and the inner bwrap can start.
fn outer_args() -> Vec<&'static str> {
    vec![
        "--unshare-user-try",
        "--unshare-pid",
        "--die-with-parent",
        "--as-pid-1",
        "--dev-bind",
        "/",
        "/",
        "--proc",
        "/proc",
    ]
}

/// `--require-sealed`: exit 3 when runs here would not be sealed.
pub fn require_sealed() -> crate::error::Result<()> {
    match mechanism() {
        Mechanism::Bwrap(_) => Ok(()),
        Mechanism::Unsealed { why } => Err(crate::error::Error::Environment {
            what: format!("runs cannot be sealed here: {why}"),
            hint: "install bubblewrap and allow user namespaces (sysctl kernel.unprivileged_userns_clone=1), or drop --require-sealed".into(),
        }),
    }
}

/// What the inner sandbox is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub bwrap: PathBuf,
    /// The host directory that becomes `/`; `/` itself for the host (with private spots).
    pub root: PathBuf,
    /// Extra read-only binds, host path → guest path (the binary when it lies outside the
    /// root, a static qemu).
    pub binds: Vec<(PathBuf, String)>,
}

/// Top-level names of the host that a run never sees, even read-only: the caller's homes,
/// runtime sockets, and what the sandbox provides itself.
const HOST_HIDDEN: &[&str] = &[
    "proc",
    "dev",
    "tmp",
    "home",
    "root",
    "run",
    "sys",
    "var",
    "mnt",
    "media",
    "lost+found",
    "work",
    ".mab-verify",
];
/// Names a checked root cannot provide, because the sandbox does.
const ROOT_PROVIDED: &[&str] = &["proc", "dev", "tmp", ".mab-verify"];

impl Sandbox {
    /// The argv of the inner bwrap, up to and including `--`.
    pub fn inner_args(&self, env: &[(String, String)], workdir: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            a.extend(items.iter().map(|s| s.as_ref().to_os_string()));
        };
        push(&[
            &"--unshare-user-try",
            &"--unshare-ipc",
            &"--unshare-net",
            &"--unshare-uts",
            &"--unshare-cgroup-try",
            &"--die-with-parent",
            &"--new-session",
            &"--clearenv",
        ]);
        let host = self.root == Path::new("/");
        let skip: &[&str] = if host { HOST_HIDDEN } else { ROOT_PROVIDED };
        let mut entries: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(text) = name.to_str() else { continue };
            if skip.contains(&text) {
                continue;
            }
            let guest = format!("/{text}");
            let host_path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&host_path) {
                        push(&[&"--symlink", &target, &guest]);
                    }
                }
                Ok(t) if t.is_dir() || t.is_file() => {
                    push(&[&"--ro-bind", &host_path, &guest]);
                }
                _ => {}
            }
        }
        push(&[&"--proc", &"/proc", &"--dev", &"/dev", &"--tmpfs", &"/tmp"]);
        if host {
            // Empty, so a program finds none of the caller's files there.
            for hidden in ["/home", "/root", "/run", "/var"] {
                push(&[&"--tmpfs", &hidden]);
            }
        }
        push(&[&"--tmpfs", &GUEST_HOME, &"--bind", &workdir, &GUEST_WORK]);
        for (from, to) in &self.binds {
            push(&[&"--ro-bind", from, to]);
        }
        push(&[&"--remount-ro", &"/", &"--chdir", &GUEST_WORK]);
        let mut has_home = false;
        for (k, v) in env {
            has_home |= k == "HOME";
            push(&[&"--setenv", k, v]);
        }
        if !has_home {
            push(&[&"--setenv", &"HOME", &GUEST_HOME]);
        }
        push(&[&"--"]);
        a
    }
}

/// The whole command of a sealed run: outer bwrap → our init → inner bwrap → program.
pub fn sealed_command(
    sandbox: &Sandbox,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    workdir: &Path,
) -> std::io::Result<std::process::Command> {
    let exe = std::env::current_exe()?;
    let mut c = std::process::Command::new(&sandbox.bwrap);
    c.args(outer_args())
        .arg("--")
        .arg(exe)
        .arg(INIT_ARG)
        .arg("--")
        .arg(&sandbox.bwrap)
        .args(sandbox.inner_args(env, workdir))
        .arg(program)
        .args(args)
        .env_clear();
    Ok(c)
}

/// The command of an unsealed run: our init (as subreaper) → program.
pub fn unsealed_command(program: &Path, args: &[String]) -> std::io::Result<std::process::Command> {
    let exe = std::env::current_exe()?;
    let mut c = std::process::Command::new(exe);
    c.arg(INIT_ARG).arg("--").arg(program).args(args);
    Ok(c)
}

/// The file descriptor the init writes its status lines to.
pub const STATUS_FD: i32 = 3;

/// When this process was started as a run's init, do that job and return its exit code.
pub fn init_if_requested() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(INIT_ARG)) {
        return None;
    }
    if args.next().as_deref() != Some(std::ffi::OsStr::new("--")) {
        return Some(std::process::ExitCode::from(2));
    }
    let argv: Vec<OsString> = args.collect();
    Some(std::process::ExitCode::from(init_main(&argv)))
}

static TERMINATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn init_main(argv: &[OsString]) -> u8 {
    // SAFETY: plain syscalls on our own process; the handler only stores an atomic.
    unsafe {
        // mab-verify blocks the termination signals for its signal thread, and the mask is
        // inherited: open it again, for us and for the program under test.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        // Not dumpable: a program cannot read our /proc entries (root, cwd, environ).
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let handler = on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    // SAFETY: fd 3 was handed to us by run_bounded; nobody else owns it in this process.
    let mut status: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(STATUS_FD) };
    let Some((program, rest)) = argv.split_first() else {
        return 2;
    };
    let mut tries = 0;
    let child = loop {
        match std::process::Command::new(program).args(rest).spawn() {
            // A file still open for writing somewhere (another run's fork not yet exec'd).
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => {
                let _ = writeln!(status, "spawn-failed {e}");
                return 127;
            }
            Ok(c) => break c,
        }
    };
    let main = child.id() as i32;
    let mut outcome: Option<String> = None;
    loop {
        let mut wstatus = 0;
        // SAFETY: waitpid on any child, non-blocking.
        let pid = unsafe { libc::waitpid(-1, &mut wstatus, libc::WNOHANG) };
        if pid == main {
            let st = std::process::ExitStatus::from_raw(wstatus);
            outcome = Some(match (st.code(), st.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (_, Some(s)) => format!("signal {s}"),
                _ => "exit 255".into(),
            });
            break;
        }
        if pid > 0 {
            continue;
        }
        if TERMINATE.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let survivors = stop_descendants();
    for s in &survivors {
        let _ = writeln!(status, "survivor {s}");
    }
    if let Some(o) = &outcome {
        let _ = writeln!(status, "{o}");
    }
    let _ = status.flush();
    0
}

/// Stop every descendant (SIGSTOP first, so a fork loop cannot outrun us), name each one,
/// then kill and reap them all.
fn stop_descendants() -> Vec<String> {
    let me = std::process::id() as i32;
    let mut named: Vec<(i32, String)> = Vec::new();
    for _round in 0..200 {
        reap_all();
        let found = descendants(me);
        let fresh: Vec<i32> = found
            .iter()
            .copied()
            .filter(|p| !named.iter().any(|(q, _)| q == p))
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in &fresh {
            named.push((*pid, describe(*pid)));
        }
        for pid in &found {
            // SAFETY: signalling our own descendants.
            unsafe { libc::kill(*pid, libc::SIGSTOP) };
        }
        if fresh.is_empty() {
            for pid in &found {
                // SAFETY: as above.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if me == 1 {
        // SAFETY: PID 1 of our own namespace: -1 reaches exactly the run's processes.
        unsafe { libc::kill(-1, libc::SIGKILL) };
    }
    reap_all();
    named.into_iter().map(|(_, d)| d).collect()
}

fn reap_all() {
    loop {
        let mut st = 0;
        // SAFETY: non-blocking reap of any child.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// Living (not zombie) descendants of `pid`, through /proc/PID/task/*/children.
fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(t.path().join("children")) else {
                continue;
            };
            for c in text
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                if !out.contains(&c) && !is_zombie(c) {
                    out.push(c);
                    queue.push(c);
                }
            }
        }
    }
    out
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// `1234 (name) arg0 arg1…`, short, for a report.
fn describe(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args: String = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if args.len() > 400 {
        let mut cut = 400;
        while !args.is_char_boundary(cut) {
            cut -= 1;
        }
        args.truncate(cut);
        args.push('…');
    }
    format!("pid {pid} ({}) {args}", comm.trim())
}

/// Held while files a run may exec are being written; a run's fork waits for writers, so no
/// child can inherit a write descriptor of a file another run is about to exec ("Text file
/// busy").
pub fn layout_lock() -> &'static std::sync::RwLock<()> {
    static L: std::sync::RwLock<()> = std::sync::RwLock::new(());
    &L
}

/// Spawn with the layout lock held exclusively (see [`layout_lock`]).
pub fn spawn_exclusive(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let _g = layout_lock().write().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
}

/// Give the status pipe's write end to the child as fd 3.
pub fn pass_status_fd(cmd: &mut std::process::Command, write_end: i32) {
    // SAFETY: dup2 is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(write_end, STATUS_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
