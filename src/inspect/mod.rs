//! Turns bytes into plain facts about one executable (ELF, Mach-O or PE); no judgement here.

pub mod closure;
mod elf;
mod foreign;

use crate::platform::{ByteOrder, Class, Os, Platform};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use elf::{ElfFacts, ElfType, Linkage};
pub use foreign::ForeignFacts;

/// What a file turned out to be.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Identity {
    Elf(ElfFacts),
    #[serde(rename = "macho")]
    MachO(ForeignFacts),
    Pe(ForeignFacts),
    /// Has a binary format's magic but could not be parsed (truncated, corrupt).
    Corrupt {
        format: String,
        error: String,
    },
    NotBinary {
        first_bytes: String,
    },
}

#[derive(Debug, Clone, Serialize)]
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

    /// The platform the bytes themselves belong to, as far as the table can tell.
    pub fn platform(&self) -> Option<Platform> {
        match &self.identity {
            Identity::Elf(e) => e.platform(),
            Identity::MachO(f) => f.arch.map(|arch| Platform {
                os: Os::Darwin,
                arch,
                libc: None,
            }),
            Identity::Pe(f) => f.arch.map(|arch| Platform {
                os: Os::Windows,
                arch,
                libc: None,
            }),
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

/// Cheap check on the first bytes: is this worth a full parse?
pub fn looks_like_binary(head: &[u8]) -> bool {
    magic_format(head).is_some()
}

fn magic_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x7fELF") {
        Some("ELF")
    } else if head.starts_with(b"MZ") {
        Some("PE")
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
    match goblin::Object::parse(bytes) {
        Ok(goblin::Object::Elf(parsed)) => match elf::facts(&parsed, bytes) {
            Ok(f) => Identity::Elf(f),
            Err(e) => corrupt(e),
        },
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
