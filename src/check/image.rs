//! The `blob.*`, `layer.diff-id`, `image.*` and `index.*` checks: pure functions from an
//! image's facts to results.

use super::{CheckResult, ids};
use crate::image::docs::{self, PlatformDoc};
use crate::image::{BlobFacts, ImageFacts, IndexEntry};
use crate::inspect::BinaryFacts;
use crate::platform::Platform;

/// An image's platform as its config or an index entry writes it, through the table.
pub fn declared(doc: &PlatformDoc) -> Option<Platform> {
    Platform::parse(&doc.text()).ok()
}

/// Every blob's digest (`blob.digest`, missing blobs included) and size (`blob.size`).
pub fn blobs(blobs: &[BlobFacts]) -> Vec<CheckResult> {
    let mut digest_problems = Vec::new();
    let mut size_problems = Vec::new();
    for b in blobs {
        let name = b.declared_digest.clone().unwrap_or_else(|| b.role.clone());
        match (&b.actual_digest, &b.declared_digest) {
            (None, _) => digest_problems.push((
                format!(
                    "{} {name} is missing (referenced by {})",
                    b.role, b.referenced_by
                ),
                name.clone(),
            )),
            (Some(actual), Some(declared)) if actual != declared => digest_problems.push((
                format!(
                    "{} {declared} hashes to {actual} (referenced by {}){}",
                    b.role,
                    b.referenced_by,
                    b.note
                        .as_ref()
                        .map(|n| format!(", and is not readable as a layer: {n}"))
                        .unwrap_or_default()
                ),
                declared.clone(),
            )),
            _ => {}
        }
        if let (Some(actual), Some(declared)) = (b.actual_size, b.declared_size)
            && actual != declared
        {
            size_problems.push((
                format!(
                    "{} {name} is {actual} bytes, its descriptor says {declared}",
                    b.role
                ),
                name.clone(),
            ));
        }
    }
    let checked = blobs.iter().filter(|b| b.actual_digest.is_some()).count();
    let digest = if digest_problems.is_empty() {
        CheckResult::pass(
            ids::BLOB_DIGEST,
            format!("{checked} blobs match their digests"),
        )
    } else {
        let (msgs, at): (Vec<_>, Vec<_>) = digest_problems.into_iter().unzip();
        CheckResult::fail(ids::BLOB_DIGEST, msgs.join("; "))
            .expected("every referenced blob present, with the sha256 its descriptor names")
            .found(format!("{} blobs missing or altered", msgs.len()))
            .at(at.join(", "))
            .hint("the archive was altered or copied incompletely: rebuild or re-export it (skopeo copy, nix build) rather than editing it")
    };
    let sized = blobs
        .iter()
        .filter(|b| b.actual_size.is_some() && b.declared_size.is_some())
        .count();
    let size = if size_problems.is_empty() {
        CheckResult::pass(ids::BLOB_SIZE, format!("{sized} blobs match their sizes"))
    } else {
        let (msgs, at): (Vec<_>, Vec<_>) = size_problems.into_iter().unzip();
        CheckResult::fail(ids::BLOB_SIZE, msgs.join("; "))
            .expected("each blob's length equals its descriptor's size")
            .found(format!("{} sizes differ", msgs.len()))
            .at(at.join(", "))
            .hint("a registry rejects a descriptor whose size lies; regenerate the manifest from the blobs")
    };
    vec![digest, size]
}

/// `layer.diff-id`: config `rootfs.diff_ids` against the digests of the uncompressed layers.
pub fn diff_ids(image: &ImageFacts) -> CheckResult {
    let declared = image.config.diff_ids();
    let mut problems = Vec::new();
    if declared.len() != image.layers.len() {
        problems.push(format!(
            "the config lists {} diff_ids for {} layers",
            declared.len(),
            image.layers.len()
        ));
    }
    for (i, l) in image.layers.iter().enumerate() {
        match (&l.diff_id, &l.declared_diff_id) {
            (Some(actual), Some(want)) if actual != want => problems.push(format!(
                "layer {} ({}) uncompresses to {actual}, the config says {want}",
                i + 1,
                l.digest
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        CheckResult::pass(
            ids::LAYER_DIFF_ID,
            format!("{} diff_ids match", image.layers.len()),
        )
    } else {
        CheckResult::fail(ids::LAYER_DIFF_ID, problems.join("; "))
            .expected("rootfs.diff_ids = sha256 of each uncompressed layer, in order")
            .found(format!("{} mismatches", problems.len()))
            .at(format!("config {}", image.config_digest))
            .hint("the config does not describe these layers: rebuild the image instead of swapping layers or configs")
    }
}

/// What the image's binaries say its platform is: the entrypoint when it is a binary, else
/// the platform most of its executables share.
pub fn truth(entrypoint: Option<&BinaryFacts>, image: &ImageFacts) -> Option<Platform> {
    if let Some(p) = entrypoint.and_then(|f| f.platform()) {
        return Some(p);
    }
    let mut counts: Vec<(Platform, usize)> = Vec::new();
    for (_, f) in image.view.executables() {
        let Some(p) = f.platform() else { continue };
        match counts
            .iter_mut()
            .find(|(q, _)| q.arch == p.arch && q.os == p.os)
        {
            Some((_, n)) => *n += 1,
            None => counts.push((p, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(p, _)| p)
}

/// Does a binary run on `platform`? ELF through the table's ABI rules, others by machine.
fn runs_on(facts: &BinaryFacts, platform: &Platform) -> bool {
    match facts.elf() {
        Some(e) => {
            platform.os == crate::platform::Os::Linux
                && platform
                    .arch
                    .accepts(e.machine, e.class, e.byte_order, &e.abi)
        }
        None => facts
            .platform()
            .is_some_and(|p| p.arch == platform.arch && p.os == platform.os),
    }
}

/// `image.config-platform`: the config's os/architecture/variant against the entrypoint's ELF.
pub fn config_platform(
    image: &ImageFacts,
    entrypoint_path: Option<&str>,
    entrypoint: Option<&BinaryFacts>,
) -> CheckResult {
    let doc = image.config.platform();
    let Some(claimed) = declared(&doc) else {
        return CheckResult::fail(
            ids::IMAGE_CONFIG_PLATFORM,
            format!(
                "the config's platform {:?} is not one mab-verify knows",
                doc.text()
            ),
        )
        .expected("os/architecture/variant of a platform in `mab-verify platforms`")
        .found(doc.text())
        .at(format!("config {}", image.config_digest))
        .hint("set architecture (and variant for arm) in the image config");
    };
    let (subject, facts) = match (entrypoint_path, entrypoint) {
        (Some(p), Some(f)) if f.elf().is_some() || f.platform().is_some() => {
            (format!("entrypoint {p}"), Some(f))
        }
        _ => ("its binaries".to_string(), None),
    };
    let truth_platform = truth(entrypoint, image);
    let fits = match facts {
        Some(f) => runs_on(f, &claimed),
        None => match truth_platform {
            Some(t) => t.arch == claimed.arch || claimed.arch.same_machine(t.arch),
            None => {
                return CheckResult::skip(
                    ids::IMAGE_CONFIG_PLATFORM,
                    "no binary in the image to compare the config with",
                );
            }
        },
    };
    let found = truth_platform.map_or_else(|| "no known platform".to_string(), |p| p.oci());
    if let Some(r) = omitted_variant(image, &doc, &claimed, truth_platform, &subject) {
        return r;
    }
    if fits {
        CheckResult::pass(
            ids::IMAGE_CONFIG_PLATFORM,
            format!("config says {}, {subject} is {found}", claimed.oci()),
        )
    } else {
        CheckResult::fail(ids::IMAGE_CONFIG_PLATFORM, format!("config says {} but {subject} is {found}", claimed.oci()))
            .expected(format!("{subject} built for {}", claimed.oci()))
            .found(found.clone())
            .at(format!("config {} of manifest {}", image.config_digest, image.manifest_digest))
            .hint(format!(
                "either the image packs the wrong build (rebuild it for {}), or its config lies (mab-verify assemble --fix-config sets it to {found})",
                claimed.oci()
            ))
    }
}

/// A config that names a variant-carrying architecture without the variant (nixpkgs
/// dockerTools writes `arm` and no variant): runtimes read it as the table's default row
/// (`linux/arm/v7`). Binaries of that row: a warning to add the variant; binaries of another
/// row of the same machine (ARMv6, ARMv5): a failure, as devices would pick the wrong image.
fn omitted_variant(
    image: &ImageFacts,
    doc: &PlatformDoc,
    claimed: &Platform,
    truth: Option<Platform>,
    subject: &str,
) -> Option<CheckResult> {
    let wanted = claimed.arch.oci_variant?;
    if doc.variant.as_deref().is_some_and(|v| !v.is_empty()) || claimed.level.is_some() {
        return None;
    }
    let truth = truth?;
    let at = format!("config {}", image.config_digest);
    if truth.arch == claimed.arch {
        return Some(
            CheckResult::warn(
                ids::IMAGE_CONFIG_PLATFORM,
                format!(
                    "config says {} with no variant, read as {}; {subject} is {}: add variant {wanted}",
                    doc.text(),
                    claimed.oci(),
                    truth.oci()
                ),
            )
            .expected(format!("variant {wanted} in the config"))
            .found(format!("{} (no variant)", doc.text()))
            .at(at)
            .hint(format!(
                "set \"variant\": \"{wanted}\" in the config (mab-verify assemble writes the variant from the binaries)"
            )),
        );
    }
    if !truth.arch.same_machine(claimed.arch) {
        return None;
    }
    let should = truth.arch.oci_variant.unwrap_or("");
    Some(
        CheckResult::fail(
            ids::IMAGE_CONFIG_PLATFORM,
            format!(
                "config says {} with no variant, which runtimes read as {}, but {subject} is {}",
                doc.text(),
                claimed.oci(),
                truth.oci()
            ),
        )
        .expected(format!("variant {should} for {}", truth.oci()))
        .found(format!("{} (no variant, read as {})", doc.text(), claimed.oci()))
        .at(at)
        .hint(format!(
            "set \"variant\": \"{should}\" in the config and the index entry (mab-verify assemble --fix-config writes it from the binaries); a {} device would otherwise pull this image",
            claimed.oci()
        )),
    )
}

/// `image.binaries`: every executable binary in the final rootfs runs on the image's platform.
/// Returns the outliers as `(path, platform)` for reports.
pub fn binaries(
    image: &ImageFacts,
    platform: Option<Platform>,
) -> (CheckResult, Vec<(String, String)>) {
    let Some(platform) = platform else {
        return (
            CheckResult::skip(ids::IMAGE_BINARIES, "the image's platform is unknown"),
            Vec::new(),
        );
    };
    let mut total = 0;
    let mut outliers = Vec::new();
    for (path, f) in image.view.executables() {
        total += 1;
        if !runs_on(&f, &platform) {
            let what = f
                .platform()
                .map_or_else(|| f.kind().to_string(), |p| p.oci());
            outliers.push((path.clone(), what));
        }
    }
    if outliers.is_empty() {
        return (
            CheckResult::pass(
                ids::IMAGE_BINARIES,
                format!("{total} executables, all {}", platform.oci()),
            ),
            outliers,
        );
    }
    let listed: Vec<String> = outliers
        .iter()
        .take(10)
        .map(|(p, w)| format!("{p} ({w})"))
        .collect();
    let more = if outliers.len() > 10 {
        format!(" and {} more", outliers.len() - 10)
    } else {
        String::new()
    };
    let result = CheckResult::fail(ids::IMAGE_BINARIES, format!("{} of {total} executables are not {}", outliers.len(), platform.oci()))
        .expected(format!("every executable built for {}", platform.oci()))
        .found(format!("{}{more}", listed.join(", ")))
        .at(format!("manifest {}", image.manifest_digest))
        .hint("a layer from another platform's build was packed in: check which derivation or stage produced these files");
    (result, outliers)
}

/// `index.platform`: what the index entry claims against the config and the binaries.
pub fn index_platform(image: &ImageFacts, truth: Option<Platform>) -> Option<CheckResult> {
    let entry = image.index_platform.as_ref()?;
    let at = format!("index entry {}", image.manifest_digest);
    let Some(listed) = declared(entry) else {
        return Some(
            CheckResult::fail(ids::INDEX_PLATFORM, format!("index entry platform {:?} is not one mab-verify knows", entry.text()))
                .found(entry.text())
                .at(at)
                .hint("write os/architecture/variant as the OCI image index spec does: linux/arm64, linux/arm/v7"),
        );
    };
    let config = declared(&image.config.platform());
    let mut problems = Vec::new();
    if config.is_some_and(|c| c.arch != listed.arch || c.os != listed.os) {
        problems.push(format!(
            "its config says {}",
            config.map(|c| c.oci()).unwrap_or_default()
        ));
    }
    if let Some(t) = truth
        && t.arch != listed.arch
        && !(t.arch.same_machine(listed.arch)
            && listed.arch.abi.mismatch(&abi_of(image, t)).is_none())
    {
        problems.push(format!("its binaries are {}", t.oci()));
    }
    Some(if problems.is_empty() {
        CheckResult::pass(
            ids::INDEX_PLATFORM,
            format!("listed as {}, matching config and binaries", listed.oci()),
        )
    } else {
        CheckResult::fail(ids::INDEX_PLATFORM, format!("listed as {} but {}", listed.oci(), problems.join(" and ")))
            .expected(format!("config and binaries of {}", listed.oci()))
            .found(problems.join("; "))
            .at(at)
            .hint("the index points this platform at another platform's image: rebuild the index from the per-platform images (mab-verify assemble)")
    })
}

/// The ABI of the executables that decided `truth`, for arm-family comparisons.
fn abi_of(image: &ImageFacts, truth: Platform) -> crate::platform::ObservedAbi {
    image
        .view
        .executables()
        .find_map(|(_, f)| {
            f.elf()
                .filter(|e| e.platform().is_some_and(|p| p.arch == truth.arch))
                .map(|e| e.abi)
        })
        .unwrap_or(crate::platform::ObservedAbi::None)
}

/// `index.duplicate`: no platform listed twice.
pub fn duplicates(entries: &[IndexEntry]) -> CheckResult {
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut dups = Vec::new();
    for e in entries {
        let Some(doc) = &e.platform else { continue };
        let key = declared(doc).map_or_else(|| doc.text(), |p| p.oci());
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            dups.push(format!("{key} ({first} and {})", e.digest));
        } else {
            seen.push((key, &e.digest));
        }
    }
    if dups.is_empty() {
        CheckResult::pass(
            ids::INDEX_DUPLICATE,
            format!("{} platforms, none twice", seen.len()),
        )
    } else {
        CheckResult::fail(
            ids::INDEX_DUPLICATE,
            format!("listed twice: {}", dups.join(", ")),
        )
        .expected("each platform once")
        .found(dups.join(", "))
        .hint("a client picks one of them at random: drop the stale entry")
    }
}

/// `index.expected`: every expected platform present, nothing else unless extras are allowed.
pub fn expected(
    present: &[Platform],
    expected: &[super::Expected],
    allow_extra: bool,
) -> CheckResult {
    let expected: Vec<Platform> = expected.iter().map(|e| e.platform).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|e| !present.iter().any(|p| p.arch == e.arch && p.os == e.os))
        .map(|p| p.oci())
        .collect();
    let extra: Vec<String> = present
        .iter()
        .filter(|p| !expected.iter().any(|e| p.arch == e.arch && p.os == e.os))
        .map(|p| p.oci())
        .collect();
    let present_text: Vec<String> = present.iter().map(|p| p.oci()).collect();
    if missing.is_empty() && (allow_extra || extra.is_empty()) {
        return CheckResult::pass(
            ids::INDEX_EXPECTED,
            format!("all {} expected platforms present", expected.len()),
        );
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!("missing {}", missing.join(", ")));
    }
    if !allow_extra && !extra.is_empty() {
        why.push(format!("unexpected {}", extra.join(", ")));
    }
    CheckResult::fail(ids::INDEX_EXPECTED, why.join("; "))
        .expected(expected.iter().map(|p| p.oci()).collect::<Vec<_>>().join(", "))
        .found(present_text.join(", "))
        .hint("build and add the missing platforms, or pass --allow-extra / adjust --expect and mab.toml")
}

/// `index.media-types`: an OCI index whose entries are Docker manifests (or the reverse).
pub fn media_types(entries: &[IndexEntry]) -> CheckResult {
    let mixed: Vec<String> = entries
        .iter()
        .filter(|e| docs::is_docker(&e.listed_in) != docs::is_docker(&e.media_type))
        .map(|e| format!("{} ({}) in a {} ", e.digest, e.media_type, e.listed_in))
        .collect();
    if mixed.is_empty() {
        CheckResult::pass(ids::INDEX_MEDIA_TYPES, "media types are consistent")
    } else {
        CheckResult::warn(ids::INDEX_MEDIA_TYPES, format!("OCI and Docker media types are mixed: {}", mixed.join(", ")))
            .expected("an OCI index of OCI manifests, or a Docker list of Docker manifests")
            .found(mixed.join(", "))
            .hint("podman manifest create mixes them and some registries reject it; mab-verify assemble writes OCI throughout")
    }
}

/// `index.expected` for `--platform`: the requested platform must be in the input; verifying
/// nothing is no pass.
pub fn requested_platform(want: &Platform, present: &[Platform]) -> Option<CheckResult> {
    if present
        .iter()
        .any(|p| p.arch == want.arch && p.os == want.os)
    {
        return None;
    }
    let listed: Vec<String> = present.iter().map(|p| p.oci()).collect();
    Some(
        CheckResult::fail(
            ids::INDEX_EXPECTED,
            format!(
                "--platform {} was requested, but the input has no {} image",
                want.oci(),
                want.oci()
            ),
        )
        .expected(format!("an image for {}", want.oci()))
        .found(if listed.is_empty() {
            "no image of a known platform".to_string()
        } else {
            listed.join(", ")
        })
        .hint("build and add that platform, or pass --platform with one the index lists"),
    )
}

/// `image.entrypoint`: a config without `Entrypoint` or `Cmd` (a base or library image) has
/// nothing to run; a warning, since `image.binaries` still checks every binary in it.
pub fn no_entrypoint(image: &ImageFacts) -> CheckResult {
    CheckResult::warn(
        ids::IMAGE_ENTRYPOINT,
        format!(
            "the image config names no Entrypoint or Cmd: nothing to run, its {} executables were checked instead",
            image.view.executables().count()
        ),
    )
    .expected("config.Entrypoint or config.Cmd")
    .found("neither")
    .at(format!("config {}", image.config_digest))
    .hint("a base or library image needs none; an application image does (Dockerfile CMD, dockerTools: config.Cmd = [ \"${pkg}/bin/app\" ])")
}
