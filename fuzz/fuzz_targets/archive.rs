//! docker-archive and OCI-archive detection and reading, then the pure checks over what was
//! read (blob digests and sizes, diff_ids, config platform, binaries, index checks), as
//! `mab-verify --no-run` applies them to an untrusted archive. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::check::image as checks;
use mab_verify::image::{ReadOptions, detect, read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One private directory per fuzzing process, `mab-fuzz-<pid>` on tmpfs when there is one;
/// inputs are written to one file in it, over and over. libFuzzer ends with `exit`, which runs
/// no destructors, so each process first removes the directories of processes that are gone.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("mab-fuzz-")
                    && pid.parse::<u32>().is_ok()
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("mab-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        dir.join("input")
    })
}

fn run(data: &[u8]) {
    let path = input_path();
    std::fs::write(path, data).expect("write the input");
    let limits = mab_verify_fuzz::limits();
    let Ok(Some((source, format))) = detect(path, &limits) else {
        return;
    };
    let mut opts = ReadOptions {
        limits: &limits,
        spill: None,
        tee: None,
        cache: None,
    };
    let Ok(set) = read(path, source, format, &mut opts) else {
        return;
    };
    // The pure checks `--no-run` applies to what was read.
    let _ = checks::blobs(&set.blobs);
    let _ = checks::duplicates(&set.entries);
    let _ = checks::media_types(&set.entries);
    for image in &set.images {
        let _ = image.env();
        let entrypoint = image.entrypoint();
        let path = entrypoint.as_ref().and_then(|e| e.path.as_deref());
        let facts = entrypoint.as_ref().and_then(|e| e.facts.as_ref());
        let _ = checks::blobs(&image.blobs);
        let _ = checks::diff_ids(image);
        let truth = checks::truth(facts, image);
        let _ = checks::config_platform(image, path, facts);
        let _ = checks::binaries(image, truth);
        let _ = checks::index_platform(image, truth);
    }
}

fuzz_target!(|data: &[u8]| {
    run(data);
    if let Some(fixed) = mab_verify_fuzz::fix_tar_checksums(data) {
        run(&fixed);
    }
});
