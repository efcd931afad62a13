//! Reads docker-archives, OCI layouts and OCI archives (indexes, nested indexes, Docker manifest
//! lists) into facts: every blob's declared and actual digest, every image's config and final
//! rootfs. Each blob is read once, as a stream.

pub mod docs;
pub mod dump;
pub mod extract;
pub mod gotar;
pub mod layer;
pub mod parallel;
mod plain;
pub mod reference;
pub mod script;
pub mod source;
pub mod view;

use docs::{Config, Descriptor, DockerArchiveEntry, Index, Manifest, PlatformDoc};
use serde::Serialize;
use source::Source;
use std::io::Read;
use std::path::{Path, PathBuf};
use view::View;

/// Bounds on what a hostile input can make the reader do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_json: u64,
    pub max_nesting: usize,
    /// Per image, summed over its layers (and for a compressed archive, the archive itself).
    pub max_uncompressed: u64,
    /// Larger files are listed but their bytes are not parsed.
    pub max_binary_bytes: u64,
    /// Most distinct images (manifest digests) one input may hold.
    pub max_images: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json: 4 * 1024 * 1024,
            max_nesting: 8,
            max_uncompressed: 8 * 1024 * 1024 * 1024,
            max_binary_bytes: 512 * 1024 * 1024,
            max_images: MAX_IMAGES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Input that is malformed or crafted: refused, never half-read.
    #[error("{0}")]
    Hostile(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ImageError {
    /// Note how far a stream got before a limit stopped it.
    pub fn with_count(self, count: u64) -> ImageError {
        match self {
            ImageError::Hostile(m) => {
                ImageError::Hostile(format!("{m}; stopped after {count} bytes"))
            }
            other => other,
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How a blob is stored; gzip written at level 6 with no name and mtime 0, zstd at level 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            // RFC 8878 skippable frames (magic 0x184D2A5?), which zstd decoders skip.
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn decoder<'a, R: std::io::BufRead + 'a>(
        self,
        inner: R,
    ) -> std::io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(inner),
            // pigz and some tools write several gzip members; all of them are the layer.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(inner)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(inner)?),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    OciLayout,
    OciArchive,
    DockerArchive,
}

/// One blob as referenced and as found.
#[derive(Debug, Clone, Serialize)]
pub struct BlobFacts {
    /// `manifest`, `config`, `layer 2`, `index`.
    pub role: String,
    pub referenced_by: String,
    pub media_type: String,
    pub declared_digest: Option<String>,
    pub declared_size: Option<u64>,
    /// `None` when the blob is missing.
    pub actual_digest: Option<String>,
    pub actual_size: Option<u64>,
    /// What else went wrong reading it (a damaged layer that does not decompress).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerFacts {
    pub digest: String,
    pub media_type: String,
    pub compression: Option<Compression>,
    pub diff_id: Option<String>,
    pub declared_diff_id: Option<String>,
    pub files: usize,
    /// Why a layer that is not the blob its descriptor names could not be read as a layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// Its facts came from the fact cache (`crate::cache`) after its bytes were hashed again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_cache: bool,
}

/// One platform's image.
#[derive(Debug)]
pub struct ImageFacts {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// The platform the index entry claims, when it came from an index.
    pub index_platform: Option<PlatformDoc>,
    pub config_digest: String,
    pub config: Config,
    /// The config as stored, so it can be copied byte for byte.
    pub config_bytes: Vec<u8>,
    pub layers: Vec<LayerFacts>,
    pub blobs: Vec<BlobFacts>,
    pub view: View,
    /// The indexes that list it (`index.json`, a nested index's digest), once per listing,
    /// with the ref name of the listing when it has one (`index.json (ref latest)`).
    pub listed_in: Vec<String>,
    /// The `org.opencontainers.image.ref.name`s it is listed under, first listing first.
    pub ref_names: Vec<String>,
}

/// The default search path of a container whose config sets none (Docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An image's command line and what its first word resolves to in the rootfs.
pub struct Entrypoint {
    pub argv: Vec<String>,
    /// Canonical path inside the image.
    pub path: Option<String>,
    pub facts: Option<crate::inspect::BinaryFacts>,
}

impl ImageFacts {
    /// The config's `Env` as pairs, with Docker's default `PATH` when it sets none.
    pub fn env(&self) -> Vec<(String, String)> {
        let env = self
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let mut pairs: Vec<(String, String)> = env
            .iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        if !pairs.iter().any(|(k, _)| k == "PATH") {
            pairs.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        pairs
    }

    /// `Entrypoint` + `Cmd`, its first word looked up through `PATH` and symlinks in the rootfs.
    pub fn entrypoint(&self) -> Option<Entrypoint> {
        let cfg = self.config.config.as_ref()?;
        let mut argv = cfg.entrypoint.clone().unwrap_or_default();
        argv.extend(cfg.cmd.clone().unwrap_or_default());
        let first = argv.first()?.clone();
        // runc starts the process in WorkingDir, so a relative command and relative PATH
        // entries are found from there.
        let cwd = cfg
            .working_dir
            .as_deref()
            .filter(|w| !w.is_empty())
            .unwrap_or("/");
        let from_cwd = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("{}/{p}", cwd.trim_end_matches('/'))
            }
        };
        let candidates: Vec<String> = if first.contains('/') {
            vec![from_cwd(&first)]
        } else {
            let path = self
                .env()
                .into_iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v)
                .unwrap_or_default();
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| from_cwd(&format!("{}/{first}", d.trim_end_matches('/'))))
                .collect()
        };
        let resolved = candidates.iter().find_map(|c| {
            crate::rootfs::resolve_guest(&self.view, c).filter(|p| self.view.nodes.contains_key(p))
        });
        let facts = resolved.as_deref().and_then(|p| self.view.facts_at(p));
        Some(Entrypoint {
            argv,
            path: resolved,
            facts,
        })
    }
}

/// An index entry as listed (after flattening nested indexes).
#[derive(Debug, Clone, Serialize)]
pub struct IndexEntry {
    pub digest: String,
    pub media_type: String,
    pub platform: Option<PlatformDoc>,
    /// Media type of the index that lists it.
    pub listed_in: String,
}

#[derive(Debug)]
pub struct ImageSet {
    pub path: PathBuf,
    pub format: Format,
    pub entries: Vec<IndexEntry>,
    pub images: Vec<ImageFacts>,
    /// Index and manifest blobs (layer and config blobs sit with their image).
    pub blobs: Vec<BlobFacts>,
    /// buildx attestations and OCI artifacts: checked as blobs, never platforms.
    pub attachments: Vec<Attachment>,
    /// Indexes listed by an index other than a layout's `index.json` envelope (which may hold
    /// an OCI index or a Docker list alike), for `index.media-types`.
    pub nested: Vec<IndexEntry>,
    /// What a registry knows this input by (OCI only): the one descriptor `index.json`
    /// lists, or `index.json` itself when it lists several.
    pub root: Option<RootDescriptor>,
}

/// A manifest that is not an image to run: a buildx attestation (platform unknown/unknown)
/// or an OCI artifact. Its blobs are hashed, never walked.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub digest: String,
    /// `attestation` or `artifact`.
    pub kind: &'static str,
    pub artifact_type: Option<String>,
    /// The manifest it is about (`vnd.docker.reference.digest`, or the OCI `subject`).
    pub subject: Option<String>,
    /// The media types of its layers.
    pub layer_media_types: Vec<String>,
    #[serde(skip)]
    pub blobs: Vec<BlobFacts>,
}

/// The digest, size, media type and tag of what an OCI input publishes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RootDescriptor {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// `org.opencontainers.image.ref.name` of that descriptor.
    pub ref_name: Option<String>,
}

impl RootDescriptor {
    /// The root of an OCI layout whose `index.json` is `bytes` and parses as `index`.
    pub fn of_layout(bytes: &[u8], index: &docs::Index) -> RootDescriptor {
        match index.manifests.as_slice() {
            [only] => RootDescriptor {
                digest: only.digest.clone(),
                size: only.size,
                media_type: only.media_type.clone(),
                ref_name: only
                    .annotations
                    .get(crate::write::layout::REF_NAME)
                    .cloned(),
            },
            _ => RootDescriptor {
                digest: format!("sha256:{}", crate::inspect::sha256_hex(bytes)),
                size: bytes.len() as u64,
                media_type: index
                    .media_type
                    .clone()
                    .unwrap_or_else(|| docs::OCI_INDEX.to_string()),
                // Every entry under one name (a layout of one tag's platforms): that is its tag.
                ref_name: index
                    .manifests
                    .first()
                    .and_then(|d| d.annotations.get(crate::write::layout::REF_NAME))
                    .filter(|name| {
                        index.manifests.iter().all(|d| {
                            d.annotations.get(crate::write::layout::REF_NAME) == Some(*name)
                        })
                    })
                    .cloned(),
            },
        }
    }
}

/// Receives each layer's bytes during the single read, so `assemble` can write them out
/// without reading the input twice.
pub trait LayerTee: Send {
    /// Before layer `index` of the image whose manifest is `image` is read: where its bytes
    /// should also go. `Verbatim` takes the blob as stored, `Tar` the uncompressed stream.
    fn begin(
        &mut self,
        image: &str,
        index: usize,
        stored: Compression,
    ) -> std::io::Result<(TeeSide, &mut dyn std::io::Write)>;
    /// After the layer was read completely.
    fn end(&mut self, scan: &layer::LayerScan) -> std::io::Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeSide {
    Verbatim,
    Tar,
}

/// What one read of an input needs besides the input itself.
pub struct ReadOptions<'a> {
    pub limits: &'a Limits,
    /// Where to keep the bytes of binaries for later runs (see `layer::scan`).
    pub spill: Option<&'a Path>,
    pub tee: Option<&'a mut dyn LayerTee>,
    /// Facts of layers already verified, by digest (`crate::cache`).
    pub cache: Option<&'a crate::cache::Cache>,
}

/// Most distinct images one input may hold by default (`[limits] max_images`, `--max-images`).
pub const MAX_IMAGES: usize = 256;

struct Ctx<'a, 'b> {
    source: &'a Source,
    opts: &'a mut ReadOptions<'b>,
    /// Every descriptor already followed, by digest.
    listed: std::collections::HashMap<String, Descriptor>,
    /// Keep every file's mode and digest in the view (`dump`).
    record: bool,
    /// Images whose manifest and config are read, their layers not yet (`read_layers`).
    pending: Vec<Pending>,
}

/// An image of `ImageSet::images` (at `at`) waiting for its layers.
struct Pending {
    at: usize,
    layers: Vec<Descriptor>,
}

/// What an input turned out to be when sniffed: an image container, or not.
pub fn detect(path: &Path, limits: &Limits) -> Result<Option<(Source, Format)>, ImageError> {
    if path.is_dir() {
        return Ok(path
            .join("oci-layout")
            .is_file()
            .then(|| (Source::Dir(path.to_path_buf()), Format::OciLayout)));
    }
    if !looks_like_tar(path)? {
        return Ok(None);
    }
    let source = Source::open(path, limits)?;
    if source.has("index.json") || source.has("oci-layout") {
        Ok(Some((source, Format::OciArchive)))
    } else if source.has("manifest.json") {
        Ok(Some((source, Format::DockerArchive)))
    } else {
        Err(ImageError::Hostile(format!(
            "{}: a tar archive with neither index.json (OCI) nor manifest.json (docker-archive)",
            path.display()
        )))
    }
}

/// A tar, possibly gzip or zstd compressed: `ustar` at offset 257 of the (decompressed) start.
fn looks_like_tar(path: &Path) -> Result<bool, ImageError> {
    let file = std::fs::File::open(path).map_err(|e| ImageError::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(|e| ImageError::io(path, e))?;
    let compression = Compression::sniff(head);
    let mut block = [0u8; 512];
    let mut decoder = compression
        .decoder(reader)
        .map_err(|e| ImageError::io(path, e))?;
    let mut filled = 0;
    while filled < block.len() {
        match decoder.read(&mut block[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    Ok(filled == 512 && &block[257..262] == b"ustar")
}

/// `spill`: where to keep the bytes of binaries for later runs (see `layer::scan`).
pub fn read(
    path: &Path,
    source: Source,
    format: Format,
    opts: &mut ReadOptions<'_>,
) -> Result<ImageSet, ImageError> {
    read_with(path, source, format, opts, false)
}

fn read_with(
    path: &Path,
    source: Source,
    format: Format,
    opts: &mut ReadOptions<'_>,
    record: bool,
) -> Result<ImageSet, ImageError> {
    let mut set = ImageSet {
        path: path.to_path_buf(),
        format,
        entries: Vec::new(),
        images: Vec::new(),
        blobs: Vec::new(),
        attachments: Vec::new(),
        nested: Vec::new(),
        root: None,
    };
    parallel::within(|| {
        let mut ctx = Ctx {
            source: &source,
            opts,
            listed: Default::default(),
            record,
            pending: Vec::new(),
        };
        match format {
            Format::OciLayout | Format::OciArchive => {
                // The indexes are walked first; an error there still comes after whatever the
                // layers of the images listed before it would have reported.
                let walked = read_oci(&mut ctx, &mut set);
                read_layers(&mut ctx, &mut set)?;
                walked?;
            }
            Format::DockerArchive => read_docker_archive(&mut ctx, &mut set)?,
        }
        Ok(set)
    })
}

/// A layer blob that is not the bytes its descriptor names (a flipped bit, a cut): what it
/// hashes to instead, and why it could not be read as a layer. A verification failure
/// (`blob.digest`, `blob.size`), not unreadable input.
#[derive(Debug, Clone)]
pub struct Damage {
    pub digest: String,
    pub size: u64,
    pub why: String,
}

/// A layer as read: scanned, or damaged in transit.
type LayerRead = Result<layer::LayerScan, Damage>;

/// Hash a member as stored, to tell a damaged blob from one that is what its descriptor says.
fn stored_digest(source: &Source, member: &str) -> Result<Option<(String, u64)>, ImageError> {
    let Some((reader, _)) = source.open_member(member)? else {
        return Ok(None);
    };
    let mut hashing = layer::Hashing::new(reader);
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| ImageError::Hostile(format!("blob {member} cannot be read: {e}")))?;
    Ok(Some(hashing.finish()))
}

/// Read one layer member through the scanner, feeding the tee when there is one.
/// `declared_size`: the descriptor's size, which bounds the read: a blob may not be longer, and
/// a shorter one is truncated. Without a tee, a blob that fails to read or has the wrong size
/// and does not hash to `declared_digest` is `Damage`; otherwise errors are refused as hostile.
#[allow(clippy::too_many_arguments)]
fn scan_member(
    ctx: &mut Ctx<'_, '_>,
    member: &str,
    image: &str,
    index: usize,
    label: &str,
    declared_size: Option<u64>,
    declared_digest: Option<&str>,
    budget: &layer::Budget,
) -> Result<Option<LayerRead>, ImageError> {
    let cannot_write =
        |e: std::io::Error| ImageError::Hostile(format!("cannot write layer {label}: {e}"));
    let tee_side = match ctx.opts.tee.as_deref_mut() {
        Some(tee) => {
            // The first bytes decide how the blob is stored; a peek, not a second read.
            let Some((mut head_reader, _)) = ctx.source.open_member(member)? else {
                return Ok(None);
            };
            let mut head = [0u8; 4];
            let n = head_reader
                .read(&mut head)
                .map_err(|e| ImageError::Hostile(format!("layer {label} cannot be read: {e}")))?;
            Some(
                tee.begin(image, index, Compression::sniff(&head[..n]))
                    .map_err(cannot_write)?,
            )
        }
        None => None,
    };
    let can_judge = tee_side.is_none() && declared_digest.is_some();
    // Only a blob that is not what its descriptor names is damage; a blob that is exactly
    // the named bytes and still cannot be read was written that way, and is refused. A size
    // that lies about intact bytes is damage too: `blob.size` judges it.
    let damaged = |ctx: &Ctx<'_, '_>, error: ImageError| -> Result<Option<LayerRead>, ImageError> {
        if !can_judge {
            return Err(error);
        }
        match stored_digest(ctx.source, member)? {
            Some((digest, size))
                if Some(digest.as_str()) != declared_digest
                    || declared_size.is_some_and(|d| d != size) =>
            {
                Ok(Some(Err(Damage {
                    digest,
                    size,
                    why: error.to_string(),
                })))
            }
            _ => Err(error),
        }
    };
    // A layer seen before is hashed, not read again (the tee and `dump` need every byte).
    let cache = ctx.opts.cache.filter(|_| tee_side.is_none() && !ctx.record);
    if let Some((cache, digest)) = cache.zip(crate::cache::digest_named_by(member))
        && let Some((reader, stored)) = ctx.source.open_member(member)?
        && declared_size.is_none_or(|d| d == stored)
        && let Some(scan) = cache.confirm(&digest, reader, budget, ctx.opts.spill)?
    {
        return Ok(Some(Ok(scan)));
    }
    let Some((reader, stored)) = ctx.source.open_member(member)? else {
        return Ok(None);
    };
    if let Some(declared) = declared_size
        && stored != declared
    {
        let how = if stored > declared {
            "longer than"
        } else {
            "shorter than (truncated?)"
        };
        let error = ImageError::Hostile(format!(
            "layer {label} is {stored} bytes, {how} the {declared} bytes its descriptor declares; refusing to read past or short of a descriptor"
        ));
        drop(reader);
        return damaged(ctx, error);
    }
    // Never read more than was declared, whatever the file says.
    let bounded: Box<dyn Read + '_> = match declared_size {
        Some(n) => Box::new(reader.take(n)),
        None => reader,
    };
    let what = format!("layer {}", crate::progress::short_digest(label));
    let counted = crate::progress::current()
        .bytes(what, Some(declared_size.unwrap_or(stored)))
        .reader(bounded);
    let scan = match layer::scan(
        counted,
        label,
        ctx.opts.limits,
        budget,
        ctx.opts.spill,
        tee_side,
        ctx.record,
    ) {
        Ok(scan) => scan,
        Err(error) => return damaged(ctx, error),
    };
    if let Some(cache) = cache {
        cache.store(&scan, ctx.opts.spill);
    }
    if let Some(tee) = ctx.opts.tee.as_deref_mut() {
        tee.end(&scan).map_err(cannot_write)?;
    }
    Ok(Some(Ok(scan)))
}

/// What a layer read needs besides the layer, shared by the workers.
#[derive(Clone, Copy)]
struct Shared<'a> {
    source: &'a Source,
    limits: &'a Limits,
    spill: Option<&'a Path>,
    cache: Option<&'a crate::cache::Cache>,
    record: bool,
}

impl Shared<'_> {
    fn scan(
        &self,
        image: &str,
        l: &Descriptor,
        budget: &layer::Budget,
    ) -> Result<Option<LayerRead>, ImageError> {
        let mut solo = ReadOptions {
            limits: self.limits,
            spill: self.spill,
            tee: None,
            cache: self.cache,
        };
        let mut ctx = Ctx {
            source: self.source,
            opts: &mut solo,
            listed: Default::default(),
            record: self.record,
            pending: Vec::new(),
        };
        scan_member(
            &mut ctx,
            &blob_path(&l.digest)?,
            image,
            0,
            &l.digest,
            Some(l.size),
            Some(&l.digest),
            budget,
        )
    }
}

/// Read the layers of every image waiting for them, each image within its own decompression
/// budget. With a tee (it needs the bytes in order) or one worker (`--jobs 1`) one layer after
/// another in index order; otherwise images and layers alike on the one worker pool. Both give
/// the same facts: a layer two images share is read by the first in index order, and the
/// second asks the cache for it only after that read is done (a level later), as it would
/// in order; the error reported is the first in index order.
fn read_layers(ctx: &mut Ctx<'_, '_>, set: &mut ImageSet) -> Result<(), ImageError> {
    let pending = std::mem::take(&mut ctx.pending);
    let limit = ctx.opts.limits.max_uncompressed;
    if ctx.opts.tee.is_some() || parallel::sequential() {
        for p in &pending {
            let budget = layer::Budget::new(limit);
            let digest = set.images[p.at].manifest_digest.clone();
            let scans = p
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    scan_member(
                        ctx,
                        &blob_path(&l.digest)?,
                        &digest,
                        i,
                        &l.digest,
                        Some(l.size),
                        Some(&l.digest),
                        &budget,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let read = finish_oci_image(&set.images[p.at], &p.layers, scans)?;
            install_layers(&mut set.images[p.at], read);
        }
        return Ok(());
    }
    use rayon::prelude::*;
    let shared = Shared {
        source: ctx.source,
        limits: ctx.opts.limits,
        spill: ctx.opts.spill,
        cache: ctx.opts.cache,
        record: ctx.record,
    };
    // An image waits for the images that first list a layer it lists too.
    let mut owner: std::collections::HashMap<(&str, u64), usize> = Default::default();
    let mut level = vec![0usize; pending.len()];
    for (n, p) in pending.iter().enumerate() {
        for l in &p.layers {
            let first = *owner.entry((l.digest.as_str(), l.size)).or_insert(n);
            if first != n {
                level[n] = level[n].max(level[first] + 1);
            }
        }
    }
    let mut results: Vec<Option<Result<LayersRead, ImageError>>> =
        (0..pending.len()).map(|_| None).collect();
    let mut first_error = usize::MAX;
    for now in 0..=level.iter().copied().max().unwrap_or(0) {
        let todo: Vec<usize> = (0..pending.len())
            .filter(|&n| level[n] == now && n < first_error)
            .collect();
        let images = &set.images;
        let done: Vec<(usize, Result<LayersRead, ImageError>)> = todo
            .into_par_iter()
            .map(|n| {
                let p = &pending[n];
                (
                    n,
                    read_image_layers(&shared, &images[p.at], &p.layers, limit),
                )
            })
            .collect();
        for (n, read) in done {
            if read.is_err() {
                first_error = first_error.min(n);
            }
            results[n] = Some(read);
        }
    }
    for (p, read) in pending.iter().zip(results) {
        match read {
            Some(Ok(read)) => install_layers(&mut set.images[p.at], read),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(())
}

/// One image's layers in parallel. A layer it lists twice is read once, and the repeat asks
/// the cache after that, as a read in order does.
fn read_image_layers(
    shared: &Shared<'_>,
    image: &ImageFacts,
    layers: &[Descriptor],
    limit: u64,
) -> Result<LayersRead, ImageError> {
    use rayon::prelude::*;
    let budget = layer::Budget::new(limit);
    let digest = image.manifest_digest.as_str();
    let mut seen = std::collections::HashSet::new();
    let repeat: Vec<bool> = layers
        .iter()
        .map(|l| !seen.insert((l.digest.as_str(), l.size)))
        .collect();
    let mut scans: Vec<Option<Result<Option<LayerRead>, ImageError>>> =
        (0..layers.len()).map(|_| None).collect();
    for pass in [false, true] {
        let done: Vec<_> = (0..layers.len())
            .filter(|&i| repeat[i] == pass)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|i| (i, shared.scan(digest, &layers[i], &budget)))
            .collect();
        for (i, scan) in done {
            scans[i] = Some(scan);
        }
    }
    let scans = scans.into_iter().flatten().collect::<Result<Vec<_>, _>>()?;
    finish_oci_image(image, layers, scans)
}

fn install_layers(image: &mut ImageFacts, (blobs, layers, view): LayersRead) {
    image.blobs.extend(blobs);
    image.layers = layers;
    image.view = view;
}

fn blob_path(digest: &str) -> Result<String, ImageError> {
    let hex = docs::check_digest(digest).map_err(ImageError::Hostile)?;
    Ok(format!("blobs/sha256/{hex}"))
}

/// Read a JSON blob named by a descriptor, recording what was declared and what was found.
fn read_json_blob(
    ctx: &Ctx<'_, '_>,
    d: &Descriptor,
    role: &str,
    referenced_by: &str,
    blobs: &mut Vec<BlobFacts>,
) -> Result<Option<Vec<u8>>, ImageError> {
    let rel = blob_path(&d.digest)?;
    let bytes = ctx.source.read_doc(
        &rel,
        &format!("{role} {}", d.digest),
        ctx.opts.limits.max_json,
    )?;
    let mut facts = BlobFacts {
        role: role.to_string(),
        referenced_by: referenced_by.to_string(),
        media_type: d.media_type.clone(),
        declared_digest: Some(d.digest.clone()),
        declared_size: Some(d.size),
        actual_digest: None,
        actual_size: None,
        note: None,
    };
    if let Some(b) = &bytes {
        facts.actual_digest = Some(format!("sha256:{}", crate::inspect::sha256_hex(b)));
        facts.actual_size = Some(b.len() as u64);
    }
    blobs.push(facts);
    Ok(bytes)
}

fn read_oci(ctx: &mut Ctx<'_, '_>, set: &mut ImageSet) -> Result<(), ImageError> {
    let index_bytes = ctx
        .source
        .read_doc("index.json", "index.json", ctx.opts.limits.max_json)?
        .ok_or_else(|| ImageError::Hostile("index.json is missing: not an OCI layout".into()))?;
    let index: Index = docs::parse(&index_bytes, "index.json").map_err(ImageError::Hostile)?;
    // Docker 25+ `docker save` writes an OCI layout and a docker-archive `manifest.json` side
    // by side; an untagged save lists nothing in index.json (`"manifests": null`), and
    // `docker load` reads manifest.json, so that is what is verified then.
    if index.manifests.is_empty() && ctx.source.has("manifest.json") {
        set.format = Format::DockerArchive;
        return read_docker_archive(ctx, set);
    }
    set.root = Some(RootDescriptor::of_layout(&index_bytes, &index));
    let media_type = index
        .media_type
        .clone()
        .unwrap_or_else(|| docs::OCI_INDEX.to_string());
    walk_index(ctx, &index, &media_type, "index.json", 0, set)
}

fn walk_index(
    ctx: &mut Ctx<'_, '_>,
    index: &Index,
    media_type: &str,
    name: &str,
    depth: usize,
    set: &mut ImageSet,
) -> Result<(), ImageError> {
    if depth > ctx.opts.limits.max_nesting {
        return Err(ImageError::Hostile(format!(
            "{name}: indexes nest deeper than {} levels",
            ctx.opts.limits.max_nesting
        )));
    }
    for d in &index.manifests {
        check_descriptor_type(d, name)?;
        // buildx attestations: no runtime selects platform unknown/unknown, and their layers
        // are in-toto documents, not filesystems. Any other platform is verified as an image.
        let attests = (d
            .annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            == Some("attestation-manifest")
            && d.platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown"))
        .then(|| d.annotations.get("vnd.docker.reference.digest").cloned());
        // Each blob is read once however often indexes list it (10 KB of nested indexes
        // could otherwise ask for thousands of image reads).
        if let Some(first) = ctx.listed.get(&d.digest) {
            if first.media_type != d.media_type
                || first.size != d.size
                || first.platform != d.platform
            {
                return Err(ImageError::Hostile(format!(
                    "{name}: {} is listed again with another media type, size or platform than before; refusing a blob that claims two things",
                    d.digest
                )));
            }
            if let Some(image) = set
                .images
                .iter_mut()
                .find(|i| i.manifest_digest == d.digest)
            {
                note_listing(image, d, name);
            }
            continue;
        }
        ctx.listed.insert(d.digest.clone(), d.clone());
        if docs::is_index(&d.media_type) {
            if depth > 0 {
                set.nested.push(IndexEntry {
                    digest: d.digest.clone(),
                    media_type: d.media_type.clone(),
                    platform: None,
                    listed_in: media_type.to_string(),
                });
            }
            let Some(bytes) = read_json_blob(ctx, d, "index", name, &mut set.blobs)? else {
                continue;
            };
            check_document_kind(d, &bytes)?;
            let nested: Index =
                docs::parse(&bytes, &format!("index {}", d.digest)).map_err(ImageError::Hostile)?;
            let nested_type = nested
                .media_type
                .clone()
                .unwrap_or_else(|| d.media_type.clone());
            walk_index(ctx, &nested, &nested_type, &d.digest, depth + 1, set)?;
            continue;
        }
        let mut manifest_blobs = Vec::new();
        let entry = IndexEntry {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            platform: d.platform.clone(),
            listed_in: media_type.to_string(),
        };
        // A registry source reads only the platforms asked for; the entry is still listed.
        if ctx.source.skips(d.platform.as_ref()) {
            if attests.is_none() {
                set.entries.push(entry);
            }
            continue;
        }
        let Some(bytes) = read_json_blob(ctx, d, "manifest", name, &mut manifest_blobs)? else {
            set.blobs.extend(manifest_blobs);
            if attests.is_none() {
                set.entries.push(entry);
            }
            continue;
        };
        check_document_kind(d, &bytes)?;
        let manifest: Manifest =
            docs::parse(&bytes, &format!("manifest {}", d.digest)).map_err(ImageError::Hostile)?;
        if let Some(subject) = attests {
            set.attachments.push(read_attachment(
                ctx,
                d,
                &manifest,
                "attestation",
                subject,
                manifest_blobs,
            )?);
            continue;
        }
        if manifest.is_artifact() {
            let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
            set.attachments.push(read_attachment(
                ctx,
                d,
                &manifest,
                "artifact",
                subject,
                manifest_blobs,
            )?);
            continue;
        }
        set.blobs.extend(manifest_blobs);
        set.entries.push(entry);
        let max = ctx.opts.limits.max_images;
        if set.images.len() >= max {
            return Err(ImageError::Hostile(format!(
                "{name}: more than {max} distinct images, the limit of one run; refusing to verify that many (raise it with --max-images or [limits] max_images in mab.toml if this is genuine)"
            )));
        }
        let at = set.images.len();
        let mut image = read_oci_image(ctx, d, &manifest, at)?;
        note_listing(&mut image, d, name);
        set.images.push(image);
    }
    Ok(())
}

/// The annotation that names an image in a layout (`skopeo copy oci:DIR:REF`).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Record one more listing of an image: which index, under which ref name.
fn note_listing(image: &mut ImageFacts, d: &Descriptor, listed_in: &str) {
    match d.annotations.get(REF_NAME) {
        Some(r) => {
            image.listed_in.push(format!("{listed_in} (ref {r})"));
            if !image.ref_names.contains(r) {
                image.ref_names.push(r.clone());
            }
        }
        None => image.listed_in.push(listed_in.to_string()),
    }
}

/// A manifest that is no image: its own blob, config and layers are hashed as stored (their
/// media types say nothing about tar), so `blob.digest` and `blob.size` cover them.
fn read_attachment(
    ctx: &mut Ctx<'_, '_>,
    d: &Descriptor,
    manifest: &Manifest,
    kind: &'static str,
    subject: Option<String>,
    mut blobs: Vec<BlobFacts>,
) -> Result<Attachment, ImageError> {
    let parts = std::iter::once(("config".to_string(), &manifest.config)).chain(
        manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("layer {}", i + 1), l)),
    );
    for (role, b) in parts {
        let found = stored_digest(ctx.source, &blob_path(&b.digest)?)?;
        blobs.push(BlobFacts {
            role: format!("{kind} {role}"),
            referenced_by: d.digest.clone(),
            media_type: b.media_type.clone(),
            declared_digest: Some(b.digest.clone()),
            declared_size: Some(b.size),
            actual_digest: found.as_ref().map(|f| f.0.clone()),
            actual_size: found.map(|f| f.1),
            note: None,
        });
    }
    Ok(Attachment {
        digest: d.digest.clone(),
        kind,
        artifact_type: manifest
            .artifact_type
            .clone()
            .or_else(|| (kind == "attestation").then(|| "attestation-manifest".into())),
        subject,
        layer_media_types: manifest
            .layers
            .iter()
            .map(|l| l.media_type.clone())
            .collect(),
        blobs,
    })
}

/// An index entry is an index or a manifest, OCI or Docker; anything else (an empty type
/// included) the runtimes would read differently or not at all.
fn check_descriptor_type(d: &Descriptor, listed_in: &str) -> Result<(), ImageError> {
    if docs::is_index(&d.media_type) || docs::is_manifest(&d.media_type) {
        return Ok(());
    }
    let what = if d.media_type.is_empty() {
        "has no mediaType".to_string()
    } else {
        format!(
            "has mediaType {:?}, which is neither an index nor an image manifest",
            d.media_type
        )
    };
    Err(ImageError::Hostile(format!(
        "{listed_in}: the entry {} {what}; refusing to guess what it is",
        d.digest
    )))
}

/// The document must be what its descriptor says: an index typed descriptor pointing at a
/// manifest (or the reverse) is read as one thing here and another by a runtime.
fn check_document_kind(d: &Descriptor, bytes: &[u8]) -> Result<(), ImageError> {
    let what = format!("blob {}", d.digest);
    let value = docs::go_value(bytes, &what, &<Manifest as docs::Doc>::SHAPE)
        .map_err(ImageError::Hostile)?;
    let own = value.get("mediaType").and_then(|m| m.as_str());
    let looks_like_index = value.get("manifests").is_some();
    let looks_like_manifest = value.get("config").is_some() || value.get("layers").is_some();
    let wanted_index = docs::is_index(&d.media_type);
    let mismatch = match own {
        Some(own) => own != d.media_type,
        None => (wanted_index && looks_like_manifest) || (!wanted_index && looks_like_index),
    };
    if mismatch || (looks_like_index && looks_like_manifest) {
        let is = own.map_or_else(
            || {
                if looks_like_index {
                    "an index".to_string()
                } else {
                    "a manifest".to_string()
                }
            },
            |o| format!("{o:?}"),
        );
        return Err(ImageError::Hostile(format!(
            "{what}: its descriptor says mediaType {:?} but the document is {is}; refusing a media type mismatch",
            d.media_type
        )));
    }
    Ok(())
}

/// Layers and the config must carry a media type, and a layer's must say how it is stored.
fn check_manifest_types(d: &Descriptor, manifest: &Manifest) -> Result<(), ImageError> {
    if manifest.config.media_type.is_empty() {
        return Err(ImageError::Hostile(format!(
            "manifest {}: its config descriptor has no mediaType",
            d.digest
        )));
    }
    for (i, l) in manifest.layers.iter().enumerate() {
        if docs::layer_compression(&l.media_type).is_none() {
            let what = if l.media_type.is_empty() {
                "has no mediaType".to_string()
            } else {
                format!(
                    "has mediaType {:?}, which is no image layer type",
                    l.media_type
                )
            };
            return Err(ImageError::Hostile(format!(
                "manifest {}: layer {} ({}) {what}",
                d.digest,
                i + 1,
                l.digest
            )));
        }
    }
    Ok(())
}

/// An image's manifest and config; its layers are read later, with every other image's
/// (`read_layers`), so the images of an index are verified in parallel.
fn read_oci_image(
    ctx: &mut Ctx<'_, '_>,
    d: &Descriptor,
    manifest: &Manifest,
    at: usize,
) -> Result<ImageFacts, ImageError> {
    check_manifest_types(d, manifest)?;
    let mut blobs = Vec::new();
    let config_bytes = read_json_blob(ctx, &manifest.config, "config", &d.digest, &mut blobs)?;
    let config: Config = match &config_bytes {
        Some(b) => docs::parse(b, &format!("config {}", manifest.config.digest))
            .map_err(ImageError::Hostile)?,
        None => Config::default(),
    };
    ctx.pending.push(Pending {
        at,
        layers: manifest.layers.clone(),
    });
    Ok(ImageFacts {
        manifest_digest: d.digest.clone(),
        manifest_media_type: d.media_type.clone(),
        index_platform: d.platform.clone(),
        config_digest: manifest.config.digest.clone(),
        config,
        config_bytes: config_bytes.unwrap_or_default(),
        layers: Vec::new(),
        blobs,
        view: View::new(format!("image {}", d.digest)),
        listed_in: Vec::new(),
        ref_names: Vec::new(),
    })
}

/// What an image's layers add to it: their blobs, their facts, the rootfs they make.
type LayersRead = (Vec<BlobFacts>, Vec<LayerFacts>, View);

/// An image's layer blobs as read, applied in order into its rootfs.
fn finish_oci_image(
    image: &ImageFacts,
    layers: &[Descriptor],
    scans: Vec<Option<LayerRead>>,
) -> Result<LayersRead, ImageError> {
    let d = &image.manifest_digest;
    let mut view = View::new(image.view.label.clone());
    let mut blob_facts = Vec::new();
    let mut layer_facts = Vec::new();
    view.reserve_plain(
        scans
            .iter()
            .flatten()
            .filter_map(|s| s.as_ref().ok())
            .map(|s| s.plain.len())
            .sum(),
    );
    for (i, (l, scan)) in layers.iter().zip(scans).enumerate() {
        let mut facts = BlobFacts {
            role: format!("layer {}", i + 1),
            referenced_by: d.clone(),
            media_type: l.media_type.clone(),
            declared_digest: Some(l.digest.clone()),
            declared_size: Some(l.size),
            actual_digest: None,
            actual_size: None,
            note: None,
        };
        let mut layer = LayerFacts {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            compression: None,
            diff_id: None,
            declared_diff_id: image.config.diff_ids().get(i).cloned(),
            files: 0,
            damage: None,
            from_cache: false,
        };
        if let Some(Err(damage)) = &scan {
            facts.actual_digest = Some(damage.digest.clone());
            facts.actual_size = Some(damage.size);
            facts.note = Some(damage.why.clone());
            layer.damage = Some(damage.why.clone());
        }
        if let Some(Ok(scan)) = scan {
            if let Some(declared) = docs::layer_compression(&l.media_type)
                && declared != scan.compression
            {
                return Err(ImageError::Hostile(format!(
                    "layer {}: its media type {:?} says {declared:?} but the blob is {:?}; runtimes decompress by the media type, so refusing",
                    l.digest, l.media_type, scan.compression
                )));
            }
            facts.actual_digest = Some(scan.digest.clone());
            facts.actual_size = Some(scan.size);
            layer.compression = Some(scan.compression);
            layer.diff_id = Some(scan.diff_id.clone());
            layer.files = scan.file_count();
            layer.from_cache = scan.from_cache;
            view.apply(i, scan)?;
        }
        blob_facts.push(facts);
        layer_facts.push(layer);
    }
    view.finish();
    Ok((blob_facts, layer_facts, view))
}

fn read_docker_archive(ctx: &mut Ctx<'_, '_>, set: &mut ImageSet) -> Result<(), ImageError> {
    let bytes = ctx
        .source
        .read_doc("manifest.json", "manifest.json", ctx.opts.limits.max_json)?
        .ok_or_else(|| ImageError::Hostile("manifest.json is missing".into()))?;
    let entries: Vec<DockerArchiveEntry> =
        docs::parse(&bytes, "manifest.json").map_err(ImageError::Hostile)?;
    if entries.is_empty() {
        return Err(ImageError::Hostile("manifest.json lists no images".into()));
    }
    for (n, entry) in entries.iter().enumerate() {
        let name = entry
            .repo_tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| format!("image {}", n + 1));
        let image_key = format!("manifest.json#{n}");
        let mut blobs = Vec::new();
        let config_member = source::member_name(&entry.config);
        let config_bytes = ctx.source.read_doc(
            &config_member,
            &format!("config {config_member}"),
            ctx.opts.limits.max_json,
        )?;
        // `<hex>.json` names the config by its digest; older layouts use other names.
        let declared = config_member
            .trim_start_matches("blobs/sha256/")
            .trim_end_matches(".json")
            .to_string();
        let declared_digest = docs::check_digest(&format!("sha256:{declared}"))
            .ok()
            .map(|h| format!("sha256:{h}"));
        blobs.push(BlobFacts {
            role: "config".into(),
            referenced_by: format!("manifest.json ({name})"),
            media_type: docs::DOCKER_CONFIG.into(),
            declared_digest: declared_digest.clone(),
            declared_size: None,
            actual_digest: config_bytes
                .as_ref()
                .map(|b| format!("sha256:{}", crate::inspect::sha256_hex(b))),
            actual_size: config_bytes.as_ref().map(|b| b.len() as u64),
            note: None,
        });
        let config: Config = match &config_bytes {
            Some(b) => {
                docs::parse(b, &format!("config {config_member}")).map_err(ImageError::Hostile)?
            }
            None => Config::default(),
        };
        let config_digest = blobs[0]
            .actual_digest
            .clone()
            .or(declared_digest)
            .unwrap_or_default();
        let mut view = View::new(format!("image {name}"));
        let mut layers = Vec::new();
        let budget = layer::Budget::new(ctx.opts.limits.max_uncompressed);
        for (i, member) in entry.layers.iter().enumerate() {
            let member = source::member_name(member);
            // Docker 25+ names each layer by its digest (`blobs/sha256/<hex>`): a declaration.
            let declared = member.strip_prefix("blobs/sha256/").and_then(|hex| {
                docs::check_digest(&format!("sha256:{hex}"))
                    .ok()
                    .map(|h| format!("sha256:{h}"))
            });
            let mut facts = BlobFacts {
                role: format!("layer {}", i + 1),
                referenced_by: format!("manifest.json ({name})"),
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                declared_digest: declared.clone(),
                declared_size: None,
                actual_digest: None,
                actual_size: None,
                note: None,
            };
            let mut layer = LayerFacts {
                digest: member.clone(),
                media_type: facts.media_type.clone(),
                compression: None,
                diff_id: None,
                declared_diff_id: config.diff_ids().get(i).cloned(),
                files: 0,
                damage: None,
                from_cache: false,
            };
            // Older archives name layers `<id>/layer.tar`: stored uncompressed, as `docker
            // save` writes them, a layer's digest is its diff_id, which then judges damage.
            let judge = declared.clone().or_else(|| {
                let head = ctx
                    .source
                    .open_member(&member)
                    .ok()
                    .flatten()
                    .and_then(|(mut r, _)| {
                        let mut b = [0u8; 4];
                        r.read(&mut b).ok().map(|n| Compression::sniff(&b[..n]))
                    });
                (head == Some(Compression::None))
                    .then(|| layer.declared_diff_id.clone())
                    .flatten()
            });
            let read = scan_member(
                ctx,
                &member,
                &image_key,
                i,
                &member,
                None,
                judge.as_deref(),
                &budget,
            )?;
            match read {
                Some(Ok(scan)) => {
                    facts.actual_digest = Some(scan.digest.clone());
                    facts.actual_size = Some(scan.size);
                    layer.digest = scan.digest.clone();
                    layer.compression = Some(scan.compression);
                    layer.diff_id = Some(scan.diff_id.clone());
                    layer.files = scan.file_count();
                    layer.from_cache = scan.from_cache;
                    view.apply(i, scan)?;
                }
                Some(Err(damage)) => {
                    facts.declared_digest = judge;
                    facts.actual_digest = Some(damage.digest.clone());
                    facts.actual_size = Some(damage.size);
                    facts.note = Some(damage.why.clone());
                    layer.damage = Some(damage.why);
                }
                None => facts.role = format!("layer {} ({member})", i + 1),
            }
            blobs.push(facts);
            layers.push(layer);
        }
        view.finish();
        set.images.push(ImageFacts {
            manifest_digest: image_key,
            manifest_media_type: docs::DOCKER_MANIFEST.into(),
            index_platform: None,
            config_digest,
            config,
            config_bytes: config_bytes.unwrap_or_default(),
            layers,
            blobs,
            view,
            listed_in: vec!["manifest.json".into()],
            ref_names: entry.repo_tags.clone().unwrap_or_default(),
        });
    }
    Ok(())
}
