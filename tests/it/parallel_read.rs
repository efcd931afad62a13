//! Images of an index read in parallel (`--jobs`): the report is byte for byte the one a read
//! in index order (`--jobs 1`) gives, over repeated runs, with layers shared between images;
//! a damaged platform leaves the others' results standing, and of two hostile platforms the
//! first in index order is the one refused.

use crate::harness::{self, Outcome};
use crate::images::index_with_one_lying_platform;
use crate::support::images::images;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `mab-verify --format json --no-run [--jobs N] [extra] PATH` with a fresh cache.
fn verify(path: &Path, jobs: Option<&str>, extra: &[&str]) -> Outcome {
    let mut cmd = harness::command();
    cmd.args(["--format", "json", "--no-run"]);
    if let Some(j) = jobs {
        cmd.args(["--jobs", j]);
    }
    cmd.args(extra).arg(path);
    let out = harness::run_cmd(cmd);
    out.assert_no_panic();
    out
}

/// A layout made of other layouts' blobs and the given index entries.
fn layout_of(out: &Path, from: &[&Path], entries: Vec<Value>) -> PathBuf {
    std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    for layout in from {
        for blob in std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(blob.path(), out.join("blobs/sha256").join(blob.file_name())).unwrap();
        }
    }
    std::fs::copy(from[0].join("oci-layout"), out.join("oci-layout")).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    std::fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    out.to_path_buf()
}

fn entries_of(layout: &Path) -> Vec<Value> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The same stdout, exit code and stderr for one worker and for many, three times over.
fn assert_parallel_equals_in_order(path: &Path, extra: &[&str]) -> Outcome {
    let in_order = verify(path, Some("1"), extra);
    for jobs in [None, Some("8"), Some("3")] {
        let parallel = verify(path, jobs, extra);
        let differs = in_order
            .stdout
            .lines()
            .zip(parallel.stdout.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b);
        assert!(
            parallel.code == in_order.code && parallel.stdout == in_order.stdout,
            "{} {extra:?} --jobs {jobs:?}: exit {} vs {} with --jobs 1; first differing line: {differs:?}\nstderr:\n{}",
            path.display(),
            parallel.code,
            in_order.code,
            parallel.stderr
        );
    }
    in_order
}

/// Layer `from_cache` marks, in report order.
fn cache_marks(out: &Outcome) -> Vec<bool> {
    out.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["image"]["layers"].as_array().cloned().unwrap_or_default())
        .map(|l| l["from_cache"].as_bool().unwrap_or(false))
        .collect()
}

#[rstest::rstest]
#[case::multi("multi")]
#[case::nested("nested")]
#[case::docker_list("docker_list")]
#[case::shared_layers("shared_layers")]
fn a_parallel_read_gives_the_report_of_a_read_in_order(#[case] which: &str) {
    let f = images();
    let dir = tempfile::tempdir().unwrap();
    let path = match which {
        "multi" => f.multi_layout.clone(),
        "nested" => f.nested_index.clone(),
        "docker_list" => f.docker_manifest_list.clone(),
        _ => index_with_one_lying_platform(dir.path()),
    };
    let cold = assert_parallel_equals_in_order(&path, &[]);
    let uncached = assert_parallel_equals_in_order(&path, &["--no-cache"]);
    assert_eq!(cold.code, uncached.code);
    let images = cold.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .count();
    assert_eq!(images, 3, "{which}: {}", cold.stdout);
    // The second image of the lying index lists the first one's layers: read once, then
    // hashed again and taken from the cache, as in order.
    let marks = cache_marks(&cold);
    assert_eq!(
        marks.iter().any(|m| *m),
        which == "shared_layers",
        "{which}: {marks:?}"
    );
    assert!(!cache_marks(&uncached).iter().any(|m| *m));
}

#[test]
fn a_damaged_platform_leaves_the_others_results_standing() {
    let f = images();
    let dir = tempfile::tempdir().unwrap();
    let entries = entries_of(&f.multi_layout);
    let path = layout_of(
        &dir.path().join("damaged"),
        &[&f.multi_layout],
        entries.clone(),
    );
    // Cut the first layer of the second platform's image to half.
    let manifest = read_json(&blob(&path, entries[1]["digest"].as_str().unwrap()));
    let layer = blob(&path, manifest["layers"][0]["digest"].as_str().unwrap());
    let bytes = std::fs::read(&layer).unwrap();
    std::fs::remove_file(&layer).unwrap();
    std::fs::write(&layer, &bytes[..bytes.len() / 2]).unwrap();

    let out = assert_parallel_equals_in_order(&path, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    let artifacts: Vec<&Value> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "image")
        .collect();
    assert_eq!(artifacts.len(), 3, "{}", out.stdout);
    for (n, a) in artifacts.iter().enumerate() {
        let size = harness::status_of(a, "blob.size");
        let binaries = harness::status_of(a, "image.binaries");
        if n == 1 {
            assert_eq!(size, "fail", "{a:#}");
        } else {
            assert_eq!(
                (size.as_str(), binaries.as_str()),
                ("pass", "pass"),
                "{a:#}"
            );
            assert!(a["image"]["executables"].as_u64().unwrap() > 0, "{a:#}");
        }
    }
}

#[rstest::rstest]
#[case::dotdot_first(["dotdot", "absolute"], "contains '..'")]
#[case::absolute_first(["absolute", "dotdot"], "is an absolute path")]
fn of_two_hostile_platforms_the_first_in_index_order_is_refused(
    #[case] order: [&str; 2],
    #[case] says: &str,
) {
    let f = images();
    let dir = tempfile::tempdir().unwrap();
    let hostile = |name: &str| {
        f.hostile
            .all()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .to_path_buf()
    };
    let (first, second) = (hostile(order[0]), hostile(order[1]));
    let good = entries_of(&f.multi_layout);
    let entries = vec![
        good[0].clone(),
        entries_of(&first)[0].clone(),
        good[1].clone(),
        entries_of(&second)[0].clone(),
        good[2].clone(),
    ];
    let path = layout_of(
        &dir.path().join("hostile"),
        &[&f.multi_layout, &first, &second],
        entries,
    );
    for jobs in ["1", "8", "2"] {
        let out = verify(&path, Some(jobs), &[]);
        assert_eq!(out.code, 2, "--jobs {jobs}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(says),
            "--jobs {jobs}: expected the first hostile platform ({says}):\n{}",
            out.stderr
        );
    }
}

#[test]
fn jobs_zero_is_a_usage_error() {
    let out = verify(&images().multi_layout, Some("0"), &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--jobs"), "{}", out.stderr);
}
