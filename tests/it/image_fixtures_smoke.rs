//! The image fixtures are what they claim: skopeo and umoci (readers we did not write) accept
//! the good ones and see the right platforms, and each broken or hostile one is broken in
//! exactly the intended way.

use crate::harness;
use crate::support;

use mab_verify::demo;
use mab_verify::inspect::inspect_bytes;
use mab_verify::platform::{Arch, Platform};
use rstest::rstest;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::images::{BOMB_SIZE, HUGE_ENV_SIZE, IMAGE_ROWS, MULTI_ROWS, REPO_TAG, TAG, images};
use support::{NixClosure, fixtures, row};
use tempfile::TempDir;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

// ---------------------------------------------------------------------------------------
// Independent readers

use harness::skopeo;

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_slice(&skopeo(args)).expect("skopeo prints JSON")
}

/// `skopeo --override-arch/--override-variant` flags that select `arch`.
fn override_flags(arch: &Arch) -> Vec<&'static str> {
    let mut flags = vec!["--override-arch", arch.oci_arch];
    if let Some(v) = arch.oci_variant {
        flags.extend(["--override-variant", v]);
    }
    flags
}

/// `umoci unpack --rootless --image REF BUNDLE`, into a new temporary directory.
fn umoci_unpack(image_ref: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image", image_ref])
        .arg(&bundle)
        .output()
        .expect("umoci runs");
    assert!(
        out.status.success(),
        "umoci unpack {image_ref} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, bundle)
}

/// Unpacks `image_ref` with umoci and checks the rootfs holds `closure`'s demo and loader and
/// that the runtime config runs the demo.
fn assert_umoci_unpacks(image_ref: &str, closure: &NixClosure) {
    let (_tmp, bundle) = umoci_unpack(image_ref);
    let rootfs = bundle.join("rootfs");
    let bin = rootfs.join(closure.bin_guest().trim_start_matches('/'));
    assert_eq!(
        fs::read(&bin).unwrap_or_default(),
        fs::read(&closure.bin).unwrap(),
        "{image_ref}: {} is not the {} demo",
        bin.display(),
        closure.arch.key()
    );
    assert!(
        rootfs
            .join(closure.loader.trim_start_matches('/'))
            .is_file(),
        "{image_ref}: no loader {}",
        closure.loader
    );
    let runtime: Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap())
        .expect("umoci writes a runtime config");
    assert_eq!(
        runtime["process"]["args"],
        json!([closure.bin_guest()]),
        "{image_ref}"
    );
}

// ---------------------------------------------------------------------------------------
// Our own walk over a layout: every blob, every digest, size and diff_id

#[derive(Debug, PartialEq)]
enum Fault {
    Missing(String),
    Size {
        digest: String,
        said: u64,
        found: u64,
    },
    Digest(String),
    Undecodable(String),
    DiffId {
        layer: String,
    },
}

#[derive(Debug)]
struct Image {
    /// The descriptor that led to the manifest.
    descriptor: Value,
    manifest: Value,
    config: Value,
    /// Uncompressed layer tars, in manifest order (empty when the walk skipped them).
    layers: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Walk {
    dir: PathBuf,
    faults: Vec<Fault>,
    images: Vec<Image>,
    /// Index blobs between `index.json` and the deepest manifest.
    depth: usize,
    decode_layers: bool,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Walks the layout from `index.json`, checking everything it reaches.
fn walk(dir: &Path) -> Walk {
    walk_with(dir, true)
}

fn walk_with(dir: &Path, decode_layers: bool) -> Walk {
    let mut w = Walk {
        dir: dir.to_path_buf(),
        decode_layers,
        ..Walk::default()
    };
    assert_eq!(
        read_json(&dir.join("oci-layout")),
        json!({"imageLayoutVersion": "1.0.0"}),
        "{}",
        dir.display()
    );
    let index = read_json(&dir.join("index.json"));
    // umoci leaves `mediaType` out of index.json and its manifests; when present it must fit.
    assert!(
        matches!(index.get("mediaType"), None | Some(Value::String(_))),
        "{}",
        dir.display()
    );
    if index.get("mediaType").is_some() {
        assert_eq!(index["mediaType"], OCI_INDEX, "{}", dir.display());
    }
    for d in index["manifests"]
        .as_array()
        .expect("index.json lists manifests")
    {
        w.visit(d, 0);
    }
    w
}

impl Walk {
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digests");
        self.dir.join("blobs/sha256").join(hex)
    }

    /// The blob's bytes (after recording any fault), if it exists.
    fn blob(&mut self, d: &Value) -> Option<Vec<u8>> {
        let digest = d["digest"].as_str().expect("descriptor digest").to_string();
        let Ok(bytes) = fs::read(self.blob_path(&digest)) else {
            self.faults.push(Fault::Missing(digest));
            return None;
        };
        let said = d["size"].as_u64().expect("descriptor size");
        if said != bytes.len() as u64 {
            self.faults.push(Fault::Size {
                digest: digest.clone(),
                said,
                found: bytes.len() as u64,
            });
        }
        if format!("sha256:{}", sha256_hex(&bytes)) != digest {
            self.faults.push(Fault::Digest(digest));
        }
        Some(bytes)
    }

    fn visit(&mut self, d: &Value, depth: usize) {
        let Some(bytes) = self.blob(d) else { return };
        let doc: Value = serde_json::from_slice(&bytes).expect("manifests and indexes are JSON");
        match d["mediaType"].as_str().expect("descriptor media type") {
            OCI_INDEX | DOCKER_LIST => {
                if doc.get("mediaType").is_some() {
                    assert_eq!(doc["mediaType"], d["mediaType"]);
                }
                for m in doc["manifests"].as_array().expect("index lists manifests") {
                    self.visit(m, depth + 1);
                }
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                if doc.get("mediaType").is_some() {
                    assert_eq!(doc["mediaType"], d["mediaType"]);
                }
                self.depth = self.depth.max(depth);
                let config: Value = self
                    .blob(&doc["config"])
                    .map(|b| serde_json::from_slice(&b).expect("config is JSON"))
                    .unwrap_or(Value::Null);
                let mut layers = Vec::new();
                for (i, l) in doc["layers"].as_array().expect("layers").iter().enumerate() {
                    let Some(blob) = self.blob(l) else { continue };
                    if !self.decode_layers {
                        continue;
                    }
                    let digest = l["digest"].as_str().unwrap().to_string();
                    let Some(tar) = decode(l["mediaType"].as_str().unwrap(), &blob) else {
                        self.faults.push(Fault::Undecodable(digest));
                        continue;
                    };
                    if config["rootfs"]["diff_ids"][i] != format!("sha256:{}", sha256_hex(&tar)) {
                        self.faults.push(Fault::DiffId { layer: digest });
                    }
                    layers.push(tar);
                }
                self.images.push(Image {
                    descriptor: d.clone(),
                    manifest: doc,
                    config,
                    layers,
                });
            }
            other => panic!("unexpected media type {other} in {}", self.dir.display()),
        }
    }
}

/// The uncompressed tar of a layer blob, by its media type.
fn decode(media_type: &str, blob: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if media_type.ends_with("gzip") {
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    } else if media_type.ends_with("zstd") {
        zstd::decode_all(blob).ok()
    } else {
        Some(blob.to_vec())
    }
}

/// `(path, type, link target, data)` of every entry of a tar, names as raw bytes. The tar
/// may end right after its last entry's data (umoci 0.4.7 writes neither the padding nor the
/// end-of-archive blocks); data cut short is still an error.
fn tar_entries(tar: &[u8]) -> Vec<(String, tar::EntryType, String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    let mut entries = archive.entries().unwrap();
    let mut out = Vec::new();
    // An error finding the next header after a complete entry means the tar just stops.
    while let Some(Ok(mut e)) = entries.next() {
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("entry data complete");
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        out.push((
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            e.header().entry_type(),
            link,
            data,
        ));
    }
    out
}

impl Image {
    /// `(architecture, variant)` of the config.
    fn config_platform(&self) -> (String, Option<String>) {
        platform_of(&self.config)
    }

    /// `(architecture, variant)` of the descriptor that led here.
    fn entry_platform(&self) -> (String, Option<String>) {
        platform_of(&self.descriptor["platform"])
    }

    /// The platform of the demo binary in the layers, by its ELF header.
    fn binary_platform(&self) -> Platform {
        let bin = self
            .layers
            .iter()
            .flat_map(|l| tar_entries(l))
            .find(|(p, ..)| p.ends_with("/bin/multi-arch-demo"))
            .expect("the image holds the demo")
            .3;
        inspect_bytes(&bin).platform().expect("the demo is an ELF")
    }
}

fn platform_of(v: &Value) -> (String, Option<String>) {
    (
        v["architecture"].as_str().unwrap_or_default().to_string(),
        v["variant"].as_str().map(str::to_string),
    )
}

fn expected_platform(arch: &Arch) -> (String, Option<String>) {
    (
        arch.oci_arch.to_string(),
        arch.oci_variant.map(str::to_string),
    )
}

/// A layout whose `index.json` holds only `descriptor` (tagged [`TAG`]); blobs shared.
fn single_entry_view(layout: &Path, descriptor: &Value) -> TempDir {
    let tmp = TempDir::new().unwrap();
    symlink(layout.join("blobs"), tmp.path().join("blobs")).unwrap();
    fs::copy(layout.join("oci-layout"), tmp.path().join("oci-layout")).unwrap();
    let mut d = descriptor.clone();
    d["annotations"] = json!({"org.opencontainers.image.ref.name": TAG});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d]});
    fs::write(tmp.path().join("index.json"), index.to_string()).unwrap();
    tmp
}

/// The closure of a row, or `None` (after checking the toolchain really is missing).
fn closure_or_skip(arch: &Arch) -> Option<&'static NixClosure> {
    let closure = fixtures().nix_for(arch);
    if closure.is_none() {
        let reason = demo::missing_toolchain(arch);
        assert!(
            reason.is_some(),
            "{}: the toolchain is installed but no closure was built",
            arch.nix_system()
        );
        eprintln!("skip {}: {}", arch.nix_system(), reason.unwrap_or_default());
    }
    closure
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------
// Good fixtures

#[test]
fn image_rows_cover_the_cases() {
    assert_eq!(
        IMAGE_ROWS,
        [
            "x86_64-linux",
            "aarch64-linux",
            "armv7l-linux",
            "riscv64-linux"
        ],
        "update the #[case]s of the per-platform tests"
    );
    assert_eq!(
        MULTI_ROWS,
        ["x86_64-linux", "aarch64-linux", "armv7l-linux"],
        "update the #[case]s of the nested-index test"
    );
}

#[rstest]
#[case::x86_64("x86_64-linux")]
#[case::aarch64("aarch64-linux")]
#[case::armv7l("armv7l-linux")]
#[case::riscv64("riscv64-linux")]
fn our_oci_layout_and_archive_read_back(#[case] name: &str) {
    let arch = row(name);
    let Some(closure) = closure_or_skip(arch) else {
        return;
    };
    let im = images();
    let layout = im
        .oci_layout_for(arch)
        .expect("an OCI layout for every closure");

    let w = walk(layout);
    assert_eq!(w.faults, [], "{}", layout.display());
    let [image] = &w.images[..] else {
        panic!("one image in {}", layout.display())
    };
    assert_eq!(image.entry_platform(), expected_platform(arch));
    assert_eq!(image.config_platform(), expected_platform(arch));
    assert_eq!(image.binary_platform().arch, arch);
    assert_eq!(
        read_json(&layout.join("index.json"))["mediaType"],
        OCI_INDEX
    );
    assert_eq!(image.manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(
        image.manifest["layers"].as_array().unwrap().len(),
        2,
        "one per store path"
    );

    let oci_ref = format!("oci:{}:{TAG}", s(layout));
    let config = skopeo_json(&["inspect", "--config", "--raw", &oci_ref]);
    assert_eq!(config, image.config);
    assert_eq!(config["config"]["Cmd"], json!([closure.bin_guest()]));
    let raw = skopeo(&["inspect", "--raw", &oci_ref]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw)),
        image.descriptor["digest"],
        "skopeo reads the manifest index.json names"
    );

    let archive = im
        .oci_archive_for(arch)
        .expect("an OCI archive for every layout");
    let archive_ref = format!("oci-archive:{}:{TAG}", s(archive));
    assert_eq!(skopeo(&["inspect", "--raw", &archive_ref]), raw);

    assert_umoci_unpacks(&format!("{}:{TAG}", s(layout)), closure);
}

#[rstest]
#[case::x86_64("x86_64-linux")]
#[case::aarch64("aarch64-linux")]
#[case::armv7l("armv7l-linux")]
#[case::riscv64("riscv64-linux")]
fn our_docker_archive_reads_back(#[case] name: &str) {
    let arch = row(name);
    let Some(closure) = closure_or_skip(arch) else {
        return;
    };
    let im = images();
    let gz = im
        .docker_archive_for(arch)
        .expect("a docker-archive for every closure");
    assert!(gz.to_string_lossy().ends_with(".tar.gz"));

    // skopeo 1.9 cannot read a gzipped docker-archive: hand it the decompressed tar.
    let tmp = TempDir::new().unwrap();
    let plain = tmp.path().join("image.tar");
    let mut decoder = flate2::read::GzDecoder::new(fs::File::open(gz).unwrap());
    std::io::copy(&mut decoder, &mut fs::File::create(&plain).unwrap()).expect("valid gzip");
    let archive_ref = format!("docker-archive:{}", s(&plain));

    // Same layer tars, same config: the config is byte-identical to the OCI layout's.
    let raw_config = skopeo(&["inspect", "--config", "--raw", &archive_ref]);
    let layout = walk(im.oci_layout_for(arch).unwrap());
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw_config)),
        layout.images[0].manifest["config"]["digest"]
    );
    let inspect = skopeo_json(&["inspect", &archive_ref]);
    assert_eq!(inspect["Architecture"], arch.oci_arch);
    // skopeo does not report a docker-archive's tags: read manifest.json itself.
    let entries = tar_entries(&fs::read(&plain).unwrap());
    let (.., saved) = entries
        .iter()
        .find(|(p, ..)| p == "manifest.json")
        .expect("docker save's manifest.json");
    let saved: Value = serde_json::from_slice(saved).unwrap();
    assert_eq!(saved[0]["RepoTags"], json!([REPO_TAG]));
    assert_eq!(
        saved[0]["Layers"].as_array().unwrap().len(),
        2,
        "one per store path"
    );

    // skopeo checks every layer against its diff_id while copying; umoci unpacks the copy.
    let copy = tmp.path().join("copy");
    skopeo(&[
        "copy",
        "-q",
        &archive_ref,
        &format!("oci:{}:{TAG}", s(&copy)),
    ]);
    assert_umoci_unpacks(&format!("{}:{TAG}", s(&copy)), closure);
}

#[rstest]
#[case::x86_64("x86_64-linux")]
#[case::aarch64("aarch64-linux")]
#[case::armv7l("armv7l-linux")]
#[case::riscv64("riscv64-linux")]
fn umoci_and_skopeo_images_read_back(#[case] name: &str) {
    let arch = row(name);
    let Some(closure) = closure_or_skip(arch) else {
        return;
    };
    let im = images();
    let layout = im
        .umoci_layout_for(arch)
        .expect("a umoci layout for every closure");

    let w = walk(layout);
    assert_eq!(w.faults, [], "{}", layout.display());
    let [image] = &w.images[..] else {
        panic!("one image in {}", layout.display())
    };
    // umoci 0.4.7 writes no platform into index.json and has no flag for the variant.
    assert_eq!(image.descriptor.get("platform"), None);
    assert_eq!(image.config_platform(), (arch.oci_arch.to_string(), None));
    assert_eq!(image.binary_platform().arch, arch);
    assert_umoci_unpacks(&format!("{}:{TAG}", s(layout)), closure);

    let docker = im.skopeo_docker_archive_for(arch).unwrap();
    let config = skopeo_json(&[
        "inspect",
        "--config",
        "--raw",
        &format!("docker-archive:{}", s(docker)),
    ]);
    assert_eq!(config["architecture"], arch.oci_arch);
    assert_eq!(config["rootfs"], image.config["rootfs"]);

    let oci = im.skopeo_oci_archive_for(arch).unwrap();
    let config = skopeo_json(&[
        "inspect",
        "--config",
        "--raw",
        &format!("oci-archive:{}:{TAG}", s(oci)),
    ]);
    assert_eq!(config, image.config);
}

#[test]
fn multi_layout_lists_three_platforms_each_readable() {
    let im = images();
    let w = walk(&im.multi_layout);
    assert_eq!(w.faults, []);
    assert_eq!(w.depth, 0, "index.json lists the manifests directly");
    assert_eq!(w.images.len(), 3);
    for (image, arch) in w.images.iter().zip(&im.multi_rows) {
        assert_eq!(image.entry_platform(), expected_platform(arch));
        assert_eq!(image.config_platform(), expected_platform(arch));
        assert_eq!(image.binary_platform().arch, *arch);
        assert_eq!(
            image.descriptor["annotations"]["org.opencontainers.image.ref.name"],
            TAG
        );

        // Every entry as its own layout, for skopeo and umoci (both refuse an ambiguous tag).
        let view = single_entry_view(&im.multi_layout, &image.descriptor);
        let view_ref = format!("oci:{}:{TAG}", s(view.path()));
        let config = skopeo_json(&["inspect", "--config", "--raw", &view_ref]);
        assert_eq!(platform_of(&config), expected_platform(arch));
        let closure = fixtures().nix_for(arch).unwrap();
        assert_umoci_unpacks(&format!("{}:{TAG}", s(view.path())), closure);
    }
}

#[test]
fn multi_archive_is_a_tar_of_the_multi_layout() {
    let im = images();
    let tmp = TempDir::new().unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&im.multi_archive)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = ["oci-layout", "index.json"]
            .iter()
            .map(|n| (n.to_string(), fs::read(dir.join(n)).unwrap()))
            .collect();
        for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let p = e.unwrap().path();
            out.push((
                p.file_name().unwrap().to_string_lossy().into(),
                fs::read(&p).unwrap(),
            ));
        }
        out.sort();
        out
    };
    assert_eq!(files(tmp.path()), files(&im.multi_layout));
    // skopeo resolves the shared tag to one of the three manifests.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:{TAG}", s(&im.multi_archive)),
    ]);
    let digests: Vec<Value> = walk(&im.multi_layout)
        .images
        .iter()
        .map(|i| i.descriptor["digest"].clone())
        .collect();
    assert!(digests.contains(&json!(format!("sha256:{}", sha256_hex(&raw)))));
}

#[rstest]
#[case::x86_64("x86_64-linux")]
#[case::aarch64("aarch64-linux")]
#[case::armv7l("armv7l-linux")]
fn nested_index_selects_each_platform(#[case] name: &str) {
    let arch = row(name);
    let im = images();
    let nested_ref = format!("oci:{}:{TAG}", s(&im.nested_index));

    let index = skopeo_json(&["inspect", "--raw", &nested_ref]);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let platforms: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| platform_of(&m["platform"]))
        .collect();
    let expected: Vec<_> = im.multi_rows.iter().map(|a| expected_platform(a)).collect();
    assert_eq!(platforms, expected);

    let w = walk(&im.nested_index);
    assert_eq!(w.faults, []);
    assert_eq!(w.depth, 1);

    let mut args = override_flags(arch);
    args.extend(["inspect", "--config", "--raw", &nested_ref]);
    let config = skopeo_json(&args);
    assert_eq!(platform_of(&config), expected_platform(arch));

    // Select the platform (umoci calls an index tag ambiguous), then unpack it.
    let tmp = TempDir::new().unwrap();
    let out = format!("oci:{}:{TAG}", s(&tmp.path().join("one")));
    let mut args = override_flags(arch);
    args.extend(["copy", "-q", &nested_ref, &out]);
    skopeo(&args);
    let closure = fixtures().nix_for(arch).unwrap();
    assert_umoci_unpacks(&format!("{}:{TAG}", s(&tmp.path().join("one"))), closure);
}

#[test]
fn zstd_variant_has_zstd_layers_that_skopeo_recompresses() {
    let im = images();
    let w = walk(&im.zstd_layout);
    assert_eq!(w.faults, [], "every zstd layer decodes to its diff_id");
    let image = &w.images[0];
    for l in image.manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    // umoci 0.4.7 cannot unpack zstd layers: let skopeo recompress them to gzip first.
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("gzip");
    skopeo(&[
        "copy",
        "-q",
        "--dest-compress",
        "--dest-compress-format",
        "gzip",
        &format!("oci:{}:{TAG}", s(&im.zstd_layout)),
        &format!("oci:{}:{TAG}", s(&out)),
    ]);
    let closure = fixtures().nix_for(row("x86_64-linux")).unwrap();
    assert_umoci_unpacks(&format!("{}:{TAG}", s(&out)), closure);
}

#[test]
fn uncompressed_variant_has_tar_layers_whose_digest_is_the_diff_id() {
    let im = images();
    let w = walk(&im.uncompressed_layout);
    assert_eq!(w.faults, []);
    let image = &w.images[0];
    let layers = image.manifest["layers"].as_array().unwrap();
    for (l, diff_id) in layers
        .iter()
        .zip(image.config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(&l["digest"], diff_id);
    }
    let closure = fixtures().nix_for(row("x86_64-linux")).unwrap();
    assert_umoci_unpacks(&format!("{}:{TAG}", s(&im.uncompressed_layout)), closure);
}

#[test]
fn docker_manifest_list_uses_docker_media_types_throughout() {
    let im = images();
    let dir = &im.docker_manifest_list;
    let top = read_json(&dir.join("index.json"));
    assert_eq!(top["manifests"][0]["mediaType"], DOCKER_LIST);
    let w = walk(dir);
    assert_eq!(w.faults, []);
    assert_eq!(w.depth, 1);
    assert_eq!(w.images.len(), 3);
    for (image, arch) in w.images.iter().zip(&im.multi_rows) {
        assert_eq!(image.descriptor["mediaType"], DOCKER_MANIFEST);
        assert_eq!(image.entry_platform(), expected_platform(arch));
        assert_eq!(image.config_platform(), expected_platform(arch));
        assert_eq!(image.manifest["config"]["mediaType"], DOCKER_CONFIG);
        for l in image.manifest["layers"].as_array().unwrap() {
            assert_eq!(l["mediaType"], DOCKER_LAYER_GZIP);
        }
    }

    // skopeo 1.9 skips Docker media types in an OCI layout; its `dir:` transport reads the
    // same list, manifests and blobs.
    let list_digest = top["manifests"][0]["digest"].as_str().unwrap();
    let blobs = dir.join("blobs/sha256");
    let view = TempDir::new().unwrap();
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    fs::copy(
        blobs.join(hex(list_digest)),
        view.path().join("manifest.json"),
    )
    .unwrap();
    for image in &w.images {
        let h = hex(image.descriptor["digest"].as_str().unwrap());
        fs::copy(
            blobs.join(&h),
            view.path().join(format!("{h}.manifest.json")),
        )
        .unwrap();
    }
    for e in fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        symlink(e.path(), view.path().join(e.file_name())).unwrap();
    }
    fs::write(
        view.path().join("version"),
        "Directory Transport Version: 1.1\n",
    )
    .unwrap();
    let dir_ref = format!("dir:{}", s(view.path()));
    let list = skopeo_json(&["inspect", "--raw", &dir_ref]);
    assert_eq!(list["mediaType"], DOCKER_LIST);
    for arch in &im.multi_rows {
        let mut args = override_flags(arch);
        args.extend(["inspect", "--config", "--raw", &dir_ref]);
        assert_eq!(platform_of(&skopeo_json(&args)), expected_platform(arch));
    }
}

// ---------------------------------------------------------------------------------------
// Broken fixtures: complete layouts, each wrong in exactly one way

fn first_layer(w: &Walk) -> String {
    w.images[0].manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn lying_config_claims_amd64_for_arm64_binaries() {
    let w = walk(&images().broken.lying_config);
    assert_eq!(w.faults, []);
    let image = &w.images[0];
    let amd64 = expected_platform(row("x86_64-linux"));
    assert_eq!(image.entry_platform(), amd64);
    assert_eq!(image.config_platform(), amd64);
    assert_eq!(image.binary_platform().arch, row("aarch64-linux"));
}

#[test]
fn swapped_index_entries_point_at_each_others_manifests() {
    let w = walk(&images().broken.swapped_index);
    assert_eq!(w.faults, []);
    let (amd64, arm64) = (row("x86_64-linux"), row("aarch64-linux"));
    let seen: Vec<_> = w
        .images
        .iter()
        .map(|i| {
            (
                i.entry_platform(),
                i.config_platform(),
                i.binary_platform().arch,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (expected_platform(amd64), expected_platform(arm64), arm64),
            (expected_platform(arm64), expected_platform(amd64), amd64),
        ]
    );
}

#[test]
fn softfloat_v7_holds_armv5tel_binaries() {
    let w = walk(&images().broken.softfloat_v7);
    assert_eq!(w.faults, []);
    let image = &w.images[0];
    let v7 = expected_platform(row("armv7l-linux"));
    assert_eq!(image.entry_platform(), v7);
    assert_eq!(image.config_platform(), v7);
    assert_eq!(image.binary_platform().arch, row("armv5tel-linux"));
}

#[test]
fn duplicate_platform_lists_arm64_twice() {
    let w = walk(&images().broken.duplicate_platform);
    assert_eq!(w.faults, []);
    let arm64 = row("aarch64-linux");
    assert_eq!(w.images.len(), 2);
    assert_ne!(
        w.images[0].descriptor["digest"],
        w.images[1].descriptor["digest"]
    );
    for image in &w.images {
        assert_eq!(image.entry_platform(), expected_platform(arm64));
        assert_eq!(image.config_platform(), expected_platform(arm64));
        assert_eq!(image.binary_platform().arch, arm64);
    }
}

#[test]
fn missing_blob_lacks_only_its_first_layer() {
    let w = walk(&images().broken.missing_blob);
    assert_eq!(w.faults, [Fault::Missing(first_layer(&w))]);
}

#[test]
fn digest_mismatch_changes_one_byte_but_not_the_tar() {
    let w = walk(&images().broken.digest_mismatch);
    // Same size, same uncompressed tar (diff_id right), other digest.
    assert_eq!(w.faults, [Fault::Digest(first_layer(&w))]);
}

#[test]
fn diff_id_mismatch_has_a_wrong_first_diff_id() {
    let w = walk(&images().broken.diff_id_mismatch);
    assert_eq!(
        w.faults,
        [Fault::DiffId {
            layer: first_layer(&w)
        }]
    );
}

#[test]
fn mixed_media_types_lists_docker_manifests_in_an_oci_index() {
    let dir = &images().broken.mixed_media_types;
    let w = walk(dir);
    assert_eq!(w.faults, []);
    assert_eq!(read_json(&dir.join("index.json"))["mediaType"], OCI_INDEX);
    assert_eq!(w.images.len(), 2);
    for image in &w.images {
        assert_eq!(image.descriptor["mediaType"], DOCKER_MANIFEST);
        assert_eq!(image.manifest["mediaType"], DOCKER_MANIFEST);
        assert_eq!(image.manifest["config"]["mediaType"], DOCKER_CONFIG);
        assert_eq!(image.config_platform(), image.entry_platform());
    }
}

#[rstest]
#[case::larger(true)]
#[case::smaller(false)]
fn size_lies_only_in_the_descriptor(#[case] larger: bool) {
    let b = &images().broken;
    let w = walk(if larger {
        &b.size_larger
    } else {
        &b.size_smaller
    });
    let [
        Fault::Size {
            digest,
            said,
            found,
        },
    ] = &w.faults[..]
    else {
        panic!("one size fault: {:?}", w.faults)
    };
    assert_eq!(digest, &first_layer(&w));
    assert_eq!(said > found, larger, "said {said}, found {found}");
}

#[test]
fn truncated_blob_is_half_its_layer() {
    let w = walk(&images().broken.truncated_blob);
    let layer = first_layer(&w);
    let size = w.images[0].manifest["layers"][0]["size"].as_u64().unwrap();
    assert_eq!(
        w.faults,
        [
            Fault::Size {
                digest: layer.clone(),
                said: size,
                found: size / 2
            },
            Fault::Digest(layer.clone()),
            Fault::Undecodable(layer),
        ]
    );
}

#[test]
fn json_too_large_has_a_config_over_4_mib() {
    let w = walk(&images().broken.json_too_large);
    assert_eq!(w.faults, []);
    let config_size = w.images[0].manifest["config"]["size"].as_u64().unwrap();
    assert!(config_size > 4 << 20, "{config_size}");
    let env = w.images[0].config["config"]["Env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|e| e.as_str().unwrap().len() > HUGE_ENV_SIZE)
    );
}

#[test]
fn deep_nesting_has_ten_index_levels() {
    let w = walk(&images().broken.deep_nesting);
    assert_eq!(w.faults, []);
    assert_eq!(w.depth, 10);
    assert_eq!(w.images.len(), 1);
}

#[test]
fn every_broken_fixture_is_a_layout() {
    let b = &images().broken;
    for (name, dir) in b.all() {
        assert_eq!(dir.file_name().unwrap(), name);
        assert!(
            dir.join("oci-layout").is_file() && dir.join("index.json").is_file(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Hostile layers: valid layouts whose one layer holds exactly the crafted entries

fn hostile_entries(dir: &Path) -> Vec<(String, tar::EntryType, String, Vec<u8>)> {
    let w = walk(dir);
    assert_eq!(w.faults, [], "{}", dir.display());
    let [image] = &w.images[..] else {
        panic!("one image in {}", dir.display())
    };
    assert_eq!(image.layers.len(), 1);
    tar_entries(&image.layers[0])
}

#[rstest]
#[case::dotdot("dotdot", &[("../../escape", "Regular", "")])]
#[case::absolute("absolute", &[("/etc/passwd", "Regular", "")])]
#[case::symlink_escape("symlink_escape", &[("evil", "Symlink", "../../../../tmp")])]
#[case::symlink_chain_escape(
    "symlink_chain_escape",
    &[("a", "Symlink", "b"), ("b", "Symlink", "../.."), ("a/x", "Regular", "")]
)]
#[case::hardlink_escape(
    "hardlink_escape",
    &[("inside", "Regular", ""), ("link", "Link", "../../outside")]
)]
#[case::device_node("device_node", &[("dev/mem", "Char", "")])]
#[case::duplicate_entry(
    "duplicate_entry",
    &[("etc/config", "Regular", ""), ("etc/config", "Regular", "")]
)]
#[case::whiteout_dotdot("whiteout_dotdot", &[("dir/", "Directory", ""), ("dir/.wh...", "Regular", "")])]
fn hostile_layer_holds_the_crafted_entries(
    #[case] name: &str,
    #[case] expected: &[(&str, &str, &str)],
) {
    let h = &images().hostile;
    let dir = h
        .all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| d.to_path_buf())
        .unwrap();
    let entries = hostile_entries(&dir);
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|(p, t, l, _)| (p.clone(), format!("{t:?}"), l.clone()))
        .collect();
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(p, t, l)| (p.to_string(), t.to_string(), l.to_string()))
        .collect();
    assert_eq!(seen, expected);
    if name == "duplicate_entry" {
        assert_ne!(entries[0].3, entries[1].3, "the two copies differ");
    }
}

#[test]
fn gzip_bomb_is_small_and_expands_past_the_limit() {
    let dir = &images().hostile.gzip_bomb;
    let w = walk_with(dir, false);
    assert_eq!(w.faults, []);
    let layer = &w.images[0].manifest["layers"][0];
    let size = layer["size"].as_u64().unwrap();
    assert!(size < 1 << 20, "compressed to {size} bytes");
    let blob = w.blob_path(layer["digest"].as_str().unwrap());
    // gzip's trailer: uncompressed size mod 2^32 (here exact): header + zeros + end blocks.
    let bytes = fs::read(&blob).unwrap();
    let isize = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
    assert_eq!(u64::from(isize), 512 + BOMB_SIZE + 1024);
    // The diff_id is right, so a reader with a higher limit accepts the layer.
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc \"$1\" | sha256sum")
        .arg("sh")
        .arg(&blob)
        .output()
        .unwrap();
    assert!(out.status.success());
    let sum = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        w.images[0].config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", &sum[..64])
    );
}

#[test]
fn every_hostile_fixture_is_a_linux_amd64_layout() {
    let h = &images().hostile;
    for (name, dir) in h.all() {
        assert_eq!(dir.file_name().unwrap(), name);
        let w = walk_with(dir, false);
        assert_eq!(w.faults, [], "{name}");
        assert_eq!(w.images.len(), 1, "{name}");
        assert_eq!(
            w.images[0].config_platform(),
            expected_platform(row("x86_64-linux"))
        );
    }
}
