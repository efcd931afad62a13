//! What each binary must be, where its loader and libraries live, and whether every expected platform is there.

use crate::check::image as image_checks;
use crate::check::{CheckResult, Expected, ExpectedSource};
use crate::discover::Target;
use crate::image::ImageSet;
use crate::inspect::BinaryFacts;
use crate::platform::Platform;
use crate::report::Artifact;
use crate::rootfs::{Root, RootOrigin};
use crate::settings::Settings;
use std::path::{Path, PathBuf};

/// The platform a binary is held to: its build target's, else an `--expect`, else its store
/// name's triple, else its own.
pub(crate) fn expected_for(
    target: &Target,
    facts: &BinaryFacts,
    options: &Settings,
) -> Option<Expected> {
    let expects = &options.expects;
    if let Some(declared) = &target.declared {
        return Some(declared.clone());
    }
    let own = facts.platform();
    if !expects.is_empty() {
        // Several --expect: each binary is held to the one naming its own row, else the first.
        let chosen = expects
            .iter()
            .find(|e| own.is_some_and(|o| o.arch == e.platform.arch && o.os == e.platform.os))
            .unwrap_or(&expects[0]);
        return Some(chosen.clone());
    }
    if let Some(store) = &target.store
        && let Some((platform, triple)) = Platform::from_store_name(&store.store_name)
    {
        return Some(Expected {
            platform,
            source: ExpectedSource::StoreName {
                store_name: store.store_name.clone(),
                triple: triple.to_string(),
            },
        });
    }
    own.map(|platform| Expected {
        platform,
        source: ExpectedSource::Binary,
    })
}

/// Where this binary's loader and libraries live: `--sysroot`, the root of the store it sits
/// in, the host (host-platform binaries, the host's /nix/store), or Debian's cross sysroot.
pub(crate) fn choose_root(
    target: &Target,
    expected: &Expected,
    interp: Option<&str>,
    sysroot: Option<&Path>,
) -> Option<Root> {
    if let Some(dir) = sysroot {
        // Runs start in a temporary directory: a relative --sysroot must not depend on it.
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        return Some(Root::new(dir, RootOrigin::Sysroot));
    }
    if expected.platform.os != crate::platform::Os::Linux {
        // No root of another OS is known here; the host's is Linux.
        return None;
    }
    let loader_in_store = interp.is_none_or(|i| i.starts_with("/nix/store/"));
    if let Some(store) = &target.store {
        if store.root != Path::new("/") {
            return Some(Root::new(&store.root, RootOrigin::StoreRoot));
        }
        // The host's store holds the closure; an impure loader outside it is looked for where
        // that platform's loaders are, never in the host's own /lib (elf.impure warns).
        if loader_in_store || expected.platform.arch.is_host() {
            return Some(Root::new("/", RootOrigin::Host));
        }
    }
    if expected.platform.arch.is_host() {
        return Some(Root::new("/", RootOrigin::Host));
    }
    expected
        .platform
        .arch
        .debian_cross_sysroot()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .map(|d| Root::new(d, RootOrigin::DebianCross))
}

/// The settings an input's images are verified with: an image built for a known platform must
/// be that platform, which is what index.expected checks.
pub(crate) fn held_to(options: &Settings, declared: Option<&Expected>) -> Settings {
    let mut held = options.clone();
    if let Some(e) = declared {
        held.expects = vec![e.clone()];
    }
    held
}

/// The platform each image of a set declares: its index entry's, else its config's.
pub(crate) fn declared_platforms(set: &ImageSet) -> Vec<Platform> {
    set.images
        .iter()
        .filter_map(|img| {
            img.index_platform
                .as_ref()
                .and_then(image_checks::declared)
                .or_else(|| image_checks::declared(&img.config.platform()))
        })
        .collect()
}

/// `index.expected` of an image set, when platforms are expected of it: each image counts as
/// the platform its index entry, else its config, declares.
pub(crate) fn index_expected(set: &ImageSet, options: &Settings) -> Option<CheckResult> {
    if options.expects.is_empty() {
        return None;
    }
    Some(image_checks::expected(
        &declared_platforms(set),
        &options.expects,
        options.allow_extra,
    ))
}

/// `--expect` over binaries is a set, as over an index: with several, every expected platform
/// is among them (with one, each binary is already held to it by elf.machine).
pub(crate) fn expected_set(present: &[Platform], options: &Settings) -> Option<Artifact> {
    if options.expects.len() < 2 {
        return None;
    }
    // A binary of no expected platform already fails elf.machine: only absence counts here.
    Some(super::synthetic(
        "@expected".into(),
        String::new(),
        "set",
        "a set of binaries has nothing to run",
        vec![image_checks::expected(present, &options.expects, true)],
    ))
}
