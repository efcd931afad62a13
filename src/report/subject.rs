//! The subject of an audit: what was verified, named by the digests a registry and its users see.

use super::Artifact;
use serde::Serialize;

/// One input as a registry or a user knows it: its reference, root digest and platforms.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subject {
    /// The input as given on the command line.
    pub input: String,
    /// `index`, `manifest`, `archive` (a docker-archive) or `files` (binaries, directories).
    pub kind: &'static str,
    /// The index digest, or the manifest digest of a single image; absent for files.
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// The tag or ref name the input carries (`org.opencontainers.image.ref.name`).
    pub tag: Option<String>,
    /// Where it is published (`push ARTIFACT REF`), or the registry reference it was read from.
    pub reference: Option<String>,
    /// The registry a `docker://` input was read from: `digest` is then what it served for
    /// `reference` (for an index, the index digest) and `tag` the tag asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub platforms: Vec<PlatformSubject>,
    /// Attestation manifests listed beside the images (digests).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<String>,
}

/// One platform of the subject: its manifest, config and the entrypoint that runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlatformSubject {
    /// The platform in OCI notation, as the binaries show it (else as listed).
    pub platform: String,
    /// The manifest digest; for a binary, its sha256.
    pub manifest: Option<String>,
    pub config: Option<String>,
    /// The entrypoint's (or binary's) path.
    pub entrypoint: Option<String>,
    pub entrypoint_sha256: Option<String>,
    /// The indexes that list this manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listed_in: Vec<String>,
}

impl Subject {
    /// The subject of an image input, from its root descriptor and its images' artifacts.
    pub fn of_images(
        input: &str,
        root: Option<&crate::image::RootDescriptor>,
        artifacts: &[Artifact],
    ) -> Subject {
        let platforms: Vec<PlatformSubject> = artifacts
            .iter()
            .filter_map(|a| {
                let img = a.image.as_ref()?;
                Some(PlatformSubject {
                    platform: a
                        .platform
                        .clone()
                        .or_else(|| img.index_platform.clone())
                        .unwrap_or_else(|| img.config_platform.clone()),
                    manifest: crate::image::docs::check_digest(&img.digest)
                        .ok()
                        .map(|_| img.digest.clone()),
                    config: Some(img.config_digest.clone()),
                    entrypoint: img.entrypoint.clone(),
                    entrypoint_sha256: img.entrypoint_sha256.clone(),
                    listed_in: Vec::new(),
                })
            })
            .collect();
        let (kind, digest, size, media_type, tag) = match root {
            Some(r) => (
                if crate::image::docs::is_index(&r.media_type) {
                    "index"
                } else {
                    "manifest"
                },
                Some(r.digest.clone()),
                Some(r.size),
                Some(r.media_type.clone()),
                r.ref_name.clone(),
            ),
            None => ("archive", None, None, None, None),
        };
        Subject {
            input: input.to_string(),
            kind,
            digest,
            size,
            media_type,
            tag,
            reference: None,
            registry: None,
            platforms,
            attestations: Vec::new(),
        }
    }

    /// The subject of binaries and directories: each binary with its sha256.
    pub fn of_files(input: &str, artifacts: &[&Artifact]) -> Subject {
        let single = match artifacts {
            [only] if only.resolved_path == input || only.path == input => Some(*only),
            _ => None,
        };
        Subject {
            input: input.to_string(),
            kind: "files",
            digest: single
                .filter(|a| !a.sha256.is_empty())
                .map(|a| format!("sha256:{}", a.sha256)),
            size: single.map(|a| a.size),
            media_type: None,
            tag: None,
            reference: None,
            registry: None,
            platforms: artifacts
                .iter()
                .filter(|a| !a.sha256.is_empty())
                .map(|a| PlatformSubject {
                    platform: a.platform.clone().unwrap_or_else(|| "unknown".into()),
                    manifest: None,
                    config: None,
                    entrypoint: Some(a.path.clone()),
                    entrypoint_sha256: Some(a.sha256.clone()),
                    listed_in: Vec::new(),
                })
                .collect(),
            attestations: Vec::new(),
        }
    }

    /// `push ARTIFACT REF`: the reference it goes to and the tag in it.
    pub fn publish_to(&mut self, reference: &str) {
        self.reference = Some(reference.to_string());
        let name = reference.rsplit('/').next().unwrap_or(reference);
        if let Some((_, tag)) = name.split_once(':').filter(|_| !name.contains('@')) {
            self.tag = Some(tag.to_string());
        }
    }

    /// `docker://REF`: read from a registry, which served `digest` for `reference`.
    pub fn read_from(&mut self, reference: &crate::publish::registry::Reference) {
        self.registry = Some(reference.registry.clone());
        self.reference = Some(reference.to_string());
        if !reference.tag.is_empty() {
            self.tag = Some(reference.tag.clone());
        }
    }

    /// One line: `index sha256:… · 1234 bytes · application/… · tag latest`.
    pub fn headline(&self) -> String {
        let mut parts = vec![match &self.digest {
            Some(d) => format!("{} {d}", self.kind),
            None => self.kind.to_string(),
        }];
        parts.extend(self.size.map(|n| format!("{n} bytes")));
        parts.extend(self.media_type.clone());
        parts.extend(self.tag.as_ref().map(|t| format!("tag {t}")));
        match (&self.registry, &self.reference) {
            (Some(registry), Some(r)) => {
                parts.push(format!("served by registry {registry} for {r}"))
            }
            (_, r) => parts.extend(r.as_ref().map(|r| format!("to {r}"))),
        }
        parts.join(" · ")
    }
}

/// Subjects for the report: those the pipeline attached, and one per input that has none
/// (binaries and directories), listing the artifacts under it.
pub fn collect(inputs: &[String], artifacts: &mut [Artifact]) -> Vec<Subject> {
    let mut subjects: Vec<Subject> = artifacts
        .iter_mut()
        .filter_map(|a| a.subject.take())
        .collect();
    let imaged: Vec<String> = subjects.iter().map(|s| s.input.clone()).collect();
    for input in inputs.iter().filter(|i| !imaged.contains(i)) {
        let under: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| a.image.is_none() && !matches!(a.kind, "index" | "set"))
            .filter(|a| {
                let within = |p: &str| {
                    p == input
                        || p.strip_prefix(input.as_str())
                            .is_some_and(|rest| rest.starts_with('/') || input.ends_with('/'))
                };
                within(&a.path) || within(&a.resolved_path)
            })
            .collect();
        subjects.push(Subject::of_files(input, &under));
    }
    subjects
}
