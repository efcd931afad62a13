//! Publishing exactly the verified bytes: the gated command gets a private read-only copy,
//! a sealed run cannot change the artifact, two assembles into one output never both succeed,
//! and GitHub annotations cannot be injected by data.

use crate::harness;
use crate::support;

use harness::{command, run_cmd};
use std::os::unix::fs::PermissionsExt;

/// `gate` on a small directory artifact holding a host binary.
fn artifact(dir: &std::path::Path) -> std::path::PathBuf {
    let a = dir.join("out");
    std::fs::create_dir_all(a.join("bin")).unwrap();
    std::fs::copy("/bin/cp", a.join("bin/cp")).unwrap();
    std::fs::write(a.join("data.txt"), "original").unwrap();
    a
}

#[test]
fn the_gated_command_gets_a_private_read_only_copy_of_the_verified_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = artifact(dir.path());
    let seen = dir.path().join("seen");
    let mut c = command();
    c.arg("gate")
        .arg(&a)
        .arg("--no-run")
        .args(["--", "sh", "-c"])
        .arg(format!(
            "printf '%s\\n' \"$MAB_VERIFIED_PATH\" > {0}; cat \"$MAB_VERIFIED_PATH/data.txt\" >> {0}; echo >> {0}; stat -c %a \"$MAB_VERIFIED_PATH\" \"$MAB_VERIFIED_PATH/data.txt\" \"$(dirname \"$MAB_VERIFIED_PATH\")\" >> {0}",
            seen.display()
        ));
    let out = run_cmd(c);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let text = std::fs::read_to_string(&seen).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let copy = std::path::Path::new(lines[0]);
    assert_ne!(copy, a.as_path(), "a copy, not the original");
    assert_eq!(lines[1], "original");
    // Read-only files and directories, inside a directory only this user can enter.
    assert_eq!(&lines[2..], ["555", "444", "700"], "{text}");
    assert!(!copy.exists(), "the copy is removed after the command");
}

#[test]
fn a_sealed_run_cannot_change_the_artifact_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let a = artifact(dir.path());
    // The binary under test is cp; its arguments overwrite the artifact's own data.
    let cfg = dir.path().join("mab.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nargs = [\"/etc/hostname\", \"{}\"]\nexpect_output = \"none\"\n",
            a.join("data.txt").display()
        ),
    )
    .unwrap();
    let marker = dir.path().join("published");
    let mut c = command();
    c.arg("gate")
        .arg(&a)
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--", "touch"])
        .arg(&marker);
    let out = run_cmd(c);
    assert_eq!(
        std::fs::read_to_string(a.join("data.txt")).unwrap(),
        "original"
    );
    // The gate verifies its private copy, so the sealed run sees that copy and not the
    // original's directory at all: cp cannot even reach the path it is given, the run
    // fails, and the command does not run.
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("No such file or directory"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(!marker.exists());
}

#[test]
fn workflow_commands_cannot_be_injected_through_names() {
    // A symlink target is reported verbatim in a failing check; make it a workflow command.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("result");
    std::fs::create_dir_all(out_dir.join("bin")).unwrap();
    let evil = out_dir
        .join("bin")
        .join("app\n::error title=owned::injected%0A");
    std::fs::write(&evil, b"\x7fELF\x02\x01\x01garbage").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = command();
    c.env("GITHUB_ACTIONS", "true")
        .args(["--no-run", "--format", "human"])
        .arg(&out_dir);
    let out = run_cmd(c);
    // Lines between `::stop-commands::T` and `::T::` are not commands to GitHub.
    let mut fence: Option<String> = None;
    let mut commands = Vec::new();
    for l in out.stdout.lines() {
        match &fence {
            Some(t) if l == format!("::{t}::") => fence = None,
            Some(_) => {}
            None => match l.strip_prefix("::stop-commands::") {
                Some(t) => fence = Some(t.to_string()),
                None if l.starts_with("::") => commands.push(l.to_string()),
                None => {}
            },
        }
    }
    assert!(!commands.is_empty(), "{}{}", out.stdout, out.stderr);
    for l in &commands {
        assert!(!l.starts_with("::error title=owned"), "injected: {l}");
    }
    // The name arrives escaped, not interpreted: '%' first, then the line break.
    assert!(out.stdout.contains("%250A"), "{}", out.stdout);
}

/// Two assembles into one output at once: at most one reports success, and whatever sits at
/// the output is a whole archive that verifies (skopeo reads it).
#[test]
fn two_assembles_into_one_output_never_both_succeed() {
    use support::images::images;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.oci.tar");
    for round in 0..3 {
        let _ = std::fs::remove_file(&out);
        let start = |keys: &[&str]| {
            let mut c = command();
            c.arg("assemble").arg("--no-run").arg("-o").arg(&out);
            for k in keys {
                c.arg(images().docker_archive_for(support::row(k)).unwrap());
            }
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = start(&["x86_64-linux", "aarch64-linux"]);
        let b = start(&["x86_64-linux", "armv7l-linux"]);
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let ok = [a.status.success(), b.status.success()];
        assert!(
            ok.iter().filter(|o| **o).count() <= 1,
            "round {round}: both succeeded"
        );
        for o in [&a, &b] {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!e.contains("panicked"), "{e}");
        }
        if ok.contains(&true) {
            let raw = std::process::Command::new("skopeo")
                .args(["--insecure-policy", "inspect", "--raw"])
                .arg(format!("oci-archive:{}", out.display()))
                .output()
                .unwrap();
            assert!(
                raw.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&raw.stderr)
            );
            let mut v = command();
            v.args(["--no-run", "--format", "json"]).arg(&out);
            assert_eq!(
                run_cmd(v).code,
                0,
                "round {round}: the output does not verify"
            );
        }
        let partial: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(partial.is_empty(), "left: {partial:?}");
    }
}
