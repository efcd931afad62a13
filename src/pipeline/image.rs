//! Image sets: integrity, platform truth per image and the entrypoint's checks and run.

use super::execute::expected_output;
use super::image_run::{TreeRef, run_image};
use super::index::index_artifact;
use super::progress;
use crate::check::elf::{BinaryContext, ClosureState, check_binary};
use crate::check::image as checks;
use crate::check::run::check_run;
use crate::check::{CheckResult, Expected, ExpectedSource, Status, ids};
use crate::image::{Entrypoint, ImageFacts, ImageSet};
use crate::inspect::closure::{ClosureFacts, resolve_closure};
use crate::platform::Platform;
use crate::report::{Artifact, ImageReport, Outlier};
use crate::run::{self, RunReport};
use crate::settings::Settings;
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

pub fn verify_set(set: &ImageSet, options: &Settings, spill: Option<&Path>) -> Vec<Artifact> {
    let input = set.path.display().to_string();
    let overrides = options.emulators.clone();
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
    let subject = crate::report::subject::Subject::of_images(&input, set.root.as_ref(), &artifacts);
    if let Some(first) = artifacts.first_mut() {
        first.subject = Some(subject);
    }
    artifacts
}

fn image_artifact(
    input: &str,
    set: &ImageSet,
    image: &ImageFacts,
    options: &Settings,
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
            if crate::check::wrong_machine(&results) {
                run = RunReport::NotRun {
                    reason: crate::check::NOT_THIS_MACHINE.into(),
                };
            } else if !options.no_run {
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
    crate::check::apply_dependencies(&mut results);
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
            entrypoint_sha256: entry
                .as_ref()
                .and_then(|e| e.facts.as_ref())
                .map(|f| f.sha256.clone()),
            executables: image.view.executables().count(),
            outliers: outliers
                .into_iter()
                .map(|(path, platform)| Outlier { path, platform })
                .collect(),
        }),
        closure,
        run,
        checks: results,
        subject: None,
    }
}
