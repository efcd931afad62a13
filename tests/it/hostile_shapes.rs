//! Issue 14, rule 4: memory and time stay bounded on hostile image shapes (100,000 tiny ELF
//! programs in one layer; directories nested as deep as the 4,096-byte name limit allows).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A static x86-64 ELF program that exits 0, with `tag` appended so every file differs.
pub(crate) fn tiny_elf(tag: u32) -> Vec<u8> {
    tiny_elf_with(&tag.to_le_bytes())
}

/// A static x86-64 ELF program that exits 0: one PT_LOAD, three instructions, then `trailer`
/// (mapped too, never run).
pub(crate) fn tiny_elf_with(trailer: &[u8]) -> Vec<u8> {
    let code: &[u8] = &[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let mut e = Vec::new();
    e.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(62u16.to_le_bytes()); // EM_X86_64
    e.extend(1u32.to_le_bytes());
    e.extend((0x400000u64 + 120).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // phoff
    e.extend(0u64.to_le_bytes()); // shoff
    e.extend(0u32.to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(56u16.to_le_bytes());
    e.extend(1u16.to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(0u16.to_le_bytes());
    e.extend(0u16.to_le_bytes());
    let total = 120 + (code.len() + trailer.len()) as u64;
    e.extend(1u32.to_le_bytes()); // PT_LOAD, R+X, the whole file at 0x400000
    e.extend(5u32.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(0x400000u64.to_le_bytes());
    e.extend(0x400000u64.to_le_bytes());
    e.extend(total.to_le_bytes());
    e.extend(total.to_le_bytes());
    e.extend(0x1000u64.to_le_bytes());
    e.extend(code);
    e.extend(trailer);
    e
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A layer built with the `tar` crate (GNU long names past 100 bytes, which Go reads).
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }
    fn entry(&mut self, path: &str, kind: tar::EntryType, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        self.0.append_data(&mut h, path, data).unwrap();
    }
    fn file(&mut self, path: &str, data: &[u8]) {
        self.entry(path, tar::EntryType::Regular, data);
    }
    fn dir(&mut self, path: &str) {
        self.entry(path, tar::EntryType::Directory, b"");
    }
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// An OCI layout of one linux/amd64 image with `layer`, its entrypoint `entrypoint`.
pub(crate) fn layout(dir: &Path, layer: &[u8], entrypoint: &str) -> PathBuf {
    let root = dir.join("layout");
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    let blob = |b: &[u8]| {
        let d = sha(b);
        std::fs::write(root.join("blobs/sha256").join(&d[7..]), b).unwrap();
        format!(r#""digest":"{d}","size":{}"#, b.len())
    };
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["{entrypoint}"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha(layer)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json",{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar",{}}}]}}"#,
        blob(config.as_bytes()),
        blob(layer)
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        blob(manifest.as_bytes())
    );
    std::fs::write(root.join("index.json"), index).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    root
}

struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    /// Peak resident set of mab-verify alone, in KiB.
    max_rss_kib: u64,
    seconds: f64,
}

/// Run `mab-verify --no-run PATH` under GNU time, which forks it from its own small process:
/// the child's peak RSS is then its own. (A child spawned from this test binary starts its
/// count from the test process's pages, and every other test's memory is in those.)
fn measure(path: &Path) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let rss = dir.path().join("rss");
    let start = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_mab-verify"))
        .arg("--no-run")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("GNU time (/usr/bin/time, Debian package time, installed by scripts/setup)");
    let rss = std::fs::read_to_string(&rss).unwrap();
    Measured {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        max_rss_kib: rss
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("GNU time wrote {rss:?}")),
        seconds: start.elapsed().as_secs_f64(),
    }
}

const FILES: u32 = 100_000;

#[test]
fn a_hundred_thousand_tiny_elfs_in_one_layer_stay_under_64_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layer = Layer::new();
    layer.file("app", &tiny_elf(u32::MAX));
    for d in 0..100 {
        layer.dir(&format!("d{d}"));
    }
    for i in 0..FILES {
        layer.file(&format!("d{}/f{i}", i % 100), &tiny_elf(i));
    }
    let path = layout(tmp.path(), &layer.finish(), "/app");
    let m = measure(&path);
    assert_eq!(m.code, 0, "{}\n{}", m.stdout, m.stderr);
    // Every file was read as a program, so the bound is not met by skipping them.
    let all = format!("{} executables", FILES + 1);
    assert!(m.stdout.contains(&all), "wanted {all:?} in {}", m.stdout);
    eprintln!(
        "{FILES} tiny ELFs: peak RSS {} KiB, {:.1} s",
        m.max_rss_kib, m.seconds
    );
    assert!(
        m.max_rss_kib <= 64 * 1024,
        "peak RSS {} KiB is over 64 MiB",
        m.max_rss_kib
    );
}

/// One directory per level (`a/a/…`), a data file in each, the entrypoint at the bottom.
fn deep_layer(depth: usize) -> (Vec<u8>, String) {
    let mut layer = Layer::new();
    let mut path = String::new();
    for _ in 0..depth {
        if !path.is_empty() {
            path.push('/');
        }
        path.push('a');
        layer.dir(&path);
        layer.file(&format!("{path}/f"), b"x");
    }
    let app = format!("{path}/app");
    layer.file(&app, &tiny_elf(0));
    (layer.finish(), format!("/{app}"))
}

/// With one-byte components a path grows 2 bytes a level, so the 4,096-byte name limit stops
/// at 2,046 levels: 2,040 is as deep as an image can legally be, and it passes, with its
/// entrypoint resolved at the bottom.
#[test]
fn directories_as_deep_as_names_allow_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, app) = deep_layer(2040);
    let path = layout(tmp.path(), &layer, &app);
    let m = measure(&path);
    assert_eq!(m.code, 0, "{}\n{}", m.stdout, m.stderr);
    assert!(
        m.stdout
            .contains(&format!("entrypoint {app} · 1 executables")),
        "{}",
        m.stdout
    );
    eprintln!(
        "2040 levels: {:.1} s, peak RSS {} KiB",
        m.seconds, m.max_rss_kib
    );
}
