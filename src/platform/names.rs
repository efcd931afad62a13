//! Name forms: OCI `os/arch/variant`, pkgsCross attributes, config triples, Rust targets,
//! nix doubles and bare CPU words, parsed into platforms; suggestions for unknown names.

use super::{ALIASES, ARCHES, Arch, Libc, Os, Platform, System, all_systems};

impl Platform {
    /// Parse any accepted name form; an unknown name lists its close matches.
    pub fn parse(name: &str) -> Result<Platform, UnknownPlatform> {
        let trimmed = name.trim();
        if let Some(p) = parse_oci(trimmed) {
            return Ok(p);
        }
        let attr = ALIASES
            .iter()
            .find(|(old, _)| *old == trimmed)
            .map_or(trimmed, |(_, new)| *new);
        // pkgsCross attributes first: `riscv64` is both an attribute (glibc) and a CPU word.
        if let Some(s) = all_systems().find(|s| s.attr == attr) {
            return Ok(system_platform(s));
        }
        for arch in ARCHES {
            if arch.glibc_triples.contains(&trimmed) {
                return Ok(pinned(arch, Libc::Glibc));
            }
            if arch.musl_triples.contains(&trimmed) {
                return Ok(pinned(arch, Libc::Musl));
            }
        }
        // A config triple or Rust target several attributes share (x86_64-w64-mingw32 is
        // both mingwW64 and ucrt64) pins the libc only when they agree on it.
        let by_triple: Vec<&System> = all_systems()
            .filter(|s| s.config == trimmed || s.rust_target == trimmed)
            .collect();
        if let Some(first) = by_triple.first() {
            let mut p = system_platform(first);
            if by_triple
                .iter()
                .any(|s| s.libc != first.libc || s.arch != first.arch || s.os != first.os)
            {
                p.libc = None;
            }
            return Ok(p);
        }
        if let Some(arch) = ARCHES
            .iter()
            .find(|a| a.is_linux_double() && a.nix_system() == trimmed)
        {
            return Ok(Platform::linux(arch));
        }
        if let Some((cpu, os)) = trimmed.split_once('-')
            && let Some(os) = Os::parse(os)
            && let Some(s) = super::all_systems().find(|s| {
                s.os == os && super::Arch::by_key(s.arch).is_some_and(|a| a.nix_cpu == cpu)
            })
        {
            // Other nix doubles: `x86_64-freebsd`, `wasm32-wasi`.
            return Ok(Platform {
                os,
                arch: super::Arch::by_key(s.arch).expect("systems name table rows"),
                libc: None,
                level: None,
            });
        }
        // Bare architecture words are only accepted when they name exactly one row.
        let linux_rows = || ARCHES.iter().filter(|a| a.oses().contains(&Os::Linux));
        let by_word: Vec<&'static Arch> = linux_rows()
            .filter(|a| a.other_names.contains(&trimmed))
            .collect();
        let by_oci: Vec<&'static Arch> = linux_rows().filter(|a| a.oci_arch == trimmed).collect();
        for rows in [by_word, by_oci] {
            if let [arch] = rows[..] {
                return Ok(Platform::linux(arch));
            }
        }
        Err(UnknownPlatform {
            name: name.to_string(),
            suggestions: close_matches(trimmed),
        })
    }

    /// The first known triple inside a Nix store name such as
    /// `<hash>-multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0`.
    pub fn from_store_name(store_name: &str) -> Option<(Platform, &'static str)> {
        let mut best: Option<(Platform, &'static str)> = None;
        for arch in ARCHES {
            let forms = arch
                .glibc_triples
                .iter()
                .map(|t| (*t, Libc::Glibc))
                .chain(arch.musl_triples.iter().map(|t| (*t, Libc::Musl)));
            for (triple, libc) in forms {
                if contains_dash_bounded(store_name, triple)
                    && best.is_none_or(|(_, b)| triple.len() > b.len())
                {
                    best = Some((pinned(arch, libc), triple));
                }
            }
        }
        best
    }
}

fn pinned(arch: &'static Arch, libc: Libc) -> Platform {
    Platform {
        os: Os::Linux,
        arch,
        libc: Some(libc),
        level: None,
    }
}

pub(super) fn system_platform(s: &System) -> Platform {
    Platform {
        os: s.os,
        arch: Arch::by_key(s.arch).expect("every system names a row of ARCHES"),
        libc: s.libc,
        level: None,
    }
}

fn contains_dash_bounded(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(i, _)| {
        let before_ok = i == 0 || haystack.as_bytes()[i - 1] == b'-';
        let end = i + needle.len();
        let after_ok = end == haystack.len() || haystack.as_bytes()[end] == b'-';
        before_ok && after_ok
    })
}

fn parse_oci(name: &str) -> Option<Platform> {
    let mut parts = name.split('/');
    let os = Os::parse(parts.next()?)?;
    let arch_name = parts.next()?;
    let variant = parts.next();
    if parts.next().is_some() {
        return None;
    }
    if let Some(level) = variant
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| (1..=4).contains(n))
        && let Some(arch) = ARCHES
            .iter()
            .find(|a| a.has_levels() && a.oci_arch == arch_name && a.oses().contains(&os))
    {
        return Some(Platform {
            os,
            arch,
            libc: None,
            level: (level > 1).then_some(level),
        });
    }
    let arch = ARCHES.iter().find(|a| {
        a.oci_arch == arch_name
            && a.oses().contains(&os)
            && match variant {
                None => a.oci_variant.is_none() || is_default_variant(a, os),
                Some(v) => a.oci_variant == Some(v) || a.oci_variant_aliases.contains(&v),
            }
    })?;
    Some(Platform {
        os,
        arch,
        libc: None,
        level: None,
    })
}

/// `linux/arm` without a variant means v7, as in the OCI image index spec's examples and
/// in Docker's normalisation.
fn is_default_variant(arch: &Arch, os: Os) -> bool {
    arch.oci_variant.is_some()
        && ARCHES
            .iter()
            .filter(|a| a.oci_arch == arch.oci_arch && a.oses().contains(&os))
            .filter(|a| a.oci_variant.is_some_and(|v| v.starts_with('v')))
            .max_by_key(|a| (a.oci_variant, a.nix_double))
            .is_some_and(|a| a == arch)
}

/// Every name the table accepts, for suggestions and for the `platforms` listing.
pub fn all_names() -> Vec<String> {
    let mut names = Vec::new();
    for a in ARCHES {
        for os in a.oses() {
            names.push(
                Platform {
                    os,
                    arch: a,
                    libc: None,
                    level: None,
                }
                .oci(),
            );
        }
        if a.is_linux_double() {
            names.push(a.nix_system());
        }
        names.extend(a.triples().map(str::to_string));
    }
    for s in all_systems() {
        names.push(s.attr.to_string());
        names.push(s.config.to_string());
        names.push(s.rust_target.to_string());
    }
    names.extend(ALIASES.iter().map(|(old, _)| old.to_string()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn close_matches(name: &str) -> Vec<String> {
    let mut scored: Vec<(f64, String)> = all_names()
        .into_iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&n.to_lowercase(), &name.to_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown platform '{name}'{}", suggest(.suggestions))]
pub struct UnknownPlatform {
    pub name: String,
    pub suggestions: Vec<String>,
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        "; run `mab-verify platforms` to list every accepted name".to_string()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}
