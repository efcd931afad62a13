//! Settings resolved once, end to end: bad values are exit 2 naming the key, flags beat
//! `mab.toml`, every verifying command takes the verify flags, and `--expect` is a set.

use crate::harness;
use crate::support;

use harness::{command, mab, run_cmd};
use rstest::rstest;
use std::path::Path;
use support::images::images;

fn with_config(toml: &str, args: &[&str]) -> harness::Outcome {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mab.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    mab(all)
}

#[rstest]
fn a_bad_number_in_mab_toml_is_exit_2_naming_the_key(
    #[values(
        "run.timeout_secs",
        "run.output_cap_bytes",
        "platform.\"linux/amd64\".timeout_secs",
        "limits.max_json_bytes",
        "limits.max_nesting"
    )]
    key: &str,
    #[values("-1", "nan", "1e30", "\"abc\"", "99999999999999999999")] value: &str,
) {
    let (section, name) = key.rsplit_once('.').unwrap();
    let out = with_config(&format!("[{section}]\n{name} = {value}\n"), &["/bin/true"]);
    out.assert_no_panic();
    assert_eq!(out.code, 2, "{key} = {value}: {}", out.stderr);
    assert!(out.stderr.contains(name), "{key} = {value}: {}", out.stderr);
}

#[rstest]
fn a_bad_timeout_flag_is_exit_2_naming_the_flag(
    #[values("-1", "0", "nan", "inf", "1e30", "abc", "")] value: &str,
) {
    let out = mab(["--timeout", value, "/bin/true"]);
    out.assert_no_panic();
    assert_eq!(out.code, 2, "--timeout {value}: {}", out.stderr);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}

#[test]
fn flags_beat_mab_toml_for_args_and_output() {
    // /bin/echo prints its arguments: the run shows which arguments won.
    let toml = "[run]\nargs = [\"config\"]\nexpect_output = \"config\"\n";
    let out = with_config(toml, &["--format", "json", "/bin/echo"]);
    assert_eq!(out.code, 0, "the config applies: {}", out.stdout);
    assert_eq!(out.json()["artifacts"][0]["run"]["stdout"], "config\n");
    let flags = ["--args", "flag", "--expect-output", "flag"];
    let out = with_config(
        toml,
        &[&["--format", "json"][..], &flags, &["/bin/echo"]].concat(),
    );
    assert_eq!(out.code, 0, "flags win: {}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["artifacts"][0]["run"]["stdout"], "flag\n");
    let regex = ["--expect-output-regex", "^fl.g$", "--args", "flag"];
    let out = with_config(toml, &[&regex[..], &["/bin/echo"]].concat());
    assert_eq!(
        out.code, 0,
        "a flag regex beats a config template: {}",
        out.stdout
    );
}

#[test]
fn the_timeout_flag_beats_mab_toml() {
    let toml = "[run]\nargs = [\"1\"]\nexpect_output = \"none\"\ntimeout_secs = 0.2\n";
    let out = with_config(toml, &["--format", "json", "/bin/sleep"]);
    assert_eq!(out.code, 1, "the config's timeout applies: {}", out.stdout);
    assert_eq!(out.json()["artifacts"][0]["run"]["timed_out"], true);
    let out = with_config(toml, &["--format", "json", "--timeout", "20", "/bin/sleep"]);
    assert_eq!(out.code, 0, "the flag's timeout wins: {}", out.stdout);
}

#[test]
fn a_flag_beats_a_platform_table_for_run_args() {
    let host = mab_verify::platform::Arch::host().expect("the host is a row");
    let name = mab_verify::platform::Platform::linux(host).oci();
    let toml = format!("[platform.\"{name}\"]\nargs = [\"table\"]\nexpect_output = \"none\"\n");
    let out = with_config(&toml, &["--format", "json", "--args", "flag", "/bin/echo"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["artifacts"][0]["run"]["stdout"], "flag\n");
}

#[test]
fn a_report_that_cannot_be_written_is_exit_2() {
    let out = mab([
        "--no-run",
        "--report",
        "junit=/nonexistent/dir/x.xml",
        "/bin/true",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/dir/x.xml"),
        "{}",
        out.stderr
    );
    let out = mab(["--report", "yaml=x.yaml", "/bin/true"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--report"), "{}", out.stderr);
}

fn gate(artifact: &Path, extra: &[&str], marker: &Path) -> harness::Outcome {
    let mut c = command();
    c.arg("gate")
        .arg(artifact)
        .args(extra)
        .args(["--", "touch"])
        .arg(marker);
    run_cmd(c)
}

#[test]
fn gate_takes_expect_and_refuses_a_missing_platform() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("published");
    let archive = &images().multi_archive;
    let out = gate(archive, &["--no-run", "--expect", "linux/riscv64"], &marker);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(!marker.exists(), "the command ran without linux/riscv64");
    // Every platform it has, named in any form: the command runs.
    let mut args = vec!["--no-run".to_string()];
    for arch in &images().multi_rows {
        args.push("--expect".into());
        args.push(arch.nix_system());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gate(archive, &args, &marker);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(marker.exists());
}

#[test]
fn push_and_assemble_take_the_verify_flags() {
    for sub in [
        &["push", "x.oci.tar", "127.0.0.1:1/x:y"][..],
        &["assemble", "-o", "x.oci.tar", "in.tar"][..],
        &["build"][..],
        &["demo"][..],
    ] {
        let mut c = command();
        c.args(sub)
            .args(["--expect", "linux/arm64", "--platform", "linux/arm64"])
            .args(["--require-run", "--args", "x", "--timeout", "nan"]);
        let out = run_cmd(c);
        assert_eq!(out.code, 2, "{sub:?}: {}", out.stderr);
        // The flags parse; the bad timeout is what stops it.
        assert!(
            out.stderr.contains("--timeout NaN"),
            "{sub:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn every_expected_platform_must_be_among_the_binaries() {
    // /bin/true is of the host's platform: amd64 on the machines this suite runs on.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::copy("/bin/true", dir.path().join("bin/app")).unwrap();
    let d = dir.path().to_str().unwrap();
    let one = mab(["--no-run", "--format", "json", "--expect", "linux/amd64", d]);
    assert_eq!(one.code, 0, "{}", one.stdout);
    let both = mab([
        "--no-run",
        "--format",
        "json",
        "--expect",
        "linux/amd64",
        "--expect",
        "linux/arm64",
        d,
    ]);
    assert_eq!(both.code, 1, "{}", both.stdout);
    let set = both.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "set")
        .cloned()
        .expect("an artifact for the expected set");
    let c = harness::check_of(&set, "index.expected");
    assert_eq!(c["status"], "fail");
    assert!(
        c["message"].as_str().unwrap().contains("linux/arm64"),
        "{c}"
    );
}

#[rstest]
#[case("plaforms", "platforms")]
#[case("pussh", "push")]
#[case("gat", "gate")]
fn a_mistyped_subcommand_is_named(#[case] typed: &str, #[case] meant: &str) {
    let out = mab([typed]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("did you mean `mab-verify {meant}`")),
        "{}",
        out.stderr
    );
    // A real file of that name is verified, not second-guessed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/true", dir.path().join(typed)).unwrap();
    let mut c = command();
    c.current_dir(dir.path()).args(["--no-run", typed]);
    assert_eq!(run_cmd(c).code, 0);
}

#[test]
fn refusals_are_exit_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("published");
    let out = gate(&images().broken.lying_config, &["--no-run"], &marker);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("did not verify; not running touch"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists());
}
