//! Inputs + settings → facts → checks → artifacts → report, in one direction.

mod binaries;
mod execute;
mod expect;
pub mod fingerprint;
mod image;
mod image_run;
mod index;
pub mod output;

use crate::check::{CheckResult, Expected};
use crate::discover::discover;
use crate::error::{Error, Result};
use crate::report::{Artifact, Report};
use crate::run::RunReport;
use crate::settings::Settings;
pub use binaries::{Outcome, verify_binaries};
pub use image::verify_set;
pub use output::print_report;
use std::path::{Path, PathBuf};

/// A path to verify, and what its producer says it is for (a build target's platform).
pub struct Input {
    pub path: PathBuf,
    pub declared: Option<Expected>,
}

/// A directory for binaries read from image layers until their runs; removed when dropped.
pub fn spill_dir(options: &Settings) -> Result<Option<tempfile::TempDir>> {
    if options.no_run {
        return Ok(None);
    }
    tempfile::Builder::new()
        .prefix("mab-spill-")
        .tempdir()
        .map(Some)
        .map_err(|e| Error::Io {
            context: "creating a temporary directory".into(),
            source: e,
        })
}

/// The fact cache the settings name, opened for this run's limits.
pub fn open_cache(options: &Settings) -> Option<crate::cache::Cache> {
    let settings = options.cache.as_ref()?;
    crate::cache::Cache::open(settings, &options.limits, options.all)
}

/// Verify binaries, directories, images and push scripts alike. Returns the artifacts and the
/// platforms whose runs were skipped for want of an emulator.
pub fn verify_inputs(inputs: &[Input], options: &Settings) -> Result<(Vec<Artifact>, Vec<String>)> {
    // Reads, checks and runs all share the one `--jobs` bound.
    crate::image::parallel::within(|| verify_inputs_bounded(inputs, options))
}

fn verify_inputs_bounded(
    inputs: &[Input],
    options: &Settings,
) -> Result<(Vec<Artifact>, Vec<String>)> {
    let spill = spill_dir(options)?;
    let spill_path = spill.as_ref().map(|d| d.path());
    let cache = open_cache(options);
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for input in inputs {
        let p = &input.path;
        let bad = |e: crate::image::ImageError| Error::input(p, e.to_string());
        let set_options = expect::held_to(options, input.declared.as_ref());
        let mut read = crate::image::ReadOptions {
            limits: &options.limits,
            spill: spill_path,
            tee: None,
            cache: cache.as_ref(),
        };
        // `docker://…`, `oci:DIR:REF` and the other transports; a bare path goes on below.
        let named = match p.to_str() {
            Some(text) => {
                crate::image::reference::parse(text).map_err(|e| Error::Usage(e.to_string()))?
            }
            None => crate::image::reference::ImageRef::Path(p.clone()),
        };
        if !matches!(named, crate::image::reference::ImageRef::Path(_)) {
            let (source, format) = crate::image::reference::open(
                &named,
                &options.limits,
                &options.remote,
                // index.expected counts every platform present, so with --expect all are read.
                options
                    .platform_filter
                    .filter(|_| options.expects.is_empty()),
            )?
            .ok_or_else(|| Error::input(p, "names no image"))?;
            progress(&format!("reading {}…", p.display()));
            let watch = source.network_watch();
            let set = crate::image::read(p, source, format, &mut read);
            // A registry read cut off midway is the network's failure, whatever the readers
            // above it made of the short stream.
            if let Some(failure) = watch.and_then(|w| w.failure()) {
                return Err(failure.into());
            }
            sets.push((set.map_err(bad)?, set_options));
            continue;
        }
        if !p.exists() {
            targets.extend(discover(p, options.all)?);
            continue;
        }
        if let Some(script) = crate::image::script::find(p) {
            progress(&format!(
                "{}: a push script combining {} images",
                script.script.display(),
                script.archives.len()
            ));
            sets.push((index::read_push_script(p, &script, &mut read)?, set_options));
            continue;
        }
        match crate::image::detect(p, &options.limits).map_err(bad)? {
            Some((source, format)) => {
                progress(&format!("reading {}…", p.display()));
                sets.push((
                    crate::image::read(p, source, format, &mut read).map_err(bad)?,
                    set_options,
                ));
            }
            None => {
                let mut found = discover(p, options.all)?;
                for t in &mut found {
                    t.declared = input.declared.clone();
                }
                targets.extend(found);
            }
        }
    }
    let mut outcome = verify_binaries(Vec::new(), targets, options);
    for (set, set_options) in &sets {
        crate::cache::note_hits(set);
        let artifacts = image::verify_set(set, set_options, spill_path);
        crate::cache::runs::note_hits(&set.path, &artifacts);
        for a in &artifacts {
            if let (RunReport::Skipped { .. }, Some(e)) = (&a.run, &a.expected) {
                outcome.missing_emulators.push(e.platform.clone());
            }
        }
        outcome.report.artifacts.extend(artifacts);
    }
    Ok((outcome.report.artifacts, outcome.missing_emulators))
}

/// One line per step on stderr, on a terminal and in CI logs alike; nothing with `--quiet`.
pub fn progress(message: &str) {
    crate::progress::step(message)
}

/// Verify one artifact as `mab-verify PATH` would and print its report.
pub fn verify_one(artifact: &Path, options: &Settings) -> Result<Report> {
    verify_one_to(artifact, options, None)
}

/// `verify_one` for a publish: the report's subject names where it goes (`push … REF`).
pub fn verify_one_to(
    artifact: &Path,
    options: &Settings,
    destination: Option<&str>,
) -> Result<Report> {
    let input = Input {
        path: artifact.to_path_buf(),
        declared: None,
    };
    let (artifacts, _) = verify_inputs(&[input], options)?;
    let mut report = Report::new(
        vec![artifact.display().to_string()],
        artifacts,
        options.strict,
    );
    if let Some(to) = destination {
        report.subjects.iter_mut().for_each(|s| s.publish_to(to));
    }
    output::print_report(&report, &options.output)?;
    Ok(report)
}

/// An artifact that stands for a build that produced nothing to verify.
pub fn unbuilt(path: &str, resolved: &str, check: CheckResult) -> Artifact {
    synthetic(
        path.into(),
        resolved.into(),
        "build",
        "not built",
        vec![check],
    )
}

/// An artifact that is no file of its own (an index, a set of binaries, a failed build): its
/// checks, and `not_run` saying why nothing ran.
pub(crate) fn synthetic(
    path: String,
    resolved_path: String,
    kind: &'static str,
    not_run: &str,
    checks: Vec<CheckResult>,
) -> Artifact {
    Artifact {
        path,
        resolved_path,
        sha256: String::new(),
        size: 0,
        kind,
        platform: None,
        expected: None,
        facts: None,
        image: None,
        closure: None,
        run: RunReport::NotRun {
            reason: not_run.into(),
        },
        checks,
        subject: None,
    }
}
