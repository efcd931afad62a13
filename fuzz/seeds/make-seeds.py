#!/usr/bin/env python3
"""Writes the small hand-made seeds committed under fuzz/seeds/<target>/.

They cover what the test fixtures do not: Mach-O (thin and universal) and PE headers, tar
layers with whiteouts, opaque markers, hardlinks, symlink chains and long names, JSON
documents of every kind, tiny docker- and OCI-archives, and mab.toml examples. Deterministic:
run it again and nothing changes. fuzz/seed.sh adds seeds taken from the test fixtures.
"""
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile

tarfile.RECORDSIZE = 1024  # no padding to 10 KiB: small seeds fuzz faster
HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- binary ---------------------------------------------------------------------------
def macho64(cputype, subtype=0, ncmds=0, cmds=b""):
    return struct.pack("<IIIIIIII", 0xFEEDFACF, cputype, subtype, 2, ncmds, len(cmds), 0, 0) + cmds


def macho_fat(slices):
    # Big-endian fat header, slices aligned to 4 KiB.
    header = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset = 4096
    entries, bodies = b"", b""
    for cputype, subtype, body in slices:
        entries += struct.pack(">IIIII", cputype, subtype, offset, len(body), 12)
        bodies += body + b"\0" * (4096 - len(body) % 4096)
        offset += len(body) + (4096 - len(body) % 4096)
    head = header + entries
    return head + b"\0" * (4096 - len(head)) + bodies


def pe(machine, pe32_plus=True):
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 64)
    opt_size = 240 if pe32_plus else 224
    coff = struct.pack("<HHIIIHH", machine, 1, 0, 0, 0, opt_size, 0x0022)
    opt = bytearray(opt_size)
    struct.pack_into("<H", opt, 0, 0x20B if pe32_plus else 0x10B)
    # SizeOfImage, SizeOfHeaders, Subsystem (console), NumberOfRvaAndSizes.
    if pe32_plus:
        struct.pack_into("<Q", opt, 24, 0x140000000)
        struct.pack_into("<II", opt, 32, 0x1000, 0x200)
        struct.pack_into("<II", opt, 56, 0x2000, 0x200)
        struct.pack_into("<H", opt, 68, 3)
        struct.pack_into("<I", opt, 108, 16)
    else:
        struct.pack_into("<I", opt, 28, 0x400000)
        struct.pack_into("<II", opt, 32, 0x1000, 0x200)
        struct.pack_into("<II", opt, 56, 0x2000, 0x200)
        struct.pack_into("<H", opt, 68, 3)
        struct.pack_into("<I", opt, 92, 16)
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x10, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    body = bytes(dos) + b"PE\0\0" + coff + bytes(opt) + section
    body += b"\0" * (0x200 - len(body))
    return body + b"\xc3" + b"\0" * 0x1FF


out("binary", "macho-arm64", macho64(0x0100000C))
out("binary", "macho-x86_64-loadcmd", macho64(0x01000007, 3, 1, struct.pack("<II", 0x2, 24) + b"\0" * 16))
out("binary", "macho-fat", macho_fat([(0x01000007, 3, macho64(0x01000007, 3)), (0x0100000C, 0, macho64(0x0100000C))]))
out("binary", "macho32-i386", struct.pack("<IIIIIII", 0xFEEDFACE, 7, 3, 2, 0, 0, 0))
out("binary", "pe-x86_64", pe(0x8664))
out("binary", "pe-arm64", pe(0xAA64))
out("binary", "pe-i386", pe(0x14C, pe32_plus=False))
out("binary", "not-a-binary", "#!/bin/sh\necho Hello from linux/x86_64!\n")


# ---- layer ----------------------------------------------------------------------------
def tar_bytes(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.mtime = 0
            info.mode = m.get("mode", 0o644)
            info.type = m.get("type", tarfile.REGTYPE)
            info.linkname = m.get("link", "")
            data = m.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


ELF_HEAD = bytes.fromhex("7f454c46020101000000000000000000") + b"\x02\x00\x3e\x00" + b"\0" * 44
D, S, H, F = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.REGTYPE
tree = [
    {"name": "bin/", "type": D, "mode": 0o755},
    {"name": "bin/app", "data": ELF_HEAD, "mode": 0o755},
    {"name": "bin/sh", "type": S, "link": "app"},
    {"name": "bin/hard", "type": H, "link": "bin/app"},
    {"name": "lib/", "type": D, "mode": 0o755},
    {"name": "lib64", "type": S, "link": "lib"},
    {"name": "lib/chain1", "type": S, "link": "chain2"},
    {"name": "lib/chain2", "type": S, "link": "/lib/chain3"},
    {"name": "lib/chain3", "type": S, "link": "../bin/app"},
    {"name": "etc/", "type": D},
    {"name": "etc/hostname", "data": b"fuzz\n"},
]
out("layer", "tree.tar", tar_bytes(tree))
out("layer", "tree.tar.gz", gzip.compress(tar_bytes(tree), mtime=0))
out("layer", "whiteouts.tar", tar_bytes([
    {"name": "etc/", "type": D},
    {"name": "etc/.wh.hostname"},
    {"name": "lib/.wh..wh..opq"},
    {"name": "lib/new", "data": b"x"},
    {"name": "./usr/./bin//tool", "data": b"\x7fELF\x01\x01\x01", "mode": 0o755},
]))
out("layer", "pax-longname.tar", tar_bytes([
    {"name": "d/" + "n" * 150 + "/file", "data": b"long"},
    {"name": "link", "type": S, "link": "d/" + "n" * 150 + "/file"},
], fmt=tarfile.PAX_FORMAT))
out("layer", "gnu-longname.tar", tar_bytes([
    {"name": "g/" + "m" * 200, "data": b"gnu"},
], fmt=tarfile.GNU_FORMAT))
# No end-of-archive blocks, as `umoci insert` writes them.
out("layer", "no-eof-blocks.tar", tar_bytes([{"name": "a", "data": b"a"}])[:1024])
out("layer", "empty.tar", b"\0" * 1024)

# ---- documents ------------------------------------------------------------------------
def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


layer = gzip.compress(tar_bytes(tree), mtime=0)
config = json.dumps({
    "architecture": "arm", "variant": "v7", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"]},
    "rootfs": {"type": "layers", "diff_ids": [sha(tar_bytes(tree))]},
}, separators=(",", ":")).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}],
}, separators=(",", ":")).encode()
index = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                   "size": len(manifest), "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
                   "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
}, separators=(",", ":")).encode()
docker_list = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": sha(manifest),
                   "size": len(manifest), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}],
}).encode()
archive_manifest = json.dumps([{"Config": sha(config)[7:] + ".json", "RepoTags": ["fuzz:latest"],
                                "Layers": ["layer/layer.tar"]}]).encode()
out("documents", "index.json", index)
out("documents", "manifest.json", manifest)
out("documents", "config.json", config)
out("documents", "docker-list.json", docker_list)
out("documents", "docker-archive-manifest.json", archive_manifest)
out("documents", "digest", sha(b""))

# ---- archive --------------------------------------------------------------------------
def oci_archive(index_doc, blobs):
    members = [{"name": "oci-layout", "data": b'{"imageLayoutVersion":"1.0.0"}'},
               {"name": "index.json", "data": index_doc}, {"name": "blobs/", "type": D},
               {"name": "blobs/sha256/", "type": D}]
    for b in blobs:
        members.append({"name": "blobs/sha256/" + sha(b)[7:], "data": b})
    return tar_bytes(members)


out("archive", "oci.tar", oci_archive(index, [manifest, config, layer]))
nested_index = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(index), "size": len(index)}],
}).encode()
out("archive", "oci-nested.tar", oci_archive(nested_index, [index, manifest, config, layer]))
docker = tar_bytes([
    {"name": "manifest.json", "data": archive_manifest},
    {"name": sha(config)[7:] + ".json", "data": config},
    {"name": "layer/", "type": D},
    {"name": "layer/layer.tar", "data": tar_bytes(tree)},
])
out("archive", "docker.tar", docker)
out("archive", "docker.tar.gz", gzip.compress(docker, mtime=0))

# ---- config ---------------------------------------------------------------------------
out("config", "full.toml", '''[run]
args = ["--greet"]
expect_output = "Hello from {os}/{arch}!"
timeout_secs = 20
output_cap_bytes = 1048576
version = "1.2.3"

[qemu]
"linux/riscv64" = "/opt/qemu/bin/qemu-riscv64"

[platform."linux/arm/v7"]          # any name form of a platform
expect_output = "Hello from linux/arm!"
''')
out("config", "limits.toml", '''[limits]
max_uncompressed_bytes = 8589934592   # per image (8 GiB)
max_json_bytes = 4194304
max_nesting = 8
max_binary_bytes = 536870912          # larger files are listed, not parsed
''')
out("config", "build.toml", '''expect = ["linux/amd64", "aarch64-multiplatform", "armv7l-hf-multiplatform", "riscv64"]

[build]
targets = ["gnu64", "aarch64-multiplatform"]
platforms = { gnu64 = "x86_64-linux" }

[platform.aarch64-multiplatform]
expect_output_regex = "^Hello from linux/(aarch64|arm64)!$"
args = []
''')
