//! Issue 14, rule 3: `gate` makes its private copy first and verifies that copy, the one the
//! command gets as `$MAB_VERIFIED_PATH`; the report still names the artifact the user gave.

use crate::harness::{command, run_cmd};

#[test]
fn the_gate_verifies_its_private_copy_and_reports_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("out");
    std::fs::create_dir_all(a.join("bin")).unwrap();
    std::fs::copy("/bin/cp", a.join("bin/cp")).unwrap();
    std::fs::write(a.join("data.txt"), "original").unwrap();
    let (report, seen) = (dir.path().join("report.json"), dir.path().join("seen"));
    let mut c = command();
    c.arg("gate")
        .arg(&a)
        .arg("--no-run")
        .args(["--", "sh", "-c"])
        .arg(format!(
            "cp \"$MAB_REPORT\" {}; printf '%s' \"$MAB_VERIFIED_PATH\" > {}",
            report.display(),
            seen.display()
        ));
    let out = run_cmd(c);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let copy = std::fs::read_to_string(&seen).unwrap();
    let parent = std::path::Path::new(&copy).parent().unwrap();
    assert!(
        parent
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("mab-verified-"),
        "{copy}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let original = a.display().to_string();
    assert_eq!(json["inputs"], serde_json::json!([original]), "{text}");
    let artifacts = json["artifacts"].as_array().unwrap();
    assert!(!artifacts.is_empty(), "{text}");
    for art in artifacts {
        let path = art["path"].as_str().unwrap();
        assert!(path.starts_with(&original), "{path} in {text}");
    }
    // Nothing in the report or the terminal output names the private copy.
    assert!(!text.contains(&copy), "{text}");
    assert!(!out.stdout.contains(&copy), "{}", out.stdout);
}
