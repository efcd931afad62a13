//! Turns bytes into plain facts about one executable (ELF, Mach-O or PE); no judgement here.

pub mod closure;
mod elf;
mod elf_os;
mod foreign;

use crate::platform::{ByteOrder, Class, Os, Platform};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

pub use elf::{ElfFacts, ElfType, Linkage};
pub use elf_os::GoBuildInfo;
pub use foreign::ForeignFacts;

/// What a file turned out to be.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Identity {
    Elf(ElfFacts),
    #[serde(rename = "macho")]
    MachO(ForeignFacts),
    Pe(ForeignFacts),
    Wasm(ForeignFacts),
    /// Has a binary format's magic but could not be parsed (truncated, corrupt).
    Corrupt {
        format: String,
        error: String,
    },
    NotBinary {
        first_bytes: String,
    },
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BinaryFacts {
    pub sha256: String,
    pub size: u64,
    #[serde(flatten)]
    pub identity: Identity,
}

impl BinaryFacts {
    pub fn kind(&self) -> &'static str {
        match &self.identity {
            Identity::Elf(_) => "elf",
            Identity::MachO(_) => "macho",
            Identity::Pe(_) => "pe",
            Identity::Wasm(_) => "wasm",
            Identity::Corrupt { .. } => "corrupt",
            Identity::NotBinary { .. } => "not-binary",
        }
    }

    pub fn elf(&self) -> Option<&ElfFacts> {
        match &self.identity {
            Identity::Elf(e) => Some(e),
            _ => None,
        }
    }

    /// The platform the bytes themselves belong to, as far as the table can tell (the first
    /// slice of a universal Mach-O).
    pub fn platform(&self) -> Option<Platform> {
        self.platforms().into_iter().next()
    }

    /// Every platform the file provides: one, or one per slice of a universal Mach-O.
    pub fn platforms(&self) -> Vec<Platform> {
        match &self.identity {
            Identity::Elf(e) => e.platform().into_iter().collect(),
            Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) => {
                let default_os = match &self.identity {
                    Identity::MachO(_) => Os::Darwin,
                    Identity::Pe(_) => Os::Windows,
                    _ => Os::None,
                };
                f.slice_arches
                    .iter()
                    .zip(&f.slice_oses)
                    .filter_map(|(arch, os)| {
                        arch.map(|arch| Platform {
                            os: os.unwrap_or(default_os),
                            arch,
                            libc: f.libc,
                            level: None,
                        })
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Mach-O, PE or wasm facts.
    pub fn foreign(&self) -> Option<&ForeignFacts> {
        match &self.identity {
            Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) => Some(f),
            _ => None,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Inspect an in-memory file. Never fails: unparseable input becomes `Corrupt`/`NotBinary`.
pub fn inspect_bytes(bytes: &[u8]) -> BinaryFacts {
    BinaryFacts {
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        identity: identify(bytes),
    }
}

/// Files up to this size are inspected from memory; larger ones from a memory-mapped file, so
/// memory stays flat however large the binaries an image holds.
const IN_MEMORY_MAX: u64 = 256 << 10;

/// Inspect a file on disk. A large one is hashed by streaming it and parsed through a memory
/// map, so only the pages the parser reads (headers, dynamic section, notes) become resident.
pub fn inspect_file(path: &Path) -> io::Result<BinaryFacts> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() <= IN_MEMORY_MAX {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        return Ok(inspect_bytes(&bytes));
    }
    let (sha256, size) = hash_stream(&mut file, Sha256::new(), |_| Ok(()))?;
    Ok(BinaryFacts {
        sha256,
        size,
        identity: identify(&map(&file)?),
    })
}

/// Inspect a file arriving as a stream (a tar entry) whose first bytes, `head`, were already
/// read. Small files are kept in memory; large ones are written to a temporary file (in
/// `spill_dir`, else the system's temp dir) while being hashed, then parsed through a map.
/// With a `spill_dir`, the bytes end up in `spill_dir/<sha256>` for later runs.
pub fn inspect_stream(
    head: &[u8],
    mut rest: impl Read,
    declared_size: u64,
    spill_dir: Option<&Path>,
) -> io::Result<BinaryFacts> {
    if declared_size <= IN_MEMORY_MAX {
        // The declared size is a claim, trusted only this far: the rest grows as bytes arrive.
        let mut bytes = Vec::with_capacity(declared_size as usize);
        bytes.extend_from_slice(head);
        rest.read_to_end(&mut bytes)?;
        let facts = inspect_bytes(&bytes);
        if let Some(dir) = spill_dir {
            let path = dir.join(&facts.sha256);
            if !path.exists() {
                std::fs::write(&path, &bytes)?;
            }
        }
        return Ok(facts);
    }
    let mut temp = match spill_dir {
        Some(dir) => tempfile::NamedTempFile::new_in(dir)?,
        None => tempfile::NamedTempFile::new()?,
    };
    let mut hasher = Sha256::new();
    hasher.update(head);
    temp.write_all(head)?;
    let (sha256, copied) = {
        let file = temp.as_file_mut();
        hash_stream(&mut rest, hasher, |chunk| file.write_all(chunk))?
    };
    let facts = BinaryFacts {
        sha256,
        size: head.len() as u64 + copied,
        identity: identify(&map(temp.as_file())?),
    };
    if let Some(dir) = spill_dir {
        let path = dir.join(&facts.sha256);
        if !path.exists() {
            temp.persist(&path).map_err(|e| e.error)?;
        }
    }
    Ok(facts)
}

/// Reads `from` to its end in 64 KiB chunks, hashing each and handing it to `sink`.
fn hash_stream(
    from: &mut impl Read,
    mut hasher: Sha256,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(String, u64)> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and dropped before this call's caller returns; the file is
    // either our own private temp file or an input the user asked us to read. If another
    // process truncates an input meanwhile, reads past its new end fault, which is the same
    // risk every mmap-based reader (readelf, file) takes.
    unsafe { memmap2::Mmap::map(file) }
}

/// Cheap check on the first bytes: is this worth a full parse?
pub fn looks_like_binary(head: &[u8]) -> bool {
    magic_format(head).is_some()
}

fn magic_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x7fELF") {
        Some("ELF")
    } else if head.starts_with(b"MZ") {
        Some("PE")
    } else if head.starts_with(b"\0asm") {
        Some("wasm")
    } else if head.len() >= 4 {
        let m = [head[0], head[1], head[2], head[3]];
        let mach = [0xfeedface, 0xfeedfacf, 0xcafebabe];
        mach.iter()
            .any(|v| u32::from_be_bytes(m) == *v || u32::from_le_bytes(m) == *v)
            .then_some("Mach-O")
    } else {
        None
    }
}

fn identify(bytes: &[u8]) -> Identity {
    let Some(format) = magic_format(bytes) else {
        let shown: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Identity::NotBinary { first_bytes: shown };
    };
    let corrupt = |error: String| Identity::Corrupt {
        format: format.to_string(),
        error,
    };
    if format == "ELF" {
        return match elf::facts(bytes) {
            Ok(f) => Identity::Elf(f),
            Err(e) => corrupt(e),
        };
    }
    if format == "wasm" {
        return match foreign::wasm(bytes) {
            Ok(f) => Identity::Wasm(f),
            Err(e) => corrupt(e),
        };
    }
    match goblin::Object::parse(bytes) {
        Ok(goblin::Object::Mach(m)) => match foreign::macho(&m) {
            Ok(f) => Identity::MachO(f),
            Err(e) => corrupt(e),
        },
        Ok(goblin::Object::PE(pe)) => Identity::Pe(foreign::pe(&pe)),
        Ok(_) => corrupt("not an executable format mab-verify checks".into()),
        Err(e) => corrupt(e.to_string()),
    }
}

/// Human summary of an ELF identity, for reports: `ELF64 LE EM_AARCH64`.
pub fn describe_identity(machine_name: &str, class: Class, order: ByteOrder) -> String {
    format!("ELF{} {} {}", class.bits(), order.short(), machine_name)
}
