//! `mab-verify demo --out DIR`: every platform's demo binary, an image of each, their
//! multi-arch archive and its reports, kept in DIR; a rerun replaces only a previous demo output.
//!
//! DIR's layout (the README's examples name these files):
//! - `bin/<platform>/multi-arch-demo`, `<platform>` being the OCI name with `-` for `/`
//!   (`linux-arm-v7`);
//! - `images/<platform>.tar`, a docker-archive of that binary with its loader and libraries;
//! - `multi-arch.oci.tar`, the OCI archive `assemble` makes of the images (tag `latest`);
//! - `audit.md`, `audit.json`, `junit.xml`: the verification of the binaries and the archive;
//! - `.mab-demo`, the marker listing what the demo wrote, so that a rerun knows what it may
//!   replace.
//!
//! Everything is built in a staging directory next to DIR and swapped in by renames only when
//! it is complete, so a failed build leaves the previous output as it was.

use super::image::write_image;
use super::{DEMO_NAME, build_hello, missing_toolchain};
use crate::check::{Expected, ExpectedSource};
use crate::error::{Error, Result};
use crate::pipeline::{Input, verify_inputs};
use crate::platform::{ARCHES, Arch, Platform};
use crate::report::{self, Report};
use crate::settings::Settings;
use std::path::{Path, PathBuf};

/// Where the demo writes when `--out` is not given.
pub const DEFAULT_DIR: &str = "mab-demo";
/// The marker file: its first line is [`MARKER_HEADER`], then one name per line of what the
/// demo wrote at DIR's top level.
pub const MARKER: &str = ".mab-demo";
const MARKER_HEADER: &str = "mab-verify demo output; `mab-verify demo` replaces these entries:";
pub const BIN_DIR: &str = "bin";
pub const IMAGES_DIR: &str = "images";
pub const ARCHIVE: &str = "multi-arch.oci.tar";
/// The archive's index is named this (`oci-archive:DIR/multi-arch.oci.tar:latest`).
pub const TAG: &str = "latest";
pub const AUDIT_MARKDOWN: &str = "audit.md";
pub const AUDIT_JSON: &str = "audit.json";
pub const AUDIT_JUNIT: &str = "junit.xml";
const ENTRIES: [&str; 6] = [
    BIN_DIR,
    IMAGES_DIR,
    ARCHIVE,
    AUDIT_MARKDOWN,
    AUDIT_JSON,
    AUDIT_JUNIT,
];

/// What a demo run built and what its verification found.
pub struct Outcome {
    /// DIR as given.
    pub dir: PathBuf,
    /// The platforms whose binary was built, in table order.
    pub built: Vec<Platform>,
    /// The report of the binaries and the archive (also written to DIR).
    pub report: Report,
    /// Platforms whose runs were skipped for want of an emulator.
    pub missing_emulators: Vec<String>,
    /// Why `assemble` refused the images, if it did (then the images were verified instead).
    pub assemble_refused: Option<String>,
}

/// `linux/arm/v7` as a file name: `linux-arm-v7`.
pub fn platform_file_name(platform: &Platform) -> String {
    platform.oci().replace('/', "-")
}

/// Build, wrap, assemble and verify into `dir` with the resolved `options`.
pub fn run(dir: &Path, options: &Settings) -> Result<Outcome> {
    let existing = existing(dir)?;
    let parent = parent_of(dir)?;
    std::fs::create_dir_all(&parent).map_err(|e| io("creating", &parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".mab-demo-new-")
        .tempdir_in(&parent)
        .map_err(|e| io("creating a staging directory in", &parent, e))?;
    let mtime = crate::settings::env::source_date_epoch()
        .ok()
        .flatten()
        .unwrap_or(0);

    let built = build_binaries(staging.path())?;
    let mut images = Vec::new();
    for (arch, binary) in &built {
        let platform = Platform::linux(arch);
        let image = image_path(staging.path(), &platform);
        eprintln!("demo: writing the {} image…", platform.oci());
        std::fs::create_dir_all(staging.path().join(IMAGES_DIR))
            .map_err(|e| io("creating", &staging.path().join(IMAGES_DIR), e))?;
        match write_image(arch, binary, &image, mtime) {
            Ok(()) => images.push(image),
            // The binary's own checks say what is wrong; the index then lacks the platform.
            Err(e) => eprintln!("demo: no image for {}: {e}", platform.oci()),
        }
    }
    let assemble_refused = assemble(&images, &staging.path().join(ARCHIVE), options, mtime)?;
    let marker = std::iter::once(MARKER_HEADER)
        .chain(ENTRIES)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let marker_path = staging.path().join(MARKER);
    std::fs::write(&marker_path, marker).map_err(|e| io("writing", &marker_path, e))?;
    replace(dir, &parent, staging, existing)?;

    // Verify the files where they now are, so the reports name the paths a user types.
    let mut inputs: Vec<Input> = built
        .iter()
        .map(|(arch, _)| Input {
            path: binary_path(dir, &Platform::linux(arch)),
            declared: Some(Expected {
                platform: Platform::linux(arch),
                source: ExpectedSource::BuildTarget {
                    target: arch.nix_system(),
                },
            }),
        })
        .collect();
    if assemble_refused.is_none() {
        inputs.push(Input {
            path: dir.join(ARCHIVE),
            declared: None,
        });
    } else {
        inputs.extend(images.iter().map(|i| Input {
            path: dir.join(IMAGES_DIR).join(i.file_name().unwrap_or_default()),
            declared: None,
        }));
    }
    let platforms: Vec<Platform> = built.iter().map(|(a, _)| Platform::linux(a)).collect();
    let mut options = options.clone();
    // The archive must hold every platform that was built (index.expected).
    options.expect_by_default(&platforms);
    eprintln!("demo: verifying {} and {} binaries…", ARCHIVE, built.len());
    let (artifacts, missing_emulators) = verify_inputs(&inputs, &options)?;
    let report = Report::new(vec![dir.display().to_string()], artifacts, options.strict);
    for (name, text) in [
        (AUDIT_MARKDOWN, report::markdown::render(&report)),
        (AUDIT_JSON, report::json::render(&report)),
        (AUDIT_JUNIT, report::junit::render(&report)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| io("writing", &path, e))?;
    }
    Ok(Outcome {
        dir: dir.to_path_buf(),
        built: platforms,
        report,
        missing_emulators,
        assemble_refused,
    })
}

impl Outcome {
    /// What to try next on the files the demo kept (printed after the report).
    pub fn next_steps(&self) -> String {
        let dir = self.dir.display();
        let mut out = format!(
            "demo: kept in {dir}/: {BIN_DIR}/ (one binary per platform), {IMAGES_DIR}/ (one image each), {ARCHIVE}, {AUDIT_MARKDOWN}, {AUDIT_JSON}, {AUDIT_JUNIT}\n"
        );
        if let Some(why) = &self.assemble_refused {
            out.push_str(&format!(
                "demo: assemble refused the images, so there is no {ARCHIVE}: {why}\n"
            ));
            return out;
        }
        // Prefer a foreign platform: it shows the emulator at work.
        let example = self
            .built
            .iter()
            .find(|p| !p.arch.is_host())
            .or(self.built.first());
        out.push_str("demo: try next (the README's examples use these files):\n");
        if let Some(p) = example {
            let name = platform_file_name(p);
            out.push_str(&format!(
                "  mab-verify {dir}/{IMAGES_DIR}/{name}.tar\n  mab-verify --platform {} {dir}/{ARCHIVE}\n",
                p.oci()
            ));
        }
        out.push_str(&format!(
            "  mab-verify assemble -o app.oci.tar {dir}/{IMAGES_DIR}/*.tar\n  mab-verify gate {dir}/{ARCHIVE} -- sh -c 'echo \"would publish $MAB_VERIFIED_DIGEST\"'\n"
        ));
        out
    }
}

/// What is at DIR now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Nothing,
    EmptyDir,
    PreviousDemo,
}

/// DIR may be absent, an empty directory, or a previous demo output holding nothing else.
fn existing(dir: &Path) -> Result<Existing> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(io("reading", dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(Error::input(
            dir,
            "is a symlink; give --out the directory itself (the demo replaces it by renames)",
        ));
    }
    if !meta.is_dir() {
        return Err(Error::input(
            dir,
            "is not a directory; give --out a new or empty directory",
        ));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io("listing", dir, e))? {
        let entry = entry.map_err(|e| io("listing", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(Existing::EmptyDir);
    }
    let marker = dir.join(MARKER);
    let listed = match std::fs::read_to_string(&marker) {
        Ok(text) if text.lines().next() == Some(MARKER_HEADER) => text,
        _ => {
            return Err(Error::input(
                dir,
                format!(
                    "is not empty and is not a previous `mab-verify demo` output (no {MARKER} marker), so the demo will not replace it; give --out a new or empty directory"
                ),
            ));
        }
    };
    let listed: Vec<&str> = listed.lines().skip(1).collect();
    names.sort();
    if let Some(stranger) = names
        .iter()
        .find(|n| n.as_str() != MARKER && !listed.contains(&n.as_str()))
    {
        return Err(Error::input(
            dir,
            format!(
                "holds {stranger}, which `mab-verify demo` did not write, so the demo will not replace the directory; move {stranger} away or give another --out"
            ),
        ));
    }
    Ok(Existing::PreviousDemo)
}

/// The directory DIR is created in (renames stay on one file system).
fn parent_of(dir: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(dir).map_err(|e| io("resolving", dir, e))?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(_)) => Ok(parent.to_path_buf()),
        _ => Err(Error::input(
            dir,
            "is not a directory name the demo can create or replace; give --out a path such as ./mab-demo",
        )),
    }
}

/// Swap the finished `staging` in at `dir`; the previous output is removed only after that.
fn replace(
    dir: &Path,
    parent: &Path,
    staging: tempfile::TempDir,
    existing: Existing,
) -> Result<()> {
    let staged = staging.keep();
    // A temporary directory is private (0700); the output is an ordinary directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("setting the mode of", &staged, e))?;
    let move_in = |staged: &Path| {
        std::fs::rename(staged, dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(staged);
            io("moving the demo output to", dir, e)
        })
    };
    if existing == Existing::Nothing {
        return move_in(&staged);
    }
    let trash = tempfile::Builder::new()
        .prefix(".mab-demo-old-")
        .tempdir_in(parent)
        .map_err(|e| io("creating a directory in", parent, e))?;
    let previous = trash.path().join("previous");
    std::fs::rename(dir, &previous).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        io("moving the previous demo output out of", dir, e)
    })?;
    if let Err(e) = move_in(&staged) {
        // Put the previous output back rather than leave nothing.
        let _ = std::fs::rename(&previous, dir);
        return Err(e);
    }
    // Dropping `trash` removes the previous output.
    drop(trash);
    Ok(())
}

/// Build the demo for every row whose toolchain is here, into `root/bin/<platform>/`.
fn build_binaries(root: &Path) -> Result<Vec<(&'static Arch, PathBuf)>> {
    let mut built = Vec::new();
    for arch in ARCHES {
        let platform = Platform::linux(arch);
        if let Some(why) = missing_toolchain(arch) {
            eprintln!("demo: skipping {}: {why}", platform.oci());
            continue;
        }
        eprintln!("demo: building for {}…", platform.oci());
        let out = binary_path(root, &platform);
        let dir = out.parent().expect("binary_path has a parent");
        match build_hello(arch, dir) {
            Ok(path) => built.push((arch, path)),
            Err(e) => eprintln!("demo: {} failed to build: {e}", platform.oci()),
        }
    }
    if built.is_empty() {
        return Err(Error::Environment {
            what: "no cross toolchain is installed, so there is nothing to build".into(),
            hint: "run ./scripts/setup (apt-get installs the toolchains and qemu-user)".into(),
        });
    }
    Ok(built)
}

/// Where DIR keeps the binary built for `platform`.
pub fn binary_path(dir: &Path, platform: &Platform) -> PathBuf {
    dir.join(BIN_DIR)
        .join(platform_file_name(platform))
        .join(DEMO_NAME)
}

/// Where DIR keeps the image of `platform`'s binary.
pub fn image_path(dir: &Path, platform: &Platform) -> PathBuf {
    dir.join(IMAGES_DIR)
        .join(format!("{}.tar", platform_file_name(platform)))
}

/// Assemble `images` into the OCI archive `out`. `Some(reason)` when assembly refused them.
fn assemble(
    images: &[PathBuf],
    out: &Path,
    options: &Settings,
    mtime: u64,
) -> Result<Option<String>> {
    use crate::assemble::{self, AssembleError, Request};
    if images.is_empty() {
        return Ok(Some("no image could be written".into()));
    }
    eprintln!("demo: assembling {} images into {ARCHIVE}…", images.len());
    let request = Request {
        inputs: images.to_vec(),
        output: out.to_path_buf(),
        layout: false,
        tag: Some(TAG.to_string()),
        compression: crate::image::Compression::Gzip,
        fix_config: false,
        mtime,
    };
    let parent = out.parent().unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".mab-demo-assemble-")
        .tempdir_in(parent)
        .map_err(|e| io("creating a directory in", parent, e))?;
    let refused = |e: AssembleError| match e {
        AssembleError::Refused(m) => Ok(Some(m)),
        AssembleError::Input(m) => Err(Error::input(out, m)),
    };
    let assembled = match assemble::assemble(&request, &options.limits, scratch.path(), None) {
        Ok(a) => a,
        Err(e) => return refused(e),
    };
    match assemble::finalize(&request, &assembled) {
        Ok(()) => Ok(None),
        Err(e) => refused(e),
    }
}

fn io(action: &str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{action} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(dir: &Path, extra: &[&str]) {
        let text: String = std::iter::once(MARKER_HEADER)
            .chain(ENTRIES)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join(MARKER), text).unwrap();
        for name in extra {
            std::fs::write(dir.join(name), "x").unwrap();
        }
    }

    #[test]
    fn only_new_empty_or_previous_outputs_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        assert_eq!(existing(&dir).unwrap(), Existing::Nothing);
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(existing(&dir).unwrap(), Existing::EmptyDir);
        marked(&dir, &[ARCHIVE, AUDIT_JSON]);
        assert_eq!(existing(&dir).unwrap(), Existing::PreviousDemo);
    }

    #[test]
    fn a_directory_with_other_files_is_refused_naming_them() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let e = existing(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("not a previous `mab-verify demo` output"), "{e}");
        marked(tmp.path(), &[]);
        let e = existing(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("holds notes.txt"), "{e}");
        std::fs::write(tmp.path().join(MARKER), "something else\nnotes.txt\n").unwrap();
        let e = existing(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("no .mab-demo marker"), "{e}");
    }

    #[test]
    fn files_and_symlinks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(existing(&file).is_err());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let e = existing(&link).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn a_replacement_keeps_nothing_of_the_previous_output() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        marked(&dir, &[AUDIT_JSON]);
        let staging = tempfile::tempdir_in(tmp.path()).unwrap();
        std::fs::write(staging.path().join(ARCHIVE), "new").unwrap();
        replace(&dir, tmp.path(), staging, Existing::PreviousDemo).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["out"]);
        let mut inside: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        inside.sort();
        assert_eq!(inside, [ARCHIVE]);
    }

    #[test]
    fn platform_file_names_have_no_slashes() {
        for arch in ARCHES {
            let name = platform_file_name(&Platform::linux(arch));
            assert!(!name.contains('/') && name.starts_with("linux-"), "{name}");
        }
    }
}
