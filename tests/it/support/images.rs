//! Container image fixtures, built once per target dir into `<target>/mab-fixtures/images-v1/`.
//!
//! The root filesystems are the Nix-like closures of `fixtures()`: one layer per store path
//! (as nixpkgs `dockerTools.buildLayeredImage` does), `Cmd` the demo's store path, `Env`
//! `PATH=/bin`. Built under `images-v1.lock` behind a `.complete` stamp that fingerprints
//! this file, `src/write/*` and the closures' own stamp.
//!
//! Layout below `images-v1/` (`<key>` is the row's key; every layout's image is tagged
//! [`TAG`] through the `org.opencontainers.image.ref.name` annotation of `index.json`):
//! - `docker-archive/<key>.tar.gz`   dockerTools-like gzipped `docker save` archive (our writer)
//! - `oci/<key>/`, `oci-archive/<key>.tar`   OCI layout and archive, gzip layers (our writer)
//! - `umoci/<key>/`                  layout written by `umoci init/new/insert/config`
//! - `skopeo/<key>-docker.tar`, `skopeo/<key>-oci.tar`   `skopeo copy` of the umoci layout
//! - `multi/layout/`, `multi/archive.tar`   index.json → 3 manifests with platforms
//! - `multi/nested/`                 index.json → one index blob → 3 manifests
//! - `multi/docker-list/`            index.json → Docker manifest list → Docker manifests
//! - `variants/{zstd,uncompressed}/` the x86_64 image with zstd / uncompressed layers
//! - `broken/<name>/`, `hostile/<name>/`   see [`BrokenImages`] and [`HostileImages`]

use super::{NixClosure, fixtures, fixtures_base, row};
use mab_verify::platform::{Arch, Platform};
use mab_verify::write::layout::{image_config, with_ref_name};
use mab_verify::write::{
    Compression, DockerArchive, Flavour, LayerInfo, LayoutWriter, RunConfig, Sha256,
    write_oci_archive,
};
use oci_spec::image::Descriptor;
use sha2::Digest as _;
use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Bump when the layout changes in a way the fingerprint cannot see.
pub const IMAGES_VERSION: &str = "images-v1";
/// The ref name of every image in every layout and OCI archive.
pub const TAG: &str = "latest";
/// The `RepoTags` entry of every docker-archive.
pub const REPO_TAG: &str = "multi-arch-demo:latest";
/// Rows that get per-platform images when their closure exists (riscv64 is optional).
pub const IMAGE_ROWS: &[&str] = &[
    "x86_64-linux",
    "aarch64-linux",
    "armv7l-linux",
    "riscv64-linux",
];
/// The rows of the multi-platform fixtures, in index order.
pub const MULTI_ROWS: &[&str] = &["x86_64-linux", "aarch64-linux", "armv7l-linux"];
/// Uncompressed size of the one file in `hostile.gzip_bomb`.
pub const BOMB_SIZE: u64 = 256 << 20;
/// Size of the `Env` junk that makes `broken.json_too_large`'s config exceed 4 MiB.
pub const HUGE_ENV_SIZE: usize = 5 << 20;
/// `created`, and every tar mtime: the epoch, as dockerTools does.
const MTIME: u64 = 0;

/// Every image fixture. Per-platform lists hold the rows of [`IMAGE_ROWS`] that have a closure.
#[derive(Debug)]
pub struct ImageFixtures {
    /// `<target>/mab-fixtures/images-v1`.
    pub dir: PathBuf,
    /// dockerTools-like `.tar.gz` docker-archives written by `mab_verify::write`.
    pub docker_archive: Vec<(&'static Arch, PathBuf)>,
    /// OCI layouts (gzip layers) written by `mab_verify::write`.
    pub oci_layout: Vec<(&'static Arch, PathBuf)>,
    /// The same layouts as OCI archives.
    pub oci_archive: Vec<(&'static Arch, PathBuf)>,
    /// Layouts made by umoci. umoci 0.4.7's `config` has no variant flag: arm/v7's config
    /// and index entry carry no `variant`, and its `index.json` entries have no `platform`.
    pub umoci_layout: Vec<(&'static Arch, PathBuf)>,
    /// `skopeo copy oci:<umoci layout>:latest docker-archive:…:multi-arch-demo:latest`.
    pub skopeo_docker_archive: Vec<(&'static Arch, PathBuf)>,
    /// `skopeo copy oci:<umoci layout>:latest oci-archive:…:latest`.
    pub skopeo_oci_archive: Vec<(&'static Arch, PathBuf)>,
    /// The rows of `multi_*`, `nested_index` and `docker_manifest_list`, in index order.
    pub multi_rows: Vec<&'static Arch>,
    /// `index.json` → 3 image manifests, each entry with `platform` and ref name [`TAG`].
    pub multi_layout: PathBuf,
    /// `multi_layout` as an OCI archive.
    pub multi_archive: PathBuf,
    /// `index.json` → (ref [`TAG`]) one index blob → 3 manifests with platforms.
    pub nested_index: PathBuf,
    /// The x86_64 image with zstd layers.
    pub zstd_layout: PathBuf,
    /// The x86_64 image with uncompressed layers.
    pub uncompressed_layout: PathBuf,
    /// `index.json` (OCI, the layout's envelope) → (ref [`TAG`]) a Docker manifest list →
    /// 3 Docker v2s2 manifests, Docker config and gzip layer media types.
    pub docker_manifest_list: PathBuf,
    pub broken: BrokenImages,
    pub hostile: HostileImages,
}

/// Complete layouts with one deliberate fault each; every image is tagged [`TAG`] unless said.
#[derive(Debug)]
pub struct BrokenImages {
    /// Config and index entry say linux/amd64; the layers are the aarch64 closure.
    pub lying_config: PathBuf,
    /// Entry 0 says linux/amd64 but points at the arm64 manifest, entry 1 the other way
    /// round (configs are truthful). Entries carry ref names `amd64` and `arm64`.
    pub swapped_index: PathBuf,
    /// linux/arm/v7 entry and config; the binaries are the armv5tel (soft-float) closure.
    pub softfloat_v7: PathBuf,
    /// Two entries, both linux/arm64, to two distinct (truthful) arm64 manifests; ref names
    /// `first` and `second`.
    pub duplicate_platform: PathBuf,
    /// The x86_64 image with its first layer's blob file deleted.
    pub missing_blob: PathBuf,
    /// The x86_64 image; its first layer's blob has one byte changed (the gzip header's OS
    /// byte: it still decompresses to the tar of the diff_id), file name and size kept.
    pub digest_mismatch: PathBuf,
    /// The x86_64 image; the config's first `rootfs.diff_ids` entry is wrong.
    pub diff_id_mismatch: PathBuf,
    /// OCI `index.json` listing Docker v2s2 manifests (x86_64 and aarch64, ref names
    /// `amd64`, `arm64`) directly, as podman's `manifest create` does.
    pub mixed_media_types: PathBuf,
    /// The x86_64 image; the manifest's first layer descriptor says 1000 bytes more.
    pub size_larger: PathBuf,
    /// The x86_64 image; the manifest's first layer descriptor says half the size.
    pub size_smaller: PathBuf,
    /// The x86_64 image; its first layer's blob cut to half, descriptor unchanged.
    pub truncated_blob: PathBuf,
    /// The x86_64 image with a config over 4 MiB (an `Env` entry of [`HUGE_ENV_SIZE`]).
    pub json_too_large: PathBuf,
    /// The x86_64 image under 10 nested index blobs (`index.json` → index ×10 → manifest).
    pub deep_nesting: PathBuf,
}

/// One-platform (linux/amd64) layouts whose single gzip layer is crafted.
#[derive(Debug)]
pub struct HostileImages {
    /// A file `../../escape`.
    pub dotdot: PathBuf,
    /// A file `/etc/passwd`.
    pub absolute: PathBuf,
    /// A symlink `evil -> ../../../../tmp`.
    pub symlink_escape: PathBuf,
    /// `a -> b`, `b -> ../..`, then a file `a/x`.
    pub symlink_chain_escape: PathBuf,
    /// A file `inside`, then a hardlink `link` to `../../outside`.
    pub hardlink_escape: PathBuf,
    /// A character device `dev/mem` (1, 1).
    pub device_node: PathBuf,
    /// `etc/config` twice with different contents.
    pub duplicate_entry: PathBuf,
    /// A directory `dir/` and a whiteout `dir/.wh..` + `.` (= `dir/.wh...`).
    pub whiteout_dotdot: PathBuf,
    /// A file `zeros` of [`BOMB_SIZE`] zero bytes, gzipped to well under 1 MiB.
    pub gzip_bomb: PathBuf,
}

impl ImageFixtures {
    pub fn docker_archive_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.docker_archive, arch)
    }
    pub fn oci_layout_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.oci_layout, arch)
    }
    pub fn oci_archive_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.oci_archive, arch)
    }
    pub fn umoci_layout_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.umoci_layout, arch)
    }
    pub fn skopeo_docker_archive_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.skopeo_docker_archive, arch)
    }
    pub fn skopeo_oci_archive_for(&self, arch: &Arch) -> Option<&Path> {
        for_arch(&self.skopeo_oci_archive, arch)
    }
}

impl BrokenImages {
    /// Every broken fixture with its name (the directory name below `broken/`).
    pub fn all(&self) -> [(&'static str, &Path); 13] {
        [
            ("lying_config", &self.lying_config),
            ("swapped_index", &self.swapped_index),
            ("softfloat_v7", &self.softfloat_v7),
            ("duplicate_platform", &self.duplicate_platform),
            ("missing_blob", &self.missing_blob),
            ("digest_mismatch", &self.digest_mismatch),
            ("diff_id_mismatch", &self.diff_id_mismatch),
            ("mixed_media_types", &self.mixed_media_types),
            ("size_larger", &self.size_larger),
            ("size_smaller", &self.size_smaller),
            ("truncated_blob", &self.truncated_blob),
            ("json_too_large", &self.json_too_large),
            ("deep_nesting", &self.deep_nesting),
        ]
        .map(|(n, p)| (n, p.as_path()))
    }
}

impl HostileImages {
    /// Every hostile fixture with its name (the directory name below `hostile/`).
    pub fn all(&self) -> [(&'static str, &Path); 9] {
        [
            ("dotdot", &self.dotdot),
            ("absolute", &self.absolute),
            ("symlink_escape", &self.symlink_escape),
            ("symlink_chain_escape", &self.symlink_chain_escape),
            ("hardlink_escape", &self.hardlink_escape),
            ("device_node", &self.device_node),
            ("duplicate_entry", &self.duplicate_entry),
            ("whiteout_dotdot", &self.whiteout_dotdot),
            ("gzip_bomb", &self.gzip_bomb),
        ]
        .map(|(n, p)| (n, p.as_path()))
    }
}

/// The path of `arch` in a per-platform list.
pub fn for_arch<'a>(list: &'a [(&'static Arch, PathBuf)], arch: &Arch) -> Option<&'a Path> {
    list.iter()
        .find(|(a, _)| *a == arch)
        .map(|(_, p)| p.as_path())
}

/// The image fixtures, built on first use (once per target dir, shared across processes).
pub fn images() -> &'static ImageFixtures {
    static IMAGES: OnceLock<Result<ImageFixtures, String>> = OnceLock::new();
    match IMAGES.get_or_init(prepare) {
        Ok(f) => f,
        Err(e) => panic!("image fixtures could not be built:\n{e}"),
    }
}

type R<T = ()> = Result<T, String>;

/// `.ctx("what")`: an error as text that says what was being done.
trait Ctx<T> {
    fn ctx(self, what: impl Display) -> R<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Where each fixture lives below `images-v1/`.
struct Paths {
    dir: PathBuf,
}

impl Paths {
    fn docker_archive(&self, arch: &Arch) -> PathBuf {
        self.dir
            .join("docker-archive")
            .join(format!("{}.tar.gz", arch.key()))
    }
    fn oci(&self, arch: &Arch) -> PathBuf {
        self.dir.join("oci").join(arch.key())
    }
    fn oci_archive(&self, arch: &Arch) -> PathBuf {
        self.dir
            .join("oci-archive")
            .join(format!("{}.tar", arch.key()))
    }
    fn umoci(&self, arch: &Arch) -> PathBuf {
        self.dir.join("umoci").join(arch.key())
    }
    fn skopeo(&self, arch: &Arch, kind: &str) -> PathBuf {
        self.dir
            .join("skopeo")
            .join(format!("{}-{kind}.tar", arch.key()))
    }
    fn multi(&self, name: &str) -> PathBuf {
        self.dir.join("multi").join(name)
    }
    fn variant(&self, name: &str) -> PathBuf {
        self.dir.join("variants").join(name)
    }
    fn broken(&self, name: &str) -> PathBuf {
        self.dir.join("broken").join(name)
    }
    fn hostile(&self, name: &str) -> PathBuf {
        self.dir.join("hostile").join(name)
    }
}

fn prepare() -> R<ImageFixtures> {
    let closures = fixtures();
    let base = fixtures_base();
    let paths = Paths {
        dir: base.join(IMAGES_VERSION),
    };
    let lock_path = base.join(format!("{IMAGES_VERSION}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ctx(format!("open {}", lock_path.display()))?;
    lock.lock().ctx(format!("lock {}", lock_path.display()))?;

    let fingerprint = fingerprint(&closures.dir);
    let stamp = paths.dir.join(".complete");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(fingerprint.as_str()) {
        if paths.dir.exists() {
            fs::remove_dir_all(&paths.dir).ctx(format!("remove {}", paths.dir.display()))?;
        }
        fs::create_dir_all(&paths.dir).ctx(format!("create {}", paths.dir.display()))?;
        let started = Instant::now();
        build_all(&paths)?;
        fs::write(&stamp, &fingerprint).ctx(format!("write {}", stamp.display()))?;
        eprintln!(
            "mab-verify image fixtures: built {} in {:.1?}",
            paths.dir.display(),
            started.elapsed()
        );
    }
    lock.unlock()
        .ctx(format!("unlock {}", lock_path.display()))?;
    Ok(scan(&paths))
}

/// The builder and writer sources, the closures' stamp, and the tools' versions.
fn fingerprint(closures: &Path) -> String {
    let mut h = sha2::Sha256::new();
    let sources = [
        include_str!("images.rs"),
        include_str!("../../../src/write/mod.rs"),
        include_str!("../../../src/write/layer.rs"),
        include_str!("../../../src/write/layout.rs"),
        include_str!("../../../src/write/archive.rs"),
    ];
    for text in sources {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.update(fs::read(closures.join(".complete")).unwrap_or_default());
    for tool in ["umoci", "skopeo"] {
        let version = Command::new(tool).arg("--version").output();
        h.update(format!("{tool} {:?}", version.map(|o| o.stdout)));
    }
    hex::encode(h.finalize())
}

/// The closure of a row, or why the image fixtures cannot do without it.
fn closure(name: &str) -> R<&'static NixClosure> {
    let arch = row(name);
    let fx = fixtures();
    fx.nix_for(arch).ok_or_else(|| {
        format!(
            "the image fixtures need the {name} closure: {}",
            fx.missing_reason(arch).unwrap_or("it was not built")
        )
    })
}

fn image_rows() -> Vec<&'static NixClosure> {
    IMAGE_ROWS
        .iter()
        .filter_map(|name| fixtures().nix_for(row(name)))
        .collect()
}

/// What a row's image runs: the demo, with `PATH=/bin`.
fn run_config(c: &NixClosure) -> RunConfig {
    RunConfig {
        cmd: Some(vec![c.bin_guest()]),
        env: vec!["PATH=/bin".to_string()],
        created: Some("1970-01-01T00:00:00Z".to_string()),
        history: Some("mab-verify image fixture".to_string()),
        ..RunConfig::default()
    }
}

/// The store paths of a closure, sorted: one layer each.
fn store_paths(c: &NixClosure) -> R<Vec<String>> {
    let store = c.root.join("nix/store");
    let mut names = fs::read_dir(&store)
        .ctx(format!("list {}", store.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()
        .ctx(format!("list {}", store.display()))?;
    names.sort();
    Ok(names)
}

/// One layer per store path of `c`, written into `layout`.
fn closure_layers(
    layout: &LayoutWriter,
    c: &NixClosure,
    compression: Compression,
) -> R<Vec<LayerInfo>> {
    store_paths(c)?
        .iter()
        .map(|name| {
            let src = c.root.join("nix/store").join(name);
            layout
                .add_layer(compression, MTIME, |l| {
                    l.tree(&src, &format!("nix/store/{name}"))
                })
                .ctx(format!("layer of {}", src.display()))
        })
        .collect()
}

/// A new layout at `dir` holding copies of `layers` from `from`.
fn layout_with(dir: &Path, from: &LayoutWriter, layers: &[LayerInfo]) -> R<LayoutWriter> {
    let layout = LayoutWriter::create(dir).ctx("create layout")?;
    for l in layers {
        let src = from.blob_path(&l.digest);
        fs::copy(&src, layout.blob_path(&l.digest)).ctx(format!("copy {}", src.display()))?;
    }
    Ok(layout)
}

/// The per-platform OCI layout of a row, kept open as the source of its layers.
struct Source {
    closure: &'static NixClosure,
    layout: LayoutWriter,
    layers: Vec<LayerInfo>,
}

impl Source {
    fn platform(&self) -> Platform {
        Platform::linux(self.closure.arch)
    }

    /// A copy of this image (layers copied, config and manifest rewritten) in a new layout.
    fn image_in(
        &self,
        dir: &Path,
        flavour: Flavour,
        platform: &Platform,
    ) -> R<(LayoutWriter, Descriptor)> {
        let layout = layout_with(dir, &self.layout, &self.layers)?;
        let desc = self.add_to(&layout, flavour, platform)?;
        Ok((layout, desc))
    }

    /// This image's config and manifest (layers must already be in `layout`).
    fn add_to(
        &self,
        layout: &LayoutWriter,
        flavour: Flavour,
        platform: &Platform,
    ) -> R<Descriptor> {
        layout
            .add_image(flavour, platform, &run_config(self.closure), &self.layers)
            .ctx("add image")
    }

    /// The blob file of layer `i`, in a layout that copied this image's layers.
    fn layer_blob(&self, layout: &LayoutWriter, i: usize) -> PathBuf {
        layout.blob_path(&self.layers[i].digest)
    }
}

fn build_all(paths: &Paths) -> R {
    for sub in ["docker-archive", "oci-archive", "umoci", "skopeo", "multi"] {
        let dir = paths.dir.join(sub);
        fs::create_dir_all(&dir).ctx(format!("create {}", dir.display()))?;
    }
    let rows = image_rows();
    // Phase one: every row's own OCI layout, the source of all later layers.
    let sources: Vec<Source> = parallel(
        rows.iter()
            .map(|&c| {
                move || -> R<Source> {
                    let layout = LayoutWriter::create(paths.oci(c.arch)).ctx("create layout")?;
                    let layers = closure_layers(&layout, c, Compression::Gzip)?;
                    let platform = Platform::linux(c.arch);
                    let image = layout
                        .add_image(Flavour::Oci, &platform, &run_config(c), &layers)
                        .ctx("add image")?;
                    layout
                        .write_index(vec![with_ref_name(image, TAG)])
                        .ctx("write index.json")?;
                    Ok(Source {
                        closure: c,
                        layout,
                        layers,
                    })
                }
            })
            .collect(),
    )?;
    let source = |name: &str| -> R<&Source> {
        let c = closure(name)?;
        sources
            .iter()
            .find(|s| s.closure.arch == c.arch)
            .ok_or_else(|| format!("no source image for {name}"))
    };
    let amd64 = source("x86_64-linux")?;
    let arm64 = source("aarch64-linux")?;
    let multi: Vec<&Source> = MULTI_ROWS.iter().map(|n| source(n)).collect::<R<_>>()?;
    let armel = closure("armv5tel-linux")?;

    // Longest first: the bomb streams 256 MiB through gzip.
    let mut jobs: Vec<Box<dyn FnOnce() -> R + Send + '_>> = vec![
        Box::new(|| build_hostile(paths, amd64.closure.arch)),
        Box::new(|| build_broken(paths, amd64, arm64, multi[2], armel)),
        Box::new(|| build_multi(paths, &multi)),
        Box::new(|| build_variants(paths, amd64.closure)),
    ];
    for s in &sources {
        jobs.push(Box::new(move || {
            write_oci_archive(s.layout.dir(), &paths.oci_archive(s.closure.arch), MTIME)
                .ctx("write OCI archive")
        }));
        jobs.push(Box::new(move || {
            build_docker_archive(s.closure, &paths.docker_archive(s.closure.arch))
        }));
        jobs.push(Box::new(move || build_with_tools(paths, s.closure)));
    }
    jobs.push(Box::new(|| build_multi(paths, &multi)));
    jobs.push(Box::new(|| build_variants(paths, amd64.closure)));
    jobs.push(Box::new(|| {
        build_broken(paths, amd64, arm64, multi[2], armel)
    }));
    jobs.push(Box::new(|| build_hostile(paths, amd64.closure.arch)));
    parallel(jobs)?;
    Ok(())
}

/// Runs the jobs on every core; all results, or every error.
fn parallel<T: Send, F: FnOnce() -> R<T> + Send>(jobs: Vec<F>) -> R<Vec<T>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let count = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let results: Mutex<Vec<(usize, R<T>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.min(count) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((i, job)) = next else { break };
                    let result = job();
                    results.lock().unwrap().push((i, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let (ok, errors): (Vec<_>, Vec<_>) = results.into_iter().map(|(_, r)| r).partition(R::is_ok);
    if errors.is_empty() {
        Ok(ok.into_iter().map(Result::unwrap).collect())
    } else {
        Err(errors
            .into_iter()
            .filter_map(Result::err)
            .collect::<Vec<_>>()
            .join("\n\n"))
    }
}

/// dockerTools-like: one uncompressed layer per store path, the whole archive gzipped.
fn build_docker_archive(c: &NixClosure, out: &Path) -> R {
    let ctx = format!("docker-archive {}", out.display());
    let file = File::create(out).ctx(&ctx)?;
    let mut archive = DockerArchive::new(BufWriter::new(file), true, MTIME).ctx(&ctx)?;
    for name in store_paths(c)? {
        let src = c.root.join("nix/store").join(&name);
        archive
            .add_layer(|l| l.tree(&src, &format!("nix/store/{name}")))
            .ctx(&ctx)?;
    }
    let out = archive
        .finish(&Platform::linux(c.arch), &run_config(c), REPO_TAG)
        .ctx(&ctx)?;
    out.into_inner().map_err(|e| e.into_error()).ctx(&ctx)?;
    Ok(())
}

/// Runs a tool; its stderr becomes the error.
fn tool(cmd: &mut Command) -> R {
    let out = cmd.output().ctx(format!("run {cmd:?}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// umoci builds a layout from the closure; skopeo copies it to a docker- and an OCI archive.
fn build_with_tools(paths: &Paths, c: &NixClosure) -> R {
    let layout = paths.umoci(c.arch);
    let image = format!("{}:{TAG}", layout.display());
    tool(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    )?;
    tool(Command::new("umoci").args(["new", "--image", &image]))?;
    tool(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(c.root.join("nix"))
            .arg("/nix"),
    )?;
    // No variant: umoci 0.4.7's `config` has no flag for it.
    tool(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        &c.bin_guest(),
        "--config.env",
        "PATH=/bin",
        "--architecture",
        c.arch.oci_arch,
        "--os",
        "linux",
    ]))?;
    let docker = paths.skopeo(c.arch, "docker");
    let oci = paths.skopeo(c.arch, "oci");
    let from = format!("oci:{image}");
    tool(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "-q",
        &from,
        &format!("docker-archive:{}:{REPO_TAG}", docker.display()),
    ]))?;
    tool(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "-q",
        &from,
        &format!("oci-archive:{}:{TAG}", oci.display()),
    ]))
}

fn build_multi(paths: &Paths, rows: &[&Source]) -> R {
    // index.json → 3 manifests.
    let dir = paths.multi("layout");
    let layout = LayoutWriter::create(&dir).ctx("create layout")?;
    let mut manifests = Vec::new();
    for s in rows {
        for l in &s.layers {
            fs::copy(s.layout.blob_path(&l.digest), layout.blob_path(&l.digest))
                .ctx("copy blob")?;
        }
        manifests.push(s.add_to(&layout, Flavour::Oci, &s.platform())?);
    }
    layout
        .write_index(
            manifests
                .iter()
                .cloned()
                .map(|d| with_ref_name(d, TAG))
                .collect(),
        )
        .ctx("write index.json")?;
    write_oci_archive(&dir, &paths.multi("archive.tar"), MTIME).ctx("write OCI archive")?;

    // index.json → index → 3 manifests: the same blobs plus one.
    let nested = copy_layout(&dir, &paths.multi("nested"))?;
    let index = nested.add_index(Flavour::Oci, manifests).ctx("add index")?;
    nested
        .write_index(vec![with_ref_name(index, TAG)])
        .ctx("write index.json")?;

    // The same images with Docker media types under a manifest list.
    let list_dir = paths.multi("docker-list");
    let docker = LayoutWriter::create(&list_dir).ctx("create layout")?;
    let mut entries = Vec::new();
    for s in rows {
        for l in &s.layers {
            fs::copy(s.layout.blob_path(&l.digest), docker.blob_path(&l.digest))
                .ctx("copy blob")?;
        }
        entries.push(s.add_to(&docker, Flavour::Docker, &s.platform())?);
    }
    let list = docker.add_index(Flavour::Docker, entries).ctx("add list")?;
    docker
        .write_index(vec![with_ref_name(list, TAG)])
        .ctx("write index.json")
}

/// A copy of the layout at `from` (blobs and `oci-layout`; no `index.json`).
fn copy_layout(from: &Path, to: &Path) -> R<LayoutWriter> {
    let layout = LayoutWriter::create(to).ctx("create layout")?;
    let blobs = from.join("blobs/sha256");
    for entry in fs::read_dir(&blobs).ctx("list blobs")? {
        let entry = entry.ctx("list blobs")?;
        fs::copy(
            entry.path(),
            to.join("blobs/sha256").join(entry.file_name()),
        )
        .ctx("copy blob")?;
    }
    Ok(layout)
}

fn build_variants(paths: &Paths, c: &NixClosure) -> R {
    for (name, compression) in [
        ("zstd", Compression::Zstd),
        ("uncompressed", Compression::None),
    ] {
        let layout = LayoutWriter::create(paths.variant(name)).ctx("create layout")?;
        let layers = closure_layers(&layout, c, compression)?;
        let image = layout
            .add_image(
                Flavour::Oci,
                &Platform::linux(c.arch),
                &run_config(c),
                &layers,
            )
            .ctx("add image")?;
        layout
            .write_index(vec![with_ref_name(image, TAG)])
            .ctx("write index.json")?;
    }
    Ok(())
}

fn build_broken(
    paths: &Paths,
    amd64: &Source,
    arm64: &Source,
    armv7: &Source,
    armel: &'static NixClosure,
) -> R {
    let tagged = |layout: &LayoutWriter, d: Descriptor| {
        layout
            .write_index(vec![with_ref_name(d, TAG)])
            .ctx("write index.json")
    };

    // Config and entry claim amd64; the content is arm64.
    let (layout, d) = arm64.image_in(
        &paths.broken("lying_config"),
        Flavour::Oci,
        &amd64.platform(),
    )?;
    tagged(&layout, d)?;

    // Each entry's platform is the other manifest's.
    let layout = layout_with(&paths.broken("swapped_index"), &amd64.layout, &amd64.layers)?;
    for l in &arm64.layers {
        fs::copy(
            arm64.layout.blob_path(&l.digest),
            layout.blob_path(&l.digest),
        )
        .ctx("copy blob")?;
    }
    let mut to_amd64 = amd64.add_to(&layout, Flavour::Oci, &amd64.platform())?;
    let mut to_arm64 = arm64.add_to(&layout, Flavour::Oci, &arm64.platform())?;
    let (p_amd64, p_arm64) = (to_amd64.platform().clone(), to_arm64.platform().clone());
    to_amd64.set_platform(p_arm64);
    to_arm64.set_platform(p_amd64);
    layout
        .write_index(vec![
            with_ref_name(to_arm64, "amd64"),
            with_ref_name(to_amd64, "arm64"),
        ])
        .ctx("write index.json")?;

    // arm/v7 claimed, armv5tel soft-float content.
    let layout = LayoutWriter::create(paths.broken("softfloat_v7")).ctx("create layout")?;
    let layers = closure_layers(&layout, armel, Compression::Gzip)?;
    let d = layout
        .add_image(Flavour::Oci, &armv7.platform(), &run_config(armel), &layers)
        .ctx("add image")?;
    tagged(&layout, d)?;

    // Two arm64 entries, two distinct manifests.
    let layout = layout_with(
        &paths.broken("duplicate_platform"),
        &arm64.layout,
        &arm64.layers,
    )?;
    let first = arm64.add_to(&layout, Flavour::Oci, &arm64.platform())?;
    let mut run = run_config(arm64.closure);
    run.env.push("IMAGE=second".to_string());
    let second = layout
        .add_image(Flavour::Oci, &arm64.platform(), &run, &arm64.layers)
        .ctx("add image")?;
    layout
        .write_index(vec![
            with_ref_name(first, "first"),
            with_ref_name(second, "second"),
        ])
        .ctx("write index.json")?;

    // Blob-level damage to the first layer of the amd64 image.
    let (layout, d) = amd64.image_in(
        &paths.broken("missing_blob"),
        Flavour::Oci,
        &amd64.platform(),
    )?;
    tagged(&layout, d)?;
    let victim = amd64.layer_blob(&layout, 0);
    fs::remove_file(&victim).ctx(format!("remove {}", victim.display()))?;

    let (layout, d) = amd64.image_in(
        &paths.broken("digest_mismatch"),
        Flavour::Oci,
        &amd64.platform(),
    )?;
    tagged(&layout, d)?;
    let victim = amd64.layer_blob(&layout, 0);
    let mut bytes = fs::read(&victim).ctx("read blob")?;
    bytes[9] ^= 0x01; // the gzip header's OS byte: same data, other digest
    fs::write(&victim, bytes).ctx("write blob")?;

    let (layout, d) = amd64.image_in(
        &paths.broken("truncated_blob"),
        Flavour::Oci,
        &amd64.platform(),
    )?;
    tagged(&layout, d)?;
    let victim = amd64.layer_blob(&layout, 0);
    let bytes = fs::read(&victim).ctx("read blob")?;
    fs::write(&victim, &bytes[..bytes.len() / 2]).ctx("write blob")?;

    // Config with a wrong diff_id.
    let layout = layout_with(
        &paths.broken("diff_id_mismatch"),
        &amd64.layout,
        &amd64.layers,
    )?;
    let mut diff_ids: Vec<Sha256> = amd64.layers.iter().map(|l| l.diff_id).collect();
    diff_ids[0] = Sha256::of(b"not the first layer");
    let config = image_config(&amd64.platform(), &run_config(amd64.closure), &diff_ids);
    let config = layout.add_json(&config).ctx("add config")?;
    let mut d = layout
        .add_manifest(Flavour::Oci, &config, &amd64.layers)
        .ctx("add manifest")?;
    d.set_platform(Some(mab_verify::write::layout::oci_platform(
        &amd64.platform(),
    )));
    tagged(&layout, d)?;

    // Docker manifests listed by an OCI index.
    let layout = layout_with(
        &paths.broken("mixed_media_types"),
        &amd64.layout,
        &amd64.layers,
    )?;
    for l in &arm64.layers {
        fs::copy(
            arm64.layout.blob_path(&l.digest),
            layout.blob_path(&l.digest),
        )
        .ctx("copy blob")?;
    }
    let a = amd64.add_to(&layout, Flavour::Docker, &amd64.platform())?;
    let b = arm64.add_to(&layout, Flavour::Docker, &arm64.platform())?;
    layout
        .write_index(vec![with_ref_name(a, "amd64"), with_ref_name(b, "arm64")])
        .ctx("write index.json")?;

    // Layer descriptors whose size lies.
    for (name, lie) in [
        ("size_larger", amd64.layers[0].size + 1000),
        ("size_smaller", amd64.layers[0].size / 2),
    ] {
        let layout = layout_with(&paths.broken(name), &amd64.layout, &amd64.layers)?;
        let diff_ids: Vec<Sha256> = amd64.layers.iter().map(|l| l.diff_id).collect();
        let config = image_config(&amd64.platform(), &run_config(amd64.closure), &diff_ids);
        let config = layout.add_json(&config).ctx("add config")?;
        let mut layers = amd64.layers.clone();
        layers[0].size = lie;
        let mut d = layout
            .add_manifest(Flavour::Oci, &config, &layers)
            .ctx("add manifest")?;
        d.set_platform(Some(mab_verify::write::layout::oci_platform(
            &amd64.platform(),
        )));
        tagged(&layout, d)?;
    }

    // A config over 4 MiB.
    let layout = layout_with(
        &paths.broken("json_too_large"),
        &amd64.layout,
        &amd64.layers,
    )?;
    let mut run = run_config(amd64.closure);
    run.env.push(format!("JUNK={}", "x".repeat(HUGE_ENV_SIZE)));
    let d = layout
        .add_image(Flavour::Oci, &amd64.platform(), &run, &amd64.layers)
        .ctx("add image")?;
    tagged(&layout, d)?;

    // Ten index blobs between index.json and the manifest.
    let (layout, mut d) = amd64.image_in(
        &paths.broken("deep_nesting"),
        Flavour::Oci,
        &amd64.platform(),
    )?;
    for _ in 0..10 {
        d = layout.add_index(Flavour::Oci, vec![d]).ctx("add index")?;
    }
    tagged(&layout, d)
}

/// A tar assembled header by header, for entries the `tar` crate (rightly) refuses.
struct RawTar(Vec<u8>);

impl RawTar {
    fn entry(&mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        let mode = match kind {
            tar::EntryType::Directory => 0o755,
            tar::EntryType::Symlink => 0o777,
            _ => 0o644,
        };
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        h.set_entry_type(kind);
        if kind == tar::EntryType::Char {
            h.set_device_major(1)
                .expect("GNU headers have device numbers");
            h.set_device_minor(1)
                .expect("GNU headers have device numbers");
        }
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0, pad));
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, "", data)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.0);
        bytes.extend([0; 1024]);
        bytes
    }
}

fn build_hostile(paths: &Paths, arch: &'static Arch) -> R {
    use tar::EntryType::{Char, Directory, Link, Symlink};
    let tars: [(&str, Vec<u8>); 8] = [
        (
            "dotdot",
            RawTar(vec![]).file("../../escape", b"escaped\n").finish(),
        ),
        (
            "absolute",
            RawTar(vec![])
                .file("/etc/passwd", b"root::0:0::/:/bin/sh\n")
                .finish(),
        ),
        (
            "symlink_escape",
            RawTar(vec![])
                .entry("evil", Symlink, "../../../../tmp", b"")
                .finish(),
        ),
        (
            "symlink_chain_escape",
            RawTar(vec![])
                .entry("a", Symlink, "b", b"")
                .entry("b", Symlink, "../..", b"")
                .file("a/x", b"through the chain\n")
                .finish(),
        ),
        (
            "hardlink_escape",
            RawTar(vec![])
                .file("inside", b"inside\n")
                .entry("link", Link, "../../outside", b"")
                .finish(),
        ),
        (
            "device_node",
            RawTar(vec![]).entry("dev/mem", Char, "", b"").finish(),
        ),
        (
            "duplicate_entry",
            RawTar(vec![])
                .file("etc/config", b"first\n")
                .file("etc/config", b"second\n")
                .finish(),
        ),
        (
            "whiteout_dotdot",
            RawTar(vec![])
                .entry("dir/", Directory, "", b"")
                .file("dir/.wh...", b"")
                .finish(),
        ),
    ];
    let platform = Platform::linux(arch);
    let run = RunConfig {
        cmd: Some(vec!["/bin/sh".to_string()]),
        env: vec!["PATH=/bin".to_string()],
        ..RunConfig::default()
    };
    let one_layer = |name: &str, layer: LayerInfo, layout: &LayoutWriter| -> R {
        let d = layout
            .add_image(Flavour::Oci, &platform, &run, &[layer])
            .ctx(format!("hostile/{name}"))?;
        layout
            .write_index(vec![with_ref_name(d, TAG)])
            .ctx(format!("hostile/{name}"))
    };
    for (name, tar) in tars {
        let layout = LayoutWriter::create(paths.hostile(name)).ctx("create layout")?;
        let layer = layout
            .add_layer_tar(&tar[..], Compression::Gzip)
            .ctx(format!("hostile/{name}"))?;
        one_layer(name, layer, &layout)?;
    }
    let layout = LayoutWriter::create(paths.hostile("gzip_bomb")).ctx("create layout")?;
    let layer = gzip_bomb(&layout).ctx("hostile/gzip_bomb")?;
    one_layer("gzip_bomb", layer, &layout)
}

/// A gzip layer whose tar holds [`BOMB_SIZE`] zero bytes, streamed through `gzip -n` and
/// `sha256sum`: unoptimised test builds of `sha2` and `miniz_oxide` take ~15 s for it.
fn gzip_bomb(layout: &LayoutWriter) -> R<LayerInfo> {
    let temp = tempfile::NamedTempFile::new_in(layout.dir()).ctx("create temp file")?;
    let out = temp.reopen().ctx("reopen temp file")?;
    let spawn = |cmd: &mut Command| {
        cmd.stdin(Stdio::piped())
            .spawn()
            .ctx(format!("run {cmd:?}"))
    };
    let mut gzip = spawn(Command::new("gzip").args(["-n", "-6", "-c"]).stdout(out))?;
    let mut sha = spawn(Command::new("sha256sum").stdout(Stdio::piped()))?;
    {
        let (mut to_gzip, mut to_sha) = (gzip.stdin.take().unwrap(), sha.stdin.take().unwrap());
        let mut both = |bytes: &[u8]| -> R {
            to_gzip.write_all(bytes).ctx("write to gzip")?;
            to_sha.write_all(bytes).ctx("write to sha256sum")
        };
        let mut header = tar::Header::new_gnu();
        header.set_path("zeros").ctx("tar header")?;
        header.set_mode(0o644);
        header.set_mtime(MTIME);
        header.set_size(BOMB_SIZE);
        header.set_cksum();
        both(header.as_bytes())?;
        let chunk = vec![0; 1 << 20];
        for _ in 0..BOMB_SIZE / chunk.len() as u64 {
            both(&chunk)?;
        }
        both(&[0; 1024])?; // BOMB_SIZE is a multiple of 512: no padding, just the end blocks
    }
    let status = gzip.wait().ctx("wait for gzip")?;
    let sum = sha.wait_with_output().ctx("wait for sha256sum")?;
    if !status.success() || !sum.status.success() {
        return Err(format!(
            "gzip ({status}) or sha256sum ({}) failed",
            sum.status
        ));
    }
    let hex_sum = String::from_utf8_lossy(&sum.stdout);
    let diff_id: [u8; 32] = hex::decode(&hex_sum[..64.min(hex_sum.len())])
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("sha256sum printed {hex_sum:?}"))?;
    let blob = layout.add_file(temp.path()).ctx("add blob")?;
    Ok(LayerInfo {
        digest: blob.digest,
        size: blob.size,
        diff_id: Sha256(diff_id),
        compression: Compression::Gzip,
    })
}

/// The fixtures below `paths` (all exist once the stamp is written).
fn scan(paths: &Paths) -> ImageFixtures {
    let rows: Vec<&'static Arch> = image_rows().iter().map(|c| c.arch).collect();
    let each = |f: &dyn Fn(&Arch) -> PathBuf| rows.iter().map(|a| (*a, f(a))).collect();
    ImageFixtures {
        dir: paths.dir.clone(),
        docker_archive: each(&|a| paths.docker_archive(a)),
        oci_layout: each(&|a| paths.oci(a)),
        oci_archive: each(&|a| paths.oci_archive(a)),
        umoci_layout: each(&|a| paths.umoci(a)),
        skopeo_docker_archive: each(&|a| paths.skopeo(a, "docker")),
        skopeo_oci_archive: each(&|a| paths.skopeo(a, "oci")),
        multi_rows: MULTI_ROWS.iter().map(|n| row(n)).collect(),
        multi_layout: paths.multi("layout"),
        multi_archive: paths.multi("archive.tar"),
        nested_index: paths.multi("nested"),
        zstd_layout: paths.variant("zstd"),
        uncompressed_layout: paths.variant("uncompressed"),
        docker_manifest_list: paths.multi("docker-list"),
        broken: BrokenImages {
            lying_config: paths.broken("lying_config"),
            swapped_index: paths.broken("swapped_index"),
            softfloat_v7: paths.broken("softfloat_v7"),
            duplicate_platform: paths.broken("duplicate_platform"),
            missing_blob: paths.broken("missing_blob"),
            digest_mismatch: paths.broken("digest_mismatch"),
            diff_id_mismatch: paths.broken("diff_id_mismatch"),
            mixed_media_types: paths.broken("mixed_media_types"),
            size_larger: paths.broken("size_larger"),
            size_smaller: paths.broken("size_smaller"),
            truncated_blob: paths.broken("truncated_blob"),
            json_too_large: paths.broken("json_too_large"),
            deep_nesting: paths.broken("deep_nesting"),
        },
        hostile: HostileImages {
            dotdot: paths.hostile("dotdot"),
            absolute: paths.hostile("absolute"),
            symlink_escape: paths.hostile("symlink_escape"),
            symlink_chain_escape: paths.hostile("symlink_chain_escape"),
            hardlink_escape: paths.hostile("hardlink_escape"),
            device_node: paths.hostile("device_node"),
            duplicate_entry: paths.hostile("duplicate_entry"),
            whiteout_dotdot: paths.hostile("whiteout_dotdot"),
            gzip_bomb: paths.hostile("gzip_bomb"),
        },
    }
}
