//! Hostile programs, compiled here with the host's (and a cross) gcc, run under mab-verify:
//! none outlives its run, none reads a secret of the caller, none writes outside its run
//! directory or reaches the network, and the timeout holds whatever they do with their pipes.

use crate::harness;
use crate::support;

use harness::{check_of, command, run_cmd, status_of};
use rstest::rstest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{expected_hello, host_row, row};

/// Sources of the hostile programs; each prints the row's hello first where it exits at all,
/// so a sealed run is otherwise a pass and only the behaviour under test decides.
const HOSTILE: &str = r#"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>

static void hello(void) { printf("%s\n", HELLO); fflush(stdout); }

/* Every readable environ and cmdline in /proc, ancestors first: what a spy could learn. */
static void spy(const char *extra) {
    char path[256], buf[65536];
    pid_t p = getppid();
    for (int depth = 0; depth < 8 && p > 0; depth++) {
        const char *what[] = {"environ", "cmdline"};
        for (int w = 0; w < 2; w++) {
            snprintf(path, sizeof path, "/proc/%d/%s", (int)p, what[w]);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            for (ssize_t i = 0; i < n; i++) if (buf[i] == 0) buf[i] = ' ';
            if (n > 0) { buf[n] = 0; printf("SPY %s: %s\n", path, buf); }
        }
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int pid, ppid; char comm[256], state;
        if (fscanf(f, "%d %255s %c %d", &pid, comm, &state, &ppid) != 4) { fclose(f); break; }
        fclose(f);
        p = ppid;
    }
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++) if (buf[i] == 0) buf[i] = ' ';
        if (n > 0) { buf[n] = 0; printf("SPY %s: %s\n", path, buf); }
        /* A process's root is a way back to the caller's files. */
        snprintf(path, sizeof path, "/proc/%s/root%s", e->d_name, extra);
        fd = open(path, O_RDONLY);
        if (fd >= 0) { n = read(fd, buf, sizeof buf - 1); if (n > 0) { buf[n] = 0; printf("SPY %s: %s\n", path, buf); } close(fd); }
    }
    if (d) closedir(d);
    int fd = open(extra, O_RDONLY);
    if (fd >= 0) { ssize_t n = read(fd, buf, sizeof buf - 1); if (n > 0) { buf[n] = 0; printf("SPY %s: %s\n", extra, buf); } close(fd); }
    fflush(stdout);
}

static void writer(const char *name) {
    const char *home = getenv("HOME");
    char path[512];
    const char *dirs[] = {home ? home : "/nonexistent", "/tmp", "/var/tmp", ".", "/"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        FILE *f = fopen(path, "w");
        if (f) { fputs("written", f); fclose(f); printf("WROTE %s\n", path); }
    }
    /* Beside itself: the binary's own directory (the artifact). */
    char self[512]; ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) { self[n] = 0; snprintf(path, sizeof path, "%s.%s", self, name); FILE *f = fopen(path, "w"); if (f) { fclose(f); printf("WROTE %s\n", path); } }
    fflush(stdout);
}

static void net(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
    if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0) { write(s, "hi", 2); printf("CONNECTED\n"); }
    else printf("NO NETWORK\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (!strcmp(mode, "daemon")) {
        /* Exits 0 at once, leaving a session leader that ignores SIGTERM and holds stdout. */
        hello();
        if (fork() == 0) { setsid(); if (fork() == 0) { for (;;) pause(); } _exit(0); }
        usleep(100000);
        return 0;
    }
    if (!strcmp(mode, "hang")) {
        /* Never exits; a setsid child holds stdout and stderr open. */
        hello();
        if (fork() == 0) { setsid(); for (;;) pause(); }
        for (;;) pause();
    }
    if (!strcmp(mode, "forker")) {
        /* Keeps forking detached children until it is stopped. */
        hello();
        for (int i = 0; i < 400; i++) { if (fork() == 0) { setsid(); for (;;) pause(); } usleep(5000); }
        for (;;) pause();
    }
    if (!strcmp(mode, "spy")) { spy(argc > 2 ? argv[2] : "/nonexistent"); hello(); return 0; }
    if (!strcmp(mode, "writer")) { writer(argc > 2 ? argv[2] : "x"); hello(); return 0; }
    if (!strcmp(mode, "net")) { net(argc > 2 ? atoi(argv[2]) : 9); hello(); return 0; }
    return 2;
}
"#;

/// The hostile program for `arch`, built with its gcc (the host's, or Debian's cross gcc).
fn hostile(arch: &mab_verify::platform::Arch, dir: &Path) -> PathBuf {
    let src = dir.join("hostile.c");
    std::fs::write(&src, HOSTILE).unwrap();
    let out = dir.join(format!("hostile-{}", arch.key()));
    let gcc = if arch.is_host() {
        "gcc".to_string()
    } else {
        format!("{}-gcc", arch.toolchain.unwrap().gcc_triple)
    };
    let hello = format!("-DHELLO=\"{}\"", expected_hello(arch).trim_end());
    let status = std::process::Command::new(&gcc)
        .arg(&hello)
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("{gcc}: {e}"));
    assert!(status.success(), "{gcc} failed");
    out
}

/// Processes whose command line mentions `needle` (the hostile binary's unique path).
fn alive(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) && !text.contains("mab-verify") {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// `sealed`: the default (bubblewrap); otherwise the no-namespace fallback (`MAB_BWRAP=none`).
fn verify(
    bin: &Path,
    sealed: bool,
    extra: &[&str],
    tweak: impl FnOnce(&mut std::process::Command),
) -> (harness::Outcome, Duration) {
    let mut cmd = command();
    if !sealed {
        cmd.env("MAB_BWRAP", "none");
    }
    cmd.args(["--format", "json"]).args(extra).arg(bin);
    tweak(&mut cmd);
    let started = Instant::now();
    let out = run_cmd(cmd);
    (out, started.elapsed())
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter()
        .flat_map(|a| ["--args".to_string(), a.to_string()])
        .collect()
}

/// The rows the hostile programs are built for: the host (native runs) and, where the host is
/// not aarch64, aarch64 under qemu-user.
fn arch_of(which: &str) -> &'static mab_verify::platform::Arch {
    match which {
        "host" => host_row(),
        _ => {
            let foreign = row("aarch64-linux");
            if foreign.is_host() {
                row("x86_64-linux")
            } else {
                foreign
            }
        }
    }
}

fn wait_until_gone(needle: &str) -> Vec<String> {
    // The kernel finishes tearing a namespace down asynchronously; give it a moment.
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let left = alive(needle);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[rstest]
fn a_daemonized_descendant_is_named_killed_and_fails_run_exec(
    #[values("host", "foreign")] which: &str,
    #[values(true, false)] sealed: bool,
) {
    let arch = arch_of(which);
    let dir = tempfile::tempdir().unwrap();
    let bin = hostile(arch, dir.path());
    let a = args(&["daemon"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (out, took) = verify(&bin, sealed, &a, |_| {});
    assert_eq!(out.code, 1, "{}", out.stdout);
    let art = &out.json()["artifacts"][0];
    let runner = art["run"]["runner"].as_str().unwrap();
    assert_eq!(runner.contains("not sealed"), !sealed, "{runner}");
    assert_eq!(art["run"]["stdout"], expected_hello(arch));
    let exec = check_of(art, "run.exec");
    assert_eq!(exec["status"], "fail", "{exec:#}");
    let survivors = art["run"]["survivors"]
        .as_array()
        .expect("survivors listed");
    assert!(!survivors.is_empty(), "{art:#}");
    assert!(
        exec["message"].as_str().unwrap().contains("hostile"),
        "the survivor is named: {exec:#}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let left = wait_until_gone(bin.to_str().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[rstest]
fn the_timeout_holds_when_descendants_keep_the_pipes_open(
    #[values("host", "foreign")] which: &str,
    #[values("hang", "forker")] mode: &str,
    #[values(true, false)] sealed: bool,
) {
    let arch = arch_of(which);
    let dir = tempfile::tempdir().unwrap();
    let bin = hostile(arch, dir.path());
    let a = args(&[mode]);
    let mut all: Vec<&str> = vec!["--timeout", "2"];
    all.extend(a.iter().map(String::as_str));
    let (out, took) = verify(&bin, sealed, &all, |_| {});
    assert!(
        took < Duration::from_secs(3),
        "--timeout 2 took {took:?} ({mode}, sealed {sealed})"
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let art = &out.json()["artifacts"][0];
    assert_eq!(art["run"]["timed_out"], true, "{art:#}");
    assert_eq!(status_of(art, "run.exec"), "fail");
    let left = wait_until_gone(bin.to_str().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[rstest]
fn a_sealed_run_reads_no_secret_of_the_caller(#[values("host", "foreign")] which: &str) {
    let arch = arch_of(which);
    let dir = tempfile::tempdir().unwrap();
    let bin = hostile(arch, dir.path());
    let secret = format!("s3cret-{}", std::process::id());
    // A file only the caller should see, named to the spy, which tries it directly and
    // through every /proc/PID/root.
    let private = tempfile::tempdir().unwrap();
    let file = private.path().join("token");
    std::fs::write(&file, &secret).unwrap();
    let a = args(&["spy", file.to_str().unwrap()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (out, _) = verify(&bin, true, &a, |c| {
        c.env("MAB_TEST_SECRET", &secret);
    });
    let art = &out.json()["artifacts"][0];
    assert_eq!(art["run"]["state"], "ran", "{art:#}");
    let seen = format!("{}{}", art["run"]["stdout"], art["run"]["stderr"]);
    assert!(!seen.contains(&secret), "the run read the secret: {seen}");

    // The same spy without namespaces, as root: the fallback gives this up (docs/security.md),
    // which shows the spy does find the secret when it is reachable.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let (out, _) = verify(&bin, false, &a, |c| {
            c.env("MAB_TEST_SECRET", &secret);
        });
        let art = &out.json()["artifacts"][0];
        let seen = format!("{}", art["run"]["stdout"]);
        assert!(
            seen.contains(&secret),
            "the control spy found nothing: {seen}"
        );
    }
}

#[rstest]
fn a_sealed_run_writes_only_in_its_directory_and_has_no_network(
    #[values("host", "foreign")] which: &str,
) {
    let arch = arch_of(which);
    let dir = tempfile::tempdir().unwrap();
    let bin = hostile(arch, dir.path());
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("mab-sealed-probe-{}", std::process::id());
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let a = args(&["writer", &name]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (out, _) = verify(&bin, true, &a, |c| {
        c.env("HOME", home.path()).env("TMPDIR", tmp.path());
    });
    let art = &out.json()["artifacts"][0];
    let stdout = art["run"]["stdout"].as_str().unwrap().to_string();
    // Its own directory is writable (that is where it runs); the rest is not, or is private.
    assert!(stdout.contains(&format!("WROTE ./{name}")), "{stdout}");
    let after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(before, after, "the artifact's directory changed: {stdout}");
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "{stdout}"
    );
    for host in ["/tmp", "/var/tmp", "/"] {
        let p = Path::new(host).join(&name);
        assert!(!p.exists(), "{} was written: {stdout}", p.display());
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let a = args(&["net", &port]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (out, _) = verify(&bin, true, &a, |_| {});
    let art = &out.json()["artifacts"][0];
    let stdout = art["run"]["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("NO NETWORK"), "{stdout}");
    assert!(
        listener.accept().is_err(),
        "the run reached 127.0.0.1:{port}"
    );
    // Control: unsealed, the same program does connect, so the probe can tell.
    let (out, _) = verify(&bin, false, &a, |_| {});
    let stdout = out.json()["artifacts"][0]["run"]["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stdout.starts_with("CONNECTED"), "{stdout}");
}

#[test]
fn require_sealed_exits_3_without_namespaces() {
    let mut cmd = command();
    cmd.env("MAB_BWRAP", "none")
        .args(["--require-sealed", "--format", "json", "/bin/true"]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be sealed"), "{}", out.stderr);
    let mut cmd = command();
    cmd.args([
        "--require-sealed",
        "--format",
        "json",
        "--expect-output",
        "none",
        "/bin/true",
    ]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
}

/// As a normal user (nobody), where user namespaces are allowed: still sealed, still clean.
#[test]
fn a_normal_user_gets_sealed_runs_too() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: already a normal user; the other tests cover this case");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("mab-user-")
        .tempdir()
        .unwrap();
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let bin = hostile(host_row(), dir.path());
    let exe = env!("CARGO_BIN_EXE_mab-verify");
    let run = |mode: &str| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe)
            .args(["--format", "json", "--timeout", "2", "--args", mode])
            .arg(&bin)
            .env("TMPDIR", dir.path())
            .env("HOME", dir.path());
        let started = Instant::now();
        let out = cmd.output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            started.elapsed(),
        )
    };
    // TMPDIR must be writable for nobody: mab-verify keeps its temporary files there.
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let (stdout, stderr, _) = run("daemon");
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    let art = &v["artifacts"][0];
    let runner = art["run"]["runner"].as_str().unwrap();
    assert!(!runner.contains("not sealed"), "{runner}");
    assert_eq!(status_of(art, "run.exec"), "fail");
    assert!(!art["run"]["survivors"].as_array().unwrap().is_empty());
    let (_, _, took) = run("hang");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let left = wait_until_gone(bin.to_str().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[rstest]
fn sigterm_to_mab_verify_ends_its_runs_and_removes_its_temporary_files(
    #[values(true, false)] sealed: bool,
    #[values(libc::SIGTERM, libc::SIGINT)] sig: i32,
) {
    let dir = tempfile::tempdir().unwrap();
    let bin = hostile(host_row(), dir.path());
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = command();
    if !sealed {
        cmd.env("MAB_BWRAP", "none");
    }
    cmd.env("TMPDIR", tmp.path())
        .args(["--format", "json", "--timeout", "60", "--args", "hang"])
        .arg(&bin)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Wait until the run is under way (its process exists), then signal mab-verify.
    let until = Instant::now() + Duration::from_secs(10);
    while alive(bin.to_str().unwrap()).is_empty() {
        assert!(Instant::now() < until, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().count() > 0,
        "mab-verify keeps its temporary files under TMPDIR"
    );
    let started = Instant::now();
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(128 + sig), "{status:?}");
    let left = wait_until_gone(bin.to_str().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
    let files: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.is_empty(), "temporary files left: {files:?}");
}

/// A process limit that leaves no room for worker threads is a clear exit 3, never a panic.
#[test]
fn no_room_for_threads_is_exit_3() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to switch to a user whose process count is known");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut perms = std::fs::metadata(tmp.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    std::fs::set_permissions(tmp.path(), perms).unwrap();
    // RLIMIT_NPROC counts the user's threads too: one process, no room for another thread.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["prlimit", "--nproc=1", "--"])
        .arg(env!("CARGO_BIN_EXE_mab-verify"))
        .args(["--no-run", "/bin/true"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("thread"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temporary files left"
    );
}
