//! ELF header, ABI flags, dynamic section, notes and ARM attributes, read with object's lazy ELF API.

use crate::platform::{
    self, ArmVersionSource, ByteOrder, Class, FloatWidth, Libc, MipsAbi, ObservedAbi, Os, Platform,
    arches_for_loader, os_of_loader,
};
use object::Endianness;
use object::elf as E;
use object::read::StringTable;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader, SectionTable};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfType {
    Executable,
    SharedObject,
    Relocatable,
    Core,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    Static,
    StaticPie,
    Dynamic,
    SharedLibrary,
    Object,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    /// The OS the file names (notes, EI_OSABI, loader, Go build info); `None` when it says
    /// nothing, as Linux and bare-metal files often do.
    pub os: Option<Os>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_evidence: Option<String>,
    /// From the loader for executables, from DT_NEEDED and symbol versions for libraries;
    /// `None` for static files, which carry no libc constraint.
    pub libc: Option<Libc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<super::elf_os::GoBuildInfo>,
    /// x86-64 microarchitecture level from GNU_PROPERTY_X86_ISA_1_NEEDED or GOAMD64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x86_level: Option<u8>,
}

impl ElfFacts {
    pub fn platform(&self) -> Option<Platform> {
        let arch = platform::identify_elf(
            self.machine,
            self.class,
            self.byte_order,
            &self.abi,
            self.os,
        )?;
        Some(Platform {
            os: self.os.unwrap_or(Os::Linux),
            arch,
            libc: self.libc,
            level: None,
        })
    }

    /// The libc the file links against, if it says (see the field).
    pub fn libc(&self) -> Option<Libc> {
        self.libc
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

/// Reads only the parts of the file that hold facts: the headers, the dynamic segment and its
/// strings, notes and `.ARM.attributes`. Callers may pass a memory map of a large file, so
/// nothing here walks symbols or relocations (that would page in megabytes for nothing).
pub(super) fn facts(data: &[u8]) -> Result<ElfFacts, String> {
    // Byte 4 of e_ident is EI_CLASS.
    match data.get(4) {
        Some(&E::ELFCLASS32) => facts_of::<E::FileHeader32<Endianness>>(data),
        Some(&E::ELFCLASS64) => facts_of::<E::FileHeader64<Endianness>>(data),
        other => Err(format!("unknown ELF class {other:?}")),
    }
}

fn facts_of<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfFacts, String> {
    let header = H::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let e_type = header.e_type(endian);
    let e_flags = header.e_flags(endian);
    let e_machine = header.e_machine(endian);
    let class = if header.is_class_64() {
        Class::Elf64
    } else {
        Class::Elf32
    };
    let byte_order = if header.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let elf_type = match e_type {
        E::ET_EXEC => ElfType::Executable,
        E::ET_DYN => ElfType::SharedObject,
        E::ET_REL => ElfType::Relocatable,
        E::ET_CORE => ElfType::Core,
        _ => ElfType::Other,
    };
    refuse_ambiguous_segments::<H>(endian, segments)?;
    let mut interpreter = None;
    for segment in segments {
        if let Some(path) = segment
            .interpreter(endian, data)
            .map_err(|e| e.to_string())?
        {
            // The kernel opens these bytes as a path; a lossy or skipped reading would
            // report another loader (or none: "static-pie").
            interpreter = Some(
                std::str::from_utf8(path)
                    .map_err(|_| {
                        format!(
                            "its PT_INTERP {:?} is not UTF-8; refused",
                            String::from_utf8_lossy(path)
                        )
                    })?
                    .to_string(),
            );
        }
    }
    let dynamic = read_dynamic::<H>(endian, data, segments)?;
    if dynamic.needed.len() > MAX_NEEDED {
        return Err(format!(
            "it lists {} DT_NEEDED libraries, more than the {MAX_NEEDED} this reader follows; refused rather than checking only some",
            dynamic.needed.len()
        ));
    }
    let linkage = match (elf_type, interpreter.is_some()) {
        (ElfType::Relocatable | ElfType::Core | ElfType::Other, _) => Linkage::Object,
        // libc.so.6 has a PT_INTERP so it can print its version, yet it is a library.
        (ElfType::SharedObject, true) if dynamic.soname.is_some() => Linkage::SharedLibrary,
        (_, true) => Linkage::Dynamic,
        (ElfType::Executable, false) => Linkage::Static,
        (ElfType::SharedObject, false) => {
            let pie_flag = dynamic.flags_1 & u64::from(E::DF_1_PIE) != 0;
            let entry: u64 = header.e_entry(endian).into();
            if pie_flag || (dynamic.soname.is_none() && entry != 0 && dynamic.needed.is_empty()) {
                Linkage::StaticPie
            } else {
                Linkage::SharedLibrary
            }
        }
    };
    let arm = if e_machine == E::EM_ARM {
        arm_attributes::<H>(endian, data, &sections)?
    } else {
        ArmAttributes::default()
    };
    let os_facts = super::elf_os::read::<H>(
        endian,
        data,
        header,
        segments,
        &sections,
        interpreter.as_deref(),
    );
    let libc = match interpreter.as_deref() {
        // An OS-owned loader names the libc (or none, as illumos's): never fall back to a
        // Linux row that happens to share the loader's file name.
        Some(interp) => match os_of_loader(interp) {
            Some((_, libc)) => libc,
            None => arches_for_loader(interp).first().map(|(_, l)| *l),
        },
        None => super::elf_os::libc_of_needed(
            &dynamic.needed,
            os_facts.glibc_versions,
            os_facts.android,
        ),
    };
    let mut abi = decode_abi(e_machine, e_flags, class, &arm);
    if let ObservedAbi::Arm {
        arch_version: version @ None,
        version_from,
        ..
    } = &mut abi
        && let Some(v) = os_facts.go.as_ref().and_then(|g| g.arm_version())
    {
        *version = Some(v);
        *version_from = Some(ArmVersionSource::GoBuildInfo);
    }
    let x86_level = os_facts
        .x86_isa_needed
        .or_else(|| os_facts.go.as_ref().and_then(|g| g.amd64_level()));
    Ok(ElfFacts {
        machine: e_machine,
        machine_name: goblin::elf::header::machine_to_str(e_machine).to_string(),
        class,
        byte_order,
        os_abi: header.e_ident().os_abi,
        elf_type,
        flags: e_flags,
        abi,
        linkage,
        interpreter,
        needed: dynamic.needed,
        runpath: split_paths(&dynamic.runpath),
        rpath: split_paths(&dynamic.rpath),
        soname: dynamic.soname,
        build_id: build_id::<H>(endian, data, segments),
        stripped: !sections.iter().any(|s| s.sh_type(endian) == E::SHT_SYMTAB),
        os: os_facts.os,
        os_evidence: os_facts.os_evidence,
        libc,
        go: os_facts.go,
        x86_level,
    })
}

/// More DT_NEEDED entries than this are refused, never silently cut (the closure follows as many).
pub const MAX_NEEDED: usize = 512;

/// Constructs the kernel and ld.so read one way and a header reader could read another:
/// two PT_INTERP (the kernel takes the first), two PT_DYNAMIC, and a PT_DYNAMIC whose file
/// offset is not where its address is loaded from (ld.so reads the address).
fn refuse_ambiguous_segments<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    segments: &[H::ProgramHeader],
) -> Result<(), String> {
    let count = |t: u32| segments.iter().filter(|s| s.p_type(endian) == t).count();
    if count(E::PT_INTERP) > 1 {
        return Err("it has two PT_INTERP segments (the kernel uses the first); refused".into());
    }
    if count(E::PT_DYNAMIC) > 1 {
        return Err("it has two PT_DYNAMIC segments; refused".into());
    }
    if let Some(d) = segments.iter().find(|s| s.p_type(endian) == E::PT_DYNAMIC) {
        let offset: u64 = d.p_offset(endian).into();
        let vaddr: u64 = d.p_vaddr(endian).into();
        if file_offset::<H>(endian, segments, vaddr) != Some(offset) {
            return Err(format!(
                "its PT_DYNAMIC at file offset {offset:#x} is not what a PT_LOAD maps at its address {vaddr:#x} (ld.so reads the address); refused"
            ));
        }
    }
    Ok(())
}

#[derive(Default)]
struct DynamicFacts {
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    flags_1: u64,
}

/// The `PT_DYNAMIC` entries, with strings from the table `DT_STRTAB` points at. Found through
/// the program headers, as the loader does, so stripped section headers do not hide them.
fn read_dynamic<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &[u8],
    segments: &[H::ProgramHeader],
) -> Result<DynamicFacts, String> {
    let mut out = DynamicFacts::default();
    let Some(entries) = segments
        .iter()
        .find_map(|s| s.dynamic(endian, data).transpose())
        .transpose()
        .map_err(|e| e.to_string())?
    else {
        return Ok(out);
    };
    let entries = entries
        .iter()
        .take_while(|d| d.d_tag(endian).into() != u64::from(E::DT_NULL));
    let value_of = |tag: u32| {
        entries
            .clone()
            .find(|d| d.tag32(endian) == Some(tag))
            .map(|d| d.d_val(endian).into())
    };
    let (Some(strtab), Some(strsz)) = (value_of(E::DT_STRTAB), value_of(E::DT_STRSZ)) else {
        return Ok(out);
    };
    let start = file_offset::<H>(endian, segments, strtab)
        .ok_or("the dynamic string table's address is in no loaded segment")?;
    let strings = StringTable::new(data, start, start.saturating_add(strsz));
    for entry in entries {
        let text = || {
            entry
                .string(endian, strings)
                .ok()
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_string)
        };
        match entry.tag32(endian) {
            Some(E::DT_NEEDED) => out.needed.extend(text()),
            Some(E::DT_SONAME) => out.soname = text(),
            Some(E::DT_RPATH) => out.rpath.extend(text()),
            Some(E::DT_RUNPATH) => out.runpath.extend(text()),
            Some(E::DT_FLAGS_1) => out.flags_1 = entry.d_val(endian).into(),
            _ => {}
        }
    }
    Ok(out)
}

fn file_offset<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    segments: &[H::ProgramHeader],
    address: u64,
) -> Option<u64> {
    segments.iter().find_map(|s| {
        let vaddr: u64 = s.p_vaddr(endian).into();
        let filesz: u64 = s.p_filesz(endian).into();
        if s.p_type(endian) != E::PT_LOAD || address < vaddr || address - vaddr >= filesz {
            return None;
        }
        // A crafted p_offset can push the sum past u64 (found by the `binary` fuzz target).
        (address - vaddr).checked_add(s.p_offset(endian).into())
    })
}

fn split_paths(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| e.split(':'))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn build_id<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &[u8],
    segments: &[H::ProgramHeader],
) -> Option<String> {
    segments.iter().find_map(|segment| {
        let mut notes = segment.notes(endian, data).ok()??;
        while let Ok(Some(note)) = notes.next() {
            if note.n_type(endian) == E::NT_GNU_BUILD_ID && note.name() == E::ELF_NOTE_GNU {
                return Some(hex::encode(note.desc()));
            }
        }
        None
    })
}

fn decode_abi(machine: u16, flags: u32, class: Class, arm: &ArmAttributes) -> ObservedAbi {
    match machine {
        E::EM_ARM => {
            let hard_float = if flags & E::EF_ARM_ABI_FLOAT_HARD != 0 {
                Some(true)
            } else if flags & E::EF_ARM_ABI_FLOAT_SOFT != 0 {
                Some(false)
            } else {
                arm.vfp_args.map(|v| v == 1)
            };
            let arch_version = arm.cpu_arch.and_then(arm_arch_version);
            ObservedAbi::Arm {
                hard_float,
                arch_version,
                eabi_version: (flags >> 24) as u8,
                fp_arch: arm.fp_arch.and_then(|v| u8::try_from(v).ok()),
                version_from: arch_version.map(|_| ArmVersionSource::Attributes),
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
                class == Class::Elf64,
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
    }
}

#[derive(Default)]
struct ArmAttributes {
    cpu_arch: Option<u64>,
    fp_arch: Option<u64>,
    vfp_args: Option<u64>,
}

// Tag numbers from the ARM "Addenda to the ABI" (aeabi attributes); object has no names for them.
const TAG_FILE: u8 = 1;
const TAG_CPU_ARCH: u64 = 6;
const TAG_FP_ARCH: u64 = 10;
const TAG_ABI_VFP_ARGS: u64 = 28;

/// Reads Tag_CPU_arch and Tag_ABI_VFP_args from `.ARM.attributes`, stopping at the first tag
/// whose value type we cannot know (string tags other than the few listed).
fn arm_attributes<'data, H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'data [u8],
    sections: &SectionTable<'data, H, &'data [u8]>,
) -> Result<ArmAttributes, String> {
    let mut out = ArmAttributes::default();
    let Some(section) = sections
        .iter()
        .find(|s| s.sh_type(endian) == E::SHT_ARM_ATTRIBUTES)
    else {
        return Ok(out);
    };
    let attrs = section.attributes(endian, data).map_err(|_| {
        "ARM attributes section lies past the end of the file (truncated?)".to_string()
    })?;
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
                    TAG_FP_ARCH => out.fp_arch = Some(value),
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
