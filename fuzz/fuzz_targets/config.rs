//! The `mab.toml` parser, and what the tool derives from a parsed config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::config::Config;
use mab_verify::platform::Platform;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Platform names come from the config and from the command line.
    let _ = Platform::parse(text);
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let _ = mab_verify::settings::config_limits(&config);
    let _ = config.emulator_overrides();
    for name in config.platform.keys().chain(&config.expect) {
        let platform = Platform::parse(name).expect("Config::parse accepted this platform name");
        let _ = config.for_platform(&platform);
        let _ = platform.oci();
    }
});
