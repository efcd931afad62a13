//! What publishing compares: a digest of an artifact's bytes, and the digest a registry will know it by.

use crate::error::{Error, Result};
use crate::settings::Settings;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// A digest of the artifact's bytes: the file, or every file of a directory with its path.
pub fn fingerprint(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| Error::input(path, e.to_string());
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, path, &mut files).map_err(io)?;
        files.sort();
        for rel in files {
            hasher.update(rel.as_bytes());
            hasher.update([0]);
            hash_file(&path.join(&rel), &mut hasher).map_err(io)?;
        }
    } else {
        hash_file(path, &mut hasher).map_err(io)?;
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// `Err(Error::Changed)` unless `path` still has the fingerprint `before`: what was verified
/// is what gets published. `consequence` says what is refused ("nothing was pushed").
pub fn unchanged_since(path: &Path, before: &str, consequence: impl Into<String>) -> Result<()> {
    let after = fingerprint(path)?;
    if after == before {
        return Ok(());
    }
    Err(Error::Changed {
        path: path.to_path_buf(),
        before: before.to_string(),
        after,
        consequence: consequence.into(),
    })
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &p, out)?;
        } else {
            out.push(
                p.strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(())
}

fn hash_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// The digest a registry will know the artifact by: the one manifest or index `index.json`
/// names, else the bytes' fingerprint (docker-archives, binaries).
pub fn root_digest(path: &Path, options: &Settings) -> Result<String> {
    if let Ok(Some((source, _))) = crate::image::detect(path, &options.limits)
        && let Ok(Some(bytes)) =
            source.read_doc("index.json", "index.json", options.limits.max_json)
        && let Ok(index) =
            crate::image::docs::parse::<crate::image::docs::Index>(&bytes, "index.json")
        && let [only] = index.manifests.as_slice()
    {
        return Ok(only.digest.clone());
    }
    fingerprint(path)
}
