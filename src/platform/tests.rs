//! Invariants of the platform table.

use super::*;
use std::collections::HashMap;

#[test]
fn every_name_round_trips_to_its_row() {
    for arch in ARCHES {
        let oci = Platform::linux(arch).oci();
        assert_eq!(Platform::parse(&oci).unwrap().arch, arch, "{oci}");
        assert_eq!(Platform::parse(&arch.nix_system()).unwrap().arch, arch);
        for name in arch.pkgs_cross_glibc.iter().chain(arch.glibc_triples) {
            let p = Platform::parse(name).unwrap();
            assert_eq!((p.arch, p.libc), (arch, Some(Libc::Glibc)), "{name}");
        }
        for name in arch.pkgs_cross_musl.iter().chain(arch.musl_triples) {
            let p = Platform::parse(name).unwrap();
            assert_eq!((p.arch, p.libc), (arch, Some(Libc::Musl)), "{name}");
        }
        for (name, os) in arch.other_os_names {
            let p = Platform::parse(name).unwrap();
            assert_eq!((p.arch, p.os), (arch, *os), "{name}");
        }
        for variant in arch.oci_variant_aliases {
            let name = format!("linux/{}/{variant}", arch.oci_arch);
            assert_eq!(Platform::parse(&name).unwrap().arch, arch, "{name}");
        }
    }
}

#[test]
fn no_name_belongs_to_two_rows() {
    let mut owner: HashMap<String, &str> = HashMap::new();
    for arch in ARCHES {
        let mut names: Vec<String> = vec![Platform::linux(arch).oci(), arch.nix_system()];
        names.extend(arch.pkgs_cross_glibc.iter().map(|s| s.to_string()));
        names.extend(arch.pkgs_cross_musl.iter().map(|s| s.to_string()));
        names.extend(arch.triples().map(str::to_string));
        names.extend(arch.other_os_names.iter().map(|(n, _)| n.to_string()));
        // One row may spell a name twice (a pkgsCross attribute that is also its triple).
        names.sort();
        names.dedup();
        for n in names {
            if let Some(prev) = owner.insert(n.clone(), arch.nix_cpu) {
                panic!("{n} is claimed by both {prev} and {}", arch.nix_cpu);
            }
        }
    }
}

#[test]
fn keys_and_full_identities_are_unique() {
    let mut keys = std::collections::HashSet::new();
    let mut identities = std::collections::HashSet::new();
    for arch in ARCHES {
        assert!(keys.insert(arch.key()), "duplicate key {}", arch.key());
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
        ("armv7l", g::EM_ARM),
        ("armv6l", g::EM_ARM),
        ("armv5tel", g::EM_ARM),
        ("riscv64", g::EM_RISCV),
        ("powerpc64le", g::EM_PPC64),
        ("powerpc64", g::EM_PPC64),
        ("s390x", g::EM_S390),
        ("mips64el", g::EM_MIPS),
        ("loongarch64", 258),
    ];
    assert_eq!(expect.len(), ARCHES.len());
    for (key, machine) in expect {
        let arch = ARCHES.iter().find(|a| a.key() == *key).unwrap();
        assert_eq!(arch.elf_machine, *machine, "{key}");
    }
}

#[test]
fn loaders_identify_their_rows() {
    for arch in ARCHES {
        for libc in [Libc::Glibc, Libc::Musl] {
            let hits = arches_for_loader(arch.loader(libc));
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
