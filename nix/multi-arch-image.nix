# One verified multi-arch OCI archive from per-platform images, built hermetically: no
# registry, no daemon, no network. Each image's platform comes from its binaries.
{ lib, runCommand, mab-verify }:

{ name, tag ? "latest", images }:

runCommand "${name}.oci.tar" { nativeBuildInputs = [ mab-verify ]; } ''
  mab-verify assemble --no-run --tag ${lib.escapeShellArg tag} -o "$out" ${lib.escapeShellArgs images}
''
