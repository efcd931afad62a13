# The bundled demo and its container image for one platform, callPackage style: call it from
# pkgs for the host, or from pkgs.pkgsCross.<target> to cross-build.
{ rustPlatform, dockerTools }:

let
  myproject = rustPlatform.buildRustPackage {
    pname = "multi-arch-demo";
    version = "1.0.0";
    src = ../demo;
    cargoLock.lockFile = ../demo/Cargo.lock;
  };
in
{
  inherit myproject;
  docker = dockerTools.buildLayeredImage {
    name = "multi-arch-demo";
    tag = "latest";
    config.Cmd = [ "${myproject}/bin/multi-arch-demo" ];
  };
}
