//! Byte progress: plain lines naming each blob and its size when stderr is a pipe, a live bar
//! under a pty, nothing with `--quiet`; for verify's layer reads, assemble's writing and
//! push's uploads.

use crate::harness::{self, command, mab, run_cmd};
use crate::support::{images::images, row};
use std::path::Path;

/// `layer sha256:<12 hex>: <size> in <secs>s (<rate>/s)`, the line a finished read leaves.
fn finished_lines<'a>(stderr: &'a str, what: &str) -> Vec<&'a str> {
    let re = regex::Regex::new(&format!(
        r"^{what} .+: \d+(\.\d+)? (B|KiB|MiB|GiB) in \d+\.\ds \(\d+(\.\d+)? (B|KiB|MiB|GiB)/s\)$"
    ))
    .unwrap();
    stderr.lines().filter(|l| re.is_match(l)).collect()
}

fn layer_digests(archive: &Path) -> Vec<String> {
    let out = mab(["--no-run", "--format", "json", archive.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let mut digests = Vec::new();
    for a in json["artifacts"].as_array().unwrap() {
        for l in a["image"]["layers"].as_array().into_iter().flatten() {
            digests.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    digests
}

#[test]
fn a_piped_stderr_gets_one_line_per_layer_naming_digest_and_size() {
    let archive = images().docker_archive_for(row("x86_64-linux")).unwrap();
    let out = mab(["--no-run", archive.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines = finished_lines(&out.stderr, "layer");
    let digests = layer_digests(archive);
    assert!(!digests.is_empty());
    for d in &digests {
        let short = &d["sha256:".len()..][..12];
        assert_eq!(
            lines.iter().filter(|l| l.contains(short)).count(),
            1,
            "one line for layer {d}: {}",
            out.stderr
        );
    }
    // The archive is gzipped: unpacking it is a step of its own, with its compressed size.
    let unpacking = finished_lines(&out.stderr, "decompressing");
    assert_eq!(unpacking.len(), 1, "{}", out.stderr);
    let size = std::fs::metadata(archive).unwrap().len();
    assert!(
        unpacking[0].contains(&format!(": {} in ", indicatif::HumanBytes(size))),
        "{unpacking:?}"
    );
    let quiet = mab(["--no-run", "--quiet", archive.to_str().unwrap()]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(
        !quiet.stderr.contains("layer sha256:"),
        "--quiet shows no progress: {}",
        quiet.stderr
    );
}

#[test]
fn assemble_reports_its_writing_and_push_its_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("app.oci.tar");
    let mut assemble = command();
    assemble.args(["assemble", "--no-run", "-o"]).arg(&archive);
    for key in ["x86_64-linux", "aarch64-linux"] {
        assemble.arg(images().docker_archive_for(row(key)).unwrap());
    }
    let out = run_cmd(assemble);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let written = std::fs::metadata(&archive).unwrap().len();
    let writing = finished_lines(&out.stderr, "writing");
    assert_eq!(writing.len(), 1, "{}", out.stderr);
    assert!(writing[0].contains("app.oci.tar"), "{writing:?}");
    // The line's size is the archive's, in binary units.
    let shown = indicatif::HumanBytes(written).to_string();
    assert!(
        writing[0].contains(&format!(": {shown} in ")),
        "{writing:?} {shown}"
    );

    let reg = harness::registry::Registry::start(None);
    let reference = format!("{}/progress:v1", reg.addr);
    let mut push = command();
    push.arg("push")
        .arg(&archive)
        .arg(&reference)
        .args(["--plain-http", "--no-run"]);
    let out = run_cmd(push);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let uploads = finished_lines(&out.stderr, "uploading");
    // Every blob of the layout except the manifests and index goes up as a file.
    let blobs = std::fs::read_dir(reg_free_layout_blobs(&archive, dir.path()))
        .unwrap()
        .count();
    assert!(
        !uploads.is_empty() && uploads.len() < blobs,
        "{} uploads of {blobs} blobs: {}",
        uploads.len(),
        out.stderr
    );
    for line in &uploads {
        assert!(line.starts_with("uploading sha256:"), "{line}");
    }
}

/// The blobs directory of `archive` unpacked under `scratch`.
fn reg_free_layout_blobs(archive: &Path, scratch: &Path) -> std::path::PathBuf {
    let into = scratch.join("unpacked");
    std::fs::create_dir_all(&into).unwrap();
    tar::Archive::new(std::fs::File::open(archive).unwrap())
        .unpack(&into)
        .unwrap();
    into.join("blobs/sha256")
}

/// Under a pty (util-linux `script`) the reads are bars redrawn in place, not log lines.
#[test]
fn a_terminal_gets_live_bars_instead_of_lines() {
    let archive = images().docker_archive_for(row("x86_64-linux")).unwrap();
    let inner = format!(
        "{} --no-run {}",
        env!("CARGO_BIN_EXE_mab-verify"),
        archive.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\x1b[2K"), "a bar clears its line: {text:?}");
    for d in layer_digests(archive) {
        let short = &d["sha256:".len()..][..12];
        assert!(
            text.contains(&format!("layer {short}")),
            "the bar names layer {d}: {text:?}"
        );
    }
    assert!(text.contains("B/s "), "the bar shows throughput: {text:?}");
    assert!(
        finished_lines(&text.replace('\r', ""), "layer").is_empty(),
        "no log lines on a terminal: {text:?}"
    );
    assert!(
        !text.contains("\x1b[3"),
        "NO_COLOR: no colour codes in the bars: {text:?}"
    );
}

/// `build --quiet` shows no nix progress either; without it the same build does.
#[test]
fn quiet_silences_the_nix_build_progress_too() {
    use crate::nix_versions::{NixVersion, nix};
    let Some(nix) = nix(NixVersion::Debian) else {
        return;
    };
    let host = crate::support::fixtures()
        .hello_for(crate::support::host_row())
        .unwrap();
    let system = crate::support::host_row().nix_system();
    for quiet in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let flake = dir.path().join("flake");
        std::fs::create_dir_all(&flake).unwrap();
        // A fresh derivation each time, so nix builds (and reports) it.
        let nonce = format!("{:?}{quiet}", std::time::SystemTime::now());
        std::fs::write(
            flake.join("flake.nix"),
            format!(
                r#"{{ outputs = {{ self }}: {{ packages.{system}.native = builtins.derivation {{
  system = "{system}"; name = "quiet-1.0"; nonce = "{nonce}"; builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out/bin; /bin/cp {host} $out/bin/multi-arch-demo" ];
}}; }}; }}
"#,
                host = host.display()
            ),
        )
        .unwrap();
        let mut cmd = command();
        cmd.env("NIX_CONFIG", "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nbuild-users-group =\n")
            .env("PATH", &nix.path)
            .args(["build", "--no-run", "--flake"])
            .arg(&flake);
        if quiet {
            cmd.arg("--quiet");
        }
        let out = run_cmd(cmd);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert_eq!(
            out.stderr.contains("nix: building quiet-1.0"),
            !quiet,
            "quiet={quiet}: {}",
            out.stderr
        );
    }
}
