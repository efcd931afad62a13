//! Issue 14, rule 3: `mab-verify push` against registries that misbehave. A stalled or
//! dripping registry ends the push with its timeout named; an upload `Location` on another
//! origin gets no credentials; `--password-stdin` keeps the secret off argv (against the real
//! docker-registry); a SIGKILLed push's private directory (`$TMPDIR/mab-verify-*`, with the
//! unpacked archive `mab-push-*` in it) is removed by the next mab-verify.
//!
//! The hostile registries are small HTTP/1.1 servers on std's TcpListener, one thread each.

use crate::harness::registry::Registry;
use crate::hostile_shapes::{layout, tiny_elf};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USER: &str = "ci-bot";
const PASSWORD: &str = "stdin-Pa55-only";

/// A one-image layout that verifies (a static linux/amd64 program), under `dir`.
fn passing_layout(dir: &Path) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let elf = tiny_elf(7);
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(elf.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "app", elf.as_slice()).unwrap();
    layout(dir, &b.into_inner().unwrap(), "/app")
}

/// The same layout as an OCI archive (push unpacks it into a scratch directory).
fn passing_archive(dir: &Path) -> PathBuf {
    let layout = passing_layout(dir);
    let archive = dir.join("app.oci.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    b.append_dir_all(".", &layout).unwrap();
    b.finish().unwrap();
    archive
}

fn push(artifact: &Path, reference: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mab-verify"));
    c.args(["push", "--no-run", "--plain-http"])
        .arg(artifact)
        .arg(reference)
        .env_remove("MAB_REGISTRY_USER")
        .env_remove("MAB_REGISTRY_PASSWORD")
        .env("HOME", artifact.parent().unwrap())
        .env(
            "REGISTRY_AUTH_FILE",
            artifact.parent().unwrap().join("none.json"),
        );
    c
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// Read one request (headers and a Content-Length body) from `stream`.
fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "authorization" => authorization = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        authorization,
    })
}

/// Serve `answer` for every request on a free port, recording what arrived; returns the
/// address and the record.
fn serve(
    answer: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (record, answer) = (record.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                while let Some(req) = read_request(&stream) {
                    record.lock().unwrap().push(req.clone());
                    answer(&req, &mut stream);
                }
            });
        }
    });
    (addr, seen)
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)]) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
}

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Starts an answer, then sends nothing more.
    Stall,
    /// Sends one byte of an endless header every 200 ms: never idle, never done.
    Drip,
}

#[rstest::rstest]
#[case::stall_ends_by_the_idle_timeout(
    Misbehaviour::Stall,
    &[("MAB_PUSH_IDLE_TIMEOUT", "1")],
    "idle timeout of 1 s (set MAB_PUSH_IDLE_TIMEOUT"
)]
#[case::drip_ends_by_the_total_timeout(
    Misbehaviour::Drip,
    &[("MAB_PUSH_IDLE_TIMEOUT", "30"), ("MAB_PUSH_TIMEOUT", "1.5")],
    "total timeout of 1.5 s (set MAB_PUSH_TIMEOUT"
)]
fn a_registry_that_stops_answering_ends_the_push_naming_the_timeout(
    #[case] how: Misbehaviour,
    #[case] env: &[(&str, &str)],
    #[case] says: &str,
) {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = passing_layout(tmp.path());
    let (addr, seen) = serve(move |_, stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n");
        match how {
            Misbehaviour::Stall => std::thread::sleep(Duration::from_secs(60)),
            Misbehaviour::Drip => {
                let _ = stream.write_all(b"X-Drip: ");
                for _ in 0..300 {
                    if stream.write_all(b"a").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    });
    let started = Instant::now();
    let out = push(&artifact, &format!("{addr}/app:1.0"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let took = started.elapsed();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains(&addr), "the registry is named: {all}");
    assert!(all.contains(says), "wanted {says:?}: {all}");
    // Four attempts (three retries) of about a second each, plus backoff: never a hang.
    assert!(took < Duration::from_secs(20), "took {took:?}: {all}");
    assert!(!seen.lock().unwrap().is_empty(), "the server was asked");
}

#[test]
fn an_upload_location_on_another_origin_gets_no_authorization() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = passing_layout(tmp.path());
    // The upload host: takes the PUT, records its headers.
    let (elsewhere, uploads) = serve(|req, stream| match req.method.as_str() {
        "PUT" => respond(stream, "201 Created", &[]),
        _ => respond(stream, "404 Not Found", &[]),
    });
    let location = format!("http://{elsewhere}/uploads/1?state=x");
    // The registry: basic auth, uploads sent elsewhere, the manifest refused (ends the push).
    let (addr, registry) = serve(move |req, stream| {
        if req.authorization.is_none() {
            return respond(
                stream,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"test\"")],
            );
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v2/") => respond(stream, "200 OK", &[]),
            ("HEAD", _) => respond(stream, "404 Not Found", &[]),
            ("POST", p) if p.contains("/blobs/uploads/") => {
                respond(stream, "202 Accepted", &[("Location", &location)])
            }
            _ => respond(stream, "400 Bad Request", &[]),
        }
    });
    let out = push(&artifact, &format!("{addr}/app:1.0"))
        .arg("--creds")
        .arg(format!("{USER}:{PASSWORD}"))
        .output()
        .unwrap();
    let registry = registry.lock().unwrap().clone();
    let uploads = uploads.lock().unwrap().clone();
    let all = text(&out);
    let posts: Vec<&Seen> = registry.iter().filter(|r| r.method == "POST").collect();
    assert!(!posts.is_empty(), "{registry:?}\n{all}");
    assert!(
        posts.iter().all(|r| r.authorization.is_some()),
        "the registry's own origin gets the credentials: {registry:?}"
    );
    let puts: Vec<&Seen> = uploads.iter().filter(|r| r.method == "PUT").collect();
    assert!(
        !puts.is_empty(),
        "the blobs went to the Location: {uploads:?}\n{all}"
    );
    assert!(
        uploads.iter().all(|r| r.authorization.is_none()),
        "another origin got credentials: {uploads:?}"
    );
    assert_ne!(out.status.code(), Some(0), "{all}");
}

fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd (apache2-utils) runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn push_with_stdin(artifact: &Path, reference: &str, stdin: &str) -> Output {
    let mut child = push(artifact, reference)
        .args(["--creds", USER, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn password_stdin_pushes_to_a_basic_auth_registry_and_a_wrong_one_is_refused() {
    let registry = Registry::start(Some(&htpasswd(USER, PASSWORD)));
    let tmp = tempfile::tempdir().unwrap();
    let artifact = passing_layout(tmp.path());
    let reference = format!("{}/app:1.0", registry.addr);

    let wrong = push_with_stdin(&artifact, &reference, "not-the-password\n");
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(text(&wrong).contains("401"), "{}", text(&wrong));

    let right = push_with_stdin(&artifact, &reference, &format!("{PASSWORD}\n"));
    assert_eq!(right.status.code(), Some(0), "{}", text(&right));
    assert!(
        !text(&right).contains(PASSWORD),
        "the secret is never echoed: {}",
        text(&right)
    );
    // The registry really has it: skopeo reads it back with the same credentials.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("--creds={USER}:{PASSWORD}"))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));

    let both = push(&artifact, &reference)
        .args(["--creds", &format!("{USER}:{PASSWORD}"), "--password-stdin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    assert!(
        text(&both).contains("only the user name"),
        "{}",
        text(&both)
    );
}

fn scratch_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mab-verify-"))
        })
        .collect();
    found.sort();
    found
}

/// A push of an archive to a registry that never answers, its scratch directory in `tmpdir`.
fn stuck_push(archive: &Path, addr: &str, tmpdir: &Path) -> std::process::Child {
    push(archive, &format!("{addr}/app:1.0"))
        .env("TMPDIR", tmpdir)
        .env("MAB_PUSH_IDLE_TIMEOUT", "600")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmpdir.with_extension("log")).unwrap())
        .spawn()
        .unwrap()
}

/// Whether `private` holds push's unpacked archive (`mab-push-*`): the push is past it, at
/// the registry.
fn holds_unpacked_archive(private: &Path) -> bool {
    std::fs::read_dir(private).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("mab-push-"))
    })
}

fn wait_for_scratch(tmpdir: &Path, count: usize) -> Vec<PathBuf> {
    let started = Instant::now();
    loop {
        let found = scratch_dirs(tmpdir);
        if found.len() >= count && found.iter().all(|p| holds_unpacked_archive(p)) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no scratch directory appeared in {}; the push said:\n{}",
            tmpdir.display(),
            std::fs::read_to_string(tmpdir.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL runs no cleanup, so the killed push's private directory stays (with its unpacked
/// archive); the next mab-verify removes it, and leaves a live push's directory alone.
#[test]
fn a_sigkilled_push_leaves_its_private_dir_to_the_next_run_which_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();
    let archive = passing_archive(tmp.path());
    let (addr, _) = serve(|_, _| std::thread::sleep(Duration::from_secs(600)));

    let mut killed = stuck_push(&archive, &addr, &tmpdir);
    let left = wait_for_scratch(&tmpdir, 1);
    let mut live = stuck_push(&archive, &addr, &tmpdir);
    let both = wait_for_scratch(&tmpdir, 2);
    let live_dir: Vec<&PathBuf> = both.iter().filter(|p| !left.contains(p)).collect();
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    assert!(
        left[0].exists(),
        "SIGKILL cannot clean up; the next push must"
    );

    // A push that fails at once (nothing listens there) still cleans up first.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let next = push(&archive, &format!("{closed}/app:1.0"))
        .env("TMPDIR", &tmpdir)
        .env("MAB_PUSH_CONNECT_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_ne!(next.status.code(), Some(0), "{}", text(&next));
    assert!(!left[0].exists(), "the killed push's directory is removed");
    assert_eq!(
        scratch_dirs(&tmpdir),
        live_dir.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>(),
        "only the live push's directory remains (its own is gone with it)"
    );

    live.kill().unwrap();
    live.wait().unwrap();
}

/// Push reads the layout's manifests as Go does, like verify: keys that collide after case
/// folding are refused before anything is sent, whoever calls the push client.
#[test]
fn push_refuses_a_manifest_whose_keys_collide_after_case_folding() {
    use mab_verify::publish::registry::{PushOptions, push_layout};
    use sha2::Digest as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = passing_layout(tmp.path());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = std::fs::read_to_string(dir.join("blobs/sha256").join(&digest[7..])).unwrap();
    let ambiguous = manifest.replacen('{', r#"{"MediaType":"application/x-other","#, 1);
    let new = hex::encode(sha2::Sha256::digest(ambiguous.as_bytes()));
    std::fs::write(dir.join("blobs/sha256").join(&new), &ambiguous).unwrap();
    let reference = "127.0.0.1:1/app:1.0".parse().unwrap();
    let opts = PushOptions {
        plain_http: true,
        retries: 0,
        ..Default::default()
    };
    let err = push_layout(
        &dir,
        &format!("sha256:{new}"),
        "application/vnd.oci.image.manifest.v1+json",
        &reference,
        &opts,
        &mut |_| {},
    )
    .expect_err("an ambiguous manifest is refused");
    let text = err.to_string();
    assert!(
        text.contains(r#""MediaType" and "mediaType""#) && text.contains("case folding"),
        "{text}"
    );
    // The unedited manifest gets as far as the network (nothing listens there).
    let err = push_layout(
        &dir,
        digest,
        "application/vnd.oci.image.manifest.v1+json",
        &reference,
        &opts,
        &mut |_| {},
    )
    .expect_err("nothing listens on port 1");
    assert!(err.to_string().contains("cannot reach registry"), "{err}");
}
