#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seeds: the small hand-made ones committed in fuzz/seeds/,
# plus, when the test fixtures have been built (cargo test builds target/mab-fixtures/), seeds
# cut from them: real binaries of every platform, layer blobs, every JSON document, and small
# OCI archives of the hostile, broken and multi-platform layouts.
# Idempotent: a seed is named by its sha256, so running it again adds nothing twice.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
fixtures="${MAB_FIXTURES:-$repo/target/mab-fixtures}"
corpus="$fuzz/corpus"
max=$((64 * 1024))

add() { # add TARGET FILE [HEAD_BYTES]: copy (the first HEAD_BYTES of) FILE into the corpus
  local target=$1 file=$2 head=${3:-}
  local tmp
  tmp=$(mktemp)
  if [ -n "$head" ]; then head -c "$head" "$file" >"$tmp"; else cat "$file" >"$tmp"; fi
  local sum
  sum=$(sha256sum "$tmp" | cut -c1-40)
  mv "$tmp" "$corpus/$target/$sum"
}

for t in binary layer documents archive config gotar; do
  mkdir -p "$corpus/$t"
  if [ -d "$fuzz/seeds/$t" ]; then
    for f in "$fuzz/seeds/$t"/*; do add "$t" "$f"; done
  fi
done

if [ ! -d "$fixtures/v1" ] || [ ! -d "$fixtures/images-v1" ]; then
  echo "seed.sh: no fixtures at $fixtures (run cargo test once to build them); committed seeds only" >&2
else
  v1="$fixtures/v1"
  img="$fixtures/images-v1"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT

  # binary: every platform's hello, cut to its first 64 KiB (headers, program headers, the
  # dynamic section of most); the small complete ones whole, so section headers are seen too.
  for f in "$v1"/hello/*/multi-arch-demo "$v1"/broken/*/multi-arch-demo; do
    add binary "$f" "$max"
  done
  for f in "$v1"/musl/*/multi-arch-demo "$v1"/hello/riscv64/multi-arch-demo; do
    add binary "$f"
  done

  # layer: the small layer blobs (gzip, zstd or plain tar) of the image fixtures, and the
  # gzip ones also decompressed, since the fuzzer gets further mutating a plain tar.
  while IFS= read -r -d '' f; do
    magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
    case "$magic" in
      1f8b*)
        add layer "$f"
        if gzip -dc "$f" >"$work/raw" 2>/dev/null && [ "$(stat -c %s "$work/raw")" -le "$max" ]; then
          add layer "$work/raw"
        fi
        ;;
      28b52ffd) add layer "$f" ;;
      *)
        # A plain tar has "ustar" at offset 257.
        if [ "$(head -c 262 "$f" | tail -c 5)" = "ustar" ]; then add layer "$f"; fi
        ;;
    esac
  done < <(find "$img" -path '*/blobs/sha256/*' -type f -size -$((max / 1024 + 1))k -print0)
  # A layer with real, complete binaries and the links a closure check follows.
  root="$work/rootfs"
  mkdir -p "$root/bin" "$root/lib" "$root/usr/lib"
  cp "$v1/hello/riscv64/multi-arch-demo" "$root/bin/hello"
  cp "$v1/musl/dynamic/multi-arch-demo" "$root/bin/musl-hello"
  ln -s ../usr/lib/ld-musl-x86_64.so.1 "$root/lib/ld-musl-x86_64.so.1"
  cp "$v1/musl/static/multi-arch-demo" "$root/usr/lib/ld-musl-x86_64.so.1"
  ln -s /bin/hello "$root/bin/sh"
  tar --format=ustar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$root" -cf "$work/binaries.tar" .
  add layer "$work/binaries.tar"

  # documents: every index.json and every JSON blob (not the deliberately oversized one),
  # and the manifest.json of each docker-archive.
  while IFS= read -r -d '' f; do
    first=$(head -c 1 "$f")
    if [ "$first" = "{" ] || [ "$first" = "[" ]; then add documents "$f"; fi
  done < <(find "$img" \( -name index.json -o -path '*/blobs/sha256/*' \) -type f -size -$((max / 1024 + 1))k -print0)
  for a in "$img"/docker-archive/*.tar.gz "$img"/skopeo/*-docker.tar; do
    [ -e "$a" ] || continue
    if tar -xOf "$a" manifest.json >"$work/manifest.json" 2>/dev/null; then
      add documents "$work/manifest.json"
    fi
  done

  # archive: the hostile, broken and multi-platform layouts as small OCI archives. Blobs over
  # 64 KiB (the real layers, the gzip bomb, the oversized JSON) are left out: a missing blob
  # is itself a case the reader must handle, and the nesting, media types and hostile
  # entries are all in the small blobs.
  for layout in "$img"/hostile/* "$img"/broken/* "$img"/multi/*/ "$img"/umoci/x86_64; do
    [ -f "$layout/oci-layout" ] || continue
    (cd "$layout" && find . -type f -size -$((max / 1024 + 1))k | LC_ALL=C sort) >"$work/list"
    tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 \
      -C "$layout" -cf "$work/archive.tar" -T "$work/list"
    add archive "$work/archive.tar"
  done
fi

for t in binary layer documents archive config gotar; do
  printf '%-10s %4d seeds, %s\n' "$t" "$(find "$corpus/$t" -type f | wc -l)" "$(du -sh "$corpus/$t" | cut -f1)"
done
