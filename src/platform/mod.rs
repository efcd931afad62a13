//! Platform model and every lookup into the architecture table (names, ELF identity, store names).

mod aliases;
mod table;
pub use aliases::parse_normalized;

use serde::Serialize;
use std::fmt;

pub use table::ARCHES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
pub enum FloatWidth {
    Soft,
    Single,
    Double,
    Quad,
}

/// What e_flags and attributes must say for a row, beyond machine/class/byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiSpec {
    None,
    Arm { hard_float: bool, arch_version: u8 },
    RiscvFloat(FloatWidth),
    Ppc64ElfV2,
    MipsN64,
    LoongArchFloat(FloatWidth),
}

impl fmt::Display for AbiSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiSpec::None => f.write_str("standard ABI"),
            AbiSpec::Arm {
                hard_float,
                arch_version,
            } => write!(
                f,
                "ARMv{arch_version} {}",
                if *hard_float {
                    "hard-float"
                } else {
                    "soft-float"
                }
            ),
            AbiSpec::RiscvFloat(w) => write!(f, "RISC-V {w:?} float ABI"),
            AbiSpec::Ppc64ElfV2 => f.write_str("ELFv2"),
            AbiSpec::MipsN64 => f.write_str("MIPS n64"),
            AbiSpec::LoongArchFloat(w) => write!(f, "LoongArch {w:?} float ABI"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MipsAbi {
    N64,
    N32,
    O32,
    O64,
    Eabi32,
    Eabi64,
}

/// What a binary's e_flags and attributes say about its ABI, decoded per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum ObservedAbi {
    None,
    Arm {
        hard_float: Option<bool>,
        arch_version: Option<u8>,
        eabi_version: u8,
    },
    Riscv {
        float: FloatWidth,
    },
    Mips {
        abi: MipsAbi,
    },
    Ppc64 {
        elf_abi_version: u8,
    },
    LoongArch {
        float: Option<FloatWidth>,
    },
}

impl fmt::Display for ObservedAbi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObservedAbi::None => f.write_str("standard ABI (no variants on this machine)"),
            ObservedAbi::Arm {
                hard_float,
                arch_version,
                eabi_version,
            } => {
                match arch_version {
                    Some(v) => write!(f, "ARMv{v} ")?,
                    None => f.write_str("ARM (arch version not recorded) ")?,
                }
                match hard_float {
                    Some(true) => f.write_str("hard-float")?,
                    Some(false) => f.write_str("soft-float")?,
                    None => f.write_str("float ABI not recorded")?,
                }
                write!(f, " (EABI{eabi_version})")
            }
            ObservedAbi::Riscv { float } => write!(f, "RISC-V {float:?} float ABI"),
            ObservedAbi::Mips { abi } => write!(f, "MIPS {abi:?}"),
            ObservedAbi::Ppc64 { elf_abi_version: 0 } => f.write_str("ELF ABI version unset"),
            ObservedAbi::Ppc64 { elf_abi_version } => write!(f, "ELFv{elf_abi_version}"),
            ObservedAbi::LoongArch { float: Some(w) } => write!(f, "LoongArch {w:?} float ABI"),
            ObservedAbi::LoongArch { float: None } => f.write_str("LoongArch float ABI unset"),
        }
    }
}

impl AbiSpec {
    /// `None` when a binary with `observed` runs on this row; otherwise why not.
    pub fn mismatch(&self, observed: &ObservedAbi) -> Option<String> {
        match (self, observed) {
            (AbiSpec::None, _) => None,
            (
                AbiSpec::Arm {
                    hard_float,
                    arch_version,
                },
                ObservedAbi::Arm {
                    hard_float: seen_float,
                    arch_version: seen_version,
                    ..
                },
            ) => {
                if let Some(seen) = seen_float
                    && seen != hard_float
                {
                    return Some(format!(
                        "{} calling convention, but the platform uses {}",
                        if *seen { "hard-float" } else { "soft-float" },
                        if *hard_float {
                            "hard-float"
                        } else {
                            "soft-float"
                        }
                    ));
                }
                match seen_version {
                    Some(v) if v > arch_version => Some(format!(
                        "built for ARMv{v}, which an ARMv{arch_version} CPU cannot run"
                    )),
                    _ => None,
                }
            }
            (AbiSpec::RiscvFloat(want), ObservedAbi::Riscv { float }) => (want != float)
                .then(|| format!("{float:?} float ABI, but the platform uses {want:?}")),
            (AbiSpec::Ppc64ElfV2, ObservedAbi::Ppc64 { elf_abi_version }) => {
                (*elf_abi_version == 1).then(|| "ELFv1 binary on an ELFv2 platform".to_string())
            }
            (AbiSpec::MipsN64, ObservedAbi::Mips { abi }) => (*abi != MipsAbi::N64)
                .then(|| format!("MIPS {abi:?} ABI, but the platform uses n64")),
            (AbiSpec::LoongArchFloat(want), ObservedAbi::LoongArch { float: Some(seen) }) => (want
                != seen)
                .then(|| format!("{seen:?} float ABI, but the platform uses {want:?}")),
            (_, ObservedAbi::LoongArch { float: None }) => None,
            (spec, seen) => Some(format!("ABI {seen} does not fit {spec}")),
        }
    }

    /// Exact agreement, used to pick among rows that share a machine.
    fn exactly(&self, observed: &ObservedAbi) -> bool {
        match (self, observed) {
            (
                AbiSpec::Arm {
                    hard_float,
                    arch_version,
                },
                ObservedAbi::Arm {
                    hard_float: Some(f),
                    arch_version: Some(v),
                    ..
                },
            ) => f == hard_float && v == arch_version,
            _ => self.mismatch(observed).is_none(),
        }
    }
}

/// The row an ELF belongs to: machine, class and byte order first, then the ABI among siblings.
pub fn identify_elf(
    machine: u16,
    class: Class,
    byte_order: ByteOrder,
    abi: &ObservedAbi,
) -> Option<&'static Arch> {
    let candidates = arches_for_elf(machine, class, byte_order);
    candidates
        .iter()
        .find(|a| a.abi.exactly(abi))
        .or_else(|| {
            // Older code runs on a newer row: the lowest row that accepts it is its home.
            candidates
                .iter()
                .filter(|a| a.abi.mismatch(abi).is_none())
                .min_by_key(|a| match a.abi {
                    AbiSpec::Arm { arch_version, .. } => arch_version,
                    _ => 0,
                })
        })
        .or_else(|| candidates.first())
        .copied()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// A fixture binary for this row is built and inspected by the test suite.
    Fixture,
    /// Facts come from the ABI documents only; no binary of this row has been checked here.
    Unverified,
}

/// How Debian builds for this row: used by the demo and fixture builders.
#[derive(Debug, Clone, Copy)]
pub struct Toolchain {
    pub debian_arch: &'static str,
    pub gcc_triple: &'static str,
    pub rust_target: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Darwin,
    Windows,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Darwin => "darwin",
            Os::Windows => "windows",
        }
    }
    fn parse(s: &str) -> Option<Os> {
        match s {
            "linux" => Some(Os::Linux),
            "darwin" | "macos" => Some(Os::Darwin),
            "windows" => Some(Os::Windows),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    Glibc,
    Musl,
}

/// One architecture row. See DESIGN.md's platform table.
#[derive(Debug)]
pub struct Arch {
    pub nix_cpu: &'static str,
    pub rust_arch: &'static str,
    pub oci_arch: &'static str,
    pub oci_variant: Option<&'static str>,
    /// Variants that mean this row although its canonical form has none (arm64's `v8`).
    pub oci_variant_aliases: &'static [&'static str],
    pub elf_machine: u16,
    pub class: Class,
    pub byte_order: ByteOrder,
    pub abi: AbiSpec,
    pub glibc_loader: &'static str,
    pub musl_loader: &'static str,
    pub qemu: &'static str,
    pub pkgs_cross_glibc: &'static [&'static str],
    pub pkgs_cross_musl: &'static [&'static str],
    pub glibc_triples: &'static [&'static str],
    pub musl_triples: &'static [&'static str],
    pub other_names: &'static [&'static str],
    pub macho_cpu_type: Option<u32>,
    pub pe_machine: Option<u16>,
    pub other_os_names: &'static [(&'static str, Os)],
    pub toolchain: Option<Toolchain>,
    pub verified: Verified,
}

impl PartialEq for Arch {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for Arch {}

impl Arch {
    pub fn nix_system(&self) -> String {
        format!("{}-linux", self.nix_cpu)
    }

    /// The key used in fixture names, config sections and `MAB_QEMU_*` variables.
    pub fn key(&self) -> &'static str {
        self.nix_cpu
    }

    /// `MAB_QEMU_AARCH64` style override variable, derived from the qemu binary name.
    pub fn qemu_env_var(&self) -> String {
        let suffix = self.qemu.trim_start_matches("qemu-");
        format!("MAB_QEMU_{}", suffix.to_ascii_uppercase().replace('-', "_"))
    }

    pub fn loader(&self, libc: Libc) -> &'static str {
        match libc {
            Libc::Glibc => self.glibc_loader,
            Libc::Musl => self.musl_loader,
        }
    }

    /// Which libc a loader file name belongs to on this row, if any.
    pub fn libc_of_loader(&self, loader_file_name: &str) -> Option<Libc> {
        if file_name(self.glibc_loader) == loader_file_name {
            Some(Libc::Glibc)
        } else if file_name(self.musl_loader) == loader_file_name {
            Some(Libc::Musl)
        } else {
            None
        }
    }

    pub fn triples(&self) -> impl Iterator<Item = &'static str> {
        self.glibc_triples.iter().chain(self.musl_triples).copied()
    }

    /// The row the running mab-verify was built for (its runs need no emulator).
    pub fn host() -> Option<&'static Arch> {
        let host_target_arch = std::env::consts::ARCH;
        // ARM hosts share `arm`: prefer the row whose ABI the build targets.
        ARCHES.iter().find(|a| {
            a.rust_arch == host_target_arch
                && match a.abi {
                    AbiSpec::Arm { hard_float, .. } => hard_float == cfg!(target_abi = "eabihf"),
                    _ => true,
                }
        })
    }

    pub fn is_host(&self) -> bool {
        Arch::host() == Some(self)
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
            dirs.push(format!("/lib/{}", tc.gcc_triple));
            dirs.push(format!("/usr/lib/{}", tc.gcc_triple));
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
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A full platform: OS, architecture row and (when a name pins it) the libc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    pub arch: &'static Arch,
    pub libc: Option<Libc>,
}

impl Platform {
    pub fn linux(arch: &'static Arch) -> Platform {
        Platform {
            os: Os::Linux,
            arch,
            libc: None,
        }
    }

    /// OCI notation: `linux/arm/v7`, `linux/amd64`.
    pub fn oci(&self) -> String {
        match self.arch.oci_variant {
            Some(v) => format!("{}/{}/{}", self.os.as_str(), self.arch.oci_arch, v),
            None => format!("{}/{}", self.os.as_str(), self.arch.oci_arch),
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

    /// Parse any accepted name form; an unknown name lists its close matches.
    pub fn parse(name: &str) -> Result<Platform, UnknownPlatform> {
        let trimmed = name.trim();
        if let Some(p) = parse_oci(trimmed) {
            return Ok(p);
        }
        for arch in ARCHES {
            for (alias, os) in arch.other_os_names {
                if *alias == trimmed {
                    return Ok(Platform {
                        os: *os,
                        arch,
                        libc: None,
                    });
                }
            }
            // pkgsCross names first: `loongarch64-linux` is both an attribute (glibc) and a double.
            let hit = |names: &[&str]| names.contains(&trimmed);
            if hit(arch.pkgs_cross_glibc) || hit(arch.glibc_triples) {
                return Ok(Platform {
                    os: Os::Linux,
                    arch,
                    libc: Some(Libc::Glibc),
                });
            }
            if hit(arch.pkgs_cross_musl) || hit(arch.musl_triples) {
                return Ok(Platform {
                    os: Os::Linux,
                    arch,
                    libc: Some(Libc::Musl),
                });
            }
            if arch.nix_system() == trimmed {
                return Ok(Platform::linux(arch));
            }
        }
        // Bare architecture words are only accepted when they name exactly one row.
        let bare: Vec<&'static Arch> = ARCHES
            .iter()
            .filter(|a| a.other_names.contains(&trimmed) || a.oci_arch == trimmed)
            .collect();
        if let [arch] = bare[..] {
            return Ok(Platform::linux(arch));
        }
        Err(UnknownPlatform {
            name: name.to_string(),
            suggestions: close_matches(trimmed),
        })
    }

    /// The first known triple inside a Nix store name such as
    /// `<hash>-multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0`.
    pub fn from_store_name(store_name: &str) -> Option<(Platform, &'static str)> {
        let mut best: Option<(Platform, &'static str)> = None;
        for arch in ARCHES {
            let forms = arch
                .glibc_triples
                .iter()
                .map(|t| (*t, Libc::Glibc))
                .chain(arch.musl_triples.iter().map(|t| (*t, Libc::Musl)));
            for (triple, libc) in forms {
                if contains_dash_bounded(store_name, triple)
                    && best.is_none_or(|(_, b)| triple.len() > b.len())
                {
                    best = Some((
                        Platform {
                            os: Os::Linux,
                            arch,
                            libc: Some(libc),
                        },
                        triple,
                    ));
                }
            }
        }
        best
    }

    /// Rust triple, preferring the libc this platform pins.
    pub fn triple(&self) -> &'static str {
        let triples = match self.libc {
            Some(Libc::Musl) => self.arch.musl_triples,
            _ => self.arch.glibc_triples,
        };
        triples.first().copied().unwrap_or(self.arch.nix_cpu)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.oci())
    }
}

fn contains_dash_bounded(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(i, _)| {
        let before_ok = i == 0 || haystack.as_bytes()[i - 1] == b'-';
        let end = i + needle.len();
        let after_ok = end == haystack.len() || haystack.as_bytes()[end] == b'-';
        before_ok && after_ok
    })
}

fn parse_oci(name: &str) -> Option<Platform> {
    let mut parts = name.split('/');
    let os = Os::parse(parts.next()?)?;
    let arch_name = parts.next()?;
    let variant = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let arch = ARCHES.iter().find(|a| {
        a.oci_arch == arch_name
            && match variant {
                None => a.oci_variant.is_none() || is_default_variant(a),
                Some(v) => a.oci_variant == Some(v) || a.oci_variant_aliases.contains(&v),
            }
    })?;
    if os != Os::Linux && !arch.other_os_names.iter().any(|(_, o)| *o == os) {
        return None;
    }
    Some(Platform {
        os,
        arch,
        libc: None,
    })
}

/// `linux/arm` without a variant means v7, as in the OCI image index spec's examples and
/// in Docker's normalisation.
fn is_default_variant(arch: &Arch) -> bool {
    arch.oci_variant.is_some()
        && ARCHES
            .iter()
            .filter(|a| a.oci_arch == arch.oci_arch)
            .max_by_key(|a| a.oci_variant)
            .is_some_and(|a| a == arch)
}

/// Every name the table accepts, for suggestions and for the `platforms` listing.
pub fn all_names() -> Vec<String> {
    let mut names = Vec::new();
    for a in ARCHES {
        names.push(Platform::linux(a).oci());
        names.push(a.nix_system());
        names.extend(a.pkgs_cross_glibc.iter().map(|s| s.to_string()));
        names.extend(a.pkgs_cross_musl.iter().map(|s| s.to_string()));
        names.extend(a.triples().map(str::to_string));
        names.extend(a.other_os_names.iter().map(|(n, _)| n.to_string()));
    }
    names
}

fn close_matches(name: &str) -> Vec<String> {
    let mut scored: Vec<(f64, String)> = all_names()
        .into_iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&n.to_lowercase(), &name.to_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown platform '{name}'{}", suggest(.suggestions))]
pub struct UnknownPlatform {
    pub name: String,
    pub suggestions: Vec<String>,
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        "; run `mab-verify platforms` to list every accepted name".to_string()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// Rows matching an ELF's machine, class and byte order.
pub fn arches_for_elf(machine: u16, class: Class, byte_order: ByteOrder) -> Vec<&'static Arch> {
    ARCHES
        .iter()
        .filter(|a| a.elf_machine == machine && a.class == class && a.byte_order == byte_order)
        .collect()
}

pub fn arch_for_macho(cpu_type: u32) -> Option<&'static Arch> {
    ARCHES.iter().find(|a| a.macho_cpu_type == Some(cpu_type))
}

pub fn arch_for_pe(machine: u16) -> Option<&'static Arch> {
    ARCHES.iter().find(|a| a.pe_machine == Some(machine))
}

/// Which row (if any) a loader path names, with its libc; Nix store loaders match by file name.
pub fn arches_for_loader(loader: &str) -> Vec<(&'static Arch, Libc)> {
    let name = file_name(loader);
    ARCHES
        .iter()
        .filter_map(|a| a.libc_of_loader(name).map(|l| (a, l)))
        .collect()
}

#[cfg(test)]
mod tests;
