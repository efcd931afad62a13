//! A descriptor that lies about its blob's size while the bytes are intact (the digest is the
//! real bytes' digest): a `blob.size` failure, exit 1, with every requested report written;
//! for a local layout, an OCI archive and the same image in a registry.

use crate::harness::{self, registry::Registry};
use crate::remote_verify::isolated;
use crate::support::{images::images, row};
use rstest::rstest;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Which size is wrong, and by how much.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// The first layer's descriptor says 1000 bytes more than the blob has.
    LayerLarger,
    /// The first layer's descriptor says half.
    LayerSmaller,
    /// The config descriptor says 7 bytes more.
    Config,
    /// `index.json`'s descriptor of the manifest says 3 bytes fewer.
    Manifest,
}

/// A copy of the real linux/amd64 OCI layout with one descriptor's size changed as `lie`
/// says; the digests stay those of the (untouched) bytes. Returns the layout, the blob whose
/// size lies and the size the descriptor now says.
fn lying_layout(dir: &Path, lie: Lie) -> (PathBuf, String, u64) {
    let from = images().oci_layout_for(row("x86_64-linux")).unwrap();
    let out = dir.join("layout");
    fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(from.join("blobs/sha256")).unwrap().flatten() {
        fs::write(
            out.join("blobs/sha256").join(e.file_name()),
            fs::read(e.path()).unwrap(),
        )
        .unwrap();
    }
    fs::copy(from.join("oci-layout"), out.join("oci-layout")).unwrap();
    let mut index = read_json(&from.join("index.json"));
    let entry = &mut index["manifests"][0];
    let manifest_digest = entry["digest"].as_str().unwrap().to_string();
    let (target, said) = if let Lie::Manifest = lie {
        let said = entry["size"].as_u64().unwrap() - 3;
        entry["size"] = json!(said);
        (manifest_digest, said)
    } else {
        let mut manifest = read_json(&blob(&out, &manifest_digest));
        let d = match lie {
            Lie::Config => &mut manifest["config"],
            _ => &mut manifest["layers"][0],
        };
        let real = d["size"].as_u64().unwrap();
        let said = match lie {
            Lie::LayerLarger => real + 1000,
            Lie::LayerSmaller => real / 2,
            _ => real + 7,
        };
        d["size"] = json!(said);
        let target = d["digest"].as_str().unwrap().to_string();
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = sha(&bytes);
        fs::write(blob(&out, &digest), &bytes).unwrap();
        entry["digest"] = json!(digest);
        entry["size"] = json!(bytes.len());
        (target, said)
    };
    assert_eq!(
        sha(&fs::read(blob(&out, &target)).unwrap()),
        target,
        "the bytes stay intact"
    );
    fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    (out, target, said)
}

fn archive_of(layout: &Path, out: &Path) -> PathBuf {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(".", layout).unwrap();
    b.finish().unwrap();
    out.to_path_buf()
}

/// The image in a registry: the true fixture copied by skopeo (which refuses a layout whose
/// sizes lie), then the lying manifest PUT by tag as it is, in plain HTTP/1.1.
/// Returns the `docker://` name to read it back by.
fn pushed(layout: &Path, reg: &Registry) -> String {
    let truthful = images().oci_layout_for(row("x86_64-linux")).unwrap();
    let reference = format!("{}/lies/app:v1", reg.addr);
    harness::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}", truthful.display()),
        &format!("docker://{reference}"),
    ]);
    let lying = read_json(&layout.join("index.json"))["manifests"][0].clone();
    let body = fs::read(blob(layout, lying["digest"].as_str().unwrap())).unwrap();
    let mut conn = std::net::TcpStream::connect(&reg.addr).unwrap();
    write!(
        conn,
        "PUT /v2/lies/app/manifests/v1 HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reg.addr,
        lying["mediaType"].as_str().unwrap(),
        body.len()
    )
    .unwrap();
    conn.write_all(&body).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "docker-registry refused the lying manifest: {answer}"
    );
    format!("docker://{reference}")
}

#[rstest]
fn a_size_that_lies_about_intact_bytes_fails_blob_size_with_every_report(
    #[values(Lie::LayerLarger, Lie::LayerSmaller, Lie::Config, Lie::Manifest)] lie: Lie,
    #[values("oci-layout", "oci-archive", "registry")] source: &str,
) {
    if source == "registry" && matches!(lie, Lie::Manifest) {
        // The registry serves the root it was given by tag with its true size: index.json is
        // no part of what a registry stores.
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (layout, target, said) = lying_layout(tmp.path(), lie);
    let registry;
    let (input, remote) = match source {
        "oci-layout" => (layout.display().to_string(), false),
        "oci-archive" => (
            archive_of(&layout, &tmp.path().join("app.oci.tar"))
                .display()
                .to_string(),
            false,
        ),
        _ => {
            registry = Registry::start(None);
            (pushed(&layout, &registry), true)
        }
    };
    let (j, x, m) = (
        tmp.path().join("r.json"),
        tmp.path().join("r.xml"),
        tmp.path().join("r.md"),
    );
    let mut cmd = isolated(tmp.path());
    cmd.args(["--no-run", "--format", "json"]);
    if remote {
        cmd.arg("--plain-http");
    }
    cmd.arg(format!("--report=json={}", j.display()))
        .arg(format!("--report=junit={}", x.display()))
        .arg(format!("--report=markdown={}", m.display()))
        .arg(&input);
    let out = harness::run_cmd(cmd);
    assert_eq!(
        out.code, 1,
        "{lie:?} {source}: {}\n{}",
        out.stdout, out.stderr
    );

    let json: Value = serde_json::from_slice(&fs::read(&j).unwrap()).unwrap();
    let checks: Vec<&Value> = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["checks"].as_array().unwrap())
        .collect();
    let size = checks
        .iter()
        .find(|c| c["id"] == "blob.size" && c["status"] == "fail")
        .unwrap_or_else(|| panic!("{lie:?} {source}: no blob.size failure in {json:#}"));
    let message = size["message"].as_str().unwrap();
    assert!(message.contains(&target), "{message}");
    assert!(message.contains(&format!("says {said}")), "{message}");
    // The bytes are what the digest names: no digest failure anywhere.
    assert!(
        checks
            .iter()
            .all(|c| c["id"] != "blob.digest" || c["status"] != "fail"),
        "{json:#}"
    );
    let junit = fs::read_to_string(&x).unwrap();
    assert!(
        junit.contains("blob.size") && junit.contains("<failure"),
        "{junit}"
    );
    let md = fs::read_to_string(&m).unwrap();
    assert!(
        md.contains("blob.size") && md.contains(&target[7..19]),
        "{md}"
    );
}

/// The shared fixtures `broken/size_larger` and `broken/size_smaller` (refused with exit 2
/// until the lie became a verdict).
#[rstest]
#[case::larger(&images().broken.size_larger, "shorter than (truncated?) the")]
#[case::smaller(&images().broken.size_smaller, "longer than the")]
fn the_broken_size_fixtures_fail_blob_size(#[case] layout: &Path, #[case] why: &str) {
    let out = harness::mab(["--no-run", "--format", "json", layout.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let json = out.json();
    let image = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "image")
        .unwrap();
    assert_eq!(harness::status_of(image, "blob.size"), "fail", "{json:#}");
    assert_eq!(harness::status_of(image, "blob.digest"), "pass", "{json:#}");
    // Why the layer was not walked is kept with the image.
    assert!(json.to_string().contains(why), "{json:#}");
}
