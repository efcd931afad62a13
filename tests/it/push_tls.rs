//! `push --cert-dir DIR` and `--tls-verify=false` against a real docker-registry serving HTTPS
//! with a CA made by the test (and, with client-certificate auth, mTLS); skopeo reads back.

use crate::harness::{self, Outcome};
use crate::remote_verify::{isolated, nested, test_pki, tls_registry};
use serde_json::Value;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// The test PKI and two containers-certs.d directories: the CA alone, and the CA with the
/// client pair (`client.cert` + `client.key`).
struct Pki {
    dir: PathBuf,
    ca_only: PathBuf,
    with_client: PathBuf,
}

fn pki(root: &Path) -> Pki {
    let dir = root.join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    test_pki(&dir);
    let ca_only = root.join("ca-only");
    let with_client = root.join("with-client");
    for d in [&ca_only, &with_client] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(dir.join("ca.crt"), d.join("ca.crt")).unwrap();
    }
    std::fs::copy(dir.join("client.crt"), with_client.join("client.cert")).unwrap();
    std::fs::copy(dir.join("client.key"), with_client.join("client.key")).unwrap();
    Pki {
        dir,
        ca_only,
        with_client,
    }
}

fn push(home: &Path, args: &[&str], reference: &str) -> Outcome {
    let mut cmd = isolated(home);
    cmd.args(["push", "--no-run", "-q"])
        .args(args)
        .arg(nested())
        .arg(reference);
    harness::run_cmd(cmd)
}

/// The root `push` sends for `nested()`: the one descriptor of its `index.json`.
fn verified_root() -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(nested().join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the registry serves for `reference`, read by skopeo trusting `cert_dir`.
fn served_by_skopeo(cert_dir: &Path, reference: &str) -> String {
    let raw = harness::skopeo(&[
        "inspect",
        "--raw",
        &format!("--cert-dir={}", cert_dir.display()),
        &format!("docker://{reference}"),
    ]);
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
}

fn assert_tls_hint(out: &Outcome) {
    assert_eq!(out.code, 3, "{}", out.stderr);
    for wanted in ["--cert-dir", "--tls-verify=false"] {
        assert!(out.stderr.contains(wanted), "{wanted}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("--plain-http"), "{}", out.stderr);
    assert!(!out.stderr.contains("pushed "), "{}", out.stderr);
}

#[test]
fn push_trusts_the_cert_dir_ca_and_fails_with_the_hint_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let reg = tls_registry(&pki.dir, false);
    let ca_dir = pki.ca_only.display().to_string();

    let untrusted = push(dir.path(), &[], &format!("{}/app:untrusted", reg.addr));
    assert_tls_hint(&untrusted);

    let reference = format!("{}/app:trusted", reg.addr);
    let trusted = push(dir.path(), &["--cert-dir", &ca_dir], &reference);
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert_eq!(served_by_skopeo(&pki.ca_only, &reference), verified_root());

    let reference = format!("{}/app:unverified", reg.addr);
    let insecure = push(dir.path(), &["--tls-verify=false"], &reference);
    assert_eq!(insecure.code, 0, "{}", insecure.stderr);
    assert_eq!(served_by_skopeo(&pki.ca_only, &reference), verified_root());

    // --tls-verify=true is the default spelled out: the CA is still needed.
    let explicit = push(
        dir.path(),
        &["--tls-verify=true"],
        &format!("{}/app:explicit", reg.addr),
    );
    assert_tls_hint(&explicit);
}

#[test]
fn push_with_a_client_certificate_from_the_cert_dir() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let reg = tls_registry(&pki.dir, true);
    let reference = format!("{}/org/mtls:v1", reg.addr);

    let refused = push(
        dir.path(),
        &["--cert-dir", &pki.ca_only.display().to_string()],
        &reference,
    );
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("NAME.cert"), "{}", refused.stderr);

    let admitted = push(
        dir.path(),
        &["--cert-dir", &pki.with_client.display().to_string()],
        &reference,
    );
    assert_eq!(admitted.code, 0, "{}", admitted.stderr);
    assert_eq!(
        served_by_skopeo(&pki.with_client, &reference),
        verified_root()
    );
}

#[test]
fn a_cert_dir_with_a_key_but_no_certificate_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(pki.dir.join("client.key"), broken.join("client.key")).unwrap();
    let reg = tls_registry(&pki.dir, false);
    let out = push(
        dir.path(),
        &["--cert-dir", &broken.display().to_string()],
        &format!("{}/app:broken", reg.addr),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("client.key"), "{}", out.stderr);
    assert!(out.stderr.contains("client.cert"), "{}", out.stderr);
}
