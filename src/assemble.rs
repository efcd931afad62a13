//! Combines per-platform images into one multi-arch OCI index, offline and reproducibly: each
//! input is read once, verified as it is read, and its layers are written out in that pass.

use crate::check::image as checks;
use crate::image::layer::LayerScan;
use crate::image::{self, Compression, ImageFacts, LayerTee, ReadOptions, TeeSide};
use crate::platform::Platform;
use crate::write::{self, Flavour, LayerInfo, LayoutWriter, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Request {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub layout: bool,
    pub tag: Option<String>,
    pub compression: Compression,
    pub fix_config: bool,
    /// Timestamp for archive entries (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// Bad input or usage: exit 2.
    #[error("{0}")]
    Input(String),
    /// An input does not verify (a lying config, a corrupt blob): exit 1.
    #[error("{0}")]
    Refused(String),
}

/// One platform of the output.
#[derive(Debug, Clone)]
pub struct Placed {
    pub platform: Platform,
    pub input: PathBuf,
    pub manifest: String,
    /// The config's platform was rewritten to the binaries' truth (`--fix-config`).
    pub fixed_config: Option<String>,
}

#[derive(Debug)]
pub struct Assembled {
    /// Digest of the multi-platform index the output's `index.json` points at.
    pub index_digest: String,
    pub platforms: Vec<Placed>,
    /// The finished layout (for `--layout`, the output itself; else a staged copy to verify).
    pub staged_layout: PathBuf,
}

/// Where one input's layers are written while it is read.
struct Tee<'a> {
    layout: &'a LayoutWriter,
    compression: Compression,
    /// Layers written so far, by image (manifest digest) in order.
    written: Vec<(String, LayerInfo)>,
    current: Option<(String, Sink)>,
    /// Which input this is, so temp names of inputs read at once do not collide.
    input: usize,
    counter: usize,
    /// Where each layer's facts are kept under the digest it is written with, so verifying
    /// the output (and gating and pushing it) does not inflate it again.
    cache: Option<(&'a crate::cache::Cache, &'a Path)>,
}

enum Sink {
    /// The stored blob already has the wanted compression: copy it byte for byte.
    Verbatim {
        file: BufWriter<File>,
        temp: PathBuf,
    },
    Recompress {
        blob: Box<write::BlobWriter<BufWriter<File>>>,
        temp: PathBuf,
    },
}

fn sha256_of_text(digest: &str) -> std::io::Result<Sha256> {
    let hex = digest.trim_start_matches("sha256:");
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out)
        .map_err(|e| std::io::Error::other(format!("bad digest {digest}: {e}")))?;
    Ok(Sha256(out))
}

impl LayerTee for Tee<'_> {
    fn begin(
        &mut self,
        image: &str,
        _index: usize,
        stored: Compression,
    ) -> std::io::Result<(TeeSide, &mut dyn Write)> {
        self.counter += 1;
        let temp = self
            .layout
            .dir()
            .join("blobs")
            .join("sha256")
            .join(format!(".incoming-{}-{}", self.input, self.counter));
        let file = BufWriter::with_capacity(256 * 1024, File::create(&temp)?);
        let sink = if stored == self.compression {
            Sink::Verbatim { file, temp }
        } else {
            let blob =
                write::BlobWriter::new(file, self.compression).map_err(std::io::Error::other)?;
            Sink::Recompress {
                blob: Box::new(blob),
                temp,
            }
        };
        self.current = Some((image.to_string(), sink));
        let (_, sink) = self.current.as_mut().expect("just set");
        Ok(match sink {
            Sink::Verbatim { file, .. } => (TeeSide::Verbatim, file as &mut dyn Write),
            Sink::Recompress { blob, .. } => (TeeSide::Tar, blob.as_mut() as &mut dyn Write),
        })
    }

    fn end(&mut self, scan: &LayerScan) -> std::io::Result<()> {
        let Some((image, sink)) = self.current.take() else {
            return Ok(());
        };
        let (info, temp) = match sink {
            Sink::Verbatim { mut file, temp } => {
                file.flush()?;
                let info = LayerInfo {
                    digest: sha256_of_text(&scan.digest)?,
                    size: scan.size,
                    diff_id: sha256_of_text(&scan.diff_id)?,
                    compression: scan.compression,
                };
                (info, temp)
            }
            Sink::Recompress { blob, temp } => {
                let (_, info) = blob.finish().map_err(std::io::Error::other)?;
                (info, temp)
            }
        };
        std::fs::rename(&temp, self.layout.blob_path(&info.digest))?;
        if let Some((cache, spill)) = self.cache {
            // The same tar, stored as written: only the blob's digest, size and compression differ.
            let mut as_written = scan.clone();
            as_written.digest = format!("sha256:{}", info.digest.hex());
            as_written.size = info.size;
            as_written.compression = info.compression;
            cache.store(&as_written, Some(spill));
        }
        self.written.push((image, info));
        Ok(())
    }
}

/// Read every input once (verifying and copying its layers), decide each image's platform
/// from its binaries, and write one OCI layout with a multi-platform index into `staging`.
pub fn assemble(
    req: &Request,
    limits: &image::Limits,
    staging: &Path,
    cache: Option<&crate::cache::Cache>,
) -> Result<Assembled, AssembleError> {
    let layout = LayoutWriter::create(staging.join("layout"))
        .map_err(|e| AssembleError::Input(e.to_string()))?;
    // Inputs are read (and their layers recompressed) in parallel; everything that decides
    // the output's bytes below happens in input order, so the result does not depend on it.
    use rayon::prelude::*;
    let reads: Vec<Result<InputRead, AssembleError>> = req
        .inputs
        .par_iter()
        .enumerate()
        .map(|(n, input)| read_input(n, input, req.compression, limits, &layout, cache))
        .collect();
    let mut placed: Vec<(Placed, write::Blob, Vec<LayerInfo>)> = Vec::new();
    for (input, read) in req.inputs.iter().zip(reads) {
        let (set, written) = read?;
        for img in &set.images {
            let (platform, fixed) = platform_of(input, img, req.fix_config)?;
            if let Some((other, ..)) = placed
                .iter()
                .find(|(p, ..)| p.platform.arch == platform.arch && p.platform.os == platform.os)
            {
                return Err(AssembleError::Input(format!(
                    "two inputs for {}: {} and {}; pass one image per platform",
                    platform.oci(),
                    other.input.display(),
                    input.display()
                )));
            }
            let config_bytes = match &fixed {
                Some(_) => fixed_config(&img.config_bytes, &platform).map_err(|e| {
                    AssembleError::Input(format!("{}: config: {e}", input.display()))
                })?,
                None => img.config_bytes.clone(),
            };
            let config = layout
                .add_bytes(&config_bytes)
                .map_err(|e| AssembleError::Input(e.to_string()))?;
            let layers: Vec<LayerInfo> = written
                .iter()
                .filter(|(m, _)| *m == img.manifest_digest)
                .map(|(_, l)| *l)
                .collect();
            placed.push((
                Placed {
                    platform,
                    input: input.clone(),
                    manifest: String::new(),
                    fixed_config: fixed,
                },
                config,
                layers,
            ));
        }
    }
    if placed.is_empty() {
        return Err(AssembleError::Input("no images among the inputs".into()));
    }
    // Platform order, not input order, so the same images always give the same index.
    placed.sort_by_key(|(p, ..)| p.platform.oci());
    let mut descriptors = Vec::new();
    for (p, config, layers) in &mut placed {
        let mut descriptor = layout
            .add_manifest(Flavour::Oci, config, layers)
            .map_err(|e| AssembleError::Input(e.to_string()))?;
        descriptor.set_platform(Some(write::layout::oci_platform(&p.platform)));
        p.manifest = descriptor.digest().to_string();
        descriptors.push(descriptor);
    }
    let mut index = layout
        .add_index(Flavour::Oci, descriptors)
        .map_err(|e| AssembleError::Input(e.to_string()))?;
    let index_digest = index.digest().to_string();
    if let Some(tag) = &req.tag {
        index = write::layout::with_ref_name(index, tag);
    }
    layout
        .write_index(vec![index])
        .map_err(|e| AssembleError::Input(e.to_string()))?;
    Ok(Assembled {
        index_digest,
        platforms: placed.into_iter().map(|(p, ..)| p).collect(),
        staged_layout: layout.dir().to_path_buf(),
    })
}

/// An input's images, and the layers written for them (by manifest digest, in order).
type InputRead = (image::ImageSet, Vec<(String, LayerInfo)>);

/// Read input number `n` once, writing its layers into `layout` as they stream past.
fn read_input(
    n: usize,
    input: &Path,
    compression: Compression,
    limits: &image::Limits,
    layout: &LayoutWriter,
    cache: Option<&crate::cache::Cache>,
) -> Result<InputRead, AssembleError> {
    let bad = |e: image::ImageError| AssembleError::Input(format!("{}: {e}", input.display()));
    let Some((source, format)) = image::detect(input, limits).map_err(bad)? else {
        return Err(AssembleError::Input(format!(
            "{}: not an image (expected a docker-archive, an OCI archive or an OCI layout)",
            input.display()
        )));
    };
    // With a cache, the binaries go to it too, for the runs of later verifies.
    let spill =
        match cache {
            Some(_) => Some(tempfile::tempdir().map_err(|e| {
                AssembleError::Input(format!("creating a temporary directory: {e}"))
            })?),
            None => None,
        };
    let mut tee = Tee {
        layout,
        compression,
        written: Vec::new(),
        current: None,
        input: n,
        counter: 0,
        cache: cache.zip(spill.as_ref().map(|d| d.path())),
    };
    let set = {
        let mut opts = ReadOptions {
            limits,
            spill: spill.as_ref().map(|d| d.path()),
            tee: Some(&mut tee),
            cache: None,
        };
        image::read(input, source, format, &mut opts).map_err(bad)?
    };
    Ok((set, tee.written))
}

/// The platform an image goes into the index as: what its binaries are. A config that says
/// otherwise stops assembly unless `fix_config` lets it be rewritten.
fn platform_of(
    input: &Path,
    img: &ImageFacts,
    fix_config: bool,
) -> Result<(Platform, Option<String>), AssembleError> {
    let name = format!("{} ({})", input.display(), img.manifest_digest);
    let integrity: Vec<_> = checks::blobs(&img.blobs)
        .into_iter()
        .chain([checks::diff_ids(img)])
        .filter(|c| c.status == crate::check::Status::Fail)
        .collect();
    if let Some(c) = integrity.first() {
        return Err(AssembleError::Refused(format!(
            "{name}: {} {}",
            c.id, c.message
        )));
    }
    let entry = img.entrypoint();
    let facts = entry.as_ref().and_then(|e| e.facts.as_ref());
    let Some(truth) = checks::truth(facts, img) else {
        return Err(AssembleError::Refused(format!(
            "{name}: no binary in the image tells its platform, so it cannot be placed in the index; check its Entrypoint/Cmd"
        )));
    };
    let check = checks::config_platform(img, entry.as_ref().and_then(|e| e.path.as_deref()), facts);
    if check.status != crate::check::Status::Fail {
        // The config may name a compatible row (arm/v7 for ARMv6 code): the index says what it says.
        let declared = checks::declared(&img.config.platform()).unwrap_or(truth);
        return Ok((declared, None));
    }
    if fix_config {
        return Ok((
            truth,
            Some(format!(
                "{} -> {}",
                img.config.platform().text(),
                truth.oci()
            )),
        ));
    }
    Err(AssembleError::Refused(format!(
        "{name}: {}; its binaries are {}, so it would be published under the wrong platform. Rebuild it for {}, or pass --fix-config to set its config to {}",
        check.message,
        truth.oci(),
        img.config.platform().text(),
        truth.oci()
    )))
}

/// The config with `architecture`, `os` and `variant` set to `platform`, everything else kept.
fn fixed_config(bytes: &[u8], platform: &Platform) -> Result<Vec<u8>, String> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let obj = value
        .as_object_mut()
        .ok_or("the config is not a JSON object")?;
    obj.insert("architecture".into(), platform.arch.oci_arch.into());
    obj.insert("os".into(), platform.os.as_str().into());
    match platform.arch.oci_variant {
        Some(v) => obj.insert("variant".into(), v.into()),
        None => obj.remove("variant"),
    };
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// Move the staged result into place: rename a layout, or tar it into an archive next to the
/// output and rename that, so a failure never leaves a half-written output.
pub fn finalize(req: &Request, assembled: &Assembled) -> Result<(), AssembleError> {
    let io = |what: &str, e: std::io::Error| {
        AssembleError::Input(format!("{what} {}: {e}", req.output.display()))
    };
    if req.output.exists() {
        return Err(AssembleError::Input(format!(
            "{} already exists; remove it or choose another -o",
            req.output.display()
        )));
    }
    use crate::publish::place;
    let taken = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            AssembleError::Input(format!(
                "{} appeared while assembling (another writer?); nothing was replaced",
                req.output.display()
            ))
        } else {
            io("moving the result to", e)
        }
    };
    if req.layout {
        // Never onto an existing directory: rename(2) would replace an empty one.
        place::rename_noreplace(&assembled.staged_layout, &req.output).map_err(taken)
    } else {
        // A unique name per writer, so two processes never share (and corrupt) one file.
        let temp = place::temp_beside(&req.output).map_err(|e| io("creating a file beside", e))?;
        write::write_oci_archive(&assembled.staged_layout, &temp, req.mtime)
            .map_err(|e| AssembleError::Input(e.to_string()))?;
        let written = place::sha256_file(&temp).map_err(|e| io("reading back", e))?;
        place::rename_noreplace(&temp, &req.output).map_err(taken)?;
        // The name now belongs to the output; drop the temp path without deleting it.
        let _ = temp.keep();
        // What sits at the output is what this process wrote, read again.
        let now = place::sha256_file(&req.output).map_err(|e| io("reading back", e))?;
        if now != written {
            return Err(AssembleError::Input(format!(
                "{} changed right after it was written ({written} → {now}); another process writes the same output",
                req.output.display()
            )));
        }
        Ok(())
    }
}
