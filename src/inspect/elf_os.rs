//! What an ELF says about its OS, libc, Go build settings and x86-64 level: EI_OSABI, ABI
//! notes, the loader, DT_NEEDED, versioned symbols, `.go.buildinfo` and GNU property notes.

use crate::platform::{Libc, Os, os_of_loader};
use object::Endianness;
use object::elf as E;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, SectionTable};
use serde::Serialize;

/// Go's record of how it built the binary (`go version -m` shows the same lines).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GoBuildInfo {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goos: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goarch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goarm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goamd64: Option<String>,
}

impl GoBuildInfo {
    /// GOARM's architecture version (`7`, or `7,softfloat` in Go 1.22+).
    pub fn arm_version(&self) -> Option<u8> {
        self.goarm.as_deref()?.split(',').next()?.parse().ok()
    }
    /// GOAMD64's level (`v3` → 3).
    pub fn amd64_level(&self) -> Option<u8> {
        self.goamd64.as_deref()?.strip_prefix('v')?.parse().ok()
    }
}

/// One note's owner, type and descriptor.
struct Note<'d> {
    name: &'d [u8],
    kind: u32,
    desc: &'d [u8],
}

/// Most notes read from one file; real files have a handful.
const MAX_NOTES: usize = 64;

/// Notes from PT_NOTE segments, else from SHT_NOTE sections (objects and some stripped files).
fn notes<'d, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'d [u8],
    segments: &'d [H::ProgramHeader],
    sections: &SectionTable<'d, H, &'d [u8]>,
) -> Vec<Note<'d>> {
    let mut out = Vec::new();
    for segment in segments {
        if let Ok(Some(mut it)) = segment.notes(endian, data) {
            while let Ok(Some(n)) = it.next() {
                if out.len() >= MAX_NOTES {
                    return out;
                }
                out.push(Note {
                    name: n.name(),
                    kind: n.n_type(endian),
                    desc: n.desc(),
                });
            }
        }
    }
    if !out.is_empty() {
        return out;
    }
    for section in sections.iter() {
        if let Ok(Some(mut it)) = section.notes(endian, data) {
            while let Ok(Some(n)) = it.next() {
                if out.len() >= MAX_NOTES {
                    return out;
                }
                out.push(Note {
                    name: n.name(),
                    kind: n.n_type(endian),
                    desc: n.desc(),
                });
            }
        }
    }
    out
}

/// Everything this module reads, in one pass over the notes.
pub(super) struct OsFacts {
    pub os: Option<Os>,
    pub os_evidence: Option<String>,
    pub android: bool,
    pub x86_isa_needed: Option<u8>,
    pub go: Option<GoBuildInfo>,
    pub glibc_versions: bool,
}

pub(super) fn read<'d, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'d [u8],
    header: &H,
    segments: &'d [H::ProgramHeader],
    sections: &SectionTable<'d, H, &'d [u8]>,
    interpreter: Option<&str>,
) -> OsFacts {
    let notes = notes(endian, data, segments, sections);
    let is64 = header.is_class_64();
    let mut note_os = None;
    let mut android = false;
    let mut x86_isa_needed = None;
    for n in &notes {
        let os = match (n.name, n.kind) {
            (b"FreeBSD", 1) => Some((Os::FreeBsd, "FreeBSD ABI note")),
            (b"NetBSD", 1) => Some((Os::NetBsd, "NetBSD ident note")),
            (b"OpenBSD", 1) => Some((Os::OpenBsd, "OpenBSD ident note")),
            (b"Android", 1) => {
                android = true;
                Some((Os::Android, "Android ident note"))
            }
            (b"GNU", E::NT_GNU_ABI_TAG) => {
                // The first word names the kernel: 0 Linux, 1 Hurd, 2 Solaris, 3 FreeBSD.
                let word = n.desc.get(..4).map(|b| endian_u32(endian, b));
                match word {
                    Some(0) => Some((Os::Linux, "GNU ABI tag note (Linux)")),
                    Some(2) => Some((Os::Illumos, "GNU ABI tag note (Solaris)")),
                    Some(3) => Some((Os::FreeBsd, "GNU ABI tag note (FreeBSD)")),
                    _ => None,
                }
            }
            (b"GNU", E::NT_GNU_PROPERTY_TYPE_0) => {
                x86_isa_needed = x86_isa_needed.or(isa_level(endian, n.desc, is64));
                None
            }
            _ => None,
        };
        if note_os.is_none() {
            note_os = os;
        }
    }
    let osabi = match header.e_ident().os_abi {
        E::ELFOSABI_NETBSD => Some((Os::NetBsd, "EI_OSABI NetBSD")),
        E::ELFOSABI_FREEBSD => Some((Os::FreeBsd, "EI_OSABI FreeBSD")),
        E::ELFOSABI_OPENBSD => Some((Os::OpenBsd, "EI_OSABI OpenBSD")),
        E::ELFOSABI_SOLARIS => Some((Os::Illumos, "EI_OSABI Solaris")),
        E::ELFOSABI_GNU => Some((Os::Linux, "EI_OSABI GNU/Linux")),
        _ => None,
    };
    let loader = interpreter.and_then(|i| os_of_loader(i).map(|(os, _)| (os, "its loader")));
    let go = go_build_info(endian, data, sections);
    let go_os = go.as_ref().and_then(|g| match g.goos.as_deref()? {
        "linux" => Some((Os::Linux, "Go build info GOOS")),
        "android" => Some((Os::Android, "Go build info GOOS")),
        "freebsd" => Some((Os::FreeBsd, "Go build info GOOS")),
        "netbsd" => Some((Os::NetBsd, "Go build info GOOS")),
        "openbsd" => Some((Os::OpenBsd, "Go build info GOOS")),
        "illumos" | "solaris" => Some((Os::Illumos, "Go build info GOOS")),
        _ => None,
    });
    // An OS's own note or loader is more specific than EI_OSABI (Android keeps SYSV, glibc
    // files say GNU for any kernel they use IFUNCs on).
    let found = note_os
        .filter(|(os, _)| *os != Os::Linux)
        .or(loader)
        .or(go_os)
        .or(osabi.filter(|(os, _)| *os != Os::Linux))
        .or(note_os)
        .or(osabi);
    if loader.is_some_and(|(os, _)| os == Os::Android) {
        android = true;
    }
    OsFacts {
        os: found.map(|(os, _)| os),
        os_evidence: found.map(|(_, why)| why.to_string()),
        android,
        x86_isa_needed,
        go,
        glibc_versions: needs_glibc_versions(endian, data, sections),
    }
}

fn endian_u32(endian: Endianness, b: &[u8]) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    match endian {
        Endianness::Little => u32::from_le_bytes(a),
        Endianness::Big => u32::from_be_bytes(a),
    }
}

/// GNU_PROPERTY_X86_ISA_1_NEEDED: the highest x86-64 level bit set (1 = baseline … 4 = v4).
fn isa_level(endian: Endianness, desc: &[u8], is64: bool) -> Option<u8> {
    const X86_ISA_1_NEEDED: u32 = 0xc000_8002;
    let align = if is64 { 8 } else { 4 };
    let mut at = 0usize;
    while at + 8 <= desc.len() {
        let kind = endian_u32(endian, &desc[at..]);
        let size = endian_u32(endian, &desc[at + 4..]) as usize;
        let start = at + 8;
        let end = start.checked_add(size)?;
        if end > desc.len() {
            return None;
        }
        if kind == X86_ISA_1_NEEDED && size >= 4 {
            let bits = endian_u32(endian, &desc[start..]);
            return (0..4).rev().find(|b| bits & (1 << b) != 0).map(|b| b + 1);
        }
        at = end.div_ceil(align) * align;
    }
    None
}

/// Whether `.gnu.version_r` asks for `GLIBC_*` symbol versions (glibc, never musl).
fn needs_glibc_versions<'d, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'d [u8],
    sections: &SectionTable<'d, H, &'d [u8]>,
) -> bool {
    let Ok(Some((mut verneeds, link))) = sections.gnu_verneed(endian, data) else {
        return false;
    };
    let Ok(strings) = sections.strings(endian, data, link) else {
        return false;
    };
    let mut guard = 0;
    while let Ok(Some((_, mut auxes))) = verneeds.next() {
        while let Ok(Some(aux)) = auxes.next() {
            guard += 1;
            if guard > 4096 {
                return false;
            }
            if aux
                .name(endian, strings)
                .is_ok_and(|n| n.starts_with(b"GLIBC_"))
            {
                return true;
            }
        }
    }
    false
}

/// The libc a file without a loader of its own (a shared library) links against, from its
/// DT_NEEDED names and symbol versions.
pub(super) fn libc_of_needed(
    needed: &[String],
    glibc_versions: bool,
    android: bool,
) -> Option<Libc> {
    let has = |n: &str| needed.iter().any(|x| x == n);
    if glibc_versions || has("libc.so.6") {
        Some(Libc::Glibc)
    } else if has("libc.so.0") {
        Some(Libc::Uclibc)
    } else if has("libc.so") && android {
        Some(Libc::Bionic)
    } else if has("libc.so") {
        Some(Libc::Musl)
    } else {
        None
    }
}

/// `.go.buildinfo`: a 32-byte header (magic, pointer size, flags), then, since Go 1.18, the
/// version and module info as length-prefixed strings.
fn go_build_info<'d, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'d [u8],
    sections: &SectionTable<'d, H, &'d [u8]>,
) -> Option<GoBuildInfo> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let header = sections
        .section_by_name(endian, b".go.buildinfo")
        .and_then(|(_, section)| section.data(endian, data).ok())
        .filter(|bytes| bytes.starts_with(MAGIC) && bytes.len() >= 32);
    let Some(bytes) = header else {
        return go_modinfo_without_header(endian, data, sections);
    };
    let flags = bytes[15];
    if flags & 2 == 0 {
        // Before Go 1.18 the strings sit behind pointers; not worth a relocation walk.
        return Some(GoBuildInfo {
            version: "go1.17 or older".into(),
            ..GoBuildInfo::default()
        });
    }
    let mut rest = &bytes[32..];
    let version = read_varint_string(&mut rest)?;
    let modinfo = read_varint_string(&mut rest).unwrap_or_default();
    Some(parse_modinfo(version, &modinfo))
}

/// A Go binary without a `.go.buildinfo` header (esbuild's release builds with Go 1.26 have
/// none) still holds `runtime.modinfo` in `.rodata`, bracketed by the 16-byte sentinels
/// runtime/debug strips (`infoStart`, `infoEnd`). Only files with Go's `.gopclntab` are
/// searched, so a C file that happens to hold the bytes is never taken for Go.
fn go_modinfo_without_header<'d, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'d [u8],
    sections: &SectionTable<'d, H, &'d [u8]>,
) -> Option<GoBuildInfo> {
    const START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    sections.section_by_name(endian, b".gopclntab")?;
    let (_, rodata) = sections.section_by_name(endian, b".rodata")?;
    let bytes = rodata.data(endian, data).ok()?;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(bytes, START)? + START.len();
    let len = find(&bytes[start..], END)?;
    let modinfo = String::from_utf8_lossy(&bytes[start..start + len]);
    Some(parse_modinfo("unknown (no .go.buildinfo)".into(), &modinfo))
}

/// The `build\tKEY=VALUE` settings of Go's module info that name the target.
fn parse_modinfo(version: String, modinfo: &str) -> GoBuildInfo {
    let mut info = GoBuildInfo {
        version,
        ..GoBuildInfo::default()
    };
    for line in modinfo.lines() {
        let Some(setting) = line.strip_prefix("build\t") else {
            continue;
        };
        let Some((key, value)) = setting.split_once('=') else {
            continue;
        };
        let slot = match key {
            "GOOS" => &mut info.goos,
            "GOARCH" => &mut info.goarch,
            "GOARM" => &mut info.goarm,
            "GOAMD64" => &mut info.goamd64,
            _ => continue,
        };
        *slot = Some(value.to_string());
    }
    info
}

fn read_varint_string(rest: &mut &[u8]) -> Option<String> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    if len > rest.len() {
        return None;
    }
    let (s, tail) = rest.split_at(len);
    *rest = tail;
    Some(String::from_utf8_lossy(s).into_owned())
}
