//! Registry credentials (`--creds`, auth files, credential helpers, environment) and their
//! redaction from text.
//!
//! Lookup order, first match wins (see [`resolve_credentials`]):
//! 1. the explicit `user:password` string the caller passes (`--creds`);
//! 2. the auth files, as containers-auth.json(5) orders them: `$REGISTRY_AUTH_FILE`, podman's
//!    `$XDG_RUNTIME_DIR/containers/auth.json`, then `$DOCKER_CONFIG/config.json` or
//!    `~/.docker/config.json`. In each, as Docker reads it: a `credHelpers` entry for the
//!    host runs `docker-credential-<name> get`; else a `credsStore` runs that helper; else
//!    (or when the helper has nothing for the host) the `auths` entry, with a base64 `auth`
//!    field (`user:password`) or `username`/`password` fields; keys may carry a scheme and
//!    a path (`https://index.docker.io/v1/`);
//! 3. `$MAB_REGISTRY_USER` and `$MAB_REGISTRY_PASSWORD`.
//!
//! `identitytoken` entries and helpers' identity tokens (user `<token>`) are OAuth refresh
//! tokens this client cannot exchange; such an entry counts as absent.

use super::registry::PushError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use regex::Regex;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The environment variable naming an `auth.json`-style file, as podman and skopeo read it.
pub const AUTH_FILE_ENV: &str = crate::settings::env::REGISTRY_AUTH_FILE;
/// The directory holding Docker's `config.json` when set (Docker's own convention).
pub const DOCKER_CONFIG_ENV: &str = crate::settings::env::DOCKER_CONFIG;
/// podman's per-session directory; its `containers/auth.json` is an auth file.
pub const XDG_RUNTIME_DIR_ENV: &str = crate::settings::env::XDG_RUNTIME_DIR;
/// User name when neither `--creds` nor an auth file has an entry.
pub const USER_ENV: &str = crate::settings::env::REGISTRY_USER;
/// Password (or token) that goes with [`USER_ENV`].
pub const PASSWORD_ENV: &str = crate::settings::env::REGISTRY_PASSWORD;

/// What replaces a secret in any text this module redacts.
pub const REDACTED: &str = "[redacted]";

/// A user name and password (or access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &REDACTED)
            .finish()
    }
}

impl Credentials {
    /// `user:password` (split at the first `:`; the password may contain more). The error
    /// never repeats the text.
    pub fn parse(text: &str) -> Result<Credentials, PushError> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
                username: user.to_string(),
                password: password.to_string(),
            }),
            Some(("", _)) => Err(PushError::Credentials(
                "the user name before ':' is empty; pass --creds USER:PASSWORD".into(),
            )),
            Some(_) => Err(PushError::Credentials(
                "the password after ':' is empty; pass --creds USER:PASSWORD".into(),
            )),
            None => Err(PushError::Credentials(
                "expected USER:PASSWORD but found no ':'; pass --creds USER:PASSWORD".into(),
            )),
        }
    }

    /// The value of an `Authorization` header for HTTP Basic auth.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.basic_token())
    }

    fn basic_token(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }
}

/// Where [`resolve_credentials_with`] found the credentials (safe to print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The caller's explicit `user:password` (`--creds`).
    Explicit,
    /// An `auths` entry of this file.
    AuthFile(PathBuf),
    /// `$MAB_REGISTRY_USER` / `$MAB_REGISTRY_PASSWORD`.
    Environment,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Explicit => f.write_str("--creds"),
            CredentialSource::AuthFile(path) => write!(f, "auths entry in {}", path.display()),
            CredentialSource::Environment => write!(f, "${USER_ENV} and ${PASSWORD_ENV}"),
        }
    }
}

/// Credentials for `registry` (a host with optional port, as in a [`Reference`]):
/// `explicit` (`user:password`), else the auth files, else the environment (see the module
/// docs). `Ok(None)` when nothing matches: the push then goes anonymously.
///
/// [`Reference`]: super::registry::Reference
pub fn resolve_credentials(
    registry: &str,
    explicit: Option<&str>,
) -> Result<Option<Credentials>, PushError> {
    let env = |name: &str| crate::settings::env::text(name);
    Ok(resolve_credentials_with(registry, explicit, &env)?.map(|(c, _)| c))
}

/// [`resolve_credentials`] with the environment read through `env` (variables:
/// [`AUTH_FILE_ENV`], [`DOCKER_CONFIG_ENV`], `HOME`, [`USER_ENV`], [`PASSWORD_ENV`]), and
/// saying where the credentials came from.
pub fn resolve_credentials_with(
    registry: &str,
    explicit: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Credentials, CredentialSource)>, PushError> {
    if let Some(text) = explicit {
        return Ok(Some((
            Credentials::parse(text)?,
            CredentialSource::Explicit,
        )));
    }
    for file in auth_files(env) {
        if let Some(creds) = auth_file_credentials(&file, registry)? {
            return Ok(Some((creds, CredentialSource::AuthFile(file))));
        }
    }
    match (env(USER_ENV), env(PASSWORD_ENV)) {
        (Some(username), Some(password)) => Ok(Some((
            Credentials { username, password },
            CredentialSource::Environment,
        ))),
        (Some(_), None) => Err(PushError::Credentials(format!(
            "${USER_ENV} is set but ${PASSWORD_ENV} is not; set both, or neither"
        ))),
        (None, Some(_)) => Err(PushError::Credentials(format!(
            "${PASSWORD_ENV} is set but ${USER_ENV} is not; set both, or neither"
        ))),
        (None, None) => Ok(None),
    }
}

/// The auth files consulted, in order: `$REGISTRY_AUTH_FILE`, then Docker's `config.json`.
fn auth_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = env(AUTH_FILE_ENV) {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = env(XDG_RUNTIME_DIR_ENV) {
        files.push(Path::new(&dir).join("containers").join("auth.json"));
    }
    if let Some(dir) = env(DOCKER_CONFIG_ENV) {
        files.push(Path::new(&dir).join("config.json"));
    } else if let Some(home) = env(crate::settings::env::HOME) {
        files.push(Path::new(&home).join(".docker").join("config.json"));
    }
    files
}

/// The `auths` entry of `file` for `registry`. A missing file is `Ok(None)`; a file that is
/// not valid JSON, or an entry that cannot be decoded, is an error naming the file and
/// entry (never its contents).
pub fn auth_file_credentials(
    file: &Path,
    registry: &str,
) -> Result<Option<Credentials>, PushError> {
    let bad = |message: String| PushError::AuthFile {
        path: file.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let wanted = canonical_host(registry);
    // Docker asks a host's own helper first, then the default store.
    let helper = json
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| canonical_host(&auth_key_host(k)) == wanted)
                .and_then(|(_, v)| v.as_str())
        })
        .or_else(|| json.get("credsStore").and_then(|s| s.as_str()))
        .filter(|name| !name.is_empty());
    if let Some(name) = helper
        && let Some(creds) = helper_credentials(file, name, registry)?
    {
        return Ok(Some(creds));
    }
    let Some(auths) = json.get("auths") else {
        return Ok(None);
    };
    let auths = auths
        .as_object()
        .ok_or_else(|| bad("`auths` is not an object".into()))?;
    for (key, entry) in auths {
        if canonical_host(&auth_key_host(key)) != wanted {
            continue;
        }
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        };
        if let Some(auth) = field("auth") {
            let decoded = STANDARD_PAD_INDIFFERENT
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "auths entry '{key}': `auth` is not base64 of USER:PASSWORD"
                    ))
                })?;
            let creds = Credentials::parse(&decoded).map_err(|_| {
                bad(format!(
                    "auths entry '{key}': `auth` does not decode to USER:PASSWORD"
                ))
            })?;
            return Ok(Some(creds));
        }
        if let (Some(username), Some(password)) = (field("username"), field("password")) {
            return Ok(Some(Credentials {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        // An empty entry (`{}`): Docker writes those when a credential helper holds the
        // secret. Keep looking: another key may spell the same host.
    }
    Ok(None)
}

/// Runs `docker-credential-<name> get` with the server on stdin, as Docker does (Docker Hub
/// as `https://index.docker.io/v1/`). "Not found" is `Ok(None)`; a helper that is missing
/// or fails otherwise is an error naming it (never its output, which may hold the secret).
fn helper_credentials(
    file: &Path,
    name: &str,
    registry: &str,
) -> Result<Option<Credentials>, PushError> {
    use std::io::Write as _;
    let bad = |message: String| PushError::AuthFile {
        path: file.to_path_buf(),
        message,
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(bad(format!(
            "credential helper name {name:?} is not a plain program name suffix"
        )));
    }
    let program = format!("docker-credential-{name}");
    let server = if canonical_host(registry) == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            bad(format!(
                "names credential helper {name}, but {program} cannot be run ({e}); install it on PATH, or remove the entry"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| bad(format!("{program} get failed: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The protocol's answer for a host the helper does not know.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(bad(format!(
            "{program} get for {server} failed ({}); run `echo {server} | {program} get` to see why",
            out.status
        )));
    }
    let answer: serde_json::Value = serde_json::from_str(&stdout)
        .map_err(|_| bad(format!("{program} get for {server} did not answer JSON")))?;
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let (username, password) = (field("Username"), field("Secret"));
    if username.is_empty() || password.is_empty() || username == "<token>" {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    }))
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `ghcr.io` → `ghcr.io`.
fn auth_key_host(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

/// Docker Hub answers to several names; everything else is compared as written (lowercase).
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b((?:proxy-)?authorization"?\s*[:=]\s*"?)(basic|bearer)\s+[A-Za-z0-9._~+/=-]+"#,
    )
    .expect("static regex")
});
static QUERY_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(access_token|refresh_token|id_token|identitytoken|token|password|passwd|secret)=[^&\s"']+"#)
        .expect("static regex")
});
static JSON_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)"(access_token|refresh_token|id_token|identitytoken|registrytoken|token|password|auth|secret)"(\s*:\s*)"[^"]*""#)
        .expect("static regex")
});
static URL_USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@").expect("static regex"));

/// `text` with every secret replaced by `[redacted]`: the password of `creds` and its
/// base64 Basic form, `Authorization: Basic|Bearer …` values, `token=`/`password=`-style
/// query parameters, `"token": "…"`-style JSON fields and `user:pass@` in URLs.
pub fn redact(text: &str, creds: Option<&Credentials>) -> String {
    let mut out = text.to_string();
    if let Some(creds) = creds {
        out = out.replace(&creds.basic_token(), REDACTED);
        if !creds.password.is_empty() {
            // Every form a server might echo it in; longest first, so no form is left half.
            let mut forms = encoded_forms(&creds.password);
            forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
            for form in forms {
                out = out.replace(&form, REDACTED);
            }
        }
    }
    let out = AUTH_HEADER.replace_all(&out, format!("${{1}}${{2}} {REDACTED}"));
    let out = QUERY_SECRET.replace_all(&out, format!("${{1}}={REDACTED}"));
    let out = JSON_SECRET.replace_all(&out, format!("\"${{1}}\"${{2}}\"{REDACTED}\""));
    URL_USERINFO
        .replace_all(&out, format!("${{1}}{REDACTED}@"))
        .into_owned()
}

/// `--creds USER --password-stdin`: `USER:` and the first line of stdin, so the secret is
/// never on a command line (`/proc/PID/cmdline` is readable by every local user).
pub fn with_password_stdin(
    creds: Option<String>,
    from_stdin: bool,
) -> Result<Option<String>, String> {
    if !from_stdin {
        return Ok(creds);
    }
    let user = creds.unwrap_or_default();
    if user.is_empty() || user.contains(':') {
        return Err("--password-stdin takes the password from stdin: give only the user name in --creds USER".into());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("--password-stdin: cannot read stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("--password-stdin: stdin gave no password".into());
    }
    Ok(Some(format!("{user}:{password}")))
}

/// `secret` plain, percent-encoded (upper and lower hex, `+` for spaces), base64 (padded,
/// unpadded, URL-safe) and hex (both cases). Very short secrets would redact ordinary text, so
/// encodings are only added for secrets of 4 bytes or more.
fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string()];
    if secret.len() < 4 {
        return forms;
    }
    let pct: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    for p in [pct.to_lowercase_hex(), pct] {
        forms.push(p.replace("%20", "+"));
        forms.push(p);
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(hex::encode(secret));
    forms.push(hex::encode_upper(secret));
    forms.retain(|f| !f.is_empty());
    forms.dedup();
    forms
}

trait LowerHexEscapes {
    fn to_lowercase_hex(&self) -> String;
}

impl LowerHexEscapes for String {
    /// `%2F` → `%2f`, leaving the other characters alone.
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut chars = self.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for _ in 0..2 {
                    if let Some(h) = chars.next() {
                        out.push(h.to_ascii_lowercase());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_redacted_in_every_encoding_a_server_might_echo() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = creds("u", "p@ss w/rd?");
        let echoes = [
            "p@ss w/rd?".to_string(),
            "p%40ss%20w%2Frd%3F".to_string(),
            "p%40ss+w%2frd%3f".to_string(),
            STANDARD.encode("p@ss w/rd?"),
            URL_SAFE_NO_PAD.encode("p@ss w/rd?"),
            hex::encode("p@ss w/rd?"),
            hex::encode_upper("p@ss w/rd?"),
        ];
        for echo in echoes {
            let text = format!("error: bad value [{echo}] from server");
            let out = redact(&text, Some(&c));
            assert!(!out.contains(&echo), "{echo} survived: {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }
    use std::collections::HashMap;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parse_splits_at_the_first_colon_and_never_echoes() {
        assert_eq!(Credentials::parse("u:p:q").unwrap(), creds("u", "p:q"));
        for bad in ["nocolon-s3cret", ":s3cret", "user:"] {
            let msg = Credentials::parse(bad).unwrap_err().to_string();
            assert!(!msg.contains("s3cret"), "{msg}");
            assert!(msg.contains("--creds"), "{msg}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!("{:?}", creds("bob", "hunter2"));
        assert!(text.contains("bob") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn auth_file_entries_by_host_scheme_and_docker_hub_alias() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let b64 = STANDARD.encode("alice:a-pass");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{b64}"}},
                "127.0.0.1:5000":{{"username":"bob","password":"b-pass"}},
                "helper.example":{{}},
                "nopad.example":{{"auth":"{}"}}
            }}}}"#,
                b64.trim_end_matches('=')
            ),
        )
        .unwrap();
        let get = |r| auth_file_credentials(&file, r).unwrap();
        assert_eq!(get("docker.io"), Some(creds("alice", "a-pass")));
        assert_eq!(get("127.0.0.1:5000"), Some(creds("bob", "b-pass")));
        assert_eq!(get("127.0.0.1:5001"), None);
        assert_eq!(get("helper.example"), None);
        assert_eq!(get("nopad.example"), Some(creds("alice", "a-pass")));
        assert_eq!(
            auth_file_credentials(&dir.path().join("missing.json"), "x").unwrap(),
            None
        );
    }

    #[test]
    fn broken_auth_file_names_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"auths":{"r.example":{"auth":"%%%s3cret%%%"}}}"#).unwrap();
        let msg = auth_file_credentials(&file, "r.example")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("auth.json") && msg.contains("r.example"),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[test]
    fn lookup_order_explicit_then_files_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let podman = dir.path().join("auth.json");
        std::fs::write(
            &podman,
            r#"{"auths":{"r.example":{"username":"file","password":"f"}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join(".docker")).unwrap();
        std::fs::write(
            dir.path().join(".docker/config.json"),
            r#"{"auths":{"d.example":{"username":"docker","password":"d"}}}"#,
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();
        let env = env_of(&[
            (AUTH_FILE_ENV, podman.to_str().unwrap()),
            ("HOME", home),
            (USER_ENV, "envuser"),
            (PASSWORD_ENV, "e"),
        ]);
        let who = |reg: &str, explicit: Option<&str>| {
            resolve_credentials_with(reg, explicit, &env)
                .unwrap()
                .map(|(c, s)| (c.username, s))
        };
        assert_eq!(
            who("r.example", Some("cli:x")),
            Some(("cli".into(), CredentialSource::Explicit))
        );
        assert_eq!(
            who("r.example", None),
            Some(("file".into(), CredentialSource::AuthFile(podman.clone())))
        );
        assert_eq!(
            who("d.example", None),
            Some((
                "docker".into(),
                CredentialSource::AuthFile(dir.path().join(".docker/config.json"))
            ))
        );
        assert_eq!(
            who("other.example", None),
            Some(("envuser".into(), CredentialSource::Environment))
        );
        let none = env_of(&[("HOME", home)]);
        assert_eq!(
            resolve_credentials_with("other.example", None, &none).unwrap(),
            None
        );
        let half = env_of(&[(USER_ENV, "u")]);
        let err = resolve_credentials_with("x", None, &half).unwrap_err();
        assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
    }

    #[test]
    fn redact_removes_every_form_of_the_secret() {
        let c = creds("bob", "hunter2");
        let b64 = STANDARD.encode("bob:hunter2");
        let text = format!(
            "GET https://bob:hunter2@r.example/v2/?token=abc.def&x=1 \
             Authorization: Basic {b64} authorization: Bearer eyJ.x-y_z \
             {{\"token\":\"tkn\",\"access_token\": \"at\"}} plain hunter2 user bob end"
        );
        let out = redact(&text, Some(&c));
        for secret in ["hunter2", &b64, "abc.def", "eyJ.x-y_z", "tkn", "\"at\""] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        assert!(out.contains("bob"), "user names are not secret: {out}");
        assert!(out.contains("x=1") && out.contains("plain") && out.contains("end"));
        // Without credentials, the structural patterns still apply.
        let out = redact("Authorization: Bearer abc123", None);
        assert_eq!(out, "Authorization: Bearer [redacted]");
    }
}
