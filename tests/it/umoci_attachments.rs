//! The buildx-style layout of `docker_formats` (images, their attestation manifests and an
//! OCI artifact with a `subject`) through umoci 0.4.7, a reader and writer we did not write:
//! what it reads and unpacks, what it refuses to unpack (and so agrees is no rootfs), and the
//! verdict after umoci rewrote the layout (`rm`, `gc`, `repack`).

use crate::docker_formats::{attached, buildx_layout, image_artifacts};
use crate::harness::{self, Outcome};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn umoci(args: &[&str]) -> Output {
    Command::new("umoci")
        .args(args)
        .output()
        .expect("umoci is installed by scripts/setup")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "umoci {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn blobs(layout: &Path) -> BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// An OCI platform as a tag: `linux/arm/v7` → `linux-arm-v7`.
fn tag_of(platform: &Value) -> String {
    [
        &platform["os"],
        &platform["architecture"],
        &platform["variant"],
    ]
    .iter()
    .filter_map(|v| v.as_str())
    .collect::<Vec<_>>()
    .join("-")
}

/// The names the tagged layout gives: each image's platform, `<platform>-attestation` for the
/// attestation about it, and `sbom` for the artifact.
struct Tags {
    images: Vec<String>,
    attestations: Vec<String>,
    artifact: String,
}

/// `buildx_layout` with every manifest also named in `index.json`, since umoci 0.4.7 calls a
/// tag that names an index ambiguous and reads only manifests by tag.
fn tagged(dir: &Path) -> (PathBuf, Tags) {
    let (l, _) = buildx_layout(dir);
    let mut index = read_json(&l.dir.join("index.json"));
    let nested = read_json(&blob(
        &l.dir,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let entries = nested["manifests"].as_array().unwrap();
    let platform_of = |digest: &Value| {
        let image = entries.iter().find(|e| &e["digest"] == digest).unwrap();
        tag_of(&image["platform"])
    };
    let mut tags = Tags {
        images: Vec::new(),
        attestations: Vec::new(),
        artifact: "sbom".into(),
    };
    let mut named = Vec::new();
    for e in entries {
        let about = &e["annotations"]["vnd.docker.reference.digest"];
        let name = if about.is_string() {
            let t = format!("{}-attestation", platform_of(about));
            tags.attestations.push(t.clone());
            t
        } else {
            let t = tag_of(&e["platform"]);
            tags.images.push(t.clone());
            t
        };
        let mut d = e.clone();
        d["annotations"] = json!({ REF_NAME: name });
        named.push(d);
    }
    let list = index["manifests"].as_array_mut().unwrap();
    list[1]["annotations"] = json!({ REF_NAME: tags.artifact });
    list.extend(named);
    std::fs::write(
        l.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    (l.dir.clone(), tags)
}

fn verify(input: &str) -> Outcome {
    harness::mab(["--no-run", "--format", "json", input])
}

/// What a verdict consists of, without the paths: per artifact its kind, platform, every
/// check's status and the kinds of what is attached to it.
fn verdict(out: &Outcome) -> (i32, Vec<String>) {
    let json = out.json();
    let rows = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let checks: Vec<String> = a["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{}={}", c["id"], c["status"]))
                .collect();
            let att: Vec<String> = attached(a).iter().map(|x| x["kind"].to_string()).collect();
            format!(
                "{} {} [{}] attached [{}]",
                a["kind"],
                a["platform"],
                checks.join(" "),
                att.join(" ")
            )
        })
        .collect();
    (out.code, rows)
}

/// `path` inside `rootfs`, following symlinks there (absolute ones against the rootfs).
fn inside(rootfs: &Path, path: &str) -> PathBuf {
    let mut at = rootfs.join(path.trim_start_matches('/'));
    for _ in 0..16 {
        let Ok(target) = std::fs::read_link(&at) else {
            return at;
        };
        at = if target.is_absolute() {
            rootfs.join(target.strip_prefix("/").unwrap())
        } else {
            at.parent().unwrap().join(target)
        };
    }
    panic!("symlink loop at {}", at.display())
}

#[test]
fn umoci_reads_the_images_beside_their_attestations_and_will_not_unpack_the_attachments() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, tags) = tagged(&tmp.path().join("buildx"));
    let l = layout.display().to_string();

    let listed = umoci(&["ls", "--layout", &l]);
    ok(&listed, "ls");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut want: BTreeSet<String> = tags
        .images
        .iter()
        .chain(&tags.attestations)
        .cloned()
        .collect();
    want.insert(tags.artifact.clone());
    want.insert("latest".into());
    assert_eq!(listed, want);

    let out = verify(&l);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let json = out.json();
    let subjects = json["subjects"][0]["platforms"].as_array().unwrap();
    assert_eq!(image_artifacts(&json).len(), tags.images.len());

    for tag in &tags.images {
        let image = format!("{l}:{tag}");
        ok(&umoci(&["stat", "--image", &image]), "stat");
        let bundle = tmp.path().join(format!("bundle-{tag}"));
        let unpacked = umoci(&[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ]);
        ok(&unpacked, "unpack");
        // The entrypoint umoci extracted is the file mab-verify judged, byte for byte.
        let platform = tag.replacen('-', "/", 2);
        let ours = subjects
            .iter()
            .find(|p| p["platform"] == platform)
            .unwrap_or_else(|| panic!("{platform} in {subjects:#?}"));
        let file = inside(&bundle.join("rootfs"), ours["entrypoint"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            ours["entrypoint_sha256"].as_str().unwrap(),
            "{tag}: {}",
            file.display()
        );
    }
    // An attestation's manifest and config umoci reads; its in-toto layer it will not unpack
    // as a rootfs, as mab-verify never walks it as tar.
    for tag in &tags.attestations {
        let image = format!("{l}:{tag}");
        ok(&umoci(&["stat", "--image", &image]), "stat");
        let bundle = tmp.path().join(format!("bundle-{tag}"));
        let refused = umoci(&[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ]);
        assert!(!refused.status.success(), "{tag} unpacked");
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(why.contains("application/vnd.in-toto+json"), "{why}");
    }
    // The artifact's empty config is no image config to umoci 0.4.7 at all.
    let image = format!("{l}:{}", tags.artifact);
    let bundle = tmp.path().join("bundle-sbom");
    for args in [
        vec!["stat", "--image", &image],
        vec![
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ],
    ] {
        let refused = umoci(&args);
        assert!(!refused.status.success(), "{args:?}");
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(why.contains("application/vnd.oci.empty.v1+json"), "{why}");
    }
}

/// umoci rewrites `index.json` (Go's encoding) and collects garbage by walking what it lists:
/// the blobs it keeps, and the verdict on them, are those of the layout it was given.
#[test]
fn the_verdict_is_the_same_after_umoci_rewrites_and_collects_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (original, _) = buildx_layout(&tmp.path().join("buildx"));
    let before = verdict(&verify(original.dir.to_str().unwrap()));
    assert_eq!(before.0, 0, "{before:#?}");

    // gc alone: every blob is reachable through the nested index, attestations and artifact.
    let (collected, _) = buildx_layout(&tmp.path().join("gc"));
    ok(
        &umoci(&["gc", "--layout", collected.dir.to_str().unwrap()]),
        "gc",
    );
    assert_eq!(blobs(&collected.dir), blobs(&original.dir));
    assert_eq!(verdict(&verify(collected.dir.to_str().unwrap())), before);

    // Tags added by hand, removed by umoci (index.json written by umoci), then gc.
    let (layout, tags) = tagged(&tmp.path().join("tagged"));
    let l = layout.display().to_string();
    for tag in tags.images.iter().chain(&tags.attestations) {
        ok(&umoci(&["rm", "--image", &format!("{l}:{tag}")]), "rm");
    }
    ok(&umoci(&["gc", "--layout", &l]), "gc");
    assert_ne!(
        std::fs::read(layout.join("index.json")).unwrap(),
        std::fs::read(original.dir.join("index.json")).unwrap(),
        "umoci wrote index.json its own way"
    );
    assert_eq!(blobs(&layout), blobs(&original.dir));
    assert_eq!(verdict(&verify(&l)), before);

    // The artifact removed: gc drops its manifest, its layer and the empty config, and the
    // image it was about has only its attestation left.
    ok(
        &umoci(&["rm", "--image", &format!("{l}:{}", tags.artifact)]),
        "rm",
    );
    ok(&umoci(&["gc", "--layout", &l]), "gc");
    assert_eq!(blobs(&original.dir).difference(&blobs(&layout)).count(), 3);
    let after = verify(&l);
    assert_eq!(after.code, 0, "{}", after.stderr);
    let json = after.json();
    let kinds: Vec<Vec<String>> = image_artifacts(&json)
        .iter()
        .map(|a| attached(a).iter().map(|x| x["kind"].to_string()).collect())
        .collect();
    assert!(
        kinds.iter().all(|k| k == &[r#""attestation""#]),
        "{kinds:?}"
    );
}

/// An image umoci unpacked and repacked beside its attestations (a new config and manifest,
/// no new layer when nothing changed) verifies with the same binaries.
#[test]
fn an_image_repacked_by_umoci_keeps_its_verdict_and_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, tags) = tagged(&tmp.path().join("buildx"));
    let l = layout.display().to_string();
    let tag = &tags.images[0];
    let bundle = tmp.path().join("bundle");
    ok(
        &umoci(&[
            "unpack",
            "--rootless",
            "--image",
            &format!("{l}:{tag}"),
            bundle.to_str().unwrap(),
        ]),
        "unpack",
    );
    let repacked = format!("{tag}-repacked");
    ok(
        &umoci(&[
            "repack",
            "--image",
            &format!("{l}:{repacked}"),
            bundle.to_str().unwrap(),
        ]),
        "repack",
    );
    let of = |name: &str| {
        let out = verify(&format!("oci:{l}:{name}"));
        assert_eq!(out.code, 0, "{name}: {}\n{}", out.stdout, out.stderr);
        let json = out.json();
        let p = json["subjects"][0]["platforms"][0].clone();
        (p, verdict(&out))
    };
    let (first, first_verdict) = of(tag);
    let (second, second_verdict) = of(&repacked);
    assert_ne!(
        first["manifest"], second["manifest"],
        "umoci wrote a new manifest"
    );
    for key in ["platform", "entrypoint", "entrypoint_sha256"] {
        assert_eq!(first[key], second[key], "{key}");
    }
    assert_eq!(first_verdict, second_verdict);
}
