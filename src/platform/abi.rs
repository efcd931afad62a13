//! ABI facts: what a row demands beyond machine/class/byte order, what a binary's e_flags and
//! attributes say, and whether the two fit.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    Ppc64ElfV1,
    Ppc64ElfV2,
    MipsO32,
    MipsN32,
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
            AbiSpec::Ppc64ElfV1 => f.write_str("ELFv1"),
            AbiSpec::Ppc64ElfV2 => f.write_str("ELFv2"),
            AbiSpec::MipsO32 => f.write_str("MIPS o32"),
            AbiSpec::MipsN32 => f.write_str("MIPS n32"),
            AbiSpec::MipsN64 => f.write_str("MIPS n64"),
            AbiSpec::LoongArchFloat(w) => write!(f, "LoongArch {w:?} float ABI"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MipsAbi {
    N64,
    N32,
    O32,
    O64,
    Eabi32,
    Eabi64,
}

/// Where an ARM architecture version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArmVersionSource {
    /// `.ARM.attributes` Tag_CPU_arch.
    Attributes,
    /// Go's build info (`GOARM`).
    GoBuildInfo,
}

/// What a binary's e_flags and attributes say about its ABI, decoded per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum ObservedAbi {
    None,
    Arm {
        hard_float: Option<bool>,
        arch_version: Option<u8>,
        eabi_version: u8,
        /// Tag_FP_arch: 0 means the code needs no FPU.
        #[serde(skip_serializing_if = "Option::is_none")]
        fp_arch: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version_from: Option<ArmVersionSource>,
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
                version_from,
                ..
            } => {
                match (arch_version, version_from) {
                    (Some(v), Some(ArmVersionSource::GoBuildInfo)) => {
                        write!(f, "ARMv{v} (GOARM) ")?
                    }
                    (Some(v), _) => write!(f, "ARMv{v} ")?,
                    (None, _) => f.write_str("ARM (arch version not recorded) ")?,
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

/// How a binary's ABI fits a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbiFit {
    Fits,
    /// The file does not record what would decide it; the string says what is missing.
    Unknown(String),
    Misfit(String),
}

impl AbiSpec {
    /// `None` when a binary with `observed` can run on this row; otherwise why not. Used to
    /// pick rows and to judge libraries; unknown facts do not rule a row out here.
    pub fn mismatch(&self, observed: &ObservedAbi) -> Option<String> {
        match self.fit(observed, false) {
            AbiFit::Misfit(why) => Some(why),
            _ => None,
        }
    }

    /// The verdict for one binary. A static executable meets no loader and no library, so
    /// only the CPU architecture and FPU it needs matter, not its calling convention.
    pub fn fit(&self, observed: &ObservedAbi, static_executable: bool) -> AbiFit {
        let misfit = |why: String| AbiFit::Misfit(why);
        match (self, observed) {
            (AbiSpec::None, _) => AbiFit::Fits,
            (
                AbiSpec::Arm {
                    hard_float,
                    arch_version,
                },
                ObservedAbi::Arm {
                    hard_float: seen_float,
                    arch_version: seen_version,
                    fp_arch,
                    ..
                },
            ) => {
                let name = |hard: bool| if hard { "hard-float" } else { "soft-float" };
                if let Some(seen) = seen_float
                    && seen != hard_float
                    && !static_executable
                {
                    return misfit(format!(
                        "{} calling convention, but the platform uses {}",
                        name(*seen),
                        name(*hard_float)
                    ));
                }
                if static_executable
                    && !hard_float
                    && let Some(fp) = fp_arch
                    && *fp > 0
                {
                    return misfit(format!(
                        "the code needs a VFP unit (Tag_FP_arch {fp}), which a soft-float ARMv{arch_version} platform lacks"
                    ));
                }
                match seen_version {
                    Some(v) if v > arch_version => misfit(format!(
                        "built for ARMv{v}, which an ARMv{arch_version} CPU cannot run"
                    )),
                    Some(_) => AbiFit::Fits,
                    None => AbiFit::Unknown(
                        "the ARM architecture version is not recorded (no .ARM.attributes Tag_CPU_arch, no Go build info)".into(),
                    ),
                }
            }
            (AbiSpec::RiscvFloat(want), ObservedAbi::Riscv { float }) => {
                if want == float || (static_executable && float_fits(*float, *want)) {
                    AbiFit::Fits
                } else {
                    misfit(format!(
                        "{float:?} float ABI, but the platform uses {want:?}"
                    ))
                }
            }
            (AbiSpec::Ppc64ElfV2, ObservedAbi::Ppc64 { elf_abi_version }) => {
                if *elf_abi_version == 1 {
                    misfit("ELFv1 binary on an ELFv2 platform".into())
                } else {
                    AbiFit::Fits
                }
            }
            (AbiSpec::Ppc64ElfV1, ObservedAbi::Ppc64 { elf_abi_version }) => {
                if *elf_abi_version == 2 {
                    misfit("ELFv2 binary on an ELFv1 platform".into())
                } else {
                    AbiFit::Fits
                }
            }
            (AbiSpec::MipsN64, ObservedAbi::Mips { abi }) => mips(*abi, MipsAbi::N64),
            (AbiSpec::MipsN32, ObservedAbi::Mips { abi }) => mips(*abi, MipsAbi::N32),
            (AbiSpec::MipsO32, ObservedAbi::Mips { abi }) => mips(*abi, MipsAbi::O32),
            (AbiSpec::LoongArchFloat(want), ObservedAbi::LoongArch { float: Some(seen) }) => {
                if want == seen || (static_executable && float_fits(*seen, *want)) {
                    AbiFit::Fits
                } else {
                    misfit(format!(
                        "{seen:?} float ABI, but the platform uses {want:?}"
                    ))
                }
            }
            (AbiSpec::LoongArchFloat(_), ObservedAbi::LoongArch { float: None }) => {
                AbiFit::Unknown("the LoongArch float ABI is not recorded in e_flags".into())
            }
            (spec, seen) => misfit(format!("ABI {seen} does not fit {spec}")),
        }
    }

    /// Exact agreement, used to pick among rows that share a machine.
    pub(super) fn exactly(&self, observed: &ObservedAbi) -> bool {
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
            (AbiSpec::Ppc64ElfV1, ObservedAbi::Ppc64 { elf_abi_version }) => *elf_abi_version <= 1,
            (AbiSpec::Ppc64ElfV2, ObservedAbi::Ppc64 { elf_abi_version }) => *elf_abi_version == 2,
            _ => self.mismatch(observed).is_none(),
        }
    }
}

/// A static binary using less floating point than the row's CPU has still runs there.
fn float_fits(seen: FloatWidth, row: FloatWidth) -> bool {
    let rank = |w: FloatWidth| match w {
        FloatWidth::Soft => 0,
        FloatWidth::Single => 1,
        FloatWidth::Double => 2,
        FloatWidth::Quad => 3,
    };
    rank(seen) <= rank(row)
}

fn mips(seen: MipsAbi, want: MipsAbi) -> AbiFit {
    if seen == want {
        AbiFit::Fits
    } else {
        AbiFit::Misfit(format!("MIPS {seen:?} ABI, but the platform uses {want:?}"))
    }
}
