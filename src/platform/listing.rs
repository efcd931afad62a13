//! The `mab-verify platforms` listing: every row, every pkgsCross attribute on it, what can
//! be checked for it and whether it can run here.

use super::{ARCHES, AbiSpec, Arch, Format, Os, Platform, Verified};
use std::fmt::Write;

/// Whether a qemu-user binary for the row is on PATH (plain or `-static`).
fn qemu_on_path(arch: &Arch) -> bool {
    if arch.qemu.is_empty() {
        return false;
    }
    let path = crate::settings::env::get(crate::settings::env::PATH).unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        [arch.qemu.to_string(), format!("{}-static", arch.qemu)]
            .iter()
            .any(|n| dir.join(n).is_file())
    })
}

/// How a Linux binary of this row would run on this machine.
pub fn run_here(arch: &Arch) -> String {
    if arch.runs_natively() {
        "native".into()
    } else if qemu_on_path(arch) {
        arch.qemu.to_string()
    } else if arch.qemu.is_empty() {
        "no (no qemu-user emulates it)".into()
    } else {
        format!("no ({} not installed)", arch.qemu)
    }
}

/// What mab-verify reads for a platform of this format.
fn checkable(p: &Platform) -> &'static str {
    match p.format() {
        Format::Elf if p.os == Os::None => "machine, ABI (never run: bare metal)",
        Format::Elf if p.arch.abi == AbiSpec::None => "OS, machine, loader, libraries, run",
        Format::Elf => "OS, machine, ABI, loader, libraries, run",
        Format::MachO => "OS per slice, machine per slice (not run)",
        Format::Pe => "OS (subsystem), machine, C runtime (not run)",
        Format::Wasm => "WASI imports (not run)",
        Format::Script => "nothing: JavaScript output",
    }
}

pub fn table() -> String {
    let mut out = String::new();
    for a in ARCHES {
        let machine = if a.elf_machine == object::elf::EM_NONE {
            "not ELF".to_string()
        } else {
            format!(
                "{} ELF{} {}",
                goblin::elf::header::machine_to_str(a.elf_machine),
                a.class.bits(),
                a.byte_order.short()
            )
        };
        let verified = match a.verified {
            Verified::Fixture => "verified by a fixture",
            Verified::Unverified => "UNVERIFIED (no real binary checked)",
        };
        let _ = writeln!(
            out,
            "{} [{}] {machine}, {}; emulator {}; {verified}",
            a.key,
            a.nix_cpu,
            a.abi,
            or_dash(a.qemu)
        );
        if !a.glibc_loader.is_empty() || !a.musl_loader.is_empty() {
            let _ = writeln!(
                out,
                "    loaders: glibc {}, musl {}; run here: {}",
                or_dash(a.glibc_loader),
                or_dash(a.musl_loader),
                run_here(a)
            );
        }
        for s in a.systems() {
            let p = super::names::system_platform(s);
            let _ = writeln!(
                out,
                "    {:<28} {:<22} {:<10} rust {:<34} checks: {}{}",
                s.attr,
                p.oci(),
                s.libc.map_or("-", |l| l.name()),
                s.rust_target,
                checkable(&p),
                if s.verified == Verified::Fixture {
                    ""
                } else {
                    " [unverified]"
                }
            );
        }
        let mut names: Vec<&str> = a.triples().collect();
        names.extend(a.other_names);
        if !names.is_empty() {
            let _ = writeln!(out, "    also: {}", names.join(", "));
        }
    }
    out
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
