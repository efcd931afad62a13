//! Platform model: CPU rows, pkgsCross systems, OS and libc, and every lookup into them.

mod abi;
mod aliases;
pub mod listing;
mod names;
mod os;
mod systems;
mod table;
pub use aliases::parse_normalized;

use serde::Serialize;

pub use abi::{AbiFit, AbiSpec, ArmVersionSource, FloatWidth, MipsAbi, ObservedAbi};
pub use names::{UnknownPlatform, all_names};
pub use os::{ALL_OSES, Format, Libc, Os, os_of_loader};
pub use systems::{ALIASES, DOUBLES, SYSTEMS, System, all_systems};
pub use table::ARCHES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Elf32,
    Elf64,
}

impl Class {
    pub fn bits(self) -> u8 {
        match self {
            Class::Elf32 => 32,
            Class::Elf64 => 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub fn short(self) -> &'static str {
        match self {
            ByteOrder::Little => "LE",
            ByteOrder::Big => "BE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// A fixture binary for this row is built and inspected by the test suite.
    Fixture,
    /// Facts come from the ABI documents and nixpkgs only; no binary of this row has been
    /// checked here.
    Unverified,
}

/// How Debian builds for this row: used by the demo and fixture builders.
#[derive(Debug, Clone, Copy)]
pub struct Toolchain {
    pub debian_arch: &'static str,
    pub gcc_triple: &'static str,
    /// Debian's multiarch directory name (`/usr/lib/<multiarch>`), not always the GNU triple
    /// of its cross gcc: i386's is `i386-linux-gnu` while the compiler is `i686-linux-gnu-gcc`.
    pub multiarch: &'static str,
    pub rust_target: Option<&'static str>,
}

/// One CPU row: machine, ABI, loaders and emulator. See DESIGN.md's platform table.
#[derive(Debug)]
pub struct Arch {
    /// Unique key: fixture names, config sections, `systems.rs` references.
    pub key: &'static str,
    pub nix_cpu: &'static str,
    /// Whether `<nix_cpu>-linux` names this row (false for a second ABI of the same CPU).
    pub nix_double: bool,
    pub rust_arch: &'static str,
    pub oci_arch: &'static str,
    pub oci_variant: Option<&'static str>,
    /// Variants that mean this row although its canonical form has none (arm64's `v8`).
    pub oci_variant_aliases: &'static [&'static str],
    /// `EM_NONE` for rows whose binaries are not ELF.
    pub elf_machine: u16,
    pub class: Class,
    pub byte_order: ByteOrder,
    pub abi: AbiSpec,
    pub glibc_loader: &'static str,
    pub musl_loader: &'static str,
    /// Empty when no qemu-user emulates the CPU.
    pub qemu: &'static str,
    pub glibc_triples: &'static [&'static str],
    pub musl_triples: &'static [&'static str],
    pub other_names: &'static [&'static str],
    pub macho_cpu_type: Option<u32>,
    pub pe_machine: Option<u16>,
    pub toolchain: Option<Toolchain>,
    pub verified: Verified,
}

impl PartialEq for Arch {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for Arch {}

/// Rows whose OCI variants are microarchitecture levels (v1 baseline … v4).
const LEVELLED: &[&str] = &["x86_64"];

/// Guests a host CPU runs without an emulator, by row key: (host, guest).
const NATIVE_GUESTS: &[(&str, &str)] = &[("x86_64", "i686"), ("aarch64", "armv7l")];

impl Arch {
    pub fn nix_system(&self) -> String {
        format!("{}-linux", self.nix_cpu)
    }

    /// Whether `<nix_cpu>-linux` names this row: it runs Linux and is its CPU's default ABI.
    pub fn is_linux_double(&self) -> bool {
        self.nix_double && self.oses().contains(&Os::Linux)
    }

    /// The key used in fixture names, config sections and `MAB_QEMU_*` variables.
    pub fn key(&self) -> &'static str {
        self.key
    }

    pub fn by_key(key: &str) -> Option<&'static Arch> {
        ARCHES.iter().find(|a| a.key == key)
    }

    /// `MAB_QEMU_AARCH64` style override variable, derived from the qemu binary name.
    pub fn qemu_env_var(&self) -> String {
        let suffix = self.qemu.trim_start_matches("qemu-");
        format!("MAB_QEMU_{}", suffix.to_ascii_uppercase().replace('-', "_"))
    }

    /// The standard loader path of `libc` on this row, if the row has one.
    pub fn loader(&self, libc: Libc) -> Option<&'static str> {
        let path = match libc {
            Libc::Glibc => self.glibc_loader,
            Libc::Musl => self.musl_loader,
            other => return os::os_loader(other, self.class.bits()),
        };
        (!path.is_empty()).then_some(path)
    }

    /// Which libc a Linux loader file name belongs to on this row, if any.
    pub fn libc_of_loader(&self, loader_file_name: &str) -> Option<Libc> {
        [Libc::Glibc, Libc::Musl, Libc::Uclibc]
            .into_iter()
            .find(|l| {
                self.loader(*l)
                    .is_some_and(|p| file_name(p) == loader_file_name)
            })
    }

    pub fn triples(&self) -> impl Iterator<Item = &'static str> {
        self.glibc_triples.iter().chain(self.musl_triples).copied()
    }

    /// The pkgsCross systems that put this row under some OS.
    pub fn systems(&self) -> impl Iterator<Item = &'static System> + '_ {
        all_systems().filter(move |s| s.arch == self.key)
    }

    /// OSes some pkgsCross system runs on this row.
    pub fn oses(&self) -> Vec<Os> {
        let mut oses: Vec<Os> = self.systems().map(|s| s.os).collect();
        oses.sort();
        oses.dedup();
        oses
    }

    /// The row the running mab-verify was built for (its runs need no emulator).
    pub fn host() -> Option<&'static Arch> {
        let host_target_arch = std::env::consts::ARCH;
        let host_order = if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        // ARM hosts share `arm`: prefer the row whose ABI the build targets.
        ARCHES.iter().find(|a| {
            a.rust_arch == host_target_arch
                && a.byte_order == host_order
                && a.nix_double
                && match a.abi {
                    AbiSpec::Arm { hard_float, .. } => hard_float == cfg!(target_abi = "eabihf"),
                    _ => true,
                }
        })
    }

    /// Whether `vN` variants of this row are x86-64 levels.
    pub fn has_levels(&self) -> bool {
        LEVELLED.contains(&self.key)
    }

    pub fn is_host(&self) -> bool {
        Arch::host() == Some(self)
    }

    /// Whether this machine runs the row's binaries without an emulator: the host's own row,
    /// and the 32-bit rows a 64-bit host CPU executes (386 on amd64).
    pub fn runs_natively(&self) -> bool {
        self.is_host() || Arch::host().is_some_and(|h| NATIVE_GUESTS.contains(&(h.key, self.key)))
    }

    /// Whether an ELF with these facts runs on this row.
    pub fn accepts(&self, machine: u16, class: Class, order: ByteOrder, abi: &ObservedAbi) -> bool {
        self.elf_machine == machine
            && self.class == class
            && self.byte_order == order
            && self.abi.mismatch(abi).is_none()
    }

    /// Where this row's loader looks when RUNPATH has nothing: the standard directories plus
    /// Debian's multiarch ones.
    pub fn default_library_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = [
            "/lib",
            "/usr/lib",
            "/lib64",
            "/usr/lib64",
            "/lib32",
            "/usr/lib32",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(tc) = self.toolchain {
            for triple in [tc.multiarch, tc.gcc_triple] {
                for base in ["/lib", "/usr/lib"] {
                    let dir = format!("{base}/{triple}");
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
            }
        }
        dirs
    }

    /// Debian's cross sysroot for this row, such as `/usr/aarch64-linux-gnu`.
    pub fn debian_cross_sysroot(&self) -> Option<String> {
        self.toolchain.map(|tc| format!("/usr/{}", tc.gcc_triple))
    }

    /// Rows that share this row's ELF machine, class and byte order (the arm family).
    pub fn same_machine(&self, other: &Arch) -> bool {
        self.elf_machine == other.elf_machine
            && self.class == other.class
            && self.byte_order == other.byte_order
    }

    /// The binary format this row's files have, whatever the OS.
    fn own_format(&self) -> Option<Format> {
        match self.oci_arch {
            _ if self.macho_cpu_type.is_some() || self.pe_machine.is_some() => None,
            _ if self.elf_machine != object::elf::EM_NONE => None,
            _ if self.key == "wasm32" => Some(Format::Wasm),
            _ if self.key == "javascript" => Some(Format::Script),
            _ => None,
        }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A full platform: OS, CPU row and (when a name or the file pins it) the libc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    pub arch: &'static Arch,
    pub libc: Option<Libc>,
    /// The x86-64 microarchitecture level a slot promises (`linux/amd64/v3`): OCI variants
    /// containerd uses for amd64. `None` means baseline.
    pub level: Option<u8>,
}

impl Platform {
    pub fn linux(arch: &'static Arch) -> Platform {
        Platform {
            os: Os::Linux,
            arch,
            libc: None,
            level: None,
        }
    }

    /// OCI notation: `linux/arm/v7`, `linux/amd64`, `linux/amd64/v3`, `wasip1/wasm`.
    pub fn oci(&self) -> String {
        if let Some(level) = self.level {
            return format!("{}/{}/v{level}", self.os.as_str(), self.arch.oci_arch);
        }
        match self.arch.oci_variant {
            Some(v) => format!("{}/{}/{}", self.os.as_str(), self.arch.oci_arch, v),
            None => format!("{}/{}", self.os.as_str(), self.arch.oci_arch),
        }
    }

    /// The file format this platform's executables have.
    pub fn format(&self) -> Format {
        if let Some(f) = self.arch.own_format() {
            return f;
        }
        match self.os {
            Os::Darwin | Os::Ios => Format::MachO,
            Os::Windows | Os::Uefi | Os::Cygwin => Format::Pe,
            Os::Wasi => Format::Wasm,
            Os::Ghcjs => Format::Script,
            _ => Format::Elf,
        }
    }

    /// Same OS and row; libc is only compared when both sides pin one.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.arch == other.arch
            && match (self.libc, other.libc) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// The pkgsCross systems that describe this platform, best first.
    pub fn systems(&self) -> impl Iterator<Item = &'static System> + '_ {
        all_systems()
            .filter(move |s| s.arch == self.arch.key && s.os == self.os)
            .filter(move |s| self.libc.is_none_or(|l| s.libc == Some(l)))
    }

    /// The Rust target for this platform (nixpkgs' `rust.rustcTarget`), preferring glibc on
    /// Linux when the libc is open; a Linux triple of the row otherwise.
    pub fn triple(&self) -> &'static str {
        let preferred = self
            .systems()
            .find(|s| self.libc.is_some() || s.libc == Some(Libc::Glibc))
            .or_else(|| self.systems().next());
        if let Some(s) = preferred {
            return s.rust_target;
        }
        let triples = match self.libc {
            Some(Libc::Musl) => self.arch.musl_triples,
            _ => self.arch.glibc_triples,
        };
        triples.first().copied().unwrap_or(self.arch.nix_cpu)
    }

    /// The libcs a file of this platform may use when the name did not pin one.
    pub fn libcs(&self) -> Vec<Libc> {
        if let Some(l) = self.libc {
            return vec![l];
        }
        let mut out: Vec<Libc> = all_systems()
            .filter(|s| s.os == self.os && s.arch == self.arch.key)
            .filter_map(|s| s.libc)
            .collect();
        if self.os == Os::Linux {
            // Any Linux row can carry either; a row with a musl loader supports musl.
            out.push(Libc::Glibc);
            if !self.arch.musl_loader.is_empty() {
                out.push(Libc::Musl);
            }
        }
        let mut seen = Vec::new();
        out.retain(|l| {
            let new = !seen.contains(l);
            seen.push(*l);
            new
        });
        out
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.oci())
    }
}

/// The row an ELF belongs to: machine, class and byte order first, then the ABI among
/// siblings; rows that run the file's OS come before the others.
pub fn identify_elf(
    machine: u16,
    class: Class,
    byte_order: ByteOrder,
    abi: &ObservedAbi,
    os: Option<Os>,
) -> Option<&'static Arch> {
    let mut candidates = arches_for_elf(machine, class, byte_order);
    let os = os.unwrap_or(Os::Linux);
    candidates.sort_by_key(|a| !a.oses().contains(&os));
    candidates
        .iter()
        .find(|a| a.abi.exactly(abi))
        .or_else(|| {
            // Older code runs on a newer row: the lowest row that accepts it is its home.
            candidates
                .iter()
                .filter(|a| a.abi.mismatch(abi).is_none())
                .min_by_key(|a| {
                    (
                        !a.oses().contains(&os),
                        match a.abi {
                            AbiSpec::Arm { arch_version, .. } => arch_version,
                            _ => 0,
                        },
                    )
                })
        })
        .or_else(|| candidates.first())
        .copied()
}

/// Rows matching an ELF's machine, class and byte order.
pub fn arches_for_elf(machine: u16, class: Class, byte_order: ByteOrder) -> Vec<&'static Arch> {
    ARCHES
        .iter()
        .filter(|a| a.elf_machine != object::elf::EM_NONE)
        .filter(|a| a.elf_machine == machine && a.class == class && a.byte_order == byte_order)
        .collect()
}

pub fn arch_for_macho(cpu_type: u32) -> Option<&'static Arch> {
    ARCHES.iter().find(|a| a.macho_cpu_type == Some(cpu_type))
}

pub fn arch_for_pe(machine: u16) -> Option<&'static Arch> {
    ARCHES.iter().find(|a| a.pe_machine == Some(machine))
}

/// The wasm32 row (a `\0asm` module says nothing more about its CPU).
pub fn arch_for_wasm() -> Option<&'static Arch> {
    Arch::by_key("wasm32")
}

/// Which Linux rows (if any) a loader path names, with its libc; Nix store loaders match by
/// file name.
pub fn arches_for_loader(loader: &str) -> Vec<(&'static Arch, Libc)> {
    let name = file_name(loader);
    ARCHES
        .iter()
        .filter_map(|a| a.libc_of_loader(name).map(|l| (a, l)))
        .collect()
}

#[cfg(test)]
mod tests;
