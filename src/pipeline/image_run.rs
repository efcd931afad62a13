//! An image's entrypoint run as a container would: its rootfs laid out privately, its Env kept.

use super::execute::run_elf;
use crate::check::Expected;
use crate::image::ImageFacts;
use crate::inspect::BinaryFacts;
use crate::inspect::closure::{FactCache, FactTree, HostTree, resolve_closure};
use crate::rootfs::{Root, RootOrigin};
use crate::run::{self, RunReport};
use crate::settings::Settings;
use std::path::Path;

/// The view as a `FactTree` without handing out the image mutably.
pub(crate) struct TreeRef<'a>(pub(crate) &'a crate::image::view::View);

impl crate::rootfs::Tree for TreeRef<'_> {
    fn node(&self, guest_path: &str) -> Option<crate::rootfs::NodeKind> {
        self.0.node(guest_path)
    }
}

impl FactTree for TreeRef<'_> {
    fn facts(&mut self, canonical: &str) -> Option<BinaryFacts> {
        self.0.facts_at(canonical)
    }
    fn root(&self) -> Root {
        Root::new(&self.0.label, RootOrigin::Image)
    }
}

/// Lay out the image's rootfs privately and run its entrypoint there, as a container would.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_image(
    image: &ImageFacts,
    entry_path: &str,
    facts: &BinaryFacts,
    expected: &Expected,
    argv: &[String],
    options: &Settings,
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
    let remembered = remembered_run(image, entry_path, expected, argv, options, overrides);
    if let Some((cache, key)) = &remembered
        && let Some(report) = cache.recall_run(key)
    {
        return report;
    }
    let report = laid_out_run(
        image, entry_path, elf, expected, argv, options, overrides, spill,
    );
    if let Some((cache, key)) = &remembered {
        cache.keep_run(key, &report);
    }
    report
}

/// The run cache and this run's key in it, when there is a cache and the rootfs is known by
/// digests: every layer's diff_id, computed from the bytes this verify read (or hashed again),
/// decides the tree `materialize` lays out. No emulator: nothing runs, nothing to remember.
fn remembered_run(
    image: &ImageFacts,
    entry_path: &str,
    expected: &Expected,
    argv: &[String],
    options: &Settings,
    overrides: &run::EmulatorOverrides,
) -> Option<(crate::cache::Cache, String)> {
    let cache = super::open_cache(options)?;
    let content = image
        .layers
        .iter()
        .map(|l| l.diff_id.clone().filter(|_| l.damage.is_none()))
        .collect::<Option<Vec<_>>>()?;
    let emulator = run::find_emulator(
        expected.platform.arch,
        overrides,
        crate::settings::env::get(crate::settings::env::PATH).as_deref(),
    )
    .ok()?;
    let settings = options.run_for(&expected.platform);
    let args = settings.args.clone().unwrap_or_else(|| argv[1..].to_vec());
    let env = image.env();
    let inputs = crate::cache::runs::RunInputs {
        content,
        entry: entry_path,
        args: &args,
        env: &env,
        platform: format!("{:?}", expected.platform),
        runner: run::runner_identity(&emulator),
        timeout_ns: 0,
        output_cap: 0,
    }
    .limits(settings.limits());
    let key = cache.run_key(&inputs);
    Some((cache, key))
}

#[allow(clippy::too_many_arguments)]
fn laid_out_run(
    image: &ImageFacts,
    entry_path: &str,
    elf: &crate::inspect::ElfFacts,
    expected: &Expected,
    argv: &[String],
    options: &Settings,
    overrides: &run::EmulatorOverrides,
    spill: &Path,
) -> RunReport {
    let rootfs = match tempfile::Builder::new().prefix("mab-rootfs-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return RunReport::Failed {
                reason: format!("cannot create a temporary rootfs: {e}"),
            };
        }
    };
    // Laid out and closed before any run forks (see run::seal::layout_lock).
    let laid_out = {
        let _writing = run::seal::layout_lock()
            .read()
            .unwrap_or_else(|e| e.into_inner());
        crate::image::extract::materialize(&image.view, spill, rootfs.path())
    };
    if let Err(e) = laid_out {
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
