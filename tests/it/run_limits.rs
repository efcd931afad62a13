//! Issue 14, rule 2: runs that start while other images' files are still being written never
//! fail with "Text file busy", and a tight pids cgroup (64, as the issue has it, and 3) is a
//! clear error or a verdict, never a panic.

use crate::hostile_shapes::tiny_elf;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// `count` OCI layouts of one linux/amd64 image each (one index may not list a platform
/// twice), each a different static program that exits 0, plus `fill` more programs, so
/// laying out one image's root takes a while.
fn many_images(dir: &Path, count: u32, fill: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|n| one_image(&dir.join(format!("layout{n}")), n, fill))
        .collect()
}

fn one_image(root: &Path, n: u32, fill: usize) -> PathBuf {
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    let blob = |b: &[u8]| {
        let d = sha(b);
        std::fs::write(root.join("blobs/sha256").join(&d[7..]), b).unwrap();
        format!(r#""digest":"{d}","size":{}"#, b.len())
    };
    let mut manifests = Vec::new();
    {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            b.append_data(&mut h, path, data).unwrap();
        };
        add("app", &tiny_elf(n));
        for i in 0..fill {
            add(&format!("bin/tool{i}"), &tiny_elf(n * 1000 + i as u32));
        }
        let layer = b.into_inner().unwrap();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["/app"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            sha(&layer)
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json",{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar",{}}}]}}"#,
            blob(config.as_bytes()),
            blob(&layer)
        );
        manifests.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json",{},"platform":{{"architecture":"amd64","os":"linux"}},"annotations":{{"n":"{n}"}}}}"#,
            blob(manifest.as_bytes())
        ));
    }
    std::fs::write(
        root.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            manifests.join(",")
        ),
    )
    .unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    root.to_path_buf()
}

fn verify(paths: &[PathBuf]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mab-verify"));
    c.args(["--expect-output", "none"]).args(paths);
    c
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Each image's root is laid out (its binaries written) while other images' runs fork: a
/// fork that still holds a just-written file open makes its exec fail with ETXTBSY. Runs
/// retry that, so every run of every image passes, every time.
#[test]
fn runs_starting_while_other_roots_are_written_never_see_text_file_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = many_images(tmp.path(), 12, 40);
    for round in 0..3 {
        let out = verify(&layout).output().unwrap();
        let all = text(&out);
        assert!(!all.contains("Text file busy"), "round {round}: {all}");
        assert_eq!(out.status.code(), Some(0), "round {round}: {all}");
        assert_eq!(all.matches("exit 0 ·").count(), 12, "round {round}: {all}");
    }
}

/// The pids controller to put a test child under: cgroup v1's hierarchy, or a child of this
/// process's own cgroup v2. `None` where neither can be written (not root, read-only).
fn pids_cgroup(max: u32) -> Option<Cgroup> {
    let name = format!("mab-test-{}-{max}", std::process::id());
    let v1 = Path::new("/sys/fs/cgroup/pids");
    let dir = if v1.join("cgroup.procs").exists() {
        v1.join(name)
    } else {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let parent = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        std::fs::read_to_string(parent.join("cgroup.subtree_control"))
            .ok()?
            .contains("pids")
            .then(|| parent.join(name))?
    };
    std::fs::create_dir(&dir).ok()?;
    let cg = Cgroup(dir);
    std::fs::write(cg.0.join("pids.max"), max.to_string()).ok()?;
    Some(cg)
}

struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Run `cmd` as a member of `cg`, joined before exec so every thread it starts counts.
fn in_cgroup(mut cmd: Command, cg: &Cgroup) -> Output {
    use std::os::unix::process::CommandExt;
    let procs = std::ffi::CString::new(cg.0.join("cgroup.procs").to_str().unwrap()).unwrap();
    // SAFETY: only async-signal-safe calls (open, write, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" is the writing process itself.
            let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.output().unwrap()
}

#[rstest::rstest]
#[case::no_room_for_worker_threads(3)]
#[case::the_issues_64(64)]
fn a_pids_cgroup_limit_is_a_clear_error_or_a_verdict_never_a_panic(#[case] max: u32) {
    let Some(cg) = pids_cgroup(max) else {
        eprintln!("SKIPPED: no writable pids cgroup here (needs root and the pids controller)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let layout = many_images(tmp.path(), 6, 5);
    let out = in_cgroup(verify(&layout), &cg);
    let all = text(&out);
    assert!(!all.contains("panicked"), "{all}");
    match out.status.code() {
        // Runs fit: every one passed.
        Some(0) => assert_eq!(all.matches("exit 0 ·").count(), 6, "{all}"),
        // The environment lacks processes: said so, naming what could not start.
        Some(3) => assert!(
            all.contains("thread") || all.contains("process") || all.contains("Resource"),
            "{all}"
        ),
        _ => panic!("under pids.max={max}: {all}"),
    }
    if max == 3 {
        assert_eq!(out.status.code(), Some(3), "{all}");
    }
    let peak = std::fs::read_to_string(cg.0.join("pids.events")).unwrap_or_default();
    eprintln!(
        "pids.max={max}: exit {:?}, pids.events {peak:?}",
        out.status.code()
    );
}
