//! Image references as skopeo names them (`docker://`, `oci:`, `oci-archive:`,
//! `docker-archive:`), or a bare path, parsed once into what to open.

use crate::publish::registry::Reference;
use std::path::{Path, PathBuf};

/// Where an image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A path without a transport: whatever it turns out to be (binary, directory, archive).
    Path(PathBuf),
    /// `docker://HOST/REPO:TAG` or `docker://HOST/REPO@sha256:…`.
    Registry(Reference),
    /// `oci:DIR[:REF]`: an OCI layout directory, optionally one `ref.name` of its index.
    Oci { dir: PathBuf, name: Option<String> },
    /// `oci-archive:FILE[:REF]`: a tar of an OCI layout, optionally one `ref.name`.
    OciArchive { file: PathBuf, name: Option<String> },
    /// `docker-archive:FILE`: `docker save` or dockerTools output.
    DockerArchive { file: PathBuf },
}

impl ImageRef {
    /// The file or directory it names, when it is local.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            ImageRef::Path(p) => Some(p),
            ImageRef::Oci { dir, .. } => Some(dir),
            ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file } => Some(file),
            ImageRef::Registry(_) => None,
        }
    }

    /// The `ref.name` to select from an OCI index, if one was given.
    pub fn ref_name(&self) -> Option<&str> {
        match self {
            ImageRef::Oci { name, .. } | ImageRef::OciArchive { name, .. } => name.as_deref(),
            _ => None,
        }
    }
}

/// Why a reference cannot be used; always exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("{input}: {reason}\n  hint: {hint}")]
    Invalid {
        input: String,
        reason: String,
        hint: String,
    },
}

fn invalid(input: &str, reason: impl Into<String>, hint: impl Into<String>) -> RefError {
    RefError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
        hint: hint.into(),
    }
}

const TRANSPORTS: &str = "docker://HOST/REPO:TAG, docker://HOST/REPO@sha256:HEX, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE, or a plain path";

/// Parses `input`. A path that exists is always a path, so a file literally named
/// `oci:x` keeps working; otherwise a known transport prefix decides. `exists` is
/// `Path::exists` outside tests.
pub fn parse_with(input: &str, exists: &dyn Fn(&Path) -> bool) -> Result<ImageRef, RefError> {
    if exists(Path::new(input)) {
        return Ok(ImageRef::Path(PathBuf::from(input)));
    }
    if let Some(rest) = input.strip_prefix("docker://") {
        if rest.is_empty() {
            return Err(invalid(
                input,
                "names no image",
                "write docker://HOST/REPO:TAG, e.g. docker://127.0.0.1:5000/app:dev",
            ));
        }
        // Without a registry host, skopeo means Docker Hub; say so rather than guess.
        let reference: Reference =
            rest.parse()
                .map_err(|e: crate::publish::registry::PushError| {
                    let text = e.to_string();
                    let reason = text.lines().next().unwrap_or_default().to_string();
                    invalid(
                        input,
                        reason,
                        "write docker://HOST/REPO:TAG or docker://HOST/REPO@sha256:HEX",
                    )
                })?;
        return Ok(ImageRef::Registry(reference));
    }
    for (prefix, kind) in [("oci:", 0u8), ("oci-archive:", 1), ("docker-archive:", 2)] {
        let Some(rest) = input.strip_prefix(prefix) else {
            continue;
        };
        // containers/image splits at the first ':' after the transport on Unix.
        let (path, name) = match rest.split_once(':') {
            Some((p, n)) => (p, Some(n)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(invalid(
                input,
                "names no path",
                format!("write {prefix}PATH (for example {prefix}./app)"),
            ));
        }
        if name == Some("") {
            return Err(invalid(
                input,
                "has an empty name after the path's ':'",
                format!("drop the trailing ':' or write {prefix}{path}:NAME"),
            ));
        }
        let path = PathBuf::from(path);
        return match kind {
            0 => Ok(ImageRef::Oci {
                dir: path,
                name: name.map(str::to_string),
            }),
            1 => Ok(ImageRef::OciArchive {
                file: path,
                name: name.map(str::to_string),
            }),
            _ => match name {
                None => Ok(ImageRef::DockerArchive { file: path }),
                Some(n) => Err(invalid(
                    input,
                    format!("selecting image {n:?} of a docker-archive by name is not supported"),
                    format!(
                        "write docker-archive:{} to verify every image it holds",
                        path.display()
                    ),
                )),
            },
        };
    }
    if let Some((scheme, _)) = input.split_once("://") {
        return Err(invalid(
            input,
            format!("{scheme}:// is not a transport mab-verify reads"),
            format!("write one of {TRANSPORTS}"),
        ));
    }
    if looks_like_registry_image(input) {
        return Err(invalid(
            input,
            "is not a file or directory here, and looks like an image in a registry",
            format!("write docker://{input} to verify it in the registry"),
        ));
    }
    Ok(ImageRef::Path(PathBuf::from(input)))
}

/// [`parse_with`] against the real file system.
pub fn parse(input: &str) -> Result<ImageRef, RefError> {
    parse_with(input, &|p: &Path| p.exists())
}

/// `ghcr.io/org/app:1.2`, `localhost:5000/app`: a first component that is a host (a dot,
/// a port or `localhost`), as Docker tells a registry from a Hub namespace.
fn looks_like_registry_image(input: &str) -> bool {
    let Some((first, rest)) = input.split_once('/') else {
        return false;
    };
    if rest.is_empty() || first.starts_with('.') || first.is_empty() {
        return false;
    }
    let host_like = first.contains('.') || first.contains(':') || first == "localhost";
    host_like
        && input
            .parse::<Reference>()
            .is_ok_and(|r| r.registry == first.to_ascii_lowercase() || r.registry == first)
}

/// How registries are reached: `--plain-http`, `--creds`, `--cert-dir`, `--tls-verify`.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    pub plain_http: bool,
    /// `USER:PASSWORD` from `--creds` (or `--creds USER --password-stdin`).
    pub creds: Option<String>,
    pub cert_dir: Option<PathBuf>,
    pub tls_verify: bool,
    /// Bytes and throughput per blob while reading (off with `--quiet`).
    pub progress: bool,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            plain_http: false,
            creds: None,
            cert_dir: None,
            tls_verify: true,
            progress: true,
        }
    }
}

impl RemoteSettings {
    /// The flags as settings; `--password-stdin` is read here.
    pub fn from_flags(
        flags: crate::cli::RemoteFlags,
        progress: bool,
    ) -> Result<RemoteSettings, crate::error::Error> {
        Ok(RemoteSettings {
            plain_http: flags.plain_http,
            creds: crate::publish::auth::with_password_stdin(flags.creds, flags.password_stdin)
                .map_err(crate::error::Error::Usage)?,
            cert_dir: flags.cert_dir,
            tls_verify: flags.tls_verify,
            progress,
        })
    }

    /// Whom the client trusts: `--cert-dir` and `--tls-verify`.
    pub fn tls(&self) -> crate::publish::registry::TlsOptions {
        crate::publish::registry::TlsOptions {
            cert_dir: self.cert_dir.clone(),
            insecure: !self.tls_verify,
        }
    }
}

/// Opens what `r` names as an image source, or `None` for a bare path that is no image
/// (a binary or a directory of them). A transport that names the wrong kind of file is
/// exit 2; a registry that cannot be reached is exit 3 naming the host.
pub fn open(
    r: &ImageRef,
    limits: &super::Limits,
    remote: &RemoteSettings,
    only: Option<crate::platform::Platform>,
) -> Result<Option<(super::source::Source, super::Format)>, crate::error::Error> {
    use super::Format;
    use crate::error::Error;
    let Some(path) = r.local_path() else {
        let ImageRef::Registry(reference) = r else {
            unreachable!("only a registry reference has no local path")
        };
        return open_remote(reference, remote, only).map(Some);
    };
    let bad = |e: super::ImageError| Error::input(path, e.to_string());
    let found = super::detect(path, limits).map_err(bad)?;
    let wanted = match r {
        ImageRef::Path(_) => return Ok(found),
        ImageRef::Oci { .. } => (
            Format::OciLayout,
            "an OCI layout directory (with oci-layout and index.json)",
        ),
        ImageRef::OciArchive { .. } => (Format::OciArchive, "a tar of an OCI layout"),
        ImageRef::DockerArchive { .. } => (
            Format::DockerArchive,
            "a docker-archive (a tar with manifest.json)",
        ),
        ImageRef::Registry(_) => unreachable!("handled above"),
    };
    let (source, format) = match found {
        Some((s, f)) if f == wanted.0 => (s, f),
        Some((_, f)) => {
            return Err(Error::input(
                path,
                format!(
                    "is {f:?}, not {}; write the transport that matches it, or the bare path",
                    wanted.1
                ),
            ));
        }
        None if !path.exists() => return Err(Error::input(path, "does not exist")),
        None => return Err(Error::input(path, format!("is not {}", wanted.1))),
    };
    let Some(name) = r.ref_name() else {
        return Ok(Some((source, format)));
    };
    let index = source
        .read_doc("index.json", "index.json", limits.max_json)
        .map_err(bad)?
        .ok_or_else(|| Error::input(path, "has no index.json"))?;
    let narrowed =
        super::source::narrow_index(&index, name, &path.display().to_string()).map_err(bad)?;
    Ok(Some((
        super::source::Source::Named(Box::new(source), narrowed),
        format,
    )))
}

/// `gate` and `push` publish a local artifact: `oci:DIR` and `oci-archive:FILE` name it as
/// its path; a `:REF`, a `docker://` image or a docker-archive is refused with a hint.
pub fn local_artifact(path: &Path, command: &str) -> Result<PathBuf, crate::error::Error> {
    use crate::error::Error;
    let Some(text) = path.to_str() else {
        return Ok(path.to_path_buf());
    };
    match parse(text).map_err(|e| Error::Usage(e.to_string()))? {
        ImageRef::Path(p) => Ok(p),
        ImageRef::Oci { dir, name: None } => Ok(dir),
        ImageRef::OciArchive { file, name: None } => Ok(file),
        ImageRef::DockerArchive { file } if command == "gate" => Ok(file),
        ImageRef::DockerArchive { file } => Err(Error::Usage(format!(
            "{command} takes an OCI archive or layout, not the docker-archive {}; make one with mab-verify assemble -o app.oci.tar {}",
            file.display(),
            file.display()
        ))),
        ImageRef::Registry(r) => Err(Error::Usage(format!(
            "{command} publishes a local artifact it verified; docker://{r} is already in a registry (verify it with `mab-verify docker://{r}`)"
        ))),
        other => Err(Error::Usage(format!(
            "{command} takes the whole layout or archive: write {} without :NAME (a ref name selects only part of what would be published)",
            other
                .local_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))),
    }
}

fn open_remote(
    reference: &Reference,
    remote: &RemoteSettings,
    only: Option<crate::platform::Platform>,
) -> Result<(super::source::Source, super::Format), crate::error::Error> {
    use crate::error::Error;
    use crate::publish::{auth, registry};
    let credentials = auth::resolve_credentials(&reference.registry, remote.creds.as_deref())
        .map_err(|e| Error::Registry(Box::new(e)))?;
    if remote.plain_http && credentials.is_some() && !registry::is_loopback(&reference.registry) {
        return Err(Error::Usage(format!(
            "--plain-http would send the credentials for {} unencrypted over the network; use HTTPS (drop --plain-http)",
            reference.registry
        )));
    }
    let opts = registry::PushOptions {
        plain_http: remote.plain_http,
        credentials,
        timeouts: registry::Timeouts::from_env().map_err(Error::Usage)?,
        tls: remote.tls(),
        ..Default::default()
    };
    let unreachable = |e: registry::PushError| match e {
        registry::PushError::Transport { .. } => Error::Environment {
            what: first_line(&e),
            hint: hint_of(&e),
        },
        e => Error::Registry(Box::new(e)),
    };
    let puller = registry::Puller::connect(reference, opts).map_err(unreachable)?;
    let target = match &reference.digest {
        Some(d) => d.clone(),
        None => reference.tag.clone(),
    };
    let root = puller.manifest(&target).map_err(|e| match e.status() {
        Some(404) => Error::input(
            format!("docker://{reference}"),
            format!(
                "registry {} has no {} {target} in repository {}\n  hint: check the tag (skopeo list-tags docker://{}/{} lists them)",
                reference.registry,
                if reference.digest.is_some() { "manifest" } else { "tag" },
                reference.repository,
                reference.registry,
                reference.repository
            ),
        ),
        _ => unreachable(e),
    })?;
    crate::pipeline::progress(&format!(
        "registry {} serves {}:{target} as {} ({})",
        reference.registry, reference.repository, root.digest, root.media_type
    ));
    Ok((
        super::source::Source::Remote(Box::new(super::source::Remote::new(
            puller,
            root,
            only,
            remote.progress,
        ))),
        super::Format::OciLayout,
    ))
}

pub(crate) fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

pub(crate) fn hint_of(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    text.split_once("hint: ")
        .map(|(_, h)| h.to_string())
        .unwrap_or_else(|| "check the host, the port and the network".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn nothing_exists(_: &Path) -> bool {
        false
    }

    fn parsed(input: &str) -> Result<ImageRef, RefError> {
        parse_with(input, &nothing_exists)
    }

    #[rstest]
    #[case(
        "docker://127.0.0.1:5000/app:dev",
        "127.0.0.1:5000",
        "app",
        "dev",
        None
    )]
    #[case("docker://ghcr.io/org/app:1.2", "ghcr.io", "org/app", "1.2", None)]
    #[case(
        "docker://localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "localhost:5000",
        "a/b",
        "",
        Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    )]
    #[case("docker://ghcr.io/org/app", "ghcr.io", "org/app", "latest", None)]
    fn registry_references(
        #[case] input: &str,
        #[case] registry: &str,
        #[case] repository: &str,
        #[case] tag: &str,
        #[case] digest: Option<&str>,
    ) {
        let ImageRef::Registry(r) = parsed(input).unwrap() else {
            panic!("{input} is not a registry reference");
        };
        assert_eq!(r.registry, registry);
        assert_eq!(r.repository, repository);
        assert_eq!(r.tag, tag);
        assert_eq!(r.digest.as_deref(), digest);
    }

    #[rstest]
    #[case("oci:./layout", ImageRef::Oci { dir: "./layout".into(), name: None })]
    #[case("oci:/x/lay:v1", ImageRef::Oci { dir: "/x/lay".into(), name: Some("v1".into()) })]
    #[case("oci-archive:app.tar", ImageRef::OciArchive { file: "app.tar".into(), name: None })]
    #[case("oci-archive:app.tar:1.2", ImageRef::OciArchive { file: "app.tar".into(), name: Some("1.2".into()) })]
    #[case("docker-archive:img.tar.gz", ImageRef::DockerArchive { file: "img.tar.gz".into() })]
    #[case("./result", ImageRef::Path("./result".into()))]
    #[case("result/bin/app", ImageRef::Path("result/bin/app".into()))]
    #[case("app.oci.tar", ImageRef::Path("app.oci.tar".into()))]
    fn local_references(#[case] input: &str, #[case] expected: ImageRef) {
        assert_eq!(parsed(input).unwrap(), expected);
    }

    #[test]
    fn an_existing_path_wins_over_a_transport() {
        let r = parse_with("oci:odd-name", &|p: &Path| p == Path::new("oci:odd-name")).unwrap();
        assert_eq!(r, ImageRef::Path("oci:odd-name".into()));
    }

    #[rstest]
    #[case("ghcr.io/org/app:1.2", "write docker://ghcr.io/org/app:1.2")]
    #[case("localhost:5000/app", "write docker://localhost:5000/app")]
    #[case("docker://", "names no image")]
    #[case("docker://ghcr.io/Org/app:1", "uppercase")]
    #[case("docker://ghcr.io/org/app@sha256:12", "sha256:<64")]
    #[case("oci:", "names no path")]
    #[case("oci:dir:", "empty name")]
    #[case("docker-archive:x.tar:app:1", "not supported")]
    #[case("https://ghcr.io/org/app:1", "https:// is not a transport")]
    fn refused_with_a_hint(#[case] input: &str, #[case] says: &str) {
        let message = parsed(input).unwrap_err().to_string();
        assert!(message.contains(says), "{input}: {message}");
        assert!(message.starts_with(input), "{input}: {message}");
        assert!(message.contains("hint:"), "{input}: {message}");
    }
}
