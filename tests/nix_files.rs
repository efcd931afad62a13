//! The repo's own Nix files, evaluated by the real nix with stub arguments (no nixpkgs here):
//! they produce the attributes users rely on, and default.nix's src holds what a build reads.

use serde_json::Value;
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
