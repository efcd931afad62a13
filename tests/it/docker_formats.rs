//! Issue 16, formats: what Docker 25+, buildx and OCI artifact tools really write, damaged
//! layers, absent platforms, media-type mixing, repeated manifests, images without an
//! entrypoint and ARM variants. Every input is built here from the real per-platform images
//! (`support::images`), as those tools write it.

use crate::harness::{self, check_of, mab, status_of};
use crate::support::images::images;
use crate::support::row;
use rstest::rstest;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// An OCI layout being written: blobs by digest, `index.json` last.
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// A copy of a fixture layout (blobs made writable).
    fn copy_of(from: &Path, dir: &Path) -> Layout {
        let layout = Layout::new(dir);
        for e in fs::read_dir(from.join("blobs/sha256")).unwrap().flatten() {
            let to = layout.path(&format!("sha256:{}", e.file_name().to_string_lossy()));
            fs::write(&to, fs::read(e.path()).unwrap()).unwrap();
        }
        fs::copy(from.join("index.json"), dir.join("index.json")).unwrap();
        layout
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let d = sha(bytes);
        fs::write(self.path(&d), bytes).unwrap();
        d
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&fs::read(self.path(digest)).unwrap()).unwrap()
    }

    /// Write a document as a blob; its descriptor (with `extra` fields merged in).
    fn doc(&self, media_type: &str, doc: &Value, extra: Value) -> Value {
        let bytes = serde_json::to_vec(doc).unwrap();
        let mut d =
            json!({"mediaType": media_type, "digest": self.blob(&bytes), "size": bytes.len()});
        if let Value::Object(m) = extra {
            d.as_object_mut().unwrap().extend(m);
        }
        d
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    fn write_index(&self, manifests: Value) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// The first manifest `index.json` lists, and its descriptor.
    fn first_manifest(&self) -> (Value, Value) {
        let d = self.index()["manifests"][0].clone();
        (self.json(d["digest"].as_str().unwrap()), d)
    }
}

/// A copy of the real linux/amd64 image (demo closure, gzip layers) in `dir`.
fn amd64_layout(dir: &Path) -> Layout {
    let f = images().oci_layout_for(row("x86_64-linux")).unwrap();
    Layout::copy_of(f, dir)
}

fn tar_of(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    let mut paths: Vec<PathBuf> = walk(dir);
    paths.sort();
    for p in paths {
        let rel = p.strip_prefix(dir).unwrap();
        if p.is_dir() {
            b.append_dir(rel, &p).unwrap();
        } else {
            b.append_path_with_name(&p, rel).unwrap();
        }
    }
    b.finish().unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// `docker save` as Docker 25+ writes it (moby image/tarexport): an OCI layout whose layers
/// are uncompressed tars named by digest, an OCI manifest (config
/// `application/vnd.oci.image.config.v1+json`, layers `application/vnd.oci.image.layer.v1.tar`),
/// `index.json` with `io.containerd.image.name` + ref name annotations (or `"manifests": null`
/// for an untagged save), plus the docker-archive `manifest.json` and `repositories`.
fn docker25_save(tmp: &Path, tagged: bool, damage: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let src = amd64_layout(&tmp.join("src"));
    let (manifest, _) = src.first_manifest();
    let dir = tmp.join("save");
    let out = Layout::new(&dir);
    let mut layer_descs = Vec::new();
    let mut layer_names = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let gz = fs::read(src.path(l["digest"].as_str().unwrap())).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        let digest = sha(&tar);
        damage(&mut tar);
        fs::write(out.path(&digest), &tar).unwrap();
        layer_descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": tar.len()}));
        layer_names.push(format!(
            "blobs/sha256/{}",
            digest.strip_prefix("sha256:").unwrap()
        ));
    }
    let config = fs::read(src.path(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let config_digest = out.blob(&config);
    let oci = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    });
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_string();
    let manifests = if tagged {
        json!([out.doc(
            OCI_MANIFEST,
            &oci,
            json!({"annotations": {
            "io.containerd.image.name": "docker.io/library/multi-arch-demo:latest",
            REF_NAME: "latest"}})
        )])
    } else {
        out.doc(OCI_MANIFEST, &oci, json!({}));
        Value::Null
    };
    out.write_index(manifests);
    let tags = if tagged {
        json!(["multi-arch-demo:latest"])
    } else {
        Value::Null
    };
    let docker = json!([{"Config": format!("blobs/sha256/{}", hex(&config_digest)), "RepoTags": tags, "Layers": layer_names}]);
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&docker).unwrap(),
    )
    .unwrap();
    if tagged {
        let top = layer_names
            .last()
            .unwrap()
            .trim_start_matches("blobs/sha256/");
        fs::write(
            dir.join("repositories"),
            serde_json::to_vec(&json!({"multi-arch-demo": {"latest": top}})).unwrap(),
        )
        .unwrap();
    }
    let tar = tmp.join("save.tar");
    tar_of(&dir, &tar);
    tar
}

pub(crate) fn image_artifacts(json: &Value) -> Vec<&Value> {
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .collect()
}

fn failing<'a>(json: &'a Value, id: &str) -> Option<&'a Value> {
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["checks"].as_array().unwrap())
        .find(|c| c["id"] == id && c["status"] == "fail")
}

#[rstest]
fn a_docker_25_save_is_read_as_docker_does(#[values(true, false)] tagged: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let tar = docker25_save(tmp.path(), tagged, |_| {});
    let out = mab(["--format", "json", tar.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), 1, "{}", out.stdout);
    let img = imgs[0];
    assert_eq!(img["platform"], "linux/amd64");
    assert_eq!(
        img["run"]["stdout"],
        crate::support::expected_hello(row("x86_64-linux"))
    );
    // Layers are named by digest in both views: every one is checked.
    let layers = img["image"]["layers"].as_array().unwrap().len();
    let digest = check_of(img, "blob.digest");
    assert_eq!(digest["status"], "pass", "{digest:#}");
    let checked: usize = digest["message"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checked > layers, "{digest:#}");
}

/// The three formats, each with one bit of one layer flipped as stored.
fn flipped(tmp: &Path, format: &str) -> PathBuf {
    let flip = |b: &mut Vec<u8>| {
        let at = b.len() / 2;
        b[at] ^= 0x10;
    };
    match format {
        "docker-25-save" => docker25_save(tmp, true, flip),
        "oci-layout" | "oci-archive" => {
            let l = amd64_layout(&tmp.join("layout"));
            let (m, _) = l.first_manifest();
            let biggest = m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .max_by_key(|d| d["size"].as_u64())
                .unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_string();
            let mut bytes = fs::read(l.path(&biggest)).unwrap();
            flip(&mut bytes);
            fs::write(l.path(&biggest), bytes).unwrap();
            if format == "oci-layout" {
                l.dir
            } else {
                let tar = tmp.join("archive.tar");
                tar_of(&l.dir, &tar);
                tar
            }
        }
        _ => unreachable!(),
    }
}

fn assert_reports_say_blob_digest_failed(tmp: &Path, path: &Path) {
    let (j, x, m) = (tmp.join("r.json"), tmp.join("r.xml"), tmp.join("r.md"));
    let out = mab([
        "--no-run".to_string(),
        format!("--report=json={}", j.display()),
        format!("--report=junit={}", x.display()),
        format!("--report=markdown={}", m.display()),
        path.display().to_string(),
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json: Value = serde_json::from_slice(&fs::read(&j).unwrap()).unwrap();
    let hit = failing(&json, "blob.digest").unwrap_or_else(|| panic!("{json:#}"));
    assert!(
        hit["message"].as_str().unwrap().contains("hashes to"),
        "{hit:#}"
    );
    let junit = fs::read_to_string(&x).unwrap();
    assert!(
        junit.contains("blob.digest") && junit.contains("<failure"),
        "{junit}"
    );
    let md = fs::read_to_string(&m).unwrap();
    assert!(md.contains("blob.digest"), "{md}");
}

#[rstest]
fn a_flipped_bit_in_a_layer_is_a_blob_digest_failure_with_every_report(
    #[values("oci-layout", "oci-archive", "docker-25-save")] format: &str,
) {
    let tmp = tempfile::tempdir().unwrap();
    let path = flipped(tmp.path(), format);
    assert_reports_say_blob_digest_failed(tmp.path(), &path);
}

/// A layer cut to half whose descriptor was "fixed" to the new size: the size agrees, the
/// digest does not.
#[test]
fn a_truncated_layer_with_a_matching_size_is_a_blob_digest_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let l = amd64_layout(&tmp.path().join("layout"));
    let (mut m, d) = l.first_manifest();
    let digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let bytes = fs::read(l.path(&digest)).unwrap();
    let half = &bytes[..bytes.len() / 2];
    fs::write(l.path(&digest), half).unwrap();
    m["layers"][0]["size"] = json!(half.len());
    let entry = l.doc(OCI_MANIFEST, &m, json!({"platform": d["platform"]}));
    l.write_index(json!([entry]));
    assert_reports_say_blob_digest_failed(tmp.path(), &l.dir);
    let out = mab(["--no-run", "--format", "json", l.dir.to_str().unwrap()]);
    let json = out.json();
    assert_eq!(status_of(image_artifacts(&json)[0], "blob.size"), "pass");
}

/// What cannot be read at all stays exit 2, naming the file.
#[rstest]
#[case::no_index("", "index.json is missing")]
#[case::bad_json("{\"manifests\": [", "index.json is not valid JSON")]
fn unreadable_input_stays_exit_2(#[case] index: &str, #[case] says: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("layout"));
    if !index.is_empty() {
        fs::write(l.dir.join("index.json"), index).unwrap();
    }
    let out = mab(["--no-run", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(says), "{}", out.stderr);
}

/// The empty config of OCI 1.1 artifacts: `{}`.
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// What `docker buildx build --provenance=true --output type=oci` writes: `index.json` → (ref
/// `latest`) an image index → each platform's manifest and, per platform, an attestation
/// manifest (platform unknown/unknown, annotations `vnd.docker.reference.type:
/// attestation-manifest` and `vnd.docker.reference.digest`, an unknown/unknown image config,
/// one `application/vnd.in-toto+json` layer). Next to it in `index.json`, an OCI 1.1 artifact
/// (an SBOM: `artifactType`, the empty config, an `application/spdx+json` layer) whose
/// `subject` is the amd64 manifest, as `oras attach` writes into a layout.
/// Returns the layout and the platform manifests' descriptors.
pub(crate) fn buildx_layout(dir: &Path) -> (Layout, Vec<Value>) {
    let multi = &images().multi_layout;
    let l = Layout::copy_of(multi, dir);
    let mut entries = Vec::new();
    let mut platforms = Vec::new();
    for mut d in l.index()["manifests"].as_array().unwrap().clone() {
        d.as_object_mut().unwrap().remove("annotations");
        let digest = d["digest"].as_str().unwrap().to_string();
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "_", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
            "predicate": {"builder": {"id": ""}, "buildType": "https://mobyproject.org/buildkit@v1"},
        });
        let layer = serde_json::to_vec(&statement).unwrap();
        let layer_digest = l.blob(&layer);
        let config = json!({"architecture": "unknown", "os": "unknown", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}});
        let config_d = l.doc(
            "application/vnd.oci.image.config.v1+json",
            &config,
            json!({}),
        );
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_d,
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer_digest,
                "size": layer.len(),
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]});
        let att = l.doc(
            OCI_MANIFEST,
            &manifest,
            json!({
            "annotations": {"vnd.docker.reference.digest": digest,
                "vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"}}),
        );
        platforms.push(d.clone());
        entries.push(d);
        entries.push(att);
    }
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    let nested_d = l.doc(
        OCI_INDEX,
        &nested,
        json!({"annotations": {REF_NAME: "latest"}}),
    );
    let empty = l.blob(b"{}");
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"multi-arch-demo"}"#;
    let sbom_d = l.blob(sbom);
    let amd64 = &platforms[0];
    let artifact = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2, "data": "e30="},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom_d, "size": sbom.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": amd64["digest"], "size": amd64["size"]}});
    let artifact_d = l.doc(
        OCI_MANIFEST,
        &artifact,
        json!({"artifactType": "application/spdx+json"}),
    );
    l.write_index(json!([nested_d, artifact_d]));
    (l, platforms)
}

pub(crate) fn attached(img: &Value) -> Vec<&Value> {
    img["image"]["attached"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Attestations and artifacts are checked as blobs, listed with what they attest, and are
/// no platforms; the same holds after `skopeo copy --all`, an independent writer.
#[rstest]
fn buildx_attestations_and_oci_artifacts_are_blobs_listed_with_their_image(
    #[values(false, true)] through_skopeo: bool,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (l, platforms) = buildx_layout(&tmp.path().join("buildx"));
    let dir = if through_skopeo {
        let dst = tmp.path().join("copied");
        harness::skopeo(&[
            "copy",
            "--all",
            &format!("oci:{}:latest", l.dir.display()),
            &format!("oci:{}:latest", dst.display()),
        ]);
        dst
    } else {
        l.dir.clone()
    };
    let out = mab(["--no-run", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), platforms.len(), "{}", out.stdout);
    let index = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "index")
        .unwrap();
    let dup = check_of(index, "index.duplicate");
    assert!(
        dup["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} platforms", platforms.len())),
        "{dup:#}"
    );
    for (img, d) in imgs.iter().zip(&platforms) {
        assert_eq!(img["image"]["digest"], d["digest"]);
        let att = attached(img);
        let kinds: Vec<&str> = att.iter().map(|a| a["kind"].as_str().unwrap()).collect();
        let amd64 = d["platform"]["architecture"] == "amd64";
        // skopeo 1.9 copies what the index lists: the artifact sits beside the image index.
        let want: &[&str] = if amd64 && !through_skopeo {
            &["attestation", "artifact"]
        } else {
            &["attestation"]
        };
        assert_eq!(kinds, want, "{img:#}");
        assert!(att.iter().all(|a| a["subject"] == d["digest"]), "{att:#?}");
        assert_eq!(status_of(img, "blob.digest"), "pass");
    }
}

/// A flipped byte in an attestation's in-toto layer or in the artifact's layer is a
/// `blob.digest` failure of the image it is about (exit 1), not unreadable input.
#[rstest]
#[case::attestation("application/vnd.in-toto+json")]
#[case::artifact("application/spdx+json")]
fn a_damaged_attachment_fails_blob_digest(#[case] layer_type: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (l, _) = buildx_layout(&tmp.path().join("buildx"));
    let mut hit = None;
    for e in fs::read_dir(l.dir.join("blobs/sha256")).unwrap().flatten() {
        let Ok(doc) = serde_json::from_slice::<Value>(&fs::read(e.path()).unwrap()) else {
            continue;
        };
        if let Some(layer) = doc["layers"].get(0)
            && layer["mediaType"] == layer_type
        {
            hit = Some(layer["digest"].as_str().unwrap().to_string());
            break;
        }
    }
    let digest = hit.expect("an attached layer");
    let mut bytes = fs::read(l.path(&digest)).unwrap();
    bytes[3] ^= 1;
    fs::write(l.path(&digest), bytes).unwrap();
    let out = mab(["--no-run", "--format", "json", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let fail = failing(&json, "blob.digest").unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        fail["message"].as_str().unwrap().contains(&digest),
        "{fail:#}"
    );
}

/// `--platform` for every Linux row of the platform table against the three-platform index:
/// a listed one verifies just that image, any other is an `index.expected` failure naming it.
#[test]
fn a_requested_platform_the_index_lacks_is_a_failure() {
    use mab_verify::platform::{ARCHES, Os, Platform};
    let multi = &images().multi_layout;
    let listed: Vec<String> = images()
        .multi_rows
        .iter()
        .map(|a| Platform::linux(a).oci())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for arch in ARCHES.iter().filter(|a| a.oses().contains(&Os::Linux)) {
        let name = Platform::linux(arch).oci();
        // Rows that share an OCI name (x86-64 levels, …) are one request.
        if !seen.insert(name.clone()) {
            continue;
        }
        let out = mab([
            "--no-run",
            "--format",
            "json",
            "--platform",
            &name,
            multi.to_str().unwrap(),
        ]);
        let json = out.json();
        if listed.contains(&name) {
            assert_eq!(out.code, 0, "{name}: {}", out.stdout);
            let imgs = image_artifacts(&json);
            assert_eq!(imgs.len(), 1, "{name}: {}", out.stdout);
            assert_eq!(imgs[0]["platform"], name.as_str());
        } else {
            assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
            let fail = failing(&json, "index.expected")
                .unwrap_or_else(|| panic!("{name}: {}", out.stdout));
            assert!(
                fail["message"].as_str().unwrap().contains(&name),
                "{fail:#}"
            );
            assert!(image_artifacts(&json).is_empty(), "{name}");
        }
    }
    assert!(seen.len() > listed.len() + 5, "{seen:?}");
}

/// An OCI index that lists a Docker manifest list below the layout's `index.json` envelope,
/// and the reverse: `index.media-types` flags the nested one (warn; `--strict` fails).
#[rstest]
#[case::oci_index_of_a_docker_list(true)]
#[case::docker_list_of_an_oci_index(false)]
fn media_types_mixed_at_any_depth_are_flagged(#[case] oci_outside: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let f = images();
    let from = if oci_outside {
        &f.docker_manifest_list
    } else {
        &f.multi_layout
    };
    let l = Layout::copy_of(from, &tmp.path().join("mixed"));
    let mut inner = l.index()["manifests"].as_array().unwrap().clone();
    for d in &mut inner {
        d.as_object_mut().unwrap().remove("annotations");
    }
    let (inner_type, outer_type) = if oci_outside {
        // The envelope lists the Docker list: wrap that in an OCI index.
        (DOCKER_LIST, OCI_INDEX)
    } else {
        (OCI_INDEX, DOCKER_LIST)
    };
    let nested = if oci_outside {
        inner.remove(0)
    } else {
        l.doc(
            inner_type,
            &json!({"schemaVersion": 2, "mediaType": inner_type, "manifests": inner}),
            json!({}),
        )
    };
    assert_eq!(nested["mediaType"], inner_type);
    let outer = l.doc(
        outer_type,
        &json!({"schemaVersion": 2, "mediaType": outer_type, "manifests": [nested]}),
        json!({"annotations": {REF_NAME: "latest"}}),
    );
    l.write_index(json!([outer]));
    let out = mab(["--no-run", "--format", "json", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    assert_eq!(image_artifacts(&json).len(), f.multi_rows.len());
    let index = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "index")
        .unwrap();
    let mt = check_of(index, "index.media-types");
    assert_eq!(mt["status"], "warn", "{mt:#}");
    assert!(
        mt["message"]
            .as_str()
            .unwrap()
            .contains(nested["digest"].as_str().unwrap()),
        "{mt:#}"
    );
    let strict = mab(["--no-run", "--strict", l.dir.to_str().unwrap()]);
    assert_eq!(strict.code, 1, "{}", strict.stdout);
}

/// An index entry whose media type is a descriptor's, a layer's or a config's is refused
/// naming it, never read as a manifest.
#[rstest]
#[case("application/vnd.oci.descriptor.v1+json")]
#[case("application/vnd.oci.image.layer.v1.tar+gzip")]
#[case("application/vnd.oci.image.config.v1+json")]
fn an_index_entry_that_is_no_manifest_is_refused(#[case] media_type: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let l = amd64_layout(&tmp.path().join("layout"));
    let mut index = l.index();
    index["manifests"][0]["mediaType"] = json!(media_type);
    fs::write(
        l.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let out = mab(["--no-run", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(media_type), "{}", out.stderr);
}

/// The amd64 manifest listed four times: twice in `index.json` (refs `latest` and `1.0`) and
/// once in each of two nested indexes.
fn listed_four_times(dir: &Path) -> (Layout, String) {
    let l = amd64_layout(dir);
    let mut d = l.index()["manifests"][0].clone();
    let digest = d["digest"].as_str().unwrap().to_string();
    d.as_object_mut().unwrap().remove("annotations");
    let nested = |tag: &str| {
        l.doc(
            OCI_INDEX,
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d], "annotations": {"tag": tag}}),
            json!({}),
        )
    };
    let (a, b) = (nested("a"), nested("b"));
    let with_ref = |r: &str| {
        let mut e = d.clone();
        e["annotations"] = json!({REF_NAME: r});
        e
    };
    l.write_index(json!([with_ref("latest"), a, with_ref("1.0"), b]));
    (l, digest)
}

#[test]
fn a_manifest_listed_four_times_is_one_artifact_that_says_where_it_was_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, digest) = listed_four_times(&tmp.path().join("four"));
    // Repeats are no distinct images: a limit of one holds.
    let out = mab([
        "--format",
        "json",
        "--max-images",
        "1",
        l.dir.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("running 1 images"),
        "verified more than once: {}",
        out.stderr
    );
    let json = out.json();
    let imgs = image_artifacts(&json);
    assert_eq!(imgs.len(), 1, "{}", out.stdout);
    let img = imgs[0];
    assert_eq!(img["image"]["digest"], digest.as_str());
    let listed: Vec<&str> = img["image"]["listed_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.contains(&"index.json (ref latest)"), "{listed:?}");
    assert!(listed.contains(&"index.json (ref 1.0)"), "{listed:?}");
    assert_eq!(
        listed.iter().filter(|l| l.starts_with("sha256:")).count(),
        2,
        "{listed:?}"
    );
    assert_eq!(
        img["run"]["stdout"],
        crate::support::expected_hello(row("x86_64-linux"))
    );
}

/// Two distinct manifests under one platform get distinct labels: ref name and digest.
#[test]
fn two_images_of_one_platform_are_labelled_by_ref_name_and_digest() {
    let out = mab([
        "--no-run",
        "--format",
        "json",
        images().broken.duplicate_platform.to_str().unwrap(),
    ]);
    let json = out.json();
    let paths: Vec<&str> = image_artifacts(&json)
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{}", out.stdout);
    assert_ne!(paths[0], paths[1]);
    for (p, r) in paths.iter().zip(["first", "second"]) {
        assert!(p.contains(&format!("linux/arm64#{r}@sha256:")), "{p}");
    }
}

/// The distinct-image limit comes from `--max-images` or `[limits] max_images`; over it is
/// exit 2 naming the limit.
#[rstest]
#[case::flag(&["--max-images", "2"], None, 2)]
#[case::config(&[], Some("[limits]\nmax_images = 2\n"), 2)]
#[case::flag_beats_config(&["--max-images", "3"], Some("[limits]\nmax_images = 2\n"), 0)]
#[case::default(&[], None, 0)]
fn the_distinct_image_limit_is_configurable(
    #[case] flags: &[&str],
    #[case] config: Option<&str>,
    #[case] code: i32,
) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["--no-run".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    if let Some(c) = config {
        let path = tmp.path().join("mab.toml");
        fs::write(&path, c).unwrap();
        args.extend(["--config".into(), path.display().to_string()]);
    }
    args.push(images().multi_layout.display().to_string());
    let out = mab(&args);
    assert_eq!(out.code, code, "{}{}", out.stdout, out.stderr);
    if code == 2 {
        assert!(
            out.stderr.contains("more than 2 distinct images"),
            "{}",
            out.stderr
        );
    }
}

/// A copy of layout `from` whose config has no `Entrypoint` and no `Cmd` (a base image).
fn without_entrypoint(from: &Path, dir: &Path) -> Layout {
    let l = Layout::copy_of(from, dir);
    let (mut m, d) = l.first_manifest();
    let mut config = l.json(m["config"]["digest"].as_str().unwrap());
    let run = config["config"].as_object_mut().unwrap();
    run.remove("Cmd");
    run.remove("Entrypoint");
    let bytes = serde_json::to_vec(&config).unwrap();
    m["config"]["digest"] = json!(l.blob(&bytes));
    m["config"]["size"] = json!(bytes.len());
    let entry = l.doc(
        m["mediaType"].as_str().unwrap_or(OCI_MANIFEST),
        &m,
        json!({"platform": d["platform"]}),
    );
    l.write_index(json!([entry]));
    l
}

/// Every platform's image without an entrypoint: its binaries are checked (the config's
/// platform against the majority of them), the missing entrypoint is a warning.
#[rstest]
fn an_image_without_an_entrypoint_checks_every_binary(
    #[values("x86_64", "aarch64", "armv7l", "riscv64")] key: &str,
) {
    let arch = row(&format!("{key}-linux"));
    let Some(from) = images().oci_layout_for(arch) else {
        panic!("no image fixture for {key}");
    };
    let tmp = tempfile::tempdir().unwrap();
    let l = without_entrypoint(from, &tmp.path().join("base"));
    let out = mab(["--format", "json", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{key}: {}{}", out.stdout, out.stderr);
    let json = out.json();
    let img = image_artifacts(&json)[0];
    let platform = mab_verify::platform::Platform::linux(arch).oci();
    assert_eq!(img["platform"], platform.as_str());
    assert_eq!(status_of(img, "image.entrypoint"), "warn", "{img:#}");
    let binaries = check_of(img, "image.binaries");
    assert_eq!(binaries["status"], "pass", "{binaries:#}");
    assert!(
        !binaries["message"].as_str().unwrap().starts_with("0 "),
        "{binaries:#}"
    );
    let config = check_of(img, "image.config-platform");
    assert_eq!(config["status"], "pass", "{config:#}");
    assert!(
        config["message"].as_str().unwrap().contains("its binaries"),
        "{config:#}"
    );
    assert!(failing(&json, "elf.format").is_none(), "{}", out.stdout);
    let strict = mab(["--strict", "--no-run", l.dir.to_str().unwrap()]);
    assert_eq!(strict.code, 1, "{}", strict.stdout);
}

/// Without an entrypoint a lying config is still caught, by the majority of the binaries.
#[test]
fn a_lying_config_without_an_entrypoint_fails_by_its_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let l = without_entrypoint(&images().broken.lying_config, &tmp.path().join("lying"));
    let out = mab(["--no-run", "--format", "json", l.dir.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let json = out.json();
    let fail = failing(&json, "image.config-platform").unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        fail["message"].as_str().unwrap().contains("linux/arm64"),
        "{fail:#}"
    );
}

/// The image of an ARM row with `architecture: "arm"` and no variant in its config and index
/// entry, as nixpkgs dockerTools writes every ARM image. armv5tel's comes from the
/// soft-float fixture (armv5tel closure).
fn arm_without_variant(key: &str, dir: &Path) -> Layout {
    let from = match key {
        "armv5tel" => images().broken.softfloat_v7.clone(),
        _ => images()
            .oci_layout_for(row(&format!("{key}-linux")))
            .unwrap()
            .to_path_buf(),
    };
    let l = Layout::copy_of(&from, dir);
    let (mut m, d) = l.first_manifest();
    let mut config = l.json(m["config"]["digest"].as_str().unwrap());
    assert_eq!(config["architecture"], "arm", "{config:#}");
    config.as_object_mut().unwrap().remove("variant");
    let bytes = serde_json::to_vec(&config).unwrap();
    m["config"]["digest"] = json!(l.blob(&bytes));
    m["config"]["size"] = json!(bytes.len());
    let mut platform = d["platform"].clone();
    platform.as_object_mut().unwrap().remove("variant");
    let entry = l.doc(
        OCI_MANIFEST,
        &m,
        json!({"platform": platform, "annotations": {REF_NAME: "latest"}}),
    );
    l.write_index(json!([entry]));
    l
}

/// Docker reads a missing ARM variant as the table's default for `linux/arm` (v7): an image
/// of that row is a warning to add the variant, one of another ARM row a failure.
#[rstest]
fn an_arm_image_without_a_variant(#[values("armv7l", "armv5tel")] key: &str) {
    use mab_verify::platform::Platform;
    let arch = row(&format!("{key}-linux"));
    let default = Platform::parse("linux/arm").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let l = arm_without_variant(key, &tmp.path().join("arm"));
    let out = mab(["--no-run", "--format", "json", l.dir.to_str().unwrap()]);
    let json = out.json();
    let img = image_artifacts(&json)[0];
    let check = check_of(img, "image.config-platform");
    let message = check["message"].as_str().unwrap();
    assert!(message.contains("no variant"), "{check:#}");
    if default.arch == arch {
        assert_eq!(out.code, 0, "{}", out.stdout);
        assert_eq!(check["status"], "warn", "{check:#}");
        let v = arch.oci_variant.unwrap();
        assert!(message.contains(&format!("add variant {v}")), "{check:#}");
    } else {
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert_eq!(check["status"], "fail", "{check:#}");
        assert!(message.contains(&Platform::linux(arch).oci()), "{check:#}");
    }
}

/// `assemble` places a variant-less ARM image under the variant its binaries are: v7 as is,
/// ARMv5 only with --fix-config, which writes variant v5 into config and index.
#[rstest]
fn assemble_writes_the_arm_variant_from_the_binaries(#[values("armv7l", "armv5tel")] key: &str) {
    use mab_verify::platform::Platform;
    let arch = row(&format!("{key}-linux"));
    let default = Platform::parse("linux/arm").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let l = arm_without_variant(key, &tmp.path().join("arm"));
    let out_dir = tmp.path().join("out.oci.tar");
    let assemble = |extra: &[&str]| {
        let mut args = vec!["assemble".to_string(), "--no-run".into(), "-o".into()];
        args.push(out_dir.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(l.dir.display().to_string());
        mab(&args)
    };
    let res = assemble(&[]);
    if default.arch != arch {
        assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
        assert!(res.stderr.contains("--fix-config"), "{}", res.stderr);
        let res = assemble(&["--fix-config"]);
        assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    } else {
        assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    }
    let want = arch.oci_variant.unwrap();
    let unpacked = tmp.path().join("unpacked");
    tar::Archive::new(fs::File::open(&out_dir).unwrap())
        .unpack(&unpacked)
        .unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(unpacked.join("index.json")).unwrap()).unwrap();
    let out = Layout { dir: unpacked };
    // The layout's index.json may wrap the image index.
    let mut entries = index["manifests"].as_array().unwrap().clone();
    while entries[0]["mediaType"] == OCI_INDEX {
        entries = out.json(entries[0]["digest"].as_str().unwrap())["manifests"]
            .as_array()
            .unwrap()
            .clone();
    }
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["platform"]["variant"], want, "{entries:#?}");
    if default.arch != arch {
        let m = out.json(entries[0]["digest"].as_str().unwrap());
        let config = out.json(m["config"]["digest"].as_str().unwrap());
        assert_eq!(config["variant"], want, "{config:#}");
    }
    let verify = mab(["--no-run", "--format", "json", out_dir.to_str().unwrap()]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

/// A `docker save` before Docker 25 (here skopeo's docker-archive: uncompressed layers named
/// `<hex>.tar`, `<id>/layer.tar` symlinks) with a bit flipped in a layer's first tar header:
/// the diff_id of a stored-uncompressed layer is its digest, so this is damage (exit 1).
#[test]
fn a_flipped_bit_in_a_legacy_docker_archive_layer_is_a_blob_digest_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let from = images()
        .skopeo_docker_archive_for(row("x86_64-linux"))
        .unwrap();
    let dir = tmp.path().join("x");
    tar::Archive::new(fs::File::open(from).unwrap())
        .unpack(&dir)
        .unwrap();
    let manifest: Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let layer = dir.join(manifest[0]["Layers"][0].as_str().unwrap());
    let mut perms = fs::metadata(&layer).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&layer, perms).unwrap();
    let mut bytes = fs::read(&layer).unwrap();
    bytes[10] ^= 0x20;
    fs::write(&layer, bytes).unwrap();
    let tar = tmp.path().join("legacy.tar");
    tar_of(&dir, &tar);
    assert_reports_say_blob_digest_failed(tmp.path(), &tar);
}
