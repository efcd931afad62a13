//! Index-level checks of an image set, and the index a podman push script would make.

use crate::check::image as checks;
use crate::image::ImageSet;
use crate::report::Artifact;
use crate::settings::Settings;
use std::path::Path;

/// Index-level checks (duplicates, expected platforms, media types), when there is an index
/// or the user named platforms to expect.
/// `absent`: the failure of a `--platform` the input does not have.
pub(crate) fn index_artifact(
    input: &str,
    set: &ImageSet,
    options: &Settings,
    absent: Option<crate::check::CheckResult>,
) -> Option<Artifact> {
    let has_platforms = set.entries.iter().any(|e| e.platform.is_some());
    let empty = crate::check::structure::nothing_verified(set);
    let expected = super::expect::index_expected(set, options);
    if !has_platforms && expected.is_none() && empty.is_none() && absent.is_none() {
        return None;
    }
    let mut results: Vec<_> = empty.into_iter().chain(absent).collect();
    let index_blobs: Vec<_> = set
        .blobs
        .iter()
        .filter(|b| b.role == "index")
        .cloned()
        .collect();
    // Attestations and artifacts about no image here are the index's to check.
    let index_blobs: Vec<_> = index_blobs
        .into_iter()
        .chain(
            set.attachments
                .iter()
                .filter(|a| {
                    !a.subject
                        .as_ref()
                        .is_some_and(|s| set.images.iter().any(|i| &i.manifest_digest == s))
                })
                .flat_map(|a| a.blobs.iter().cloned()),
        )
        .collect();
    if !index_blobs.is_empty() {
        results.extend(checks::blobs(&index_blobs));
    }
    if has_platforms {
        results.push(checks::duplicates(&set.entries));
        let listed: Vec<_> = set.nested.iter().chain(&set.entries).cloned().collect();
        results.push(checks::media_types(&listed));
    }
    results.extend(expected);
    // A registry's index is known by the digest it served for the tag.
    let served = input
        .starts_with("docker://")
        .then(|| index_blobs.iter().find(|b| b.referenced_by == "index.json"))
        .flatten()
        .and_then(|b| b.actual_digest.as_deref())
        .and_then(|d| d.strip_prefix("sha256:"))
        .unwrap_or_default()
        .to_string();
    let mut artifact = super::synthetic(
        format!("{input}@index"),
        input.to_string(),
        "index",
        "an index has nothing to run",
        results,
    );
    // Else what a registry would know the input by (`index.json`'s one descriptor, or
    // index.json itself).
    artifact.sha256 = if served.is_empty() {
        set.root
            .as_ref()
            .and_then(|r| crate::image::docs::check_digest(&r.digest).ok())
            .unwrap_or_default()
            .to_string()
    } else {
        served
    };
    artifact.size = set.root.as_ref().map_or(0, |r| r.size);
    Some(artifact)
}

/// The images a push script names, read as the one index `podman manifest create` would make
/// of them: each listed under its config's platform, as podman does.
pub fn read_push_script(
    input: &Path,
    script: &crate::image::script::PushScript,
    read: &mut crate::image::ReadOptions<'_>,
) -> crate::error::Result<ImageSet> {
    let mut set = ImageSet {
        path: input.to_path_buf(),
        format: crate::image::Format::DockerArchive,
        entries: Vec::new(),
        images: Vec::new(),
        blobs: Vec::new(),
        attachments: Vec::new(),
        nested: Vec::new(),
        root: None,
    };
    for archive in &script.archives {
        let named = |e: crate::image::ImageError| {
            crate::error::Error::input(
                &script.script,
                format!("docker-archive:{}: {e}", archive.display()),
            )
        };
        if !archive.exists() {
            return Err(crate::error::Error::input(
                &script.script,
                format!(
                    "names docker-archive:{}, which does not exist; build the images first (nix build)",
                    archive.display()
                ),
            ));
        }
        let (source, format) = crate::image::detect(archive, read.limits)
            .map_err(named)?
            .ok_or_else(|| {
                crate::error::Error::input(
                    &script.script,
                    format!(
                        "docker-archive:{} is not an image archive",
                        archive.display()
                    ),
                )
            })?;
        let one = crate::image::read(archive, source, format, read).map_err(named)?;
        for (n, mut img) in one.images.into_iter().enumerate() {
            img.manifest_digest = format!("{}#{n}", archive.display());
            let listed = img.config.platform();
            img.index_platform = Some(listed.clone());
            set.entries.push(crate::image::IndexEntry {
                digest: img.manifest_digest.clone(),
                media_type: crate::image::docs::DOCKER_MANIFEST.into(),
                platform: Some(listed),
                listed_in: crate::image::docs::DOCKER_LIST.into(),
            });
            set.images.push(img);
        }
        set.blobs.extend(one.blobs);
    }
    Ok(set)
}
