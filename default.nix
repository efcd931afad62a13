# mab-verify as a package, callPackage style: `pkgs.callPackage ./default.nix { }`.
# Needs nix >= 2.18 with a current nixpkgs (lib.fileset uses builtins.readFileType; nixpkgs
# itself refuses older nix); tested with Debian trixie's nix 2.26 and nixpkgs' lib.
{ lib, rustPlatform }:

rustPlatform.buildRustPackage {
  pname = "mab-verify";
  version = "0.1.0";

  # Only what the build reads: the demo sources are compiled into the binary (include_str!).
  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [ ./Cargo.toml ./Cargo.lock ./src ./demo ];
  };
  cargoLock.lockFile = ./Cargo.lock;

  # The suite cross-compiles fixtures and runs them under qemu-user; it runs via scripts/test.
  doCheck = false;

  meta = {
    description = "Verify that every platform's cross-built binary and image is what it claims to be";
    mainProgram = "mab-verify";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
  };
}
