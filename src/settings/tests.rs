//! Unit tests of resolution: precedence of every layer and refusal of every bad value.

use super::*;
use rstest::rstest;

fn settings(flags: &VerifyFlags, toml: &str) -> Result<Settings> {
    let config = Config::parse(toml).expect("the test's config parses");
    Settings::from_parts(flags, &config, "test.toml")
}

fn arm64() -> Platform {
    Platform::parse("linux/arm64").unwrap()
}

const FULL_CONFIG: &str = r#"
expect = ["linux/riscv64"]
[run]
args = ["top"]
expect_output = "top {arch}"
timeout_secs = 3
output_cap_bytes = 100
version = "1.0"
[platform."linux/arm64"]
args = ["table"]
expect_output_regex = "^table$"
timeout_secs = 4
output_cap_bytes = 200
version = "2.0"
"#;

#[test]
fn defaults_when_nothing_is_given() {
    let s = settings(&VerifyFlags::default(), "").unwrap();
    let run = s.run_for(&arm64());
    assert_eq!(run.args, None);
    assert_eq!(run.timeout, Duration::from_secs(10));
    assert_eq!(run.output, OutputRule::Template(DEFAULT_TEMPLATE.into()));
    assert!(s.expects.is_empty());
}

#[test]
fn the_platform_table_beats_the_top_level() {
    let s = settings(&VerifyFlags::default(), FULL_CONFIG).unwrap();
    let run = s.run_for(&arm64());
    assert_eq!(run.args, Some(vec!["table".to_string()]));
    assert_eq!(run.timeout, Duration::from_secs(4));
    assert_eq!(run.output_cap, 200);
    assert_eq!(run.output, OutputRule::Regex("^table$".into()));
    assert_eq!(run.version.as_deref(), Some("2.0"));
    let other = s.run_for(&Platform::parse("linux/amd64").unwrap());
    assert_eq!(other.args, Some(vec!["top".to_string()]));
    assert_eq!(other.timeout, Duration::from_secs(3));
    assert_eq!(other.output_cap, 100);
}

#[test]
fn a_flag_beats_every_config_layer_for_every_setting_both_can_give() {
    let flags = VerifyFlags {
        expect: vec!["linux/arm64".into()],
        run_args: vec!["flag".into()],
        expect_output: Some("flag {os}".into()),
        timeout: Some(7.5),
        ..VerifyFlags::default()
    };
    let s = settings(&flags, FULL_CONFIG).unwrap();
    assert_eq!(
        s.expects
            .iter()
            .map(|e| match &e.source {
                crate::check::ExpectedSource::Flag { name } => name.as_str(),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        ["linux/arm64"]
    );
    for platform in [arm64(), Platform::parse("linux/amd64").unwrap()] {
        let run = s.run_for(&platform);
        assert_eq!(run.args, Some(vec!["flag".to_string()]), "{platform:?}");
        assert_eq!(run.timeout, Duration::from_secs_f64(7.5));
        // A flag's template beats a config regex too: the flag says what stdout must be.
        assert_eq!(run.output, OutputRule::Template("flag {os}".into()));
    }
    let regex = VerifyFlags {
        expect_output_regex: Some("^flag$".into()),
        ..VerifyFlags::default()
    };
    let run = settings(&regex, FULL_CONFIG).unwrap().run_for(&arm64());
    assert_eq!(run.output, OutputRule::Regex("^flag$".into()));
}

#[test]
fn config_expect_applies_without_the_flag() {
    let s = settings(&VerifyFlags::default(), FULL_CONFIG).unwrap();
    assert_eq!(
        s.expects[0].platform,
        Platform::parse("linux/riscv64").unwrap()
    );
}

fn key_of(e: &Error) -> &str {
    match e {
        Error::Setting { key, .. } => key,
        other => panic!("not a setting error: {other}"),
    }
}

#[rstest]
fn every_bad_number_in_the_config_is_refused_naming_its_key(
    #[values(
        "run.timeout_secs",
        "run.output_cap_bytes",
        "platform.\"linux/arm64\".timeout_secs",
        "platform.\"linux/arm64\".output_cap_bytes",
        "limits.max_uncompressed_bytes",
        "limits.max_json_bytes",
        "limits.max_nesting",
        "limits.max_binary_bytes"
    )]
    key: &str,
    #[values(
        "-1",
        "0",
        "nan",
        "-inf",
        "inf",
        "1e30",
        "9223372036854775807",
        "\"abc\"",
        "[]"
    )]
    value: &str,
) {
    let (section, name) = key.rsplit_once('.').unwrap();
    let toml = format!("[{section}]\n{name} = {value}\n");
    let err = settings(&VerifyFlags::default(), &toml).unwrap_err();
    assert_eq!(key_of(&err), key, "{toml}");
    let text = err.to_string();
    assert!(text.contains("test.toml"), "{text}");
    assert!(
        text.contains("greater than 0") || text.contains("from 1 to"),
        "{text}"
    );
}

#[rstest]
fn every_bad_timeout_flag_is_refused(
    #[values(-1.0, 0.0, f64::NAN, f64::INFINITY, 1e30, 86_400.5)] t: f64,
) {
    let flags = VerifyFlags {
        timeout: Some(t),
        ..VerifyFlags::default()
    };
    assert_eq!(key_of(&settings(&flags, "").unwrap_err()), "--timeout");
}

#[test]
fn good_numbers_at_the_bounds_are_taken() {
    let s = settings(
        &VerifyFlags::default(),
        "[run]\ntimeout_secs = 86400\noutput_cap_bytes = 1\n[limits]\nmax_nesting = 64\n",
    )
    .unwrap();
    assert_eq!(s.run_for(&arm64()).timeout, Duration::from_secs(86_400));
    assert_eq!(s.run_for(&arm64()).output_cap, 1);
    assert_eq!(s.limits.max_nesting, 64);
}

#[rstest]
#[case("[run]\nexpect_output = \"Hello {arhc}\"\n", "run.expect_output")]
#[case(
    "[run]\nexpect_output_regex = \"(unclosed\"\n",
    "run.expect_output_regex"
)]
#[case(
    "[platform.aarch64-linux]\nexpect_output_regex = \"x{2,1}\"\n",
    "platform.\"aarch64-linux\".expect_output_regex"
)]
fn bad_templates_and_regexes_are_refused(#[case] toml: &str, #[case] key: &str) {
    assert_eq!(
        key_of(&settings(&VerifyFlags::default(), toml).unwrap_err()),
        key
    );
}

#[test]
fn bad_output_flags_are_refused() {
    let flags = VerifyFlags {
        expect_output_regex: Some("[".into()),
        ..VerifyFlags::default()
    };
    assert_eq!(
        key_of(&settings(&flags, "").unwrap_err()),
        "--expect-output-regex"
    );
    let flags = VerifyFlags {
        expect_output: Some("{nope}".into()),
        ..VerifyFlags::default()
    };
    assert_eq!(
        key_of(&settings(&flags, "").unwrap_err()),
        "--expect-output"
    );
}

#[test]
fn expectations_fill_templates_and_versions() {
    let s = settings(
        &VerifyFlags::default(),
        "[run]\nexpect_output = \"v{version} {arch}\"\n",
    )
    .unwrap();
    let run = s.run_for(&arm64());
    assert_eq!(
        run.expectation(&arm64(), Some("3.1".into())),
        OutputExpectation::Exact("v3.1 aarch64".into())
    );
    assert_eq!(
        run.expectation(&arm64(), None),
        OutputExpectation::Regex(r"^v\S+ aarch64$".into())
    );
}
