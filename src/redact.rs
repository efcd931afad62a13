//! Replaces run-specific values (temp paths, timings, hashes of host files) for stable snapshots.

/// Replace every occurrence of each `(needle, placeholder)` pair, then blank timings.
pub fn redact(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    let mut pairs: Vec<_> = replacements.iter().filter(|(n, _)| !n.is_empty()).collect();
    // Longest first, so a path is not half-replaced by its own prefix.
    pairs.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (needle, placeholder) in pairs {
        out = out.replace(needle, placeholder);
    }
    let ms = regex::Regex::new(r"\b\d+ ms\b").expect("static regex");
    let out = ms.replace_all(&out, "[ms] ms");
    let json_ms = regex::Regex::new(r#""duration_ms": \d+"#).expect("static regex");
    json_ms
        .replace_all(&out, r#""duration_ms": "[ms]""#)
        .into_owned()
}
