//! The release audit end to end: the subject in every format (verify, gate, push), byte-identical
//! reports across runs and temp dirs, JUnit valid against the Jenkins schema (exit 2 too), and
//! Markdown that a CommonMark + tables renderer reads as the intended tables.

use crate::harness::{command, registry, run_cmd};
use crate::support::images::images;
use crate::support::row;
use serde_json::Value;
use std::path::{Path, PathBuf};

const TAG: &str = "release-1";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", mab_verify::inspect::sha256_hex(bytes))
}

/// A two-platform archive from the tool's own assemble, tagged [`TAG`].
fn assembled(dir: &Path) -> PathBuf {
    let archive = dir.join("app.oci.tar");
    let mut cmd = command();
    cmd.args(["assemble", "--no-run", "--tag", TAG, "-o"])
        .arg(&archive);
    for key in ["x86_64-linux", "aarch64-linux"] {
        cmd.arg(images().docker_archive_for(row(key)).unwrap());
    }
    let out = run_cmd(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    archive
}

/// The index digest as skopeo (an independent reader) sees it: the digest of the raw index.
fn skopeo_digest(source: &str) -> String {
    sha256(&skopeo_raw_bytes(source))
}

struct Written {
    stdout: String,
    code: i32,
    json: String,
    markdown: String,
    junit: String,
    attestation: String,
}

/// `--report` every format into `dir`, run `cmd`.
fn with_reports(cmd: std::process::Command, dir: &Path) -> Written {
    let file = |name: &str| dir.join(name);
    // Report flags go before `--` (gate) and are read by every command that verifies.
    let mut args: Vec<String> = Vec::new();
    for (format, name) in [
        ("json", "r.json"),
        ("markdown", "r.md"),
        ("junit", "r.xml"),
        ("attestation", "r.intoto.json"),
    ] {
        args.push("--report".into());
        args.push(format!("{format}={}", file(name).display()));
    }
    let all: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = cmd.get_program().to_owned();
    let mut fresh = std::process::Command::new(program);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => fresh.env(k, v),
            None => fresh.env_remove(k),
        };
    }
    match all.iter().position(|a| a == "--") {
        Some(at) => fresh.args(&all[..at]).args(&args).args(&all[at..]),
        None => fresh.args(&all).args(&args),
    };
    let out = run_cmd(fresh);
    let read = |name: &str| {
        std::fs::read_to_string(file(name))
            .unwrap_or_else(|e| panic!("{name} not written ({e}): {}", out.stderr))
    };
    assert_schema_valid(&serde_json::from_str(&read("r.json")).unwrap());
    Written {
        stdout: out.stdout.clone(),
        code: out.code,
        json: read("r.json"),
        markdown: read("r.md"),
        junit: read("r.xml"),
        attestation: read("r.intoto.json"),
    }
}

fn assert_names_subject(w: &Written, digest: &str, tag: &str, what: &str) {
    for (format, text) in [
        ("human", &w.stdout),
        ("json", &w.json),
        ("markdown", &w.markdown),
        ("junit", &w.junit),
    ] {
        assert!(
            text.contains(digest),
            "{what}: {format} lacks the index digest {digest}:\n{text}"
        );
        assert!(
            text.contains(tag),
            "{what}: {format} lacks the tag {tag}:\n{text}"
        );
    }
    let json: Value = serde_json::from_str(&w.json).unwrap();
    let subject = &json["subjects"][0];
    assert_eq!(subject["digest"], digest, "{what}");
    assert_eq!(subject["kind"], "index", "{what}");
    assert_eq!(subject["platforms"].as_array().unwrap().len(), 2, "{what}");
    // The index artifact carries the digest too (it was "" before).
    let index = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "index")
        .expect("an index artifact");
    assert_eq!(
        format!("sha256:{}", index["sha256"].as_str().unwrap()),
        digest
    );
    assert!(index["size"].as_u64().unwrap() > 0);

    // The attestation's subjects are the index and every platform manifest that was verified.
    let statement: Value = serde_json::from_str(&w.attestation).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    let mut attested: Vec<String> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()))
        .collect();
    let mut verified: Vec<String> = vec![digest.to_string()];
    verified.extend(
        json["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["image"]["digest"].as_str().map(str::to_string)),
    );
    attested.sort();
    verified.sort();
    assert_eq!(attested, verified, "{what}");
    assert_eq!(statement["predicate"]["verificationResult"], "PASSED");
    assert_eq!(statement["predicate"]["timeVerified"], json["generated_at"]);
}

#[test]
fn the_index_digest_and_tag_are_in_every_format_of_verify_gate_and_push() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let digest = skopeo_digest(&format!("oci-archive:{}", archive.display()));

    let mut verify = command();
    verify.arg("--no-run").arg(&archive);
    let w = with_reports(verify, dir.path());
    assert_eq!(w.code, 0, "{}", w.stdout);
    assert_names_subject(&w, &digest, TAG, "verify");

    let mut gate = command();
    gate.args(["gate", "--no-run"]).arg(&archive).args([
        "--",
        "sh",
        "-c",
        "printf %s \"$MAB_VERIFIED_DIGEST\"",
    ]);
    let w = with_reports(gate, dir.path());
    assert_eq!(w.code, 0, "{}", w.stdout);
    assert!(
        w.stdout.ends_with(&digest),
        "gate hands the same digest on: {}",
        w.stdout
    );
    assert_names_subject(&w, &digest, TAG, "gate");

    let reg = registry::Registry::start(None);
    let reference = format!("{}/audit:v1", reg.addr);
    let mut push = command();
    push.args(["push", "--plain-http", "--no-run"])
        .arg(&archive)
        .arg(&reference);
    let w = with_reports(push, dir.path());
    assert_eq!(w.code, 0, "{}", w.stdout);
    assert_eq!(skopeo_digest(&format!("docker://{reference}")), digest);
    assert_names_subject(&w, &digest, "v1", "push");
    let json: Value = serde_json::from_str(&w.json).unwrap();
    assert_eq!(json["subjects"][0]["reference"], reference.as_str());
}

/// Run a verification with qemu runs under `tmp` as TMPDIR.
fn run_in(tmp: &Path, archive: &Path, out: &Path) -> Written {
    let mut cmd = command();
    cmd.env("TMPDIR", tmp).arg(archive);
    with_reports(cmd, out)
}

#[test]
fn reports_are_byte_identical_across_runs_and_temporary_directories() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let (t1, t2) = (
        dir.path().join("tmp-one"),
        dir.path().join("tmp-two-longer"),
    );
    let (o1, o2) = (dir.path().join("out1"), dir.path().join("out2"));
    for d in [&t1, &t2, &o1, &o2] {
        std::fs::create_dir_all(d).unwrap();
    }
    let first = run_in(&t1, &archive, &o1);
    let second = run_in(&t2, &archive, &o2);
    assert_eq!(first.code, 0, "{}", first.stdout);
    let json: Value = serde_json::from_str(&first.json).unwrap();
    let ran = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["run"]["state"] == "ran")
        .count();
    assert_eq!(ran, 2, "both images ran (the temp paths are in play)");
    for (format, a, b) in [
        ("json", &first.json, &second.json),
        ("markdown", &first.markdown, &second.markdown),
        ("junit", &first.junit, &second.junit),
        ("attestation", &first.attestation, &second.attestation),
    ] {
        assert_eq!(a, b, "{format} differs between two runs");
        for t in [&t1, &t2] {
            assert!(
                !a.contains(&t.display().to_string()),
                "{format} names a temp dir:\n{a}"
            );
        }
        assert!(!a.contains("mab-rootfs-"), "{format}:\n{a}");
    }
    assert!(
        first.json.contains("<rootfs of linux/arm64>"),
        "{}",
        first.json
    );
    assert!(
        json.get("host").is_none(),
        "SOURCE_DATE_EPOCH: no host section"
    );
    // An all-green run: nothing was skipped, and JUnit says so.
    assert_eq!(json["summary"]["skip"], 0);
    assert!(first.stdout.contains(" 0 skipped"), "{}", first.stdout);
    assert!(!first.junit.contains("<skipped"), "{}", first.junit);
}

fn xsd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/schemas/junit-jenkins.xsd")
}

fn assert_junit_valid(xml: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd())
        .arg(&file)
        .output()
        .expect("xmllint (apt libxml2-utils, scripts/setup)");
    assert!(
        out.status.success(),
        "{what}: JUnit fails the Jenkins schema:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_schema_rejects_what_jenkins_rejects() {
    // The shape this tool wrote before: attributes the Jenkins schema does not know.
    let old = "<?xml version=\"1.0\"?>\n<testsuites name=\"m\" tests=\"1\" skipped=\"0\" timestamp=\"2023-11-14T22:13:20Z\"><testsuite name=\"a\" tests=\"1\"><testcase name=\"c\"/></testsuite></testsuites>\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.xml");
    std::fs::write(&file, old).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd())
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'skipped'") && err.contains("'timestamp'"),
        "{err}"
    );
}

#[test]
fn junit_of_a_failing_run_and_of_an_exit_2_run_is_valid_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut failing = command();
    failing.arg(&images().broken.lying_config);
    let w = with_reports(failing, dir.path());
    assert_eq!(w.code, 1);
    assert_junit_valid(&w.junit, "failing run");
    let json: Value = serde_json::from_str(&w.json).unwrap();
    let checks: usize = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["checks"].as_array().unwrap().len())
        .sum();
    assert_eq!(w.junit.matches("<testcase ").count(), checks);
    assert_eq!(
        w.junit.matches("<failure ").count() as u64,
        json["summary"]["fail"].as_u64().unwrap()
    );
    assert_eq!(
        w.junit.matches("<testsuite ").count(),
        json["artifacts"].as_array().unwrap().len(),
        "one suite per artifact"
    );
    assert!(w.junit.contains(" time=\""));

    // Exit 2: the input is not readable as an image; the JUnit still says why.
    let junit = dir.path().join("error.xml");
    let mut cmd = command();
    cmd.arg("--report")
        .arg(format!("junit={}", junit.display()))
        .arg(dir.path().join("missing-archive.tar"));
    let out = run_cmd(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let xml = std::fs::read_to_string(&junit).expect("a JUnit report on exit 2");
    assert_junit_valid(&xml, "exit 2");
    assert_eq!(xml.matches("<error ").count(), 1, "{xml}");
    assert!(
        xml.contains("missing-archive.tar") && xml.contains("exit 2"),
        "{xml}"
    );
}

/// Render with markdown-it-py (CommonMark + GitHub tables) and describe every table.
fn tables_of(markdown: &str) -> Vec<Value> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-tools");
    let script = r#"
import json, sys
from markdown_it import MarkdownIt
tokens = MarkdownIt("commonmark").enable("table").parse(sys.stdin.read())
tables, cur, row = [], None, None
for t in tokens:
    if t.type == "table_open": cur = {"header": [], "rows": []}
    elif t.type == "table_close": tables.append(cur); cur = None
    elif t.type == "tr_open": row = []
    elif t.type == "tr_close":
        if not cur["header"]: cur["header"] = row
        else: cur["rows"].append(row)
    elif t.type == "inline" and cur is not None and row is not None: row.append(t.content)
print(json.dumps(tables))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .env("PYTHONPATH", &py)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "markdown-it-py (scripts/setup installs it into target/py-tools): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_markdown_audit_renders_as_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let mut failing = command();
    failing.arg("--no-run").arg(&images().broken.lying_config);
    let w = with_reports(failing, dir.path());
    let json: Value = serde_json::from_str(&w.json).unwrap();
    let tables = tables_of(&w.markdown);
    for t in &tables {
        let n = t["header"].as_array().unwrap().len();
        for r in t["rows"].as_array().unwrap() {
            assert_eq!(
                r.as_array().unwrap().len(),
                n,
                "a row with another cell count: {t:#}"
            );
        }
    }
    let matrix = tables
        .iter()
        .find(|t| t["header"][1] == "artifact")
        .unwrap_or_else(|| panic!("no platform × check-group matrix: {tables:#?}"));
    let header: Vec<&str> = matrix["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(header.len() <= 9, "compact: {header:?}");
    for g in ["binaries", "closure", "image", "index"] {
        assert!(header.contains(&g), "{header:?}");
    }
    assert_eq!(
        matrix["rows"].as_array().unwrap().len(),
        json["artifacts"].as_array().unwrap().len()
    );
    // The subject table comes first and names the manifest that was verified.
    let subject = &tables[0];
    assert_eq!(subject["header"][1], "manifest");
    let digest = json["subjects"][0]["platforms"][0]["manifest"]
        .as_str()
        .unwrap();
    assert!(subject["rows"][0][1].as_str().unwrap().contains(digest));
    // Failures come before the per-platform detail, each with expected / found / fix.
    let failures = w.markdown.find("## Failures").expect("a failures section");
    let detail = w.markdown.find("## Per-platform detail").unwrap();
    assert!(failures < detail);
    let section = &w.markdown[failures..detail];
    assert!(
        section.contains("  - expected: ") && section.contains("  - found: "),
        "{section}"
    );
}

/// Every JSON report this module writes must satisfy the committed schema.
fn assert_schema_valid(report: &Value) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/report.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn merged_reports_match_the_schema_reproduce_and_keep_every_subject() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for key in ["x86_64-linux", "aarch64-linux"] {
        let file = dir.path().join(format!("{key}.json"));
        let mut cmd = command();
        cmd.args(["--no-run", "--report"])
            .arg(format!("json={}", file.display()))
            .arg(images().docker_archive_for(row(key)).unwrap());
        assert_eq!(run_cmd(cmd).code, 0);
        files.push(file);
    }
    let merge = || {
        let mut cmd = command();
        cmd.args(["merge-reports", "--format", "json"]).args(&files);
        let out = run_cmd(cmd);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let (first, second) = (merge(), merge());
    assert_eq!(first, second, "merge-reports is reproducible");
    let merged: Value = serde_json::from_str(&first).unwrap();
    assert_schema_valid(&merged);
    let inputs: Vec<Value> = files
        .iter()
        .map(|f| {
            let one: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            one["subjects"][0].clone()
        })
        .collect();
    assert_eq!(
        merged["subjects"].as_array().unwrap(),
        &inputs,
        "each input's own subject"
    );
}

fn skopeo_raw(source: &str) -> Value {
    serde_json::from_slice(&skopeo_raw_bytes(source)).unwrap()
}

/// `skopeo inspect --raw`: the manifest or index bytes as the source serves them.
fn skopeo_raw_bytes(source: &str) -> Vec<u8> {
    crate::harness::skopeo(&["inspect", "--raw", "--tls-verify=false", source])
}

#[test]
fn an_attached_attestation_is_found_by_the_fallback_tag_and_names_what_was_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let digest = skopeo_digest(&format!("oci-archive:{}", archive.display()));
    let reg = registry::Registry::start(None);
    let reference = format!("{}/attested:v1", reg.addr);
    let mut push = command();
    push.args(["push", "--plain-http", "--no-run", "--attach-attestation"])
        .arg(&archive)
        .arg(&reference);
    let out = run_cmd(push);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // docker-registry has no referrers API: the OCI 1.1 fallback tag lists the referrer.
    let tag = digest.replacen(':', "-", 1);
    let referrers = skopeo_raw(&format!("docker://{}/attested:{tag}", reg.addr));
    let listed = &referrers["manifests"][0];
    assert_eq!(listed["artifactType"], "application/vnd.in-toto+json");
    let manifest_digest = listed["digest"].as_str().unwrap();
    let manifest = skopeo_raw(&format!("docker://{}/attested@{manifest_digest}", reg.addr));
    assert_eq!(
        manifest["subject"]["digest"],
        digest.as_str(),
        "subject = the pushed index"
    );
    assert_eq!(manifest["artifactType"], "application/vnd.in-toto+json");

    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let url = format!("http://{}/v2/attested/blobs/{layer}", reg.addr);
    let bytes = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    assert_eq!(sha256(&bytes), layer, "the blob is what the manifest says");
    let statement: Value = serde_json::from_slice(&bytes).unwrap();
    let subjects: Vec<String> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()))
        .collect();
    assert_eq!(subjects[0], digest, "the index first");
    let index = skopeo_raw(&format!("docker://{reference}"));
    let mut manifests: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    let mut attested = subjects[1..].to_vec();
    manifests.sort();
    attested.sort();
    assert_eq!(
        attested, manifests,
        "every platform manifest of the pushed index"
    );
    assert_eq!(statement["subject"][0]["name"], reference.as_str());
}

/// Another referrer already at the fallback tag (another policy's attestation, another
/// tool's artifact) is kept when one is attached, and attaching the same one again does not
/// list it twice.
#[test]
fn attaching_keeps_the_referrers_already_at_the_fallback_tag() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let digest = skopeo_digest(&format!("oci-archive:{}", archive.display()));
    let reg = registry::Registry::start(None);
    let reference = format!("{}/kept:v1", reg.addr);
    let push = |extra: &[&str]| {
        let mut cmd = command();
        cmd.args(["push", "--plain-http", "--no-run", "--attach-attestation"])
            .args(extra)
            .arg(&archive)
            .arg(&reference);
        let out = run_cmd(cmd);
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    let listed = || -> Vec<String> {
        let tag = digest.replacen(':', "-", 1);
        let referrers = skopeo_raw(&format!("docker://{}/kept:{tag}", reg.addr));
        let mut digests: Vec<String> = referrers["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect();
        digests.sort();
        digests
    };
    push(&[]);
    let first = listed();
    assert_eq!(first.len(), 1, "{first:?}");
    // Another policy gives another statement, so another referrer of the same index.
    push(&["--allow-extra"]);
    let both = listed();
    assert_eq!(both.len(), 2, "the earlier referrer is kept: {both:?}");
    assert!(both.contains(&first[0]), "{both:?}");
    push(&["--allow-extra"]);
    assert_eq!(listed(), both, "the same referrer is listed once");
}

/// Without `SOURCE_DATE_EPOCH` the JUnit carries real times: the run's wall time on its
/// `run.exec` test case and on its suite (under it they are 0, so reports reproduce).
#[test]
fn junit_shows_the_run_time_without_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bin) = crate::support::hello("aarch64");
    let junit = dir.path().join("timed.xml");
    let mut cmd = command();
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .arg("--report")
        .arg(format!("junit={}", junit.display()))
        .arg(&bin);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_junit_valid(&xml, "timed run");
    let time_of = |needle: &str| -> f64 {
        let line = xml
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {xml}"));
        let start = line.find(" time=\"").expect("a time") + 7;
        line[start..].split('"').next().unwrap().parse().unwrap()
    };
    assert!(time_of("name=\"run.exec\"") > 0.0, "{xml}");
    assert!(time_of("<testsuite ") > 0.0, "{xml}");
}
