//! Index-level checks of an image set, and the index a podman push script would make.

use crate::check::image as checks;
use crate::image::ImageSet;
use crate::platform::Platform;
use crate::report::Artifact;
use crate::run::RunReport;
use crate::settings::Settings;
use std::path::Path;

/// Index-level checks (duplicates, expected platforms, media types), when there is an index
/// or the user named platforms to expect.
pub(crate) fn index_artifact(input: &str, set: &ImageSet, options: &Settings) -> Option<Artifact> {
    let has_platforms = set.entries.iter().any(|e| e.platform.is_some());
    let empty = crate::image::nothing_verified(set);
    if !has_platforms && options.expects.is_empty() && empty.is_none() {
        return None;
    }
    let mut results: Vec<_> = empty.into_iter().collect();
    let index_blobs: Vec<_> = set
        .blobs
        .iter()
        .filter(|b| b.role == "index")
        .cloned()
        .collect();
    if !index_blobs.is_empty() {
        results.extend(checks::blobs(&index_blobs));
    }
    if has_platforms {
        results.push(checks::duplicates(&set.entries));
        results.push(checks::media_types(&set.entries));
    }
    if !options.expects.is_empty() {
        let present: Vec<Platform> = set
            .images
            .iter()
            .filter_map(|img| {
                img.index_platform
                    .as_ref()
                    .and_then(checks::declared)
                    .or_else(|| checks::declared(&img.config.platform()))
            })
            .collect();
        let expected: Vec<Platform> = options.expects.iter().map(|e| e.platform).collect();
        results.push(checks::expected(&present, &expected, options.allow_extra));
    }
    Some(Artifact {
        path: format!("{input}@index"),
        resolved_path: input.to_string(),
        // What a registry knows the input by (`index.json`'s one descriptor, or index.json).
        sha256: set
            .root
            .as_ref()
            .and_then(|r| crate::image::docs::check_digest(&r.digest).ok())
            .unwrap_or_default()
            .to_string(),
        size: set.root.as_ref().map_or(0, |r| r.size),
        kind: "index",
        platform: None,
        expected: None,
        facts: None,
        image: None,
        closure: None,
        run: RunReport::NotRun {
            reason: "an index has nothing to run".into(),
        },
        checks: results,
        subject: None,
    })
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
