//! Random access to the files of an OCI layout directory or of a (possibly compressed) tar
//! archive, by relative path; each file is opened as a stream.

use super::{Compression, ImageError, Limits, gotar};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// A member opened for reading, with its length.
pub type Member<'a> = (Box<dyn Read + 'a>, u64);

pub enum Source {
    Dir(PathBuf),
    Tar(TarIndex),
    /// An image in a registry, read as the layout it would be pulled to (see [`Remote`]).
    Remote(Box<Remote>),
    /// A local layout or archive whose `index.json` is narrowed to one `ref.name`.
    Named(Box<Source>, Vec<u8>),
}

/// A registry image seen as an OCI layout: `index.json` lists the root the registry served
/// for the tag, and `blobs/sha256/<hex>` is a manifest GET for the digests indexes list and a
/// blob GET for everything else. Manifests are small and kept; blobs are streamed.
pub struct Remote {
    puller: crate::publish::registry::Puller,
    root: crate::publish::registry::Served,
    manifests: std::sync::Mutex<HashMap<String, Option<Vec<u8>>>>,
    /// `--platform`: the images an index lists for other platforms are not fetched.
    only: Option<crate::platform::Platform>,
    /// Bars on a terminal, `None` with `--quiet` or when stderr is no terminal.
    bars: Option<indicatif::MultiProgress>,
    progress: bool,
    /// The first read that broke off, for [`Source::network_watch`].
    broken: NetworkWatch,
}

/// A registry read that broke off: the connection was cut, reset or timed out in the middle
/// of a blob, or the registry stopped answering. The environment failed (exit 3); nothing is
/// judged from the bytes that did arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the connection to registry {registry} broke while reading {what} of {repository}: {message}"
)]
pub struct NetworkFailure {
    pub registry: String,
    pub repository: String,
    /// `blob sha256:…` or `manifest sha256:…`.
    pub what: String,
    pub message: String,
    /// The client's own advice when it knew the cause (a certificate, plain HTTP).
    pub hint: Option<String>,
}

impl From<NetworkFailure> for crate::error::Error {
    fn from(f: NetworkFailure) -> Self {
        let hint = f.hint.clone().unwrap_or_else(|| {
            format!(
                "check the network and that {} is up, then run again (a cut read is never a verdict on the image)",
                f.registry
            )
        });
        crate::error::Error::Environment {
            what: f.to_string(),
            hint,
        }
    }
}

/// Where a [`Remote`] records the first [`NetworkFailure`] of any of its reader threads. The
/// readers above it see only an I/O error, which they may turn into text, so whoever opened
/// the source asks here before calling what they got bad input.
#[derive(Debug, Clone, Default)]
pub struct NetworkWatch(std::sync::Arc<std::sync::Mutex<Option<NetworkFailure>>>);

impl NetworkWatch {
    fn record(&self, failure: NetworkFailure) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(failure);
    }

    /// The first read that broke off, if one did.
    pub fn failure(&self) -> Option<NetworkFailure> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A blob's byte stream as the registry client hands it over: every error from it is the
/// network's (the client knows nothing of layers), recorded and passed on carrying the
/// [`NetworkFailure`] as its inner error.
struct Watched<R> {
    inner: R,
    watch: NetworkWatch,
    failure: NetworkFailure,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Interrupted {
                return e;
            }
            let failure = NetworkFailure {
                message: e.to_string(),
                ..self.failure.clone()
            };
            self.watch.record(failure.clone());
            std::io::Error::new(e.kind(), failure)
        })
    }
}

/// Blobs smaller than this are read without a word.
const METERED_FROM: u64 = 1 << 20;
/// How often a plain progress line is printed for a blob still being read.
const PLAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Counts a blob's bytes as they stream: a bar on a terminal, a plain line every
/// [`PLAIN_EVERY`] otherwise, and one line with size and throughput at the end.
struct Metered<R> {
    inner: R,
    label: String,
    total: u64,
    read: u64,
    started: std::time::Instant,
    last: std::time::Instant,
    bar: Option<indicatif::ProgressBar>,
    done: bool,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        } else if self.last.elapsed() >= PLAIN_EVERY && n > 0 {
            self.last = std::time::Instant::now();
            crate::pipeline::progress(&format!(
                "{}: {} of {}, {}/s",
                self.label,
                indicatif::HumanBytes(self.read),
                indicatif::HumanBytes(self.total),
                indicatif::HumanBytes(rate(self.read, self.started.elapsed()))
            ));
        }
        if (n == 0 || self.read >= self.total) && !self.done {
            self.done = true;
            if let Some(bar) = &self.bar {
                bar.finish_and_clear();
            }
            let took = self.started.elapsed();
            crate::pipeline::progress(&format!(
                "{}: {} in {:.1} s, {}/s",
                self.label,
                indicatif::HumanBytes(self.read),
                took.as_secs_f64(),
                indicatif::HumanBytes(rate(self.read, took))
            ));
        }
        Ok(n)
    }
}

fn rate(bytes: u64, took: std::time::Duration) -> u64 {
    (bytes as f64 / took.as_secs_f64().max(1e-3)) as u64
}

impl Remote {
    pub fn new(
        puller: crate::publish::registry::Puller,
        root: crate::publish::registry::Served,
        only: Option<crate::platform::Platform>,
        progress: bool,
    ) -> Remote {
        use std::io::IsTerminal as _;
        let bars = (progress && std::io::stderr().is_terminal()).then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        });
        let mut manifests = HashMap::new();
        manifests.insert(root.digest.clone(), Some(root.bytes.clone()));
        Remote {
            puller,
            root,
            manifests: std::sync::Mutex::new(manifests),
            only,
            bars,
            progress,
            broken: NetworkWatch::default(),
        }
    }

    pub fn root(&self) -> &crate::publish::registry::Served {
        &self.root
    }

    pub fn puller(&self) -> &crate::publish::registry::Puller {
        &self.puller
    }

    /// One entry naming the root, typed as the root's own family so the wrapper adds no
    /// OCI/Docker mixing of its own.
    fn index_json(&self) -> Vec<u8> {
        let docker = self.root.media_type.starts_with("application/vnd.docker.");
        let own = if docker {
            crate::publish::registry::DOCKER_LIST
        } else {
            crate::publish::registry::OCI_INDEX
        };
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": own,
            "manifests": [{
                "mediaType": self.root.media_type,
                "digest": self.root.digest,
                "size": self.root.bytes.len(),
            }],
        }))
        .expect("a JSON value serialises")
    }

    fn member(&self, rel: &str) -> Result<Option<Member<'_>>, ImageError> {
        if rel == "index.json" {
            let bytes = self.index_json();
            let len = bytes.len() as u64;
            return Ok(Some((Box::new(std::io::Cursor::new(bytes)), len)));
        }
        if rel == "oci-layout" {
            let bytes = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();
            let len = bytes.len() as u64;
            return Ok(Some((Box::new(std::io::Cursor::new(bytes)), len)));
        }
        let Some(hex) = rel.strip_prefix("blobs/sha256/") else {
            return Ok(None);
        };
        let digest = format!("sha256:{hex}");
        let known = self
            .manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
            .cloned();
        let reference = self.puller.reference();
        let cut = |what: String, message: String| NetworkFailure {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            what,
            message,
            hint: None,
        };
        // A request that could not be made or kept failing (after the client's retries) is
        // the environment's; an answer the registry gave (404, 401) is about the image.
        let remote_error = |what: &str, e: crate::publish::registry::PushError| {
            let network = matches!(e, crate::publish::registry::PushError::Transport { .. })
                || e.is_transient();
            if network {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                let hint = match &e {
                    crate::publish::registry::PushError::Transport { hint, .. } => {
                        Some(hint.clone())
                    }
                    _ => None,
                };
                self.broken.record(NetworkFailure {
                    hint,
                    ..cut(format!("{what} {digest}"), first)
                });
            }
            ImageError::Hostile(format!("{reference}: {e}"))
        };
        match known {
            Some(cached) => {
                let bytes = match cached {
                    Some(b) => b,
                    None => {
                        self.puller
                            .manifest(&digest)
                            .map_err(|e| remote_error("manifest", e))?
                            .bytes
                    }
                };
                self.learn_children(&bytes);
                self.manifests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest, Some(bytes.clone()));
                let len = bytes.len() as u64;
                Ok(Some((Box::new(std::io::Cursor::new(bytes)), len)))
            }
            None => {
                let (reader, len) = self
                    .puller
                    .blob(&digest)
                    .map_err(|e| remote_error("blob", e))?;
                let reader: Box<dyn Read + Send> = Box::new(Watched {
                    inner: reader,
                    watch: self.broken.clone(),
                    failure: cut(format!("blob {digest}"), String::new()),
                });
                let Some(len) = len else {
                    return Err(ImageError::Hostile(format!(
                        "{}: blob {digest} was served without a Content-Length; refusing a blob of unknown size",
                        self.puller.reference()
                    )));
                };
                let reader: Box<dyn Read + Send> = if self.progress && len >= METERED_FROM {
                    let label = format!(
                        "{} blob {}",
                        self.puller.reference().registry,
                        &digest[..digest.len().min(19)]
                    );
                    let bar = self.bars.as_ref().map(|bars| {
                        let bar = bars.add(indicatif::ProgressBar::new(len));
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                        );
                        bar.set_message(label.clone());
                        bar
                    });
                    let now = std::time::Instant::now();
                    Box::new(Metered {
                        inner: reader,
                        label,
                        total: len,
                        read: 0,
                        started: now,
                        last: now,
                        bar,
                        done: false,
                    })
                } else {
                    reader
                };
                Ok(Some((
                    Box::new(BufReader::with_capacity(256 * 1024, reader)),
                    len,
                )))
            }
        }
    }

    /// The digests an index lists are manifests, fetched from `/manifests/`.
    fn learn_children(&self, bytes: &[u8]) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return;
        };
        let Some(list) = value.get("manifests").and_then(|m| m.as_array()) else {
            return;
        };
        let mut known = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        for d in list {
            if let Some(digest) = d.get("digest").and_then(|d| d.as_str()) {
                known.entry(digest.to_string()).or_insert(None);
            }
        }
    }
}

/// `index.json` with only the entries whose `org.opencontainers.image.ref.name` is `name`;
/// an error naming the names there are when none is.
pub fn narrow_index(index_json: &[u8], name: &str, what: &str) -> Result<Vec<u8>, ImageError> {
    let mut value: serde_json::Value = serde_json::from_slice(index_json)
        .map_err(|e| ImageError::Hostile(format!("{what}: index.json is not JSON: {e}")))?;
    let ref_of = |d: &serde_json::Value| {
        d.get("annotations")
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
    };
    let Some(list) = value.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
        return Err(ImageError::Hostile(format!(
            "{what}: index.json lists no manifests, so it has no image named {name:?}"
        )));
    };
    let names: Vec<String> = list.iter().filter_map(ref_of).collect();
    list.retain(|d| ref_of(d).as_deref() == Some(name));
    if list.is_empty() {
        let there = if names.is_empty() {
            "no entry has a name (org.opencontainers.image.ref.name)".to_string()
        } else {
            format!("the names there are {}", names.join(", "))
        };
        return Err(ImageError::Hostile(format!(
            "{what}: index.json has no image named {name:?}; {there}"
        )));
    }
    Ok(serde_json::to_vec(&value).expect("a JSON value serialises"))
}

/// Where each member of an uncompressed tar lies. A compressed archive is first spilled,
/// decompressed, to a private temporary file, since tar members cannot be found in a stream.
pub struct TarIndex {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
    _spill: Option<tempfile::NamedTempFile>,
}

impl Source {
    pub fn open(path: &Path, limits: &Limits) -> Result<Source, ImageError> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        Ok(Source::Tar(TarIndex::build(path, limits)?))
    }

    /// True when an index entry listed for `platform` need not be read: a registry read for
    /// `--platform` fetches only that platform's blobs (an entry without a platform is read,
    /// since its config decides).
    pub fn skips(&self, platform: Option<&super::docs::PlatformDoc>) -> bool {
        let Source::Remote(remote) = self else {
            return false;
        };
        let Some(want) = remote.only else {
            return false;
        };
        platform
            .and_then(crate::check::image::declared)
            .is_some_and(|p| p.arch != want.arch || p.os != want.os)
    }

    /// For a registry source, where a read that broke off is recorded (see [`NetworkWatch`]).
    pub fn network_watch(&self) -> Option<NetworkWatch> {
        match self {
            Source::Remote(r) => Some(r.broken.clone()),
            Source::Named(inner, _) => inner.network_watch(),
            Source::Dir(_) | Source::Tar(_) => None,
        }
    }

    /// The member names, for detection.
    pub fn has(&self, rel: &str) -> bool {
        match self {
            Source::Dir(d) => safe_join(d, rel).is_some_and(|p| p.exists()),
            Source::Tar(t) => t.members.contains_key(rel),
            Source::Remote(_) => matches!(rel, "index.json" | "oci-layout"),
            Source::Named(inner, _) => inner.has(rel),
        }
    }

    /// A stream over the member and its length, or `None` when it does not exist.
    pub fn open_member(&self, rel: &str) -> Result<Option<Member<'_>>, ImageError> {
        match self {
            Source::Remote(r) => r.member(rel),
            Source::Named(_, index) if rel == "index.json" => {
                let len = index.len() as u64;
                Ok(Some((Box::new(std::io::Cursor::new(index.clone())), len)))
            }
            Source::Named(inner, _) => inner.open_member(rel),
            Source::Dir(d) => {
                let Some(p) = safe_join(d, rel) else {
                    return Ok(None);
                };
                // Non-blocking, so a FIFO planted as a blob cannot hang the open; then only a
                // regular file is read.
                use std::os::unix::fs::OpenOptionsExt;
                let opened = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&p);
                match opened {
                    Ok(f) => {
                        let meta = f.metadata().map_err(|e| ImageError::io(&p, e))?;
                        if !meta.is_file() {
                            return Err(ImageError::Hostile(format!(
                                "{}: {rel} is not a regular file (a directory, FIFO or device); refusing to read it as a blob",
                                d.display()
                            )));
                        }
                        let len = meta.len();
                        Ok(Some((
                            Box::new(BufReader::with_capacity(256 * 1024, f)),
                            len,
                        )))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(ImageError::io(&p, e)),
                }
            }
            Source::Tar(t) => {
                let Some(&(offset, size)) = t.members.get(rel) else {
                    return Ok(None);
                };
                let mut f = File::open(&t.path).map_err(|e| ImageError::io(&t.path, e))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| ImageError::io(&t.path, e))?;
                Ok(Some((
                    Box::new(BufReader::with_capacity(256 * 1024, f).take(size)),
                    size,
                )))
            }
        }
    }

    /// A whole small member (a JSON document), refused past `max` bytes.
    pub fn read_doc(&self, rel: &str, what: &str, max: u64) -> Result<Option<Vec<u8>>, ImageError> {
        let Some((reader, len)) = self.open_member(rel)? else {
            return Ok(None);
        };
        if len > max {
            return Err(ImageError::Hostile(format!(
                "{what} ({rel}) is {len} bytes, over the {max}-byte limit for JSON documents"
            )));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        reader
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::Hostile(format!("{what} ({rel}) cannot be read: {e}")))?;
        Ok(Some(bytes))
    }
}

/// Join a relative member name to a directory, refusing anything that would leave it.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel_path = Path::new(rel);
    if rel_path
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        Some(dir.join(rel_path))
    } else {
        None
    }
}

/// A member's name as an extracting reader (`filepath.Join(dest, name)`) places it: empty and
/// `.` parts and leading slashes dropped; `..` refused.
fn archive_member(raw: &str) -> Result<String, &'static str> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("contains '..'"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A relative path inside the archive with `..` applied; `None` when it climbs out.
fn normalise_inside(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `./a/b` and `a/b` name the same member.
pub fn member_name(raw: &str) -> String {
    raw.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

impl TarIndex {
    fn build(path: &Path, limits: &Limits) -> Result<TarIndex, ImageError> {
        let mut file = File::open(path).map_err(|e| ImageError::io(path, e))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| ImageError::io(path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ImageError::io(path, e))?;
        let compression = Compression::sniff(&magic[..n]);
        let (tar_path, spill) = if compression == Compression::None {
            (path.to_path_buf(), None)
        } else {
            let mut spill = tempfile::Builder::new()
                .prefix("mab-archive-")
                .tempfile()
                .map_err(|e| ImageError::io(Path::new("temporary file"), e))?;
            let size = file.metadata().map_err(|e| ImageError::io(path, e))?.len();
            let counted = BufReader::new(
                crate::progress::current()
                    .bytes(format!("decompressing {}", path.display()), Some(size))
                    .reader(file),
            );
            let decoder = compression
                .decoder(counted)
                .map_err(|e| ImageError::io(path, e))?;
            let copied = std::io::copy(
                &mut decoder.take(limits.max_uncompressed + 1),
                spill.as_file_mut(),
            )
            .map_err(|e| {
                ImageError::Hostile(format!(
                    "{}: the {compression:?} stream is corrupt: {e}",
                    path.display()
                ))
            })?;
            if copied > limits.max_uncompressed {
                return Err(ImageError::Hostile(format!(
                    "{}: decompresses past the {}-byte limit",
                    path.display(),
                    limits.max_uncompressed
                )));
            }
            (spill.path().to_path_buf(), Some(spill))
        };
        let tar_file = File::open(&tar_path).map_err(|e| ImageError::io(&tar_path, e))?;
        // Read as Go's archive/tar frames it (skopeo and umoci untar the archive with it);
        // what they would read differently, or extract over itself, is refused.
        let mut archive = gotar::Reader::new(BufReader::new(tar_file));
        let mut members = HashMap::new();
        let mut seen = HashSet::new();
        let mut links: Vec<(String, String, String)> = Vec::new();
        let hostile = |what: String| ImageError::Hostile(format!("{}: {what}", path.display()));
        while let Some(h) = archive
            .next_entry()
            .map_err(|e| hostile(format!("the archive {e}")))?
        {
            let name = archive_member(&h.name)
                .map_err(|why| hostile(format!("member {:?} {why}", h.name)))?;
            if name.is_empty() {
                continue;
            }
            if !seen.insert(name.clone()) && h.typeflag != b'5' {
                return Err(hostile(format!(
                    "member {:?} appears twice (as {name}); an extracting reader keeps the last, so which one is meant is ambiguous",
                    h.name
                )));
            }
            match h.typeflag {
                b'0' => {
                    members.insert(name, (archive.position(), h.data_len()));
                }
                b'5' => {}
                // docker save and skopeo link a layer from its legacy directory to the blob.
                b'2' | b'1' => {
                    let dir = if h.typeflag == b'2' {
                        name.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                    } else {
                        String::new()
                    };
                    links.push((name, dir, h.linkname.clone()));
                }
                other => {
                    return Err(hostile(format!(
                        "member {:?} is a link or special file (tar type {:?}); an OCI archive holds only files and directories",
                        h.name, other as char
                    )));
                }
            }
        }
        // A link member reads as the member it names, resolved inside the archive (symlinks
        // from their directory, hardlinks from the root), as skopeo's docker-archive reader
        // does; one that leaves the archive or names no file is refused.
        for (name, dir, target) in &links {
            let mut at = (dir.clone(), target.clone());
            let mut found = None;
            for _ in 0..16 {
                if at.1.starts_with('/') {
                    break;
                }
                let joined = if at.0.is_empty() {
                    at.1.clone()
                } else {
                    format!("{}/{}", at.0, at.1)
                };
                let Some(resolved) = normalise_inside(&joined) else {
                    break;
                };
                if let Some(&m) = members.get(&resolved) {
                    found = Some(m);
                    break;
                }
                match links.iter().find(|(n, _, _)| *n == resolved) {
                    Some((_, d, t)) => at = (d.clone(), t.clone()),
                    None => break,
                }
            }
            let Some(m) = found else {
                return Err(hostile(format!(
                    "member {name:?} links to {target:?}, which is no file inside the archive"
                )));
            };
            members.insert(name.clone(), m);
        }
        Ok(TarIndex {
            path: tar_path,
            members,
            _spill: spill,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::narrow_index;

    /// Half a blob, then the connection resets.
    struct Cut(usize);

    impl std::io::Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_broken_stream_carries_and_records_its_network_failure() {
        use std::io::Read as _;
        let watch = super::NetworkWatch::default();
        let template = super::NetworkFailure {
            registry: "127.0.0.1:5000".into(),
            repository: "app".into(),
            what: "blob sha256:ab".into(),
            message: String::new(),
            hint: None,
        };
        let mut stream = super::Watched {
            inner: Cut(10),
            watch: watch.clone(),
            failure: template.clone(),
        };
        let mut sink = Vec::new();
        let e = stream.read_to_end(&mut sink).unwrap_err();
        assert_eq!(sink.len(), 10);
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        let carried = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<super::NetworkFailure>())
            .expect("the failure rides on the I/O error");
        let recorded = watch
            .failure()
            .expect("recorded for whoever opened the source");
        assert_eq!(carried, &recorded);
        assert_eq!(recorded.what, template.what);
        assert!(!recorded.message.is_empty());
        let error: crate::error::Error = recorded.into();
        assert_eq!(error.exit_code(), crate::error::exit::ENVIRONMENT);
        assert!(error.to_string().contains("127.0.0.1:5000"), "{error}");
    }

    const INDEX: &str = r#"{"schemaVersion":2,"manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,
         "annotations":{"org.opencontainers.image.ref.name":"1.2"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,
         "annotations":{"org.opencontainers.image.ref.name":"latest"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":1}]}"#;

    #[test]
    fn narrowing_keeps_only_the_named_entries() {
        let narrowed = narrow_index(INDEX.as_bytes(), "latest", "layout").unwrap();
        let value: serde_json::Value = serde_json::from_slice(&narrowed).unwrap();
        let digests: Vec<&str> = value["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, ["sha256:bb"]);
    }

    #[test]
    fn an_absent_name_lists_the_names_there_are() {
        let e = narrow_index(INDEX.as_bytes(), "2.0", "layout")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"2.0\"") && e.contains("1.2, latest"), "{e}");
    }
}
