//! Every environment variable the tool reads, declared in one place and read only here.

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
    /// Where `~/.docker/config.json` is looked for.
    pub const HOME: &str = "HOME";
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
    /// The fact cache goes in `$XDG_CACHE_HOME/mab-verify` (an absolute path; else
    /// `$HOME/.cache/mab-verify`), unless `--cache-dir` or `--no-cache` says otherwise.
    pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

    /// `NO_COLOR` set and non-empty: no colour on stdout nor in progress bars.
    pub fn no_color() -> bool {
        get(NO_COLOR).is_some_and(|v| !v.is_empty())
    }

    /// Every variable the tool reads, in the README's order ("Environment"); `MAB_QEMU_<ARCH>`
    /// stands for the variables starting with [`QEMU_PREFIX`].
    pub const READ: &[&str] = &[
        SOURCE_DATE_EPOCH,
        NO_COLOR,
        CLICOLOR_FORCE,
        GITHUB_ACTIONS,
        GITHUB_STEP_SUMMARY,
        PATH,
        "MAB_QEMU_<ARCH>",
        REGISTRY_USER,
        REGISTRY_PASSWORD,
        REGISTRY_AUTH_FILE,
        DOCKER_CONFIG,
        XDG_RUNTIME_DIR,
        HOME,
        XDG_CACHE_HOME,
        SSL_CERT_FILE,
        SSL_CERT_DIR,
        PUSH_CONNECT_TIMEOUT,
        PUSH_IDLE_TIMEOUT,
        PUSH_TIMEOUT,
        BWRAP,
        TMPDIR,
    ];

    fn declared(name: &str) -> bool {
        READ.contains(&name) || name.starts_with(QEMU_PREFIX)
    }

    /// The value of `name`, one of [`READ`] (or a `MAB_QEMU_<ARCH>`); `None` when unset.
    /// Every read of the environment goes through here.
    pub fn get(name: &str) -> Option<std::ffi::OsString> {
        debug_assert!(declared(name), "{name} is not declared in settings::env");
        std::env::var_os(name)
    }

    /// [`get`] as Unicode text; unset, empty and non-Unicode values are all `None`.
    pub fn text(name: &str) -> Option<String> {
        get(name)
            .and_then(|v| v.into_string().ok())
            .filter(|v| !v.is_empty())
    }

    /// `SOURCE_DATE_EPOCH`, or `None` when unset. A malformed value is refused by
    /// `Settings::resolve`, so later readers may ignore it.
    pub fn source_date_epoch() -> std::result::Result<Option<u64>, String> {
        match get(SOURCE_DATE_EPOCH).map(|v| v.to_string_lossy().into_owned()) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::env;

    /// Every `.rs` file under `dir`, with its path.
    fn sources(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    #[test]
    fn the_environment_is_read_only_here() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let this = std::path::Path::new(file!()).file_name().unwrap();
        let reads = regex::Regex::new(r"env::var(_os)?\(|env::vars(_os)?\(").unwrap();
        let offenders: Vec<String> = files
            .iter()
            .filter(|(p, _)| p.file_name() != Some(this))
            .flat_map(|(p, text)| {
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| reads.is_match(l))
                    .map(move |(n, l)| format!("{}:{}: {}", p.display(), n + 1, l.trim()))
            })
            .collect();
        assert!(
            offenders.is_empty(),
            "read these through settings::env (and declare them there): {offenders:#?}"
        );
    }

    #[test]
    fn the_readme_documents_every_variable_read() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("## Environment")
            .expect("README has an Environment section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        for name in env::READ {
            assert!(
                section.contains(&format!("`{name}`")),
                "README's Environment table lacks `{name}`"
            );
        }
    }
}
