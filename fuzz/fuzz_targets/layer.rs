//! The tar layer walk (gzip, zstd or plain, sniffed), then the layer applied to an image's
//! rootfs view: whiteouts, opaque dirs, hardlinks, symlinks, and the symlink and DT_NEEDED
//! resolution that image checks run over that view. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::image::layer::{Budget, scan};
use mab_verify::image::view::{Node, View};
use mab_verify::inspect::closure::resolve_closure;
use mab_verify::rootfs::resolve_guest;

fn run(data: &[u8]) {
    let limits = mab_verify_fuzz::limits();
    let budget = Budget::new(limits.max_uncompressed);
    let Ok(layer) = scan(data, "fuzz", &limits, &budget, None, None, false) else {
        return;
    };
    assert!(layer.uncompressed_size <= limits.max_uncompressed);
    assert_eq!(layer.size, data.len() as u64);
    let mut view = View::new("fuzz".into());
    if view.apply(0, layer.clone()).is_err() {
        return;
    }
    // The same layer again on top: whiteouts and opaque markers now remove real nodes,
    // hardlinks find their targets from the layer below.
    let _ = view.apply(1, layer);
    let paths: Vec<String> = view.nodes.keys().cloned().collect();
    for p in &paths {
        if let Some(Node::Symlink(_)) = view.nodes.get(p) {
            let _ = resolve_guest(&view, p);
            let _ = resolve_guest(&view, &format!("{p}/x"));
        }
    }
    let binaries: Vec<(String, mab_verify::inspect::ElfFacts)> = view
        .executables()
        .filter_map(|(p, f)| f.elf().map(|e| (p.clone(), e.clone())))
        .collect();
    for (path, elf) in binaries.iter().take(8) {
        if let Some(platform) = elf.platform() {
            let _ = resolve_closure(elf, path, platform.arch, &mut view);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    run(data);
    // Mutated headers almost always break the tar checksum: also try the input with the
    // checksums repaired, so the walk behind the first header gets fuzzed too.
    if let Some(fixed) = mab_verify_fuzz::fix_tar_checksums(data) {
        run(&fixed);
    }
});
