//! What each binary must be, where its loader and libraries live, and whether every expected platform is there.

use crate::check::{Expected, ExpectedSource};
use crate::discover::Target;
use crate::inspect::BinaryFacts;
use crate::platform::Platform;
use crate::report::Artifact;
use crate::rootfs::{Root, RootOrigin};
use crate::run::RunReport;
use crate::settings::{ExpectedPlatform, Settings};
use std::path::{Path, PathBuf};

pub(crate) fn expected_for(
    target: &Target,
    facts: &BinaryFacts,
    expects: &[ExpectedPlatform],
) -> Option<Expected> {
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
        return Some(Expected {
            platform: chosen.platform,
            source: ExpectedSource::Flag {
                name: chosen.name.clone(),
            },
        });
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

/// `--expect` over binaries is a set, as over an index: every expected platform is among them.
pub(crate) fn expected_set(present: &[Platform], options: &Settings) -> Artifact {
    let expected: Vec<Platform> = options.expects.iter().map(|e| e.platform).collect();
    Artifact {
        path: "@expected".into(),
        resolved_path: String::new(),
        sha256: String::new(),
        size: 0,
        kind: "set",
        platform: None,
        expected: None,
        facts: None,
        image: None,
        closure: None,
        run: RunReport::NotRun {
            reason: "a set of binaries has nothing to run".into(),
        },
        // A binary of no expected platform already fails elf.machine: only absence counts here.
        checks: vec![crate::check::image::expected(present, &expected, true)],
        subject: None,
    }
}
