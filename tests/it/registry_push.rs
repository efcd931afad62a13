//! Pushes OCI layouts to a real registry (Debian's docker-registry) with the publish client and reads them back with skopeo.
//!
//! Between client and registry, some tests put a small HTTP/1.1 proxy that records every
//! request and can inject answers (503, 429, 400) or rewrite a body: it sees what the client
//! really sends, independently of the client's own counters. Bearer auth runs against the
//! real registry configured for token auth, with a token server in this file that signs
//! RS256 JWTs through the `openssl` CLI.

use crate::harness::registry;
use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mab_verify::platform::Platform;
use mab_verify::publish::auth::{self, Credentials};
use mab_verify::publish::registry::{
    DOCKER_LIST, OCI_INDEX, PushError, PushOptions, PushOutcome, Reference, is_loopback,
    push_layout, redact,
};
use mab_verify::write::layout::with_ref_name;
use mab_verify::write::{Compression, Flavour, LayoutWriter, RunConfig};
use serde_json::Value;
use sha2::Digest as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cr3t-Pa55-right";
const WRONG_PASSWORD: &str = "wr0ng-Pa55-guess";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A three-platform OCI layout: one shared layer, one layer and config per platform, an
/// index blob over the three manifests (the root), and `index.json` naming it `tag`.
struct Built {
    dir: tempfile::TempDir,
    root: String,
    media_type: String,
    /// (OCI platform, manifest digest), in index order.
    manifests: Vec<(String, String)>,
    /// Distinct blobs (configs and layers).
    blobs: usize,
}

impl Built {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.layout()
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }
}

fn build_layout(salt: &str) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let layout = LayoutWriter::create(dir.path().join("layout")).unwrap();
    let shared = layout
        .add_layer(Compression::Gzip, 0, |l| {
            l.file("etc/shared", 0o644, format!("shared {salt}\n").as_bytes())
        })
        .unwrap();
    let mut descriptors = Vec::new();
    let mut manifests = Vec::new();
    for name in PLATFORMS {
        let platform = Platform::parse(name).unwrap();
        let own = layout
            .add_layer(Compression::Gzip, 0, |l| {
                l.file("etc/platform", 0o644, format!("{name} {salt}\n").as_bytes())
            })
            .unwrap();
        let run = RunConfig {
            cmd: Some(vec!["/bin/true".into()]),
            ..RunConfig::default()
        };
        let d = layout
            .add_image(Flavour::Oci, &platform, &run, &[shared, own])
            .unwrap();
        manifests.push((platform.oci(), d.digest().to_string()));
        descriptors.push(d);
    }
    let index = layout.add_index(Flavour::Oci, descriptors).unwrap();
    layout
        .write_index(vec![with_ref_name(index.clone(), "test")])
        .unwrap();
    Built {
        dir,
        root: index.digest().to_string(),
        media_type: index.media_type().to_string(),
        manifests,
        blobs: 1 + 2 * PLATFORMS.len(),
    }
}

fn plain(retries: u32) -> PushOptions {
    PushOptions {
        plain_http: true,
        credentials: None,
        retries,
        timeouts: Default::default(),
        tls: Default::default(),
        jobs: None,
    }
}

fn with_creds(user: &str, password: &str) -> PushOptions {
    PushOptions {
        credentials: Some(Credentials {
            username: user.into(),
            password: password.into(),
        }),
        ..plain(3)
    }
}

struct Pushed {
    result: Result<PushOutcome, PushError>,
    lines: Vec<String>,
    elapsed: Duration,
}

impl Pushed {
    fn ok(self) -> PushOutcome {
        match self.result {
            Ok(o) => o,
            Err(e) => panic!("push failed: {e}\nprogress:\n{}", self.lines.join("\n")),
        }
    }

    fn err(self) -> PushError {
        match self.result {
            Ok(o) => panic!(
                "push succeeded: {o:?}\nprogress:\n{}",
                self.lines.join("\n")
            ),
            Err(e) => e,
        }
    }
}

fn push_root(
    layout: &Path,
    root: &str,
    media_type: &str,
    reference: &str,
    opts: &PushOptions,
) -> Pushed {
    let reference: Reference = reference.parse().unwrap();
    let mut lines = Vec::new();
    let started = Instant::now();
    let result = push_layout(layout, root, media_type, &reference, opts, &mut |l| {
        lines.push(l.to_string())
    });
    Pushed {
        result,
        lines,
        elapsed: started.elapsed(),
    }
}

fn push(built: &Built, reference: &str, opts: &PushOptions) -> Pushed {
    push_root(
        &built.layout(),
        &built.root,
        &built.media_type,
        reference,
        opts,
    )
}

fn skopeo_output(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo runs")
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = skopeo_output(args);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What the registry serves for `reference`, byte for byte, as skopeo fetches it.
fn raw_manifest(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&target);
    skopeo(&args)
}

fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd (apache2-utils) runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The root a layout's `index.json` names: its single index entry, or `index.json` itself.
fn layout_root(layout: &Path) -> (String, String) {
    let bytes = std::fs::read(layout.join("index.json")).unwrap();
    let index: Value = serde_json::from_slice(&bytes).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    let media = |e: &Value| e["mediaType"].as_str().unwrap().to_string();
    match entries.as_slice() {
        [one] if media(one) == OCI_INDEX || media(one) == DOCKER_LIST => {
            (one["digest"].as_str().unwrap().to_string(), media(one))
        }
        _ => (sha256(&bytes), OCI_INDEX.to_string()),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------
// Pushes to an open registry
// ---------------------------------------------------------------------------------------

#[test]
fn three_platform_index_is_served_byte_for_byte_and_per_platform() {
    let built = build_layout("round-trip");
    let registry = registry::Registry::start(None);
    let reference = format!("{}/demo:test", registry.addr);
    let pushed = push(&built, &reference, &plain(3));
    let lines = pushed.lines.clone();
    let outcome = pushed.ok();
    assert_eq!(outcome.pushed_blobs, built.blobs, "{lines:#?}");
    assert_eq!(outcome.skipped_blobs, 0);
    assert_eq!(outcome.manifests, 4, "three manifests and the index");
    assert_eq!(outcome.index_digest, built.root);
    assert_eq!(outcome.fetched_digest, built.root);
    assert!(lines.last().unwrap().starts_with("verified:"), "{lines:#?}");

    // skopeo, not our client, says what the registry serves for the tag.
    let raw = raw_manifest(&reference, None);
    assert_eq!(sha256(&raw), built.root);
    assert_eq!(raw, std::fs::read(built.blob(&built.root)).unwrap());

    let dir = tempfile::tempdir().unwrap();
    for (platform, manifest_digest) in &built.manifests {
        let parts: Vec<&str> = platform.split('/').collect();
        let out = dir.path().join(parts[1..].join("-"));
        let mut args = vec![
            "copy",
            "--src-tls-verify=false",
            "--override-os",
            parts[0],
            "--override-arch",
            parts[1],
        ];
        if let Some(variant) = parts.get(2) {
            args.extend(["--override-variant", variant]);
        }
        let src = format!("docker://{reference}");
        let dest = format!("dir:{}", out.display());
        args.extend([src.as_str(), dest.as_str()]);
        skopeo(&args);
        let manifest = std::fs::read(out.join("manifest.json")).unwrap();
        assert_eq!(&sha256(&manifest), manifest_digest, "{platform}");
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        let config: Value = serde_json::from_slice(
            &std::fs::read(out.join(config_digest.strip_prefix("sha256:").unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(config["architecture"], parts[1], "{platform}");
        assert_eq!(
            config["variant"].as_str(),
            parts.get(2).copied(),
            "{platform}"
        );
    }
}

#[test]
fn a_second_identical_push_uploads_no_blob() {
    let built = build_layout("idempotent");
    let registry = registry::Registry::start(None);
    let proxy = proxy::Proxy::start(&registry.addr, Box::new(|_, _| proxy::Action::Forward));
    let reference = format!("{}/demo:again", proxy.addr);

    let first = push(&built, &reference, &plain(3)).ok();
    assert_eq!(first.pushed_blobs, built.blobs);
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), built.blobs);
    assert_eq!(proxy.count("PUT", "/blobs/uploads/"), built.blobs);
    proxy.clear();

    let second = push(&built, &reference, &plain(3)).ok();
    assert_eq!(second.pushed_blobs, 0);
    assert_eq!(second.skipped_blobs, built.blobs);
    assert_eq!(second.uploaded_bytes, 0);
    assert_eq!(second.fetched_digest, built.root);
    // What went over the wire: existence checks only, no upload session, no blob body.
    let log = proxy.log();
    assert_eq!(
        proxy.count("HEAD", "/blobs/sha256:"),
        built.blobs,
        "{log:#?}"
    );
    assert_eq!(proxy.count("POST", "/blobs/"), 0, "{log:#?}");
    assert_eq!(proxy.count("PUT", "/blobs/"), 0, "{log:#?}");
    assert_eq!(proxy.count("PUT", "/manifests/"), 4, "{log:#?}");
}

#[test]
fn fixture_layouts_nested_index_docker_list_and_index_json_root() {
    let images = support::images::images();
    let registry = registry::Registry::start(None);
    for (name, layout) in [
        ("nested", &images.nested_index),
        ("docker-list", &images.docker_manifest_list),
        ("multi", &images.multi_layout),
    ] {
        let (root, media_type) = layout_root(layout);
        let reference = format!("{}/fixtures-{name}:test", registry.addr);
        let pushed = push_root(layout, &root, &media_type, &reference, &plain(3));
        let outcome = pushed.ok();
        assert_eq!(outcome.fetched_digest, root, "{name}");
        assert!(outcome.pushed_blobs > 0, "{name}");
        assert_eq!(sha256(&raw_manifest(&reference, None)), root, "{name}");
    }
    // `multi` is an index.json whose own bytes are the root: three manifests, pushed as is.
    let multi = raw_manifest(&format!("{}/fixtures-multi:test", registry.addr), None);
    assert_eq!(
        multi,
        std::fs::read(images.multi_layout.join("index.json")).unwrap()
    );
    // The nested index pushed its inner index by digest too.
    let (root, _) = layout_root(&images.nested_index);
    let outer: Value = serde_json::from_slice(&raw_manifest(
        &format!("{}/fixtures-nested@{root}", registry.addr),
        None,
    ))
    .unwrap();
    let inner = outer["manifests"][0]["digest"].as_str().unwrap();
    let inner_raw = raw_manifest(&format!("{}/fixtures-nested@{inner}", registry.addr), None);
    assert_eq!(sha256(&inner_raw), inner);
}

#[test]
fn a_changed_manifest_blob_is_refused_before_anything_is_sent() {
    let built = build_layout("tampered-manifest");
    let (_, arm64) = &built.manifests[1];
    let path = built.blob(arm64);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(b' ');
    std::fs::write(&path, bytes).unwrap();
    let registry = registry::Registry::start(None);
    let proxy = proxy::Proxy::start(&registry.addr, Box::new(|_, _| proxy::Action::Forward));
    let err = push(&built, &format!("{}/demo:test", proxy.addr), &plain(3)).err();
    assert!(matches!(err, PushError::Layout { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(arm64.as_str()) && msg.contains("changed"),
        "{msg}"
    );
    assert!(msg.contains("verify the artifact again"), "{msg}");
    assert_eq!(proxy.log(), Vec::<String>::new());
}

#[test]
fn a_changed_layer_is_caught_while_it_streams_and_the_upload_never_completes() {
    let built = build_layout("tampered-layer");
    // The amd64 layer: same size, one byte flipped. Only the registry can notice.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(built.blob(&built.manifests[0].1)).unwrap()).unwrap();
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = built.blob(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let registry = registry::Registry::start(None);
    let err = push(&built, &format!("{}/demo:test", registry.addr), &plain(3)).err();
    let msg = err.to_string();
    // mab-verify hashes the bytes as they stream and cuts the body off at the end, before
    // the registry could accept them (it would answer 400 DIGEST_INVALID only afterwards).
    assert!(
        matches!(
            err,
            mab_verify::publish::registry::PushError::BlobChanged { .. }
        ),
        "{msg}"
    );
    assert!(msg.contains(&layer), "names the blob: {msg}");
    assert!(msg.contains("aborted before it completed"), "{msg}");
    // Nothing was tagged.
    assert!(
        !skopeo_output(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/demo:test", registry.addr)
        ])
        .status
        .success()
    );
}

#[test]
fn a_rewritten_manifest_fails_loudly_as_digest_changed() {
    let built = build_layout("rewritten");
    let registry = registry::Registry::start(None);
    // A "registry" that serves the tag with one extra byte, as a converting proxy might.
    let proxy = proxy::Proxy::start(
        &registry.addr,
        Box::new(|method, path| {
            if method == "GET" && path.contains("/manifests/") {
                proxy::Action::RewriteBody(|b| [b, b"\n"].concat())
            } else {
                proxy::Action::Forward
            }
        }),
    );
    let err = push(&built, &format!("{}/demo:test", proxy.addr), &plain(3)).err();
    let original = std::fs::read(built.blob(&built.root)).unwrap();
    let changed = sha256(&[original.as_slice(), b"\n"].concat());
    match &err {
        PushError::DigestChanged {
            expected, found, ..
        } => {
            assert_eq!(expected, &built.root);
            assert_eq!(found, &changed);
        }
        other => panic!("expected DigestChanged, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("DIGEST CHANGED"), "{msg}");
    assert!(msg.contains(&built.root) && msg.contains(&changed), "{msg}");
    assert!(msg.contains("NOT what was verified"), "{msg}");
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

#[test]
fn transient_503s_are_retried_with_doubling_backoff() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let built = build_layout("retry");
    let registry = registry::Registry::start(None);
    let failures = AtomicUsize::new(0);
    let proxy = proxy::Proxy::start(
        &registry.addr,
        Box::new(move |method, path| {
            if method == "HEAD"
                && path.contains("/blobs/")
                && failures.fetch_add(1, Ordering::SeqCst) < 2
            {
                proxy::Action::Reply(503)
            } else {
                proxy::Action::Forward
            }
        }),
    );
    let pushed = push(&built, &format!("{}/demo:test", proxy.addr), &plain(3));
    let (lines, elapsed) = (pushed.lines.clone(), pushed.elapsed);
    let outcome = pushed.ok();
    assert_eq!(outcome.fetched_digest, built.root);
    let retries: Vec<&String> = lines.iter().filter(|l| l.contains("retry ")).collect();
    assert_eq!(retries.len(), 2, "{lines:#?}");
    assert!(retries[0].contains("HTTP 503") && retries[0].ends_with("retry 1/3 in 200 ms"));
    assert!(
        retries[1].ends_with("retry 2/3 in 400 ms"),
        "{}",
        retries[1]
    );
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    // The same blob was asked for three times: two refusals, then the answer.
    assert_eq!(
        proxy.count("HEAD", "/blobs/sha256:"),
        built.blobs + 2,
        "{:#?}",
        proxy.log()
    );
}

#[test]
fn retries_give_up_on_persistent_429_and_never_retry_a_400() {
    let built = build_layout("give-up");
    let registry = registry::Registry::start(None);
    let proxy = proxy::Proxy::start(
        &registry.addr,
        Box::new(|method, path| {
            if method == "HEAD" && path.contains("/blobs/") {
                proxy::Action::Reply(429)
            } else {
                proxy::Action::Forward
            }
        }),
    );
    let err = push(&built, &format!("{}/demo:test", proxy.addr), &plain(2)).err();
    let msg = err.to_string();
    assert_eq!(err.status(), Some(429), "{msg}");
    assert!(msg.contains("gave up after 3 attempts"), "{msg}");
    assert!(msg.contains("rate-limiting"), "{msg}");
    assert_eq!(proxy.count("HEAD", "/blobs/"), 3);

    let proxy = proxy::Proxy::start(
        &registry.addr,
        Box::new(|method, path| {
            if method == "PUT" && path.contains("/manifests/") {
                proxy::Action::Reply(400)
            } else {
                proxy::Action::Forward
            }
        }),
    );
    let err = push(&built, &format!("{}/demo:test", proxy.addr), &plain(3)).err();
    let msg = err.to_string();
    assert_eq!(err.status(), Some(400), "{msg}");
    assert!(!msg.contains("gave up"), "{msg}");
    assert!(
        msg.contains(&built.manifests[0].1),
        "names the manifest: {msg}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 1, "{:#?}", proxy.log());
}

#[test]
fn connection_refused_is_retried_then_explained() {
    let built = build_layout("refused");
    let addr = format!("127.0.0.1:{}", free_port());
    let pushed = push(&built, &format!("{addr}/demo:test"), &plain(1));
    let lines = pushed.lines.clone();
    let err = pushed.err();
    let msg = err.to_string();
    assert!(matches!(err, PushError::Transport { .. }), "{msg}");
    assert!(msg.contains(&addr) && msg.contains("demo"), "{msg}");
    assert!(msg.contains("is a registry running"), "{msg}");
    assert!(msg.contains("gave up after 2 attempts"), "{msg}");
    assert_eq!(lines.iter().filter(|l| l.contains("retry 1/1")).count(), 1);
}

#[test]
fn https_to_a_plain_http_registry_suggests_plain_http() {
    let built = build_layout("tls");
    let registry = registry::Registry::start(None);
    let opts = PushOptions {
        plain_http: false,
        ..plain(3)
    };
    let err = push(&built, &format!("{}/demo:test", registry.addr), &opts).err();
    let msg = err.to_string();
    assert!(matches!(err, PushError::Transport { .. }), "{msg}");
    assert!(msg.contains("--plain-http"), "{msg}");
    assert!(msg.contains(&registry.addr), "{msg}");
    assert!(
        !err.is_transient() && !msg.contains("gave up"),
        "not retried: {msg}"
    );
}

// ---------------------------------------------------------------------------------------
// Basic auth (htpasswd) and auth files
// ---------------------------------------------------------------------------------------

#[test]
fn basic_auth_wrong_credentials_fail_clearly_and_right_ones_work() {
    let built = build_layout("basic");
    let registry = registry::Registry::start(Some(&htpasswd(USER, PASSWORD)));
    let reference = format!("{}/demo:test", registry.addr);

    let err = push(&built, &reference, &plain(3)).err();
    let msg = err.to_string();
    assert_eq!(err.status(), Some(401), "{msg}");
    assert!(msg.contains("none were found"), "{msg}");

    let err = push(&built, &reference, &with_creds(USER, WRONG_PASSWORD)).err();
    let msg = format!("{err}\n{err:?}");
    assert_eq!(err.status(), Some(401), "{msg}");
    assert!(msg.contains("HTTP 401 Unauthorized"), "{msg}");
    assert!(
        msg.contains(&registry.addr) && msg.contains("demo"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "check --creds or the auths entry for {} in ~/.docker/config.json",
            registry.addr
        )),
        "{msg}"
    );
    assert!(!msg.contains(WRONG_PASSWORD), "{msg}");
    assert!(
        !msg.contains(&STANDARD.encode(format!("{USER}:{WRONG_PASSWORD}"))),
        "{msg}"
    );

    let pushed = push(&built, &reference, &with_creds(USER, PASSWORD));
    assert!(
        pushed.lines.iter().all(|l| !l.contains(PASSWORD)),
        "{:#?}",
        pushed.lines
    );
    assert!(pushed.lines.iter().any(|l| l.contains("basic auth")));
    let outcome = pushed.ok();
    assert_eq!(outcome.fetched_digest, built.root);
    let raw = raw_manifest(&reference, Some(&format!("{USER}:{PASSWORD}")));
    assert_eq!(sha256(&raw), built.root);
}

#[test]
fn credentials_from_an_auth_file_push_to_a_basic_auth_registry() {
    let built = build_layout("auth-file");
    let registry = registry::Registry::start(Some(&htpasswd(USER, PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.json");
    let entry = STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &file,
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"{entry}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let (file_s, home_s) = (
        file.to_str().unwrap().to_string(),
        home.path().to_str().unwrap().to_string(),
    );
    let env = move |k: &str| match k {
        "REGISTRY_AUTH_FILE" => Some(file_s.clone()),
        "HOME" => Some(home_s.clone()),
        _ => None,
    };
    let (creds, source) = auth::resolve_credentials_with(&registry.addr, None, &env)
        .unwrap()
        .expect("the auth file has an entry for the registry");
    assert_eq!(source, auth::CredentialSource::AuthFile(file.clone()));
    let opts = PushOptions {
        credentials: Some(creds),
        ..plain(3)
    };
    let outcome = push(&built, &format!("{}/demo:test", registry.addr), &opts).ok();
    assert_eq!(outcome.fetched_digest, built.root);
}

/// Runs one ignored test of this binary in a child process with `envs`, so that the real
/// process environment (`REGISTRY_AUTH_FILE`, `HOME`) is read without racing other tests.
fn run_child(test: &str, envs: &[(&str, &str)]) -> Output {
    // Inside the one test binary, a test's name starts with its module's path.
    let test = &format!(
        "{}::{test}",
        module_path!().split_once("::").map_or("", |(_, m)| m)
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("MAB_REGISTRY_USER")
        .env_remove("MAB_REGISTRY_PASSWORD")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child {test} did not pass:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn auth_files_from_the_real_environment() {
    let built = build_layout("child-env");
    let registry = registry::Registry::start(Some(&htpasswd(USER, PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let layout = built.layout();
    let common = |expect: &'static str| {
        vec![
            ("MAB_TEST_CHILD_REGISTRY", registry.addr.clone()),
            ("MAB_TEST_CHILD_LAYOUT", layout.display().to_string()),
            ("MAB_TEST_CHILD_ROOT", built.root.clone()),
            ("MAB_TEST_CHILD_EXPECT", expect.to_string()),
        ]
    };
    let run = |extra: Vec<(&'static str, String)>| {
        let envs: Vec<(&str, String)> = extra;
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_child("child_pushes_with_credentials_from_the_environment", &envs);
    };

    // $REGISTRY_AUTH_FILE, podman's format.
    let auth_file = dir.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.addr,
            STANDARD.encode(format!("{USER}:{PASSWORD}"))
        ),
    )
    .unwrap();
    let empty_home = dir.path().join("empty-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let mut envs = common("user");
    envs.push(("REGISTRY_AUTH_FILE", auth_file.display().to_string()));
    envs.push(("HOME", empty_home.display().to_string()));
    run(envs);

    // ~/.docker/config.json with username/password fields and an http:// key.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"http://{}/v2/":{{"username":"{USER}","password":"{PASSWORD}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let mut envs = common("user");
    envs.push(("HOME", home.display().to_string()));
    run(envs);

    // Nothing anywhere: no credentials, and the registry says 401.
    let mut envs = common("none");
    envs.push(("HOME", empty_home.display().to_string()));
    run(envs);
}

#[test]
#[ignore = "run in a child process by auth_files_from_the_real_environment"]
fn child_pushes_with_credentials_from_the_environment() {
    let Ok(addr) = std::env::var("MAB_TEST_CHILD_REGISTRY") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let creds = auth::resolve_credentials(&addr, None).unwrap();
    let reference: Reference = format!("{addr}/demo:child").parse().unwrap();
    let opts = PushOptions {
        credentials: creds.clone(),
        ..plain(0)
    };
    let root = var("MAB_TEST_CHILD_ROOT");
    let result = push_layout(
        Path::new(&var("MAB_TEST_CHILD_LAYOUT")),
        &root,
        OCI_INDEX,
        &reference,
        &opts,
        &mut |_| {},
    );
    match var("MAB_TEST_CHILD_EXPECT").as_str() {
        "user" => {
            assert_eq!(creds.map(|c| c.username), Some(USER.to_string()));
            assert_eq!(result.unwrap().fetched_digest, root);
        }
        "none" => {
            assert_eq!(creds, None);
            assert_eq!(result.unwrap_err().status(), Some(401));
        }
        other => panic!("unknown expectation {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Bearer tokens: the real registry in token mode, a token server signing RS256 JWTs
// ---------------------------------------------------------------------------------------

#[test]
fn bearer_token_auth_against_a_token_mode_registry() {
    let built = build_layout("bearer");
    let tokens = token::TokenServer::start(USER, PASSWORD);
    let registry = token::start_registry(&tokens);
    let reference = format!("{}/org/demo:test", registry.addr);

    let pushed = push(&built, &reference, &with_creds(USER, PASSWORD));
    let lines = pushed.lines.clone();
    let outcome = pushed.ok();
    assert_eq!(outcome.fetched_digest, built.root);
    assert!(
        lines.iter().any(|l| l.contains("bearer token")),
        "{lines:#?}"
    );
    // One token for the whole push, asked for with basic auth and the push scope.
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].user.as_deref(), Some(USER));
    assert_eq!(requests[0].scopes, ["repository:org/demo:pull,push"]);
    assert_eq!(requests[0].service, token::SERVICE);
    for line in &lines {
        assert!(
            !line.contains("eyJ"),
            "a token leaked into progress: {line}"
        );
    }

    // Wrong password: the token server says 401, and the error says what to fix.
    let err = push(&built, &reference, &with_creds(USER, WRONG_PASSWORD)).err();
    let msg = err.to_string();
    assert!(matches!(err, PushError::Token { status: 401, .. }), "{msg}");
    assert!(
        msg.contains(&tokens.realm) && msg.contains("org/demo"),
        "{msg}"
    );
    assert!(msg.contains("check --creds"), "{msg}");
    assert!(!msg.contains(WRONG_PASSWORD), "{msg}");
}

// ---------------------------------------------------------------------------------------
// Streaming: a large blob never sits in memory
// ---------------------------------------------------------------------------------------

const LARGE_BLOB: u64 = 192 << 20;

#[test]
fn a_large_blob_is_streamed_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let layout = LayoutWriter::create(dir.path().join("layout")).unwrap();
    let big = layout
        .add_layer(Compression::None, 0, |l| {
            l.file_from(
                "data/big",
                0o644,
                LARGE_BLOB,
                std::io::repeat(7).take(LARGE_BLOB),
            )
        })
        .unwrap();
    let platform = Platform::parse("linux/amd64").unwrap();
    let image = layout
        .add_image(Flavour::Oci, &platform, &RunConfig::default(), &[big])
        .unwrap();
    let root = image.digest().to_string();
    let registry = registry::Registry::start(None);
    let out = run_child(
        "child_pushes_one_large_image",
        &[
            ("MAB_TEST_CHILD_REGISTRY", &registry.addr),
            ("MAB_TEST_CHILD_LAYOUT", layout.dir().to_str().unwrap()),
            ("MAB_TEST_CHILD_ROOT", &root),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hwm_kb: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("peak-rss-kb=").map(|(_, kb)| kb))
        .unwrap_or_else(|| panic!("the child reports its peak RSS:\n{stdout}"))
        .trim()
        .parse()
        .unwrap();
    let rate = stdout
        .lines()
        .find(|l| l.starts_with("pushed "))
        .unwrap_or("");
    eprintln!("{rate}; peak RSS of the pushing process {hwm_kb} kB");
    assert!(
        hwm_kb < 64 << 10,
        "peak RSS {hwm_kb} kB for a {LARGE_BLOB}-byte blob: it was buffered"
    );
}

#[test]
#[ignore = "run in a child process by a_large_blob_is_streamed_from_disk"]
fn child_pushes_one_large_image() {
    let Ok(addr) = std::env::var("MAB_TEST_CHILD_REGISTRY") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let reference: Reference = format!("{addr}/big:test").parse().unwrap();
    let started = Instant::now();
    let outcome = push_layout(
        Path::new(&var("MAB_TEST_CHILD_LAYOUT")),
        &var("MAB_TEST_CHILD_ROOT"),
        mab_verify::publish::registry::OCI_MANIFEST,
        &reference,
        &plain(0),
        &mut |_| {},
    )
    .unwrap();
    assert!(outcome.uploaded_bytes > LARGE_BLOB);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .to_string();
    let secs = started.elapsed().as_secs_f64();
    println!("peak-rss-kb={hwm}");
    println!(
        "pushed {} MiB in {secs:.2} s ({:.0} MiB/s)",
        outcome.uploaded_bytes >> 20,
        (outcome.uploaded_bytes >> 20) as f64 / secs
    );
}

// ---------------------------------------------------------------------------------------
// References, redaction, loopback
// ---------------------------------------------------------------------------------------

fn reference(text: &str) -> (String, String, String, Option<String>) {
    let r: Reference = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    (r.registry, r.repository, r.tag, r.digest)
}

#[test]
fn references_parse_like_docker_does() {
    let hex = "a".repeat(64);
    let digest = format!("sha256:{hex}");
    let s = |x: &str| x.to_string();
    assert_eq!(
        reference("127.0.0.1:5000/app:dev"),
        (s("127.0.0.1:5000"), s("app"), s("dev"), None)
    );
    assert_eq!(
        reference("ghcr.io/org/app:1.2"),
        (s("ghcr.io"), s("org/app"), s("1.2"), None)
    );
    assert_eq!(
        reference("docker.io/library/x:y"),
        (s("docker.io"), s("library/x"), s("y"), None)
    );
    assert_eq!(
        reference("ghcr.io/org/app"),
        (s("ghcr.io"), s("org/app"), s("latest"), None)
    );
    assert_eq!(
        reference("alpine"),
        (s("docker.io"), s("library/alpine"), s("latest"), None)
    );
    assert_eq!(
        reference("org/app:v1"),
        (s("docker.io"), s("org/app"), s("v1"), None)
    );
    assert_eq!(
        reference("index.docker.io/x"),
        (s("docker.io"), s("library/x"), s("latest"), None)
    );
    assert_eq!(
        reference("localhost:5000/a/b-c/d_e:v1.0-rc"),
        (s("localhost:5000"), s("a/b-c/d_e"), s("v1.0-rc"), None)
    );
    assert_eq!(
        reference("localhost/app"),
        (s("localhost"), s("app"), s("latest"), None)
    );
    assert_eq!(
        reference(&format!("[::1]:5000/app@{digest}")),
        (s("[::1]:5000"), s("app"), s(""), Some(digest.clone()))
    );
    assert_eq!(
        reference(&format!("docker://ghcr.io/o/a:t@{digest}")),
        (s("ghcr.io"), s("o/a"), s("t"), Some(digest.clone()))
    );

    let r: Reference = format!("r.example/app@{digest}").parse().unwrap();
    assert_eq!(r.target(), digest);
    assert_eq!(r.to_string(), format!("r.example/app@{digest}"));
    let r: Reference = "alpine".parse().unwrap();
    assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
    assert_eq!(r.api_host(), "registry-1.docker.io");
    assert_eq!(r.target(), "latest");

    for (bad, why) in [
        ("", "empty"),
        ("ghcr.io/Org/app", "lowercase"),
        ("ghcr.io/org/app:", "tag"),
        ("ghcr.io/org/app:-x", "tag"),
        ("ghcr.io/org//app", "repository component"),
        ("ghcr.io/org/app@sha256:abc", "sha256"),
        ("ghcr.io/org/app@md5:abc", "sha256"),
        ("bad_host.example:x/app", "HOST"),
    ] {
        let err = bad.parse::<Reference>().unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
        assert!(err.contains("hint:"), "{bad:?}: {err}");
    }
}

#[test]
fn a_pinned_digest_must_be_the_verified_root() {
    let built = build_layout("pinned");
    let other = format!("sha256:{}", "b".repeat(64));
    let err = push(&built, &format!("127.0.0.1:9/demo@{other}"), &plain(0)).err();
    let msg = err.to_string();
    assert!(matches!(err, PushError::InvalidReference { .. }), "{msg}");
    assert!(msg.contains(&other) && msg.contains(&built.root), "{msg}");
}

#[test]
fn redaction_removes_passwords_tokens_and_auth_headers() {
    let creds = Credentials {
        username: "bob".into(),
        password: "hunter2!".into(),
    };
    let basic = STANDARD.encode("bob:hunter2!");
    let text = format!(
        "PUT https://bob:hunter2!@r.example/v2/a/blobs/uploads/x?_state=s&token=tok123 \
         Authorization: Basic {basic}\nAuthorization: Bearer eyJhbGciOi.payload.sig \
         body {{\"access_token\":\"at-456\",\"token\": \"tk-789\"}} password hunter2! by bob"
    );
    let out = redact(&text, Some(&creds));
    for secret in [
        "hunter2!",
        basic.as_str(),
        "tok123",
        "eyJhbGciOi",
        "at-456",
        "tk-789",
    ] {
        assert!(!out.contains(secret), "{secret:?} survives in {out}");
    }
    for kept in [
        "r.example/v2/a/blobs/uploads/x",
        "_state=s",
        "by bob",
        "Bearer [redacted]",
    ] {
        assert!(out.contains(kept), "{kept:?} lost from {out}");
    }
    assert_eq!(
        redact("nothing secret here", Some(&creds)),
        "nothing secret here"
    );
    assert!(!format!("{creds:?}").contains("hunter2!"));
}

#[test]
fn loopback_detection() {
    for yes in [
        "127.0.0.1",
        "127.0.0.1:5000",
        "127.1.2.3:80",
        "localhost",
        "LOCALHOST:5000",
        "[::1]:5000",
        "[::1]",
        "::1",
        "[::ffff:127.0.0.1]:5000",
    ] {
        assert!(is_loopback(yes), "{yes}");
    }
    for no in [
        "128.0.0.1",
        "10.0.0.1:5000",
        "ghcr.io",
        "localhost.example.com",
        "127.0.0.1.nip.io",
        "127.0.0.1:http",
        "[::2]:5000",
        "[::1]x",
        "",
    ] {
        assert!(!is_loopback(no), "{no}");
    }
}

// ---------------------------------------------------------------------------------------
// A recording, fault-injecting HTTP/1.1 proxy
// ---------------------------------------------------------------------------------------

pub(crate) mod proxy {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    pub enum Action {
        Forward,
        /// Answer with this status and a distribution-style error body.
        Reply(u16),
        /// Forward, then replace the response body.
        RewriteBody(fn(&[u8]) -> Vec<u8>),
    }

    pub type Hook = Box<dyn Fn(&str, &str) -> Action + Send + Sync>;

    pub struct Proxy {
        pub addr: String,
        log: Arc<Mutex<Vec<String>>>,
    }

    type Head = (String, Vec<(String, String)>);

    impl Proxy {
        /// Listens on 127.0.0.1 and forwards to `upstream`; the listener lives as long as
        /// the test process.
        pub fn start(upstream: &str, hook: Hook) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let log: Arc<Mutex<Vec<String>>> = Arc::default();
            let hook = Arc::new(hook);
            let upstream = upstream.to_string();
            let thread_log = log.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { break };
                    let (log, hook, upstream) =
                        (thread_log.clone(), hook.clone(), upstream.clone());
                    std::thread::spawn(move || {
                        let _ = serve(conn, &upstream, &*hook, &log);
                    });
                }
            });
            Proxy { addr, log }
        }

        /// Every request seen, as `METHOD /path?query`.
        pub fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        pub fn clear(&self) {
            self.log.lock().unwrap().clear();
        }

        pub fn count(&self, method: &str, path_part: &str) -> usize {
            self.log()
                .iter()
                .filter(|l| {
                    l.split_once(' ')
                        .is_some_and(|(m, p)| m == method && p.contains(path_part))
                })
                .count()
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Head>> {
        let mut start = String::new();
        if r.read_line(&mut start)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(Some((start.trim_end().to_string(), headers)))
    }

    fn read_body(
        r: &mut impl BufRead,
        headers: &[(String, String)],
        to_eof: bool,
    ) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        if header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16)
                    .map_err(std::io::Error::other)?;
                let mut chunk = vec![0; size + 2];
                r.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = header(headers, "content-length") {
            body.resize(len.parse().map_err(std::io::Error::other)?, 0);
            r.read_exact(&mut body)?;
        } else if to_eof {
            r.read_to_end(&mut body)?;
        }
        Ok(body)
    }

    /// Writes a message with `Content-Length` set to the body (unless `keep_length`).
    fn write_message(
        w: &mut impl Write,
        start: &str,
        headers: &[(String, String)],
        body: &[u8],
        keep_length: bool,
    ) -> std::io::Result<()> {
        let mut out = format!("{start}\r\n");
        for (k, v) in headers {
            let framing = k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding");
            if !framing || keep_length && k.eq_ignore_ascii_case("content-length") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if !keep_length {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        w.write_all(out.as_bytes())?;
        w.write_all(body)?;
        w.flush()
    }

    fn serve(
        client: TcpStream,
        upstream: &str,
        hook: &(dyn Fn(&str, &str) -> Action + Send + Sync),
        log: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::new(client.try_clone()?);
        let mut writer = client;
        let mut up: Option<(BufReader<TcpStream>, TcpStream)> = None;
        while let Some((start, headers)) = read_head(&mut reader)? {
            let body = read_body(&mut reader, &headers, false)?;
            let mut parts = start.split(' ');
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            log.lock().unwrap().push(format!("{method} {path}"));
            let action = hook(&method, &path);
            if let Action::Reply(status) = action {
                let body = format!(
                    r#"{{"errors":[{{"code":"INJECTED","message":"status {status} injected by the test proxy"}}]}}"#
                );
                let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
                write_message(
                    &mut writer,
                    &format!("HTTP/1.1 {status} Injected"),
                    &headers,
                    body.as_bytes(),
                    false,
                )?;
                continue;
            }
            if up.is_none() {
                let stream = TcpStream::connect(upstream)?;
                up = Some((BufReader::new(stream.try_clone()?), stream));
            }
            let (up_reader, up_writer) = up.as_mut().unwrap();
            write_message(up_writer, &start, &headers, &body, false)?;
            let Some((status_line, response_headers)) = read_head(up_reader)? else {
                return Ok(());
            };
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let no_body = method == "HEAD" || status == 204 || status == 304 || status < 200;
            if no_body {
                write_message(&mut writer, &status_line, &response_headers, &[], true)?;
                continue;
            }
            let mut response_body = read_body(up_reader, &response_headers, true)?;
            if let Action::RewriteBody(rewrite) = action {
                response_body = rewrite(&response_body);
            }
            write_message(
                &mut writer,
                &status_line,
                &response_headers,
                &response_body,
                false,
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// A Docker token server, and the registry in token mode
// ---------------------------------------------------------------------------------------

pub(crate) mod token {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};

    pub const SERVICE: &str = "mab-test-registry";
    const ISSUER: &str = "mab-test-issuer";

    #[derive(Debug, Clone)]
    pub struct TokenRequest {
        pub user: Option<String>,
        pub service: String,
        pub scopes: Vec<String>,
    }

    pub struct TokenServer {
        pub realm: String,
        pub cert: PathBuf,
        requests: Arc<Mutex<Vec<TokenRequest>>>,
        _dir: tempfile::TempDir,
    }

    impl TokenServer {
        pub fn start(user: &str, password: &str) -> TokenServer {
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("key.pem");
            let cert = dir.path().join("cert.pem");
            let status = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=mab-test-token"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "openssl makes a key and certificate");
            let der = Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert)
                .output()
                .unwrap()
                .stdout;
            let x5c = STANDARD.encode(der);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let realm = format!("http://{}/token", listener.local_addr().unwrap());
            let requests: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
            let log = requests.clone();
            let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(mut conn) = conn else { break };
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut start = String::new();
                    let _ = reader.read_line(&mut start);
                    let mut authorization = None;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("authorization")
                        {
                            authorization = Some(v.trim().to_string());
                        }
                    }
                    let target = start.split(' ').nth(1).unwrap_or_default().to_string();
                    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
                    let mut request = TokenRequest {
                        user: None,
                        service: String::new(),
                        scopes: Vec::new(),
                    };
                    for pair in query.split('&') {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let v = percent_decode(v);
                        match k {
                            "service" => request.service = v,
                            "scope" => request.scopes.push(v),
                            _ => {}
                        }
                    }
                    if let Some(basic) = authorization
                        .as_deref()
                        .and_then(|a| a.strip_prefix("Basic "))
                        && let Some(decoded) = STANDARD
                            .decode(basic)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                    {
                        request.user = decoded.split_once(':').map(|(u, _)| u.to_string());
                    }
                    log.lock().unwrap().push(request.clone());
                    let (status, body) = if authorization.as_deref() == Some(expected.as_str()) {
                        let jwt = sign(&key, &x5c, &request);
                        (
                            "200 OK",
                            serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300})
                                .to_string(),
                        )
                    } else {
                        (
                            "401 Unauthorized",
                            r#"{"details":"invalid username or password"}"#.to_string(),
                        )
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            TokenServer {
                realm,
                cert,
                requests,
                _dir: dir,
            }
        }

        pub fn requests(&self) -> Vec<TokenRequest> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// An RS256 JWT as the distribution registry's token auth expects: `x5c` chain, issuer,
    /// audience = service, and the requested repository actions.
    fn sign(key: &Path, x5c: &str, request: &TokenRequest) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<Value> = request
            .scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({
                    "type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": request.user, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now - 10,
            "jti": format!("{now}-{}", request.scopes.join(" ")),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let signature = child.wait_with_output().unwrap().stdout;
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The real registry with `auth.token` pointing at `tokens`; stopped when dropped.
    pub fn start_registry(tokens: &TokenServer) -> super::registry::Registry {
        super::registry::Registry::start_with(|_| {
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                tokens.realm,
                tokens.cert.display()
            )
        })
    }
}
