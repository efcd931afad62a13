//! Mach-O (darwin, iOS), PE (Windows, UEFI) and wasm identification: machine, OS per slice,
//! C runtime; enough to judge the platform, not to run it.

use crate::platform::{Arch, Libc, Os, arch_for_macho, arch_for_pe, arch_for_wasm};
use goblin::mach::load_command::CommandVariant;
use goblin::mach::{Mach, MachO, SingleArch};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ForeignFacts {
    /// Raw machine number: Mach-O cputype or PE COFF machine (0 for wasm).
    pub machine: u32,
    pub machine_name: String,
    #[serde(skip)]
    pub arch: Option<&'static Arch>,
    /// Every slice of a universal (fat) Mach-O; one entry otherwise.
    pub slices: Vec<String>,
    /// The OS of each slice, from LC_BUILD_VERSION / LC_VERSION_MIN_* (Mach-O), the
    /// subsystem (PE) or WASI imports (wasm); `None` where the file does not say.
    pub slice_oses: Vec<Option<Os>>,
    #[serde(skip)]
    pub slice_arches: Vec<Option<&'static Arch>>,
    /// The C runtime a PE uses (msvcrt, mingw-w64's ucrt, or MSVC's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libc: Option<Libc>,
    /// What in the file says which C runtime it is (PE only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crt_evidence: Option<String>,
    /// A program rather than a library (MH_EXECUTE, a PE without IMAGE_FILE_DLL, a WASI
    /// command exporting `_start`).
    pub executable: bool,
    /// DLLs a PE imports, or modules a wasm module imports from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
}

pub(super) fn macho(m: &Mach<'_>) -> Result<ForeignFacts, String> {
    let mut slices: Vec<((u32, u32), Option<Os>)> = Vec::new();
    let mut executable = false;
    match m {
        Mach::Binary(b) => {
            executable = b.header.filetype == goblin::mach::header::MH_EXECUTE;
            slices.push(((b.header.cputype, b.header.cpusubtype), macho_os(b)));
        }
        Mach::Fat(fat) => {
            let arches: Vec<(u32, u32)> = fat
                .iter_arches()
                .map(|a| {
                    a.map(|a| (a.cputype, a.cpusubtype))
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?;
            for (i, cpu) in arches.into_iter().enumerate() {
                match fat.get(i) {
                    Ok(SingleArch::MachO(b)) => {
                        executable |= b.header.filetype == goblin::mach::header::MH_EXECUTE;
                        slices.push((cpu, macho_os(&b)));
                    }
                    Ok(SingleArch::Archive(_)) => {
                        return Err(
                            "universal file holds a static archive, not an executable".into()
                        );
                    }
                    Err(e) => return Err(format!("slice {i}: {e}")),
                }
            }
        }
    }
    let (first, first_os) = *slices.first().ok_or("universal Mach-O with no slices")?;
    Ok(ForeignFacts {
        machine: first.0,
        machine_name: macho_name(first),
        arch: arch_for_macho(first.0),
        slices: slices.iter().map(|(c, _)| macho_name(*c)).collect(),
        slice_oses: slices.iter().map(|(_, os)| *os).collect(),
        slice_arches: slices.iter().map(|(c, _)| arch_for_macho(c.0)).collect(),
        libc: first_os.map(|_| Libc::LibSystem),
        crt_evidence: None,
        executable,
        imports: Vec::new(),
    })
}

/// LC_BUILD_VERSION's platform, else the LC_VERSION_MIN_* command present.
fn macho_os(m: &MachO<'_>) -> Option<Os> {
    // Platform numbers from <mach-o/loader.h>: 1 macOS, 2 iOS, 6 Mac Catalyst, 7 iOS simulator.
    m.load_commands.iter().find_map(|lc| match &lc.command {
        CommandVariant::BuildVersion(b) => match b.platform {
            1 | 6 => Some(Os::Darwin),
            2 | 7 => Some(Os::Ios),
            _ => None,
        },
        CommandVariant::VersionMinMacosx(_) => Some(Os::Darwin),
        CommandVariant::VersionMinIphoneos(_) => Some(Os::Ios),
        _ => None,
    })
}

pub(super) fn pe(pe: &goblin::pe::PE<'_>) -> ForeignFacts {
    let machine = pe.header.coff_header.machine;
    let name = goblin::pe::header::machine_to_str(machine).to_string();
    let imports: Vec<String> = pe
        .libraries
        .iter()
        .map(|l| l.to_ascii_lowercase())
        .collect();
    let subsystem = pe
        .header
        .optional_header
        .map(|o| o.windows_fields.subsystem);
    // IMAGE_SUBSYSTEM_EFI_APPLICATION … EFI_ROM are 10 to 13.
    let os = if subsystem.is_some_and(|s| (10..=13).contains(&s)) {
        Os::Uefi
    } else if imports.iter().any(|d| d == "cygwin1.dll") {
        Os::Cygwin
    } else {
        Os::Windows
    };
    let (libc, crt_evidence) = pe_runtime(&imports, pe.header.rich_header.is_some());
    let arch = arch_for_pe(machine);
    ForeignFacts {
        machine: u32::from(machine),
        machine_name: name.clone(),
        arch,
        slices: vec![name],
        slice_oses: vec![Some(os)],
        slice_arches: vec![arch],
        libc,
        crt_evidence,
        executable: !pe.is_lib,
        imports,
    }
}

/// The C runtime a PE uses, and what says so. MSVC's own runtime DLLs (vcruntime140,
/// msvcp140) are imported by nothing else, and only Microsoft's link.exe writes a Rich
/// header; mingw-w64 links ucrt (`api-ms-win-crt-*`, `ucrtbase.dll`) or msvcrt without
/// either. The linker version does not tell them apart: lld (Zig's mingw builds) writes
/// 14.0, as link.exe does.
fn pe_runtime(imports: &[String], rich_header: bool) -> (Option<Libc>, Option<String>) {
    let vcruntime = imports
        .iter()
        .find(|d| d.starts_with("vcruntime140") || d.starts_with("msvcp140"));
    let ucrt = imports
        .iter()
        .find(|d| *d == "ucrtbase.dll" || d.starts_with("api-ms-win-crt-"));
    let msvcrt = imports.iter().find(|d| *d == "msvcrt.dll");
    let rich = "Rich header (Microsoft link.exe)";
    match (vcruntime, ucrt, msvcrt) {
        (Some(v), ..) => (Some(Libc::Msvc), Some(format!("imports {v}"))),
        (None, Some(u), _) if rich_header => {
            (Some(Libc::Msvc), Some(format!("imports {u}; {rich}")))
        }
        (None, Some(u), _) => (
            Some(Libc::Ucrt),
            Some(format!(
                "imports {u}; no vcruntime140, no Rich header (mingw-w64)"
            )),
        ),
        (None, None, Some(m)) => (Some(Libc::Msvcrt), Some(format!("imports {m}"))),
        // A statically linked MSVC runtime (/MT) imports no CRT at all.
        (None, None, None) if rich_header => (
            Some(Libc::Msvc),
            Some(format!("{rich}; runtime linked statically")),
        ),
        (None, None, None) => (None, None),
    }
}

/// A wasm module: its import modules say whether it targets WASI.
pub(super) fn wasm(bytes: &[u8]) -> Result<ForeignFacts, String> {
    let imports = wasm_import_modules(bytes)?;
    let wasi = imports
        .iter()
        .any(|m| m == "wasi_snapshot_preview1" || m == "wasi_unstable");
    let arch = arch_for_wasm();
    Ok(ForeignFacts {
        machine: 0,
        machine_name: "wasm32".into(),
        arch,
        slices: vec!["wasm32".into()],
        slice_oses: vec![Some(if wasi { Os::Wasi } else { Os::None })],
        slice_arches: vec![arch],
        libc: wasi.then_some(Libc::Wasilibc),
        crt_evidence: None,
        executable: wasi,
        imports,
    })
}

/// The distinct module names of the import section (section 2), read as the spec lays it
/// out; stops at the first import kind it does not know.
fn wasm_import_modules(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader {
        bytes,
        at: 8.min(bytes.len()),
    };
    if bytes.len() < 8 {
        return Err("wasm module shorter than its 8-byte header".into());
    }
    let mut modules: Vec<String> = Vec::new();
    while r.at < bytes.len() {
        let id = r.byte()?;
        let size = r.leb()? as usize;
        let end = r.at.checked_add(size).filter(|e| *e <= bytes.len());
        let end = end.ok_or_else(|| format!("wasm section {id} runs past the end of the file"))?;
        if id != 2 {
            r.at = end;
            continue;
        }
        let count = r.leb()?;
        for _ in 0..count.min(100_000) {
            let module = r.name()?;
            let _field = r.name()?;
            match r.byte()? {
                0 => {
                    r.leb()?;
                }
                1 => {
                    r.byte()?;
                    r.limits()?;
                }
                2 => r.limits()?,
                3 => {
                    r.byte()?;
                    r.byte()?;
                }
                4 => {
                    r.byte()?;
                    r.leb()?;
                }
                _ => break,
            }
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
        break;
    }
    Ok(modules)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or("wasm module truncated inside a section")?;
        self.at += 1;
        Ok(b)
    }
    fn leb(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("wasm LEB128 number longer than 64 bits".into())
    }
    fn name(&mut self) -> Result<String, String> {
        let len = self.leb()? as usize;
        let end = self
            .at
            .checked_add(len)
            .filter(|e| *e <= self.bytes.len())
            .ok_or("wasm name runs past the end of the file")?;
        let s = String::from_utf8_lossy(&self.bytes[self.at..end]).into_owned();
        self.at = end;
        Ok(s)
    }
    fn limits(&mut self) -> Result<(), String> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

fn macho_name((cputype, subtype): (u32, u32)) -> String {
    // The high byte of the subtype holds capability bits that the name table does not list.
    goblin::mach::cputype::get_arch_name_from_types(cputype, subtype & 0x00ff_ffff)
        .map_or_else(|| format!("Mach-O cputype {cputype:#x}"), str::to_string)
}
