//! The reports of a `docker://` verify name the registry, the tag asked for and the digest the
//! registry served (for an index, the index digest), as skopeo reads them from docker-registry.

use crate::harness::{self, registry::Registry};
use crate::remote_verify::{isolated, nested};
use crate::support::{images::images, row};
use serde_json::Value;
use sha2::Digest as _;
use std::path::Path;

/// What the registry serves for `reference`, hashed as skopeo reads it.
fn served(reference: &str) -> String {
    let raw = harness::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
}

fn copy_to(source: &str, reference: &str) {
    harness::skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        source,
        &format!("docker://{reference}"),
    ]);
}

/// Human report on stdout, and the JSON, Markdown and JUnit reports written beside it.
struct Reports {
    human: String,
    json: Value,
    markdown: String,
    junit: String,
}

fn verify(home: &Path, input: &str) -> Reports {
    let (j, m, x) = (home.join("r.json"), home.join("r.md"), home.join("r.xml"));
    let mut cmd = isolated(home);
    cmd.args(["--no-run", "--plain-http", "--color", "never"])
        .arg(format!("--report=json={}", j.display()))
        .arg(format!("--report=markdown={}", m.display()))
        .arg(format!("--report=junit={}", x.display()))
        .arg(input);
    let out = harness::run_cmd(cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    Reports {
        human: out.stdout,
        json: serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap(),
        markdown: std::fs::read_to_string(&m).unwrap(),
        junit: std::fs::read_to_string(&x).unwrap(),
    }
}

/// Every report names `registry`, `tag` (when asked for one) and `digest`.
fn assert_named(r: &Reports, kind: &str, registry: &str, tag: Option<&str>, digest: &str) {
    let subject_line = r
        .human
        .lines()
        .find(|l| l.starts_with("subject "))
        .unwrap_or_else(|| panic!("no subject line:\n{}", r.human));
    assert!(
        subject_line.contains(&format!("{kind} {digest}")),
        "{subject_line}"
    );
    assert!(
        subject_line.contains(&format!("served by registry {registry}")),
        "{subject_line}"
    );
    // The committed schema knows the registry field (and would catch a wrong type for it).
    crate::publish::assert_valid(&r.json);
    let subject = &r.json["subjects"][0];
    assert_eq!(subject["kind"], kind, "{subject:#}");
    assert_eq!(subject["digest"], digest, "{subject:#}");
    assert_eq!(subject["registry"], registry, "{subject:#}");
    assert!(r.markdown.contains(digest), "{}", r.markdown);
    assert!(
        r.markdown
            .contains(&format!("served by registry `{registry}`")),
        "{}",
        r.markdown
    );
    assert!(
        r.junit
            .contains(&format!(r#"name="subject.registry" value="{registry}""#)),
        "{}",
        r.junit
    );
    match tag {
        Some(t) => {
            assert!(
                subject_line.contains(&format!("tag {t} ")),
                "{subject_line}"
            );
            assert_eq!(subject["tag"], t, "{subject:#}");
            assert!(
                r.markdown.contains(&format!("tag: `{t}`")),
                "{}",
                r.markdown
            );
        }
        None => assert!(subject["tag"].is_null(), "{subject:#}"),
    }
}

#[test]
fn an_index_read_by_tag_and_by_digest_is_named_with_what_the_registry_served() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let reference = format!("{}/report/multi:v1.2", reg.addr);
    copy_to(&format!("oci:{}:latest", nested().display()), &reference);
    let digest = served(&reference);

    let by_tag = verify(dir.path(), &format!("docker://{reference}"));
    assert_named(&by_tag, "index", &reg.addr, Some("v1.2"), &digest);

    let pinned = format!("{}/report/multi@{digest}", reg.addr);
    let by_digest = verify(dir.path(), &format!("docker://{pinned}"));
    assert_named(&by_digest, "index", &reg.addr, None, &digest);
}

#[test]
fn a_single_manifest_is_named_by_its_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let layout = images().oci_layout_for(row("x86_64-linux")).unwrap();
    let reference = format!("{}/report/single:amd64", reg.addr);
    copy_to(&format!("oci:{}", layout.display()), &reference);
    let digest = served(&reference);
    let r = verify(dir.path(), &format!("docker://{reference}"));
    assert_named(&r, "manifest", &reg.addr, Some("amd64"), &digest);
    // The manifest it served is also the one image's manifest.
    assert_eq!(r.json["subjects"][0]["platforms"][0]["manifest"], digest);
}
