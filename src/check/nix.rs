//! The `nix.eval` and `nix.build` checks: did a flake target evaluate and build, and does anything
//! say what platform it is for.

use super::{CheckResult, ids};

/// Built, but neither mab.toml, Nix nor the target's name says which platform it is.
pub fn no_platform(target: &str) -> CheckResult {
    CheckResult::fail(
        ids::NIX_BUILD,
        format!("built, but nothing says which platform {target} is for"),
    )
    .hint(format!(
        "name it in mab.toml: [build.platforms] {target} = \"linux/arm64\""
    ))
}

/// The output did not build; `log_tail` is the end of its log (empty when there is none).
pub fn failed(output: &str, log_tail: Option<String>, drv_path: &str) -> CheckResult {
    CheckResult::fail(ids::NIX_BUILD, format!("{output} failed to build"))
        .found(
            log_tail
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "no log".into()),
        )
        .at(drv_path.to_string())
        .hint(format!("nix log {drv_path} shows the whole build log"))
}

/// A target asked for that does not evaluate: named, with nix's error.
pub fn eval_failed(target: &str, error: &str, installable: &str) -> CheckResult {
    CheckResult::fail(ids::NIX_EVAL, format!("target {target} does not evaluate"))
        .found(error.to_string())
        .at(installable.to_string())
        .hint(format!(
            "nix eval {installable} --show-trace shows the whole error"
        ))
}
