//! OCI archives (a tar of a layout directory) and docker-archives (`docker save` format).

use super::layer::{Compression, LayerBuilder};
use super::layout::{RunConfig, image_config, to_json};
use super::{Hashing, Result, Sha256, io_at};
use crate::platform::Platform;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Writes `out` as a tar of the layout directory `layout`: entries in name order, `mtime`
/// on every entry, root-owned, uncompressed (what `oci-archive:` readers expect).
pub fn write_oci_archive(layout: &Path, out: &Path, mtime: u64) -> Result<()> {
    let file = File::create(out).map_err(io_at("create", out))?;
    let counted = crate::progress::current()
        .bytes(format!("writing {}", out.display()), None)
        .writer(BufWriter::new(file));
    let mut tar = LayerBuilder::new(counted, Compression::None, mtime)?;
    tar.tree(layout, "")?;
    let (counted, _) = tar.finish()?;
    counted
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?;
    Ok(())
}

/// One image of `manifest.json` in a `docker save` archive.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage<'a> {
    config: String,
    repo_tags: [&'a str; 1],
    layers: Vec<String>,
}

/// A docker-archive being written: `<diff_id hex>/layer.tar` per layer (uncompressed), then
/// `<config digest hex>.json` and `manifest.json` last, as nixpkgs' `streamLayeredImage` does.
/// With `gzip`, the whole archive is gzipped (`dockerTools.buildLayeredImage` output).
pub struct DockerArchive<W: Write> {
    tar: LayerBuilder<W>,
    mtime: u64,
    diff_ids: Vec<Sha256>,
}

impl<W: Write> DockerArchive<W> {
    pub fn new(out: W, gzip: bool, mtime: u64) -> Result<Self> {
        let compression = if gzip {
            Compression::Gzip
        } else {
            Compression::None
        };
        Ok(DockerArchive {
            tar: LayerBuilder::new(out, compression, mtime)?,
            mtime,
            diff_ids: Vec::new(),
        })
    }

    /// A layer built by `fill`; it goes through an anonymous temporary file because the
    /// archive's tar header needs its size first.
    pub fn add_layer(
        &mut self,
        fill: impl FnOnce(&mut LayerBuilder<BufWriter<File>>) -> Result<()>,
    ) -> Result<Sha256> {
        let temp = tempfile::tempfile()?;
        let mut layer = LayerBuilder::new(BufWriter::new(temp), Compression::None, self.mtime)?;
        fill(&mut layer)?;
        let (out, info) = layer.finish()?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.append_layer(info.diff_id, info.size, file)
    }

    /// An uncompressed layer tar made elsewhere (read twice: to hash it, then to copy it).
    pub fn add_layer_tar(&mut self, path: &Path) -> Result<Sha256> {
        let mut file = File::open(path).map_err(io_at("open", path))?;
        let mut hashing = Hashing::new(io::sink());
        io::copy(&mut file, &mut hashing).map_err(io_at("read", path))?;
        let (_, diff_id, size) = hashing.finish();
        file.seek(SeekFrom::Start(0))
            .map_err(io_at("rewind", path))?;
        self.append_layer(diff_id, size, file)
    }

    /// The layers so far, as the config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> &[Sha256] {
        &self.diff_ids
    }

    /// Writes the config for `platform` and `manifest.json` naming `repo_tag` (`name:tag`).
    pub fn finish(self, platform: &Platform, run: &RunConfig, repo_tag: &str) -> Result<W> {
        let config = image_config(platform, run, &self.diff_ids);
        self.finish_with(&config, repo_tag)
    }

    /// Like [`DockerArchive::finish`] with a config of the caller's making.
    pub fn finish_with<C: Serialize>(mut self, config: &C, repo_tag: &str) -> Result<W> {
        let config = to_json(config)?;
        let config_name = format!("{}.json", Sha256::of(&config).hex());
        self.tar.file(&config_name, 0o644, &config)?;
        let saved = [SavedImage {
            config: config_name,
            repo_tags: [repo_tag],
            layers: self.diff_ids.iter().map(layer_name).collect(),
        }];
        self.tar.file("manifest.json", 0o644, &to_json(&saved)?)?;
        Ok(self.tar.finish()?.0)
    }

    fn append_layer(&mut self, diff_id: Sha256, size: u64, tar: impl Read) -> Result<Sha256> {
        // The same layer twice is listed twice but stored once.
        if !self.diff_ids.contains(&diff_id) {
            self.tar
                .file_from(&layer_name(&diff_id), 0o644, size, tar)?;
        }
        self.diff_ids.push(diff_id);
        Ok(diff_id)
    }
}

fn layer_name(diff_id: &Sha256) -> String {
    format!("{}/layer.tar", diff_id.hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::ARCHES;
    use crate::write::layout::{Flavour, LayoutWriter};
    use std::fs;

    fn platform() -> Platform {
        Platform::linux(&ARCHES[0])
    }

    fn docker_archive(gzip: bool) -> Vec<u8> {
        let mut archive = DockerArchive::new(Vec::new(), gzip, 0).unwrap();
        archive
            .add_layer(|l| l.file("nix/store/a-x/bin/x", 0o755, b"x"))
            .unwrap();
        archive
            .add_layer(|l| l.file("nix/store/b-y/lib/y", 0o644, b"y"))
            .unwrap();
        let run = RunConfig {
            cmd: Some(vec!["/nix/store/a-x/bin/x".into()]),
            ..RunConfig::default()
        };
        archive.finish(&platform(), &run, "demo:latest").unwrap()
    }

    #[test]
    fn docker_archives_are_deterministic_and_list_their_layers() {
        let gz = docker_archive(true);
        assert_eq!(gz, docker_archive(true));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar, docker_archive(false));

        let mut files = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(entry.path().unwrap().display().to_string(), data);
        }
        let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config: serde_json::Value = serde_json::from_slice(&files[config_name]).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "demo:latest");
        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        for (layer, diff_id) in layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            let data = &files[layer.as_str().unwrap()];
            assert_eq!(&Sha256::of(data).to_string(), diff_id);
        }
        assert_eq!(config["architecture"], platform().arch.oci_arch);
    }

    #[test]
    fn oci_archives_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let build = |name: &str| {
            let layout = LayoutWriter::create(dir.path().join(name)).unwrap();
            let layer = layout
                .add_layer(Compression::Gzip, 0, |l| l.file("hello", 0o755, b"hi"))
                .unwrap();
            let image = layout
                .add_image(Flavour::Oci, &platform(), &RunConfig::default(), &[layer])
                .unwrap();
            layout.write_index(vec![image]).unwrap();
            let out = dir.path().join(format!("{name}.tar"));
            write_oci_archive(layout.dir(), &out, 0).unwrap();
            fs::read(out).unwrap()
        };
        let a = build("a");
        assert_eq!(a, build("b"));
        let names: Vec<String> = tar::Archive::new(&a[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
        assert!(names[2].starts_with("blobs/sha256/"), "{names:?}");
        assert!(names.ends_with(&["index.json".to_string(), "oci-layout".to_string()]));
    }
}
