//! Wraps one built demo binary, with the loader and libraries it needs, into a docker-archive.
//!
//! The loader and libraries are found the way the checks find them (the closure resolver in
//! the host's root for the host row, in Debian's cross sysroot for the others) and are put in
//! the image at the guest paths the binary asks for, so the image runs without its builder.

use super::{DEMO_NAME, DemoError};
use crate::inspect::closure::{FactCache, HostTree, resolve_closure};
use crate::inspect::inspect_file;
use crate::platform::{Arch, Platform};
use crate::rootfs::{Root, RootOrigin};
use crate::write::{DockerArchive, RunConfig};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The `RepoTags` entry of every demo image.
pub const REPO_TAG: &str = "multi-arch-demo:latest";
/// Where the binary sits in the image, and the image's entrypoint.
pub const ENTRYPOINT: &str = "/bin/multi-arch-demo";

/// Write `binary` (the demo built for `arch`) as an uncompressed docker-archive at `out`:
/// one layer holding the binary at [`ENTRYPOINT`], its loader and every library it needs,
/// and a config for `linux/<arch>` whose entrypoint is the binary.
pub fn write_image(
    arch: &'static Arch,
    binary: &Path,
    out: &Path,
    mtime: u64,
) -> Result<(), DemoError> {
    debug_assert!(ENTRYPOINT.ends_with(DEMO_NAME));
    let files = closure_files(arch, binary)?;
    let file = File::create(out).map_err(|e| super::io_error("create", out, e))?;
    let mut archive = DockerArchive::new(BufWriter::new(file), false, mtime)?;
    archive.add_layer(|layer| {
        for (guest, host) in &files {
            let meta = std::fs::metadata(host).map_err(crate::write::io_at("stat", host))?;
            let data = File::open(host).map_err(crate::write::io_at("open", host))?;
            let mode = meta.permissions().mode() & 0o7777;
            layer.file_from(guest.trim_start_matches('/'), mode, meta.len(), data)?;
        }
        Ok(())
    })?;
    let run = RunConfig {
        entrypoint: Some(vec![ENTRYPOINT.to_string()]),
        env: vec!["PATH=/bin".to_string()],
        ..RunConfig::default()
    };
    let writer = archive.finish(&Platform::linux(arch), &run, REPO_TAG)?;
    writer
        .into_inner()
        .map_err(|e| super::io_error("write", out, e.into_error()))?
        .sync_all()
        .map_err(|e| super::io_error("write", out, e))
}

/// Guest path → host file of everything the image holds, in path order.
fn closure_files(
    arch: &'static Arch,
    binary: &Path,
) -> Result<BTreeMap<String, PathBuf>, DemoError> {
    let unmakeable = |reason: String| DemoError::Image {
        system: arch.nix_system(),
        reason,
    };
    let facts = inspect_file(binary).map_err(|e| super::io_error("read", binary, e))?;
    let elf = facts
        .elf()
        .ok_or_else(|| unmakeable(format!("{} is not an ELF file", binary.display())))?;
    let mut files = BTreeMap::from([(ENTRYPOINT.to_string(), binary.to_path_buf())]);
    if elf.interpreter.is_none() && elf.needed.is_empty() {
        return Ok(files);
    }
    // The same roots the checks use for a loose demo binary.
    let root = if arch.is_host() {
        Root::new("/", RootOrigin::Host)
    } else {
        let dir = arch
            .debian_cross_sysroot()
            .ok_or_else(|| unmakeable("the row has no Debian cross sysroot".into()))?;
        Root::new(dir, RootOrigin::DebianCross)
    };
    let mut cache = FactCache::default();
    let closure = resolve_closure(
        elf,
        ENTRYPOINT,
        arch,
        &mut HostTree {
            root: &root,
            cache: &mut cache,
        },
    );
    let mut wanted: Vec<(String, Option<&crate::inspect::closure::Found>)> = Vec::new();
    if let Some(loader) = &closure.loader {
        wanted.push((loader.path.clone(), loader.found.as_ref()));
    }
    for lib in &closure.libraries {
        let path = lib
            .found
            .as_ref()
            .map_or(lib.name.clone(), |f| f.guest_path.clone());
        wanted.push((path, lib.found.as_ref()));
    }
    for (guest, found) in wanted {
        let Some(found) = found.filter(|f| f.fits) else {
            return Err(unmakeable(format!(
                "{guest} is not in {} as a file for {} (install the row's libc6 cross package: ./scripts/setup)",
                root.dir.display(),
                Platform::linux(arch).oci()
            )));
        };
        let host = root.resolve(&found.guest_path).ok_or_else(|| {
            unmakeable(format!(
                "{} does not resolve inside {}",
                found.guest_path,
                root.dir.display()
            ))
        })?;
        files.insert(found.guest_path.clone(), host);
    }
    Ok(files)
}
