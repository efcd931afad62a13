//! The repo's own Nix files, evaluated by the real nix with stub arguments (no nixpkgs here):
//! they produce the attributes users rely on, and default.nix's src holds what a build reads.

use crate::nix_versions;

use nix_versions::{NixVersion, nix};
use rstest::rstest;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn eval(expr: &str) -> Value {
    let out = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "eval",
            "--json",
            "--impure",
            "--expr",
            expr,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NIX_CONFIG", "build-users-group =\n")
        .output()
        .expect("nix is installed by scripts/setup");
    assert!(
        out.status.success(),
        "nix eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `lib.fileset` reduced to the list of paths it was given, as strings relative to the repo.
const STUB_LIB: &str = r#"{
  fileset = { toSource = { root, fileset }: map (p: builtins.replaceStrings [ (toString root + "/") ] [ "" ] (toString p)) fileset; unions = xs: xs; };
  platforms.linux = [ "x86_64-linux" ];
  licenses.mit = { spdxId = "MIT"; };
  escapeShellArg = s: "'" + s + "'";
  escapeShellArgs = xs: builtins.concatStringsSep " " (map (s: "'" + s + "'") xs);
}"#;

#[test]
fn default_nix_packages_the_tool_from_everything_a_build_reads() {
    let v = eval(&format!(
        "let lib = {STUB_LIB}; in import ./default.nix {{ inherit lib; rustPlatform.buildRustPackage = a: a; }}"
    ));
    assert_eq!(v["pname"], "mab-verify");
    assert_eq!(v["meta"]["mainProgram"], "mab-verify");
    assert_eq!(v["meta"]["license"]["spdxId"], "MIT");
    assert!(
        v["meta"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let src: Vec<String> = v["src"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    // What cargo reads to build the binary: the manifest, the lock, the sources, and the demo
    // sources compiled in with include_str!.
    for needed in ["Cargo.toml", "Cargo.lock", "src", "demo"] {
        assert!(
            src.contains(&needed.to_string()),
            "src lacks {needed}: {src:?}"
        );
    }
    for included in ["demo/hello.rs", "demo/hello.c"] {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo.rs")).unwrap();
        assert!(
            text.contains(&format!("../{included}")),
            "demo.rs no longer includes {included}; update this test and default.nix"
        );
    }
    assert_eq!(
        v["version"],
        env!("CARGO_PKG_VERSION"),
        "default.nix's version follows Cargo.toml"
    );
}

#[test]
fn the_demo_builds_its_binary_into_the_image_cmd() {
    let v = eval(
        r#"import ./nix/demo.nix {
             rustPlatform.buildRustPackage = a: a // { outPath = "/nix/store/00000000000000000000000000000000-multi-arch-demo-1.0.0"; };
             dockerTools.buildLayeredImage = a: a;
           }"#,
    );
    // A set with an outPath is its path in JSON, as in a string: the package itself.
    assert_eq!(
        v["myproject"],
        "/nix/store/00000000000000000000000000000000-multi-arch-demo-1.0.0"
    );
    let cmd = v["docker"]["config"]["Cmd"][0].as_str().unwrap();
    assert_eq!(
        cmd,
        "/nix/store/00000000000000000000000000000000-multi-arch-demo-1.0.0/bin/multi-arch-demo"
    );
}

#[test]
fn mk_multi_arch_image_runs_assemble_hermetically() {
    let v = eval(&format!(
        r#"let lib = {STUB_LIB};
               f = import ./nix/multi-arch-image.nix {{ inherit lib; mab-verify = "mab"; runCommand = name: env: script: {{ inherit name env script; }}; }};
           in f {{ name = "app"; tag = "v1"; images = [ "/nix/store/a.tar.gz" "/nix/store/b.tar.gz" ]; }}"#
    ));
    assert_eq!(v["name"], "app.oci.tar");
    let script = v["script"].as_str().unwrap();
    assert!(script.contains("mab-verify assemble"), "{script}");
    assert!(
        script.contains("'/nix/store/a.tar.gz' '/nix/store/b.tar.gz'")
            && script.contains("--tag 'v1'"),
        "{script}"
    );
    assert!(script.contains("-o \"$out\""), "{script}");
}

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The flake's own files in a fresh directory (the repo's target/ must not be copied in).
fn flake_copy(dir: &Path) {
    for f in ["flake.nix", "flake.lock"] {
        std::fs::copy(Path::new(REPO).join(f), dir.join(f)).unwrap();
    }
}

fn metadata(version: NixVersion, dir: &Path) -> Option<std::process::Output> {
    let nix = nix(version)?;
    Some(
        nix.command("nix")
            .args([
                "--extra-experimental-features",
                "nix-command flakes",
                "flake",
                "metadata",
                "--json",
                "--offline",
                "--no-update-lock-file",
            ])
            .arg(format!("path:{}", dir.display()))
            .env("NIX_CONFIG", "build-users-group =\n")
            .output()
            .unwrap(),
    )
}

/// flake.lock pins nixpkgs to a real published commit and matches flake.nix's inputs: nix
/// reads it as is, offline, without wanting to change it (both versions).
#[rstest]
fn the_committed_lock_matches_the_flake(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let dir = tempfile::tempdir().unwrap();
    flake_copy(dir.path());
    let Some(out) = metadata(version, dir.path()) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = &meta["locks"]["nodes"]["nixpkgs"];
    let rev = node["locked"]["rev"].as_str().unwrap();
    assert!(
        rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
        "{node:#}"
    );
    assert!(
        node["locked"]["narHash"]
            .as_str()
            .unwrap()
            .starts_with("sha256-"),
        "{node:#}"
    );
    assert_eq!(node["original"]["ref"], "nixos-unstable");

    // The check can fail: an input the lock does not cover is refused without network.
    let text = std::fs::read_to_string(dir.path().join("flake.nix")).unwrap();
    let moved = text.replace("nixos-unstable", "nixos-24.05");
    assert_ne!(moved, text);
    std::fs::write(dir.path().join("flake.nix"), moved).unwrap();
    let out = metadata(version, dir.path()).unwrap();
    assert!(!out.status.success(), "a stale lock is noticed");
}

/// default.nix against the real nixpkgs lib (not the stub above): it evaluates on the current
/// nix, and its src is exactly what cargo reads. nixpkgs.lib cannot be downloaded in CI; point
/// MAB_NIXPKGS_LIB at a checkout of github.com/nix-community/nixpkgs.lib to run this.
#[rstest]
fn default_nix_evaluates_with_the_real_nixpkgs_lib(
    #[values(NixVersion::Debian, NixVersion::Current)] version: NixVersion,
) {
    let Some(lib) = std::env::var_os("MAB_NIXPKGS_LIB") else {
        eprintln!(
            "\n!!!!! SKIPPED: MAB_NIXPKGS_LIB is not set (a nixpkgs.lib checkout; not downloadable in CI) !!!!!\n"
        );
        return;
    };
    let Some(nix) = nix(version) else { return };
    let expr = format!(
        r#"let lib = import {}/lib; p = import ./default.nix {{ inherit lib; rustPlatform.buildRustPackage = a: a; }};
           in {{ src = "${{p.src}}"; inherit (p) pname; license = p.meta.license.spdxId; }}"#,
        Path::new(&lib).display()
    );
    let out = nix
        .command("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "eval",
            "--json",
            "--impure",
            "--expr",
            &expr,
        ])
        .current_dir(REPO)
        .env("NIX_CONFIG", "build-users-group =\n")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if nix.release < (2, 18) {
        // What the issue saw: nixpkgs' lib needs builtins newer than 2.8 has.
        assert!(!out.status.success(), "nix {} evaluated it", nix.reported);
        assert!(
            stderr.contains("readFileType") || stderr.contains("2.18"),
            "{stderr}"
        );
        return;
    }
    assert!(out.status.success(), "{}: {stderr}", nix.reported);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pname"], "mab-verify");
    assert_eq!(v["license"], "MIT");
    let src = Path::new(v["src"].as_str().unwrap());
    let mut entries: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["Cargo.lock", "Cargo.toml", "demo", "src"]);
}
