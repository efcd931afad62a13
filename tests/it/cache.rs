//! The fact cache (`--cache-dir`): a warm verify reaches the verdict and report of a cold one
//! for every image fixture, damaged entries are rebuilt, concurrent verifies share a cache,
//! the bound holds, a changed setting misses, and a release pipeline inflates each layer once.
//! Run outcomes likewise: a warm verify runs nothing and judges the stored outcomes afresh,
//! another binary byte, qemu or limit runs again, a damaged run entry is rebuilt, and the
//! release pipeline runs each entrypoint once.

use crate::harness::{self, Outcome};
use crate::support::images::images;
use rstest::rstest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// `mab-verify --format json [--no-run] --cache-dir DIR PATH`.
fn verify(path: &Path, cache: &Path, run: bool, extra: &[&str]) -> Outcome {
    let mut cmd = harness::command();
    cmd.args(["--format", "json", "--cache-dir"]).arg(cache);
    if !run {
        cmd.arg("--no-run");
    }
    cmd.args(extra).arg(path);
    harness::run_cmd(cmd)
}

/// The report with what legitimately differs between two runs removed: the cache marks,
/// run durations and private temporary paths.
fn normalized(outcome: &Outcome) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("from_cache");
                map.remove("duration_ms");
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::String(s) => {
                let tmp = regex::Regex::new(r"/tmp/[^\s:,)]*").unwrap();
                let ms = regex::Regex::new(r"\b\d+ ms\b").unwrap();
                let t = tmp.replace_all(s, "[tmp]");
                *s = ms.replace_all(&t, "[n] ms").into_owned();
            }
            _ => {}
        }
    }
    let mut v = outcome.json();
    walk(&mut v);
    v
}

/// The first place where two JSON values differ, as a short text (`None` when equal).
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}.{k}")),
                (p, q) => Some(format!("{at}.{k}: {p:?} vs {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

fn assert_same(a: &Value, b: &Value, what: &str) {
    if let Some(d) = first_difference(a, b, "") {
        panic!("{what}: the reports differ at {d}");
    }
}

/// How many layers of the report came from the cache, and how many layers it lists.
fn cache_hits(outcome: &Outcome) -> (usize, usize) {
    let v = outcome.json();
    let mut hits = 0;
    let mut all = 0;
    for a in v["artifacts"].as_array().into_iter().flatten() {
        for l in a["image"]["layers"].as_array().into_iter().flatten() {
            all += 1;
            if l["from_cache"] == Value::Bool(true) {
                hits += 1;
            }
        }
    }
    (hits, all)
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("entries"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Whether a fixture's layers are named by digest (OCI layouts and archives), so a warm run
/// must find them; docker-archives name layers otherwise and are read in full every time.
fn digest_named(name: &str) -> bool {
    !name.contains("docker-archive") && !name.starts_with("hostile") && !name.starts_with("broken")
}

fn good_fixtures() -> Vec<(String, PathBuf)> {
    let f = images();
    let mut all: Vec<(String, PathBuf)> = Vec::new();
    for (kind, list) in [
        ("oci-layout", &f.oci_layout),
        ("oci-archive", &f.oci_archive),
        ("docker-archive", &f.docker_archive),
        ("umoci", &f.umoci_layout),
        ("skopeo-docker-archive", &f.skopeo_docker_archive),
        ("skopeo-oci-archive", &f.skopeo_oci_archive),
    ] {
        for (arch, p) in list {
            all.push((format!("{kind} {}", arch.nix_system()), p.clone()));
        }
    }
    for (name, p) in [
        ("multi layout", &f.multi_layout),
        ("multi archive", &f.multi_archive),
        ("nested index", &f.nested_index),
        ("zstd layout", &f.zstd_layout),
        ("uncompressed layout", &f.uncompressed_layout),
        ("docker manifest list", &f.docker_manifest_list),
    ] {
        all.push((name.to_string(), p.clone()));
    }
    all
}

/// Cold, then warm on the same cache, then without a cache: one verdict and one report.
fn same_report_warm(name: &str, path: &Path, run: bool) {
    let cache = TempDir::new().unwrap();
    // A cold run may already hit: images of one input can share a layer.
    let cold = verify(path, cache.path(), run, &[]);
    let warm = verify(path, cache.path(), run, &[]);
    let none = verify(path, cache.path(), run, &["--no-cache"]);
    assert_eq!(warm.code, cold.code, "{name}: {}", warm.stderr);
    assert_eq!(none.code, cold.code, "{name}: {}", none.stderr);
    assert_same(
        &normalized(&warm),
        &normalized(&cold),
        &format!("{name}: warm vs cold"),
    );
    assert_same(
        &normalized(&none),
        &normalized(&cold),
        &format!("{name}: --no-cache vs cold"),
    );
    assert_eq!(cache_hits(&none).0, 0, "{name}: --no-cache takes nothing");
    let (hits, all) = cache_hits(&warm);
    if digest_named(name) && cold.code != 2 && all > 0 {
        assert_eq!(hits, all, "{name}: every layer of a warm run is a hit");
        assert!(
            warm.stderr.contains("from the cache"),
            "{name}: stderr says so:\n{}",
            warm.stderr
        );
    }
}

#[test]
fn every_good_image_fixture_verifies_and_runs_alike_warm_and_cold() {
    // Runs (and so the spilled binaries taken from the cache) for one format per platform
    // and the indexes; the other formats differ in how layers are read, not in what runs.
    for (name, path) in good_fixtures() {
        let run = name.starts_with("oci-layout") || name.starts_with("multi");
        same_report_warm(&name, &path, run);
    }
}

#[test]
fn every_broken_and_hostile_fixture_fails_alike_warm_and_cold() {
    let f = images();
    for (name, path) in f.broken.all() {
        same_report_or_error(&format!("broken {name}"), path);
    }
    for (name, path) in f.hostile.all() {
        same_report_or_error(&format!("hostile {name}"), path);
    }
}

/// Refused inputs (exit 2) print no report: the error must be the same.
fn same_report_or_error(name: &str, path: &Path) {
    let cache = TempDir::new().unwrap();
    let cold = verify(path, cache.path(), false, &[]);
    if cold.code == 2 {
        let warm = verify(path, cache.path(), false, &[]);
        assert_eq!(warm.code, 2, "{name}: {}", warm.stderr);
        let last = |s: &str| s.lines().last().unwrap_or_default().to_string();
        assert_eq!(last(&warm.stderr), last(&cold.stderr), "{name}");
        return;
    }
    same_report_warm(name, path, false);
}

#[rstest]
#[case::corrupted(false)]
#[case::truncated(true)]
fn a_damaged_entry_is_ignored_and_rebuilt(#[case] truncate: bool) {
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    let cold = verify(path, cache.path(), true, &[]);
    let stored = entries(cache.path());
    assert!(!stored.is_empty(), "the cold run stored entries");
    let victim = stored[0].join("facts.json");
    let mut bytes = std::fs::read(&victim).unwrap();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    } else {
        // Still valid JSON: a digit changed inside the payload, so only the checksum sees it.
        let at = bytes
            .iter()
            .rposition(u8::is_ascii_digit)
            .expect("the payload has a number");
        bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    }
    std::fs::write(&victim, &bytes).unwrap();
    let warm = verify(path, cache.path(), true, &[]);
    assert_eq!(warm.code, cold.code, "{}", warm.stderr);
    assert_same(&normalized(&warm), &normalized(&cold), "warm vs cold");
    let (hits, all) = cache_hits(&warm);
    assert!(hits < all, "the damaged layer was read again");
    assert!(hits > 0, "the others were not");
    let again = verify(path, cache.path(), true, &[]);
    assert_eq!(cache_hits(&again), (all, all), "the entry was rebuilt");
}

#[test]
fn two_verifies_share_one_cache_at_once() {
    let path = &images().multi_archive;
    let cache = TempDir::new().unwrap();
    let spawn = || {
        let mut cmd = harness::command();
        cmd.args(["--format", "json", "--cache-dir"])
            .arg(cache.path())
            .arg(path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("mab-verify starts")
    };
    let (a, b) = (spawn(), spawn());
    let outcome = |c: std::process::Child| {
        let out = c.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let (a, b) = (outcome(a), outcome(b));
    a.assert_no_panic();
    b.assert_no_panic();
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_same(&normalized(&a), &normalized(&b), "a vs b");
    let third = verify(path, cache.path(), true, &[]);
    let (hits, all) = cache_hits(&third);
    assert_eq!(hits, all, "both writers left whole entries");
    assert_same(&normalized(&third), &normalized(&a), "third vs a");
    assert!(
        std::fs::read_dir(cache.path().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary entry is left behind"
    );
}

/// Sum of the sizes of every file below `dir`.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

#[test]
fn the_cache_stays_within_its_bound() {
    let path = &images().multi_layout;
    let unbounded = TempDir::new().unwrap();
    verify(path, unbounded.path(), true, &[]);
    let sizes: Vec<u64> = entries(unbounded.path()).iter().map(|e| du(e)).collect();
    let largest = *sizes.iter().max().unwrap();
    let total: u64 = sizes.iter().sum();
    assert!(sizes.len() > 1 && largest < total);
    // Room for the largest entry but not for all of them.
    let bound = (largest + total) / 2;
    let bounded = TempDir::new().unwrap();
    let max = bound.to_string();
    let cold = verify(path, bounded.path(), true, &["--cache-max", &max]);
    assert_eq!(cold.code, 0, "{}", cold.stderr);
    let kept = du(&bounded.path().join("entries"));
    assert!(kept <= bound, "{kept} bytes kept, bound {bound}");
    assert!(!entries(bounded.path()).is_empty(), "something is kept");
    assert!(
        entries(bounded.path()).len() < sizes.len(),
        "something was evicted"
    );
    // A bound smaller than any entry keeps nothing, and a warm run then reads everything.
    let tiny = TempDir::new().unwrap();
    verify(path, tiny.path(), true, &["--cache-max", "1"]);
    assert!(entries(tiny.path()).is_empty());
    let again = verify(path, tiny.path(), true, &["--cache-max", "1"]);
    assert_eq!(cache_hits(&again).0, 0);
    let bad = verify(path, tiny.path(), true, &["--cache-max", "lots"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--cache-max"), "{}", bad.stderr);
}

#[test]
fn a_changed_setting_misses_and_no_cache_writes_nothing() {
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    verify(path, cache.path(), false, &[]);
    let config = cache.path().join("mab.toml");
    std::fs::write(&config, "[limits]\nmax_binary_bytes = 1000000\n").unwrap();
    let changed = verify(
        path,
        cache.path(),
        false,
        &["--config", config.to_str().unwrap()],
    );
    // (libc is larger than that limit, so its facts are missing and the verdict fails.)
    assert_ne!(changed.code, 2, "{}", changed.stderr);
    assert_eq!(cache_hits(&changed).0, 0, "another limit is another key");
    let same = verify(path, cache.path(), false, &[]);
    let (hits, all) = cache_hits(&same);
    assert_eq!(hits, all);
    // A run with binaries to spill cannot use entries stored without them.
    let with_runs = verify(path, cache.path(), true, &[]);
    assert_eq!(cache_hits(&with_runs).0, 0);
    let none = TempDir::new().unwrap();
    let out = verify(path, none.path(), false, &["--no-cache"]);
    assert_eq!(out.code, 0);
    assert!(entries(none.path()).is_empty(), "--no-cache stores nothing");
}

#[test]
fn xdg_cache_home_is_the_default_place() {
    let path = &images().multi_layout;
    let home = TempDir::new().unwrap();
    // Verifying no image creates nothing there.
    let mut plain = harness::command();
    plain
        .env("XDG_CACHE_HOME", home.path())
        .args(["--no-run", "/bin/true"]);
    harness::run_cmd(plain);
    assert!(!home.path().join("mab-verify").exists());
    let mut cmd = harness::command();
    cmd.env("XDG_CACHE_HOME", home.path())
        .args(["--format", "json", "--no-run"])
        .arg(path);
    let out = harness::run_cmd(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!entries(&home.path().join("mab-verify")).is_empty());
}

/// A home that does not exist (a Nix build's `/homeless-shelter`) is never created: the next
/// unsandboxed Nix build would refuse to start. The run goes on without a cache.
#[test]
fn a_home_that_does_not_exist_is_not_created() {
    let dir = TempDir::new().unwrap();
    let home = dir.path().join("homeless-shelter");
    let mut cmd = harness::command();
    cmd.env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .args(["--format", "json", "--no-run"])
        .arg(&images().multi_layout);
    let out = harness::run_cmd(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!home.exists(), "{} was created", home.display());
}

/// `assemble` reads each input layer once and keeps its facts under the digest it writes;
/// its own verification, `gate` and `push` of the result then only hash the blobs.
#[test]
fn assemble_gate_and_push_inflate_each_layer_once() {
    use crate::support::{images::MULTI_ROWS, row};
    let dir = TempDir::new().unwrap();
    let cache = dir.path().join("cache");
    let archive = dir.path().join("app.oci.tar");
    let with_cache = |cmd: &mut std::process::Command| {
        cmd.args(["--format", "json", "--cache-dir"]).arg(&cache);
    };
    let mut assemble = harness::command();
    assemble.arg("assemble").arg("-o").arg(&archive);
    with_cache(&mut assemble);
    for key in MULTI_ROWS {
        assemble.arg(images().docker_archive_for(row(key)).unwrap());
    }
    let assembled = harness::run_cmd(assemble);
    assert_eq!(assembled.code, 0, "{}", assembled.stderr);
    let (hits, all) = cache_hits(&assembled);
    assert_eq!(
        (hits, all),
        (2 * MULTI_ROWS.len(), 2 * MULTI_ROWS.len()),
        "assemble's own verification took the facts its single read kept"
    );
    // Each entrypoint runs once, in assemble's own verification; gate and push read those.
    let platforms = MULTI_ROWS.len();
    assert_eq!(run_hits(&assembled), (0, platforms), "{}", assembled.stderr);

    let mut gate = harness::command();
    gate.arg("gate").arg(&archive);
    with_cache(&mut gate);
    gate.args(["--", "true"]);
    let gated = harness::run_cmd(gate);
    assert_eq!(gated.code, 0, "{}", gated.stderr);
    let (hits, all) = cache_hits(&gated);
    assert_eq!(hits, all, "gate: {}", gated.stderr);
    assert_eq!(run_hits(&gated), (platforms, platforms), "{}", gated.stderr);
    let mut cold = harness::command();
    cold.arg("gate")
        .arg(&archive)
        .args(["--format", "json", "--no-cache", "--", "true"]);
    let cold = harness::run_cmd(cold);
    assert_same(
        &normalized(&gated),
        &normalized(&cold),
        "gate warm vs --no-cache",
    );

    let registry = harness::registry::Registry::start(None);
    let mut push = harness::command();
    push.arg("push")
        .arg(&archive)
        .arg(format!("{}/app:v1", registry.addr))
        .arg("--plain-http");
    with_cache(&mut push);
    let pushed = harness::run_cmd(push);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let (hits, all) = cache_hits(&pushed);
    assert!(
        all > 0 && hits == all,
        "push: {hits} of {all}\n{}",
        pushed.stderr
    );
    assert_eq!(
        run_hits(&pushed),
        (platforms, platforms),
        "{}",
        pushed.stderr
    );
}

/// Each image's run as the report gives it: (artifact path, whether it came from the cache),
/// for every artifact that ran.
fn runs(outcome: &Outcome) -> Vec<(String, bool)> {
    let v = outcome.json();
    v["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["run"]["state"] == "ran")
        .map(|a| {
            let path = a["path"].as_str().unwrap_or_default().to_string();
            (path, a["run"]["from_cache"] == Value::Bool(true))
        })
        .collect()
}

fn run_hits(outcome: &Outcome) -> (usize, usize) {
    let r = runs(outcome);
    (r.iter().filter(|(_, hit)| *hit).count(), r.len())
}

/// The rows of the multi-platform fixture that run under qemu here, with their OCI layouts.
fn foreign_layouts() -> Vec<(&'static mab_verify::platform::Arch, PathBuf)> {
    images()
        .oci_layout
        .iter()
        .filter(|(arch, _)| !arch.runs_natively())
        .map(|(a, p)| (*a, p.clone()))
        .collect()
}

#[test]
fn a_warm_verify_takes_every_run_from_the_cache_and_judges_it_afresh() {
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    let cold = verify(path, cache.path(), true, &[]);
    assert_eq!(cold.code, 0, "{}", cold.stderr);
    let (hits, all) = run_hits(&cold);
    assert!(all >= 3, "every platform ran: {:?}", runs(&cold));
    assert_eq!(hits, 0, "a cold cache has no runs");
    let warm = verify(path, cache.path(), true, &[]);
    assert_eq!(warm.code, cold.code, "{}", warm.stderr);
    assert_eq!(run_hits(&warm), (all, all), "{}", warm.stderr);
    assert!(
        warm.stderr.contains("runs' outcomes from the cache"),
        "{}",
        warm.stderr
    );
    assert_same(&normalized(&warm), &normalized(&cold), "warm vs cold");
    let none = verify(path, cache.path(), true, &["--no-cache"]);
    assert_eq!(run_hits(&none), (0, all), "--no-cache runs everything");
    assert_same(&normalized(&none), &normalized(&cold), "--no-cache vs cold");

    // Another expected output is judged from the stored outcome: no new run, a new verdict.
    let other = verify(
        path,
        cache.path(),
        true,
        &["--expect-output", "Goodbye from {os}/{arch}!"],
    );
    assert_eq!(other.code, 1, "{}", other.stderr);
    assert_eq!(run_hits(&other), (all, all));
    let v = other.json();
    let failed_output = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["checks"].as_array().into_iter().flatten())
        .filter(|c| c["id"] == "run.output" && c["status"] == "fail")
        .count();
    assert_eq!(failed_output, all, "every stored stdout was compared again");

    // The human report says which run is an earlier one.
    let mut human = harness::command();
    human.arg("--cache-dir").arg(cache.path()).arg(path);
    let human = harness::run_cmd(human);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert_eq!(
        human.stdout.matches("(earlier run, cached)").count(),
        all,
        "{}",
        human.stdout
    );
}

/// `--timeout` changes what a run may do: another limit is another key.
#[test]
fn a_changed_limit_runs_again() {
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    let cold = verify(path, cache.path(), true, &[]);
    let all = run_hits(&cold).1;
    let longer = verify(path, cache.path(), true, &["--timeout", "11"]);
    assert_eq!(longer.code, 0, "{}", longer.stderr);
    assert_eq!(run_hits(&longer), (0, all), "{}", longer.stderr);
    let again = verify(path, cache.path(), true, &["--timeout", "11"]);
    assert_eq!(run_hits(&again), (all, all));
    let args = verify(path, cache.path(), true, &["--args", "--version"]);
    assert_eq!(run_hits(&args).0, 0, "other arguments are another run");
}

/// The same image run by another qemu binary (a copy at another path, named by
/// `MAB_QEMU_<ARCH>`) is another runner.
#[test]
fn another_qemu_runs_again() {
    let (arch, layout) = foreign_layouts()
        .into_iter()
        .next()
        .expect("a foreign row in the fixtures");
    let qemu_name = format!("{}-static", arch.qemu);
    let installed = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(&qemu_name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{qemu_name} on PATH (scripts/setup installs qemu-user-static)"));
    let dir = TempDir::new().unwrap();
    let copy = dir.path().join(&qemu_name);
    std::fs::copy(&installed, &copy).unwrap();
    let cache = dir.path().join("cache");
    let with_qemu = |qemu: Option<&Path>| {
        let mut cmd = harness::command();
        cmd.args(["--format", "json", "--cache-dir"]).arg(&cache);
        if let Some(q) = qemu {
            cmd.env(arch.qemu_env_var(), q);
        }
        cmd.arg(&layout);
        harness::run_cmd(cmd)
    };
    let cold = with_qemu(None);
    assert_eq!(cold.code, 0, "{}", cold.stderr);
    assert_eq!(run_hits(&cold), (0, 1));
    assert_eq!(run_hits(&with_qemu(None)), (1, 1), "the same qemu hits");
    let copied = with_qemu(Some(&copy));
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    assert_eq!(
        run_hits(&copied),
        (0, 1),
        "another qemu runs: {}",
        copied.stderr
    );
    assert_eq!(run_hits(&with_qemu(Some(&copy))), (1, 1));
    // Replaced in place (same path, new bytes): another runner again.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.push(0);
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let replaced = with_qemu(Some(&copy));
    assert_eq!(replaced.code, 0, "{}", replaced.stderr);
    assert_eq!(run_hits(&replaced), (0, 1), "{}", replaced.stderr);
}

fn tool(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("the tool starts");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One byte more at the end of the entrypoint (umoci unpacks the image and inserts the grown
/// copy over it as a new layer): the run sees other bytes and must run again.
#[test]
fn a_changed_binary_byte_runs_again() {
    use crate::support::images::TAG;
    let (arch, _) = foreign_layouts().into_iter().next().unwrap();
    let layout = images().umoci_layout_for(arch).expect("a umoci layout");
    let dir = TempDir::new().unwrap();
    let cache = dir.path().join("cache");
    let copy = dir.path().join("layout");
    tool(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(layout)
            .arg(&copy),
    );
    let cold = verify(&copy, &cache, true, &[]);
    assert_eq!(cold.code, 0, "{}", cold.stderr);
    assert_eq!(run_hits(&cold), (0, 1));
    assert_eq!(run_hits(&verify(&copy, &cache, true, &[])), (1, 1));
    let entry = cold.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["image"]["entrypoint"].as_str().map(str::to_string))
        .expect("the report names the entrypoint");

    let image = format!("{}:{TAG}", copy.display());
    let bundle = dir.path().join("bundle");
    tool(
        std::process::Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle),
    );
    let mut bytes =
        std::fs::read(bundle.join("rootfs").join(entry.trim_start_matches('/'))).unwrap();
    bytes.push(0);
    let grown = dir.path().join("grown");
    std::fs::write(&grown, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&grown, std::fs::Permissions::from_mode(0o755)).unwrap();
    tool(
        std::process::Command::new("umoci")
            .args(["insert", "--rootless", "--image", &image])
            .arg(&grown)
            .arg(&entry),
    );
    let changed = verify(&copy, &cache, true, &[]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    let sha = changed.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["image"]["entrypoint_sha256"].as_str().map(str::to_string));
    assert_eq!(
        sha.as_deref(),
        Some(mab_verify::inspect::sha256_hex(&bytes).as_str()),
        "the entrypoint is the grown one"
    );
    assert_eq!(run_hits(&changed), (0, 1), "{}", changed.stderr);
}

#[rstest]
#[case::corrupted(false)]
#[case::truncated(true)]
fn a_damaged_run_entry_is_ignored_and_rebuilt(#[case] truncate: bool) {
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    let cold = verify(path, cache.path(), true, &[]);
    let all = run_hits(&cold).1;
    let stored: Vec<PathBuf> = std::fs::read_dir(cache.path().join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(stored.len(), all, "one entry per run");
    let victim = &stored[0];
    let mut bytes = std::fs::read(victim).unwrap();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    } else {
        // Still valid JSON: the exit code 0 becomes 7, so only the checksum sees it.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"exit_code\":0"), "{text}");
        bytes = text
            .replace("\"exit_code\":0", "\"exit_code\":7")
            .into_bytes();
    }
    std::fs::write(victim, &bytes).unwrap();
    let warm = verify(path, cache.path(), true, &[]);
    assert_eq!(warm.code, cold.code, "{}", warm.stderr);
    assert_same(&normalized(&warm), &normalized(&cold), "warm vs cold");
    assert_eq!(run_hits(&warm), (all - 1, all), "the damaged run ran again");
    let again = verify(path, cache.path(), true, &[]);
    assert_eq!(run_hits(&again), (all, all), "the entry was rebuilt");
}

/// A report with cached runs satisfies the committed schema, which names the mark.
#[test]
fn a_report_with_cached_runs_matches_the_schema() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/report.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let ran = schema["$defs"]["run"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["properties"]["state"]["const"] == "ran")
        .expect("the schema has a ran case");
    assert_eq!(ran["properties"]["from_cache"]["type"], "boolean");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let path = &images().multi_layout;
    let cache = TempDir::new().unwrap();
    verify(path, cache.path(), true, &[]);
    let warm = verify(path, cache.path(), true, &[]);
    assert!(run_hits(&warm).0 > 0);
    let report = warm.json();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // A wrong type for the mark is caught: the schema really constrains it.
    let mut bad = report.clone();
    for a in bad["artifacts"].as_array_mut().unwrap() {
        if a["run"]["state"] == "ran" {
            a["run"]["from_cache"] = Value::String("yes".into());
        }
    }
    assert!(!validator.is_valid(&bad));
}
