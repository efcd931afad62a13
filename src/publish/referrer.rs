//! `push --attach-attestation`: the audit's attestation pushed as an OCI 1.1 referrer of the index.

use super::registry::{Puller, PushError, PushOptions, Reference, push_layout};
use crate::image::docs::{OCI_INDEX, OCI_MANIFEST};
use crate::report::attestation::ARTIFACT_TYPE;
use serde_json::json;
use std::io::Read;
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
/// An existing referrers index at that tag (other tools' referrers) is kept: ours is added
/// to it, and an earlier copy of ours is not listed twice.
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
    let tag = fallback_tag(subject_digest);
    let (mut listed, manifests) = existing_referrers(target, &tag, opts)?;
    // The layout push walks every manifest its index lists: those already in the registry
    // are staged as read from it (their own blobs are there, so none is uploaded again).
    for bytes in &manifests {
        put_blob(dir.path(), bytes).map_err(io)?;
    }
    listed.retain(|d| d.get("digest").and_then(|v| v.as_str()) != Some(manifest_digest.as_str()));
    listed.push(json!({
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "digest": manifest_digest,
        "size": manifest_bytes.len(),
    }));
    let referrers = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": listed,
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

/// At most this many bytes of other referrers' blobs are staged to keep them listed.
const MAX_STAGED: u64 = 64 << 20;

/// The descriptors the referrers index at `tag` lists already, and each listed manifest (and
/// the blobs it names) as the registry serves it; none when there is no such tag. Read as Go readers do
/// (`docs::go_value`): a document they would refuse is refused.
fn existing_referrers(
    target: &Reference,
    tag: &str,
    opts: &PushOptions,
) -> Result<(Vec<serde_json::Value>, Vec<Vec<u8>>), PushError> {
    let at = Reference {
        tag: tag.to_string(),
        digest: None,
        ..target.clone()
    };
    let puller = Puller::connect(&at, opts.clone())?;
    let served = match puller.manifest(tag) {
        Ok(served) => served,
        Err(e) if e.status() == Some(404) => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let refuse = |why: String| PushError::Layout {
        path: std::path::PathBuf::from(format!("{target}:{tag}")),
        message: format!("the referrers index at tag {tag} cannot be read: {why}"),
        hint: "remove that tag, or fix the document it names, and push again".into(),
    };
    let value = crate::image::docs::go_value(
        &served.bytes,
        &format!("referrers index {tag}"),
        &<crate::image::docs::Index as crate::image::docs::Doc>::SHAPE,
    )
    .map_err(refuse)?;
    if value.get("mediaType").and_then(|m| m.as_str()) != Some(OCI_INDEX) {
        return Err(refuse(format!(
            "it is not an OCI index ({})",
            served.media_type
        )));
    }
    let listed = value
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    let mut manifests = Vec::new();
    let (mut blobs_read, mut staged) = (Vec::new(), 0u64);
    for d in &listed {
        let Some(digest) = d.get("digest").and_then(|v| v.as_str()) else {
            return Err(refuse("an entry has no digest".into()));
        };
        let got = puller.manifest(digest)?;
        if got.digest != digest {
            return Err(refuse(format!(
                "the registry served {} for {digest}",
                got.digest
            )));
        }
        // Its config and layers too: the layout push checks every blob a manifest names
        // (they are already in the registry, so none is uploaded again).
        let inner: serde_json::Value = crate::image::docs::go_value(
            &got.bytes,
            &format!("referrer {digest}"),
            &<crate::image::docs::Manifest as crate::image::docs::Doc>::SHAPE,
        )
        .map_err(refuse)?;
        let blobs = inner
            .get("config")
            .into_iter()
            .chain(
                inner
                    .get("layers")
                    .and_then(|l| l.as_array())
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|b| b.get("digest").and_then(|d| d.as_str()));
        for blob in blobs {
            let (reader, _) = puller.blob(blob)?;
            let mut bytes = Vec::new();
            reader
                .take(MAX_STAGED + 1 - staged.min(MAX_STAGED))
                .read_to_end(&mut bytes)
                .map_err(|e| refuse(format!("blob {blob}: {e}")))?;
            staged += bytes.len() as u64;
            if staged > MAX_STAGED {
                return Err(refuse(format!(
                    "its referrers hold more than {MAX_STAGED} bytes of blobs"
                )));
            }
            blobs_read.push(bytes);
        }
        manifests.push(got.bytes);
    }
    manifests.extend(blobs_read);
    Ok((listed, manifests))
}
