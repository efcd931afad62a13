//! Names containerd and Docker normalise (`linux/aarch64`, `linux/x86_64`, `i386`, `arm64/v8`),
//! rewritten to the table's OCI names before a lookup.

use super::{Platform, UnknownPlatform};

/// Architecture spellings containerd's `platforms.Normalize` accepts, as OCI arch/variant.
const ARCH_ALIASES: &[(&str, &str)] = &[
    ("aarch64", "arm64"),
    ("arm64/v8", "arm64"),
    ("aarch64/v8", "arm64"),
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("i386", "386"),
    ("i486", "386"),
    ("i586", "386"),
    ("i686", "386"),
    ("armhf", "arm/v7"),
    ("armel", "arm/v6"),
    ("arm", "arm/v7"),
];

/// `name` with a containerd-style architecture alias replaced, with `linux/` when it had no OS.
pub fn normalize(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (os, arch) = match lower.split_once('/') {
        Some((os, rest)) if !ARCH_ALIASES.iter().any(|(a, _)| a.starts_with(os)) => {
            (os.to_string(), rest.to_string())
        }
        _ => ("linux".to_string(), lower.clone()),
    };
    ARCH_ALIASES
        .iter()
        .find(|(alias, _)| *alias == arch)
        .map(|(_, oci)| format!("{os}/{oci}"))
}

/// `Platform::parse`, then the same after containerd's normalisation; the error is the one the
/// name as given produced.
pub fn parse_normalized(name: &str) -> Result<Platform, UnknownPlatform> {
    Platform::parse(name).or_else(|e| {
        normalize(name)
            .and_then(|n| Platform::parse(&n).ok())
            .ok_or(e)
    })
}

#[cfg(test)]
mod alias_tests {
    use super::*;

    #[test]
    fn containerd_aliases_resolve_to_the_table_rows() {
        for (alias, oci) in [
            ("linux/aarch64", "linux/arm64"),
            ("linux/x86_64", "linux/amd64"),
            ("i386", "linux/386"),
            ("linux/i386", "linux/386"),
            ("arm64/v8", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/armhf", "linux/arm/v7"),
        ] {
            assert_eq!(
                parse_normalized(alias).ok().map(|p| p.oci()),
                Some(oci.to_string()),
                "{alias}"
            );
        }
        assert!(parse_normalized("linux/sparc").is_err());
    }
}
