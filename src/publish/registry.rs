//! An OCI distribution (registry v2) client on ureq: push a verified layout byte for byte
//! ([`push_layout`]), and read an image's manifests and blob streams ([`Puller`]).
//!
//! [`push_layout`] walks an OCI image layout from a root (image index, Docker manifest list
//! or single manifest), uploads the blobs the registry does not have yet (HEAD, then a
//! monolithic POST + PUT streamed from disk; several blobs at once, as skopeo does), puts
//! child manifests by digest and the root by tag once every blob is in, then fetches the root
//! back by tag and compares its sha256 with the verified digest.
//! Manifests are sent exactly as stored: JSON is parsed to find children, never re-serialised.
//!
//! Auth: on a 401 the client reads `WWW-Authenticate`; `Basic` is answered with the
//! [`Credentials`], `Bearer` with a token fetched from the realm (with basic auth when
//! credentials exist), cached per scope. Transient failures (connection errors, 408, 429,
//! 5xx) are retried with exponential backoff; other 4xx are not. Every error names the
//! registry, repository, object and HTTP status, suggests a fix, and is redacted. Error
//! bodies are read as oci-spec's `distribution::ErrorResponse`.
//!
//! Why not `oci-client` (0.18, checked 2026-12): it has the pieces (a raw manifest push, blob
//! streams, HEAD/mount, Basic and Bearer auth), but its `ClientConfig` cannot carry a client
//! certificate (no mTLS: `--cert-dir` `NAME.cert`/`NAME.key`), its
//! `accept_invalid_certificates` holds for every host the client reaches, redirects to blob
//! storage included (`--tls-verify=false` must cover the named registry only), it has no
//! retries and no total timeout, it fails a blob stream or manifest whose bytes do not match
//! their digest (those are `blob.digest` verdicts here, exit 1, not errors), and its errors
//! wrap TLS and connection causes in one `reqwest::Error` (exit 3 and the `--cert-dir` hint
//! are decided from them). Serving
//! only the registries without those needs would mean two clients with two error mappings;
//! and it pulls tokio, reqwest, hyper and aws-lc (a C build) into a 2-core CI. Its
//! `Reference` (oci-spec's) is not used either: it refuses bracketed IPv6 registries
//! (`[::1]:5000/app`) and answers every bad reference with "invalid reference format",
//! where [`Reference`] says which part is wrong.

use super::auth::{self, Credentials};
use regex::Regex;
use sha2::Digest as _;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;
use ureq::Body;
use ureq::http::{self, Response, StatusCode};

pub use super::transport::TlsOptions;
use super::transport::{Failure, Transport, drain, resolve_location, same_origin};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or index read from a layout (the distribution registry's own limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Wait before the first retry; each further retry waits twice as long.
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(200);
/// Index nesting deeper than this is refused.
const MAX_DEPTH: usize = 8;
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// `REGISTRY/REPOSITORY[:TAG][@sha256:HEX]`, normalised as Docker does: no registry means
/// `docker.io`, and a one-component Docker Hub repository gets `library/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host with optional port: `127.0.0.1:5000`, `ghcr.io`, `[::1]:5000`, `docker.io`.
    pub registry: String,
    /// `org/app`, `library/x`.
    pub repository: String,
    /// `latest` when none is given; empty when the reference names only a digest.
    pub tag: String,
    /// `sha256:<64 hex>` when given with `@`.
    pub digest: Option<String>,
}

impl Reference {
    /// What the root is pushed as and fetched back by: the tag, or the digest if no tag.
    pub fn target(&self) -> &str {
        match &self.digest {
            Some(d) if self.tag.is_empty() => d,
            _ => &self.tag,
        }
    }

    /// The host that serves the API (`docker.io` is served by `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if !self.tag.is_empty() {
            write!(f, ":{}", self.tag)?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

static REPO_COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("static regex"));
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static regex"));
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
        .expect("static regex")
});

impl FromStr for Reference {
    type Err = PushError;

    fn from_str(input: &str) -> Result<Reference, PushError> {
        let bad = |reason: &str| PushError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let text = input.trim();
        let text = text.strip_prefix("docker://").unwrap_or(text);
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (named, digest) = match text.split_once('@') {
            Some((named, digest)) => {
                parse_digest(digest).ok_or_else(|| {
                    bad("the part after '@' is not sha256:<64 lowercase hex digits>")
                })?;
                (named, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let (name, tag) = match named.rfind(':') {
            Some(i) if !named[i..].contains('/') => (&named[..i], Some(&named[i + 1..])),
            _ => (named, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !HOST.is_match(&registry) {
            return Err(bad(&format!("'{registry}' is not a HOST[:PORT]")));
        }
        let registry = match registry.to_ascii_lowercase().as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                DOCKER_HUB.to_string()
            }
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if repository.len() > 255 {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        for component in repository.split('/') {
            if !REPO_COMPONENT.is_match(component) {
                let reason = if component.chars().any(|c| c.is_ascii_uppercase()) {
                    format!(
                        "repository component '{component}' has uppercase letters; repository names must be lowercase"
                    )
                } else {
                    format!(
                        "repository component '{component}' is not lowercase letters and digits separated by '.', '_', '__' or '-'"
                    )
                };
                return Err(bad(&reason));
            }
        }
        let tag = match tag {
            Some(t) if TAG.is_match(t) => t.to_string(),
            Some(t) => {
                return Err(bad(&format!(
                    "tag '{t}' must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
                )));
            }
            None if digest.is_some() => String::new(),
            None => "latest".to_string(),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// `sha256:<64 lowercase hex>` → the hex part.
fn parse_digest(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (also IPv4-mapped), with or without a port
/// (`127.0.0.1:5000`, `[::1]:5000`, `localhost:5000`).
pub fn is_loopback(registry: &str) -> bool {
    let host = registry.trim();
    let host = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, after)) if after.is_empty() || is_port_suffix(after) => inner,
            _ => return false,
        }
    } else if host.matches(':').count() > 1 {
        host // a bare IPv6 address
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() => h,
            Some(_) => return false,
            None => host,
        }
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

fn is_port_suffix(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `text` with the secrets of `creds` and any auth header, token or URL password redacted.
/// (Re-exported from [`auth::redact`].)
pub fn redact(text: &str, creds: Option<&Credentials>) -> String {
    auth::redact(text, creds)
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `http://` instead of `https://`. The caller decides when this is allowed
    /// ([`is_loopback`], or an explicit `--plain-http`).
    pub plain_http: bool,
    pub credentials: Option<Credentials>,
    /// How many times a transient failure is retried (0: one attempt only). The waits are
    /// [`RETRY_BASE_DELAY`], doubling.
    pub retries: u32,
    pub timeouts: Timeouts,
    pub tls: TlsOptions,
    /// `--jobs`: how many blobs upload at once; `None`, [`UPLOADS_AT_ONCE`].
    pub jobs: Option<usize>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            plain_http: false,
            credentials: None,
            retries: 3,
            timeouts: Timeouts::default(),
            tls: TlsOptions::default(),
            jobs: None,
        }
    }
}

/// Blobs uploaded at once when `--jobs` does not say. Uploads wait on the network and the
/// registry's disk more than on a core, so this does not follow the core count (skopeo
/// uploads 6 at once); 4 hides the round trips without loading a registry with one
/// client's sessions.
pub const UPLOADS_AT_ONCE: usize = 4;

/// Upload threads for `blobs` missing blobs: the `--jobs` bound, else [`UPLOADS_AT_ONCE`].
fn upload_workers(jobs: Option<usize>, blobs: usize) -> usize {
    jobs.unwrap_or(UPLOADS_AT_ONCE).min(blobs).max(1)
}

/// How long a push waits: to connect, for the next bytes of an answer (a registry that stops
/// mid-body), and for one whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(3600),
        }
    }
}

impl Timeouts {
    /// The defaults, overridden by `MAB_PUSH_CONNECT_TIMEOUT`, `MAB_PUSH_IDLE_TIMEOUT` and
    /// `MAB_PUSH_TIMEOUT` (seconds).
    pub fn from_env() -> Result<Timeouts, String> {
        let mut t = Timeouts::default();
        for (var, slot) in [
            (crate::settings::env::PUSH_CONNECT_TIMEOUT, &mut t.connect),
            (crate::settings::env::PUSH_IDLE_TIMEOUT, &mut t.idle),
            (crate::settings::env::PUSH_TIMEOUT, &mut t.total),
        ] {
            if let Some(v) = crate::settings::env::get(var) {
                let v = v.to_string_lossy();
                let secs: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| format!("{var}={v}: give a positive number of seconds"))?;
                *slot = Duration::from_secs_f64(secs);
            }
        }
        Ok(t)
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// Blobs (configs and layers) uploaded.
    pub pushed_blobs: usize,
    /// Blobs the registry already had.
    pub skipped_blobs: usize,
    /// Bytes of the uploaded blobs.
    pub uploaded_bytes: u64,
    /// Manifests and indexes put, the root included.
    pub manifests: usize,
    /// The root's digest as pushed (equal to `root_digest`).
    pub index_digest: String,
    /// sha256 of what the registry returned for the tag afterwards (equal to `index_digest`,
    /// or the push fails with [`PushError::DigestChanged`]).
    pub fetched_digest: String,
}

/// Everything that can go wrong while pushing. Messages are redacted and end with a hint.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "invalid image reference '{input}': {reason}\n  hint: write REGISTRY/REPOSITORY[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:dev or ghcr.io/org/app:1.2"
    )]
    InvalidReference { input: String, reason: String },
    #[error(
        "invalid registry credentials: {0}\n  hint: credentials come from --creds USER:PASSWORD, an auths entry in $REGISTRY_AUTH_FILE or ~/.docker/config.json, or $MAB_REGISTRY_USER and $MAB_REGISTRY_PASSWORD"
    )]
    Credentials(String),
    #[error(
        "registry auth file {}: {message}\n  hint: fix the file, or point $REGISTRY_AUTH_FILE elsewhere; an entry looks like {{\"auths\": {{\"HOST[:PORT]\": {{\"auth\": \"base64 of USER:PASSWORD\"}}}}}}",
        path.display()
    )]
    AuthFile { path: PathBuf, message: String },
    #[error(
        "TLS settings {}: {message}\n  hint: --cert-dir holds CA files *.crt and client pairs NAME.cert + NAME.key (PEM); SSL_CERT_FILE and SSL_CERT_DIR name PEM files",
        path.display()
    )]
    Tls { path: PathBuf, message: String },
    #[error("OCI layout {}: {message}\n  hint: {hint}", path.display())]
    Layout {
        path: PathBuf,
        message: String,
        hint: String,
    },
    #[error("cannot reach registry {registry} ({repository}, {what}): {message}\n  hint: {hint}")]
    Transport {
        registry: String,
        repository: String,
        what: String,
        message: String,
        hint: String,
        /// Worth retrying (connection refused or reset, timeout), unlike a TLS failure.
        retryable: bool,
    },
    #[error(
        "registry {registry} answered HTTP {status}{} to {request} in repository {repository}{detail}\n  hint: {hint}",
        reason(.status)
    )]
    Http {
        registry: String,
        repository: String,
        /// Method and object: `HEAD blob sha256:…`, `PUT manifest sha256:… as tag dev`.
        request: String,
        status: u16,
        /// `: CODE: message` from the registry's error body, or empty.
        detail: String,
        hint: String,
    },
    #[error(
        "token server {realm} for registry {registry} answered HTTP {status}{} when asked for a token for repository {repository}{detail}\n  hint: {hint}",
        reason(.status)
    )]
    Token {
        registry: String,
        repository: String,
        realm: String,
        status: u16,
        detail: String,
        hint: String,
    },
    #[error(
        "DIGEST CHANGED: registry {registry} serves {repository}:{target} as {found}, but the verified root is {expected}. What is published there is NOT what was verified.\n  hint: something rewrote the manifest (a registry converting media types, a proxy, or a concurrent push to the same tag); do not release this tag, push again, and use a registry that stores manifests byte for byte"
    )]
    DigestChanged {
        registry: String,
        repository: String,
        /// The tag (or digest) fetched back.
        target: String,
        expected: String,
        found: String,
    },
    #[error(
        "BLOB CHANGED: {path} streamed as {found}, but the verified blob is {expected}; the upload was aborted before it completed, nothing was published under that digest.\n  hint: something wrote to the layout (or an archive entry resolved elsewhere) after verification; verify and push again with nothing writing to it"
    )]
    BlobChanged {
        path: String,
        expected: String,
        found: String,
    },
}

impl PushError {
    /// Worth retrying: connection failures, timeouts, HTTP 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            PushError::Transport { retryable, .. } => *retryable,
            PushError::Http { status, .. } | PushError::Token { status, .. } => {
                matches!(status, 408 | 429 | 500..=599)
            }
            _ => false,
        }
    }

    /// The HTTP status this error carries, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            PushError::Http { status, .. } | PushError::Token { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn gave_up_after(mut self, attempts: u32) -> PushError {
        if let PushError::Transport { hint, .. }
        | PushError::Http { hint, .. }
        | PushError::Token { hint, .. } = &mut self
        {
            hint.push_str(&format!(" (gave up after {attempts} attempts)"));
        }
        self
    }
}

/// ` Unauthorized` for 401: the reason phrase after a status code.
fn reason(status: &u16) -> String {
    StatusCode::from_u16(*status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

fn layout_error(path: &Path, message: impl Into<String>) -> PushError {
    PushError::Layout {
        path: path.to_path_buf(),
        message: message.into(),
        hint: "the layout is incomplete or changed after verification; extract and verify the artifact again, then push".into(),
    }
}

/// Pushes the image rooted at `root_digest` (media type `root_media_type`: an index, a
/// Docker manifest list or a manifest) from the OCI layout `layout_dir` to `reference`, then
/// fetches it back by tag and checks the digest. `progress` receives one line per step.
///
/// The root is read from `blobs/sha256/<hex>`, or from `index.json` when that is the file
/// whose sha256 is `root_digest` (a layout whose `index.json` is the multi-platform index).
/// Every manifest's bytes are checked against its digest before anything is uploaded.
pub fn push_layout(
    layout_dir: &Path,
    root_digest: &str,
    root_media_type: &str,
    reference: &Reference,
    opts: &PushOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PushOutcome, PushError> {
    if let Some(d) = &reference.digest
        && d != root_digest
    {
        return Err(PushError::InvalidReference {
            input: reference.to_string(),
            reason: format!("it names digest {d}, but the verified root is {root_digest}"),
        });
    }
    let plan = Plan::read(layout_dir, root_digest, root_media_type)?;
    let mut client = Client::new(reference, opts, progress)?;
    client.retrying(|c| c.ping())?;

    let mut outcome = PushOutcome {
        pushed_blobs: 0,
        skipped_blobs: 0,
        uploaded_bytes: 0,
        manifests: 0,
        index_digest: root_digest.to_string(),
        fetched_digest: String::new(),
    };
    // Existence checks stay in plan order on this thread: they are one round trip each, and
    // their retries and refusals then read the same on every run.
    let mut missing = Vec::new();
    for blob in &plan.blobs {
        if client.retrying(|c| c.blob_exists(blob))? {
            outcome.skipped_blobs += 1;
            client.say(&format!(
                "blob {} ({} bytes): already in the registry",
                blob.digest, blob.size
            ));
        } else {
            missing.push(blob);
        }
    }
    let workers = upload_workers(opts.jobs, missing.len());
    client.upload_all(reference, opts, &missing, workers)?;
    outcome.pushed_blobs = missing.len();
    outcome.uploaded_bytes = missing.iter().map(|b| b.size).sum();
    let (root, children) = plan.manifests.split_last().expect("the root is planned");
    for manifest in children {
        client.retrying(|c| c.put_manifest(manifest, &manifest.digest))?;
        outcome.manifests += 1;
        client.say(&format!(
            "manifest {} ({}): pushed",
            manifest.digest, manifest.media_type
        ));
    }
    let target = reference.target().to_string();
    client.retrying(|c| c.put_manifest(root, &target))?;
    outcome.manifests += 1;
    client.say(&format!(
        "{target} → {} ({}): pushed",
        root.digest, root.media_type
    ));

    let found = client.retrying(|c| c.fetch_digest(&target, &root.media_type))?;
    outcome.fetched_digest = found.clone();
    if found != root_digest {
        return Err(PushError::DigestChanged {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            target,
            expected: root_digest.to_string(),
            found,
        });
    }
    client.say(&format!(
        "verified: {reference} serves {found}, the verified digest"
    ));
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------
// Reading the layout
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct PlannedBlob {
    digest: String,
    size: u64,
    path: PathBuf,
}

#[derive(Debug)]
struct PlannedManifest {
    digest: String,
    media_type: String,
    bytes: Vec<u8>,
}

/// What to push, in order: blobs first, then manifests children-first, the root last.
#[derive(Debug)]
struct Plan {
    blobs: Vec<PlannedBlob>,
    manifests: Vec<PlannedManifest>,
}

/// The fields of a descriptor this client needs.
struct Desc {
    digest: String,
    media_type: Option<String>,
    size: Option<u64>,
    has_urls: bool,
}

impl Desc {
    fn from_json(value: &serde_json::Value, at: &Path, field: &str) -> Result<Desc, PushError> {
        let digest = value
            .get("digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| layout_error(at, format!("a descriptor in `{field}` has no digest")))?;
        if parse_digest(digest).is_none() {
            return Err(layout_error(
                at,
                format!(
                    "descriptor digest '{digest}' in `{field}` is not sha256:<64 lowercase hex> (other algorithms are not supported)"
                ),
            ));
        }
        Ok(Desc {
            digest: digest.to_string(),
            media_type: value
                .get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            size: value.get("size").and_then(|s| s.as_u64()),
            has_urls: value
                .get("urls")
                .and_then(|u| u.as_array())
                .is_some_and(|u| !u.is_empty()),
        })
    }
}

impl Plan {
    fn read(dir: &Path, root_digest: &str, root_media_type: &str) -> Result<Plan, PushError> {
        if parse_digest(root_digest).is_none() {
            return Err(layout_error(
                dir,
                format!("root digest '{root_digest}' is not sha256:<64 lowercase hex>"),
            ));
        }
        let mut plan = Plan {
            blobs: Vec::new(),
            manifests: Vec::new(),
        };
        let mut seen = HashSet::new();
        let root = Desc {
            digest: root_digest.to_string(),
            media_type: Some(root_media_type.to_string()),
            size: None,
            has_urls: false,
        };
        plan.visit(dir, &root, 0, &mut seen)?;
        Ok(plan)
    }

    fn blob_path(dir: &Path, digest: &str) -> PathBuf {
        let hex = parse_digest(digest).expect("digests are validated before use");
        dir.join("blobs").join("sha256").join(hex)
    }

    /// Reads a manifest (at most [`MAX_MANIFEST_BYTES`]) and checks it against its digest.
    fn read_manifest(dir: &Path, desc: &Desc, depth: usize) -> Result<Vec<u8>, PushError> {
        let mut path = Self::blob_path(dir, &desc.digest);
        if depth == 0 && !path.exists() {
            // The layout's own index.json may be the root index (it is not stored as a blob).
            let index = dir.join("index.json");
            if let Ok(bytes) = std::fs::read(&index)
                && sha256_digest(&bytes) == desc.digest
            {
                path = index;
            }
        }
        let file = File::open(&path).map_err(|e| {
            layout_error(&path, format!("cannot open manifest {}: {e}", desc.digest))
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                layout_error(&path, format!("cannot read manifest {}: {e}", desc.digest))
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(layout_error(
                &path,
                format!(
                    "manifest {} is larger than {MAX_MANIFEST_BYTES} bytes; registries refuse such manifests",
                    desc.digest
                ),
            ));
        }
        let found = sha256_digest(&bytes);
        if found != desc.digest {
            return Err(layout_error(
                &path,
                format!(
                    "manifest {} has sha256 {found}: its bytes changed",
                    desc.digest
                ),
            ));
        }
        if let Some(size) = desc.size
            && size != bytes.len() as u64
        {
            return Err(layout_error(
                &path,
                format!(
                    "manifest {} is {} bytes but its descriptor says {size}",
                    desc.digest,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    fn visit(
        &mut self,
        dir: &Path,
        desc: &Desc,
        depth: usize,
        seen: &mut HashSet<String>,
    ) -> Result<(), PushError> {
        if !seen.insert(desc.digest.clone()) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(layout_error(
                dir,
                format!(
                    "indexes nest deeper than {MAX_DEPTH} levels at {}",
                    desc.digest
                ),
            ));
        }
        let bytes = Self::read_manifest(dir, desc, depth)?;
        let at = Self::blob_path(dir, &desc.digest);
        // Read as the registry and the runtimes (Go) read it: keys colliding after case
        // folding refused, a key in another case read as its field.
        let json = crate::image::docs::go_value(
            &bytes,
            &format!("manifest {}", desc.digest),
            &<crate::image::docs::Manifest as crate::image::docs::Doc>::SHAPE,
        )
        .map_err(|e| layout_error(&at, e))?;
        let media_type = json
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or_else(|| desc.media_type.clone())
            .ok_or_else(|| {
                layout_error(
                    &at,
                    format!(
                        "manifest {} has no mediaType, and neither has its descriptor",
                        desc.digest
                    ),
                )
            })?;
        let list = |field: &str| -> Result<Vec<Desc>, PushError> {
            match json.get(field) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|d| Desc::from_json(d, &at, field))
                    .collect(),
                Some(_) => Err(layout_error(
                    &at,
                    format!("`{field}` of {} is not an array", desc.digest),
                )),
            }
        };
        let is_index = media_type == OCI_INDEX
            || media_type == DOCKER_LIST
            || (json.get("manifests").is_some() && json.get("config").is_none());
        if is_index {
            for child in list("manifests")? {
                self.visit(dir, &child, depth + 1, seen)?;
            }
        } else if let Some(config) = json.get("config") {
            let mut blobs = vec![Desc::from_json(config, &at, "config")?];
            blobs.extend(list("layers")?);
            blobs.extend(list("blobs")?);
            for blob in blobs {
                self.add_blob(dir, &blob, seen)?;
            }
        } else {
            return Err(layout_error(
                &at,
                format!(
                    "{} ({media_type}) is neither an image index nor an image manifest",
                    desc.digest
                ),
            ));
        }
        self.manifests.push(PlannedManifest {
            digest: desc.digest.clone(),
            media_type,
            bytes,
        });
        Ok(())
    }

    fn add_blob(
        &mut self,
        dir: &Path,
        desc: &Desc,
        seen: &mut HashSet<String>,
    ) -> Result<(), PushError> {
        if !seen.insert(desc.digest.clone()) {
            return Ok(());
        }
        let path = Self::blob_path(dir, &desc.digest);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            // A foreign layer (Docker's Windows base layers) lives at its URLs, not here.
            Err(_) if desc.has_urls => return Ok(()),
            Ok(_) => {
                return Err(layout_error(
                    &path,
                    format!("blob {} is not a file", desc.digest),
                ));
            }
            Err(e) => {
                return Err(layout_error(
                    &path,
                    format!("blob {} is missing: {e}", desc.digest),
                ));
            }
        };
        if let Some(size) = desc.size
            && size != meta.len()
        {
            return Err(layout_error(
                &path,
                format!(
                    "blob {} is {} bytes but its descriptor says {size}",
                    desc.digest,
                    meta.len()
                ),
            ));
        }
        self.blobs.push(PlannedBlob {
            digest: desc.digest.clone(),
            size: meta.len(),
            path,
        });
        Ok(())
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// How requests are authorised after the registry's first challenge.
#[derive(Clone, Copy)]
enum Auth {
    Anonymous,
    Basic,
    Bearer,
}

enum Payload<'b> {
    Empty,
    Bytes(&'b [u8]),
    /// A blob file and the digest it must have: hashed while it streams, and the body is cut
    /// off (the upload never completes) if the bytes sent are not those.
    File(&'b Path, &'b str),
}

/// Hashes what it reads. The read that would hand over the last of `len` bytes (the body's
/// Content-Length, after which the client sends nothing more) fails instead if the digest is
/// not `expected`, so the registry never receives a complete body.
struct VerifyingReader {
    inner: crate::progress::ReadBytes<File>,
    hasher: sha2::Sha256,
    expected: String,
    len: u64,
    sent: u64,
    mismatch: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

impl std::io::Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let room = (self.len - self.sent).min(buf.len() as u64) as usize;
        let n = if room == 0 {
            0
        } else {
            self.inner.read(&mut buf[..room])?
        };
        self.hasher.update(&buf[..n]);
        self.sent += n as u64;
        if n > 0 && self.sent < self.len {
            return Ok(n);
        }
        let found = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if found != self.expected || self.sent != self.len {
            *self.mismatch.borrow_mut() = Some(found.clone());
            return Err(std::io::Error::other(format!(
                "blob streamed as {found}, expected {}",
                self.expected
            )));
        }
        Ok(n)
    }
}

struct Call<'b> {
    method: &'static str,
    url: String,
    /// What is being sent or fetched, for messages: `blob sha256:…`.
    what: String,
    headers: Vec<(&'static str, String)>,
    payload: Payload<'b>,
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

struct Client<'a> {
    agent: Transport,
    base: String,
    registry: String,
    repository: String,
    /// The token scope this push needs: `repository:<repo>:pull,push`.
    scope: String,
    creds: Option<&'a Credentials>,
    auth: Auth,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
    retries: u32,
    plain_http: bool,
    timeouts: Timeouts,
    progress: &'a mut dyn FnMut(&str),
}

const ACCEPT_MANIFESTS: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

impl<'a> Client<'a> {
    fn new(
        reference: &Reference,
        opts: &'a PushOptions,
        progress: &'a mut dyn FnMut(&str),
    ) -> Result<Client<'a>, PushError> {
        let agent = Client::agent(reference, opts)?;
        Ok(Client::with_agent(reference, opts, agent, progress))
    }

    /// The connection pools with the timeouts, proxy and TLS trust of `opts`.
    fn agent(reference: &Reference, opts: &PushOptions) -> Result<Transport, PushError> {
        let host = reference.api_host();
        // A proxy cannot reach this machine's loopback registry.
        let proxy = if is_loopback(host) {
            None
        } else {
            ureq::Proxy::try_from_env()
        };
        let scheme = if opts.plain_http { "http" } else { "https" };
        Transport::new(format!("{scheme}://{host}"), &opts.tls, || {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .https_only(!opts.plain_http)
                .user_agent(concat!("mab-verify/", env!("CARGO_PKG_VERSION")))
                .timeout_connect(Some(opts.timeouts.connect))
                .timeout_recv_response(Some(opts.timeouts.idle))
                .timeout_recv_body(Some(opts.timeouts.idle))
                .timeout_global(Some(opts.timeouts.total))
                .proxy(proxy.clone())
        })
    }

    fn with_agent(
        reference: &Reference,
        opts: &'a PushOptions,
        agent: Transport,
        progress: &'a mut dyn FnMut(&str),
    ) -> Client<'a> {
        let host = reference.api_host();
        let scheme = if opts.plain_http { "http" } else { "https" };
        Client {
            agent,
            base: format!("{scheme}://{host}"),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            scope: format!("repository:{}:pull,push", reference.repository),
            creds: opts.credentials.as_ref(),
            auth: Auth::Anonymous,
            tokens: HashMap::new(),
            retries: opts.retries,
            plain_http: opts.plain_http,
            timeouts: opts.timeouts,
            progress,
        }
    }

    fn say(&mut self, line: &str) {
        let line = self.redact(line);
        (self.progress)(&line);
    }

    /// [`auth::redact`] plus any bearer token this client holds.
    fn redact(&self, text: &str) -> String {
        let mut out = auth::redact(text, self.creds);
        for token in self.tokens.values() {
            if !token.is_empty() {
                out = out.replace(token.as_str(), auth::REDACTED);
            }
        }
        out
    }

    /// Runs `op` again after transient failures, waiting [`RETRY_BASE_DELAY`], doubling.
    fn retrying<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, PushError>,
    ) -> Result<T, PushError> {
        let mut attempt = 0;
        loop {
            match op(self) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_transient() && attempt < self.retries => {
                    let delay = RETRY_BASE_DELAY * 2u32.saturating_pow(attempt);
                    attempt += 1;
                    let first = e.to_string();
                    let first = first.lines().next().unwrap_or_default().to_string();
                    self.say(&format!(
                        "{first}; retry {attempt}/{} in {} ms",
                        self.retries,
                        delay.as_millis()
                    ));
                    std::thread::sleep(delay);
                }
                Err(e) if attempt > 0 => return Err(e.gave_up_after(attempt + 1)),
                Err(e) => return Err(e),
            }
        }
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    fn authorization(&self) -> Option<String> {
        match self.auth {
            Auth::Anonymous => None,
            Auth::Basic => self.creds.map(Credentials::basic_header),
            Auth::Bearer => self.tokens.get(&self.scope).map(|t| format!("Bearer {t}")),
        }
    }

    fn dispatch(&self, call: &Call) -> Result<Response<Body>, PushError> {
        let mut builder = http::Request::builder().method(call.method).uri(&call.url);
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        // Credentials only to the registry's own origin: an upload Location elsewhere (a
        // storage backend, or a hostile registry pointing at someone else) gets none.
        if same_origin(&self.base, &call.url)
            && let Some(auth) = self.authorization()
        {
            builder = builder.header("Authorization", auth);
        }
        let mismatch = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
        let bad_request = |e: http::Error| self.transport_error(&call.what, ureq::Error::Http(e));
        let result = match call.payload {
            Payload::Empty => self.agent.run(builder.body(()).map_err(bad_request)?),
            Payload::Bytes(bytes) => self.agent.run(builder.body(bytes).map_err(bad_request)?),
            Payload::File(path, expected) => {
                // Opened per attempt, streamed with its length: never held in memory.
                let file = File::open(path)
                    .map_err(|e| layout_error(path, format!("cannot open {}: {e}", call.what)))?;
                let len = file
                    .metadata()
                    .map_err(|e| layout_error(path, format!("cannot read {}: {e}", call.what)))?
                    .len();
                let what = format!("uploading {}", crate::progress::short_digest(expected));
                let mut reader = VerifyingReader {
                    inner: crate::progress::current()
                        .bytes(what, Some(len))
                        .reader(file),
                    hasher: sha2::Digest::new(),
                    expected: expected.to_string(),
                    len,
                    sent: 0,
                    mismatch: mismatch.clone(),
                };
                let body = ureq::SendBody::from_reader(&mut reader);
                let builder = builder.header("Content-Length", len.to_string());
                self.agent.run(builder.body(body).map_err(bad_request)?)
            }
        };
        if let Payload::File(path, expected) = call.payload
            && let Some(found) = mismatch.borrow_mut().take()
        {
            return Err(PushError::BlobChanged {
                path: path.display().to_string(),
                expected: expected.to_string(),
                found,
            });
        }
        result.map_err(|e| self.failed(&call.what, e))
    }

    /// Sends `call`, answering one 401 challenge (Basic or Bearer) and sending it again.
    fn send(&mut self, call: &Call) -> Result<Response<Body>, PushError> {
        let mut answered = false;
        loop {
            let mut response = self.dispatch(call)?;
            if response.status() != StatusCode::UNAUTHORIZED || answered {
                return Ok(response);
            }
            answered = true;
            let challenge = parse_challenges(response.headers());
            drain(&mut response);
            match challenge {
                Some(Challenge::Basic) => {
                    let Some(creds) = self.creds else {
                        return Err(self.http_error(call, 401, String::new()));
                    };
                    if matches!(self.auth, Auth::Basic) {
                        return Err(self.http_error(call, 401, String::new()));
                    }
                    let user = creds.username.clone();
                    self.auth = Auth::Basic;
                    self.say(&format!(
                        "registry {} asks for basic auth; sending credentials of user {user}",
                        self.registry
                    ));
                }
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }) => {
                    self.fetch_token(&realm, service.as_deref(), scope.as_deref())?;
                    self.auth = Auth::Bearer;
                }
                None => {
                    return Err(self.http_error(
                        call,
                        401,
                        ": no Basic or Bearer challenge in WWW-Authenticate".into(),
                    ));
                }
            }
        }
    }

    /// GETs a token for this push's scope (and the challenge's, if different) from `realm`.
    fn fetch_token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<(), PushError> {
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", percent_encode(service)));
        }
        query.push(format!("scope={}", percent_encode(&self.scope)));
        if let Some(scope) = scope.filter(|s| *s != self.scope) {
            query.push(format!("scope={}", percent_encode(scope)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", query.join("&"));
        let what = format!("token from {realm}");
        let mut builder = http::Request::builder().method("GET").uri(&url);
        if let Some(creds) = self.creds {
            builder = builder.header("Authorization", creds.basic_header());
        }
        let request = builder
            .body(())
            .map_err(|e| self.transport_error(&what, ureq::Error::Http(e)))?;
        let mut response = self.agent.run(request).map_err(|e| self.failed(&what, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let detail = self.error_detail(&mut response);
            let hint = match status {
                401 | 403 if self.creds.is_some() => format!(
                    "the token server rejected the credentials: check --creds or the auths entry for {} in ~/.docker/config.json (or $REGISTRY_AUTH_FILE)",
                    self.registry
                ),
                401 | 403 => format!(
                    "no credentials were found for {}: pass --creds USER:PASSWORD or add an auths entry for it to ~/.docker/config.json",
                    self.registry
                ),
                _ => "the token server failed; try again later".into(),
            };
            return Err(PushError::Token {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                realm: self.redact(realm),
                status,
                detail,
                hint,
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.transport_error(&what, e))?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let token = ["token", "access_token"]
            .iter()
            .find_map(|k| json.get(*k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
            .ok_or_else(|| PushError::Token {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                realm: self.redact(realm),
                status,
                detail: ": the answer has no `token` or `access_token`".into(),
                hint: "the realm in the registry's WWW-Authenticate header is not a Docker token server".into(),
            })?;
        self.tokens.insert(self.scope.clone(), token.to_string());
        let who = self
            .creds
            .map(|c| format!("as user {}", c.username))
            .unwrap_or_else(|| "anonymously".into());
        self.say(&format!(
            "registry {} asks for a bearer token; got one from {realm} {who}",
            self.registry
        ));
        Ok(())
    }

    /// `GET /v2/`: finds out whether and how the registry wants auth before any upload.
    fn ping(&mut self) -> Result<(), PushError> {
        let call = Call {
            method: "GET",
            url: format!("{}/v2/", self.base),
            what: "the API root /v2/".into(),
            headers: Vec::new(),
            payload: Payload::Empty,
        };
        let mut response = self.send(&call)?;
        let status = response.status().as_u16();
        drain(&mut response);
        match status {
            200..=299 => Ok(()),
            _ => Err(self.http_error(&call, status, String::new())),
        }
    }

    fn blob_exists(&mut self, blob: &PlannedBlob) -> Result<bool, PushError> {
        let call = Call {
            method: "HEAD",
            url: self.url("blobs", &blob.digest),
            what: format!("blob {}", blob.digest),
            headers: Vec::new(),
            payload: Payload::Empty,
        };
        let mut response = self.send(&call)?;
        let status = response.status().as_u16();
        drain(&mut response);
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.http_error(&call, status, String::new())),
        }
    }

    /// Uploads `blobs` on `workers` threads, each with its own client (this one's auth and
    /// tokens, the shared connection pool). The first failure stops the others from starting
    /// another blob and is the error returned. Progress lines are passed on in plan order,
    /// whatever order the uploads finish in, so a push reads the same on every run.
    fn upload_all(
        &mut self,
        reference: &Reference,
        opts: &PushOptions,
        blobs: &[&PlannedBlob],
        workers: usize,
    ) -> Result<(), PushError> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        enum Note {
            Line(usize, String),
            Done(usize),
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error = std::sync::Mutex::new(None::<PushError>);
        let (tx, rx) = std::sync::mpsc::channel::<Note>();
        let (auth, tokens) = (self.auth, self.tokens.clone());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let (tx, agent, tokens) = (tx.clone(), self.agent.clone(), tokens.clone());
                let (next, stop, first_error) = (&next, &stop, &first_error);
                // A thread that cannot start leaves its share to the others, or to this
                // thread below when none started.
                let _ = std::thread::Builder::new().spawn_scoped(scope, move || {
                    let current = std::cell::Cell::new(0);
                    let mut say = |line: &str| {
                        let _ = tx.send(Note::Line(current.get(), line.to_string()));
                    };
                    let mut client = Client::with_agent(reference, opts, agent, &mut say);
                    client.auth = auth;
                    client.tokens = tokens;
                    while !stop.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(blob) = blobs.get(i) else { break };
                        current.set(i);
                        match client.retrying(|c| c.upload_blob(blob)) {
                            Ok(()) => client.say(&format!(
                                "blob {} ({} bytes): uploaded",
                                blob.digest, blob.size
                            )),
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                first_error
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get_or_insert(e);
                                break;
                            }
                        }
                        let _ = tx.send(Note::Done(i));
                    }
                });
            }
            drop(tx);
            let mut pending: Vec<Vec<String>> = vec![Vec::new(); blobs.len()];
            let mut done = vec![false; blobs.len()];
            let mut said = 0;
            for note in rx {
                match note {
                    Note::Line(i, line) => pending[i].push(line),
                    Note::Done(i) => done[i] = true,
                }
                while said < blobs.len() && done[said] {
                    for line in std::mem::take(&mut pending[said]) {
                        (self.progress)(&line);
                    }
                    said += 1;
                }
            }
            // What an unfinished or failed upload said (its retries) comes last, in order.
            for line in pending.into_iter().skip(said).flatten() {
                (self.progress)(&line);
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        while let Some(blob) = blobs.get(next.fetch_add(1, Ordering::SeqCst)) {
            self.retrying(|c| c.upload_blob(blob))?;
            self.say(&format!(
                "blob {} ({} bytes): uploaded",
                blob.digest, blob.size
            ));
        }
        Ok(())
    }

    /// `POST /blobs/uploads/`, then one `PUT <Location>&digest=…` with the file as the body.
    fn upload_blob(&mut self, blob: &PlannedBlob) -> Result<(), PushError> {
        let start = Call {
            method: "POST",
            url: format!("{}/v2/{}/blobs/uploads/", self.base, self.repository),
            what: format!("upload start for blob {}", blob.digest),
            headers: vec![("Content-Type", "application/octet-stream".into())],
            payload: Payload::Bytes(&[]),
        };
        let mut response = self.send(&start)?;
        let status = response.status().as_u16();
        if status != 202 {
            let detail = self.error_detail(&mut response);
            return Err(self.http_error(&start, status, detail));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        drain(&mut response);
        let Some(location) = location else {
            return Err(self.http_error(
                &start,
                status,
                ": the answer has no Location header to upload to".into(),
            ));
        };
        let url = resolve_location(&self.base, &location);
        let sep = if url.contains('?') { '&' } else { '?' };
        let put = Call {
            method: "PUT",
            url: format!("{url}{sep}digest={}", percent_encode(&blob.digest)),
            what: format!("blob {}", blob.digest),
            headers: vec![("Content-Type", "application/octet-stream".into())],
            payload: Payload::File(&blob.path, &blob.digest),
        };
        let mut response = self.send(&put)?;
        let status = response.status().as_u16();
        if status != 201 {
            let detail = self.error_detail(&mut response);
            return Err(self.http_error(&put, status, detail));
        }
        drain(&mut response);
        Ok(())
    }

    /// `PUT /manifests/<reference>` with the stored bytes and their media type.
    fn put_manifest(
        &mut self,
        manifest: &PlannedManifest,
        reference: &str,
    ) -> Result<(), PushError> {
        let what = if reference == manifest.digest {
            format!("manifest {}", manifest.digest)
        } else {
            format!("manifest {} as tag {reference}", manifest.digest)
        };
        let call = Call {
            method: "PUT",
            url: self.url("manifests", reference),
            what,
            headers: vec![("Content-Type", manifest.media_type.clone())],
            payload: Payload::Bytes(&manifest.bytes),
        };
        let mut response = self.send(&call)?;
        let status = response.status().as_u16();
        if status != 201 && status != 200 {
            let detail = self.error_detail(&mut response);
            return Err(self.http_error(&call, status, detail));
        }
        drain(&mut response);
        Ok(())
    }

    /// GETs the manifest at `reference` and returns the sha256 of the body as served.
    fn fetch_digest(&mut self, reference: &str, media_type: &str) -> Result<String, PushError> {
        let mut accept: Vec<&str> = ACCEPT_MANIFESTS.to_vec();
        if !accept.contains(&media_type) {
            accept.insert(0, media_type);
        }
        let call = Call {
            method: "GET",
            url: self.url("manifests", reference),
            what: format!("manifest {reference} (read back)"),
            headers: vec![("Accept", accept.join(", "))],
            payload: Payload::Empty,
        };
        let mut response = self.send(&call)?;
        let status = response.status().as_u16();
        if status != 200 {
            let detail = self.error_detail(&mut response);
            return Err(self.http_error(&call, status, detail));
        }
        let mut hasher = sha2::Sha256::new();
        let mut reader = response.body_mut().as_reader();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| self.transport_error(&call.what, ureq::Error::Io(e)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// `: CODE: message` from a distribution error body (or its first line), redacted.
    fn error_detail(&self, response: &mut Response<Body>) -> String {
        let mut body = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(16 * 1024)
            .read_to_end(&mut body);
        let text = String::from_utf8_lossy(&body);
        let parsed = serde_json::from_slice::<oci_spec::distribution::ErrorResponse>(&body).ok();
        let detail = match parsed.as_ref().map(|r| r.detail()) {
            Some(errors) if !errors.is_empty() => errors
                .iter()
                .map(|e| format!("{}: {}", e.code(), e.message().as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("; "),
            // Codes the spec does not list (TAG_INVALID, …) fail the typed parse: their body
            // is shown as it came.
            _ => {
                let line = text.lines().map(str::trim).find(|l| !l.is_empty());
                line.unwrap_or("").chars().take(200).collect()
            }
        };
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.redact(&detail))
        }
    }

    fn http_error(&self, call: &Call, status: u16, detail: String) -> PushError {
        let registry = &self.registry;
        let repository = &self.repository;
        let code = |c: &str| detail.contains(c);
        let hint = match status {
            401 if self.creds.is_some() => format!(
                "the registry rejected the credentials: check --creds or the auths entry for {registry} in ~/.docker/config.json (or $REGISTRY_AUTH_FILE, $MAB_REGISTRY_USER/$MAB_REGISTRY_PASSWORD)"
            ),
            401 => format!(
                "the registry wants credentials and none were found: check --creds or the auths entry for {registry} in ~/.docker/config.json (or $REGISTRY_AUTH_FILE), or set $MAB_REGISTRY_USER and $MAB_REGISTRY_PASSWORD"
            ),
            403 => format!(
                "the credentials may not push to {repository} on {registry}: grant push access, or push to a repository you own"
            ),
            404 if call.url.ends_with("/v2/") => format!(
                "{registry} does not serve the registry API at /v2/: check the host and port"
            ),
            404 if call.method == "POST" => format!(
                "repository {repository} does not exist on {registry} or its name is wrong (some registries need it created first)"
            ),
            404 => format!("the registry does not know {}", call.what),
            400 if code("DIGEST_INVALID") || code("BLOB_UPLOAD_INVALID") || code("SIZE_INVALID") => {
                "the bytes sent do not match their digest: the layout changed after verification; extract and verify the artifact again".into()
            }
            400 if code("MANIFEST") || code("BLOB_UNKNOWN") => {
                "the registry rejected the manifest: it must reference only blobs already pushed, with media types the registry accepts (mixed OCI/Docker types fail check index.media-types)".into()
            }
            400 if code("TAG_INVALID") || code("NAME_INVALID") => {
                "check the repository name and tag of the reference".into()
            }
            405 => format!(
                "{registry} does not accept {} here: it may be read-only or a pull-through cache",
                call.method
            ),
            413 => "the registry (or a proxy in front of it) refused a request this large: raise its body size limit".into(),
            429 => "the registry is rate-limiting: wait and push again".into(),
            500..=599 => "the registry (or a proxy in front of it) failed: push again later; its logs say why".into(),
            _ => "unexpected answer; the detail above is the registry's own message".into(),
        };
        PushError::Http {
            registry: registry.clone(),
            repository: repository.clone(),
            request: self.redact(&format!("{} {}", call.method, call.what)),
            status,
            detail: self.redact(&detail),
            hint: self.redact(&hint),
        }
    }

    fn transport_error(&self, what: &str, err: ureq::Error) -> PushError {
        self.transport_error_at(what, err, None)
    }

    /// A request the transport could not complete, at the registry or elsewhere (a redirect
    /// target, a token realm).
    fn failed(&self, what: &str, failure: Failure) -> PushError {
        self.transport_error_at(what, failure.error, failure.elsewhere.as_deref())
    }

    /// `elsewhere`: the origin that failed when it is not the registry's.
    fn transport_error_at(
        &self,
        what: &str,
        err: ureq::Error,
        elsewhere: Option<&str>,
    ) -> PushError {
        let registry = elsewhere.unwrap_or(&self.registry);
        let waiver = match elsewhere {
            None => "--tls-verify=false skips the check for this registry".to_string(),
            Some(host) => format!(
                "--tls-verify=false covers only {}, not {host} (a redirect target or token server)",
                self.registry
            ),
        };
        let refused = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            )
        };
        let (retryable, hint) = match &err {
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) if !self.plain_http => (
                false,
                format!(
                    "the TLS handshake with {registry} failed (its certificate, or the client certificate it wants): if a private CA signed it, pass --cert-dir DIR holding that CA as ca.crt (and NAME.cert + NAME.key when it asks for a client certificate), or set SSL_CERT_FILE; {waiver}"
                ),
            ),
            ureq::Error::RequireHttpsOnly(_) => (
                false,
                "the registry sent a plain-HTTP URL during an HTTPS push; pass --plain-http only if you trust this registry".into(),
            ),
            ureq::Error::Protocol(_) if self.plain_http => (
                false,
                format!("{registry} did not answer in plain HTTP: it probably requires HTTPS; drop --plain-http"),
            ),
            ureq::Error::HostNotFound => (true, format!("check the host name {registry} and DNS")),
            ureq::Error::ConnectionFailed => (
                true,
                format!("is a registry running and listening at {registry}?"),
            ),
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => (
                true,
                format!("is a registry running and listening at {registry}?"),
            ),
            // rustls's handshake failures arrive as InvalidData: a certificate the trust
            // store rejects (or a client certificate the server wants) names certificates.
            ureq::Error::Io(e)
                if e.kind() == io::ErrorKind::InvalidData
                    && !self.plain_http
                    && e.to_string().to_ascii_lowercase().contains("certificate") =>
            {
                (
                    false,
                    format!(
                        "the TLS handshake with {registry} failed on a certificate: if a private CA signed the registry's, pass --cert-dir DIR holding that CA as ca.crt (or set SSL_CERT_FILE); if the registry asks for a client certificate, put NAME.cert and NAME.key in that DIR; {waiver}"
                    ),
                )
            }
            // rustls reports a handshake with something that is not TLS as InvalidData.
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData && !self.plain_http => (
                false,
                format!(
                    "{registry} did not answer with TLS: if it serves plain HTTP, pass --plain-http (allowed for loopback registries, or when asked for explicitly)"
                ),
            ),
            ureq::Error::Io(e) if refused(e) => (
                true,
                "the connection broke; a proxy or the registry closed it".into(),
            ),
            ureq::Error::Io(_) if !self.plain_http => (
                true,
                format!("if {registry} serves plain HTTP, pass --plain-http"),
            ),
            ureq::Error::Io(_) => (true, "the connection failed; check the network".into()),
            ureq::Error::Timeout(kind) => (true, self.timeout_hint(*kind)),
            _ => (false, "see the error above".into()),
        };
        let what = match elsewhere {
            Some(host) => format!("{what}, at {host}"),
            None => what.to_string(),
        };
        PushError::Transport {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            what: self.redact(&what),
            message: self.redact(&err.to_string()),
            hint: self.redact(&hint),
            retryable,
        }
    }
}

impl Client<'_> {
    /// Which of the push's timeouts ran out, with its value and the variable that sets it.
    fn timeout_hint(&self, kind: ureq::Timeout) -> String {
        use crate::settings::env as vars;
        let registry = &self.registry;
        let (what, limit, var) = match kind {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => (
                format!("no connection to {registry} within"),
                self.timeouts.connect,
                vars::PUSH_CONNECT_TIMEOUT,
            ),
            ureq::Timeout::Global | ureq::Timeout::PerCall => (
                format!("one request to {registry} took longer than the total timeout of"),
                self.timeouts.total,
                vars::PUSH_TIMEOUT,
            ),
            _ => (
                format!("{registry} stopped answering: nothing arrived within the idle timeout of"),
                self.timeouts.idle,
                vars::PUSH_IDLE_TIMEOUT,
            ),
        };
        format!(
            "{what} {} s (set {var} to change it); check the registry and the network and push again",
            limit.as_secs_f64()
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The best challenge among the `WWW-Authenticate` headers: Bearer with a realm, else Basic.
fn parse_challenges(headers: &http::HeaderMap) -> Option<Challenge> {
    let mut basic = false;
    for value in headers.get_all("www-authenticate") {
        let Ok(value) = value.to_str() else { continue };
        match parse_challenge(value) {
            Some(c @ Challenge::Bearer { .. }) => return Some(c),
            Some(Challenge::Basic) => basic = true,
            None => {}
        }
    }
    basic.then_some(Challenge::Basic)
}

/// The Bearer challenge in one `WWW-Authenticate` value (`Bearer realm="…",service="…",
/// scope="…"`), else Basic if offered; parsed by `http-auth` as RFC 7235 has it (parameter
/// values that are neither tokens nor quoted strings end the parse).
fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut basic = false;
    for challenge in http_auth::ChallengeParser::new(header).map_while(Result::ok) {
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        } else if challenge.scheme.eq_ignore_ascii_case("bearer") {
            let get = |key: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(key))
                    .map(|(_, value)| value.to_unescaped())
            };
            return Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            });
        }
    }
    basic.then_some(Challenge::Basic)
}

/// Reads an image from a registry: manifests by tag or digest, blobs as streams. One
/// connection pool and one set of tokens serve every reader thread; a request is sent under
/// a lock (so a 401 is answered once) and its body is read without it.
pub struct Puller {
    reference: Reference,
    opts: PushOptions,
    agent: Transport,
    state: std::sync::Mutex<(Auth, HashMap<String, String>)>,
}

/// A manifest as the registry served it.
pub struct Served {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Puller {
    /// Connects (`GET /v2/`, answering its auth challenge) so an unreachable registry or
    /// refused credentials show before anything is read.
    pub fn connect(reference: &Reference, opts: PushOptions) -> Result<Puller, PushError> {
        let agent = Client::agent(reference, &opts)?;
        let puller = Puller {
            reference: reference.clone(),
            opts,
            agent,
            state: std::sync::Mutex::new((Auth::Anonymous, HashMap::new())),
        };
        puller.with_client(|c| c.retrying(|c| c.ping()))?;
        Ok(puller)
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn with_client<T>(
        &self,
        op: impl FnOnce(&mut Client<'_>) -> Result<T, PushError>,
    ) -> Result<T, PushError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut say = |line: &str| crate::pipeline::progress(line);
        let mut client =
            Client::with_agent(&self.reference, &self.opts, self.agent.clone(), &mut say);
        client.scope = format!("repository:{}:pull", self.reference.repository);
        client.auth = state.0;
        client.tokens = std::mem::take(&mut state.1);
        let result = op(&mut client);
        *state = (client.auth, std::mem::take(&mut client.tokens));
        result
    }

    /// `GET /manifests/<reference>` (a tag or a digest), at most [`MAX_MANIFEST_BYTES`].
    pub fn manifest(&self, reference: &str) -> Result<Served, PushError> {
        self.with_client(|c| {
            c.retrying(|c| {
                let call = Call {
                    method: "GET",
                    url: c.url("manifests", reference),
                    what: format!("manifest {reference}"),
                    headers: vec![("Accept", ACCEPT_MANIFESTS.join(", "))],
                    payload: Payload::Empty,
                };
                let mut response = c.send(&call)?;
                let status = response.status().as_u16();
                if status != 200 {
                    let detail = c.error_detail(&mut response);
                    return Err(c.http_error(&call, status, detail));
                }
                let media_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
                    .unwrap_or_default();
                let bytes = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_MANIFEST_BYTES)
                    .read_to_vec()
                    .map_err(|e| c.transport_error(&call.what, e))?;
                // Not compared with a digest reference here: the reader records what it
                // got, and blob.digest judges it, as for a local layout.
                let digest = sha256_digest(&bytes);
                Ok(Served {
                    digest,
                    media_type,
                    bytes,
                })
            })
        })
    }

    /// `GET /blobs/<digest>` as a stream and its length; the caller hashes what it reads.
    pub fn blob(
        &self,
        digest: &str,
    ) -> Result<(Box<dyn std::io::Read + Send + 'static>, Option<u64>), PushError> {
        let response = self.with_client(|c| {
            c.retrying(|c| {
                let call = Call {
                    method: "GET",
                    url: c.url("blobs", digest),
                    what: format!("blob {digest}"),
                    headers: Vec::new(),
                    payload: Payload::Empty,
                };
                let mut response = c.send(&call)?;
                let status = response.status().as_u16();
                if status != 200 {
                    let detail = c.error_detail(&mut response);
                    return Err(c.http_error(&call, status, detail));
                }
                Ok(response)
            })
        })?;
        let len = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let reader = response.into_body().into_reader();
        Ok((Box::new(reader), len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_dir_error(files: &[&str]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "not PEM").unwrap();
        }
        let tls = TlsOptions {
            cert_dir: Some(dir.path().to_path_buf()),
            insecure: false,
        };
        match tls.config() {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_cert_dir_pairs_client_certificates_with_keys() {
        assert!(cert_dir_error(&["client.cert"]).contains("without its key client.key"));
        assert!(cert_dir_error(&["client.key"]).contains("without its certificate client.cert"));
        // A CA file that is no PEM names the file.
        let bad_ca = cert_dir_error(&["ca.crt"]);
        assert!(
            bad_ca.contains("ca.crt") && bad_ca.contains("no PEM certificate"),
            "{bad_ca}"
        );
        // Files that are none of the three kinds are ignored, as containers-certs.d does.
        assert_eq!(cert_dir_error(&["README"]), "accepted");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(
                r#"Basic realm="r", bearer realm="https://t.example/x?a=\"1\"", error="invalid_token""#
            ),
            Some(Challenge::Bearer {
                realm: r#"https://t.example/x?a="1""#.into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(
            parse_challenge("Bearer realm=https://t.example/x"),
            None,
            "an unquoted URL is not a token (RFC 7235)"
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a realm is required"
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn locations_and_encoding() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/u?_state=x"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(
            resolve_location(base, "https://s3.example/u"),
            "https://s3.example/u"
        );
        assert_eq!(percent_encode("sha256:ab"), "sha256%3Aab");
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn transient_statuses() {
        let http = |status| PushError::Http {
            registry: "r".into(),
            repository: "a".into(),
            request: "PUT x".into(),
            status,
            detail: String::new(),
            hint: String::new(),
        };
        for s in [408, 429, 500, 502, 503] {
            assert!(http(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413] {
            assert!(!http(s).is_transient(), "{s}");
        }
    }
}

#[cfg(test)]
mod origin_tests {
    #[test]
    fn credentials_go_only_to_the_registrys_own_origin() {
        let base = "https://reg.example.com";
        assert!(super::same_origin(
            base,
            "https://reg.example.com/v2/a/blobs/uploads/x"
        ));
        for other in [
            "https://reg.example.com.evil/v2/",
            "https://reg.example.com:444/v2/",
            "http://reg.example.com/v2/",
            "https://storage.example.net/upload?x",
            "https://reg.example.com@evil/v2/",
        ] {
            assert!(!super::same_origin(base, other), "{other}");
        }
    }
}
