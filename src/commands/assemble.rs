//! `assemble`: stage a multi-arch OCI archive or layout, verify what was staged, then move it into place.

use crate::cli::VerifyFlags;
use crate::error::{Error, Result, exit};
use crate::pipeline::{self, print_report, progress};
use crate::report::{self, Report};
use crate::settings::Settings;
use std::path::PathBuf;

/// `assemble`: stage next to the output, verify what was staged with the full image checks,
/// and only then move it into place.
/// What to assemble, as the command line says it.
pub struct Layout {
    pub output: PathBuf,
    pub layout: bool,
    pub tag: Option<String>,
    pub compression: crate::cli::LayerCompression,
    pub fix_config: bool,
    pub inputs: Vec<PathBuf>,
}

pub fn assemble(what: Layout, flags: &VerifyFlags) -> Result<u8> {
    use crate::assemble::AssembleError;
    let options = &Settings::resolve(flags)?;
    let request = &crate::assemble::Request {
        inputs: what.inputs,
        output: what.output,
        layout: what.layout,
        tag: what.tag,
        compression: match what.compression {
            crate::cli::LayerCompression::Gzip => crate::image::Compression::Gzip,
            crate::cli::LayerCompression::Zstd => crate::image::Compression::Zstd,
            crate::cli::LayerCompression::None => crate::image::Compression::None,
        },
        fix_config: what.fix_config,
        mtime: options.source_date_epoch.unwrap_or(0),
    };
    let parent = match request.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if request.output.exists() {
        return Err(Error::input(
            &request.output,
            "already exists; remove it or choose another -o",
        ));
    }
    let staging = tempfile::Builder::new()
        .prefix(".mab-assemble-")
        .tempdir_in(&parent)
        .map_err(|e| Error::Io {
            context: format!("creating a staging directory in {}", parent.display()),
            source: e,
        })?;
    progress(&format!("assembling {} images…", request.inputs.len()));
    let cache = pipeline::open_cache(options);
    let assembled =
        match crate::assemble::assemble(request, &options.limits, staging.path(), cache.as_ref()) {
            Ok(a) => a,
            Err(AssembleError::Input(m)) => return Err(Error::Assemble(m)),
            Err(AssembleError::Refused(m)) => return Err(Error::AssembleRefused(m)),
        };
    // Verify exactly what will be published, before it is.
    let spill = if options.no_run {
        None
    } else {
        Some(
            tempfile::Builder::new()
                .prefix("mab-spill-")
                .tempdir()
                .map_err(|e| Error::Io {
                    context: "creating a temporary directory".into(),
                    source: e,
                })?,
        )
    };
    let staged = &assembled.staged_layout;
    let bad = |e: crate::image::ImageError| Error::input(staged, e.to_string());
    let (source, format) = crate::image::detect(staged, &options.limits)
        .map_err(bad)?
        .ok_or_else(|| Error::input(staged, "the staged output is not an OCI layout"))?;
    let mut read = crate::image::ReadOptions {
        limits: &options.limits,
        spill: spill.as_ref().map(|d| d.path()),
        tee: None,
        cache: cache.as_ref(),
    };
    let set = crate::image::read(staged, source, format, &mut read).map_err(bad)?;
    let mut artifacts = pipeline::verify_set(&set, options, spill.as_ref().map(|d| d.path()));
    let shown = request.output.display().to_string();
    for a in &mut artifacts {
        a.path = a.path.replacen(&staged.display().to_string(), &shown, 1);
        a.resolved_path = shown.clone();
    }
    let report = Report::new(vec![shown.clone()], artifacts, options.strict);
    print_report(&report, &options.output)?;
    if report.verdict == report::Verdict::Fail {
        return Err(Error::NotVerified {
            path: request.output.clone(),
            consequence: "the assembled image was not written".into(),
        });
    }
    crate::assemble::finalize(request, &assembled).map_err(|e| Error::Assemble(e.to_string()))?;
    let platforms: Vec<String> = assembled
        .platforms
        .iter()
        .map(|p| match &p.fixed_config {
            Some(fix) => format!("{} (config fixed: {fix})", p.platform.oci()),
            None => p.platform.oci(),
        })
        .collect();
    eprintln!(
        "wrote {shown}: index {} for {}",
        assembled.index_digest,
        platforms.join(", ")
    );
    Ok(exit::OK)
}
