//! Snapshots of the human and JSON reports, with insta filters for what differs between
//! machines and runs (fixture paths, hashes, sizes, timings), so they hold on any machine.

use crate::harness;
use crate::support;

use harness::{command, run_cmd};
use support::{fixtures, row};

/// The snapshot settings with insta's filters, fixture paths among them.
fn filtered() -> insta::Settings {
    let dir = fixtures().dir.display().to_string();
    harness::filtered_settings(&[(dir.as_str(), "[fixtures]")])
}

/// Fixture paths relative to the fixture dir, as a user in that directory would type them.
fn rel(path: &std::path::Path) -> String {
    path.strip_prefix(&fixtures().dir)
        .expect("inside the fixture dir")
        .display()
        .to_string()
}

/// A passing binary next to one linked with another platform's loader, headers only.
fn inspect_command(format: &str) -> std::process::Command {
    let f = fixtures();
    let hello = f.hello_for(row("aarch64-linux")).expect("aarch64 hello");
    let wrong = f
        .broken
        .wrong_loader
        .as_ref()
        .expect("wrong-loader fixture");
    let mut cmd = command();
    cmd.current_dir(&f.dir)
        .args(["--no-run", "--format", format, &rel(hello), &rel(wrong)]);
    cmd
}

/// One run that passes, one that exits 1, and one platform with no emulator.
fn mixed_run_command(format: &str) -> std::process::Command {
    let f = fixtures();
    let aarch64 = row("aarch64-linux");
    let riscv = row("riscv64-linux");
    let mut cmd = command();
    cmd.current_dir(&f.dir)
        .env(riscv.qemu_env_var(), "/nonexistent/qemu-riscv64")
        .args([
            "--format",
            format,
            &rel(f.hello_for(aarch64).unwrap()),
            &rel(&f.misbehaving_for(aarch64).unwrap().exit_one),
            &rel(f.hello_for(riscv).unwrap()),
        ]);
    cmd
}

#[test]
fn human_report_of_a_pass_and_a_wrong_loader() {
    let out = run_cmd(inspect_command("human"));
    assert_eq!(out.code, 1);
    filtered().bind(|| insta::assert_snapshot!("inspect_human", out.stdout));
}

#[test]
fn json_report_of_a_pass_and_a_wrong_loader() {
    let out = run_cmd(inspect_command("json"));
    assert_eq!(out.code, 1);
    filtered().bind(|| insta::assert_snapshot!("inspect_json", out.stdout));
}

#[test]
fn human_report_of_a_mixed_pass_fail_skip_run() {
    let out = run_cmd(mixed_run_command("human"));
    assert_eq!(out.code, 1);
    filtered().bind(|| insta::assert_snapshot!("run_mixed_human", out.stdout));
}

#[test]
fn json_report_of_a_mixed_pass_fail_skip_run() {
    let out = run_cmd(mixed_run_command("json"));
    assert_eq!(out.code, 1);
    filtered().bind(|| insta::assert_snapshot!("run_mixed_json", out.stdout));
}
