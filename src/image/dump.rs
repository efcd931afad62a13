//! The final rootfs of an image as the reader sees it, every file with its mode and digest:
//! what the differential tests compare with the tree `umoci unpack` extracts.

use super::view::Node;
use super::{ImageError, Limits, ReadOptions};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpNode {
    /// Mode bits (`& 0o7777`) and `sha256:…` of the contents.
    File {
        mode: u32,
        sha256: String,
    },
    Dir,
    Symlink(String),
}

/// One image as read: its manifest, its command line and its final rootfs.
#[derive(Debug)]
pub struct Dump {
    pub manifest_digest: String,
    pub entrypoint: Vec<String>,
    pub tree: BTreeMap<String, DumpNode>,
}

/// Read the first image of an OCI layout or archive, or docker-archive, exactly as a
/// verification does, recording every file. Directories implied by their files are listed.
pub fn dump(path: &Path, limits: &Limits) -> Result<Dump, ImageError> {
    let (source, format) = super::detect(path, limits)?
        .ok_or_else(|| ImageError::Hostile(format!("{}: not an image", path.display())))?;
    let mut opts = ReadOptions {
        limits,
        spill: None,
        tee: None,
        cache: None,
    };
    let set = super::read_with(path, source, format, &mut opts, true)?;
    let image = set
        .images
        .first()
        .ok_or_else(|| ImageError::Hostile(format!("{}: no image", path.display())))?;
    let mut tree = BTreeMap::new();
    for (p, node) in &image.view.nodes {
        let entry = match node {
            Node::File { content, .. } => {
                let c = content.as_ref().ok_or_else(|| {
                    ImageError::Hostile(format!("{p}: read without its contents recorded"))
                })?;
                DumpNode::File {
                    mode: c.mode,
                    sha256: c.sha256.clone(),
                }
            }
            Node::Dir => DumpNode::Dir,
            Node::Symlink(t) => DumpNode::Symlink(t.clone()),
        };
        let mut parent = p.as_str();
        while let Some(cut) = parent.rfind('/') {
            parent = &parent[..cut];
            if parent.is_empty() {
                break;
            }
            tree.entry(parent.to_string()).or_insert(DumpNode::Dir);
        }
        if p != "/" {
            tree.insert(p.clone(), entry);
        }
    }
    let cfg = image.config.config.as_ref();
    let mut entrypoint = cfg.and_then(|c| c.entrypoint.clone()).unwrap_or_default();
    entrypoint.extend(cfg.and_then(|c| c.cmd.clone()).unwrap_or_default());
    Ok(Dump {
        manifest_digest: image.manifest_digest.clone(),
        entrypoint,
        tree,
    })
}
