//! The HTTP connection pools a registry client talks through, and whom they trust over TLS.
//!
//! `--tls-verify=false` is for the named registry only, as skopeo has it: a pool that skips
//! certificate checks serves requests to the registry's own origin; a redirect (or a token
//! realm, or an upload location) on any other origin, such as blob storage, goes through the
//! verifying pool. Redirects are followed here, hop by hop, so each hop gets the right pool.

use super::registry::PushError;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use ureq::http::{self, Request, Response};
use ureq::{Agent, AsSendBody, Body};

/// Redirects followed by hand from the named registry before giving up (ureq's default).
const MAX_REDIRECTS: u32 = 10;

/// Whom to trust over HTTPS, as skopeo does: the system's CAs (`SSL_CERT_FILE`,
/// `SSL_CERT_DIR`, else Debian's bundle, else Mozilla's roots), plus `--cert-dir`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// containers-certs.d layout: `*.crt` are CAs, `NAME.cert` + `NAME.key` a client pair.
    pub cert_dir: Option<PathBuf>,
    /// `--tls-verify=false`: the server's certificate is not checked.
    pub insecure: bool,
}

/// The system bundle when `SSL_CERT_FILE` is unset (Debian's ca-certificates).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl TlsOptions {
    /// The TLS configuration these options ask for; an unreadable `--cert-dir` or PEM is an
    /// error naming the file.
    pub fn config(&self) -> Result<ureq::tls::TlsConfig, PushError> {
        use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig};
        let bad = |path: &Path, why: String| PushError::Tls {
            path: path.to_path_buf(),
            message: why,
        };
        let pem_items = |path: &Path| -> Result<Vec<PemItem<'static>>, PushError> {
            let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
            ureq::tls::parse_pem(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, format!("not PEM: {e}")))
        };
        let certs_in = |path: &Path| -> Result<Vec<Certificate<'static>>, PushError> {
            Ok(pem_items(path)?
                .into_iter()
                .filter_map(|i| match i {
                    PemItem::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect())
        };
        let env_path = |var: &str| {
            crate::settings::env::get(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut roots: Vec<Certificate<'static>> = Vec::new();
        let mut system = false;
        match env_path(crate::settings::env::SSL_CERT_FILE) {
            Some(file) => {
                roots.extend(certs_in(&file)?);
                system = true;
            }
            None if Path::new(SYSTEM_BUNDLE).is_file() => {
                roots.extend(certs_in(Path::new(SYSTEM_BUNDLE))?);
                system = true;
            }
            None => {}
        }
        if let Some(dir) = env_path(crate::settings::env::SSL_CERT_DIR) {
            for file in sorted_files(&dir).map_err(|e| bad(&dir, format!("cannot list: {e}")))? {
                // Hash links and other files in a cert directory that are not PEM are skipped.
                if let Ok(certs) = certs_in(&file) {
                    roots.extend(certs);
                    system = true;
                }
            }
        }
        let mut client = None;
        if let Some(dir) = &self.cert_dir {
            let files = sorted_files(dir).map_err(|e| bad(dir, format!("cannot list: {e}")))?;
            for file in &files {
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if name.ends_with(".crt") {
                    let certs = certs_in(file)?;
                    if certs.is_empty() {
                        return Err(bad(file, "holds no PEM certificate".into()));
                    }
                    roots.extend(certs);
                } else if let Some(stem) = name.strip_suffix(".cert") {
                    let key_file = dir.join(format!("{stem}.key"));
                    if !key_file.is_file() {
                        return Err(bad(
                            file,
                            format!("client certificate without its key {stem}.key"),
                        ));
                    }
                    let chain = certs_in(file)?;
                    let key = pem_items(&key_file)?
                        .into_iter()
                        .find_map(|i| match i {
                            PemItem::PrivateKey(k) => Some(k),
                            _ => None,
                        })
                        .ok_or_else(|| bad(&key_file, "holds no private key".into()))?;
                    client = Some(ClientCert::new_with_certs(&chain, key));
                } else if let Some(stem) = name.strip_suffix(".key")
                    && !dir.join(format!("{stem}.cert")).is_file()
                {
                    return Err(bad(
                        file,
                        format!("client key without its certificate {stem}.cert"),
                    ));
                }
            }
        }
        let root_certs = if roots.is_empty() || (!system && self.cert_dir.is_none()) {
            RootCerts::WebPki
        } else {
            RootCerts::new_with_certs(&roots)
        };
        Ok(TlsConfig::builder()
            .root_certs(root_certs)
            .client_cert(client)
            .disable_verification(self.insecure)
            .build())
    }
}

fn sorted_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The pools of one registry client; cheap to clone (the pools are shared). Neither follows
/// redirects itself: [`Transport::run`] does, choosing the pool for each hop.
#[derive(Clone)]
pub(crate) struct Transport {
    /// Verifies certificates.
    strict: Agent,
    /// `--tls-verify=false`: for `origin` only.
    lax: Option<Agent>,
    /// `scheme://host[:port]` of the named registry.
    origin: String,
}

/// A request that failed, and where if not at the named registry (a redirect's target).
pub(crate) struct Failure {
    pub error: ureq::Error,
    /// `host[:port]` of the origin that failed, when it is not the registry's.
    pub elsewhere: Option<String>,
}

impl Transport {
    /// The pools for the registry at `origin`; `config` holds everything but TLS.
    pub(crate) fn new(
        origin: String,
        tls: &TlsOptions,
        config: impl Fn() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> Result<Transport, PushError> {
        let pool = |tls: &TlsOptions| -> Result<Agent, PushError> {
            let config = config().tls_config(tls.config()?).max_redirects(0);
            Ok(Agent::new_with_config(config.build()))
        };
        let verifying = TlsOptions {
            insecure: false,
            ..tls.clone()
        };
        Ok(Transport {
            strict: pool(&verifying)?,
            lax: if tls.insecure { Some(pool(tls)?) } else { None },
            origin,
        })
    }

    fn pool(&self, url: &str) -> &Agent {
        match &self.lax {
            Some(lax) if same_origin(&self.origin, url) => lax,
            _ => &self.strict,
        }
    }

    fn failure(&self, url: &str, error: ureq::Error) -> Failure {
        let elsewhere = (!same_origin(&self.origin, url)).then(|| host_of(url).to_string());
        Failure { error, elsewhere }
    }

    /// Sends `request` and follows redirects of bodiless requests: each hop to the named
    /// registry through the pool its options ask for, any other through the verifying one,
    /// and credentials only to the registry's own origin.
    pub(crate) fn run(&self, request: Request<impl AsSendBody>) -> Result<Response<Body>, Failure> {
        let mut url = request.uri().to_string();
        let method = request.method().clone();
        let headers = request.headers().clone();
        let mut response = self
            .pool(&url)
            .run(request)
            .map_err(|e| self.failure(&url, e))?;
        if !matches!(method, http::Method::GET | http::Method::HEAD) {
            return Ok(response);
        }
        for _ in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| resolve_location(&url, l))
            else {
                return Ok(response);
            };
            drain(&mut response);
            url = location;
            let on_origin = same_origin(&self.origin, &url);
            let mut next = Request::builder().method(method.clone()).uri(&url);
            for (name, value) in &headers {
                if on_origin || name != http::header::AUTHORIZATION {
                    next = next.header(name, value);
                }
            }
            let next = next
                .body(())
                .map_err(|e| self.failure(&url, ureq::Error::Http(e)))?;
            response = self
                .pool(&url)
                .run(next)
                .map_err(|e| self.failure(&url, e))?;
        }
        Err(self.failure(&url, ureq::Error::TooManyRedirects))
    }
}

/// `host[:port]` of an absolute URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// `url` is on the origin `base` (`scheme://host[:port]`): the same scheme, host and port,
/// not merely a prefix (`https://reg.example.com.evil/` is another origin).
pub(crate) fn same_origin(base: &str, url: &str) -> bool {
    url.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `location` (absolute, or a path on the origin of `url`) as an absolute URL.
pub(crate) fn resolve_location(url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin_end = url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| url[start..].find('/').map(|i| start + i))
        .unwrap_or(url.len());
    if location.starts_with('/') {
        format!("{}{location}", &url[..origin_end])
    } else {
        let dir = url
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &url[..dir])
    }
}

/// Reads and drops what is left of a body, so the connection can be reused.
pub(crate) fn drain(response: &mut Response<Body>) {
    let _ = io::copy(
        &mut response.body_mut().as_reader().take(1 << 20),
        &mut io::sink(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_resolve_against_the_url_they_came_from() {
        let url = "https://r.example:5000/v2/a/blobs/sha256:ab";
        assert_eq!(
            resolve_location(url, "/store/ab?sig=1"),
            "https://r.example:5000/store/ab?sig=1"
        );
        assert_eq!(
            resolve_location(url, "other"),
            "https://r.example:5000/v2/a/blobs/other"
        );
        assert_eq!(
            resolve_location(url, "https://s3.example/b"),
            "https://s3.example/b"
        );
        assert_eq!(host_of("https://s3.example:9000/b?x"), "s3.example:9000");
        assert_eq!(host_of("http://[::1]:5000"), "[::1]:5000");
    }
}
