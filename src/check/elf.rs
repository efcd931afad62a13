//! The `elf.*` checks: pure functions from a binary's facts and its expected platform to results.

use super::{CheckResult, Expected, ids};
use crate::inspect::ForeignFacts;
use crate::inspect::closure::ClosureFacts;
use crate::inspect::{BinaryFacts, ElfFacts, Identity, Linkage};
use crate::platform::{AbiFit, Format, Libc, Os, Platform, arches_for_loader, os_of_loader};

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
        // Mach-O, PE and wasm: machine, OS (in elf.format) and C runtime.
        let mut out = vec![format, machine(ctx)];
        out.push(CheckResult::skip(
            ids::ELF_ABI,
            "not an ELF; no ABI flags to compare",
        ));
        out.push(match ctx.facts.foreign() {
            Some(f) => foreign_runtime(f, ctx.expected),
            None => CheckResult::skip(ids::ELF_INTERP, "not an ELF"),
        });
        out.extend(
            elf_ids[3..]
                .iter()
                .map(|id| CheckResult::skip(id, "not an ELF; loader and libraries not followed")),
        );
        return out;
    };
    let machine = machine(ctx);
    let machine_ok = machine.status == super::Status::Pass;
    let mut out = vec![format, machine];
    if machine_ok {
        out.push(abi(elf, ctx.expected, ctx.path));
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

fn format_of(identity: &Identity) -> Option<Format> {
    match identity {
        Identity::Elf(_) => Some(Format::Elf),
        Identity::MachO(_) => Some(Format::MachO),
        Identity::Pe(_) => Some(Format::Pe),
        Identity::Wasm(_) => Some(Format::Wasm),
        _ => None,
    }
}

fn format(ctx: &BinaryContext<'_>) -> CheckResult {
    let expected = ctx.expected.platform;
    let want = expected.format().as_str();
    let at = ctx.path;
    let Some(found) = format_of(&ctx.facts.identity) else {
        return unreadable(at, ctx.facts, want);
    };
    if found.as_str() != want {
        return CheckResult::fail(ids::ELF_FORMAT, "wrong executable format")
            .expected(format!("{want} ({})", expected.oci()))
            .found(found.as_str())
            .at(at)
            .hint(format!(
                "a {} build produces {want}; this output was built for another OS: check the flake attribute or --target",
                expected.os.title()
            ));
    }
    match &ctx.facts.identity {
        Identity::Elf(e) => {
            if e.linkage == Linkage::Object {
                return CheckResult::fail(ids::ELF_FORMAT, "an object file, not an executable")
                    .expected("ELF executable or shared library")
                    .found(format!("{:?}", e.elf_type))
                    .at(at)
                    .hint(
                        "point mab-verify at the linked output (bin/…), not an intermediate object",
                    );
            }
            let evidence = e.os_evidence.as_deref().unwrap_or("nothing");
            match e.os {
                Some(os) if os != expected.os => wrong_os(expected, os, evidence, at),
                None if expected.os.brands_its_elves() => CheckResult::fail(
                    ids::ELF_FORMAT,
                    format!("nothing marks this ELF as {}", expected.os.title()),
                )
                .expected(format!(
                    "an ELF branded {} (EI_OSABI, ABI note or loader)",
                    expected.os.title()
                ))
                .found("no OS note, EI_OSABI none, no OS loader")
                .at(at)
                .hint("a Linux or bare-metal build ended up here: check the cross target"),
                _ => CheckResult::pass(
                    ids::ELF_FORMAT,
                    format!(
                        "ELF {}{}",
                        linkage_text(e.linkage, e),
                        e.os.map(|o| format!(" for {} ({evidence})", o.title()))
                            .unwrap_or_default()
                    ),
                ),
            }
        }
        Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) => {
            let oses = slice_oses(f, expected);
            if oses.contains(&Some(expected.os)) || oses.contains(&None) {
                return CheckResult::pass(
                    ids::ELF_FORMAT,
                    format!("{want} for {}", expected.os.title()),
                );
            }
            let seen = oses.iter().flatten().next().copied().unwrap_or(expected.os);
            let evidence = match found {
                Format::MachO => "LC_BUILD_VERSION / LC_VERSION_MIN_*",
                Format::Pe => "PE subsystem and imports",
                _ => "its imports",
            };
            wrong_os(expected, seen, evidence, at)
        }
        _ => unreadable(at, ctx.facts, want),
    }
}

/// The OSes of the slices of the expected CPU (of every slice when none is that CPU).
fn slice_oses(f: &ForeignFacts, expected: Platform) -> Vec<Option<Os>> {
    let of_arch: Vec<Option<Os>> = f
        .slice_arches
        .iter()
        .zip(&f.slice_oses)
        .filter(|(a, _)| **a == Some(expected.arch))
        .map(|(_, os)| *os)
        .collect();
    if of_arch.is_empty() {
        f.slice_oses.clone()
    } else {
        of_arch
    }
}

fn wrong_os(expected: Platform, found: Os, evidence: &str, at: &str) -> CheckResult {
    CheckResult::fail(
        ids::ELF_FORMAT,
        format!("built for {}, not {}", found.title(), expected.os.title()),
    )
    .expected(format!("{} ({})", expected.os.title(), expected.oci()))
    .found(format!("{} ({evidence})", found.title()))
    .at(at)
    .hint(format!(
        "build with the {} target (Rust target {}); a {} binary does not run on {}",
        expected.oci(),
        expected.triple(),
        found.title(),
        expected.os.title()
    ))
}

/// `elf.interp` for a PE or Mach-O: the C runtime it uses, where the platform pins one.
fn foreign_runtime(f: &ForeignFacts, expected: &Expected) -> CheckResult {
    let want = expected.platform.libc;
    let evidence = f
        .crt_evidence
        .clone()
        .unwrap_or_else(|| format!("imports {}", f.imports.join(", ")));
    match (want, f.libc) {
        (Some(w), Some(seen)) if w != seen => CheckResult::fail(
            ids::ELF_INTERP,
            format!(
                "uses the {} C runtime, not {}",
                runtime_title(seen),
                runtime_title(w)
            ),
        )
        .expected(w.name())
        .found(format!("{} ({evidence})", seen.name()))
        .hint(format!(
            "build with the {} toolchain (Rust target {}); the C runtimes differ in DLLs and ABI, so a slot for one is not filled by a build for the other",
            runtime_title(w),
            expected.platform.triple()
        )),
        (_, Some(seen)) => CheckResult::pass(
            ids::ELF_INTERP,
            format!("C runtime {} ({evidence})", seen.name()),
        ),
        (_, None) => CheckResult::skip(ids::ELF_INTERP, "no C runtime recorded in the file"),
    }
}

/// A binary with no `--expect`, no triple in a store name, and bytes that match no row:
/// `elf.format` says what it is, the other binary checks have no platform to hold it to.
pub fn unidentified(at: &str, facts: &BinaryFacts) -> Vec<CheckResult> {
    let mut out = vec![unreadable(at, facts, "ELF")];
    out.extend(
        ids::BINARY_CHECKS[1..7]
            .iter()
            .map(|id| CheckResult::skip(id, "platform unknown")),
    );
    out
}

/// Names a Windows C runtime by the toolchain that links it, for messages.
fn runtime_title(libc: Libc) -> String {
    match libc {
        Libc::Msvc => "MSVC (ucrt + vcruntime140)".into(),
        Libc::Ucrt => "mingw-w64 ucrt".into(),
        Libc::Msvcrt => "mingw-w64 msvcrt".into(),
        other => other.name().into(),
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
        Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) => {
            f.slice_arches.contains(&Some(arch))
        }
        _ => false,
    };
    let found_text = match &ctx.facts.identity {
        Identity::Elf(e) => format!("{} ({found_platform})", e.identity()),
        Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) if f.slices.len() > 1 => {
            format!("universal: {}", f.slices.join(", "))
        }
        Identity::MachO(f) | Identity::Pe(f) | Identity::Wasm(f) => {
            format!("{} ({found_platform})", f.machine_name)
        }
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

fn abi(elf: &ElfFacts, expected: &Expected, at: &str) -> CheckResult {
    let spec = expected.platform.arch.abi;
    let static_exe = matches!(elf.linkage, Linkage::Static | Linkage::StaticPie);
    let fit = spec.fit(&elf.abi, static_exe);
    let level = x86_level(elf, expected);
    match fit {
        AbiFit::Fits => level.unwrap_or_else(|| {
            let note = if static_exe && spec.mismatch(&elf.abi).is_some() {
                " (static: the calling convention meets no loader or library)"
            } else {
                ""
            };
            CheckResult::pass(ids::ELF_ABI, format!("{}{note}", elf.abi))
        }),
        AbiFit::Unknown(why) => CheckResult::skip(ids::ELF_ABI, why)
            .expected(format!("{spec} ({})", expected.platform.oci()))
            .found(format!("{} (e_flags {:#010x})", elf.abi, elf.flags))
            .at(at)
            .hint("build with a toolchain that records it (GCC, clang and rustc write .ARM.attributes; Go writes GOARM into .go.buildinfo), or check the binary on the target"),
        AbiFit::Misfit(why) => CheckResult::fail(ids::ELF_ABI, why)
            .expected(format!("{spec} ({})", expected.platform.oci()))
            .found(format!("{} (e_flags {:#010x})", elf.abi, elf.flags))
            .at(at)
            .hint(format!(
                "rebuild with the toolchain for {} (Rust target {}); a binary for another ABI of the same CPU family crashes or fails to load there",
                expected.platform.oci(),
                expected.platform.triple()
            )),
    }
}

/// An x86-64 level the binary needs beyond what the platform promises: a failure in a slot
/// that names a level (`linux/amd64/v2`), a warning in a plain `amd64` one, where it runs only
/// on newer CPUs.
fn x86_level(elf: &ElfFacts, expected: &Expected) -> Option<CheckResult> {
    let needed = elf.x86_level.filter(|l| *l > 1)?;
    let promised = expected.platform.level;
    let source = if elf.go.as_ref().and_then(|g| g.amd64_level()).is_some() {
        "GOAMD64"
    } else {
        "GNU_PROPERTY_X86_ISA_1_NEEDED"
    };
    let found = format!("x86-64-v{needed} ({source})");
    match promised {
        Some(p) if needed > p => Some(
            CheckResult::fail(ids::ELF_ABI, format!("needs x86-64-v{needed}, the platform promises v{p}"))
                .expected(format!("x86-64-v{p} or lower ({})", expected.platform.oci()))
                .found(found)
                .hint(format!("build for x86-64-v{p} (-march=x86-64-v{p}, GOAMD64=v{p}, -C target-cpu=x86-64-v{p}) or publish it as linux/amd64/v{needed}")),
        ),
        Some(_) => None,
        None => Some(
            CheckResult::warn(ids::ELF_ABI, format!("needs x86-64-v{needed}: it crashes on older amd64 CPUs"))
                .expected(format!("baseline x86-64 ({})", expected.platform.oci()))
                .found(found)
                .hint(format!("build for baseline x86-64, or publish it as linux/amd64/v{needed}")),
        ),
    }
}

fn interp(elf: &ElfFacts, expected: &Expected) -> CheckResult {
    let platform = expected.platform;
    let arch = platform.arch;
    let allowed = platform.libcs();
    let Some(interp) = elf.interpreter.as_deref() else {
        return match elf.linkage {
            Linkage::Static | Linkage::StaticPie => CheckResult::pass(
                ids::ELF_INTERP,
                format!(
                    "{}: no loader needed, no libc constraint",
                    linkage_text(elf.linkage, elf)
                ),
            ),
            _ => library_libc(elf, expected, &allowed),
        };
    };
    let expected_text = allowed
        .iter()
        .filter_map(|l| arch.loader(*l))
        .collect::<Vec<_>>()
        .join(" or ");
    let fail = |why: String| {
        CheckResult::fail(ids::ELF_INTERP, why)
            .expected(if expected_text.is_empty() {
                format!("no loader: {} has no dynamic loader", platform.oci())
            } else {
                expected_text.clone()
            })
            .found(interp.to_string())
            .hint(format!(
                "link with the {} toolchain's own loader (gcc/rustc for {} set it; a hand-written -Wl,--dynamic-linker or a patchelf step may have set the wrong one)",
                platform.oci(),
                platform.triple()
            ))
    };
    if let Some((os, libc)) = os_of_loader(interp) {
        // An OS-owned loader (FreeBSD, NetBSD, OpenBSD, Android, illumos).
        return if os == platform.os && libc.is_none_or(|l| allowed.contains(&l)) {
            CheckResult::pass(ids::ELF_INTERP, format!("{interp} ({})", os.title()))
        } else {
            fail(format!("{interp} is the loader of {}", os.title()))
        };
    }
    let file_name = interp.rsplit('/').next().unwrap_or(interp);
    let libc = allowed.iter().copied().find(|l| {
        arch.loader(*l)
            .is_some_and(|p| p.ends_with(&format!("/{file_name}")))
    });
    let Some(libc) = libc else {
        let owners: Vec<String> = arches_for_loader(interp)
            .iter()
            .map(|(a, l)| format!("{} ({})", Platform::linux(a).oci(), l.name()))
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
            _ => CheckResult::pass(
                ids::ELF_INTERP,
                format!("{interp} ({}, Nix store)", libc.name()),
            ),
        };
    }
    if Some(interp) != arch.loader(libc) {
        return fail(format!(
            "{interp} has the right name but not the standard path"
        ));
    }
    CheckResult::pass(ids::ELF_INTERP, format!("{interp} ({})", libc.name()))
}

/// A shared library has no loader of its own: its DT_NEEDED and symbol versions say which
/// libc it was linked against, and that libc must be the platform's.
fn library_libc(elf: &ElfFacts, expected: &Expected, allowed: &[Libc]) -> CheckResult {
    let Some(libc) = elf.libc else {
        return CheckResult::pass(
            ids::ELF_INTERP,
            "shared library: no loader of its own, links no libc",
        );
    };
    let evidence = library_libc_evidence(elf, libc);
    if allowed.contains(&libc) {
        return CheckResult::pass(
            ids::ELF_INTERP,
            format!("shared library linked against {} ({evidence})", libc.name()),
        );
    }
    let want: Vec<&str> = allowed.iter().map(|l| l.name()).collect();
    CheckResult::fail(
        ids::ELF_INTERP,
        format!(
            "a {} library, but {} uses {}",
            libc.name(),
            expected.platform.oci(),
            want.join(" or ")
        ),
    )
    .expected(format!("a library linked against {}", want.join(" or ")))
    .found(format!("{} ({evidence})", libc.name()))
    .hint(format!(
        "build the library with the {} toolchain (Rust target {}); a library for another libc fails to load",
        expected.platform.oci(),
        expected.platform.triple()
    ))
}

fn library_libc_evidence(elf: &ElfFacts, libc: Libc) -> String {
    let needs = |n: &str| elf.needed.iter().any(|x| x == n);
    match libc {
        Libc::Glibc if needs("libc.so.6") => "DT_NEEDED libc.so.6".into(),
        Libc::Glibc => "GLIBC_* symbol versions".into(),
        Libc::Musl | Libc::Bionic => "DT_NEEDED libc.so".into(),
        Libc::Uclibc => "DT_NEEDED libc.so.0".into(),
        _ => "DT_NEEDED".into(),
    }
}

/// Why a foreign executable (Mach-O, PE, wasm, another OS's ELF) was not run: these never run here, so
/// `--require-run` must count them as not run rather than as nothing to run.
pub fn foreign_run_skip(facts: &BinaryFacts) -> Option<(String, String)> {
    if let Some(elf) = facts.elf() {
        let os = elf
            .os
            .filter(|os| *os != Os::Linux && elf.is_executable())?;
        return Some((
            format!("a {} ELF cannot be run on this Linux host", os.title()),
            format!(
                "run it on {}; --require-run counts it as not run",
                os.title()
            ),
        ));
    }
    let f = facts.foreign().filter(|f| f.executable)?;
    let name = match &facts.identity {
        Identity::MachO(_) => "Mach-O",
        Identity::Pe(_) => "PE",
        _ => "wasm",
    };
    Some((
        format!(
            "a {name} file ({}) cannot be run on this host",
            f.machine_name
        ),
        "run it on its own OS (or under wasmtime for wasm); --require-run counts it as not run"
            .into(),
    ))
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
    let skipped: Vec<String> = closure
        .libraries
        .iter()
        .filter(|l| l.found.is_none())
        .filter_map(|l| l.skipped.as_ref().map(|why| format!("{}: {why}", l.name)))
        .collect();
    for lib in &closure.libraries {
        if lib.found.is_some() || lib.skipped.is_some() {
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
        let not_checked = if skipped.is_empty() {
            String::new()
        } else {
            format!("; not checked: {}", skipped.join("; "))
        };
        return CheckResult::pass(
            ids::ELF_NEEDED,
            format!(
                "{} libraries resolve to {} files{not_checked}",
                closure.libraries.len() - skipped.len(),
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
        return CheckResult::not_applicable(ids::ELF_IMPURE, "not a Nix output");
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
