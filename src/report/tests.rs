//! Snapshot tests of every renderer, from constructed reports (no toolchain needed).

use super::sample::multi_arch;
use super::{Report, github, human, json, junit, markdown};

/// Snapshots sit with the integration tests' in `snapshots/`; what varies (the host section)
/// is an insta redaction, not a hand-written replacement.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// As `SOURCE_DATE_EPOCH` makes it: no host section.
fn reproducible(failing: bool) -> Report {
    let mut r = multi_arch(failing);
    r.host = None;
    r
}

fn plain(width: Option<usize>) -> human::Style {
    human::Style {
        color: false,
        width,
    }
}

#[test]
fn human_wide_and_narrow() {
    let r = reproducible(true);
    settings().bind(|| {
        insta::assert_snapshot!("render_human_wide", human::render(&r, plain(None)));
        insta::assert_snapshot!("render_human_narrow", human::render(&r, plain(Some(60))));
    });
}

#[test]
fn a_narrow_terminal_gets_check_groups_that_fit() {
    let r = reproducible(true);
    let narrow = human::render(&r, plain(Some(70)));
    let matrix: Vec<&str> = narrow
        .lines()
        .skip_while(|l| !l.starts_with("artifact"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        matrix[0].contains("binaries") && matrix[0].contains("closure"),
        "{narrow}"
    );
    assert!(matrix.iter().all(|l| l.chars().count() <= 70), "{narrow}");
    let wide = human::render(&r, plain(None));
    assert!(
        wide.contains("machine")
            && !wide
                .lines()
                .any(|l| l.starts_with("artifact") && l.contains("binaries"))
    );
}

#[test]
fn json_snapshot_with_host_redacted() {
    let r = multi_arch(true);
    assert!(
        r.host.is_some(),
        "without SOURCE_DATE_EPOCH durations are in the host section"
    );
    let value: serde_json::Value = serde_json::from_str(&json::render(&r)).unwrap();
    settings().bind(|| {
        insta::assert_json_snapshot!("render_json", value, {
            ".host.durations_ms.*" => "[ms]",
        });
    });
}

#[test]
fn markdown_snapshot() {
    settings()
        .bind(|| insta::assert_snapshot!("render_markdown", markdown::render(&reproducible(true))));
}

#[test]
fn junit_snapshot() {
    settings().bind(|| insta::assert_snapshot!("render_junit", junit::render(&reproducible(true))));
}

#[test]
fn junit_error_snapshot() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "render_junit_error",
            junit::render_error(
                &["app.oci.tar".into()],
                "app.oci.tar: index.json is missing: not an OCI layout (exit 2)",
                "2024-01-02T03:04:05Z"
            )
        )
    });
}

#[test]
fn github_annotations_snapshot() {
    settings().bind(|| {
        insta::assert_snapshot!("render_github", github::annotations(&reproducible(true)))
    });
}

#[test]
fn every_format_opens_with_the_index_digest_and_tag() {
    let r = reproducible(false);
    let digest = r.subjects[0].digest.clone().unwrap();
    assert_eq!(r.subjects[0].tag.as_deref(), Some("latest"));
    for (name, text) in [
        ("human", human::render(&r, plain(None))),
        ("json", json::render(&r)),
        ("markdown", markdown::render(&r)),
        ("junit", junit::render(&r)),
    ] {
        let at = text
            .find(&digest)
            .unwrap_or_else(|| panic!("{name} lacks the index digest:\n{text}"));
        assert!(text.contains("latest"), "{name} lacks the tag");
        // Before any artifact's own section.
        let first_check = text.find("elf.machine").unwrap_or(usize::MAX);
        assert!(at < first_check, "{name}: the subject is not first");
    }
}

#[test]
fn temporary_directories_are_named_for_what_they_hold() {
    let r = reproducible(false);
    let tmp = std::env::temp_dir().display().to_string();
    for text in [json::render(&r), markdown::render(&r), junit::render(&r)] {
        assert!(!text.contains("mab-rootfs-"), "{text}");
        assert!(
            !text.contains(&format!("{}/", tmp.trim_end_matches('/'))) || tmp == "/",
            "{text}"
        );
    }
    assert!(json::render(&r).contains("<rootfs of linux/arm64>"));
}

#[test]
fn an_all_green_run_counts_nothing_skipped() {
    let r = reproducible(false);
    assert_eq!(r.summary.skip, 0);
    assert!(r.summary.not_applicable > 0);
    let text = human::render(&r, plain(None));
    assert!(text.contains(" 0 skipped"), "{text}");
    let xml = junit::render(&r);
    assert!(
        !xml.contains("<skipped"),
        "does-not-apply is no JUnit skip:\n{xml}"
    );
    let md = markdown::render(&r);
    assert!(!md.contains("⏭️ |") && !md.contains("| ⏭️"), "{md}");
}

#[test]
fn a_real_skip_is_a_junit_skip_with_its_fix() {
    let xml = junit::render(&reproducible(true));
    assert_eq!(xml.matches("<skipped ").count(), 1, "{xml}");
    assert!(xml.contains("fix: apt-get install qemu-user"));
}

#[test]
fn markdown_tables_have_as_many_cells_as_their_header() {
    let md = markdown::render(&reproducible(true));
    let mut header: Option<usize> = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let cells = line.replace("\\|", "").matches('|').count();
        match header {
            None => header = Some(cells),
            Some(n) => assert_eq!(cells, n, "row {line:?} of a table with {n} separators"),
        }
    }
}

#[test]
fn attestation_snapshot() {
    let policy = super::attestation::Policy {
        expected_platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        ..Default::default()
    };
    let text = super::attestation::render(&reproducible(true), &policy);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["predicate"]["verificationResult"], "FAILED");
    settings().bind(|| insta::assert_snapshot!("render_attestation", text));
}
