//! `demo`: build the bundled hello for every platform with a toolchain here, then verify each.

use crate::check::{Expected, ExpectedSource};
use crate::cli::VerifyFlags;
use crate::discover::discover;
use crate::error::{Error, Result, exit};
use crate::pipeline::{self, print_report};
use crate::platform::{ARCHES, Platform};
use crate::report::{self, Report};
use crate::settings::Settings;
use std::path::PathBuf;

pub fn demo(out: Option<PathBuf>, flags: &VerifyFlags) -> Result<u8> {
    let options = Settings::resolve(flags)?;
    let temp;
    let out_dir = match out {
        Some(d) => d,
        None => {
            temp = tempfile::Builder::new()
                .prefix("mab-demo-")
                .tempdir()
                .map_err(|e| Error::Io {
                    context: "creating a temporary directory".into(),
                    source: e,
                })?;
            temp.path().to_path_buf()
        }
    };
    let mut targets = Vec::new();
    for arch in ARCHES {
        if let Some(why) = crate::demo::missing_toolchain(arch) {
            eprintln!("demo: skipping {}: {why}", Platform::linux(arch).oci());
            continue;
        }
        eprintln!("demo: building for {}…", Platform::linux(arch).oci());
        let dir = out_dir.join(arch.key());
        match crate::demo::build_hello(arch, &dir) {
            Ok(path) => {
                let mut found = discover(&path, false)?;
                for t in &mut found {
                    t.display = format!(
                        "{}/{}",
                        arch.key(),
                        path.file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default()
                    );
                }
                for t in &mut found {
                    // Each demo binary is held to the platform it was built for.
                    t.declared = Some(Expected {
                        platform: Platform::linux(arch),
                        source: ExpectedSource::BuildTarget {
                            target: arch.nix_system(),
                        },
                    });
                }
                targets.extend(found);
            }
            Err(e) => eprintln!("demo: {} failed to build: {e}", Platform::linux(arch).oci()),
        }
    }
    if targets.is_empty() {
        return Err(Error::Environment {
            what: "no cross toolchain is installed, so there is nothing to build".into(),
            hint: "run ./scripts/setup (apt-get installs the toolchains and qemu-user)".into(),
        });
    }
    let artifacts = pipeline::verify_binaries(vec![], targets, &options)
        .report
        .artifacts;
    let report = Report::new(
        vec![out_dir.display().to_string()],
        artifacts,
        options.strict,
    );
    print_report(&report, &options.output)?;
    Ok(match report.verdict {
        report::Verdict::Pass => exit::OK,
        report::Verdict::Fail => exit::CHECK_FAILED,
    })
}
