//! Invariants of the platform table, and the table against nixpkgs' own facts.

use super::*;
use std::collections::{HashMap, HashSet};

#[test]
fn every_name_round_trips_to_its_row() {
    for arch in ARCHES {
        for os in arch.oses() {
            let p = Platform {
                os,
                arch,
                libc: None,
                level: None,
            };
            let parsed = Platform::parse(&p.oci()).unwrap();
            assert_eq!((parsed.os, parsed.arch), (os, arch), "{}", p.oci());
        }
        if arch.is_linux_double() {
            assert_eq!(Platform::parse(&arch.nix_system()).unwrap().arch, arch);
        }
        for name in arch.glibc_triples {
            let p = Platform::parse(name).unwrap();
            assert_eq!((p.arch, p.libc), (arch, Some(Libc::Glibc)), "{name}");
        }
        for name in arch.musl_triples {
            let p = Platform::parse(name).unwrap();
            assert_eq!((p.arch, p.libc), (arch, Some(Libc::Musl)), "{name}");
        }
        for variant in arch.oci_variant_aliases {
            let name = format!("linux/{}/{variant}", arch.oci_arch);
            assert_eq!(Platform::parse(&name).unwrap().arch, arch, "{name}");
        }
    }
}

#[test]
fn every_pkgs_cross_attribute_parses_to_its_system() {
    for s in SYSTEMS {
        let p = Platform::parse(s.attr).unwrap_or_else(|e| panic!("{}: {e}", s.attr));
        assert_eq!(
            (p.os, p.arch.key, p.libc),
            (s.os, s.arch, s.libc),
            "{}",
            s.attr
        );
        // Triples shared by several attributes must still land on the same OS and row.
        for name in [s.config, s.rust_target] {
            let q = Platform::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(q.os, s.os, "{name} ({})", s.attr);
            let same_cpu = SYSTEMS
                .iter()
                .filter(|o| o.config == name || o.rust_target == name)
                .any(|o| o.arch == q.arch.key);
            assert!(same_cpu, "{name} -> {}", q.arch.key);
        }
    }
    for (old, new) in ALIASES {
        assert_eq!(Platform::parse(old).unwrap(), Platform::parse(new).unwrap());
    }
}

#[test]
fn no_name_belongs_to_two_rows() {
    let mut owner: HashMap<String, &str> = HashMap::new();
    for arch in ARCHES {
        let mut names: Vec<String> = arch.triples().map(str::to_string).collect();
        if arch.is_linux_double() {
            names.push(arch.nix_system());
        }
        for os in arch.oses() {
            names.push(
                Platform {
                    os,
                    arch,
                    libc: None,
                    level: None,
                }
                .oci(),
            );
        }
        names.sort();
        names.dedup();
        for n in names {
            if let Some(prev) = owner.insert(n.clone(), arch.key) {
                panic!("{n} is claimed by both {prev} and {}", arch.key);
            }
        }
    }
    let mut attrs = HashSet::new();
    for s in SYSTEMS {
        assert!(attrs.insert(s.attr), "attribute {} twice", s.attr);
        assert!(Arch::by_key(s.arch).is_some(), "{} names no row", s.attr);
    }
}

#[test]
fn keys_and_full_identities_are_unique() {
    let mut keys = HashSet::new();
    let mut identities = HashSet::new();
    for arch in ARCHES {
        assert!(keys.insert(arch.key()), "duplicate key {}", arch.key());
        if arch.elf_machine == object::elf::EM_NONE {
            continue;
        }
        let id = (
            arch.elf_machine,
            arch.class,
            arch.byte_order,
            format!("{}", arch.abi),
        );
        assert!(identities.insert(id.clone()), "two rows share {id:?}");
    }
}

/// goblin is an independent source for the numbers written in the table via `object::elf`.
#[test]
fn elf_machine_numbers_agree_with_goblin() {
    use goblin::elf::header as g;
    let expect: &[(&str, u16)] = &[
        ("x86_64", g::EM_X86_64),
        ("i686", g::EM_386),
        ("aarch64", g::EM_AARCH64),
        ("aarch64_be", g::EM_AARCH64),
        ("armv7l", g::EM_ARM),
        ("armv6l", g::EM_ARM),
        ("armv5tel", g::EM_ARM),
        ("armv7a", g::EM_ARM),
        ("arm", g::EM_ARM),
        ("arm-hf", g::EM_ARM),
        ("riscv64", g::EM_RISCV),
        ("riscv32", g::EM_RISCV),
        ("powerpc64le", g::EM_PPC64),
        ("powerpc64", g::EM_PPC64),
        ("powerpc64-elfv1", g::EM_PPC64),
        ("powerpc", g::EM_PPC),
        ("powerpcle", g::EM_PPC),
        ("s390x", g::EM_S390),
        ("s390", g::EM_S390),
        ("mips64el", g::EM_MIPS),
        ("mips64", g::EM_MIPS),
        ("mips64el-n32", g::EM_MIPS),
        ("mips64-n32", g::EM_MIPS),
        ("mipsel", g::EM_MIPS),
        ("mips", g::EM_MIPS),
        ("loongarch64", 258),
        ("m68k", g::EM_68K),
        ("sh4", g::EM_SH),
        ("arc", g::EM_ARC_COMPACT2),
        ("microblazeel", g::EM_MICROBLAZE),
        ("or1k", g::EM_OPENRISC),
        ("msp430", g::EM_MSP430),
        ("avr", g::EM_AVR),
        ("rx", g::EM_RX),
        ("mmix", g::EM_MMIX),
        ("vc4", g::EM_NONE),
        ("wasm32", g::EM_NONE),
        ("javascript", g::EM_NONE),
    ];
    assert_eq!(expect.len(), ARCHES.len());
    for (key, machine) in expect {
        let arch = Arch::by_key(key).unwrap_or_else(|| panic!("no row {key}"));
        assert_eq!(arch.elf_machine, *machine, "{key}");
    }
}

#[test]
fn loaders_identify_their_rows() {
    for arch in ARCHES {
        for libc in [Libc::Glibc, Libc::Musl] {
            let Some(loader) = arch.loader(libc) else {
                continue;
            };
            let hits = arches_for_loader(loader);
            assert!(hits.contains(&(arch, libc)), "{} {libc:?}", arch.key());
        }
    }
}

#[test]
fn unknown_names_suggest_close_ones() {
    let err = Platform::parse("aarch64-multiplatfrom").unwrap_err();
    assert!(
        err.suggestions
            .contains(&"aarch64-multiplatform".to_string()),
        "{err}"
    );
    let err = Platform::parse("linux/arm64/v9").unwrap_err();
    assert!(!err.suggestions.is_empty(), "{err}");
}

#[test]
fn store_names_pick_the_longest_triple() {
    let (p, t) = Platform::from_store_name(
        "yq6amandg13avpvr7v90w31xhdjvg7ch-multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0",
    )
    .unwrap();
    assert_eq!((p.arch.key(), t), ("aarch64", "aarch64-unknown-linux-gnu"));
    assert!(Platform::from_store_name("abc-multi-arch-demo-1.0.0").is_none());
    let (p, _) =
        Platform::from_store_name("h-glibc-armv7l-unknown-linux-gnueabihf-2.40-66").unwrap();
    assert_eq!(p.oci(), "linux/arm/v7");
}

#[test]
fn arm_without_variant_means_v7() {
    assert_eq!(Platform::parse("linux/arm").unwrap().oci(), "linux/arm/v7");
    assert_eq!(
        Platform::parse("linux/arm64/v8").unwrap().oci(),
        "linux/arm64"
    );
}

/// Fix hints name Rust targets, which are not always the GNU or nix triples.
#[test]
fn rust_targets_are_rusts() {
    let rust = |name: &str| Platform::parse(name).unwrap().triple();
    assert_eq!(rust("linux/arm/v7"), "armv7-unknown-linux-gnueabihf");
    assert_eq!(rust("linux/arm/v6"), "arm-unknown-linux-gnueabihf");
    assert_eq!(rust("linux/arm/v5"), "armv5te-unknown-linux-gnueabi");
    assert_eq!(rust("linux/riscv64"), "riscv64gc-unknown-linux-gnu");
    assert_eq!(rust("musl64"), "x86_64-unknown-linux-musl");
}

// ---- the table against nixpkgs (src/platform/nixpkgs-facts.json) ----

#[derive(serde::Deserialize)]
struct Facts {
    examples: Vec<Example>,
    #[serde(default)]
    doubles: Vec<Example>,
}

#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct Go {
    GOARCH: Option<String>,
    GOARM: Option<String>,
}

#[derive(serde::Deserialize)]
struct Rust {
    target: Option<String>,
}

#[derive(serde::Deserialize)]
struct Example {
    attr: String,
    config: String,
    cpu: String,
    bits: Option<u8>,
    endian: Option<String>,
    kernel: String,
    abi: String,
    libc: Option<String>,
    go: Go,
    qemu: Option<String>,
    rust: Rust,
}

fn facts() -> Facts {
    serde_json::from_str(include_str!("nixpkgs-facts.json")).expect("facts file parses")
}

#[test]
fn facts_file_has_every_example() {
    let facts = facts();
    // Regenerating from a newer nixpkgs.lib may add attributes: this count is what the
    // committed facts file holds, not a limit.
    assert!(facts.examples.len() >= 87, "{}", facts.examples.len());
    let attrs: HashSet<&str> = facts.examples.iter().map(|e| e.attr.as_str()).collect();
    for s in SYSTEMS {
        assert!(
            attrs.contains(s.attr),
            "{} is not in nixpkgs any more",
            s.attr
        );
    }
}

#[test]
fn table_agrees_with_nixpkgs_row_by_row() {
    for e in facts().examples {
        let s = SYSTEMS
            .iter()
            .find(|s| s.attr == e.attr)
            .unwrap_or_else(|| panic!("pkgsCross.{} has no row", e.attr));
        agrees(s, e);
    }
}

#[test]
fn doubles_of_other_oses_agree_with_nixpkgs() {
    let doubles = facts().doubles;
    assert!(!doubles.is_empty(), "the facts file has no doubles");
    assert_eq!(doubles.len(), DOUBLES.len());
    for e in doubles {
        let s = DOUBLES
            .iter()
            .find(|s| s.attr == e.attr)
            .unwrap_or_else(|| panic!("nix system {} has no row", e.attr));
        assert!(SYSTEMS.iter().all(|x| x.os != s.os), "{}", e.attr);
        // "native/impure": the OS's own libc, which the table leaves open.
        let e = Example {
            libc: e.libc.filter(|l| l != "native/impure"),
            ..e
        };
        agrees(s, e);
        let p = Platform::parse(&Platform::parse(s.attr).unwrap().oci()).unwrap();
        assert_eq!((p.os, p.arch.key()), (s.os, s.arch), "{}", s.attr);
    }
}

fn agrees(s: &System, e: Example) {
    {
        let arch = Arch::by_key(s.arch).unwrap();
        let at = &e.attr;
        assert_eq!(s.config, e.config, "{at}: config");
        assert_eq!(Some(s.rust_target), e.rust.target.as_deref(), "{at}: rust");
        assert_eq!(s.libc.map(Libc::nix_name), e.libc.as_deref(), "{at}: libc");
        let os = match (e.kernel.as_str(), e.abi.starts_with("android")) {
            ("linux", true) => "android",
            ("wasi", _) => "wasip1",
            // Go's and the table's name for the OS nixpkgs' kernel calls solaris.
            ("solaris", _) => "illumos",
            (k, _) => k,
        };
        assert_eq!(s.os.as_str(), os, "{at}: os");
        assert_eq!(arch.nix_cpu, e.cpu, "{at}: cpu");
        let qemu = e.qemu.map(|q| format!("qemu-{q}")).unwrap_or_default();
        assert_eq!(arch.qemu, qemu, "{at}: qemu");
        // ELF has no class below 32 bits; n32 is a 64-bit CPU with 32-bit ELF files.
        match e.bits {
            Some(b) if b >= 32 && !e.abi.contains("n32") => {
                assert_eq!(arch.class.bits(), b, "{at}: bits")
            }
            _ => assert_eq!(arch.class, Class::Elf32, "{at}: bits"),
        }
        if let Some(endian) = e.endian {
            let want = if endian == "bigEndian" {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            };
            assert_eq!(arch.byte_order, want, "{at}: byte order");
        }
        if let Some(goarch) = e.go.GOARCH {
            assert_eq!(arch.oci_arch, goarch, "{at}: GOARCH");
        }
        if let Some(goarm) = e.go.GOARM.filter(|g| !g.is_empty()) {
            assert_eq!(
                arch.oci_variant,
                Some(format!("v{goarm}").as_str()),
                "{at}: GOARM"
            );
        }
    }
}

#[test]
fn every_linux_attribute_maps_to_its_oci_platform() {
    for s in SYSTEMS.iter().filter(|s| s.os == Os::Linux) {
        let p = Platform::parse(s.attr).unwrap();
        let back = Platform::parse(&p.oci()).unwrap();
        assert_eq!((back.os, back.arch), (Os::Linux, p.arch), "{}", s.attr);
    }
}

#[test]
fn amd64_levels_are_variants_of_one_row() {
    for level in 2..=4u8 {
        let name = format!("linux/amd64/v{level}");
        let p = Platform::parse(&name).unwrap();
        assert_eq!(
            (p.arch.key(), p.level, p.oci()),
            ("x86_64", Some(level), name)
        );
    }
    assert_eq!(Platform::parse("linux/amd64/v1").unwrap().level, None);
    assert!(Platform::parse("linux/amd64/v5").is_err());
    assert!(Platform::parse("linux/arm64/v3").is_err());
}
