//! `push --attach-attestation`: the audit's attestation pushed as an OCI 1.1 referrer of the index.

use super::registry::{PushError, PushOptions, Reference, push_layout};
use crate::image::docs::{OCI_INDEX, OCI_MANIFEST};
use crate::report::attestation::ARTIFACT_TYPE;
use serde_json::json;
use std::path::Path;

/// The OCI 1.1 empty descriptor's media type, for an artifact that has no config.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// What was attached: the artifact manifest and the tag the referrers index went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub manifest: String,
    pub tag: String,
}

/// The tag an OCI 1.1 client reads a subject's referrers from when the registry has no
/// referrers API: `sha256-<hex>`.
pub fn fallback_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::inspect::sha256_hex(bytes))
}

fn put_blob(dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let digest = digest_of(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), bytes)?;
    Ok(digest)
}

/// Push `statement` as an artifact manifest whose `subject` is the pushed root, and a
/// referrers index listing it under the fallback tag. A registry with the referrers API
/// indexes the manifest by its `subject`; one without finds it by the tag, as OCI 1.1 says.
/// (An existing referrers index at that tag is replaced, not merged.)
pub fn attach(
    statement: &[u8],
    subject: (&str, &str, u64),
    target: &Reference,
    opts: &PushOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Attached, PushError> {
    let (subject_digest, subject_media_type, subject_size) = subject;
    let io = |e: std::io::Error| PushError::Layout {
        path: std::env::temp_dir(),
        message: format!("cannot stage the attestation: {e}"),
        hint: "check that the temporary directory is writable".into(),
    };
    let dir = tempfile::Builder::new()
        .prefix("mab-referrer-")
        .tempdir()
        .map_err(io)?;
    std::fs::create_dir_all(dir.path().join("blobs/sha256")).map_err(io)?;
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io)?;
    let empty = b"{}";
    let empty_digest = put_blob(dir.path(), empty).map_err(io)?;
    let layer_digest = put_blob(dir.path(), statement).map_err(io)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": { "mediaType": EMPTY_CONFIG, "digest": empty_digest, "size": empty.len() },
        "layers": [{ "mediaType": ARTIFACT_TYPE, "digest": layer_digest, "size": statement.len() }],
        "subject": { "mediaType": subject_media_type, "digest": subject_digest, "size": subject_size },
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let manifest_digest = put_blob(dir.path(), &manifest_bytes).map_err(io)?;
    let referrers = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
        }],
    });
    let referrers_bytes = serde_json::to_vec(&referrers).expect("an index serialises");
    let referrers_digest = put_blob(dir.path(), &referrers_bytes).map_err(io)?;
    let index_json = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_INDEX, "digest": referrers_digest, "size": referrers_bytes.len() }],
    });
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&index_json).expect("an index serialises"),
    )
    .map_err(io)?;
    let tag = fallback_tag(subject_digest);
    let at = Reference {
        tag: tag.clone(),
        digest: None,
        ..target.clone()
    };
    push_layout(
        dir.path(),
        &referrers_digest,
        OCI_INDEX,
        &at,
        opts,
        progress,
    )?;
    Ok(Attached {
        manifest: manifest_digest,
        tag,
    })
}
