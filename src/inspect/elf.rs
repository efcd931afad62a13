//! ELF header, ABI flags, dynamic section and notes, read with goblin (object for ARM attributes).

use crate::platform::{
    self, ByteOrder, Class, FloatWidth, Libc, MipsAbi, ObservedAbi, Platform, arches_for_loader,
};
use goblin::elf::Elf;
use object::elf as E;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfType {
    Executable,
    SharedObject,
    Relocatable,
    Core,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    Static,
    StaticPie,
    Dynamic,
    SharedLibrary,
    Object,
}

#[derive(Debug, Clone, Serialize)]
pub struct ElfFacts {
    pub machine: u16,
    pub machine_name: String,
    pub class: Class,
    pub byte_order: ByteOrder,
    pub os_abi: u8,
    pub elf_type: ElfType,
    pub flags: u32,
    pub abi: ObservedAbi,
    pub linkage: Linkage,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
    pub rpath: Vec<String>,
    pub soname: Option<String>,
    pub build_id: Option<String>,
    pub stripped: bool,
}

impl ElfFacts {
    pub fn platform(&self) -> Option<Platform> {
        let arch = platform::identify_elf(self.machine, self.class, self.byte_order, &self.abi)?;
        Some(Platform {
            os: platform::Os::Linux,
            arch,
            libc: self.libc(),
        })
    }

    /// The libc the loader's file name implies, if it is one the table knows.
    pub fn libc(&self) -> Option<Libc> {
        let interp = self.interpreter.as_deref()?;
        arches_for_loader(interp).first().map(|(_, l)| *l)
    }

    pub fn is_executable(&self) -> bool {
        matches!(
            self.linkage,
            Linkage::Static | Linkage::StaticPie | Linkage::Dynamic
        )
    }

    pub fn identity(&self) -> String {
        super::describe_identity(&self.machine_name, self.class, self.byte_order)
    }
}

pub(super) fn facts(elf: &Elf<'_>, bytes: &[u8]) -> Result<ElfFacts, String> {
    let h = &elf.header;
    let class = if elf.is_64 {
        Class::Elf64
    } else {
        Class::Elf32
    };
    let byte_order = if elf.little_endian {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let elf_type = match h.e_type {
        E::ET_EXEC => ElfType::Executable,
        E::ET_DYN => ElfType::SharedObject,
        E::ET_REL => ElfType::Relocatable,
        E::ET_CORE => ElfType::Core,
        _ => ElfType::Other,
    };
    let flags_1 = elf.dynamic.as_ref().map_or(0, |d| d.info.flags_1);
    let linkage = match (elf_type, elf.interpreter.is_some()) {
        (ElfType::Relocatable | ElfType::Core | ElfType::Other, _) => Linkage::Object,
        // libc.so.6 has a PT_INTERP so it can print its version, yet it is a library.
        (ElfType::SharedObject, true) if elf.soname.is_some() => Linkage::SharedLibrary,
        (_, true) => Linkage::Dynamic,
        (ElfType::Executable, false) => Linkage::Static,
        (ElfType::SharedObject, false) => {
            let pie_flag = flags_1 & u64::from(E::DF_1_PIE) != 0;
            if pie_flag || (elf.soname.is_none() && elf.entry != 0 && elf.libraries.is_empty()) {
                Linkage::StaticPie
            } else {
                Linkage::SharedLibrary
            }
        }
    };
    Ok(ElfFacts {
        machine: h.e_machine,
        machine_name: goblin::elf::header::machine_to_str(h.e_machine).to_string(),
        class,
        byte_order,
        os_abi: h.e_ident[goblin::elf::header::EI_OSABI],
        elf_type,
        flags: h.e_flags,
        abi: decode_abi(elf, bytes)?,
        linkage,
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpath: split_paths(&elf.runpaths),
        rpath: split_paths(&elf.rpaths),
        soname: elf.soname.map(str::to_string),
        build_id: build_id(elf, bytes),
        stripped: !elf
            .section_headers
            .iter()
            .any(|s| s.sh_type == E::SHT_SYMTAB),
    })
}

fn split_paths(entries: &[&str]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| e.split(':'))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn build_id(elf: &Elf<'_>, bytes: &[u8]) -> Option<String> {
    let notes = elf.iter_note_headers(bytes)?;
    notes
        .flatten()
        .find(|n| n.n_type == E::NT_GNU_BUILD_ID && n.name == "GNU")
        .map(|n| hex::encode(n.desc))
}

fn decode_abi(elf: &Elf<'_>, bytes: &[u8]) -> Result<ObservedAbi, String> {
    let flags = elf.header.e_flags;
    Ok(match elf.header.e_machine {
        E::EM_ARM => {
            let attrs = arm_attributes(elf, bytes)?;
            let hard_float = if flags & E::EF_ARM_ABI_FLOAT_HARD != 0 {
                Some(true)
            } else if flags & E::EF_ARM_ABI_FLOAT_SOFT != 0 {
                Some(false)
            } else {
                attrs.vfp_args.map(|v| v == 1)
            };
            ObservedAbi::Arm {
                hard_float,
                arch_version: attrs.cpu_arch.and_then(arm_arch_version),
                eabi_version: (flags >> 24) as u8,
            }
        }
        E::EM_RISCV => ObservedAbi::Riscv {
            float: match flags & E::EF_RISCV_FLOAT_ABI {
                E::EF_RISCV_FLOAT_ABI_SOFT => FloatWidth::Soft,
                E::EF_RISCV_FLOAT_ABI_SINGLE => FloatWidth::Single,
                E::EF_RISCV_FLOAT_ABI_DOUBLE => FloatWidth::Double,
                _ => FloatWidth::Quad,
            },
        },
        E::EM_MIPS => ObservedAbi::Mips {
            abi: match (
                flags & E::EF_MIPS_ABI,
                flags & E::EF_MIPS_ABI2 != 0,
                elf.is_64,
            ) {
                (E::EF_MIPS_ABI_O32, _, _) => MipsAbi::O32,
                (E::EF_MIPS_ABI_O64, _, _) => MipsAbi::O64,
                (E::EF_MIPS_ABI_EABI32, _, _) => MipsAbi::Eabi32,
                (E::EF_MIPS_ABI_EABI64, _, _) => MipsAbi::Eabi64,
                (_, true, _) => MipsAbi::N32,
                (_, false, true) => MipsAbi::N64,
                (_, false, false) => MipsAbi::O32,
            },
        },
        E::EM_PPC64 => ObservedAbi::Ppc64 {
            elf_abi_version: (flags & E::EF_PPC64_ABI) as u8,
        },
        E::EM_LOONGARCH => ObservedAbi::LoongArch {
            float: match flags & E::EF_LARCH_ABI_MODIFIER_MASK {
                E::EF_LARCH_ABI_SOFT_FLOAT => Some(FloatWidth::Soft),
                E::EF_LARCH_ABI_SINGLE_FLOAT => Some(FloatWidth::Single),
                E::EF_LARCH_ABI_DOUBLE_FLOAT => Some(FloatWidth::Double),
                _ => None,
            },
        },
        _ => ObservedAbi::None,
    })
}

#[derive(Default)]
struct ArmAttributes {
    cpu_arch: Option<u64>,
    vfp_args: Option<u64>,
}

// Tag numbers from the ARM "Addenda to the ABI" (aeabi attributes); object has no names for them.
const TAG_FILE: u8 = 1;
const TAG_CPU_ARCH: u64 = 6;
const TAG_ABI_VFP_ARGS: u64 = 28;

/// Reads Tag_CPU_arch and Tag_ABI_VFP_args from `.ARM.attributes`, stopping at the first tag
/// whose value type we cannot know (string tags other than the few listed).
fn arm_attributes(elf: &Elf<'_>, bytes: &[u8]) -> Result<ArmAttributes, String> {
    let mut out = ArmAttributes::default();
    let Some(section) = elf
        .section_headers
        .iter()
        .find(|s| s.sh_type == E::SHT_ARM_ATTRIBUTES)
    else {
        return Ok(out);
    };
    let range = section
        .file_range()
        .ok_or("ARM attributes section has no file range")?;
    let data = bytes
        .get(range)
        .ok_or("ARM attributes section lies past the end of the file (truncated?)")?;
    let endian = object::Endianness::Little;
    let attrs =
        object::read::elf::AttributesSection::<object::elf::FileHeader32<object::Endianness>>::new(
            endian, data,
        )
        .map_err(|e| e.to_string())?;
    let Ok(mut subsections) = attrs.subsections() else {
        return Ok(out);
    };
    while let Ok(Some(sub)) = subsections.next() {
        if sub.vendor() != b"aeabi" {
            continue;
        }
        let mut subsubs = sub.subsubsections();
        while let Ok(Some(subsub)) = subsubs.next() {
            if subsub.tag() != TAG_FILE {
                continue;
            }
            let mut reader = subsub.attributes();
            while let Ok(Some(tag)) = reader.read_tag() {
                // Odd tags above 32 and the listed ones are strings, the rest ULEB128 integers.
                let is_string = matches!(tag, 4 | 5 | 67) || (tag > 32 && tag % 2 == 1);
                if is_string {
                    if reader.read_string().is_err() {
                        break;
                    }
                    continue;
                }
                let Ok(value) = reader.read_integer() else {
                    break;
                };
                // Tag_compatibility carries a flag and then a vendor string.
                if tag == 32 && reader.read_string().is_err() {
                    break;
                }
                match tag {
                    TAG_CPU_ARCH => out.cpu_arch = Some(value),
                    TAG_ABI_VFP_ARGS => out.vfp_args = Some(value),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// Tag_CPU_arch values to the architecture version a platform row speaks of.
fn arm_arch_version(cpu_arch: u64) -> Option<u8> {
    Some(match cpu_arch {
        1 | 2 => 4,
        3..=5 => 5,
        6..=9 | 11 | 12 => 6,
        10 | 13 => 7,
        14.. => 8,
        _ => return None,
    })
}
