# `nix flake check` for cross targets, nixpkgs-free so tests can use it as is: one check per
# target that runs mab-verify on every output of it; a target whose binaries are not the
# platform it claims fails its check (and so `nix flake check`).
#   runCommand: nixpkgs' (or anything with its signature); mab-verify: the tool's package;
#   tools: what else the check needs on PATH (qemu for the runs); flags: extra mab-verify flags.
{ runCommand, mab-verify, tools ? [ ], flags ? [ ] }:

targets:
let
  isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation";
  outputsOf = t: if isDrv t then [ t ] else builtins.filter isDrv (builtins.attrValues t);
  # The platform the target is built for, as nixpkgs says it; else mab-verify reads the
  # triple in the store name (pkgsCross names carry it) or takes the build machine.
  hostOf = outs:
    let hosts = builtins.filter (h: h != null)
      (map (d: if d ? stdenv then d.stdenv.hostPlatform.config or null else null) outs);
    in if hosts == [ ] then null else builtins.head hosts;
  check = target: t:
    let
      outs = outputsOf t;
      host = hostOf outs;
      expect = if host == null then "" else "--expect ${host}";
    in
    runCommand "mab-verify-${target}" { nativeBuildInputs = [ mab-verify ] ++ tools; } ''
      mab-verify --format json ${expect} ${builtins.concatStringsSep " " flags} ${builtins.concatStringsSep " " (map toString outs)} > "$out"
    '';
in
builtins.mapAttrs check (builtins.removeAttrs targets (builtins.filter (n: outputsOf targets.${n} == [ ]) (builtins.attrNames targets)))
