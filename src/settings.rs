//! Flags, `mab.toml` and the environment resolved once into one validated `Settings` value.
//!
//! One precedence everywhere: flag > `mab.toml` platform table > top level > default. Every
//! value is checked here (exit 2 naming the key and range); stages take only the result.

use crate::check::run::{DEFAULT_TEMPLATE, OutputExpectation, render};
use crate::check::{Expected, ExpectedSource};
use crate::cli::{ColorChoice, Format, ReportSpec, VerifyFlags};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::platform::Platform;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

mod env_vars;
mod validate;

pub use env_vars::env;
use validate::{config_layer, limits, seconds_f64, validate_output};

/// Longest run a timeout may allow: a day.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;
pub const DEFAULT_TIMEOUT_SECS: f64 = 10.0;
/// Largest stdout/stderr capture per run: 1 GiB.
pub const MAX_OUTPUT_CAP: i64 = 1 << 30;
/// Template placeholders `check::run::render` fills in.
pub const PLACEHOLDERS: &[&str] = &["os", "arch", "oci_arch", "variant", "triple", "version"];

/// Everything a verifying command needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--expect`, else `mab.toml` `expect`: every one must be present (`pipeline::expect`
    /// is the one reader).
    pub expects: Vec<Expected>,
    /// `--platform`: only this platform's image of an index.
    pub platform_filter: Option<Platform>,
    pub allow_extra: bool,
    pub sysroot: Option<PathBuf>,
    pub no_run: bool,
    pub require_run: bool,
    /// `--require-sealed`: exit 3 when runs cannot be sealed here.
    pub require_sealed: bool,
    pub strict: bool,
    /// `--all`: every ELF file of a directory, not only its programs.
    pub all: bool,
    pub limits: crate::image::Limits,
    /// `[qemu]` of `mab.toml`.
    pub emulators: crate::run::EmulatorOverrides,
    pub build: BuildSettings,
    pub output: OutputSettings,
    /// `SOURCE_DATE_EPOCH`, validated.
    pub source_date_epoch: Option<u64>,
    pub(crate) run: RunLayers,
    /// How `docker://` inputs are reached (set by the commands that take them).
    pub remote: crate::image::reference::RemoteSettings,
    /// The fact cache, `None` with `--no-cache` or when no cache directory is known.
    pub cache: Option<crate::cache::CacheSettings>,
    /// `--jobs`: the bound on parallel work; `None`, one worker per core.
    pub jobs: Option<usize>,
}

/// `[build]` of `mab.toml`.
#[derive(Debug, Clone, Default)]
pub struct BuildSettings {
    pub targets: Option<Vec<String>>,
    pub platforms: BTreeMap<String, String>,
}

/// Where the report goes.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    pub format: Format,
    /// `--quiet`: failures, warnings and the verdict only, and no progress.
    pub quiet: bool,
    pub color: bool,
    pub reports: Vec<ReportSpec>,
    /// Running in GitHub Actions: annotations, and the step summary file if one is named.
    pub github: Option<Option<PathBuf>>,
    /// What the verification demanded, for `--report attestation=FILE`.
    pub policy: crate::report::attestation::Policy,
}

/// The run settings of one platform, every layer applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// Arguments for the binary; `None` leaves an image's own Cmd arguments in force.
    pub args: Option<Vec<String>>,
    pub timeout: Duration,
    pub output_cap: usize,
    pub output: OutputRule,
    pub version: Option<String>,
}

/// What stdout must be, before the platform's values are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputRule {
    Template(String),
    Regex(String),
}

/// One source of run settings: the flags, a platform table, or `[run]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunLayer {
    args: Option<Vec<String>>,
    output: Option<OutputRule>,
    timeout: Option<Duration>,
    output_cap: Option<usize>,
    version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RunLayers {
    flags: RunLayer,
    platforms: Vec<(Platform, RunLayer)>,
    top: RunLayer,
}

/// The `[limits]` of a parsed `mab.toml`, validated as `Settings::resolve` does (the config
/// fuzz target drives this: no value may panic).
pub fn config_limits(config: &crate::config::Config) -> Result<crate::image::Limits> {
    validate::limits(config, "mab.toml")
}

impl Settings {
    /// Load the config the flags name and resolve everything.
    pub fn resolve(flags: &VerifyFlags) -> Result<Settings> {
        crate::progress::install(crate::progress::Progress::resolve(
            flags.quiet,
            flags.color != ColorChoice::Never,
        ));
        let config = Config::load(flags.config.as_deref())?;
        let place = match &flags.config {
            Some(p) => p.display().to_string(),
            None => "mab.toml".to_string(),
        };
        let settings = Settings::from_parts(flags, &config, &place)?;
        crate::image::parallel::set_jobs(settings.jobs).map_err(|e| Error::Environment {
            what: e.to_string(),
            hint: "lower --jobs, or raise the process's thread limit".into(),
        })?;
        Ok(settings)
    }

    /// Resolve `flags` over an already parsed `config` (`place` names it in errors).
    pub fn from_parts(flags: &VerifyFlags, config: &Config, place: &str) -> Result<Settings> {
        let source_date_epoch = env::source_date_epoch().map_err(|value| Error::Setting {
            key: env::SOURCE_DATE_EPOCH.into(),
            value,
            place: "environment".into(),
            allowed: "a whole number of seconds since 1970-01-01".into(),
        })?;
        let names: &[String] = if flags.expect.is_empty() {
            &config.expect
        } else {
            &flags.expect
        };
        let expects = names
            .iter()
            .map(|name| {
                Ok(Expected {
                    platform: crate::platform::parse_normalized(name)?,
                    source: ExpectedSource::Flag { name: name.clone() },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(s) = &flags.sysroot
            && !s.is_dir()
        {
            return Err(Error::input(
                s,
                "--sysroot must be a directory (the target's root, for example /usr/aarch64-linux-gnu)",
            ));
        }
        let flag_layer = RunLayer {
            args: (!flags.run_args.is_empty()).then(|| flags.run_args.clone()),
            output: match (&flags.expect_output_regex, &flags.expect_output) {
                (Some(re), _) => Some(OutputRule::Regex(re.clone())),
                (None, Some(t)) => Some(OutputRule::Template(t.clone())),
                (None, None) => None,
            },
            timeout: flags
                .timeout
                .map(|t| seconds_f64("--timeout", t, "command line"))
                .transpose()?,
            output_cap: None,
            version: None,
        };
        let flag_key = match flag_layer.output {
            Some(OutputRule::Regex(_)) => "--expect-output-regex",
            _ => "--expect-output",
        };
        validate_output(flag_key, flag_layer.output.as_ref(), None, "command line")?;
        let top = config_layer("run", &config.run, place, None)?;
        let mut platforms = Vec::new();
        for (name, section) in &config.platform {
            let platform = crate::platform::parse_normalized(name)?;
            let layer = config_layer(
                &format!("platform.\"{name}\""),
                section,
                place,
                Some(&platform),
            )?;
            platforms.push((platform, layer));
        }
        if flags.require_sealed && !flags.no_run {
            crate::run::seal::require_sealed()?;
        }
        let expected_platforms = expects.iter().map(|e| e.platform.oci()).collect();
        Ok(Settings {
            expects,
            platform_filter: flags
                .platform
                .as_deref()
                .map(crate::platform::parse_normalized)
                .transpose()?,
            allow_extra: flags.allow_extra,
            sysroot: flags.sysroot.clone(),
            no_run: flags.no_run,
            require_run: flags.require_run,
            require_sealed: flags.require_sealed,
            strict: flags.strict,
            all: false,
            limits: {
                let mut l = limits(config, place)?;
                if let Some(n) = flags.max_images {
                    l.max_images = n as usize;
                }
                l
            },
            emulators: config.emulator_overrides(),
            build: BuildSettings {
                targets: config.build.targets.clone(),
                platforms: config.build.platforms.clone(),
            },
            output: OutputSettings {
                format: flags.format,
                quiet: flags.quiet,
                color: use_color(flags.color),
                reports: flags.reports.clone(),
                github: (env::text(env::GITHUB_ACTIONS).is_some_and(|v| v == "true"))
                    .then(|| env::get(env::GITHUB_STEP_SUMMARY).map(PathBuf::from)),
                policy: crate::report::attestation::Policy {
                    expected_platforms,
                    allow_extra: flags.allow_extra,
                    require_run: flags.require_run,
                    no_run: flags.no_run,
                    strict: flags.strict,
                },
            },
            source_date_epoch,
            run: RunLayers {
                flags: flag_layer,
                platforms,
                top,
            },
            remote: Default::default(),
            cache: cache_settings(flags)?,
            jobs: flags.jobs.map(usize::from),
        })
    }

    /// Expect `platforms` when neither `--expect` nor `mab.toml` named any (the demo holds
    /// its archive to every platform it built).
    pub fn expect_by_default(&mut self, platforms: &[Platform]) {
        if self.expects.is_empty() {
            self.expects = platforms
                .iter()
                .map(|p| Expected {
                    platform: *p,
                    source: ExpectedSource::Flag { name: p.oci() },
                })
                .collect();
        }
    }

    /// The run settings for `platform`: flag > its platform table > `[run]` > default.
    pub fn run_for(&self, platform: &Platform) -> RunSettings {
        let table = self
            .run
            .platforms
            .iter()
            .find(|(p, _)| p.arch == platform.arch && p.os == platform.os)
            .map(|(_, l)| l);
        let layers: Vec<&RunLayer> = [Some(&self.run.flags), table, Some(&self.run.top)]
            .into_iter()
            .flatten()
            .collect();
        fn first<T: Clone>(layers: &[&RunLayer], f: impl Fn(&RunLayer) -> Option<T>) -> Option<T> {
            layers.iter().find_map(|l| f(l))
        }
        RunSettings {
            args: first(&layers, |l| l.args.clone()),
            timeout: first(&layers, |l| l.timeout)
                .unwrap_or(Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS)),
            output_cap: first(&layers, |l| l.output_cap)
                .unwrap_or(crate::run::Limits::default().output_cap),
            output: first(&layers, |l| l.output.clone())
                .unwrap_or_else(|| OutputRule::Template(DEFAULT_TEMPLATE.to_string())),
            version: first(&layers, |l| l.version.clone()),
        }
    }
}

impl RunSettings {
    /// The output a binary of `platform` must print; `found_version` (from a store name)
    /// stands in when no version is configured.
    pub fn expectation(
        &self,
        platform: &Platform,
        found_version: Option<String>,
    ) -> OutputExpectation {
        let version = self.version.clone().or(found_version);
        let fill = |t: &str| render(t, platform, version.as_deref());
        let template = match &self.output {
            OutputRule::Regex(re) => return OutputExpectation::Regex(fill(re)),
            OutputRule::Template(t) if t == "none" => return OutputExpectation::Nothing,
            OutputRule::Template(t) => t,
        };
        let filled = fill(template);
        if filled.contains("{version}") {
            // No version known: accept any single word there, exactly elsewhere.
            let parts: Vec<String> = filled.split("{version}").map(regex::escape).collect();
            return OutputExpectation::Regex(format!("^{}$", parts.join(r"\S+")));
        }
        OutputExpectation::Exact(filled)
    }

    pub fn limits(&self) -> crate::run::Limits {
        crate::run::Limits {
            timeout: self.timeout,
            output_cap: self.output_cap,
        }
    }
}

/// `--no-cache`, else `--cache-dir`, else `$XDG_CACHE_HOME` (absolute only, as the XDG spec
/// says), else `$HOME/.cache`; `--cache-max` validated.
fn cache_settings(flags: &VerifyFlags) -> Result<Option<crate::cache::CacheSettings>> {
    let max_bytes = match &flags.cache_max {
        None => crate::cache::DEFAULT_MAX_BYTES,
        Some(text) => parse_bytes(text).ok_or_else(|| Error::Setting {
            key: "--cache-max".into(),
            value: text.clone(),
            place: "command line".into(),
            allowed: "a size in bytes, optionally with K, M or G (1024-based): 500M, 2G".into(),
        })?,
    };
    if flags.no_cache {
        return Ok(None);
    }
    let var = |name: &str| env::get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = flags
        .cache_dir
        .clone()
        .or_else(|| {
            var(env::XDG_CACHE_HOME)
                .filter(|p| p.is_absolute())
                .map(|p| p.join("mab-verify"))
        })
        // Only under a home that exists: a Nix build's HOME is `/homeless-shelter`, which
        // must never be created (the next unsandboxed build refuses to start).
        .or_else(|| {
            var(env::HOME)
                .filter(|h| h.is_dir())
                .map(|h| h.join(".cache").join("mab-verify"))
        });
    Ok(dir.map(|dir| crate::cache::CacheSettings { dir, max_bytes }))
}

/// `123`, `64K`, `500M`, `2G` (1024-based).
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// `--color`, then `NO_COLOR`, then `CLICOLOR_FORCE`, then whether stdout is a terminal.
fn use_color(choice: ColorChoice) -> bool {
    let set = |name: &str| env::get(name).is_some_and(|v| !v.is_empty() && v != "0");
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if env::no_color() => false,
        ColorChoice::Auto if set(env::CLICOLOR_FORCE) => true,
        ColorChoice::Auto => std::io::stdout().is_terminal(),
    }
}

#[cfg(test)]
mod tests;
