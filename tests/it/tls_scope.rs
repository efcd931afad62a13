//! `--tls-verify=false` covers only the registry named in the reference: a blob redirect to
//! another HTTPS origin (docker-registry's `redirect` storage middleware pointing at Python's
//! `http.server` serving the registry's storage) still verifies that origin.

use crate::harness::{self, registry::Registry};
use crate::remote_verify::{SERVER_EXT, issue, make_ca};
use crate::support;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA of its own (`NAME-ca.crt`) and a P-256 server certificate for 127.0.0.1 signed by it
/// (`NAME.crt` + `NAME.key`): trusted by nobody unless that CA is passed.
fn own_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (format!("{name}-ca.crt"), format!("{name}-ca.key"));
    make_ca(dir, &ca, &ca_key, &format!("/CN={name} test CA"));
    issue(dir, &ca, &ca_key, name, SERVER_EXT);
    (
        dir.join(ca),
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Python's `http.server` serving the files under `root` over HTTPS with `cert` (with a
/// Content-Length, as blob storage answers); killed when dropped.
struct FileServer(Child);

const HTTPS_FILES: &str = "import http.server, ssl, sys
server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
";

impl FileServer {
    fn start(root: &Path, port: u16, cert: &Path, key: &Path) -> FileServer {
        std::fs::create_dir_all(root).unwrap();
        let child = Command::new("python3")
            .current_dir(root)
            .args(["-c", HTTPS_FILES, &port.to_string()])
            .arg(cert)
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the HTTPS file server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FileServer(child)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn verify(home: &Path, args: &[&str]) -> harness::Outcome {
    let mut cmd = harness::command();
    cmd.env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .args(["--format", "json", "--no-run"])
        .args(args);
    harness::run_cmd(cmd)
}

#[test]
fn tls_verify_false_does_not_reach_a_redirect_to_another_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (_, reg_crt, reg_key) = own_ca(dir.path(), "registry");
    let (storage_ca, storage_crt, storage_key) = own_ca(dir.path(), "storage");
    let storage_port = free_port();
    let mut data = PathBuf::new();
    let reg = Registry::start_with(|d| {
        data = d.join("data");
        format!(
            "  tls:\n    certificate: {}\n    key: {}\nmiddleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: https://127.0.0.1:{storage_port}/\n",
            reg_crt.display(),
            reg_key.display()
        )
    });
    let _storage = FileServer::start(&data, storage_port, &storage_crt, &storage_key);
    let reference = format!("{}/redirected:v1", reg.addr);
    harness::skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!(
            "oci:{}:latest",
            support::images::images().nested_index.display()
        ),
        &format!("docker://{reference}"),
    ]);
    let input = format!("docker://{reference}");

    // The registry's own certificate is waived; the storage origin's is still checked.
    let refused = verify(dir.path(), &["--tls-verify=false", &input]);
    // Not a verdict on the image: the environment (its trust store) refused, exit 3.
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("certificate"), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("127.0.0.1:{storage_port}")),
        "the failing origin is named: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--cert-dir"), "{}", refused.stderr);

    // Trusting the storage origin's certificate lets the same verify through the redirect.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&storage_ca, certs.join("storage-ca.crt")).unwrap();
    let cert_dir = certs.display().to_string();
    let admitted = verify(
        dir.path(),
        &["--tls-verify=false", "--cert-dir", &cert_dir, &input],
    );
    assert_eq!(admitted.code, 0, "{}", admitted.stderr);

    // Without --tls-verify=false the registry's own certificate is refused.
    let own = verify(dir.path(), &["--cert-dir", &cert_dir, &input]);
    assert_eq!(own.code, 3, "{}", own.stderr);
}
