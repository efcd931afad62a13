//! Verifies image inputs: integrity, platform truth per image, index checks, and a run of each
//! platform's entrypoint from its own rootfs.

use super::{Options, expected_output, progress, run_elf};
use crate::check::elf::{BinaryContext, ClosureState, check_binary};
use crate::check::image as checks;
use crate::check::run::check_run;
use crate::check::{CheckResult, Expected, ExpectedSource, Status, ids};
use crate::image::{Entrypoint, ImageFacts, ImageSet};
use crate::inspect::BinaryFacts;
use crate::inspect::closure::{ClosureFacts, FactCache, FactTree, HostTree, resolve_closure};
use crate::platform::Platform;
use crate::report::{Artifact, ImageReport, Outlier};
use crate::rootfs::{Root, RootOrigin};
use crate::run::{self, RunReport};
use rayon::prelude::*;
use std::path::Path;

/// Where the platform of each image came from for the entrypoint's `elf.*` checks.
fn expected_of(image: &ImageFacts, truth: Option<Platform>) -> Option<Expected> {
    match checks::declared(&image.config.platform()) {
        Some(platform) => Some(Expected {
            platform,
            source: ExpectedSource::ImageConfig {
                config: image.config_digest.clone(),
            },
        }),
        None => truth.map(|platform| Expected {
            platform,
            source: ExpectedSource::Binary,
        }),
    }
}

pub fn verify_set(set: &ImageSet, options: &Options, spill: Option<&Path>) -> Vec<Artifact> {
    let input = set.path.display().to_string();
    let overrides = options.config.emulator_overrides();
    let selected: Vec<&ImageFacts> = set
        .images
        .iter()
        .filter(|img| match &options.platform_filter {
            None => true,
            Some(want) => {
                let listed = img
                    .index_platform
                    .as_ref()
                    .or(None)
                    .and_then(checks::declared);
                let config = checks::declared(&img.config.platform());
                listed
                    .or(config)
                    .is_some_and(|p| p.arch == want.arch && p.os == want.os)
            }
        })
        .collect();
    if !options.no_run && !selected.is_empty() {
        progress(&format!(
            "{input}: running {} images' entrypoints…",
            selected.len()
        ));
    }
    let mut artifacts: Vec<Artifact> = selected
        .par_iter()
        .map(|img| image_artifact(&input, set, img, options, &overrides, spill))
        .collect();
    if let Some(index) = index_artifact(&input, set, options) {
        artifacts.insert(0, index);
    }
    artifacts
}

fn image_artifact(
    input: &str,
    set: &ImageSet,
    image: &ImageFacts,
    options: &Options,
    overrides: &run::EmulatorOverrides,
    spill: Option<&Path>,
) -> Artifact {
    let entry = image.entrypoint();
    let truth = checks::truth(entry.as_ref().and_then(|e| e.facts.as_ref()), image);
    let expected = expected_of(image, truth);
    let label = image
        .index_platform
        .as_ref()
        .map(|p| p.text())
        .unwrap_or_else(|| image.config.platform().text());
    let path = format!("{input}@{label}");

    let manifest_blobs: Vec<_> = set
        .blobs
        .iter()
        .filter(|b| b.declared_digest.as_deref() == Some(image.manifest_digest.as_str()))
        .cloned()
        .chain(image.blobs.iter().cloned())
        .collect();
    let mut results = checks::blobs(&manifest_blobs);
    results.push(checks::diff_ids(image));
    if let Some(r) = checks::index_platform(image, truth) {
        results.push(r);
    }
    let entry_path = entry.as_ref().and_then(|e| e.path.clone());
    results.push(checks::config_platform(
        image,
        entry_path.as_deref(),
        entry.as_ref().and_then(|e| e.facts.as_ref()),
    ));
    let (binaries, outliers) = checks::binaries(image, expected.as_ref().map(|e| e.platform));
    results.push(binaries);

    let mut closure: Option<ClosureFacts> = None;
    let mut run = RunReport::NotRun {
        reason: "--no-run".into(),
    };
    match (&entry, &expected) {
        (None, _) => {
            results.push(
                CheckResult::fail(ids::ELF_FORMAT, "the image config has no Entrypoint or Cmd")
                    .at(format!("config {}", image.config_digest))
                    .hint("set config.Cmd (dockerTools: config.Cmd = [ \"${pkg}/bin/app\" ])"),
            );
            run = RunReport::NotRun {
                reason: "no entrypoint".into(),
            };
        }
        (
            Some(Entrypoint {
                path: None, argv, ..
            }),
            _,
        ) => {
            results.push(
                CheckResult::fail(
                    ids::ELF_FORMAT,
                    format!("the entrypoint {} does not exist in the image", argv[0]),
                )
                .expected(format!("{} inside the image's rootfs", argv[0]))
                .found("no such file")
                .at(format!("manifest {}", image.manifest_digest))
                .hint("add the program to the image contents, or fix Entrypoint/Cmd"),
            );
            run = RunReport::NotRun {
                reason: "entrypoint missing".into(),
            };
        }
        (
            Some(Entrypoint {
                facts: None,
                path: Some(p),
                ..
            }),
            _,
        ) => {
            results.push(CheckResult::skip(
                ids::ELF_FORMAT,
                format!("entrypoint {p} is not a binary (a script?)"),
            ));
            run = RunReport::NotRun {
                reason: "entrypoint is not a binary".into(),
            };
        }
        (
            Some(Entrypoint {
                facts: Some(facts),
                path: Some(p),
                argv,
            }),
            Some(exp),
        ) => {
            let mut view_tree = TreeRef(&image.view);
            closure = facts
                .elf()
                .filter(|e| e.interpreter.is_some() || !e.needed.is_empty())
                .map(|elf| resolve_closure(elf, p, exp.platform.arch, &mut view_tree));
            results.extend(check_binary(&BinaryContext {
                path: p,
                facts,
                expected: exp,
                closure: match &closure {
                    Some(c) => ClosureState::Resolved(c),
                    None => ClosureState::NoRoot("no loader or libraries to look up"),
                },
                nix_output: p.starts_with("/nix/store/"),
            }));
            if !options.no_run {
                run = run_image(image, p, facts, exp, argv, options, overrides, spill);
            }
        }
        (Some(_), None) => {
            results.push(CheckResult::fail(
                ids::ELF_FORMAT,
                "neither the config nor the binaries name a known platform",
            ));
        }
    }
    if let Some(exp) = &expected {
        let mut run_checks = check_run(&run, exp, &expected_output(&exp.platform, None, options));
        if options.require_run {
            for c in &mut run_checks {
                if c.id == ids::RUN_EXEC && matches!(run, RunReport::Skipped { .. }) {
                    c.status = Status::Fail;
                }
            }
        }
        results.extend(run_checks);
    }
    Artifact {
        path,
        resolved_path: input.to_string(),
        // Only an OCI manifest has a digest; a docker-archive image is known by its config.
        sha256: crate::image::docs::check_digest(&image.manifest_digest)
            .map(str::to_string)
            .unwrap_or_default(),
        size: 0,
        kind: "image",
        platform: truth.map(|p| p.oci()),
        expected: expected.as_ref().map(|e| crate::report::ExpectedReport {
            platform: e.platform.oci(),
            source: e.source.clone(),
        }),
        facts: entry
            .as_ref()
            .and_then(|e| e.facts.as_ref())
            .map(|f| f.identity.clone()),
        image: Some(ImageReport {
            digest: image.manifest_digest.clone(),
            media_type: image.manifest_media_type.clone(),
            config_digest: image.config_digest.clone(),
            index_platform: image.index_platform.as_ref().map(|p| p.text()),
            config_platform: image.config.platform().text(),
            layers: image.layers.clone(),
            entrypoint: entry_path,
            executables: image.view.executables().count(),
            outliers: outliers
                .into_iter()
                .map(|(path, platform)| Outlier { path, platform })
                .collect(),
        }),
        closure,
        run,
        checks: results,
    }
}

/// The view as a `FactTree` without handing out the image mutably.
struct TreeRef<'a>(&'a crate::image::view::View);

impl crate::rootfs::Tree for TreeRef<'_> {
    fn node(&self, guest_path: &str) -> Option<crate::rootfs::NodeKind> {
        self.0.node(guest_path)
    }
}

impl FactTree for TreeRef<'_> {
    fn facts(&mut self, canonical: &str) -> Option<BinaryFacts> {
        self.0.facts_at(canonical).cloned()
    }
    fn root(&self) -> Root {
        Root::new(&self.0.label, RootOrigin::Image)
    }
}

/// Lay out the image's rootfs privately and run its entrypoint there, as a container would.
#[allow(clippy::too_many_arguments)]
fn run_image(
    image: &ImageFacts,
    entry_path: &str,
    facts: &BinaryFacts,
    expected: &Expected,
    argv: &[String],
    options: &Options,
    overrides: &run::EmulatorOverrides,
    spill: Option<&Path>,
) -> RunReport {
    let Some(elf) = facts.elf() else {
        return RunReport::NotRun {
            reason: format!("a {} entrypoint cannot be run here", facts.kind()),
        };
    };
    let Some(spill) = spill else {
        return RunReport::NotRun {
            reason: "binaries were not kept".into(),
        };
    };
    let rootfs = match tempfile::Builder::new().prefix("mab-rootfs-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return RunReport::Failed {
                reason: format!("cannot create a temporary rootfs: {e}"),
            };
        }
    };
    if let Err(e) = crate::image::extract::materialize(&image.view, spill, rootfs.path()) {
        return RunReport::Failed {
            reason: format!("cannot lay out the rootfs: {e}"),
        };
    }
    let root = Root::new(rootfs.path(), RootOrigin::Image);
    let mut cache = FactCache::default();
    let closure = resolve_closure(
        elf,
        entry_path,
        expected.platform.arch,
        &mut HostTree {
            root: &root,
            cache: &mut cache,
        },
    );
    let binary = rootfs.path().join(entry_path.trim_start_matches('/'));
    run_elf(
        &binary,
        elf,
        Some(&closure),
        &expected.platform,
        options,
        overrides,
        Some(argv[1..].to_vec()),
        image.env(),
    )
}

/// Index-level checks (duplicates, expected platforms, media types), when there is an index
/// or the user named platforms to expect.
fn index_artifact(input: &str, set: &ImageSet, options: &Options) -> Option<Artifact> {
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
        let expected: Vec<Platform> = options.expects.iter().map(|(_, p)| *p).collect();
        results.push(checks::expected(&present, &expected, options.allow_extra));
    }
    Some(Artifact {
        path: format!("{input}@index"),
        resolved_path: input.to_string(),
        sha256: String::new(),
        size: 0,
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
