//! Image sets: integrity, platform truth per image and the entrypoint's checks and run.

use super::execute::expected_output;
use super::image_run::{TreeRef, run_image};
use super::index::index_artifact;
use super::progress;
use crate::check::elf::{BinaryContext, ClosureState, check_binary};
use crate::check::image as checks;
use crate::check::run::check_run_required;
use crate::check::structure;
use crate::check::{Expected, ExpectedSource};
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
    let labels: Vec<String> = selected.iter().map(|img| platform_label(img)).collect();
    let mut artifacts: Vec<Artifact> = selected
        .par_iter()
        .zip(&labels)
        .map(|(img, label)| {
            // Two images listed under one platform are told apart by ref name and digest.
            let label = if labels.iter().filter(|l| *l == label).count() > 1 {
                format!("{label}#{}", identity(img))
            } else {
                label.clone()
            };
            image_artifact(&input, set, img, &label, options, &overrides, spill)
        })
        .collect();
    let present = super::expect::declared_platforms(set);
    let absent = options
        .platform_filter
        .as_ref()
        .and_then(|want| checks::requested_platform(want, &present));
    if let Some(index) = index_artifact(&input, set, options, absent) {
        artifacts.insert(0, index);
    }
    let mut subject =
        crate::report::subject::Subject::of_images(&input, set.root.as_ref(), &artifacts);
    if let Ok(crate::image::reference::ImageRef::Registry(r)) =
        crate::image::reference::parse(&input)
    {
        subject.read_from(&r);
    }
    if let Some(first) = artifacts.first_mut() {
        first.subject = Some(subject);
    }
    artifacts
}

/// The platform an image is listed under (its config's when no index lists it).
fn platform_label(image: &ImageFacts) -> String {
    image
        .index_platform
        .as_ref()
        .map(|p| p.text())
        .unwrap_or_else(|| image.config.platform().text())
}

/// `REF@sha256:<12 hex>`, or the digest alone when no ref name lists it.
fn identity(image: &ImageFacts) -> String {
    let short: String = image.manifest_digest.chars().take(19).collect();
    match image.ref_names.first() {
        Some(r) => format!("{r}@{short}"),
        None => short,
    }
}

#[allow(clippy::too_many_arguments)]
fn image_artifact(
    input: &str,
    set: &ImageSet,
    image: &ImageFacts,
    label: &str,
    options: &Settings,
    overrides: &run::EmulatorOverrides,
    spill: Option<&Path>,
) -> Artifact {
    let entry = image.entrypoint();
    let truth = checks::truth(entry.as_ref().and_then(|e| e.facts.as_ref()), image);
    let expected = expected_of(image, truth);
    let path = format!("{input}@{label}");

    let attached: Vec<_> = set
        .attachments
        .iter()
        .filter(|a| a.subject.as_deref() == Some(image.manifest_digest.as_str()))
        .collect();
    let manifest_blobs: Vec<_> = set
        .blobs
        .iter()
        .filter(|b| b.declared_digest.as_deref() == Some(image.manifest_digest.as_str()))
        .cloned()
        .chain(image.blobs.iter().cloned())
        .chain(attached.iter().flat_map(|a| a.blobs.iter().cloned()))
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
            results.push(checks::no_entrypoint(image));
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
            results.push(structure::entrypoint_not_in_image(
                &argv[0],
                &image.manifest_digest,
            ));
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
            results.push(structure::entrypoint_not_a_binary(p));
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
            results.push(structure::no_platform());
        }
    }
    if let Some(exp) = &expected {
        results.extend(check_run_required(
            &run,
            exp,
            &expected_output(&exp.platform, None, options),
            options.require_run,
        ));
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
            listed_in: image.listed_in.clone(),
            attached: attached.into_iter().cloned().collect(),
        }),
        closure,
        run,
        checks: results,
        subject: None,
    }
}
