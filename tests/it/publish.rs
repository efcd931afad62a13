//! The CI gate, the report formats (Markdown audit, JUnit, GitHub annotations) and the
//! committed JSON schema every report must satisfy.

use crate::harness;
use crate::harness::registry;
use crate::support;

use harness::{command, filtered_settings, mab, run_cmd};
use serde_json::Value;
use std::path::Path;
use support::images::images;
use support::{fixtures, row};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/report.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap())
        .expect("the committed schema is a valid JSON Schema")
}

pub(crate) fn assert_valid(report: &Value) {
    let validator = schema();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_schema_lists_exactly_the_check_ids() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/report.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let mut listed: Vec<&str> = schema["$defs"]["check"]["properties"]["id"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut ids: Vec<&str> = mab_verify::check::ids::ALL.to_vec();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
}

#[test]
fn reports_of_binaries_images_and_failures_match_the_schema() {
    let f = fixtures();
    let img = images();
    let cases: Vec<Vec<String>> = vec![
        vec![
            f.hello_for(row("aarch64-linux"))
                .unwrap()
                .display()
                .to_string(),
        ],
        vec![f.broken.truncated.as_ref().unwrap().display().to_string()],
        vec![
            f.nix_for(row("armv7l-linux"))
                .unwrap()
                .result
                .display()
                .to_string(),
        ],
        vec![
            img.multi_archive.display().to_string(),
            "--expect".into(),
            "linux/s390x".into(),
        ],
        vec![img.broken.lying_config.display().to_string()],
        vec![
            img.docker_archive_for(row("x86_64-linux"))
                .unwrap()
                .display()
                .to_string(),
        ],
    ];
    for args in cases {
        let mut all = vec!["--format".to_string(), "json".into()];
        all.extend(args.iter().cloned());
        let out = mab(&all);
        assert!(out.code == 0 || out.code == 1, "{args:?}: {}", out.stderr);
        assert_valid(&out.json());
    }
    // The schema is strict enough to notice a broken report.
    let mut broken = mab([
        "--no-run",
        "--format",
        "json",
        f.hello_for(row("x86_64-linux")).unwrap().to_str().unwrap(),
    ])
    .json();
    broken["artifacts"][0]["checks"][0]["status"] = "maybe".into();
    assert!(!schema().is_valid(&broken));
}

#[test]
fn every_format_is_written_from_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let lying = images().broken.lying_config.clone();
    let md = dir.path().join("audit.md");
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("audit.json");
    let out = mab([
        "--no-run".to_string(),
        "--report".into(),
        format!("markdown={}", md.display()),
        "--report".into(),
        format!("junit={}", junit.display()),
        "--report".into(),
        format!("json={}", json.display()),
        lying.display().to_string(),
    ]);
    assert_eq!(out.code, 1);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_valid(&report);
    let checks = report["summary"]["pass"].as_u64().unwrap()
        + report["summary"]["fail"].as_u64().unwrap()
        + report["summary"]["warn"].as_u64().unwrap()
        + report["summary"]["skip"].as_u64().unwrap()
        + report["summary"]["not_applicable"].as_u64().unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("<testcase ").count() as u64,
        checks,
        "one test case per artifact and check"
    );
    assert_eq!(
        xml.matches("<failure ").count() as u64,
        report["summary"]["fail"].as_u64().unwrap()
    );
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("❌ FAIL") && text.contains("image.config-platform"),
        "{text}"
    );

    let source = lying.display().to_string();
    let replacements = [(source.as_str(), "[lying-config]")];
    filtered_settings(&replacements).bind(|| {
        insta::assert_snapshot!("audit_markdown", text);
        insta::assert_snapshot!("audit_junit", xml);
    });
}

#[test]
fn github_actions_get_annotations_and_a_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let mut cmd = command();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--no-run", images().broken.lying_config.to_str().unwrap()]);
    let out = run_cmd(cmd);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("::error ") && l.contains("title=image.config-platform")),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# mab-verify release audit"), "{text}");
}

fn gate(artifact: &Path, extra: &[&str], cmd: &str) -> harness::Outcome {
    let mut c = command();
    c.arg("gate")
        .arg(artifact)
        .args(extra)
        .args(["--", "sh", "-c", cmd]);
    run_cmd(c)
}

#[test]
fn a_failing_artifact_never_runs_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("published");
    let out = gate(
        &images().broken.lying_config,
        &["--no-run"],
        &format!("touch {}", marker.display()),
    );
    assert_eq!(out.code, 1);
    assert!(
        !marker.exists(),
        "the command ran although verification failed"
    );
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
}

#[test]
fn a_passing_artifact_runs_the_command_with_what_was_verified() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("published");
    let archive = &dir.path().join("app.oci.tar");
    let mut assemble = command();
    assemble
        .arg("assemble")
        .arg("--no-run")
        .arg("-o")
        .arg(archive);
    for key in ["x86_64-linux", "aarch64-linux", "armv7l-linux"] {
        assemble.arg(images().docker_archive_for(row(key)).unwrap());
    }
    assert_eq!(run_cmd(assemble).code, 0);
    let out = gate(
        archive,
        &["--no-run"],
        &format!(
            "echo \"$MAB_VERIFIED_DIGEST|$MAB_PLATFORMS\" > {} && test -s \"$MAB_REPORT\" && exit 7",
            marker.display()
        ),
    );
    assert_eq!(
        out.code, 7,
        "the command's status becomes mab-verify's: {}",
        out.stderr
    );
    let text = std::fs::read_to_string(&marker).unwrap();
    let (digest, platforms) = text.trim().split_once('|').unwrap();
    // skopeo, not mab-verify, says what digest a registry will see for this archive.
    let raw = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            &format!("oci-archive:{}", archive.display()),
        ])
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert_eq!(
        digest,
        format!("sha256:{}", mab_verify::inspect::sha256_hex(&raw.stdout))
    );
    assert_eq!(platforms, "linux/amd64,linux/arm/v7,linux/arm64");
}

#[test]
fn an_artifact_changed_after_verification_is_refused() {
    // A directory whose binary, when verification runs it, rewrites a file of the artifact.
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("out");
    std::fs::create_dir_all(artifact.join("bin")).unwrap();
    std::fs::copy("/bin/cp", artifact.join("bin/cp")).unwrap();
    std::fs::write(artifact.join("data.txt"), "original").unwrap();
    let cfg = dir.path().join("mab.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nargs = [\"/etc/hostname\", \"{}\"]\nexpect_output = \"none\"\n",
            artifact.join("data.txt").display()
        ),
    )
    .unwrap();
    let marker = dir.path().join("published");
    // Unsealed, so the run can write the artifact at all (a sealed one cannot: see
    // tests/publish_exact.rs); the fingerprint check is what must catch it then.
    let mut c = command();
    c.env("MAB_BWRAP", "none")
        .arg("gate")
        .arg(&artifact)
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--", "sh", "-c", &format!("touch {}", marker.display())]);
    let out = run_cmd(c);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("changed after it was verified"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists());
}

fn assembled(dir: &Path) -> std::path::PathBuf {
    let archive = dir.join("app.oci.tar");
    let mut assemble = command();
    assemble
        .arg("assemble")
        .arg("--no-run")
        .arg("-o")
        .arg(&archive);
    for key in ["x86_64-linux", "aarch64-linux"] {
        assemble.arg(images().docker_archive_for(row(key)).unwrap());
    }
    assert_eq!(run_cmd(assemble).code, 0);
    archive
}

fn push(artifact: &Path, reference: &str, extra: &[&str]) -> harness::Outcome {
    let mut cmd = command();
    cmd.arg("push")
        .arg(artifact)
        .arg(reference)
        .args(["--plain-http", "--no-run"])
        .args(extra);
    run_cmd(cmd)
}

#[test]
fn push_uploads_the_verified_index_and_nothing_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let reg = registry::Registry::start(None);
    let reference = format!("{}/demo:v1", reg.addr);
    let out = push(&archive, &reference, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let raw = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let local = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            &format!("oci-archive:{}", archive.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        raw.stdout, local.stdout,
        "the registry serves the verified index byte for byte"
    );

    let again = push(&archive, &reference, &[]);
    assert_eq!(again.code, 0);
    assert!(
        again.stderr.contains(" 0 blobs uploaded"),
        "{}",
        again.stderr
    );

    // A failing artifact pushes nothing: its tag never appears.
    let bad = push(
        &images().broken.lying_config,
        &format!("{}/bad:v1", reg.addr),
        &[],
    );
    assert_eq!(bad.code, 1);
    let missing = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/bad:v1", reg.addr),
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[test]
fn push_with_auth_redacts_credentials_and_refuses_remote_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let archive = assembled(dir.path());
    let htpasswd = std::process::Command::new("htpasswd")
        .args(["-Bbn", "user", "s3cret-pass"])
        .output()
        .unwrap();
    let reg = registry::Registry::start(Some(&String::from_utf8_lossy(&htpasswd.stdout)));
    let reference = format!("{}/demo:v1", reg.addr);
    let wrong = push(&archive, &reference, &["--creds", "user:wrong-pass"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("wrong-pass") && !wrong.stdout.contains("wrong-pass"));
    let right = push(&archive, &reference, &["--creds", "user:s3cret-pass"]);
    assert_eq!(right.code, 0, "{}", right.stderr);
    assert!(!right.stderr.contains("s3cret-pass"));

    let remote = push(&archive, "registry.example.com/demo:v1", &[]);
    assert_eq!(remote.code, 2);
    assert!(
        remote.stderr.contains("--allow-remote-plain-http"),
        "{}",
        remote.stderr
    );
}
