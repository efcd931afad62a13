//! Operating systems and C libraries: their names, and the loader paths that give each away.

use serde::Serialize;

/// The OS part of a platform. Names follow Go's GOOS where Go has one (`wasip1`, `illumos`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Android,
    Darwin,
    Ios,
    Windows,
    FreeBsd,
    NetBsd,
    OpenBsd,
    Illumos,
    #[serde(rename = "wasip1")]
    Wasi,
    Uefi,
    /// Bare metal (`*-none-elf`, `*-embedded`): no OS at all.
    None,
    Cygwin,
    Ghcjs,
    Mmixware,
}

/// The file format an OS loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    Elf,
    MachO,
    Pe,
    Wasm,
    /// Not a binary format mab-verify reads (GHCJS output is JavaScript).
    Script,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Elf => "ELF",
            Format::MachO => "Mach-O",
            Format::Pe => "PE",
            Format::Wasm => "wasm",
            Format::Script => "JavaScript",
        }
    }
}

pub const ALL_OSES: &[Os] = &[
    Os::Linux,
    Os::Android,
    Os::Darwin,
    Os::Ios,
    Os::Windows,
    Os::FreeBsd,
    Os::NetBsd,
    Os::OpenBsd,
    Os::Illumos,
    Os::Wasi,
    Os::Uefi,
    Os::None,
    Os::Cygwin,
    Os::Ghcjs,
    Os::Mmixware,
];

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Android => "android",
            Os::Darwin => "darwin",
            Os::Ios => "ios",
            Os::Windows => "windows",
            Os::FreeBsd => "freebsd",
            Os::NetBsd => "netbsd",
            Os::OpenBsd => "openbsd",
            Os::Illumos => "illumos",
            Os::Wasi => "wasip1",
            Os::Uefi => "uefi",
            Os::None => "none",
            Os::Cygwin => "cygwin",
            Os::Ghcjs => "ghcjs",
            Os::Mmixware => "mmixware",
        }
    }

    /// For people: "FreeBSD", "bare metal".
    pub fn title(self) -> &'static str {
        match self {
            Os::Linux => "Linux",
            Os::Android => "Android",
            Os::Darwin => "macOS",
            Os::Ios => "iOS",
            Os::Windows => "Windows",
            Os::FreeBsd => "FreeBSD",
            Os::NetBsd => "NetBSD",
            Os::OpenBsd => "OpenBSD",
            Os::Illumos => "illumos/Solaris",
            Os::Wasi => "WASI",
            Os::Uefi => "UEFI",
            Os::None => "bare metal",
            Os::Cygwin => "Cygwin",
            Os::Ghcjs => "GHCJS",
            Os::Mmixware => "MMIXware",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Os> {
        match s {
            "macos" => Some(Os::Darwin),
            "solaris" => Some(Os::Illumos),
            "wasi" => Some(Os::Wasi),
            _ => ALL_OSES.iter().copied().find(|o| o.as_str() == s),
        }
    }

    /// Whether an ELF of this OS always says so (EI_OSABI, an ABI note or its loader), so
    /// that a file saying nothing cannot be one.
    pub fn brands_its_elves(self) -> bool {
        matches!(
            self,
            Os::Android | Os::FreeBsd | Os::NetBsd | Os::OpenBsd | Os::Illumos
        )
    }
}

/// The C library (or the platform's equivalent) a binary is linked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum Libc {
    #[serde(rename = "glibc")]
    Glibc,
    #[serde(rename = "musl")]
    Musl,
    #[serde(rename = "bionic")]
    Bionic,
    #[serde(rename = "uclibc")]
    Uclibc,
    #[serde(rename = "newlib")]
    Newlib,
    #[serde(rename = "newlib-nano")]
    NewlibNano,
    #[serde(rename = "libSystem")]
    LibSystem,
    #[serde(rename = "msvcrt")]
    Msvcrt,
    #[serde(rename = "ucrt")]
    Ucrt,
    /// MSVC's runtime: ucrt plus vcruntime140, linked by Microsoft's toolchain (nixpkgs calls
    /// the libc of its `*-windows-msvc` systems `ucrt`; mingw-w64's ucrt builds are [`Libc::Ucrt`]).
    #[serde(rename = "msvc")]
    Msvc,
    #[serde(rename = "fblibc")]
    Fblibc,
    #[serde(rename = "nblibc")]
    Nblibc,
    #[serde(rename = "oblibc")]
    Oblibc,
    #[serde(rename = "wasilibc")]
    Wasilibc,
    #[serde(rename = "avrlibc")]
    Avrlibc,
    #[serde(rename = "cygwin")]
    Cygwin,
}

impl Libc {
    /// nixpkgs' name (`stdenv.hostPlatform.libc`).
    pub fn nix_name(self) -> &'static str {
        match self {
            Libc::Msvc => "ucrt",
            other => other.name(),
        }
    }

    /// mab-verify's own name, as in its reports: nixpkgs' name, except that MSVC's runtime
    /// is `msvc` so that it is told apart from mingw-w64's ucrt.
    pub fn name(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
            Libc::Bionic => "bionic",
            Libc::Uclibc => "uclibc",
            Libc::Newlib => "newlib",
            Libc::NewlibNano => "newlib-nano",
            Libc::LibSystem => "libSystem",
            Libc::Msvcrt => "msvcrt",
            Libc::Ucrt => "ucrt",
            Libc::Msvc => "msvc",
            Libc::Fblibc => "fblibc",
            Libc::Nblibc => "nblibc",
            Libc::Oblibc => "oblibc",
            Libc::Wasilibc => "wasilibc",
            Libc::Avrlibc => "avrlibc",
            Libc::Cygwin => "cygwin",
        }
    }
}

/// Loaders that belong to an OS rather than to one CPU row. The BSDs keep one path for
/// every CPU; Android's depends only on the word size.
const OS_LOADERS: &[(&str, Os, Option<Libc>)] = &[
    ("/system/bin/linker64", Os::Android, Some(Libc::Bionic)),
    ("/system/bin/linker", Os::Android, Some(Libc::Bionic)),
    ("/libexec/ld-elf.so.1", Os::FreeBsd, Some(Libc::Fblibc)),
    ("/libexec/ld-elf32.so.1", Os::FreeBsd, Some(Libc::Fblibc)),
    ("/libexec/ld.elf_so", Os::NetBsd, Some(Libc::Nblibc)),
    ("/usr/libexec/ld.elf_so", Os::NetBsd, Some(Libc::Nblibc)),
    ("/usr/libexec/ld.so", Os::OpenBsd, Some(Libc::Oblibc)),
    ("/usr/lib/ld.so.1", Os::Illumos, None),
    ("/usr/lib/amd64/ld.so.1", Os::Illumos, None),
    ("/usr/lib/64/ld.so.1", Os::Illumos, None),
    ("/usr/lib/sparcv9/ld.so.1", Os::Illumos, None),
    // Go's linker writes the `/lib` spelling (`/lib` is a link to `/usr/lib` there). Not
    // `/lib/ld.so.1`: that is also glibc's loader on 32-bit PowerPC, s390 and MIPS.
    ("/lib/amd64/ld.so.1", Os::Illumos, None),
    ("/lib/64/ld.so.1", Os::Illumos, None),
    ("/lib/sparcv9/ld.so.1", Os::Illumos, None),
];

/// The OS (and libc) an OS-owned loader path names.
pub fn os_of_loader(path: &str) -> Option<(Os, Option<Libc>)> {
    OS_LOADERS
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|(_, os, libc)| (*os, *libc))
}

/// The loader an OS-owned libc uses, given the word size.
pub(super) fn os_loader(libc: Libc, bits: u8) -> Option<&'static str> {
    Some(match (libc, bits) {
        (Libc::Bionic, 64) => "/system/bin/linker64",
        (Libc::Bionic, _) => "/system/bin/linker",
        (Libc::Fblibc, _) => "/libexec/ld-elf.so.1",
        (Libc::Nblibc, _) => "/libexec/ld.elf_so",
        (Libc::Oblibc, _) => "/usr/libexec/ld.so",
        (Libc::Uclibc, _) => "/lib/ld-uClibc.so.0",
        _ => return None,
    })
}
