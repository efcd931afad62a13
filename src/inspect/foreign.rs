//! Mach-O (darwin) and PE (mingw) identification: enough to name the machine, not to run it.

use crate::platform::{Arch, arch_for_macho, arch_for_pe};
use goblin::mach::{Mach, SingleArch};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ForeignFacts {
    /// Raw machine number: Mach-O cputype or PE COFF machine.
    pub machine: u32,
    pub machine_name: String,
    #[serde(skip)]
    pub arch: Option<&'static Arch>,
    /// Every slice of a universal (fat) Mach-O; one entry otherwise.
    pub slices: Vec<String>,
}

pub(super) fn macho(m: &Mach<'_>) -> Result<ForeignFacts, String> {
    let cputypes: Vec<(u32, u32)> = match m {
        Mach::Binary(b) => vec![(b.header.cputype, b.header.cpusubtype)],
        Mach::Fat(fat) => fat
            .iter_arches()
            .map(|a| {
                a.map(|a| (a.cputype, a.cpusubtype))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?,
    };
    if let Mach::Fat(fat) = m {
        // Archives inside a fat file are not executables; the header list is enough.
        for slice in fat.into_iter().flatten() {
            if let SingleArch::Archive(_) = slice {
                return Err("universal file holds a static archive, not an executable".into());
            }
        }
    }
    let first = *cputypes.first().ok_or("universal Mach-O with no slices")?;
    Ok(ForeignFacts {
        machine: first.0,
        machine_name: macho_name(first),
        arch: arch_for_macho(first.0),
        slices: cputypes.iter().map(|c| macho_name(*c)).collect(),
    })
}

pub(super) fn pe(pe: &goblin::pe::PE<'_>) -> ForeignFacts {
    let machine = pe.header.coff_header.machine;
    let name = goblin::pe::header::machine_to_str(machine).to_string();
    ForeignFacts {
        machine: u32::from(machine),
        machine_name: name.clone(),
        arch: arch_for_pe(machine),
        slices: vec![name],
    }
}

fn macho_name((cputype, subtype): (u32, u32)) -> String {
    // The high byte of the subtype holds capability bits that the name table does not list.
    goblin::mach::cputype::get_arch_name_from_types(cputype, subtype & 0x00ff_ffff)
        .map_or_else(|| format!("Mach-O cputype {cputype:#x}"), str::to_string)
}
