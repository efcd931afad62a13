//! Every environment variable the tool reads, declared in one place.

/// Every environment variable the tool reads (README "Environment").
pub mod env {
    /// Seconds since the epoch for archive timestamps and `generated_at`.
    pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
    /// Non-empty: no colour, whatever the terminal.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// Non-empty and not `0`: colour even when stdout is not a terminal.
    pub const CLICOLOR_FORCE: &str = "CLICOLOR_FORCE";
    /// `true`: add GitHub annotations and the step summary.
    pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
    /// The file GitHub Actions shows as the step summary.
    pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
    /// Where `qemu-<arch>` and the demo's compilers are looked up.
    pub const PATH: &str = "PATH";
    /// `MAB_QEMU_<ARCH>` (`MAB_QEMU_AARCH64`): the emulator of one row (read by `run`, named
    /// by `Arch::qemu_env_var`).
    pub const QEMU_PREFIX: &str = "MAB_QEMU_";
    /// Registry credentials for `push` (read by `publish::auth`).
    pub const REGISTRY_USER: &str = "MAB_REGISTRY_USER";
    pub const REGISTRY_PASSWORD: &str = "MAB_REGISTRY_PASSWORD";
    /// A containers-auth.json file for `push` (read by `publish::auth`).
    pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
    /// Docker's config directory (`config.json`: auths, credsStore, credHelpers), and the
    /// session directory holding podman's `containers/auth.json` (read by `publish::auth`).
    pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
    pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
    /// The CA bundle file and directory HTTPS to registries trusts (read by `publish::registry`).
    pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
    pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";
    /// `none` runs unsealed; a path names the bubblewrap to use (read by `run::seal`).
    pub const BWRAP: &str = "MAB_BWRAP";
    /// Where private temporary directories go; the gated command gets the caller's own.
    pub const TMPDIR: &str = "TMPDIR";
    /// `push` timeouts in seconds: connect, idle read, whole push (read by `publish::registry`).
    pub const PUSH_CONNECT_TIMEOUT: &str = "MAB_PUSH_CONNECT_TIMEOUT";
    pub const PUSH_IDLE_TIMEOUT: &str = "MAB_PUSH_IDLE_TIMEOUT";
    pub const PUSH_TIMEOUT: &str = "MAB_PUSH_TIMEOUT";
    /// Values the gated command receives (written, not read).
    pub const VERIFIED_PATH: &str = "MAB_VERIFIED_PATH";
    pub const VERIFIED_DIGEST: &str = "MAB_VERIFIED_DIGEST";
    pub const REPORT: &str = "MAB_REPORT";
    pub const PLATFORMS: &str = "MAB_PLATFORMS";

    /// `SOURCE_DATE_EPOCH`, or `None` when unset. A malformed value is refused by
    /// `Settings::resolve`, so later readers may ignore it.
    pub fn source_date_epoch() -> std::result::Result<Option<u64>, String> {
        match std::env::var(SOURCE_DATE_EPOCH) {
            Err(_) => Ok(None),
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => v.trim().parse().map(Some).map_err(|_| v),
        }
    }
}
