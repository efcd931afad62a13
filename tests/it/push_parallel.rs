//! Blobs upload in parallel: a recording proxy in front of a real docker-registry sees
//! several upload sessions open at once, `--jobs 1` sees one, and the first failing worker's
//! error is the one a push reports, with no new uploads and no manifests after it.

use crate::harness::registry;
use crate::registry_push::proxy::{self, Action};
use mab_verify::platform::Platform;
use mab_verify::publish::registry::{
    PushError, PushOptions, PushOutcome, Reference, UPLOADS_AT_ONCE, push_layout,
};
use mab_verify::write::{Compression, Flavour, LayoutWriter, RunConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const LAYERS: usize = 8;
/// How long the proxy holds each blob upload before forwarding it: long enough that
/// sequential uploads could never overlap, and parallel ones always do.
const HOLD: Duration = Duration::from_millis(300);

/// A one-platform layout with [`LAYERS`] layers; its root, media type and the blob digests
/// in the order the manifest lists them (config first).
struct Layout {
    dir: tempfile::TempDir,
    root: String,
    media_type: String,
    blobs: Vec<String>,
}

fn build(salt: &str) -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let layout = LayoutWriter::create(dir.path().join("layout")).unwrap();
    let layers: Vec<_> = (0..LAYERS)
        .map(|i| {
            layout
                .add_layer(Compression::Gzip, 0, |l| {
                    l.file(
                        &format!("etc/layer{i}"),
                        0o644,
                        format!("{salt} {i}\n").as_bytes(),
                    )
                })
                .unwrap()
        })
        .collect();
    let platform = Platform::parse("linux/amd64").unwrap();
    let image = layout
        .add_image(Flavour::Oci, &platform, &RunConfig::default(), &layers)
        .unwrap();
    let index = layout.add_index(Flavour::Oci, vec![image.clone()]).unwrap();
    layout.write_index(vec![index.clone()]).unwrap();
    let manifest_path = dir
        .path()
        .join("layout/blobs/sha256")
        .join(image.digest().digest());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(blobs.len(), LAYERS + 1);
    Layout {
        dir,
        root: index.digest().to_string(),
        media_type: index.media_type().to_string(),
        blobs,
    }
}

fn options(jobs: Option<usize>) -> PushOptions {
    PushOptions {
        plain_http: true,
        retries: 0,
        jobs,
        ..Default::default()
    }
}

fn push(
    built: &Layout,
    at: &str,
    opts: &PushOptions,
) -> (Result<PushOutcome, PushError>, Vec<String>) {
    let reference: Reference = format!("{at}/parallel:test").parse().unwrap();
    let mut lines = Vec::new();
    let result = push_layout(
        &built.dir.path().join("layout"),
        &built.root,
        &built.media_type,
        &reference,
        opts,
        &mut |l| lines.push(l.to_string()),
    );
    (result, lines)
}

/// `digest=sha256%3A<hex>` as the upload's closing PUT carries it.
fn query_of(digest: &str) -> String {
    format!(
        "digest=sha256%3A{}",
        digest.strip_prefix("sha256:").unwrap()
    )
}

/// A proxy that holds every blob upload for [`HOLD`] and records the most held at once.
fn holding_proxy(upstream: &str) -> (proxy::Proxy, Arc<AtomicUsize>) {
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = most.clone();
    let hook = Box::new(move |method: &str, path: &str| {
        if method == "PUT" && path.contains("/blobs/uploads/") {
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            seen.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(HOLD);
            open.fetch_sub(1, Ordering::SeqCst);
        }
        Action::Forward
    });
    (proxy::Proxy::start(upstream, hook), most)
}

#[test]
fn blobs_upload_at_once_and_jobs_1_uploads_one_at_a_time() {
    let registry = registry::Registry::start(None);
    for (jobs, expected) in [(None, UPLOADS_AT_ONCE), (Some(1), 1)] {
        let built = build(&format!("jobs {jobs:?}"));
        let (proxy, most) = holding_proxy(&registry.addr);
        let (result, lines) = push(&built, &proxy.addr, &options(jobs));
        let outcome = result.unwrap_or_else(|e| panic!("{e}\n{lines:#?}"));
        assert_eq!(outcome.pushed_blobs, LAYERS + 1, "{lines:#?}");
        assert_eq!(outcome.fetched_digest, built.root);
        assert_eq!(
            most.load(Ordering::SeqCst),
            expected,
            "uploads held open at once with --jobs {jobs:?}: {:#?}",
            proxy.log()
        );
        // Whatever order they finish in, the lines come in the manifest's order.
        let uploaded: Vec<&str> = lines
            .iter()
            .filter(|l| l.ends_with("bytes): uploaded"))
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(uploaded, built.blobs, "{lines:#?}");
        // Manifests went up only after the last blob did.
        let log = proxy.log();
        let last_blob = log
            .iter()
            .rposition(|l| l.starts_with("PUT ") && l.contains("/blobs/uploads/"))
            .unwrap();
        let first_manifest = log
            .iter()
            .position(|l| l.starts_with("PUT ") && l.contains("/manifests/"))
            .unwrap();
        assert!(last_blob < first_manifest, "{log:#?}");
    }
}

#[test]
fn the_first_failing_upload_is_the_error_and_nothing_starts_after_it() {
    let registry = registry::Registry::start(None);
    let built = build("failing");
    // The second blob is refused at once; the third is refused too, but only after a hold,
    // so its error comes second and must not be the one reported.
    let (first, second) = (query_of(&built.blobs[1]), query_of(&built.blobs[2]));
    let hook = Box::new(move |method: &str, path: &str| {
        if method != "PUT" || !path.contains("/blobs/uploads/") {
            return Action::Forward;
        }
        if path.contains(&first) {
            return Action::Reply(403);
        }
        std::thread::sleep(HOLD);
        if path.contains(&second) {
            Action::Reply(400)
        } else {
            Action::Forward
        }
    });
    let proxy = proxy::Proxy::start(&registry.addr, hook);
    let (result, lines) = push(&built, &proxy.addr, &options(None));
    let err = match result {
        Ok(o) => panic!("push succeeded: {o:?}\n{lines:#?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert_eq!(err.status(), Some(403), "{msg}");
    assert!(msg.contains(&built.blobs[1]), "names the blob: {msg}");
    let log = proxy.log();
    // Only the uploads already under way when the refusal came were started.
    assert_eq!(
        proxy.count("POST", "/blobs/uploads/"),
        UPLOADS_AT_ONCE,
        "{log:#?}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 0, "{log:#?}");
    for late in &built.blobs[UPLOADS_AT_ONCE..] {
        assert_eq!(proxy.count("PUT", &query_of(late)), 0, "{log:#?}");
    }
}
