{
  description = "mab-verify: the gate between a cross build and a multi-arch publish";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # pkgsCross attributes the demo is built for, besides the host.
      crossTargets = [ "aarch64-multiplatform" "armv7l-hf-multiplatform" "riscv64" "gnu32" "musl64" ];

      toolFor = pkgs: pkgs.callPackage ./default.nix { };

      # The article's layout: <target>.{myproject,docker}, with `native` for the host.
      demoFor = pkgs:
        { native = pkgs.callPackage ./nix/demo.nix { }; }
        // lib.genAttrs crossTargets (t: pkgs.pkgsCross.${t}.callPackage ./nix/demo.nix { });

      mkMultiArchImageFor = pkgs:
        pkgs.callPackage ./nix/multi-arch-image.nix { mab-verify = toolFor pkgs; };
    in
    {
      # lib.mkMultiArchImage { pkgs; name; tag; images = [ dockerImage1 dockerImage2 … ]; }
      lib.mkMultiArchImage = { pkgs, ... }@args:
        mkMultiArchImageFor pkgs (builtins.removeAttrs args [ "pkgs" ]);

      # Nested targets live here; `packages` must hold derivations only.
      legacyPackages = forAllSystems (pkgs: { demo = demoFor pkgs; });

      packages = forAllSystems (pkgs:
        let demo = demoFor pkgs;
        in {
          default = toolFor pkgs;
          mab-verify = toolFor pkgs;
          multiArchImage = mkMultiArchImageFor pkgs {
            name = "multi-arch-demo";
            tag = "latest";
            images = map (t: demo.${t}.docker) [ "native" "aarch64-multiplatform" "armv7l-hf-multiplatform" ];
          };
        });

      # `nix flake check` verifies every demo target: headers, closure, and a run under qemu.
      checks = forAllSystems (pkgs:
        import ./nix/checks.nix
          { inherit (pkgs) runCommand; mab-verify = toolFor pkgs; tools = [ pkgs.qemu ]; }
          (demoFor pkgs));

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${toolFor pkgs}/bin/mab-verify";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.qemu pkgs.skopeo pkgs.nix ];
        };
      });
    };
}
