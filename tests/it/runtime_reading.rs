//! Issue 14, rule 1: bytes are read as Go's archive/tar and encoding/json and the kernel read
//! them, or refused with exit 2 naming the construct. Inputs are built byte by byte here.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tar header block as Go reads one (ustar magic, octal fields, checksum).
fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8], mode: u32) -> Vec<u8> {
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name);
    b[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
    b[108..115].copy_from_slice(b"0000000");
    b[116..123].copy_from_slice(b"0000000");
    b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    b[136..147].copy_from_slice(b"00000000000");
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&c| u32::from(c)).sum();
    b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    b.to_vec()
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let mut body = format!(" {k}=").into_bytes();
        body.extend_from_slice(v);
        body.push(b'\n');
        let n = (1..)
            .map(|d| body.len() + d)
            .find(|n| n.to_string().len() == n - body.len())
            .unwrap();
        out.extend(n.to_string().as_bytes());
        out.extend(body);
    }
    out
}

/// A layer assembled entry by entry.
#[derive(Default, Clone)]
struct Tar(Vec<u8>);

impl Tar {
    fn raw(mut self, typeflag: u8, name: &[u8], link: &[u8], size: u64, data: &[u8]) -> Self {
        let mode = match typeflag {
            b'5' => 0o755,
            b'2' => 0o777,
            _ => 0o755,
        };
        self.0.extend(header(name, typeflag, size, link, mode));
        self.0.extend_from_slice(data);
        pad(&mut self.0);
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(b'0', name.as_bytes(), b"", data.len() as u64, data)
    }
    fn dir(self, name: &str) -> Self {
        self.raw(b'5', name.as_bytes(), b"", 0, b"")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(b'2', name.as_bytes(), target.as_bytes(), 0, b"")
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(b'1', name.as_bytes(), target.as_bytes(), 0, b"")
    }
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data = pax_records(records);
        self.raw(b'x', b"PaxHeader", b"", data.len() as u64, &data)
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn finish(mut self) -> Vec<u8> {
        self.0.extend([0; 1024]);
        self.0
    }
}

/// A static x86-64 ELF program that exits 0: one PT_LOAD, three instructions.
fn tiny_elf() -> Vec<u8> {
    crate::hostile_shapes::tiny_elf_with(&[])
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What goes into one image: layers (uncompressed tars unless given compressed), and JSON
/// documents that tests may replace.
struct Image {
    layers: Vec<Vec<u8>>,
    layer_media_type: String,
    config: Option<String>,
    entrypoint: String,
}

impl Image {
    fn new(layers: Vec<Vec<u8>>) -> Image {
        Image {
            layers,
            layer_media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            config: None,
            entrypoint: "/app".into(),
        }
    }

    fn config_json(&self) -> String {
        if let Some(c) = &self.config {
            return c.clone();
        }
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|l| format!("\"{}\"", sha(&decompressed(l))))
            .collect();
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["{}"],"Env":["PATH=/usr/bin:/bin"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            self.entrypoint,
            diff_ids.join(",")
        )
    }
}

fn decompressed(l: &[u8]) -> Vec<u8> {
    use std::io::Read;
    if l.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(l)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if l.len() > 4 && (l[..4] == [0x28, 0xb5, 0x2f, 0xfd] || l[0] & 0xf0 == 0x50) {
        zstd::decode_all(l).unwrap()
    } else {
        l.to_vec()
    }
}

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::write(path, bytes).unwrap();
        digest
    }

    fn descriptor(&self, media_type: &str, bytes: &[u8]) -> String {
        let digest = self.blob(bytes);
        format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
            bytes.len()
        )
    }

    /// The manifest's descriptor for `image`, blobs written.
    fn manifest(&self, image: &Image) -> String {
        self.manifest_edited(image, "application/vnd.oci.image.manifest.v1+json", |m| m)
    }

    /// The same, the manifest's text passed through `edit` and its descriptor typed `typed`.
    fn manifest_edited(
        &self,
        image: &Image,
        typed: &str,
        edit: impl Fn(String) -> String,
    ) -> String {
        let config = self.descriptor(
            "application/vnd.oci.image.config.v1+json",
            image.config_json().as_bytes(),
        );
        let layers: Vec<String> = image
            .layers
            .iter()
            .map(|l| self.descriptor(&image.layer_media_type, l))
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{}]}}"#,
            layers.join(",")
        );
        let manifest = edit(manifest);
        let digest = self.blob(manifest.as_bytes());
        format!(
            r#"{{"mediaType":"{typed}","digest":"{digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}"#,
            manifest.len()
        )
    }

    fn index(&self, manifests: &[String]) {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            manifests.join(",")
        );
        std::fs::write(self.dir.join("index.json"), index).unwrap();
    }
}

fn layout_in(dir: &Path) -> Layout {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout {
        dir: dir.to_path_buf(),
    }
}

/// One image in a fresh layout under `tmp`.
fn write_image(tmp: &Path, image: &Image) -> PathBuf {
    let layout = layout_in(&tmp.join("layout"));
    let m = layout.manifest(image);
    layout.index(&[m]);
    layout.dir
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn mab(args: &[&str], path: &Path) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_mab-verify"))
        .env("XDG_CACHE_HOME", crate::harness::fresh_cache_home())
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn verify(path: &Path) -> Out {
    mab(&["--no-run"], path)
}

#[track_caller]
fn assert_refused(out: &Out, says: &[&str]) {
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    for s in says {
        assert!(out.stderr.contains(s), "wanted {s:?} in: {}", out.stderr);
    }
}

#[track_caller]
fn assert_passes(out: &Out) {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

fn with_app(t: Tar) -> Tar {
    t.file("app", &tiny_elf())
}

fn refused_layer(t: Tar, says: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_image(tmp.path(), &Image::new(vec![t.finish()]));
    assert_refused(&verify(&path), says);
}

#[test]
fn a_plain_image_built_here_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_image(
        tmp.path(),
        &Image::new(vec![with_app(Tar::default()).finish()]),
    );
    assert_passes(&verify(&path));
}

#[test]
fn a_pax_record_given_twice_is_refused() {
    for key in ["path", "linkpath", "size"] {
        let t = with_app(Tar::default())
            .pax(&[(key, b"1"), (key, b"2")])
            .file("x", b"");
        refused_layer(t, &[key, "twice"]);
    }
}

#[test]
fn two_pax_headers_for_one_entry_are_refused() {
    let t = with_app(Tar::default())
        .pax(&[("path", b"a")])
        .pax(&[("path", b"b")])
        .file("x", b"");
    refused_layer(t, &["two PAX headers"]);
}

#[test]
fn a_non_numeric_pax_size_is_refused() {
    let t = with_app(Tar::default())
        .pax(&[("size", b"12x")])
        .file("x", b"");
    refused_layer(t, &["\"x\"", "non-numeric PAX size"]);
}

/// A directory whose size field says 512: Go reads no data after it, so the next header
/// follows at once. A reader that skipped 512 bytes would see `/app` as the directory's data
/// and read the amd64 program hidden after it instead.
#[test]
fn header_only_entries_with_a_size_read_no_data() {
    for typeflag in [b'5', b'2', b'1'] {
        let link: &[u8] = match typeflag {
            b'5' => b"",
            _ => b"app",
        };
        let name: &[u8] = if typeflag == b'5' { b"d/" } else { b"l" };
        let t = Tar::default()
            .file("app", &tiny_elf())
            .raw(typeflag, name, link, 512, b"")
            .file("marker", b"seen");
        let tmp = tempfile::tempdir().unwrap();
        let path = write_image(tmp.path(), &Image::new(vec![t.finish()]));
        let out = mab(&["--no-run", "--format", "json"], &path);
        assert_passes(&out);
    }
}

#[test]
fn gnu_sparse_entries_are_refused_by_name() {
    refused_layer(
        with_app(Tar::default()).raw(b'S', b"holes", b"", 0, b""),
        &["\"holes\"", "sparse"],
    );
    let t = with_app(Tar::default())
        .pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")])
        .file("holes2", b"");
    refused_layer(t, &["\"holes2\"", "sparse"]);
}

#[test]
fn an_entry_after_a_single_zero_block_is_refused() {
    let t = with_app(Tar::default()).bytes(&[0; 512]).file("late", b"x");
    refused_layer(t, &["single zero block"]);
}

#[test]
fn non_utf8_names_are_refused_not_folded() {
    let t = with_app(Tar::default()).raw(b'0', b"app\xff", b"", 0, b"");
    refused_layer(t, &["not UTF-8"]);
    let t = with_app(Tar::default())
        .pax(&[("path", b"bin/\xfeapp")])
        .file("x", b"");
    refused_layer(t, &["not UTF-8"]);
}

#[test]
fn long_names_and_huge_pax_headers_are_refused() {
    let long = "d/".repeat(2100);
    let t = with_app(Tar::default())
        .pax(&[("path", long.as_bytes())])
        .file("x", b"");
    refused_layer(t, &["4096 bytes"]);
    // A header claiming 1 GiB of PAX records: refused from the header alone.
    let t = with_app(Tar::default()).raw(b'x', b"PaxHeader", b"", 1 << 30, b"");
    refused_layer(t, &["PAX header", "limit"]);
    let t = with_app(Tar::default()).raw(b'L', b"././@LongLink", b"", 2 << 20, b"");
    refused_layer(t, &["GNU long name", "limit"]);
}

#[test]
fn a_pax_global_header_is_refused() {
    let data = pax_records(&[("path", b"elsewhere")]);
    let t = with_app(Tar::default()).raw(b'g', b"pax_global_header", b"", data.len() as u64, &data);
    refused_layer(t, &["global header"]);
}

/// An OCI archive (tar of a layout) with `extra` members appended after the layout's own.
fn oci_archive(tmp: &Path, layout: &Path, extra: Tar) -> PathBuf {
    let mut t = Tar::default().dir("blobs/").dir("blobs/sha256/");
    for name in ["oci-layout", "index.json"] {
        t = t.file(name, &std::fs::read(layout.join(name)).unwrap());
    }
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = format!("blobs/sha256/{}", e.file_name().to_str().unwrap());
        t = t.file(&name, &std::fs::read(e.path()).unwrap());
    }
    let mut bytes = t.0;
    bytes.extend(extra.0);
    bytes.extend([0; 1024]);
    let path = tmp.join("image.tar");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn an_oci_archive_with_two_members_naming_index_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = write_image(
        tmp.path(),
        &Image::new(vec![with_app(Tar::default()).finish()]),
    );
    let fine = oci_archive(tmp.path(), &layout, Tar::default());
    assert_passes(&verify(&fine));
    for second in [
        "./index.json",
        "/index.json",
        "x/../index.json",
        ".//index.json",
    ] {
        let path = oci_archive(
            tmp.path(),
            &layout,
            Tar::default().file(second, br#"{"schemaVersion":2,"manifests":[]}"#),
        );
        let says: &[&str] = if second.contains("..") {
            &["'..'"]
        } else {
            &["appears twice", "index.json"]
        };
        assert_refused(&verify(&path), says);
    }
    // Links inside the archive read as their target (skopeo's docker-archive layout uses
    // them); one that leaves the archive is refused.
    let linked = oci_archive(
        tmp.path(),
        &layout,
        Tar::default().symlink("oci-layout2", "/etc/passwd"),
    );
    assert_refused(
        &verify(&linked),
        &["oci-layout2", "no file inside the archive"],
    );
    let hard = oci_archive(
        tmp.path(),
        &layout,
        Tar::default().hardlink("index2.json", "../index.json"),
    );
    assert_refused(
        &verify(&hard),
        &["index2.json", "no file inside the archive"],
    );
    let fine = oci_archive(
        tmp.path(),
        &layout,
        Tar::default().symlink("blobs/extra", "../index.json"),
    );
    assert_passes(&verify(&fine));
}

fn image_with_config(config: &str) -> Image {
    let mut image = Image::new(vec![with_app(Tar::default()).finish()]);
    let diff = sha(&image.layers[0]);
    image.config = Some(config.replace("DIFF", &diff));
    image
}

const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app"]},"rootfs":{"type":"layers","diff_ids":["DIFF"]}}"#;

#[test]
fn json_keys_that_collide_after_case_folding_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // In a config: Go's decoder would run "/other" (the last match).
    let config = CONFIG.replace(
        r#""Entrypoint":["/app"]"#,
        r#""Entrypoint":["/app"],"entrypoint":["/other"]"#,
    );
    let path = write_image(tmp.path(), &image_with_config(&config));
    assert_refused(
        &verify(&path),
        &["\"Entrypoint\"", "\"entrypoint\"", "case folding"],
    );
    // Plain case, the long s (folds to s) and the Kelvin sign (folds to k), as in Go.
    for (field, twin) in [
        (r#""os":"linux""#, r#""OS":"linux""#),
        (r#""os":"linux""#, "\"o\u{17f}\":\"linux\""),
        (
            r#""Entrypoint":["/app"]"#,
            "\"WorkingDir\":\"/\",\"Wor\u{212a}ingdir\":\"/x\"",
        ),
    ] {
        let config = CONFIG.replace(field, &format!("{field},{twin}"));
        let tmp = tempfile::tempdir().unwrap();
        let path = write_image(tmp.path(), &image_with_config(&config));
        assert_refused(&verify(&path), &["case folding"]);
    }
    // In a manifest and in index.json.
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("layout"));
    let image = Image::new(vec![with_app(Tar::default()).finish()]);
    let m = layout.manifest_edited(&image, "application/vnd.oci.image.manifest.v1+json", |m| {
        m.replacen(
            r#""schemaVersion":2"#,
            r#""schemaVersion":2,"MEDIATYPE":"x""#,
            1,
        )
    });
    layout.index(&[m]);
    assert_refused(&verify(&layout.dir), &["\"mediaType\"", "case folding"]);
    let layout = layout_in(&tmp.path().join("layout2"));
    let m = layout.manifest(&image);
    let m = m.replacen("\"digest\"", "\"Digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"digest\"", 1);
    layout.index(&[m]);
    assert_refused(
        &verify(&layout.dir),
        &["index.json", "\"Digest\"", "case folding"],
    );
}

/// Go matches a field whatever the case of its key; so must the reader.
#[test]
fn a_key_in_another_case_is_read_as_its_field() {
    let tmp = tempfile::tempdir().unwrap();
    let config = CONFIG.replace("Entrypoint", "entrypoint");
    let path = write_image(tmp.path(), &image_with_config(&config));
    let out = mab(&["--no-run", "--format", "json"], &path);
    assert_passes(&out);
    assert!(
        out.stdout.contains("entrypoint /app is linux/amd64"),
        "{}",
        out.stdout
    );
}

#[test]
fn huge_numbers_and_deep_nesting_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = CONFIG.replace(r#""os":"linux""#, r#""os":"linux","x":1e400"#);
    let path = write_image(tmp.path(), &image_with_config(&config));
    assert_refused(&verify(&path), &["config", "out of"]);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let config = CONFIG.replace(r#""os":"linux""#, &format!(r#""os":"linux","x":{deep}"#));
    let tmp = tempfile::tempdir().unwrap();
    let path = write_image(tmp.path(), &image_with_config(&config));
    assert_refused(&verify(&path), &["config", "recursion limit"]);
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let config = CONFIG.replace(r#""os":"linux""#, &format!(r#""os":"linux","x":{deep}"#));
    let tmp = tempfile::tempdir().unwrap();
    let path = write_image(tmp.path(), &image_with_config(&config));
    assert_refused(&verify(&path), &["config", "nests deeper"]);
}

#[test]
fn empty_media_types_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("a"));
    let image = Image::new(vec![with_app(Tar::default()).finish()]);
    let m = layout.manifest_edited(&image, "", |m| m);
    layout.index(&[m]);
    assert_refused(&verify(&layout.dir), &["has no mediaType"]);
    let mut image = Image::new(vec![with_app(Tar::default()).finish()]);
    image.layer_media_type = String::new();
    let path = write_image(&tmp.path().join("b"), &image);
    assert_refused(&verify(&path), &["layer 1", "has no mediaType"]);
}

#[test]
fn a_descriptor_typed_as_an_index_pointing_at_a_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("a"));
    let image = Image::new(vec![with_app(Tar::default()).finish()]);
    let m = layout.manifest_edited(&image, "application/vnd.oci.image.index.v1+json", |m| m);
    layout.index(&[m]);
    assert_refused(&verify(&layout.dir), &["media type mismatch"]);
    // A manifest-typed descriptor pointing at an index without its own mediaType.
    let layout = layout_in(&tmp.path().join("b"));
    let inner = layout.manifest(&image);
    let nested = format!(r#"{{"schemaVersion":2,"manifests":[{inner}]}}"#);
    let d = layout.descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        nested.as_bytes(),
    );
    layout.index(&[d]);
    assert_refused(&verify(&layout.dir), &["media type mismatch"]);
}

#[test]
fn a_layer_stored_otherwise_than_its_media_type_says_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut image = Image::new(vec![with_app(Tar::default()).finish()]);
    image.layer_media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    let path = write_image(&tmp.path().join("a"), &image);
    assert_refused(&verify(&path), &["says Gzip", "None"]);
    let mut image = Image::new(vec![
        zstd::encode_all(&with_app(Tar::default()).finish()[..], 3).unwrap(),
    ]);
    image.layer_media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    let path = write_image(&tmp.path().join("b"), &image);
    assert_refused(&verify(&path), &["says Gzip", "Zstd"]);
}

#[test]
fn a_zstd_layer_starting_with_a_skippable_frame_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut blob = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, b'n', b'o', b't', b'e'];
    blob.extend(zstd::encode_all(&with_app(Tar::default()).finish()[..], 3).unwrap());
    let mut image = Image::new(vec![blob]);
    image.layer_media_type = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    let path = write_image(tmp.path(), &image);
    assert_passes(&verify(&path));
}

const LOAD_AT: u64 = 0x400000;
const PAYLOAD: u64 = 288;

/// An ELF64 LE file: header, up to four program headers (`(p_type, p_offset, p_vaddr,
/// p_filesz)`; a PT_LOAD of the whole file is added first), then `payload` at offset 288.
fn elf(machine: u16, e_type: u16, phdrs: &[(u32, u64, u64, u64)], payload: &[u8]) -> Vec<u8> {
    let total = PAYLOAD + payload.len() as u64;
    let mut all = vec![(1u32, 0u64, LOAD_AT, total)];
    all.extend_from_slice(phdrs);
    assert!(all.len() <= 4);
    let mut e = Vec::new();
    e.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend(e_type.to_le_bytes());
    e.extend(machine.to_le_bytes());
    e.extend(1u32.to_le_bytes());
    e.extend((LOAD_AT + PAYLOAD).to_le_bytes());
    e.extend(64u64.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(56u16.to_le_bytes());
    e.extend((all.len() as u16).to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(0u16.to_le_bytes());
    e.extend(0u16.to_le_bytes());
    for (t, off, vaddr, size) in all {
        e.extend(t.to_le_bytes());
        e.extend(if t == 1 { 5u32 } else { 4u32 }.to_le_bytes());
        e.extend(off.to_le_bytes());
        e.extend(vaddr.to_le_bytes());
        e.extend(vaddr.to_le_bytes());
        e.extend(size.to_le_bytes());
        e.extend(size.to_le_bytes());
        e.extend(8u64.to_le_bytes());
    }
    e.resize(PAYLOAD as usize, 0);
    e.extend_from_slice(payload);
    e
}

type Phdrs = Vec<(u32, u64, u64, u64)>;

/// A payload with an interpreter string and a dynamic section naming `soname`, and the
/// program headers that point at them.
fn dynamic_payload(interp: &[u8], soname: &str) -> (Vec<u8>, Phdrs) {
    dynamic_payload_needing(interp, soname, 0)
}

/// The same with `needed` DT_NEEDED entries (all naming libc.so.6).
fn dynamic_payload_needing(interp: &[u8], soname: &str, needed: usize) -> (Vec<u8>, Phdrs) {
    let mut p = interp.to_vec();
    p.push(0);
    let strtab = p.len() as u64;
    p.push(0);
    let so = p.len() as u64 - strtab;
    p.extend(soname.as_bytes());
    p.push(0);
    let libc = p.len() as u64 - strtab;
    p.extend(b"libc.so.6\0");
    let strsz = p.len() as u64 - strtab;
    p.resize(p.len().div_ceil(8) * 8, 0);
    let dynamic = p.len() as u64;
    let mut entries = vec![(5u64, LOAD_AT + PAYLOAD + strtab), (10, strsz), (14, so)];
    entries.extend(std::iter::repeat_n((1u64, libc), needed));
    entries.push((0, 0));
    for (tag, val) in entries {
        p.extend(tag.to_le_bytes());
        p.extend(val.to_le_bytes());
    }
    let phdrs = vec![
        (3, PAYLOAD, LOAD_AT + PAYLOAD, interp.len() as u64 + 1),
        (
            2,
            PAYLOAD + dynamic,
            LOAD_AT + PAYLOAD + dynamic,
            16 * (needed as u64 + 4),
        ),
    ];
    (p, phdrs)
}

fn verify_binary(bytes: &[u8]) -> Out {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("prog");
    std::fs::write(&path, bytes).unwrap();
    mab(&["--no-run"], &path)
}

#[test]
fn ambiguous_elf_constructs_fail_elf_format_by_name() {
    let loader = b"/lib64/ld-linux-x86-64.so.2";
    let (payload, phdrs) = dynamic_payload(loader, "libx.so");
    let good = elf(62, 3, &phdrs, &payload);
    assert!(!verify_binary(&good).stdout.contains("refused"));
    let cases: Vec<(&str, Phdrs)> = vec![
        ("two PT_INTERP", vec![phdrs[0], phdrs[0], phdrs[1]]),
        ("two PT_DYNAMIC", vec![phdrs[0], phdrs[1], phdrs[1]]),
        (
            "PT_DYNAMIC at file offset",
            vec![phdrs[0], (2, phdrs[1].1 + 8, phdrs[1].2, 64)],
        ),
    ];
    for (says, ph) in cases {
        let out = verify_binary(&elf(62, 3, &ph, &payload));
        assert_eq!(out.code, 1, "{says}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(says), "{says}: {}", out.stdout);
        assert!(out.stdout.contains("elf.format"), "{}", out.stdout);
    }
    let (payload, phdrs) = dynamic_payload_needing(loader, "libx.so", 513);
    let out = verify_binary(&elf(62, 3, &phdrs, &payload));
    assert!(out.stdout.contains("513 DT_NEEDED"), "{}", out.stdout);
    let (payload, phdrs) = dynamic_payload(b"/lib64/ld-\xff.so", "libx.so");
    let out = verify_binary(&elf(62, 3, &phdrs, &payload));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("PT_INTERP") && out.stdout.contains("not UTF-8"),
        "{}",
        out.stdout
    );
}

/// An arm64 program that also names a DT_SONAME, in an amd64 image: still a program.
#[test]
fn a_wrong_arch_program_with_a_soname_is_an_outlier() {
    let (payload, phdrs) = dynamic_payload(b"/lib/ld-linux-aarch64.so.1", "libtool.so");
    let tool = elf(183, 3, &phdrs, &payload);
    let t = with_app(Tar::default())
        .dir("usr/")
        .dir("usr/bin/")
        .file("usr/bin/tool", &tool);
    let tmp = tempfile::tempdir().unwrap();
    let path = write_image(tmp.path(), &Image::new(vec![t.finish()]));
    let out = verify(&path);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("/usr/bin/tool"), "{}", out.stdout);
}

#[test]
fn merged_usr_hardlink_then_whiteout_and_hardlink_to_a_symlink_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Tar::default()
        .dir("usr/")
        .dir("usr/bin/")
        .symlink("bin", "usr/bin")
        .file("etc/a.conf", b"a")
        .finish();
    let top = Tar::default()
        .file("bin/app", &tiny_elf())
        .hardlink("etc/b.conf", "etc/a.conf")
        .file("etc/.wh.a.conf", b"")
        .symlink("etc/s", "b.conf")
        .hardlink("etc/h", "etc/s")
        .finish();
    let mut image = Image::new(vec![base, top]);
    image.entrypoint = "/bin/app".into();
    let path = write_image(tmp.path(), &image);
    let out = mab(&["--no-run", "--format", "json"], &path);
    assert_passes(&out);
    assert!(
        out.stdout.contains("\"entrypoint\": \"/usr/bin/app\""),
        "{}",
        out.stdout
    );
}

#[test]
fn a_symlink_leaving_the_root_stays_refused() {
    let t = with_app(Tar::default())
        .symlink("bin", "../../usr/bin")
        .file("bin/x", b"");
    refused_layer(t, &["points outside"]);
}

// ---------------------------------------------------------------------------------------
// Differential test against the real readers: umoci (Go archive/tar + securejoin) and
// skopeo (Go encoding/json). For every generated image the tool accepts, the tree umoci
// extracts must equal the tool's final rootfs view, and skopeo must name the same manifest
// and entrypoint.

/// xorshift64*, seeded: the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

fn random_path(rng: &mut Rng) -> String {
    let first = ["a", "b", "usr", "bin", "etc", "lib"];
    let rest = ["x", "y", "app", "bin", "lib", "conf"];
    let mut p = rng.pick(&first[..]).to_string();
    for _ in 0..rng.below(3) {
        p.push('/');
        let part = *rng.pick(&rest[..]);
        p.push_str(part);
    }
    p
}

/// One layer mixing legal and ambiguous constructs; `written` collects paths for later
/// links and whiteouts.
fn random_layer(rng: &mut Rng, written: &mut Vec<String>) -> Tar {
    let mut t = Tar::default();
    let mut used = std::collections::HashSet::new();
    for _ in 0..1 + rng.below(7) {
        let path = random_path(rng);
        let existing = if written.is_empty() {
            path.clone()
        } else {
            rng.pick(written).clone()
        };
        // Mostly legal constructs, now and then one the tool must refuse.
        let op = if rng.chance(6) {
            15 + rng.below(5)
        } else {
            rng.below(15)
        };
        // A path twice in one layer is refused (tested above); keep most cases readable.
        let target = if (11..=12).contains(&op) {
            existing.clone()
        } else {
            path.clone()
        };
        if !(5..=6).contains(&op) && !used.insert(target) {
            continue;
        }
        t = match op {
            0..=4 => {
                let data: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                let mode = *rng.pick(&[0o644, 0o755, 0o600]);
                let mut t = t;
                t.0.extend(header(path.as_bytes(), b'0', data.len() as u64, b"", mode));
                t.0.extend(&data);
                pad(&mut t.0);
                t
            }
            5 | 6 => t.dir(&format!("{path}/")),
            7 => {
                let target = match rng.below(4) {
                    0 => "usr/bin".to_string(),
                    1 => "/usr/lib".to_string(),
                    2 => format!("/{existing}"),
                    _ => "../../../x".to_string(),
                };
                t.symlink(&path, &target)
            }
            8 => t.symlink("bin", "usr/bin"),
            9 | 10 => t.hardlink(&path, &existing),
            11 | 12 => {
                let (dir, name) = existing.rsplit_once('/').unwrap_or(("", &existing));
                let wh = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                t.file(&wh, b"")
            }
            13 => t.file(&format!("{path}/.wh..wh..opq"), b""),
            // A directory whose size field claims data: Go reads none.
            14 => t.raw(b'5', format!("{path}/").as_bytes(), b"", 512, b""),
            15 => t
                .pax(&[("path", path.as_bytes())])
                .file("short", b"pax named"),
            16 => t
                .pax(&[("path", b"p1"), ("path", path.as_bytes())])
                .file("q", b""),
            17 => {
                let name = format!("{path}\0");
                t.raw(
                    b'L',
                    b"././@LongLink",
                    b"",
                    name.len() as u64,
                    name.as_bytes(),
                )
                .file("ignored-name", b"long named")
            }
            18 => t.raw(b'0', b"bad\xffname", b"", 0, b""),
            _ => t.bytes(&[0; 512]),
        };
        written.push(path);
    }
    t
}

/// Plain or gzip: umoci 0.4.7 reads no zstd layers (zstd is tested on its own above).
fn compress(rng: &mut Rng, tar: Vec<u8>) -> (Vec<u8>, &'static str) {
    use std::io::Write;
    match rng.below(2) {
        0 => (tar, "application/vnd.oci.image.layer.v1.tar"),
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            (
                gz.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        _ => (
            zstd::encode_all(&tar[..], 1).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// A layout for case `seed`, tagged `t`.
fn random_image(dir: &Path, seed: u64) -> PathBuf {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let layout = layout_in(dir);
    let mut written = Vec::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let tar = random_layer(&mut rng, &mut written).finish();
        diff_ids.push(format!("\"{}\"", sha(&tar)));
        let (blob, mut media_type) = compress(&mut rng, tar);
        if rng.chance(5) {
            media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        }
        layers.push(layout.descriptor(media_type, &blob));
    }
    let key = *rng.pick(&["Entrypoint", "entrypoint", "ENTRYPOINT", "Entrypoint"]);
    let mut run = format!(r#""{key}":["/{}"]"#, rng.pick(&written));
    if rng.chance(4) {
        run.push_str(r#","entrypoint":["/other"]"#);
    }
    if rng.chance(50) {
        run.push_str(r#","Cmd":["--flag"]"#);
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{{run}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config = layout.descriptor(
        "application/vnd.oci.image.config.v1+json",
        config.as_bytes(),
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{}]}}"#,
        layers.join(",")
    );
    let d = layout.descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    let d = d.trim_end_matches('}').to_string()
        + r#","annotations":{"org.opencontainers.image.ref.name":"t"}}"#;
    layout.index(&[d]);
    layout.dir
}

/// The tree umoci extracted, in the dump's terms.
fn extracted(
    rootfs: &Path,
) -> std::collections::BTreeMap<String, mab_verify::image::dump::DumpNode> {
    use mab_verify::image::dump::DumpNode;
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![rootfs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(rootfs).unwrap().to_str().unwrap());
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let node = if meta.file_type().is_symlink() {
                DumpNode::Symlink(std::fs::read_link(&p).unwrap().to_str().unwrap().into())
            } else if meta.is_dir() {
                stack.push(p.clone());
                DumpNode::Dir
            } else {
                DumpNode::File {
                    mode: meta.permissions().mode() & 0o7777,
                    sha256: sha(&std::fs::read(&p).unwrap()),
                }
            };
            out.insert(rel, node);
        }
    }
    out
}

fn tool(name: &str) -> Command {
    let c = Command::new(name);
    assert!(
        Command::new(name).arg("--version").output().is_ok(),
        "{name} is not installed: run scripts/setup"
    );
    c
}

/// Returns a mismatch, or None; `Ok(false)` when the tool refused the case.
fn differential_case(seed: u64) -> Result<bool, String> {
    let tmp = tempfile::tempdir().unwrap();
    let layout = random_image(&tmp.path().join("layout"), seed);
    let limits = mab_verify::image::Limits::default();
    let dump = match mab_verify::image::dump::dump(&layout, &limits) {
        Ok(d) => d,
        Err(e) => {
            if std::env::var_os("MAB_DIFFERENTIAL_VERBOSE").is_some() {
                eprintln!("seed {seed} refused: {e}");
            }
            return Ok(false);
        }
    };
    let bundle = tmp.path().join("bundle");
    let image = format!("{}:t", layout.display());
    let out = tool("umoci")
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&bundle)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "seed {seed}: the tool accepted, umoci refused: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let theirs = extracted(&bundle.join("rootfs"));
    if theirs != dump.tree {
        return Err(format!(
            "seed {seed}: trees differ\n tool:  {:?}\n umoci: {:?}",
            dump.tree, theirs
        ));
    }
    let oci = format!("oci:{}:t", layout.display());
    let raw = tool("skopeo")
        .args(["inspect", "--raw", &oci])
        .output()
        .unwrap();
    if !raw.status.success() || sha(&raw.stdout) != dump.manifest_digest {
        return Err(format!("seed {seed}: skopeo names another manifest"));
    }
    let config = tool("skopeo")
        .args(["inspect", "--config", &oci])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&config.stdout)
        .map_err(|e| format!("seed {seed}: skopeo --config: {e}"))?;
    let mut argv: Vec<String> = Vec::new();
    for key in ["Entrypoint", "Cmd"] {
        if let Some(a) = json["config"][key].as_array() {
            argv.extend(a.iter().map(|v| v.as_str().unwrap().to_string()));
        }
    }
    if argv != dump.entrypoint {
        return Err(format!(
            "seed {seed}: skopeo's entrypoint {argv:?}, the tool's {:?}",
            dump.entrypoint
        ));
    }
    Ok(true)
}

#[test]
fn umoci_and_skopeo_read_what_the_tool_accepts() {
    let cases: u64 = std::env::var("MAB_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let next = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if seed >= cases {
                            return mine;
                        }
                        mine.push(differential_case(seed));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let accepted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must exercise both sides: enough accepted cases to compare.
    assert!(
        accepted as u64 * 5 >= cases,
        "only {accepted} of {cases} cases were accepted"
    );
    eprintln!("{accepted} of {cases} generated images accepted and read alike by umoci and skopeo");
}

#[test]
fn a_relative_entrypoint_and_relative_path_entries_resolve_against_working_dir() {
    for (entrypoint, env) in [("./app", ""), ("app", r#","Env":["PATH=bin:/nowhere"]"#)] {
        let t = Tar::default()
            .dir("srv/")
            .dir("srv/bin/")
            .file("srv/app", &tiny_elf())
            .file("srv/bin/app", &tiny_elf());
        let mut image = Image::new(vec![t.finish()]);
        let diff = sha(&image.layers[0]);
        image.config = Some(format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["{entrypoint}"],"WorkingDir":"/srv"{env}}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        ));
        let tmp = tempfile::tempdir().unwrap();
        let path = write_image(tmp.path(), &image);
        let out = mab(&["--no-run", "--format", "json"], &path);
        assert_passes(&out);
        let want = if entrypoint == "./app" {
            "/srv/app"
        } else {
            "/srv/bin/app"
        };
        assert!(
            out.stdout.contains(&format!("\"entrypoint\": \"{want}\"")),
            "{entrypoint}: {}",
            out.stdout
        );
    }
}

#[test]
fn an_index_with_no_manifests_verifies_nothing_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("layout"));
    layout.index(&[]);
    let out = verify(&layout.dir);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("nothing was verified"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_blob_that_is_a_fifo_or_a_directory_is_refused_without_hanging() {
    for kind in ["fifo", "dir"] {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_image(
            tmp.path(),
            &Image::new(vec![with_app(Tar::default()).finish()]),
        );
        // Replace the layer blob (the largest) by a FIFO or a directory of the same name.
        let blob = std::fs::read_dir(path.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap();
        std::fs::remove_file(&blob).unwrap();
        if kind == "fifo" {
            let c = std::ffi::CString::new(blob.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        } else {
            std::fs::create_dir(&blob).unwrap();
        }
        let started = std::time::Instant::now();
        assert_refused(&verify(&path), &["not a regular file"]);
        assert!(started.elapsed().as_secs() < 20);
    }
}

/// Eight levels of indexes, each listing the next eight times: 8^8 paths to one manifest,
/// read once.
#[test]
fn a_blob_listed_many_times_is_read_once_and_is_one_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("layout"));
    let image = Image::new(vec![with_app(Tar::default()).finish()]);
    let mut d = layout.manifest(&image);
    for _ in 0..8 {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            vec![d.clone(); 8].join(",")
        );
        d = layout.descriptor("application/vnd.oci.image.index.v1+json", index.as_bytes());
    }
    layout.index(&[d]);
    let started = std::time::Instant::now();
    let out = mab(&["--no-run", "--format", "json"], &layout.dir);
    assert_passes(&out);
    assert!(started.elapsed().as_secs() < 30);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let images = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .count();
    assert_eq!(images, 1, "{}", out.stdout);
    // Listed again under another platform: one blob claiming two things.
    let layout = layout_in(&tmp.path().join("two"));
    let m = layout.manifest(&image);
    let other = m.replace("amd64", "arm64");
    layout.index(&[m, other]);
    assert_refused(&verify(&layout.dir), &["listed again"]);
}

/// Three layers of 400 KB each against a 1 MB budget: each fits, together they do not.
#[test]
fn the_decompression_budget_is_shared_by_an_images_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = |name: &str| {
        with_app(Tar::default())
            .file(name, &vec![7u8; 400_000])
            .finish()
    };
    let mut image = Image::new(vec![layer("a"), layer("b"), layer("c")]);
    image.layers[1] = Tar::default().file("b", &vec![7u8; 400_000]).finish();
    image.layers[2] = Tar::default().file("c", &vec![7u8; 400_000]).finish();
    let path = write_image(tmp.path(), &image);
    let config = tmp.path().join("mab.toml");
    std::fs::write(&config, "[limits]\nmax_uncompressed_bytes = 1000000\n").unwrap();
    let out = mab(&["--no-run", "--config", config.to_str().unwrap()], &path);
    assert_refused(&out, &["1000000-byte limit"]);
    std::fs::write(&config, "[limits]\nmax_uncompressed_bytes = 2000000\n").unwrap();
    assert_passes(&mab(
        &["--no-run", "--config", config.to_str().unwrap()],
        &path,
    ));
}

/// buildx lists provenance as a manifest for platform unknown/unknown whose layers are
/// in-toto JSON: skipped, as runtimes never select it; the same annotation on a real
/// platform does not hide an image.
#[test]
fn a_buildx_attestation_manifest_is_not_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_in(&tmp.path().join("layout"));
    let image = Image::new(vec![with_app(Tar::default()).finish()]);
    let real = layout.manifest(&image);
    let mut attestation = Image::new(vec![b"{}".to_vec()]);
    attestation.layer_media_type = "application/vnd.in-toto+json".into();
    let note = r#","annotations":{"vnd.docker.reference.type":"attestation-manifest"}}"#;
    let att = layout.manifest(&attestation).replace(
        r#""platform":{"architecture":"amd64","os":"linux"}}"#,
        &format!(r#""platform":{{"architecture":"unknown","os":"unknown"}}{note}"#),
    );
    layout.index(&[real.clone(), att]);
    assert_passes(&verify(&layout.dir));
    let layout = layout_in(&tmp.path().join("hidden"));
    let real = layout.manifest(&image);
    let disguised = layout
        .manifest(&attestation)
        .strip_suffix('}')
        .unwrap()
        .to_string()
        + note;
    layout.index(&[real, disguised]);
    assert_refused(&verify(&layout.dir), &["in-toto"]);
}
