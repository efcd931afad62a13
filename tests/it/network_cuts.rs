//! A connection that breaks in the middle of a blob, for real: a TCP proxy in front of
//! docker-registry cuts the blob's response (remote verify) or request (push) after half
//! its bytes. That is the environment failing (exit 3, naming the host and the blob), never
//! bad input and never a verdict on the image.

use crate::harness::{self, Outcome, registry::Registry};
use crate::remote_verify::{isolated, nested};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which bytes the proxy lets through before it closes both sides of the connection.
#[derive(Clone)]
enum Cut {
    /// Forward everything.
    Never,
    /// The body of the response to a `GET` whose path holds `path_part`, after `after` bytes.
    Response { path_part: String, after: usize },
    /// The body of a `PUT` whose path holds `path_part`, after `after` bytes.
    Request { path_part: String, after: usize },
    /// A `GET` whose path holds `path_part` gets no answer at all: the connection closes.
    Hangup { path_part: String },
}

/// One request per connection (it asks for `Connection: close`), so the bytes can be copied
/// as they are, with no HTTP framing to parse beyond the heads.
struct Proxy {
    addr: String,
    cuts: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: &str, cut: Cut) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts = Arc::new(AtomicUsize::new(0));
        let (upstream, counter) = (upstream.to_string(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let (upstream, cut, counter) = (upstream.clone(), cut.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = relay(client, &upstream, &cut, &counter);
                });
            }
        });
        Proxy { addr, cuts }
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Reads up to the blank line after an HTTP head; returns the head and any bytes after it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Copies `from` to `to`; with `limit`, only that many bytes (counting `already`), then
/// closes both connections.
fn pump(
    from: &mut TcpStream,
    to: &mut TcpStream,
    already: &[u8],
    limit: Option<usize>,
    others: &[&TcpStream],
) -> std::io::Result<()> {
    let mut sent = 0usize;
    let mut send = |bytes: &[u8], to: &mut TcpStream| -> std::io::Result<bool> {
        let room = limit.map_or(bytes.len(), |l| bytes.len().min(l - sent));
        to.write_all(&bytes[..room])?;
        sent += room;
        Ok(limit.is_some_and(|l| sent >= l))
    };
    let mut done = send(already, to)?;
    let mut chunk = [0u8; 16 * 1024];
    while !done {
        let n = from.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        done = send(&chunk[..n], to)?;
    }
    if done {
        for s in others {
            let _ = s.shutdown(Shutdown::Both);
        }
    } else {
        let _ = to.shutdown(Shutdown::Write);
    }
    Ok(())
}

fn relay(
    mut client: TcpStream,
    upstream: &str,
    cut: &Cut,
    cuts: &AtomicUsize,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let (method, path) = {
        let mut parts = start.split(' ');
        (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        )
    };
    let mut forwarded = format!("{start}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if let Cut::Hangup { path_part } = cut
        && method == "GET"
        && path.contains(path_part)
    {
        cuts.fetch_add(1, Ordering::SeqCst);
        return client.shutdown(Shutdown::Both);
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;

    let (request_limit, response_limit) = match cut {
        Cut::Request { path_part, after } if method == "PUT" && path.contains(path_part) => {
            (Some(*after), None)
        }
        Cut::Response { path_part, after } if method == "GET" && path.contains(path_part) => {
            (None, Some(*after))
        }
        _ => (None, None),
    };
    if request_limit.is_some() || response_limit.is_some() {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let (c_other, s_other) = (client.try_clone()?, server.try_clone()?);
    let upload = std::thread::spawn(move || {
        pump(
            &mut c_read,
            &mut s_write,
            &rest,
            request_limit,
            &[&c_other, &s_other],
        )
    });
    let (response_head, body_start) = match read_head(&mut server) {
        Ok(parts) => parts,
        Err(_) => {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upload.join();
            return Ok(());
        }
    };
    client.write_all(&response_head)?;
    let (mut s_read, mut c_write) = (server.try_clone()?, client.try_clone()?);
    let others = [&client, &server];
    pump(
        &mut s_read,
        &mut c_write,
        &body_start,
        response_limit,
        &others,
    )?;
    let _ = client.shutdown(Shutdown::Both);
    let _ = upload.join();
    Ok(())
}

/// The largest layer of `nested()`: its digest and size.
fn largest_layer() -> (String, usize) {
    let blobs = nested().join("blobs/sha256");
    let mut best: Option<(String, usize)> = None;
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        let json = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok();
        if !json && best.as_ref().is_none_or(|(_, size)| bytes.len() > *size) {
            best = Some((
                format!("sha256:{}", entry.file_name().to_string_lossy()),
                bytes.len(),
            ));
        }
    }
    best.expect("the fixture has layers")
}

fn reports(dir: &Path) -> [(String, PathBuf); 3] {
    [("json", "r.json"), ("junit", "r.xml"), ("markdown", "r.md")]
        .map(|(format, file)| (format.to_string(), dir.join(file)))
}

fn remote_verify(home: &Path, addr: &str, reports_in: &Path) -> Outcome {
    let mut cmd = isolated(home);
    cmd.args(["--no-run", "--plain-http"]);
    for (format, file) in reports(reports_in) {
        cmd.arg("--report")
            .arg(format!("{format}={}", file.display()));
    }
    cmd.arg(format!("docker://{addr}/cut/app:v1"));
    harness::run_cmd(cmd)
}

fn assert_names_environment(out: &Outcome, host: &str, digest: &str) {
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(host), "host {host}: {}", out.stderr);
    assert!(out.stderr.contains(digest), "blob {digest}: {}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn a_blob_cut_mid_response_is_exit_3_naming_host_and_blob() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    harness::skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", nested().display()),
        &format!("docker://{}/cut/app:v1", reg.addr),
    ]);
    let (digest, size) = largest_layer();

    // Through a proxy that cuts nothing, the same image verifies.
    let clean = Proxy::start(&reg.addr, Cut::Never);
    let whole = remote_verify(dir.path(), &clean.addr, dir.path());
    assert_eq!(whole.code, 0, "{}", whole.stderr);

    let proxy = Proxy::start(
        &reg.addr,
        Cut::Response {
            path_part: format!("/blobs/{digest}"),
            after: size / 2,
        },
    );
    let out_dir = dir.path().join("cut");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = remote_verify(dir.path(), &proxy.addr, &out_dir);
    assert!(proxy.cuts() >= 1, "the proxy never saw the blob");
    assert_names_environment(&out, &proxy.addr, &digest);
    // No verdict on an image half read: not blob.digest, not PASS.
    assert!(!out.stdout.contains("PASS"), "{}", out.stdout);
    assert!(
        !out.stderr.contains("truncated or corrupt"),
        "{}",
        out.stderr
    );
    // The JUnit report says why the run could not complete.
    let junit = std::fs::read_to_string(&reports(&out_dir)[1].1).unwrap_or_default();
    assert!(junit.contains(&digest), "{junit}");

    // A registry that stops answering for the blob (every retry) is the same failure.
    let hangup = Proxy::start(
        &reg.addr,
        Cut::Hangup {
            path_part: format!("/blobs/{digest}"),
        },
    );
    let out = remote_verify(dir.path(), &hangup.addr, &out_dir);
    assert!(hangup.cuts() >= 1, "the proxy never saw the blob");
    assert_names_environment(&out, &hangup.addr, &digest);
}

#[test]
fn a_blob_upload_cut_mid_request_is_exit_3_naming_host_and_blob() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let (digest, size) = largest_layer();
    let push = |addr: &str, tag: &str| {
        let mut cmd = isolated(dir.path());
        cmd.args(["push", "--no-run", "-q", "--plain-http"])
            .arg(nested())
            .arg(format!("{addr}/cut/pushed:{tag}"));
        harness::run_cmd(cmd)
    };
    let proxy = Proxy::start(
        &reg.addr,
        Cut::Request {
            path_part: digest.trim_start_matches("sha256:").to_string(),
            after: size / 2,
        },
    );
    let out = push(&proxy.addr, "cut");
    assert!(proxy.cuts() >= 1, "the proxy never saw the upload");
    assert_names_environment(&out, &proxy.addr, &digest);
    assert!(!out.stderr.contains("pushed "), "{}", out.stderr);

    let clean = Proxy::start(&reg.addr, Cut::Never);
    let whole = push(&clean.addr, "whole");
    assert_eq!(whole.code, 0, "{}", whole.stderr);
}
