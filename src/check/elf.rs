//! The `elf.*` checks: pure functions from a binary's facts and its expected platform to results.

use super::{CheckResult, Expected, ids};
use crate::inspect::closure::ClosureFacts;
use crate::inspect::{BinaryFacts, ElfFacts, Identity, Linkage};
use crate::platform::{Libc, Os, Platform, arches_for_loader};

/// Whether the loader/library checks could look anywhere.
#[derive(Debug, Clone, Copy)]
pub enum ClosureState<'a> {
    Resolved(&'a ClosureFacts),
    /// No root to look in; the string says how to give one.
    NoRoot(&'a str),
}

/// Everything the `elf.*` checks may look at for one binary.
pub struct BinaryContext<'a> {
    pub path: &'a str,
    pub facts: &'a BinaryFacts,
    pub expected: &'a Expected,
    pub closure: ClosureState<'a>,
    /// The binary lives in a Nix store output, where impure paths matter.
    pub nix_output: bool,
}

pub fn check_binary(ctx: &BinaryContext<'_>) -> Vec<CheckResult> {
    let format = format(ctx);
    let elf_ids = [
        ids::ELF_MACHINE,
        ids::ELF_ABI,
        ids::ELF_INTERP,
        ids::ELF_INTERP_PRESENT,
        ids::ELF_NEEDED,
        ids::ELF_IMPURE,
    ];
    if format.status == super::Status::Fail {
        let mut out = vec![format];
        out.extend(
            elf_ids
                .iter()
                .map(|id| CheckResult::skip(id, "not a readable binary")),
        );
        return out;
    }
    let Identity::Elf(elf) = &ctx.facts.identity else {
        // Mach-O and PE: the machine is all that can be checked here.
        let mut out = vec![format, machine(ctx)];
        out.extend(
            elf_ids[1..]
                .iter()
                .map(|id| CheckResult::skip(id, "not an ELF; only its machine is checked")),
        );
        return out;
    };
    let machine = machine(ctx);
    let machine_ok = machine.status == super::Status::Pass;
    let mut out = vec![format, machine];
    if machine_ok {
        out.push(abi(elf, ctx.expected));
    } else {
        out.push(CheckResult::skip(
            ids::ELF_ABI,
            "machine differs; ABI not compared",
        ));
    }
    out.push(interp(elf, ctx.expected));
    out.push(interp_present(elf, ctx));
    out.push(needed(elf, ctx));
    out.push(impure(elf, ctx.nix_output));
    out
}

fn platform_of(facts: &BinaryFacts) -> String {
    facts
        .platform()
        .map_or_else(|| "no known platform".to_string(), |p| p.oci())
}

fn format(ctx: &BinaryContext<'_>) -> CheckResult {
    let want = match ctx.expected.platform.os {
        Os::Linux => "ELF",
        Os::Darwin => "Mach-O",
        Os::Windows => "PE",
    };
    let at = ctx.path;
    match &ctx.facts.identity {
        Identity::Elf(e) => match (e.linkage, ctx.expected.platform.os) {
            (_, os) if os != Os::Linux => {
                CheckResult::fail(ids::ELF_FORMAT, "wrong executable format")
                    .expected(want)
                    .found("ELF")
                    .at(at)
                    .hint(format!(
                        "a {} build should produce {want}; check the cross target",
                        os.as_str()
                    ))
            }
            (Linkage::Object, _) => {
                CheckResult::fail(ids::ELF_FORMAT, "an object file, not an executable")
                    .expected("ELF executable or shared library")
                    .found(format!("{:?}", e.elf_type))
                    .at(at)
                    .hint(
                        "point mab-verify at the linked output (bin/…), not an intermediate object",
                    )
            }
            (linkage, _) => {
                CheckResult::pass(ids::ELF_FORMAT, format!("ELF {}", linkage_text(linkage, e)))
            }
        },
        Identity::MachO(_) if ctx.expected.platform.os == Os::Darwin => {
            CheckResult::pass(ids::ELF_FORMAT, "Mach-O executable")
        }
        Identity::Pe(_) if ctx.expected.platform.os == Os::Windows => {
            CheckResult::pass(ids::ELF_FORMAT, "PE executable")
        }
        Identity::MachO(_) | Identity::Pe(_) => {
            CheckResult::fail(ids::ELF_FORMAT, "wrong executable format")
                .expected(want)
                .found(ctx.facts.kind())
                .at(at)
                .hint("this output was built for another OS; check the flake attribute or --target")
        }
        Identity::Corrupt { .. } | Identity::NotBinary { .. } => unreadable(at, ctx.facts, want),
    }
}

/// `elf.format` for a file that is no binary at all, or one that cannot be parsed; needs no
/// expected platform.
pub fn unreadable(at: &str, facts: &BinaryFacts, want: &str) -> CheckResult {
    match &facts.identity {
        Identity::Corrupt { format, error } => CheckResult::fail(
            ids::ELF_FORMAT,
            format!("{format} file that cannot be parsed: {error}"),
        )
        .expected(format!("a complete {want} executable"))
        .found(format!("{} bytes, unparseable", facts.size))
        .at(at)
        .hint("the file is truncated or corrupt: rebuild it and check the copy or download step"),
        Identity::NotBinary { first_bytes } => CheckResult::fail(
            ids::ELF_FORMAT,
            "not an executable binary",
        )
        .expected(format!("{want} executable"))
        .found(format!("file starting with bytes {first_bytes}"))
        .at(at)
        .hint("point mab-verify at the compiled binary (for a wrapper script, at what it execs)"),
        _ => CheckResult::fail(
            ids::ELF_FORMAT,
            format!("a {} file of no known platform", facts.kind()),
        )
        .expected(format!(
            "{want} executable of a platform in `mab-verify platforms`"
        ))
        .found(facts.kind())
        .at(at)
        .hint("say what it should be with --expect PLATFORM"),
    }
}

fn linkage_text(linkage: Linkage, e: &ElfFacts) -> String {
    let pie = matches!(e.elf_type, crate::inspect::ElfType::SharedObject);
    match linkage {
        Linkage::Static => "static executable".into(),
        Linkage::StaticPie => "static-pie executable".into(),
        Linkage::Dynamic if pie => "dynamic PIE executable".into(),
        Linkage::Dynamic => "dynamic executable".into(),
        Linkage::SharedLibrary => "shared library".into(),
        Linkage::Object => "object".into(),
    }
}

fn machine(ctx: &BinaryContext<'_>) -> CheckResult {
    let want = ctx.expected.platform;
    let arch = want.arch;
    let at = ctx.path;
    let found_platform = platform_of(ctx.facts);
    let ok = match &ctx.facts.identity {
        Identity::Elf(e) => {
            e.machine == arch.elf_machine
                && e.class == arch.class
                && e.byte_order == arch.byte_order
        }
        Identity::MachO(f) | Identity::Pe(f) => f.arch == Some(arch),
        _ => false,
    };
    let found_text = match &ctx.facts.identity {
        Identity::Elf(e) => format!("{} ({found_platform})", e.identity()),
        Identity::MachO(f) | Identity::Pe(f) => format!("{} ({found_platform})", f.machine_name),
        _ => found_platform.clone(),
    };
    if ok {
        return CheckResult::pass(ids::ELF_MACHINE, found_text);
    }
    let want_text = match ctx.facts.identity {
        Identity::Elf(_) => format!(
            "{} ({})",
            crate::inspect::describe_identity(
                goblin::elf::header::machine_to_str(arch.elf_machine),
                arch.class,
                arch.byte_order
            ),
            want.oci()
        ),
        _ => want.oci(),
    };
    CheckResult::fail(ids::ELF_MACHINE, format!("built for {found_platform}, not {}", want.oci()))
        .expected(want_text)
        .found(found_text)
        .at(at)
        .hint(format!(
            "the build used the wrong target: build with the {} toolchain (Rust target {}, nix system {})",
            want.oci(),
            want.triple(),
            arch.nix_system()
        ))
}

fn abi(elf: &ElfFacts, expected: &Expected) -> CheckResult {
    let spec = expected.platform.arch.abi;
    match spec.mismatch(&elf.abi) {
        None => CheckResult::pass(ids::ELF_ABI, format!("{}", elf.abi)),
        Some(why) => CheckResult::fail(ids::ELF_ABI, why)
            .expected(format!("{spec} ({})", expected.platform.oci()))
            .found(format!("{} (e_flags {:#010x})", elf.abi, elf.flags))
            .hint(format!(
                "rebuild with the toolchain for {} (Rust target {}); a binary for another ABI of the same CPU family crashes or fails to load there",
                expected.platform.oci(),
                expected.platform.triple()
            )),
    }
}

fn interp(elf: &ElfFacts, expected: &Expected) -> CheckResult {
    let arch = expected.platform.arch;
    let Some(interp) = elf.interpreter.as_deref() else {
        return match elf.linkage {
            Linkage::Static | Linkage::StaticPie => CheckResult::pass(
                ids::ELF_INTERP,
                format!("{}: no loader needed", linkage_text(elf.linkage, elf)),
            ),
            _ => CheckResult::skip(ids::ELF_INTERP, "shared library: no loader of its own"),
        };
    };
    let allowed: Vec<Libc> = match expected.platform.libc {
        Some(libc) => vec![libc],
        None => vec![Libc::Glibc, Libc::Musl],
    };
    let expected_text = allowed
        .iter()
        .map(|l| arch.loader(*l))
        .collect::<Vec<_>>()
        .join(" or ");
    let fail = |why: String| {
        CheckResult::fail(ids::ELF_INTERP, why)
            .expected(expected_text.clone())
            .found(interp.to_string())
            .hint(format!(
                "link with the {} toolchain's own loader (gcc/rustc for {} set it; a hand-written -Wl,--dynamic-linker or a patchelf step may have set the wrong one)",
                expected.platform.oci(),
                expected.platform.triple()
            ))
    };
    let file_name = interp.rsplit('/').next().unwrap_or(interp);
    let libc = allowed
        .iter()
        .copied()
        .find(|l| arch.loader(*l).ends_with(&format!("/{file_name}")));
    let Some(libc) = libc else {
        let owners: Vec<String> = arches_for_loader(interp)
            .iter()
            .map(|(a, l)| format!("{} ({l:?})", Platform::linux(a).oci()))
            .collect();
        let whose = if owners.is_empty() {
            "a loader name no platform uses".to_string()
        } else {
            format!("the loader of {}", owners.join(", "))
        };
        return fail(format!("{interp} is {whose}"));
    };
    if let Some(store_name) = store_component(interp) {
        return match Platform::from_store_name(store_name) {
            Some((p, _)) if p.arch != arch => fail(format!(
                "the loader's store path {store_name} is built for {}",
                p.oci()
            )),
            _ => CheckResult::pass(ids::ELF_INTERP, format!("{interp} ({libc:?}, Nix store)")),
        };
    }
    if interp != arch.loader(libc) {
        return fail(format!(
            "{interp} has the right name but not the standard path"
        ));
    }
    CheckResult::pass(ids::ELF_INTERP, format!("{interp} ({libc:?})"))
}

/// `<hash>-glibc-…` out of `/nix/store/<hash>-glibc-…/lib/ld.so`.
pub fn store_component(path: &str) -> Option<&str> {
    path.strip_prefix("/nix/store/")?.split('/').next()
}

fn interp_present(elf: &ElfFacts, ctx: &BinaryContext<'_>) -> CheckResult {
    let Some(interp) = elf.interpreter.as_deref() else {
        return CheckResult::skip(ids::ELF_INTERP_PRESENT, "no loader");
    };
    let closure = match ctx.closure {
        ClosureState::NoRoot(hint) => {
            return CheckResult::skip(ids::ELF_INTERP_PRESENT, "no closure or sysroot to look in")
                .hint(hint);
        }
        ClosureState::Resolved(c) => c,
    };
    let root = closure.root.dir.display().to_string();
    let origin = closure.root.origin.describe();
    match closure.loader.as_ref().and_then(|l| l.found.as_ref()) {
        None => CheckResult::fail(ids::ELF_INTERP_PRESENT, format!("loader {interp} does not exist"))
            .expected(format!("{interp} inside {root} ({origin})"))
            .found("no such file")
            .at(ctx.path)
            .hint(if store_component(interp).is_some() {
                "the loader's store path is missing from the closure: realise it (nix-store --realise) or copy the whole closure (nix copy / dockerTools contents)"
            } else {
                "install the loader in the sysroot or image, or pass --sysroot DIR pointing at the target's root"
            }),
        Some(f) if !f.fits => CheckResult::fail(ids::ELF_INTERP_PRESENT, format!("loader {interp} is for {}", f.platform))
            .expected(ctx.expected.platform.oci())
            .found(f.platform.clone())
            .at(format!("{} under {root}", f.guest_path))
            .hint("the closure holds another platform's libc: rebuild it for the binary's platform"),
        Some(f) => CheckResult::pass(ids::ELF_INTERP_PRESENT, format!("{} is a {} loader", f.guest_path, f.platform)),
    }
}

fn needed(elf: &ElfFacts, ctx: &BinaryContext<'_>) -> CheckResult {
    if elf.needed.is_empty() {
        return CheckResult::pass(ids::ELF_NEEDED, "needs no shared libraries");
    }
    let closure = match ctx.closure {
        ClosureState::NoRoot(hint) => {
            return CheckResult::skip(ids::ELF_NEEDED, "no closure or sysroot to look in")
                .hint(hint);
        }
        ClosureState::Resolved(c) => c,
    };
    let root = closure.root.dir.display().to_string();
    let mut problems = Vec::new();
    for lib in &closure.libraries {
        if lib.found.is_some() {
            continue;
        }
        match lib.rejected.first() {
            Some(wrong) => problems.push((
                format!(
                    "{} (needed by {}) resolves only to {} ({})",
                    lib.name, lib.needed_by, wrong.guest_path, wrong.platform
                ),
                wrong.guest_path.clone(),
            )),
            None => problems.push((
                format!(
                    "{} (needed by {}) is not found in {}",
                    lib.name,
                    lib.needed_by,
                    lib.searched.join(":")
                ),
                lib.needed_by.clone(),
            )),
        }
    }
    if problems.is_empty() {
        return CheckResult::pass(
            ids::ELF_NEEDED,
            format!(
                "{} libraries resolve to {} files",
                closure.libraries.len(),
                ctx.expected.platform.oci()
            ),
        );
    }
    let (messages, locations): (Vec<_>, Vec<_>) = problems.into_iter().unzip();
    CheckResult::fail(ids::ELF_NEEDED, messages.join("; "))
        .expected(format!("every DT_NEEDED resolves to a {} library under {root}", ctx.expected.platform.oci()))
        .found(format!("{} unresolved", messages.len()))
        .at(locations.join(", "))
        .hint("add the missing libraries for this platform to the closure (buildInputs / image contents), or fix RUNPATH")
}

fn impure(elf: &ElfFacts, nix_output: bool) -> CheckResult {
    if !nix_output {
        return CheckResult::skip(ids::ELF_IMPURE, "not a Nix output");
    }
    let mut outside: Vec<String> = elf
        .runpath
        .iter()
        .chain(&elf.rpath)
        .filter(|p| {
            !p.starts_with("/nix/store/")
                && !p.starts_with("$ORIGIN")
                && !p.starts_with("${ORIGIN}")
        })
        .cloned()
        .collect();
    if let Some(interp) = &elf.interpreter
        && !interp.starts_with("/nix/store/")
    {
        outside.push(format!("loader {interp}"));
    }
    if outside.is_empty() {
        CheckResult::pass(ids::ELF_IMPURE, "loader and RUNPATH stay inside /nix/store")
    } else {
        CheckResult::warn(
            ids::ELF_IMPURE,
            format!("paths outside /nix/store: {}", outside.join(", ")),
        )
        .expected("only /nix/store paths")
        .found(outside.join(", "))
        .hint(
            "the binary depends on the host's files; use patchelf or fix the build's linker flags",
        )
    }
}
