//! Check dependencies and statuses: one cause gives one failure, "does not apply" is its own status.

use crate::harness;

use harness::{mab, status_of};

#[test]
fn a_binary_for_another_machine_fails_once() {
    // /bin/true is the host's (amd64 here); held to arm64 its loader, libraries and run do not
    // apply, and it is not run at all.
    let host = mab_verify::platform::Arch::host().expect("the host is a row");
    let other = mab_verify::platform::ARCHES
        .iter()
        .find(|a| !a.same_machine(host))
        .unwrap();
    let expect = mab_verify::platform::Platform::linux(other).oci();
    let out = mab(["--format", "json", "--expect", &expect, "/bin/true"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let json = out.json();
    let a = &json["artifacts"][0];
    assert_eq!(status_of(a, "elf.machine"), "fail");
    for id in mab_verify::check::NEEDS_MACHINE {
        assert_eq!(status_of(a, id), "not-applicable", "{id}: {a:#}");
    }
    assert_eq!(a["run"]["state"], "not-run");
    let fails: Vec<&str> = a["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!fails.iter().any(|id| id.starts_with("run.")), "{fails:?}");
    // Besides what the wrong machine makes moot, only elf.impure does not apply: /bin/true is
    // not a Nix output.
    let mut not_applicable = not_applicable_ids(a);
    not_applicable.retain(|id| *id != "elf.impure");
    let mut needs_machine: Vec<&str> = mab_verify::check::NEEDS_MACHINE.to_vec();
    needs_machine.sort();
    assert_eq!(not_applicable, needs_machine);
}

fn not_applicable_ids(artifact: &serde_json::Value) -> Vec<&str> {
    let mut ids: Vec<&str> = artifact["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "not-applicable")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_binary_for_this_machine_has_only_the_nix_check_not_applicable() {
    let out = mab(["--format", "json", "--expect-output", "none", "/bin/true"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let json = out.json();
    // /bin/true is not a Nix output, so elf.impure does not apply; nothing else may be moot.
    assert_eq!(not_applicable_ids(&json["artifacts"][0]), ["elf.impure"]);
    assert_eq!(json["summary"]["not_applicable"], 1);
    assert_eq!(json["summary"]["skip"], 0, "{json:#}");
}

#[rstest::rstest]
fn completions_name_every_subcommand(#[values("bash", "zsh", "fish")] shell: &str) {
    let out = mab(["completions", shell]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for sub in ["gate", "push", "assemble", "merge-reports", "platforms"] {
        assert!(out.stdout.contains(sub), "{shell}: no {sub}");
    }
    assert!(out.stdout.contains("--expect"), "{shell}");
}

#[test]
fn the_man_page_is_roff() {
    let out = mab(["man"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(".TH mab-verify 1"), "{}", out.stdout);
    assert!(out.stdout.contains(".SH SUBCOMMANDS"), "{}", out.stdout);
    assert!(out.stdout.contains("gate"));
    let bad = mab(["completions", "tcsh"]);
    assert_eq!(bad.code, 2);
}

#[rstest::rstest]
#[case("linux/x86_64")]
#[case("x86_64")]
fn containerd_aliases_are_accepted_and_reported_normalised(#[case] alias: &str) {
    // /bin/true is amd64 on the machines this suite runs on.
    let out = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        alias,
        "/bin/true",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.json()["artifacts"][0]["expected"]["platform"],
        "linux/amd64"
    );
}

#[test]
fn aliases_name_an_image_platform_too() {
    let out = mab([
        "--no-run",
        "--platform",
        "linux/aarch64",
        "--expect",
        "arm64/v8",
        "/bin/true",
    ]);
    out.assert_no_panic();
    assert_ne!(out.code, 2, "{}", out.stderr);
}

#[test]
fn quiet_prints_only_failures_and_the_verdict() {
    let ok = mab(["--quiet", "--expect-output", "none", "/bin/true"]);
    assert_eq!(ok.code, 0);
    assert_eq!(ok.stdout.lines().count(), 1, "{}", ok.stdout);
    assert!(ok.stdout.starts_with("PASS"), "{}", ok.stdout);
    let bad = mab(["-q", "--expect", "linux/arm64", "/bin/true"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("fail elf.machine"), "{}", bad.stdout);
    assert!(!bad.stdout.contains("elf.format"), "{}", bad.stdout);
}

#[test]
fn clicolor_force_colours_and_no_color_wins() {
    let mut c = harness::command();
    c.env_remove("NO_COLOR").env("CLICOLOR_FORCE", "1").args([
        "--expect-output",
        "none",
        "/bin/true",
    ]);
    let out = harness::run_cmd(c);
    assert!(out.stdout.contains("\x1b["), "{}", out.stdout);
    let mut c = harness::command();
    c.env("CLICOLOR_FORCE", "1")
        .args(["--expect-output", "none", "/bin/true"]);
    let out = harness::run_cmd(c);
    assert!(
        !out.stdout.contains("\x1b["),
        "NO_COLOR=1 is set by command()"
    );
}
