//! `push ARTIFACT REF`: verify, then upload exactly the verified bytes and check the registry's copy.

use crate::cli::VerifyFlags;
use crate::error::{Error, Result, exit};
use crate::image::reference::{RemoteSettings, first_line, hint_of};
use crate::pipeline::fingerprint::{fingerprint, unchanged_since};
use crate::pipeline::progress;
use crate::pipeline::verify_one_to;
use crate::report::Verdict;
use crate::settings::Settings;
use std::path::Path;

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
    remote: &RemoteSettings,
    remote_plain_http: bool,
    flags: &VerifyFlags,
    attach_attestation: bool,
) -> Result<u8> {
    use crate::publish::{auth, registry};
    let plain_http = remote.plain_http;
    let options = Settings::resolve(flags)?;
    let target: registry::Reference = reference
        .parse()
        .map_err(|e| Error::Registry(Box::new(e)))?;
    if plain_http && !registry::is_loopback(&target.registry) && !remote_plain_http {
        return Err(Error::Usage(format!(
            "--plain-http sends images (and any credentials) unencrypted; {} is not on this machine. Add --allow-remote-plain-http if that is really wanted",
            target.registry
        )));
    }
    let credentials = auth::resolve_credentials(&target.registry, remote.creds.as_deref())
        .map_err(|e| Error::Registry(Box::new(e)))?;
    let before = fingerprint(artifact)?;
    let report = verify_one_to(artifact, &options, Some(reference))?;
    if report.verdict == Verdict::Fail {
        return Err(Error::NotVerified {
            path: artifact.to_path_buf(),
            consequence: "nothing was pushed".into(),
        });
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
    unchanged_since(artifact, &before, "nothing was pushed")?;
    let (root, media_type) = push_root(&layout)?;
    let opts = registry::PushOptions {
        plain_http,
        credentials,
        timeouts: registry::Timeouts::from_env().map_err(Error::Usage)?,
        tls: remote.tls(),
        jobs: options.jobs,
        ..Default::default()
    };
    match registry::push_layout(&layout, &root, &media_type, &target, &opts, &mut |line| {
        progress(line)
    }) {
        Ok(outcome) => {
            eprintln!(
                "pushed {target}: {} blobs uploaded, {} already there, {} manifests; the registry serves {} = the verified digest",
                outcome.pushed_blobs,
                outcome.skipped_blobs,
                outcome.manifests,
                outcome.fetched_digest
            );
            if attach_attestation {
                attach(
                    &report,
                    &options,
                    &layout,
                    (&root, &media_type),
                    &target,
                    &opts,
                )?;
            }
            Ok(exit::OK)
        }
        Err(
            e @ (registry::PushError::DigestChanged { .. }
            | registry::PushError::BlobChanged { .. }),
        ) => Err(Error::RegistryChanged(Box::new(e))),
        Err(e) if e.status().is_some_and(|s| s == 401 || s == 403) => {
            Err(Error::Registry(Box::new(e)))
        }
        Err(e @ registry::PushError::Tls { .. }) => Err(Error::Registry(Box::new(e))),
        // The client's own hint (a TLS failure names --cert-dir and --tls-verify) is kept.
        Err(e @ registry::PushError::Transport { .. }) => Err(Error::Environment {
            what: first_line(&e),
            hint: hint_of(&e),
        }),
        Err(e) => Err(Error::Environment {
            what: e.to_string(),
            hint: "check that the registry is reachable and try again".into(),
        }),
    }
}

/// `--attach-attestation`: the audit's statement as a referrer of the root just pushed.
fn attach(
    report: &crate::report::Report,
    options: &Settings,
    layout: &Path,
    (root, media_type): (&str, &str),
    target: &crate::publish::registry::Reference,
    opts: &crate::publish::registry::PushOptions,
) -> Result<()> {
    let hex = root.trim_start_matches("sha256:");
    let size = std::fs::metadata(layout.join("blobs/sha256").join(hex))
        .or_else(|_| std::fs::metadata(layout.join("index.json")))
        .map(|m| m.len())
        .map_err(|e| Error::input(layout, e.to_string()))?;
    let statement = crate::report::attestation::render(report, &options.output.policy);
    let attached = crate::publish::referrer::attach(
        statement.as_bytes(),
        (root, media_type, size),
        target,
        opts,
        &mut |line| progress(line),
    )
    .map_err(|e| Error::Environment {
        what: format!("the attestation was not attached: {e}"),
        hint: "the image itself was pushed; retry with --attach-attestation".into(),
    })?;
    eprintln!(
        "attached the attestation {} to {root} as a referrer (tag {})",
        attached.manifest, attached.tag
    );
    Ok(())
}
