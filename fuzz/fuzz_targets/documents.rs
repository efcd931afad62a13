//! OCI and Docker JSON documents: index, manifest, config, docker-archive `manifest.json`, and
//! the digest check that guards every blob path built from them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::image::docs::{
    Config, DockerArchiveEntry, Index, Manifest, check_digest, is_docker, is_index, parse,
};

fn digest(d: &str) {
    if let Ok(hex) = check_digest(d) {
        // What the readers then join onto `blobs/sha256/`: must be a plain file name.
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = parse::<Index>(data, "fuzz") {
        let _ = is_index(&index.media_type.clone().unwrap_or_default());
        for d in &index.manifests {
            digest(&d.digest);
            let _ = is_index(&d.media_type);
            let _ = is_docker(&d.media_type);
            if let Some(p) = &d.platform {
                let _ = p.text();
                let _ = mab_verify::check::image::declared(p);
            }
        }
    }
    if let Ok(manifest) = parse::<Manifest>(data, "fuzz") {
        digest(&manifest.config.digest);
        for l in &manifest.layers {
            digest(&l.digest);
        }
    }
    if let Ok(config) = parse::<Config>(data, "fuzz") {
        let p = config.platform();
        let _ = p.text();
        let _ = mab_verify::check::image::declared(&p);
        for d in config.diff_ids() {
            digest(d);
        }
    }
    if let Ok(entries) = parse::<Vec<DockerArchiveEntry>>(data, "fuzz") {
        for e in &entries {
            let _ = mab_verify::image::layer::rootfs_path(&e.config);
            for l in &e.layers {
                let _ = mab_verify::image::layer::rootfs_path(l);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        digest(text);
    }
});
