//! ELF, Mach-O and PE identification: `inspect_bytes` must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::inspect::{inspect_bytes, looks_like_binary};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_binary(data);
    let facts = inspect_bytes(data);
    // What reports and checks read from the facts.
    let _ = facts.kind();
    let _ = facts.platform().map(|p| p.oci());
    if let Some(elf) = facts.elf() {
        let _ = elf.platform();
        let _ = elf.is_executable();
        let _ = elf.identity();
        let _ = elf.libc();
    }
});
