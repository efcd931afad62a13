//! `platforms`: the platform table and every name each row accepts.

use crate::platform::{ARCHES, Platform};

pub fn platforms_table() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<18} {:<12} {:<5} {:<6} {:<34} {:<16} verified",
        "oci", "nix system", "rust ARCH", "class", "order", "glibc loader", "qemu"
    );
    for a in ARCHES {
        let _ = writeln!(
            out,
            "{:<14} {:<18} {:<12} {:<5} {:<6} {:<34} {:<16} {}",
            Platform::linux(a).oci(),
            a.nix_system(),
            a.rust_arch,
            a.class.bits(),
            a.byte_order.short(),
            a.glibc_loader,
            a.qemu,
            match a.verified {
                crate::platform::Verified::Fixture => "fixture",
                crate::platform::Verified::Unverified => "unverified",
            }
        );
        let mut names: Vec<&str> = a
            .pkgs_cross_glibc
            .iter()
            .chain(a.pkgs_cross_musl)
            .copied()
            .collect();
        names.extend(a.triples());
        let _ = writeln!(out, "    also: {}", names.join(", "));
    }
    out
}
