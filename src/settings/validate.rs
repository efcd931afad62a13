//! Checks of each configured value: ranges of numbers, placeholders of templates, regexes.

use super::{MAX_OUTPUT_CAP, MAX_TIMEOUT_SECS, OutputRule, PLACEHOLDERS, RunLayer};
use crate::check::run::render;
use crate::config::{Config, Number, RunConfig};
use crate::error::{Error, Result};
use crate::platform::{ARCHES, Platform};
use std::time::Duration;

pub(super) fn config_layer(
    section: &str,
    c: &RunConfig,
    place: &str,
    platform: Option<&Platform>,
) -> Result<RunLayer> {
    let key = |name: &str| format!("{section}.{name}");
    let output = match (&c.expect_output_regex, &c.expect_output) {
        (Some(re), _) => Some(OutputRule::Regex(re.clone())),
        (None, Some(t)) => Some(OutputRule::Template(t.clone())),
        (None, None) => None,
    };
    let output_key = match output {
        Some(OutputRule::Regex(_)) => key("expect_output_regex"),
        _ => key("expect_output"),
    };
    validate_output(&output_key, output.as_ref(), platform, place)?;
    Ok(RunLayer {
        args: c.args.clone(),
        output,
        timeout: c
            .timeout_secs
            .as_ref()
            .map(|v| seconds(&key("timeout_secs"), v, place))
            .transpose()?,
        output_cap: c
            .output_cap_bytes
            .as_ref()
            .map(|v| count(&key("output_cap_bytes"), v, place, 1, MAX_OUTPUT_CAP))
            .transpose()?
            .map(|n| n as usize),
        version: c.version.clone(),
    })
}

pub(super) fn limits(config: &Config, place: &str) -> Result<crate::image::Limits> {
    let d = crate::image::Limits::default();
    let l = &config.limits;
    let get = |name: &str, v: &Option<Number>, max: i64, default: u64| -> Result<u64> {
        match v {
            None => Ok(default),
            Some(v) => count(&format!("limits.{name}"), v, place, 1, max).map(|n| n as u64),
        }
    };
    Ok(crate::image::Limits {
        max_uncompressed: get(
            "max_uncompressed_bytes",
            &l.max_uncompressed_bytes,
            1 << 50,
            d.max_uncompressed,
        )?,
        max_json: get("max_json_bytes", &l.max_json_bytes, 1 << 30, d.max_json)?,
        max_nesting: get("max_nesting", &l.max_nesting, 64, d.max_nesting as u64)? as usize,
        max_binary_bytes: get(
            "max_binary_bytes",
            &l.max_binary_bytes,
            1 << 40,
            d.max_binary_bytes,
        )?,
        max_images: get("max_images", &l.max_images, 1 << 20, d.max_images as u64)? as usize,
    })
}

fn seconds_range() -> String {
    format!("a number of seconds greater than 0 and at most {MAX_TIMEOUT_SECS}")
}

pub(super) fn seconds_f64(key: &str, t: f64, place: &str) -> Result<Duration> {
    if t > 0.0 && t <= MAX_TIMEOUT_SECS {
        return Ok(Duration::from_secs_f64(t));
    }
    Err(Error::Setting {
        key: key.into(),
        value: t.to_string(),
        place: place.into(),
        allowed: seconds_range(),
    })
}

fn seconds(key: &str, v: &Number, place: &str) -> Result<Duration> {
    let t = match v {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        other => {
            return Err(Error::Setting {
                key: key.into(),
                value: other.to_string(),
                place: place.into(),
                allowed: seconds_range(),
            });
        }
    };
    seconds_f64(key, t, place)
}

fn count(key: &str, v: &Number, place: &str, min: i64, max: i64) -> Result<i64> {
    match v {
        toml::Value::Integer(i) if (min..=max).contains(i) => Ok(*i),
        other => Err(Error::Setting {
            key: key.into(),
            value: other.to_string(),
            place: place.into(),
            allowed: format!("a whole number from {min} to {max}"),
        }),
    }
}

/// Templates name only known placeholders; regexes compile once filled in.
pub(super) fn validate_output(
    key: &str,
    rule: Option<&OutputRule>,
    platform: Option<&Platform>,
    place: &str,
) -> Result<()> {
    let Some(rule) = rule else { return Ok(()) };
    let text = match rule {
        OutputRule::Template(t) | OutputRule::Regex(t) => t,
    };
    let bad = |allowed: String| Error::Setting {
        key: key.into(),
        value: format!("{text:?}"),
        place: place.into(),
        allowed,
    };
    let placeholder = regex::Regex::new(r"\{([A-Za-z_]+)\}").expect("a valid regex");
    for m in placeholder.captures_iter(text) {
        if !PLACEHOLDERS.contains(&&m[1]) {
            return Err(bad(format!(
                "a text with only the placeholders {} ({{{}}} is none of them)",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                &m[1]
            )));
        }
    }
    if let OutputRule::Regex(re) = rule {
        let sample = platform.copied().unwrap_or(Platform::linux(&ARCHES[0]));
        if let Err(e) = regex::Regex::new(&render(re, &sample, Some("1.0.0"))) {
            return Err(bad(format!("a valid regular expression ({e})")));
        }
    }
    Ok(())
}
