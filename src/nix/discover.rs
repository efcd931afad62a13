//! Finds a flake's targets, evaluating only those asked for, so that a broken sibling costs
//! nothing and a broken target asked for is named with its own error.

use super::{NixError, Output, Target, run_json};
use std::collections::BTreeMap;

/// A target asked for whose evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub name: String,
    pub error: String,
}

#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every attribute name below the attribute path (none of them evaluated).
    pub known: Vec<String>,
    /// The targets evaluated, with at least one derivation each.
    pub targets: Vec<Target>,
    pub broken: Vec<Broken>,
}

/// The Nix expression applied to a set of targets: every derivation one or two levels down,
/// with its out and drv paths and, when present, its host platform.
const DISCOVER: &str = r#"pkgs:
let
  isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation";
  info = attr: d: {
    inherit attr;
    name = d.name;
    # Not outPath: toJSON turns any set with an outPath into that string.
    out_path = d.outPath;
    drv_path = d.drvPath;
    host = if d ? stdenv && d.stdenv ? hostPlatform then (d.stdenv.hostPlatform.config or d.stdenv.hostPlatform.system or null) else null;
  };
in builtins.mapAttrs (target: v:
  if isDrv v then [ (info target v) ]
  else if builtins.isAttrs v then
    builtins.filter (x: x != null) (builtins.attrValues (builtins.mapAttrs (o: d: if isDrv d then info "${target}.${o}" d else null) v))
  else []) pkgs"#;

/// A Nix string literal: JSON's escapes are Nix's, except that `${` must not interpolate.
fn nix_string(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string")
        .replace("${", "\\${")
}

/// `DISCOVER` restricted to `names`: attribute names only are read from the full set, so
/// the others are never evaluated.
fn discover_only(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| nix_string(n)).collect();
    format!(
        "all: ({DISCOVER}) (builtins.listToAttrs (map (n: {{ name = n; value = all.${{n}}; }}) [ {} ]))",
        list.join(" ")
    )
}

fn eval_targets(flake: &str, attr: &str, names: &[&str]) -> Result<Vec<Target>, NixError> {
    let installable = format!("{flake}#{attr}");
    let value = run_json(
        "eval",
        &[
            "eval",
            "--json",
            &installable,
            "--apply",
            &discover_only(names),
        ],
    )?;
    let map: BTreeMap<String, Vec<Output>> =
        serde_json::from_value(value).map_err(|e| NixError::Failed {
            what: "eval".into(),
            message: e.to_string(),
        })?;
    Ok(map
        .into_iter()
        .filter(|(_, o)| !o.is_empty())
        .map(|(name, outputs)| Target { name, outputs })
        .collect())
}

/// The targets below `attr` (`packages.x86_64-linux`); `wanted` empty means all of them.
/// Names in `wanted` that do not exist are left out (the caller sees them missing from
/// `known`). One `nix eval` when everything evaluates; when it fails, one per target, so each
/// broken target carries its own error and the others are still found.
pub fn discover(flake: &str, attr: &str, wanted: &[String]) -> Result<Discovery, NixError> {
    let installable = format!("{flake}#{attr}");
    let known: Vec<String> = serde_json::from_value(run_json(
        "eval",
        &[
            "eval",
            "--json",
            &installable,
            "--apply",
            "builtins.attrNames",
        ],
    )?)
    .map_err(|e| NixError::Failed {
        what: "eval".into(),
        message: format!("{installable} is not an attribute set: {e}"),
    })?;
    let selected: Vec<&str> = known
        .iter()
        .map(String::as_str)
        .filter(|k| wanted.is_empty() || wanted.iter().any(|w| w == k))
        .collect();
    let mut discovery = Discovery {
        known: known.clone(),
        ..Discovery::default()
    };
    if selected.is_empty() {
        return Ok(discovery);
    }
    match eval_targets(flake, attr, &selected) {
        Ok(targets) => discovery.targets = targets,
        Err(NixError::Failed { message, .. }) if selected.len() == 1 => {
            discovery.broken.push(Broken {
                name: selected[0].to_string(),
                error: message,
            })
        }
        Err(NixError::Failed { .. }) => {
            for name in selected {
                match eval_targets(flake, attr, &[name]) {
                    Ok(t) => discovery.targets.extend(t),
                    Err(NixError::Failed { message, .. }) => discovery.broken.push(Broken {
                        name: name.to_string(),
                        error: message,
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        Err(e) => return Err(e),
    }
    Ok(discovery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_interpolate() {
        assert_eq!(nix_string("a${b}\"c"), r#""a\${b}\"c""#);
        assert!(discover_only(&["x", "y"]).contains(r#"[ "x" "y" ]"#));
    }
}
