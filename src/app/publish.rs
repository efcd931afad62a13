//! `gate` and `push`: nothing unverified is published, and exactly the verified bytes are.

use super::{Input, Options, print_report, verify_inputs};
use crate::cli::VerifyArgs;
use crate::error::{Error, Result, exit};
use crate::report::{Report, Verdict};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// A digest of the artifact's bytes: the file, or every file of a directory with its path.
pub(crate) fn fingerprint(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| Error::input(path, e.to_string());
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, path, &mut files).map_err(io)?;
        files.sort();
        for rel in files {
            hasher.update(rel.as_bytes());
            hasher.update([0]);
            hash_file(&path.join(&rel), &mut hasher).map_err(io)?;
        }
    } else {
        hash_file(path, &mut hasher).map_err(io)?;
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &p, out)?;
        } else {
            out.push(
                p.strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(())
}

fn hash_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// The digest a registry will know the artifact by: the one manifest or index `index.json`
/// names, else the bytes' fingerprint (docker-archives, binaries).
pub(crate) fn root_digest(path: &Path, options: &Options) -> Result<String> {
    if let Ok(Some((source, _))) = crate::image::detect(path, &options.limits)
        && let Ok(Some(bytes)) =
            source.read_doc("index.json", "index.json", options.limits.max_json)
        && let Ok(index) =
            crate::image::docs::parse::<crate::image::docs::Index>(&bytes, "index.json")
        && let [only] = index.manifests.as_slice()
    {
        return Ok(only.digest.clone());
    }
    fingerprint(path)
}

/// Verify one artifact as `mab-verify PATH` would and print its report.
fn verify_one(artifact: &Path, options: &Options, args: &VerifyArgs) -> Result<Report> {
    let input = Input {
        path: artifact.to_path_buf(),
        declared: None,
    };
    let (artifacts, _) = verify_inputs(&[input], options)?;
    let report = Report::new(
        vec![artifact.display().to_string()],
        artifacts,
        options.strict,
    );
    print_report(&report, args);
    Ok(report)
}

/// Verify, then run the command only on a pass, with the verified digest, the report and the
/// platforms in its environment, refusing if the artifact changed in between.
pub fn gate(artifact: &Path, command: &[String], args: &VerifyArgs) -> Result<u8> {
    let options = Options::from_args(args)?;
    let Some((program, rest)) = command.split_first() else {
        return Err(Error::Usage(
            "gate needs a command after --: mab-verify gate ARTIFACT -- CMD ARGS…".into(),
        ));
    };
    let before = fingerprint(artifact)?;
    let report = verify_one(artifact, &options, args)?;
    if report.verdict == Verdict::Fail {
        eprintln!(
            "mab-verify gate: {} did not verify; not running {program}",
            artifact.display()
        );
        return Ok(exit::CHECK_FAILED);
    }
    let report_file = tempfile::Builder::new()
        .prefix("mab-report-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Error::Io {
            context: "writing the report for the gated command".into(),
            source: e,
        })?;
    std::fs::write(report_file.path(), crate::report::json::render(&report)).map_err(|e| {
        Error::Io {
            context: "writing the report for the gated command".into(),
            source: e,
        }
    })?;
    let digest = root_digest(artifact, &options)?;
    let mut platforms: Vec<String> = report
        .artifacts
        .iter()
        .filter_map(|a| a.platform.clone())
        .collect();
    platforms.sort();
    platforms.dedup();
    // The bytes the command publishes must be the bytes that were verified.
    let after = fingerprint(artifact)?;
    if after != before {
        eprintln!(
            "mab-verify gate: {} changed after it was verified ({before} → {after}); refusing to run {program}. Verify and publish the same file, with nothing writing to it in between.",
            artifact.display()
        );
        return Ok(exit::CHECK_FAILED);
    }
    // A private, read-only copy of exactly the verified bytes, for commands that can take a
    // path: nothing else can write it, whatever happens to the original.
    let (copy_dir, verified) =
        crate::publish::place::verified_copy(artifact, &before, fingerprint)?;
    // Checked again right before the command: the original is what was verified.
    let last = fingerprint(artifact)?;
    if last != before {
        eprintln!(
            "mab-verify gate: {} changed after it was verified ({before} → {last}); refusing to run {program}.",
            artifact.display()
        );
        return Ok(exit::CHECK_FAILED);
    }
    let mut gated = std::process::Command::new(program);
    match crate::run::guard::caller_tmpdir() {
        Some(t) => gated.env("TMPDIR", t),
        None => gated.env_remove("TMPDIR"),
    };
    let status = gated
        .args(rest)
        .env("MAB_VERIFIED_PATH", &verified)
        .env("MAB_VERIFIED_DIGEST", &digest)
        .env("MAB_REPORT", report_file.path())
        .env("MAB_PLATFORMS", platforms.join(","))
        .status()
        .map_err(|e| Error::Usage(format!("gate: cannot run {program}: {e}")));
    crate::publish::place::release(copy_dir.path());
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => exit::CHECK_FAILED,
    })
}

/// The root a registry stores for this layout: the one descriptor `index.json` lists, or
/// `index.json` itself when it lists several.
fn push_root(layout: &Path) -> Result<(String, String)> {
    let bytes = std::fs::read(layout.join("index.json"))
        .map_err(|e| Error::input(layout, format!("index.json: {e}")))?;
    let index: crate::image::docs::Index =
        crate::image::docs::parse(&bytes, "index.json").map_err(|e| Error::input(layout, e))?;
    Ok(match index.manifests.as_slice() {
        [only] => (only.digest.clone(), only.media_type.clone()),
        _ => (
            format!("sha256:{}", crate::inspect::sha256_hex(&bytes)),
            crate::image::docs::OCI_INDEX.to_string(),
        ),
    })
}

/// Verify, then upload the verified blobs, manifests and index, and check the registry's copy.
pub fn push(
    artifact: &Path,
    reference: &str,
    creds: Option<&str>,
    plain_http: bool,
    remote_plain_http: bool,
    args: &VerifyArgs,
) -> Result<u8> {
    use crate::publish::{auth, registry};
    let options = Options::from_args(args)?;
    let target: registry::Reference = reference
        .parse()
        .map_err(|e: registry::PushError| Error::Usage(e.to_string()))?;
    if plain_http && !registry::is_loopback(&target.registry) && !remote_plain_http {
        return Err(Error::Usage(format!(
            "--plain-http sends images (and any credentials) unencrypted; {} is not on this machine. Add --allow-remote-plain-http if that is really wanted",
            target.registry
        )));
    }
    let credentials = auth::resolve_credentials(&target.registry, creds)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let before = fingerprint(artifact)?;
    let report = verify_one(artifact, &options, args)?;
    if report.verdict == Verdict::Fail {
        eprintln!(
            "mab-verify push: {} did not verify; nothing was pushed",
            artifact.display()
        );
        return Ok(exit::CHECK_FAILED);
    }
    // An archive is unpacked privately; a layout is pushed in place.
    let unpacked;
    let layout = if artifact.is_dir() {
        artifact.to_path_buf()
    } else {
        let bad = |e: crate::image::ImageError| Error::input(artifact, e.to_string());
        match crate::image::detect(artifact, &options.limits).map_err(bad)? {
            Some((_, crate::image::Format::OciArchive)) => {}
            _ => {
                return Err(Error::input(
                    artifact,
                    "push takes an OCI archive or layout; make one with mab-verify assemble -o app.oci.tar IMAGES…",
                ));
            }
        }
        unpacked = tempfile::Builder::new()
            .prefix("mab-push-")
            .tempdir()
            .map_err(|e| Error::Io {
                context: "creating a temporary directory".into(),
                source: e,
            })?;
        let file =
            std::fs::File::open(artifact).map_err(|e| Error::input(artifact, e.to_string()))?;
        tar::Archive::new(std::io::BufReader::new(file))
            .unpack(unpacked.path())
            .map_err(|e| Error::input(artifact, format!("cannot unpack: {e}")))?;
        unpacked.path().to_path_buf()
    };
    let after = fingerprint(artifact)?;
    if after != before {
        eprintln!(
            "mab-verify push: {} changed after it was verified ({before} → {after}); nothing was pushed",
            artifact.display()
        );
        return Ok(exit::CHECK_FAILED);
    }
    let (root, media_type) = push_root(&layout)?;
    let opts = registry::PushOptions {
        plain_http,
        credentials,
        timeouts: registry::Timeouts::from_env().map_err(Error::Usage)?,
        ..Default::default()
    };
    match registry::push_layout(&layout, &root, &media_type, &target, &opts, &mut |line| {
        super::progress(line)
    }) {
        Ok(outcome) => {
            eprintln!(
                "pushed {target}: {} blobs uploaded, {} already there, {} manifests; the registry serves {} = the verified digest",
                outcome.pushed_blobs,
                outcome.skipped_blobs,
                outcome.manifests,
                outcome.fetched_digest
            );
            Ok(exit::OK)
        }
        Err(
            e @ (registry::PushError::DigestChanged { .. }
            | registry::PushError::BlobChanged { .. }),
        ) => {
            eprintln!("mab-verify push: {e}");
            Ok(exit::CHECK_FAILED)
        }
        Err(e) if e.status().is_some_and(|s| s == 401 || s == 403) => {
            Err(Error::Usage(e.to_string()))
        }
        Err(e) => Err(Error::Environment {
            what: e.to_string(),
            hint: "check that the registry is reachable and try again".into(),
        }),
    }
}
