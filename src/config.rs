//! `mab.toml` as written: its shape, read and parsed, validated later by `settings`.

use crate::error::{Error, Result};
use crate::platform::Platform;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest config file read; a config is a few lines.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    /// Emulator per platform: any platform name → path to qemu.
    #[serde(default)]
    pub qemu: BTreeMap<String, PathBuf>,
    /// Per-platform run overrides, keyed by any platform name.
    #[serde(default)]
    pub platform: BTreeMap<String, RunConfig>,
    /// Platforms that must be present (also `--expect`).
    #[serde(default)]
    pub expect: Vec<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub build: BuildConfig,
}

/// `[build]`: which flake targets to build and what each is for.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// Only these targets (default: every target the flake has).
    pub targets: Option<Vec<String>>,
    /// Target name → platform, overriding what Nix says.
    #[serde(default)]
    pub platforms: BTreeMap<String, String>,
}

/// `[limits]`: what a hostile input may make the reader do.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_uncompressed_bytes: Option<Number>,
    pub max_json_bytes: Option<Number>,
    pub max_nesting: Option<Number>,
    pub max_binary_bytes: Option<Number>,
    pub max_images: Option<Number>,
}

/// A numeric value as written: `settings` checks its type and range, so a bad one is reported
/// with its key and the allowed range rather than as a parse error.
pub type Number = toml::Value;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub args: Option<Vec<String>>,
    pub expect_output: Option<String>,
    pub expect_output_regex: Option<String>,
    pub timeout_secs: Option<Number>,
    pub output_cap_bytes: Option<Number>,
    pub version: Option<String>,
}

impl Config {
    /// `--config PATH`, else `./mab.toml` when present, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("mab.toml");
                if !p.is_file() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let err = |source: ConfigError| Error::Config {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(|e| err(ConfigError::Read(e)))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(err(ConfigError::TooLarge(meta.len())));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| err(ConfigError::Read(e)))?;
        Config::parse(&text).map_err(err)
    }

    pub fn parse(text: &str) -> std::result::Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        for name in config
            .qemu
            .keys()
            .chain(config.platform.keys())
            .chain(&config.expect)
        {
            crate::platform::parse_normalized(name)?;
        }
        Ok(config)
    }

    /// The per-platform section for `platform`, if one names it.
    pub fn for_platform(&self, platform: &Platform) -> Option<&RunConfig> {
        self.platform
            .iter()
            .find(|(name, _)| {
                crate::platform::parse_normalized(name)
                    .is_ok_and(|p| p.arch == platform.arch && p.os == platform.os)
            })
            .map(|(_, c)| c)
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("{0} bytes is larger than the {MAX_CONFIG_BYTES}-byte limit")]
    TooLarge(u64),
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error(transparent)]
    Platform(#[from] crate::platform::UnknownPlatform),
}

impl Config {
    /// Emulator overrides from `[qemu]`, keyed by the row's key.
    pub fn emulator_overrides(&self) -> crate::run::EmulatorOverrides {
        self.qemu
            .iter()
            .filter_map(|(name, path)| {
                crate::platform::parse_normalized(name)
                    .ok()
                    .map(|p| (p.arch.key(), path.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_platform_names_are_rejected_with_a_suggestion() {
        let err = Config::parse("[platform.\"linux/arm64/v9\"]\nargs = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown platform"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[run]\ntimeout = 3\n").is_err());
    }

    #[test]
    fn per_platform_sections_match_any_name_form() {
        let c = Config::parse("[platform.aarch64-multiplatform]\nexpect_output = \"x\"\n").unwrap();
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            c.for_platform(&p).unwrap().expect_output.as_deref(),
            Some("x")
        );
    }
}
