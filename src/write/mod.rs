//! Writes OCI layouts/archives and docker-archives deterministically.
//!
//! - [`layer`]: layer tars (sorted, fixed mtime, root-owned) and their compressed blobs;
//! - [`layout`]: OCI image layouts, manifests, configs and indexes (OCI or Docker media types);
//! - [`archive`]: OCI archives (a tar of a layout) and docker-archives (`docker save` format).
//!
//! Same input, same bytes: JSON comes from structs in a fixed field order, tars carry no
//! host metadata, gzip headers carry no name or time. Nothing here names an architecture;
//! platforms come in as [`Platform`](crate::platform::Platform) values.

pub mod archive;
pub mod layer;
pub mod layout;

pub use archive::{DockerArchive, write_oci_archive};
pub use layer::{BlobWriter, Compression, Entry, EntryKind, LayerBuilder, LayerInfo};
pub use layout::{Blob, Flavour, LayoutWriter, RunConfig};

use sha2::Digest as _;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Everything that can go wrong while writing an image.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write failed: {0}")]
    Stream(#[from] io::Error),
    #[error("cannot serialise JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid OCI value: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("'{0}' is not a relative path without '..' (layer entries must stay inside the root)")]
    UnsafePath(String),
    #[error("'{0}' appears twice in one layer")]
    Duplicate(String),
    #[error("{} is neither a file, a directory nor a symlink", .0.display())]
    FileType(PathBuf),
    #[error("{0:?} layers have no Docker media type; use OCI media types")]
    NoDockerType(Compression),
}

pub type Result<T, E = WriteError> = std::result::Result<T, E>;

/// `map_err` helper: an I/O error with what was being done to which path.
pub(crate) fn io_at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io {
        action,
        path,
        source,
    }
}

/// A SHA-256 digest; displays as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, as in `blobs/sha256/<hex>`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest as oci-spec's type.
    pub fn oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::try_from(self.to_string())
            .expect("64 lowercase hex digits are a valid sha256 digest")
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, Sha256, u64) {
        (self.inner, Sha256(self.hasher.finalize().into()), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
