//! OCI image layout directories: blobs, image configs, manifests and indexes (OCI or Docker media types).

use super::layer::{BlobWriter, Compression, LayerBuilder, LayerInfo};
use super::{Hashing, Result, Sha256, WriteError, io_at};
use crate::platform::Platform;
use oci_spec::image::{
    Arch, Config, Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest,
    ImageManifestBuilder, MediaType, Os, RootFs,
};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The annotation naming an image in `index.json` (the `tag` of `oci:DIR:tag`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Which family of media types manifests, configs, layers and indexes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    Oci,
    /// Docker image manifest v2 schema 2 and manifest list.
    Docker,
}

impl Flavour {
    pub fn manifest_type(self) -> MediaType {
        match self {
            Flavour::Oci => MediaType::ImageManifest,
            Flavour::Docker => MediaType::Other(DOCKER_MANIFEST.into()),
        }
    }

    pub fn index_type(self) -> MediaType {
        match self {
            Flavour::Oci => MediaType::ImageIndex,
            Flavour::Docker => MediaType::Other(DOCKER_LIST.into()),
        }
    }

    pub fn config_type(self) -> MediaType {
        match self {
            Flavour::Oci => MediaType::ImageConfig,
            Flavour::Docker => MediaType::Other(DOCKER_CONFIG.into()),
        }
    }

    /// Docker has no zstd layer type.
    pub fn layer_type(self, compression: Compression) -> Result<MediaType> {
        Ok(match (self, compression) {
            (Flavour::Oci, Compression::None) => MediaType::ImageLayer,
            (Flavour::Oci, Compression::Gzip) => MediaType::ImageLayerGzip,
            (Flavour::Oci, Compression::Zstd) => MediaType::ImageLayerZstd,
            (Flavour::Docker, Compression::None) => MediaType::Other(DOCKER_LAYER.into()),
            (Flavour::Docker, Compression::Gzip) => MediaType::Other(DOCKER_LAYER_GZIP.into()),
            (Flavour::Docker, Compression::Zstd) => {
                return Err(WriteError::NoDockerType(compression));
            }
        })
    }
}

/// A blob stored in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    pub digest: Sha256,
    pub size: u64,
}

impl Blob {
    pub fn descriptor(&self, media_type: MediaType) -> Descriptor {
        Descriptor::new(media_type, self.size, self.digest.oci())
    }
}

impl From<LayerInfo> for Blob {
    fn from(layer: LayerInfo) -> Blob {
        Blob {
            digest: layer.digest,
            size: layer.size,
        }
    }
}

/// What a container of the image runs: the config besides platform and layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `created`, RFC 3339; left out when `None` (as dockerTools leaves it at the epoch).
    pub created: Option<String>,
    /// When set, one history entry per layer with this `created_by`.
    pub history: Option<String>,
}

/// `platform` as an OCI platform object (`architecture`, `os`, `variant`).
pub fn oci_platform(platform: &Platform) -> oci_spec::image::Platform {
    let mut p = oci_spec::image::Platform::default();
    p.set_architecture(Arch::from(platform.arch.oci_arch))
        .set_os(Os::from(platform.os.as_str()))
        .set_variant(platform.arch.oci_variant.map(str::to_string));
    p
}

/// The image config of one platform: architecture/os/variant, run settings, `rootfs.diff_ids`.
pub fn image_config(
    platform: &Platform,
    run: &RunConfig,
    diff_ids: &[Sha256],
) -> ImageConfiguration {
    let mut config = Config::default();
    config
        .set_entrypoint(run.entrypoint.clone())
        .set_cmd(run.cmd.clone())
        .set_env((!run.env.is_empty()).then(|| run.env.clone()))
        .set_working_dir(run.working_dir.clone());
    let mut rootfs = RootFs::default();
    rootfs
        .set_typ("layers".to_string())
        .set_diff_ids(diff_ids.iter().map(Sha256::to_string).collect());
    let history = run.history.as_ref().map(|created_by| {
        diff_ids
            .iter()
            .map(|_| {
                let mut h = History::default();
                h.set_created(run.created.clone())
                    .set_created_by(Some(created_by.clone()));
                h
            })
            .collect()
    });
    let mut image = ImageConfiguration::default();
    image
        .set_created(run.created.clone())
        .set_architecture(Arch::from(platform.arch.oci_arch))
        .set_os(Os::from(platform.os.as_str()))
        .set_variant(platform.arch.oci_variant.map(str::to_string))
        .set_config(Some(config))
        .set_rootfs(rootfs)
        .set_history(history);
    image
}

/// An image manifest: `config` and `layers` in this flavour's media types.
pub fn image_manifest(
    flavour: Flavour,
    config: &Blob,
    layers: &[LayerInfo],
) -> Result<ImageManifest> {
    let layers = layers
        .iter()
        .map(|l| Ok(Blob::from(*l).descriptor(flavour.layer_type(l.compression)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(flavour.manifest_type())
        .config(config.descriptor(flavour.config_type()))
        .layers(layers)
        .build()?)
}

/// An image index (or Docker manifest list) over `manifests`, in their order.
pub fn image_index(flavour: Flavour, manifests: Vec<Descriptor>) -> ImageIndex {
    let mut index = ImageIndex::default();
    index
        .set_schema_version(2)
        .set_media_type(Some(flavour.index_type()))
        .set_manifests(manifests);
    index
}

/// `descriptor` with the `org.opencontainers.image.ref.name` annotation set to `name`.
pub fn with_ref_name(mut descriptor: Descriptor, name: &str) -> Descriptor {
    descriptor.set_annotations(Some(HashMap::from([(
        REF_NAME.to_string(),
        name.to_string(),
    )])));
    descriptor
}

/// Compact JSON; key order is the field order of the oci-spec structs. (Their annotation
/// maps are `HashMap`s: keep them to one key, as this module does, for stable bytes.)
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// An OCI image layout directory being written: `oci-layout`, `blobs/sha256/<hex>`, and
/// `index.json` once [`LayoutWriter::write_index`] is called.
#[derive(Debug)]
pub struct LayoutWriter {
    dir: PathBuf,
    blobs: PathBuf,
}

impl LayoutWriter {
    /// Creates `dir` (and parents) with `oci-layout` and an empty `blobs/sha256/`.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_at("create", &blobs))?;
        let marker = dir.join("oci-layout");
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(io_at("write", &marker))?;
        Ok(LayoutWriter { dir, blobs })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, digest: &Sha256) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn add_bytes(&self, bytes: &[u8]) -> Result<Blob> {
        let blob = Blob {
            digest: Sha256::of(bytes),
            size: bytes.len() as u64,
        };
        let path = self.blob_path(&blob.digest);
        fs::write(&path, bytes).map_err(io_at("write", &path))?;
        Ok(blob)
    }

    pub fn add_json<T: Serialize>(&self, value: &T) -> Result<Blob> {
        self.add_bytes(&to_json(value)?)
    }

    /// Copies a file in as a blob, hashing it on the way (one pass, bounded memory).
    pub fn add_file(&self, path: &Path) -> Result<Blob> {
        let mut src = File::open(path).map_err(io_at("open", path))?;
        self.stream_in(|out| {
            let mut out = Hashing::new(out);
            io::copy(&mut src, &mut out).map_err(io_at("read", path))?;
            let (out, digest, size) = out.finish();
            Ok((out, Blob { digest, size }))
        })
    }

    /// A layer built by `fill`, streamed to its blob file.
    pub fn add_layer(
        &self,
        compression: Compression,
        mtime: u64,
        fill: impl FnOnce(&mut LayerBuilder<BufWriter<File>>) -> Result<()>,
    ) -> Result<LayerInfo> {
        self.stream_layer(|out| {
            let mut layer = LayerBuilder::new(out, compression, mtime)?;
            fill(&mut layer)?;
            layer.finish()
        })
    }

    /// A layer from an uncompressed tar stream made elsewhere (kept byte for byte).
    pub fn add_layer_tar(&self, mut tar: impl Read, compression: Compression) -> Result<LayerInfo> {
        self.stream_layer(|out| {
            let mut blob = BlobWriter::new(out, compression)?;
            io::copy(&mut tar, &mut blob)?;
            blob.finish()
        })
    }

    /// Config and manifest of one image; returns the manifest's descriptor with `platform` set.
    pub fn add_image(
        &self,
        flavour: Flavour,
        platform: &Platform,
        run: &RunConfig,
        layers: &[LayerInfo],
    ) -> Result<Descriptor> {
        let diff_ids: Vec<Sha256> = layers.iter().map(|l| l.diff_id).collect();
        let config = self.add_json(&image_config(platform, run, &diff_ids))?;
        let mut descriptor = self.add_manifest(flavour, &config, layers)?;
        descriptor.set_platform(Some(oci_platform(platform)));
        Ok(descriptor)
    }

    /// A manifest over an already stored config; returns its descriptor (no platform).
    pub fn add_manifest(
        &self,
        flavour: Flavour,
        config: &Blob,
        layers: &[LayerInfo],
    ) -> Result<Descriptor> {
        let manifest = self.add_json(&image_manifest(flavour, config, layers)?)?;
        Ok(manifest.descriptor(flavour.manifest_type()))
    }

    /// An index blob (for nesting, or a Docker manifest list); returns its descriptor.
    pub fn add_index(&self, flavour: Flavour, manifests: Vec<Descriptor>) -> Result<Descriptor> {
        let index = self.add_json(&image_index(flavour, manifests))?;
        Ok(index.descriptor(flavour.index_type()))
    }

    /// Writes `index.json`, always an OCI index as the layout spec requires.
    pub fn write_index(&self, manifests: Vec<Descriptor>) -> Result<()> {
        let path = self.dir.join("index.json");
        let json = to_json(&image_index(Flavour::Oci, manifests))?;
        fs::write(&path, json).map_err(io_at("write", &path))
    }

    fn stream_layer(
        &self,
        write: impl FnOnce(BufWriter<File>) -> Result<(BufWriter<File>, LayerInfo)>,
    ) -> Result<LayerInfo> {
        let mut info = None;
        self.stream_in(|out| {
            let (out, layer) = write(out)?;
            info = Some(layer);
            Ok((out, Blob::from(layer)))
        })?;
        Ok(info.expect("stream_in ran the writer"))
    }

    /// Runs `write` on a temporary file in `blobs/sha256/`, then renames it to its digest.
    fn stream_in(
        &self,
        write: impl FnOnce(BufWriter<File>) -> Result<(BufWriter<File>, Blob)>,
    ) -> Result<Blob> {
        let temp =
            tempfile::NamedTempFile::new_in(&self.blobs).map_err(io_at("create", &self.blobs))?;
        let (file, temp_path) = temp.into_parts();
        let (out, blob) = write(BufWriter::new(file))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        let path = self.blob_path(&blob.digest);
        temp_path.persist(&path).map_err(|e| WriteError::Io {
            action: "rename into",
            path,
            source: e.error,
        })?;
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::ARCHES;

    fn platform() -> Platform {
        let arch = ARCHES
            .iter()
            .find(|a| a.oci_variant.is_some())
            .expect("a row with a variant");
        Platform::linux(arch)
    }

    /// Every file below `dir`, relative path → bytes.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn write(dir: &Path, flavour: Flavour) -> Descriptor {
        let layout = LayoutWriter::create(dir).unwrap();
        let layer = layout
            .add_layer(Compression::Gzip, 0, |l| {
                l.file("nix/store/h-demo/bin/demo", 0o755, b"\x7fELF")
            })
            .unwrap();
        let run = RunConfig {
            cmd: Some(vec!["/nix/store/h-demo/bin/demo".into()]),
            env: vec!["PATH=/bin".into()],
            history: Some("test".into()),
            ..RunConfig::default()
        };
        let image = layout
            .add_image(flavour, &platform(), &run, &[layer])
            .unwrap();
        let list = layout.add_index(flavour, vec![image]).unwrap();
        let top = with_ref_name(list.clone(), "latest");
        layout.write_index(vec![top]).unwrap();
        list
    }

    #[test]
    fn layouts_are_deterministic_and_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a"), Flavour::Oci);
        write(&dir.path().join("b"), Flavour::Oci);
        let a = files(&dir.path().join("a"));
        assert_eq!(a, files(&dir.path().join("b")));
        for (name, bytes) in &a {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(Sha256::of(bytes).hex(), hex);
            }
        }
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"oci-layout") && names.contains(&"index.json"));
        assert_eq!(
            names.len(),
            2 + 4,
            "layer, config, manifest, index blobs: {names:?}"
        );
    }

    #[test]
    fn manifests_configs_and_indexes_carry_platform_and_media_types() {
        let dir = tempfile::tempdir().unwrap();
        for (flavour, manifest_type, layer_type) in [
            (
                Flavour::Oci,
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (Flavour::Docker, DOCKER_MANIFEST, DOCKER_LAYER_GZIP),
        ] {
            let root = dir.path().join(format!("{flavour:?}"));
            let list = write(&root, flavour);
            let read = |d: &Descriptor| {
                let path = root.join("blobs/sha256").join(d.digest().digest());
                serde_json::from_slice::<serde_json::Value>(&fs::read(path).unwrap()).unwrap()
            };
            let index: ImageIndex =
                serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
            assert_eq!(index.media_type(), &Some(MediaType::ImageIndex));
            assert_eq!(
                index.manifests()[0].annotations().as_ref().unwrap()[REF_NAME],
                "latest"
            );
            let inner = read(&list);
            assert_eq!(inner["mediaType"], flavour.index_type().to_string());
            let entry: Descriptor = serde_json::from_value(inner["manifests"][0].clone()).unwrap();
            let p = entry.platform().as_ref().unwrap();
            assert_eq!(p.architecture().to_string(), platform().arch.oci_arch);
            assert_eq!(p.variant().as_deref(), platform().arch.oci_variant);
            let manifest = read(&entry);
            assert_eq!(manifest["mediaType"], manifest_type);
            assert_eq!(entry.media_type().to_string(), manifest_type);
            assert_eq!(manifest["layers"][0]["mediaType"], layer_type);
            let config_desc: Descriptor =
                serde_json::from_value(manifest["config"].clone()).unwrap();
            let config = read(&config_desc);
            assert_eq!(config["architecture"], platform().arch.oci_arch);
            assert_eq!(config["variant"], platform().arch.oci_variant.unwrap());
            assert_eq!(config["config"]["Env"][0], "PATH=/bin");
            assert_eq!(config["history"].as_array().unwrap().len(), 1);
        }
        assert!(matches!(
            Flavour::Docker.layer_type(Compression::Zstd),
            Err(WriteError::NoDockerType(_))
        ));
    }

    #[test]
    fn add_layer_tar_keeps_the_tar_and_add_file_hashes_it() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutWriter::create(dir.path().join("l")).unwrap();
        let tar = b"not really a tar, kept byte for byte".repeat(100);
        let info = layout.add_layer_tar(&tar[..], Compression::Zstd).unwrap();
        assert_eq!(info.diff_id, Sha256::of(&tar));
        let blob = fs::read(layout.blob_path(&info.digest)).unwrap();
        assert_eq!(zstd::decode_all(&blob[..]).unwrap(), tar);
        let src = dir.path().join("src");
        fs::write(&src, &tar).unwrap();
        let copied = layout.add_file(&src).unwrap();
        assert_eq!(copied.digest, Sha256::of(&tar));
        assert_eq!(fs::read(layout.blob_path(&copied.digest)).unwrap(), tar);
    }
}
