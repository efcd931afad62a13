//! `mab-verify docker://…` against a real docker-registry on loopback, the images pushed by
//! skopeo (an independent writer); and the `oci:`/`oci-archive:`/`docker-archive:` names.

use crate::harness::{self, Outcome, registry::Registry, status_of};
use crate::support;
use serde_json::Value;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: &str = "puller";
const PASSWORD: &str = "pa55-for-remote-verify";

/// The good fixture: `index.json` → (ref `latest`) an index blob → three manifests.
pub(crate) fn nested() -> &'static Path {
    &support::images::images().nested_index
}

/// `nested()` as an OCI archive, as `oci-archive:` wants it.
fn nested_archive(dir: &Path) -> PathBuf {
    let file = dir.join("nested.oci.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&file).unwrap());
    builder.append_dir_all(".", nested()).unwrap();
    builder.finish().unwrap();
    file
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// A copy of `nested()` whose index swaps the platforms of its first two entries: each
/// claims the other's architecture (the images and configs themselves are truthful).
fn lying_layout(dir: &Path) -> PathBuf {
    let out = dir.join("lying");
    copy_dir(nested(), &out);
    let mut index = read_json(&out.join("index.json"));
    let root = index["manifests"][0].clone();
    let mut inner = read_json(&blob_path(&out, root["digest"].as_str().unwrap()));
    let entries = inner["manifests"].as_array_mut().unwrap();
    let first = entries[0]["platform"].clone();
    entries[0]["platform"] = entries[1]["platform"].clone();
    entries[1]["platform"] = first;
    let bytes = serde_json::to_vec(&inner).unwrap();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    std::fs::write(blob_path(&out, &digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `skopeo copy --all SOURCE docker://ADDR/REPO` to the plain-HTTP loopback registry.
fn skopeo_push(source: &str, reference: &str, creds: Option<&str>) {
    let mut args = vec![
        "copy".to_string(),
        "--all".into(),
        "--dest-tls-verify=false".into(),
    ];
    if let Some(c) = creds {
        args.push(format!("--dest-creds={c}"));
    }
    args.push(source.into());
    args.push(format!("docker://{reference}"));
    harness::skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The digest of what the registry serves for `reference`, read by skopeo.
fn served_digest(reference: &str, creds: Option<&str>) -> String {
    let mut args = vec![
        "inspect".to_string(),
        "--raw".into(),
        "--tls-verify=false".into(),
    ];
    if let Some(c) = creds {
        args.push(format!("--creds={c}"));
    }
    args.push(format!("docker://{reference}"));
    let raw = harness::skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    hex::encode(sha2::Sha256::digest(&raw))
}

/// mab-verify with no credentials from this machine's files or environment.
pub(crate) fn isolated(home: &Path) -> Command {
    let mut cmd = harness::command();
    cmd.env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("MAB_REGISTRY_USER")
        .env_remove("MAB_REGISTRY_PASSWORD")
        .env_remove("XDG_RUNTIME_DIR");
    cmd
}

fn verify(home: &Path, args: &[&str]) -> Outcome {
    let mut cmd = isolated(home);
    cmd.args(["--format", "json", "--no-run"]).args(args);
    harness::run_cmd(cmd)
}

fn htpasswd() -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .expect("htpasswd (apache2-utils) is installed by scripts/setup");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn image_artifacts(report: &Value) -> Vec<&Value> {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .collect()
}

#[test]
fn a_good_index_pushed_by_skopeo_verifies_from_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let reference = format!("{}/good:v1", reg.addr);
    let archive = nested_archive(dir.path());
    skopeo_push(
        &format!("oci-archive:{}:latest", archive.display()),
        &reference,
        None,
    );
    let input = format!("docker://{reference}");
    let out = verify(dir.path(), &["--plain-http", &input]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let index = &report["artifacts"][0];
    assert_eq!(index["kind"], "index");
    assert_eq!(index["path"], format!("{input}@index"));
    // The digest the registry served, as skopeo reads it.
    assert_eq!(index["sha256"], served_digest(&reference, None));
    // Progress: each layer of a MiB or more gets a line with its size and throughput.
    let metered = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.contains(" blob sha256:") && l.ends_with("/s"))
            .count()
    };
    assert!(metered(&out.stderr) >= 1, "{}", out.stderr);
    let quiet = verify(dir.path(), &["--plain-http", "--quiet", &input]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(metered(&quiet.stderr), 0, "{}", quiet.stderr);
    let images = image_artifacts(&report);
    assert_eq!(images.len(), support::images::images().multi_rows.len());
    // --platform with --expect: index.expected still sees every platform the index holds.
    let mut args = vec!["--plain-http".to_string(), "--platform".into()];
    args.push(images[0]["platform"].as_str().unwrap().to_string());
    for img in &images {
        args.push("--expect".into());
        args.push(img["platform"].as_str().unwrap().to_string());
    }
    args.push(input.clone());
    let one = verify(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(one.code, 0, "{}\n{}", one.stdout, one.stderr);
    assert_eq!(image_artifacts(&one.json()).len(), 1);
    for img in images {
        for id in ["blob.digest", "index.platform", "image.config-platform"] {
            assert_eq!(status_of(img, id), "pass", "{id} of {img:#}");
        }
    }
}

#[test]
fn a_lying_index_pushed_by_skopeo_fails_index_platform() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let reference = format!("{}/lying:v1", reg.addr);
    let layout = lying_layout(dir.path());
    skopeo_push(
        &format!("oci:{}:latest", layout.display()),
        &reference,
        None,
    );
    let out = verify(
        dir.path(),
        &["--plain-http", &format!("docker://{reference}")],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let statuses: Vec<String> = image_artifacts(&report)
        .iter()
        .map(|a| status_of(a, "index.platform"))
        .collect();
    assert_eq!(statuses, ["fail", "fail", "pass"], "{report:#}");
}

#[test]
fn platform_fetches_only_that_platforms_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = None;
    let reg = Registry::start_with(|d| {
        data = Some(d.join("data"));
        String::new()
    });
    let reference = format!("{}/one:v1", reg.addr);
    skopeo_push(
        &format!("oci:{}:latest", nested().display()),
        &reference,
        None,
    );
    // Delete from the registry's storage a layer only the first platform's image has.
    let index = read_json(&nested().join("index.json"));
    let inner = read_json(&blob_path(
        nested(),
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let layers_of = |n: usize| -> Vec<String> {
        let m = read_json(&blob_path(
            nested(),
            inner["manifests"][n]["digest"].as_str().unwrap(),
        ));
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let others: Vec<String> = (1..inner["manifests"].as_array().unwrap().len())
        .flat_map(layers_of)
        .collect();
    let only_first = layers_of(0)
        .into_iter()
        .find(|l| !others.contains(l))
        .expect("the first image has a layer of its own");
    let hex = only_first.strip_prefix("sha256:").unwrap();
    let stored = data
        .unwrap()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    std::fs::remove_dir_all(&stored).unwrap();

    let first = &inner["manifests"][0]["platform"];
    let first = format!(
        "{}/{}",
        first["os"].as_str().unwrap(),
        first["architecture"].as_str().unwrap()
    );
    let second = &inner["manifests"][1]["platform"];
    let second = format!(
        "{}/{}",
        second["os"].as_str().unwrap(),
        second["architecture"].as_str().unwrap()
    );
    let input = format!("docker://{reference}");
    // The other platform never asks for the deleted layer...
    let out = verify(dir.path(), &["--plain-http", "--platform", &second, &input]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(image_artifacts(&out.json()).len(), 1);
    // ...while the first platform, and the whole index, do.
    for args in [vec!["--platform", first.as_str()], vec![]] {
        let mut all = vec!["--plain-http"];
        all.extend(args);
        all.push(&input);
        let out = verify(dir.path(), &all);
        assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(hex), "{}", out.stderr);
    }
}

#[test]
fn an_unknown_tag_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    skopeo_push(
        &format!("oci:{}:latest", nested().display()),
        &format!("{}/app:v1", reg.addr),
        None,
    );
    let out = verify(
        dir.path(),
        &[
            "--plain-http",
            &format!("docker://{}/app:no-such-tag", reg.addr),
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-tag"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn an_unreachable_registry_is_exit_3_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let out = verify(
        dir.path(),
        &["--plain-http", &format!("docker://{host}/app:v1")],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains(&host), "{}", out.stderr);
}

#[test]
fn a_bare_registry_name_gets_the_docker_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(dir.path(), &["ghcr.io/org/app:1.2"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("docker://ghcr.io/org/app:1.2"),
        "{}",
        out.stderr
    );
}

#[test]
fn basic_auth_from_creds_auth_files_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(Some(&htpasswd()));
    let reference = format!("{}/private:v1", reg.addr);
    let creds = format!("{USER}:{PASSWORD}");
    skopeo_push(
        &format!("oci:{}:latest", nested().display()),
        &reference,
        Some(&creds),
    );
    let input = format!("docker://{reference}");

    let anonymous = verify(dir.path(), &["--plain-http", &input]);
    assert_eq!(anonymous.code, 2, "{}", anonymous.stderr);
    assert!(anonymous.stderr.contains("401"), "{}", anonymous.stderr);

    let wrong = verify(
        dir.path(),
        &["--plain-http", "--creds", &format!("{USER}:wrong"), &input],
    );
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);

    let flag = verify(dir.path(), &["--plain-http", "--creds", &creds, &input]);
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    assert!(!flag.stderr.contains(PASSWORD) && !flag.stdout.contains(PASSWORD));

    // An auths entry in $DOCKER_CONFIG/config.json.
    let docker_config = dir.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &creds);
    std::fs::write(
        docker_config.join("config.json"),
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let mut cmd = isolated(dir.path());
    cmd.env("DOCKER_CONFIG", &docker_config).args([
        "--format",
        "json",
        "--no-run",
        "--plain-http",
        &input,
    ]);
    let from_file = harness::run_cmd(cmd);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);

    // The environment.
    let mut cmd = isolated(dir.path());
    cmd.env("MAB_REGISTRY_USER", USER)
        .env("MAB_REGISTRY_PASSWORD", PASSWORD)
        .args(["--format", "json", "--no-run", "--plain-http", &input]);
    let from_env = harness::run_cmd(cmd);
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
}

#[test]
fn local_transports_name_layouts_archives_and_ref_names() {
    let dir = tempfile::tempdir().unwrap();
    let archive = nested_archive(dir.path());
    let layout = nested().display().to_string();
    for input in [
        format!("oci:{layout}"),
        format!("oci:{layout}:latest"),
        format!("oci-archive:{}:latest", archive.display()),
    ] {
        let out = verify(dir.path(), &[&input]);
        assert_eq!(out.code, 0, "{input}: {}", out.stderr);
        assert_eq!(
            image_artifacts(&out.json()).len(),
            support::images::images().multi_rows.len(),
            "{input}"
        );
    }
    let missing = verify(dir.path(), &[&format!("oci:{layout}:no-such-name")]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no-such-name") && missing.stderr.contains("latest"),
        "{}",
        missing.stderr
    );
    let wrong_kind = verify(dir.path(), &[&format!("docker-archive:{layout}")]);
    assert_eq!(wrong_kind.code, 2, "{}", wrong_kind.stderr);
    assert!(
        wrong_kind.stderr.contains("docker-archive"),
        "{}",
        wrong_kind.stderr
    );
}

/// A real credential helper on PATH: `docker-credential-NAME get` answers `secret` for the
/// server it is asked about when that is `host`, "credentials not found" otherwise, and
/// records what it was asked.
fn credential_helper(dir: &Path, name: &str, host: &str, secret: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join(format!("docker-credential-{name}"));
    let asked = dir.join(format!("{name}.asked"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread -r server || true\nprintf '%s\\n' \"$server\" >> '{asked}'\nif [ \"$server\" = '{host}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            asked = asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn with_path(cmd: &mut Command, bin: &Path) {
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
}

#[test]
fn credential_helpers_and_podman_auth_json() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(Some(&htpasswd()));
    let reference = format!("{}/helped:v1", reg.addr);
    skopeo_push(
        &format!("oci:{}:latest", nested().display()),
        &reference,
        Some(&format!("{USER}:{PASSWORD}")),
    );
    let input = format!("docker://{reference}");
    let bin = credential_helper(dir.path(), "mabtest", &reg.addr, PASSWORD);
    let docker_config = dir.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let run = |config: Value, extra: &dyn Fn(&mut Command)| {
        std::fs::write(docker_config.join("config.json"), config.to_string()).unwrap();
        let mut cmd = isolated(dir.path());
        with_path(&mut cmd, &bin);
        cmd.env("DOCKER_CONFIG", &docker_config);
        extra(&mut cmd);
        cmd.args(["--format", "json", "--no-run", "--plain-http", &input]);
        harness::run_cmd(cmd)
    };
    let none = |_: &mut Command| {};

    // credHelpers for this host.
    let helped = run(
        serde_json::json!({"credHelpers": {reg.addr.clone(): "mabtest"}}),
        &none,
    );
    assert_eq!(helped.code, 0, "{}", helped.stderr);
    assert!(!helped.stderr.contains(PASSWORD));
    let asked = std::fs::read_to_string(dir.path().join("mabtest.asked")).unwrap();
    assert_eq!(asked.lines().last(), Some(reg.addr.as_str()));

    // credsStore, with Docker's empty auths marker.
    let stored = run(
        serde_json::json!({"credsStore": "mabtest", "auths": {reg.addr.clone(): {}}}),
        &none,
    );
    assert_eq!(stored.code, 0, "{}", stored.stderr);

    // A helper for another host is not asked; with nothing else the pull is anonymous: 401.
    let other = run(
        serde_json::json!({"credHelpers": {"registry.example": "mabtest"}}),
        &none,
    );
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(other.stderr.contains("401"), "{}", other.stderr);

    // A helper that is not installed: exit 2 naming it.
    let missing = run(
        serde_json::json!({"credHelpers": {reg.addr.clone(): "not-installed-here"}}),
        &none,
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("docker-credential-not-installed-here"),
        "{}",
        missing.stderr
    );

    // podman's $XDG_RUNTIME_DIR/containers/auth.json comes before Docker's config.
    let runtime = dir.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    std::fs::write(
        runtime.join("containers/auth.json"),
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let podman = run(serde_json::json!({}), &|cmd: &mut Command| {
        cmd.env("XDG_RUNTIME_DIR", &runtime);
    });
    assert_eq!(podman.code, 0, "{}", podman.stderr);
}

/// `openssl` with `args`, in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key, unencrypted, for `openssl req`.
const P256: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// What a server certificate for 127.0.0.1 says of itself.
pub(crate) const SERVER_EXT: &str =
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";

/// A self-signed CA, `crt` + `key` in `dir`.
pub(crate) fn make_ca(dir: &Path, crt: &str, key: &str, subject: &str) {
    let mut args = vec!["req", "-x509"];
    args.extend(P256);
    args.extend(["-keyout", key, "-out", crt, "-days", "2", "-subj", subject]);
    openssl(dir, &args);
}

/// `NAME.crt` + `NAME.key` in `dir`, signed by the CA `ca_crt`/`ca_key`, with extensions `ext`.
pub(crate) fn issue(dir: &Path, ca_crt: &str, ca_key: &str, name: &str, ext: &str) {
    let (key, csr, crt, extfile, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
        format!("/CN={name}"),
    );
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let mut req = vec!["req"];
    req.extend(P256);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &req);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca_crt,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
}

/// A CA made here, a server certificate for 127.0.0.1 and a client certificate, all P-256.
pub(crate) fn test_pki(dir: &Path) {
    make_ca(dir, "ca.crt", "ca.key", "/CN=mab test CA");
    issue(dir, "ca.crt", "ca.key", "server", SERVER_EXT);
    issue(
        dir,
        "ca.crt",
        "ca.key",
        "client",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
}

/// A docker-registry serving HTTPS with the test CA's server certificate; with
/// `client_auth`, it also requires a client certificate signed by that CA.
pub(crate) fn tls_registry(pki: &Path, client_auth: bool) -> Registry {
    let pki = pki.to_path_buf();
    Registry::start_with(move |_| {
        let mut block = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            pki.join("server.crt").display(),
            pki.join("server.key").display()
        );
        if client_auth {
            block.push_str(&format!(
                "    clientcas:\n      - {}\n",
                pki.join("ca.crt").display()
            ));
        }
        block
    })
}

#[test]
fn tls_with_a_test_ca_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    test_pki(&pki);
    // containers-certs.d layouts: the CA alone, and the CA with a client pair.
    let ca_only = dir.path().join("ca-only");
    let with_client = dir.path().join("with-client");
    for d in [&ca_only, &with_client] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(pki.join("ca.crt"), d.join("ca.crt")).unwrap();
    }
    std::fs::copy(pki.join("client.crt"), with_client.join("client.cert")).unwrap();
    std::fs::copy(pki.join("client.key"), with_client.join("client.key")).unwrap();

    let reg = tls_registry(&pki, false);
    let reference = format!("{}/tls:v1", reg.addr);
    harness::skopeo(&[
        "copy",
        "--all",
        &format!("--dest-cert-dir={}", ca_only.display()),
        &format!("oci:{}:latest", nested().display()),
        &format!("docker://{reference}"),
    ]);
    let input = format!("docker://{reference}");
    let ca_dir = ca_only.display().to_string();

    let untrusted = verify(dir.path(), &[&input]);
    assert_eq!(untrusted.code, 3, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("--cert-dir"),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("--tls-verify=false"),
        "{}",
        untrusted.stderr
    );
    assert!(
        !untrusted.stderr.contains("--plain-http"),
        "{}",
        untrusted.stderr
    );

    for args in [
        vec!["--cert-dir", ca_dir.as_str(), input.as_str()],
        vec!["--tls-verify=false", input.as_str()],
    ] {
        let out = verify(dir.path(), &args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    let mut cmd = isolated(dir.path());
    cmd.env("SSL_CERT_FILE", pki.join("ca.crt"))
        .args(["--format", "json", "--no-run", &input]);
    let from_env = harness::run_cmd(cmd);
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    drop(reg);

    // Client-certificate auth: the CA alone is refused, the client pair is let in.
    let reg = tls_registry(&pki, true);
    let reference = format!("{}/mtls:v1", reg.addr);
    harness::skopeo(&[
        "copy",
        "--all",
        &format!("--dest-cert-dir={}", with_client.display()),
        &format!("oci:{}:latest", nested().display()),
        &format!("docker://{reference}"),
    ]);
    let input = format!("docker://{reference}");
    let refused = verify(dir.path(), &["--cert-dir", &ca_dir, &input]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("NAME.cert"), "{}", refused.stderr);
    let admitted = verify(
        dir.path(),
        &["--cert-dir", &with_client.display().to_string(), &input],
    );
    assert_eq!(admitted.code, 0, "{}", admitted.stderr);
}

#[test]
fn gate_and_push_take_local_transports_and_refuse_registry_images() {
    let dir = tempfile::tempdir().unwrap();
    let archive = nested_archive(dir.path());
    let mut cmd = isolated(dir.path());
    cmd.args(["gate", "--no-run", "-q"])
        .arg(format!("oci-archive:{}", archive.display()))
        .args(["--", "sh", "-c", "test -f \"$MAB_VERIFIED_PATH\""]);
    let gated = harness::run_cmd(cmd);
    assert_eq!(gated.code, 0, "{}", gated.stderr);

    let mut cmd = isolated(dir.path());
    cmd.args([
        "push",
        "--no-run",
        "docker://127.0.0.1:9/app:1",
        "127.0.0.1:9/app:2",
    ]);
    let pushed = harness::run_cmd(cmd);
    assert_eq!(pushed.code, 2, "{}", pushed.stderr);
    assert!(
        pushed.stderr.contains("already in a registry"),
        "{}",
        pushed.stderr
    );

    let mut cmd = isolated(dir.path());
    cmd.args(["push", "--no-run"])
        .arg(format!("oci-archive:{}:latest", archive.display()))
        .arg("127.0.0.1:9/app:2");
    let named = harness::run_cmd(cmd);
    assert_eq!(named.code, 2, "{}", named.stderr);
    assert!(named.stderr.contains("without :NAME"), "{}", named.stderr);
}

#[test]
fn token_auth_asks_only_for_pull() {
    use crate::registry_push::token;
    let dir = tempfile::tempdir().unwrap();
    let tokens = token::TokenServer::start(USER, PASSWORD);
    let reg = token::start_registry(&tokens);
    let reference = format!("{}/org/pulled:v1", reg.addr);
    let creds = format!("{USER}:{PASSWORD}");
    skopeo_push(
        &format!("oci:{}:latest", nested().display()),
        &reference,
        Some(&creds),
    );
    let before = tokens.requests().len();
    let input = format!("docker://{reference}");
    let out = verify(dir.path(), &["--plain-http", "--creds", &creds, &input]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("eyJ"),
        "a token leaked: {}",
        out.stderr
    );
    let ours = &tokens.requests()[before..];
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].user.as_deref(), Some(USER));
    assert_eq!(ours[0].scopes, ["repository:org/pulled:pull"]);

    let wrong = verify(
        dir.path(),
        &["--plain-http", "--creds", &format!("{USER}:wrong"), &input],
    );
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("token server"), "{}", wrong.stderr);
}
