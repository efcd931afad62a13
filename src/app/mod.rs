//! One function per subcommand, wiring discover → inspect → checks → runs → report.

mod build;
mod image;
mod publish;

use crate::check::elf::{BinaryContext, ClosureState, check_binary};
use crate::check::run::{DEFAULT_TEMPLATE, OutputExpectation, check_run, render};
use crate::check::{CheckResult, Expected, ExpectedSource, Status, ids};
use crate::cli::{Cli, ColorChoice, Command, Format, VerifyArgs};
use crate::config::Config;
use crate::discover::{Target, discover};
use crate::error::{Error, Result, exit};
use crate::inspect::closure::{ClosureFacts, FactCache, HostTree, resolve_closure};
use crate::inspect::{BinaryFacts, Linkage, inspect_bytes, inspect_file};
use crate::platform::{ARCHES, Platform};
use crate::report::{self, Artifact, ExpectedReport, Report};
use crate::rootfs::{Root, RootOrigin};
use crate::run::{self, Limits, RunReport};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn run(cli: Cli) -> Result<u8> {
    settle_allocator();
    match cli.command {
        Some(Command::Platforms) => {
            print!("{}", platforms_table());
            Ok(exit::OK)
        }
        Some(Command::Demo { out, verify }) => demo(out, &verify),
        Some(Command::Build {
            flake,
            system,
            targets,
            attr,
            common,
        }) => build::build(&flake, system, &attr, &targets, &common.to_verify()),
        Some(Command::Gate {
            artifact,
            command,
            common,
        }) => publish::gate(&artifact, &command, &common.to_verify()),
        Some(Command::Push {
            artifact,
            reference,
            creds,
            plain_http,
            allow_remote_plain_http,
            common,
        }) => publish::push(
            &artifact,
            &reference,
            creds.as_deref(),
            plain_http,
            allow_remote_plain_http,
            &common.to_verify(),
        ),
        Some(Command::MergeReports { files, common }) => {
            build::merge_reports(&files, &common.to_verify())
        }
        Some(Command::Assemble {
            output,
            layout,
            tag,
            compression,
            fix_config,
            inputs,
            expect,
            format,
            no_run,
            config,
            color,
        }) => {
            let verify = VerifyArgs {
                paths: Vec::new(),
                expect,
                format,
                all: false,
                sysroot: None,
                strict: false,
                no_run,
                require_run: false,
                expect_output: None,
                expect_output_regex: None,
                run_args: Vec::new(),
                timeout: None,
                platform: None,
                allow_extra: false,
                config,
                color,
                reports: Vec::new(),
            };
            let compression = match compression {
                crate::cli::LayerCompression::Gzip => crate::image::Compression::Gzip,
                crate::cli::LayerCompression::Zstd => crate::image::Compression::Zstd,
                crate::cli::LayerCompression::None => crate::image::Compression::None,
            };
            let request = crate::assemble::Request {
                inputs,
                output,
                layout,
                tag,
                compression,
                fix_config,
                mtime: std::env::var("SOURCE_DATE_EPOCH")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            };
            assemble(&request, &verify)
        }
        None => {
            if cli.verify.paths.is_empty() {
                return Err(Error::Usage(
                    "nothing to verify: give a binary or directory (for example ./result), or run `mab-verify demo`; see --help".into(),
                ));
            }
            finish(&cli.verify)
        }
    }
}

/// Everything `verify` needs besides the targets, resolved from flags and `mab.toml`.
#[derive(Clone)]
pub struct Options {
    pub expects: Vec<(String, Platform)>,
    pub sysroot: Option<PathBuf>,
    pub no_run: bool,
    pub require_run: bool,
    pub strict: bool,
    pub config: Config,
    pub cli_output: Option<String>,
    pub cli_output_regex: Option<String>,
    pub run_args: Vec<String>,
    pub timeout: Option<f64>,
    pub all: bool,
    /// `--platform`: only this platform's image of an index.
    pub platform_filter: Option<Platform>,
    pub allow_extra: bool,
    pub limits: crate::image::Limits,
}

impl Options {
    pub fn from_args(args: &VerifyArgs) -> Result<Options> {
        check_report_specs(args)?;
        let config = Config::load(args.config.as_deref())?;
        let limits = config.limits();
        let mut expects = Vec::new();
        for name in args.expect.iter().chain(&config.expect) {
            expects.push((name.clone(), Platform::parse(name)?));
        }
        if let Some(s) = &args.sysroot
            && !s.is_dir()
        {
            return Err(Error::input(
                s,
                "--sysroot must be a directory (the target's root, for example /usr/aarch64-linux-gnu)",
            ));
        }
        if let Some(t) = args.timeout
            && !(t > 0.0 && t.is_finite())
        {
            return Err(Error::Usage(format!(
                "--timeout {t}: give a positive number of seconds"
            )));
        }
        Ok(Options {
            expects,
            sysroot: args.sysroot.clone(),
            no_run: args.no_run,
            require_run: args.require_run,
            strict: args.strict,
            config,
            cli_output: args.expect_output.clone(),
            cli_output_regex: args.expect_output_regex.clone(),
            run_args: args.run_args.clone(),
            timeout: args.timeout,
            all: args.all,
            platform_filter: args.platform.as_deref().map(Platform::parse).transpose()?,
            allow_extra: args.allow_extra,
            limits,
        })
    }
}

fn finish(args: &VerifyArgs) -> Result<u8> {
    let options = Options::from_args(args)?;
    let inputs: Vec<Input> = args
        .paths
        .iter()
        .map(|p| Input {
            path: p.clone(),
            declared: None,
        })
        .collect();
    let names = args.paths.iter().map(|p| p.display().to_string()).collect();
    let (artifacts, missing) = verify_inputs(&inputs, &options)?;
    conclude(
        Report::new(names, artifacts, options.strict),
        missing,
        &options,
        args,
    )
}

/// A path to verify, and what its producer says it is for (a build target's platform).
pub(crate) struct Input {
    pub path: PathBuf,
    pub declared: Option<Expected>,
}

/// A directory for binaries read from image layers until their runs; removed when dropped.
fn spill_dir(options: &Options) -> Result<Option<tempfile::TempDir>> {
    if options.no_run {
        return Ok(None);
    }
    tempfile::Builder::new()
        .prefix("mab-spill-")
        .tempdir()
        .map(Some)
        .map_err(|e| Error::Io {
            context: "creating a temporary directory".into(),
            source: e,
        })
}

/// Verify binaries, directories, images and push scripts alike. Returns the artifacts and the
/// platforms whose runs were skipped for want of an emulator.
pub(crate) fn verify_inputs(
    inputs: &[Input],
    options: &Options,
) -> Result<(Vec<Artifact>, Vec<String>)> {
    let spill = spill_dir(options)?;
    let spill_path = spill.as_ref().map(|d| d.path());
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for input in inputs {
        let p = &input.path;
        let bad = |e: crate::image::ImageError| Error::input(p, e.to_string());
        // An image built for a known platform must be that platform: it is what index.expected checks.
        let set_options = match &input.declared {
            Some(e) => Options {
                expects: vec![(e.platform.oci(), e.platform)],
                ..options.clone()
            },
            None => options.clone(),
        };
        if !p.exists() {
            targets.extend(discover(p, options.all)?);
            continue;
        }
        let mut read = crate::image::ReadOptions {
            limits: &options.limits,
            spill: spill_path,
            tee: None,
        };
        if let Some(script) = crate::image::script::find(p) {
            progress(&format!(
                "{}: a push script combining {} images",
                script.script.display(),
                script.archives.len()
            ));
            sets.push((image::read_push_script(p, &script, &mut read)?, set_options));
            continue;
        }
        match crate::image::detect(p, &options.limits).map_err(bad)? {
            Some((source, format)) => {
                progress(&format!("reading {}…", p.display()));
                sets.push((
                    crate::image::read(p, source, format, &mut read).map_err(bad)?,
                    set_options,
                ));
            }
            None => {
                let mut found = discover(p, options.all)?;
                for t in &mut found {
                    t.declared = input.declared.clone();
                }
                targets.extend(found);
            }
        }
    }
    let mut outcome = verify(Vec::new(), targets, options);
    for (set, set_options) in &sets {
        let artifacts = image::verify_set(set, set_options, spill_path);
        for a in &artifacts {
            if let (RunReport::Skipped { .. }, Some(e)) = (&a.run, &a.expected) {
                outcome.missing_emulators.push(e.platform.clone());
            }
        }
        outcome.report.artifacts.extend(artifacts);
    }
    Ok((outcome.report.artifacts, outcome.missing_emulators))
}

/// Print the report and turn it into the exit code (3 for --require-run without emulators).
pub(crate) fn conclude(
    report: Report,
    mut missing: Vec<String>,
    options: &Options,
    args: &VerifyArgs,
) -> Result<u8> {
    print_report(&report, args);
    if options.require_run && !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(Error::Environment {
            what: format!("--require-run: cannot run {} here", missing.join(", ")),
            hint: "apt-get install qemu-user, or set MAB_QEMU_<ARCH> / [qemu] in mab.toml".into(),
        });
    }
    Ok(match report.verdict {
        report::Verdict::Pass => exit::OK,
        report::Verdict::Fail => exit::CHECK_FAILED,
    })
}

fn use_color(args: &VerifyArgs) -> bool {
    match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Print the report on stdout in `--format`, write every `--report FORMAT=FILE`, and in GitHub
/// Actions add annotations and the Markdown audit to the step summary.
pub(crate) fn print_report(report: &Report, args: &VerifyArgs) {
    let text = match args.format {
        Format::Json => report::json::render(report),
        Format::Human => report::human::render(
            report,
            report::human::Style {
                color: use_color(args),
            },
        ),
    };
    print!("{text}");
    for spec in &args.reports {
        if let Err(e) = write_report(report, spec) {
            eprintln!("mab-verify: {e}");
        }
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        let notes = report::github::annotations(report);
        // JSON on stdout must stay JSON; the runner reads commands from stderr too.
        match args.format {
            Format::Json => eprint!("{notes}"),
            Format::Human => print!("{notes}"),
        }
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write;
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&summary)
                .and_then(|mut f| f.write_all(report::markdown::render(report).as_bytes()));
            if let Err(e) = appended {
                eprintln!(
                    "mab-verify: cannot append to GITHUB_STEP_SUMMARY {}: {e}",
                    PathBuf::from(summary).display()
                );
            }
        }
    }
}

/// `FORMAT=FILE`, checked up front by `check_report_specs`.
fn write_report(report: &Report, spec: &str) -> Result<()> {
    let (format, file) = spec
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--report {spec}: write FORMAT=FILE")))?;
    let text = match format {
        "human" => report::human::render(report, report::human::Style { color: false }),
        "json" => report::json::render(report),
        "markdown" | "md" => report::markdown::render(report),
        "junit" => report::junit::render(report),
        other => {
            return Err(Error::Usage(format!(
                "--report {spec}: unknown format {other} (human, json, markdown, junit)"
            )));
        }
    };
    std::fs::write(file, text).map_err(|e| Error::Io {
        context: format!("writing the {format} report to {file}"),
        source: e,
    })
}

/// Refuse a bad `--report` before any work is done.
fn check_report_specs(args: &VerifyArgs) -> Result<()> {
    for spec in &args.reports {
        match spec.split_once('=') {
            Some(("human" | "json" | "markdown" | "md" | "junit", file)) if !file.is_empty() => {}
            _ => {
                return Err(Error::Usage(format!(
                    "--report {spec}: write FORMAT=FILE with FORMAT one of human, json, markdown, junit"
                )));
            }
        }
    }
    Ok(())
}

pub struct Outcome {
    pub report: Report,
    /// Platforms whose runs were skipped for want of an emulator.
    pub missing_emulators: Vec<String>,
}

/// One binary between inspection and its run.
struct Prepared {
    target: Target,
    facts: BinaryFacts,
    expected: Option<Expected>,
    closure: Option<ClosureFacts>,
    checks: Vec<CheckResult>,
}

pub(crate) fn progress(message: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{message}");
    }
}

pub fn verify(inputs: Vec<String>, targets: Vec<Target>, options: &Options) -> Outcome {
    progress(&format!("inspecting {} binaries…", targets.len()));
    let mut cache = FactCache::default();
    let prepared: Vec<Prepared> = targets
        .into_iter()
        .map(|t| prepare(t, options, &mut cache))
        // A walk without --all looks for programs: libraries and loaders marked executable stay out.
        .filter(|p| {
            !p.target.from_walk || options.all || p.facts.elf().is_none_or(|e| e.is_executable())
        })
        .collect();
    let to_run = prepared
        .iter()
        .filter(|p| !options.no_run && runnable(p).is_ok())
        .count();
    if to_run > 0 {
        progress(&format!("running {to_run} binaries…"));
    }
    let overrides = options.config.emulator_overrides();
    let results: Vec<(Prepared, RunReport)> = prepared
        .into_par_iter()
        .map(|p| {
            let run = execute(&p, options, &overrides);
            (p, run)
        })
        .collect();
    let mut missing = Vec::new();
    let artifacts = results
        .into_iter()
        .map(|(p, run)| {
            if let (RunReport::Skipped { .. }, Some(e)) = (&run, &p.expected) {
                missing.push(e.platform.oci());
            }
            artifact(p, run, options)
        })
        .collect();
    missing.sort();
    missing.dedup();
    Outcome {
        report: Report::new(inputs, artifacts, options.strict),
        missing_emulators: missing,
    }
}

/// glibc raises its mmap threshold each time a large block is freed, up to 32 MiB, and then
/// keeps freed buffers of binaries and layers in the heap for good. A fixed threshold hands
/// them back at once, so peak memory does not grow with how many large files an image holds.
fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

fn prepare(target: Target, options: &Options, cache: &mut FactCache) -> Prepared {
    let facts = match inspect_file(&target.host_path) {
        Ok(facts) => facts,
        Err(e) => inspect_bytes(format!("unreadable: {e}").as_bytes()),
    };
    let expected = expected_for(&target, &facts, &options.expects);
    let nix_output = target.store.is_some();
    let (closure, no_root_hint) = match (facts.elf(), &expected) {
        (Some(elf), Some(exp)) if elf.interpreter.is_some() || !elf.needed.is_empty() => {
            match choose_root(
                &target,
                exp,
                elf.interpreter.as_deref(),
                options.sysroot.as_deref(),
            ) {
                Some(root) => {
                    let guest = root
                        .guest_path_of(&target.host_path)
                        .unwrap_or_else(|| target.host_path.display().to_string());
                    (
                        Some(resolve_closure(
                            elf,
                            &guest,
                            exp.platform.arch,
                            &mut HostTree { root: &root, cache },
                        )),
                        "",
                    )
                }
                None => (
                    None,
                    "pass --sysroot DIR (the target's root: a Debian cross sysroot such as /usr/aarch64-linux-gnu, an unpacked image, or a Nix closure root)",
                ),
            }
        }
        _ => (None, "no loader or libraries to look up"),
    };
    let checks = match &expected {
        Some(exp) => check_binary(&BinaryContext {
            path: &target.display,
            facts: &facts,
            expected: exp,
            closure: match &closure {
                Some(c) => ClosureState::Resolved(c),
                None => ClosureState::NoRoot(no_root_hint),
            },
            nix_output,
        }),
        None => unidentified(&target, &facts),
    };
    Prepared {
        target,
        facts,
        expected,
        closure,
        checks,
    }
}

/// No `--expect`, no triple in a store name, and the bytes match no row.
fn unidentified(target: &Target, facts: &BinaryFacts) -> Vec<CheckResult> {
    let mut out = vec![crate::check::elf::unreadable(&target.display, facts, "ELF")];
    out.extend(
        ids::BINARY_CHECKS[1..7]
            .iter()
            .map(|id| CheckResult::skip(id, "platform unknown")),
    );
    out
}

fn expected_for(
    target: &Target,
    facts: &BinaryFacts,
    expects: &[(String, Platform)],
) -> Option<Expected> {
    if let Some(declared) = &target.declared {
        return Some(declared.clone());
    }
    let own = facts.platform();
    if !expects.is_empty() {
        // Several --expect: each binary is held to the one naming its own row, else the first.
        let (name, platform) = expects
            .iter()
            .find(|(_, p)| own.is_some_and(|o| o.arch == p.arch && o.os == p.os))
            .unwrap_or(&expects[0]);
        return Some(Expected {
            platform: *platform,
            source: ExpectedSource::Flag { name: name.clone() },
        });
    }
    if let Some(store) = &target.store
        && let Some((platform, triple)) = Platform::from_store_name(&store.store_name)
    {
        return Some(Expected {
            platform,
            source: ExpectedSource::StoreName {
                store_name: store.store_name.clone(),
                triple: triple.to_string(),
            },
        });
    }
    own.map(|platform| Expected {
        platform,
        source: ExpectedSource::Binary,
    })
}

/// Where this binary's loader and libraries live: `--sysroot`, the root of the store it sits
/// in, the host (host-platform binaries, the host's /nix/store), or Debian's cross sysroot.
fn choose_root(
    target: &Target,
    expected: &Expected,
    interp: Option<&str>,
    sysroot: Option<&Path>,
) -> Option<Root> {
    if let Some(dir) = sysroot {
        // Runs start in a temporary directory: a relative --sysroot must not depend on it.
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        return Some(Root::new(dir, RootOrigin::Sysroot));
    }
    if expected.platform.os != crate::platform::Os::Linux {
        // No root of another OS is known here; the host's is Linux.
        return None;
    }
    let loader_in_store = interp.is_none_or(|i| i.starts_with("/nix/store/"));
    if let Some(store) = &target.store {
        if store.root != Path::new("/") {
            return Some(Root::new(&store.root, RootOrigin::StoreRoot));
        }
        // The host's store holds the closure; an impure loader outside it is looked for where
        // that platform's loaders are, never in the host's own /lib (elf.impure warns).
        if loader_in_store || expected.platform.arch.is_host() {
            return Some(Root::new("/", RootOrigin::Host));
        }
    }
    if expected.platform.arch.is_host() {
        return Some(Root::new("/", RootOrigin::Host));
    }
    expected
        .platform
        .arch
        .debian_cross_sysroot()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .map(|d| Root::new(d, RootOrigin::DebianCross))
}

fn runnable(p: &Prepared) -> std::result::Result<(), String> {
    let Some(elf) = p.facts.elf() else {
        return Err(format!("a {} file cannot be run here", p.facts.kind()));
    };
    if !elf.is_executable() {
        return Err("not an executable".into());
    }
    if p.checks
        .iter()
        .any(|c| c.id == ids::ELF_FORMAT && c.status == Status::Fail)
    {
        return Err("not a valid executable".into());
    }
    if p.expected.is_none() {
        return Err("platform unknown".into());
    }
    Ok(())
}

fn execute(p: &Prepared, options: &Options, overrides: &run::EmulatorOverrides) -> RunReport {
    if options.no_run {
        return RunReport::NotRun {
            reason: "--no-run".into(),
        };
    }
    if let Some((reason, hint)) = crate::check::elf::foreign_run_skip(&p.facts) {
        return RunReport::Skipped { reason, hint };
    }
    if let Err(reason) = runnable(p) {
        return RunReport::NotRun { reason };
    }
    let (Some(elf), Some(expected)) = (p.facts.elf(), &p.expected) else {
        return RunReport::NotRun {
            reason: "platform unknown".into(),
        };
    };
    run_elf(
        &p.target.host_path,
        elf,
        p.closure.as_ref(),
        &expected.platform,
        options,
        overrides,
        None,
        run::exec::minimal_env(),
    )
}

/// Run one ELF as `platform`, inside the run limits. `image_args` are an image's own
/// Entrypoint/Cmd arguments, used unless config or flags give others.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_elf(
    binary: &Path,
    elf: &crate::inspect::ElfFacts,
    closure: Option<&ClosureFacts>,
    platform: &Platform,
    options: &Options,
    overrides: &run::EmulatorOverrides,
    image_args: Option<Vec<String>>,
    env: Vec<(String, String)>,
) -> RunReport {
    let emulator = match run::find_emulator(
        platform.arch,
        overrides,
        std::env::var_os("PATH").as_deref(),
    ) {
        Ok(e) => e,
        Err(missing) => {
            return RunReport::Skipped {
                reason: missing.reason,
                hint: missing.hint,
            };
        }
    };
    if elf.linkage == Linkage::Dynamic && closure.is_none() {
        return RunReport::Skipped {
            reason: format!(
                "no sysroot holding the loader {}",
                elf.interpreter.as_deref().unwrap_or("?")
            ),
            hint: "pass --sysroot DIR".into(),
        };
    }
    let per_platform = options.config.for_platform(platform);
    let args = per_platform
        .and_then(|c| c.args.clone())
        .or_else(|| (!options.run_args.is_empty()).then(|| options.run_args.clone()))
        .or_else(|| options.config.run.args.clone())
        .or(image_args)
        .unwrap_or_default();
    let invocation = match run::plan(binary, elf, closure, &emulator, &args, env) {
        Ok(i) => i,
        Err(reason) => return RunReport::Failed { reason },
    };
    let limits = Limits {
        timeout: Duration::from_secs_f64(
            options
                .timeout
                .or(per_platform.and_then(|c| c.timeout_secs))
                .or(options.config.run.timeout_secs)
                .unwrap_or(10.0),
        ),
        output_cap: per_platform
            .and_then(|c| c.output_cap_bytes)
            .or(options.config.run.output_cap_bytes)
            .unwrap_or(Limits::default().output_cap),
    };
    let mut command = vec![invocation.program.display().to_string()];
    command.extend(invocation.args.iter().cloned());
    match run::exec::run_bounded(&invocation, limits) {
        Ok(captured) => RunReport::Ran {
            runner: invocation.runner,
            command,
            captured,
        },
        Err(e) => RunReport::Failed {
            reason: format!("could not start {}: {e}", command[0]),
        },
    }
}

fn output_expectation(p: &Prepared, options: &Options) -> OutputExpectation {
    let Some(expected) = &p.expected else {
        return OutputExpectation::Nothing;
    };
    expected_output(&expected.platform, store_version(p), options)
}

/// The output a binary of `platform` must print, from flags, `mab.toml` or the default.
pub(crate) fn expected_output(
    platform: &Platform,
    found_version: Option<String>,
    options: &Options,
) -> OutputExpectation {
    let per_platform = options.config.for_platform(platform);
    let pick = |f: fn(&crate::config::RunConfig) -> Option<String>| {
        per_platform.and_then(f).or_else(|| f(&options.config.run))
    };
    let version = per_platform
        .and_then(|c| c.version.clone())
        .or_else(|| options.config.run.version.clone())
        .or(found_version);
    let fill = |t: &str| render(t, platform, version.as_deref());
    if let Some(re) = options
        .cli_output_regex
        .clone()
        .or_else(|| pick(|c| c.expect_output_regex.clone()))
    {
        return OutputExpectation::Regex(fill(&re));
    }
    let template = options
        .cli_output
        .clone()
        .or_else(|| pick(|c| c.expect_output.clone()))
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    if template == "none" {
        return OutputExpectation::Nothing;
    }
    let filled = fill(&template);
    if filled.contains("{version}") {
        // No version known: accept any single word there, exactly elsewhere.
        let parts: Vec<String> = filled.split("{version}").map(regex::escape).collect();
        return OutputExpectation::Regex(format!("^{}$", parts.join(r"\S+")));
    }
    OutputExpectation::Exact(filled)
}

/// `1.0.0` from a store name `<hash>-multi-arch-demo-aarch64-unknown-linux-gnu-1.0.0`.
fn store_version(p: &Prepared) -> Option<String> {
    let name = &p.target.store.as_ref()?.store_name;
    let last = name.rsplit('-').next()?;
    last.chars()
        .next()
        .filter(char::is_ascii_digit)
        .map(|_| last.to_string())
}

fn artifact(p: Prepared, run: RunReport, options: &Options) -> Artifact {
    let mut checks = p.checks.clone();
    if let Some(expected) = &p.expected {
        let mut run_checks = check_run(&run, expected, &output_expectation(&p, options));
        if options.require_run {
            for c in &mut run_checks {
                if c.id == ids::RUN_EXEC && matches!(run, RunReport::Skipped { .. }) {
                    c.status = Status::Fail;
                }
            }
        }
        checks.extend(run_checks);
    } else {
        checks.push(CheckResult::skip(ids::RUN_EXEC, "platform unknown"));
        checks.push(CheckResult::skip(ids::RUN_OUTPUT, "platform unknown"));
    }
    Artifact {
        path: p.target.display.clone(),
        resolved_path: p.target.host_path.display().to_string(),
        sha256: p.facts.sha256.clone(),
        size: p.facts.size,
        kind: p.facts.kind(),
        platform: p.facts.platform().map(|pl| pl.oci()),
        expected: p.expected.as_ref().map(|e| ExpectedReport {
            platform: e.platform.oci(),
            source: e.source.clone(),
        }),
        facts: Some(p.facts.identity.clone()),
        image: None,
        closure: p.closure,
        run,
        checks,
    }
}

fn demo(out: Option<PathBuf>, args: &VerifyArgs) -> Result<u8> {
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
    let options = Options::from_args(args)?;
    let artifacts = verify(vec![], targets, &options).report.artifacts;
    let report = Report::new(
        vec![out_dir.display().to_string()],
        artifacts,
        options.strict,
    );
    print_report(&report, args);
    Ok(match report.verdict {
        report::Verdict::Pass => exit::OK,
        report::Verdict::Fail => exit::CHECK_FAILED,
    })
}

/// `assemble`: stage next to the output, verify what was staged with the full image checks,
/// and only then move it into place.
fn assemble(request: &crate::assemble::Request, args: &VerifyArgs) -> Result<u8> {
    use crate::assemble::AssembleError;
    let options = Options::from_args(args)?;
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
    let assembled = match crate::assemble::assemble(request, &options.limits, staging.path()) {
        Ok(a) => a,
        Err(AssembleError::Input(m)) => return Err(Error::Usage(m)),
        Err(AssembleError::Refused(m)) => {
            eprintln!("mab-verify: assemble refused: {m}");
            return Ok(exit::CHECK_FAILED);
        }
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
    };
    let set = crate::image::read(staged, source, format, &mut read).map_err(bad)?;
    let mut artifacts = image::verify_set(&set, &options, spill.as_ref().map(|d| d.path()));
    let shown = request.output.display().to_string();
    for a in &mut artifacts {
        a.path = a.path.replacen(&staged.display().to_string(), &shown, 1);
        a.resolved_path = shown.clone();
    }
    let report = Report::new(vec![shown.clone()], artifacts, options.strict);
    print_report(&report, args);
    if report.verdict == report::Verdict::Fail {
        eprintln!(
            "mab-verify: the assembled image does not verify; nothing was written to {shown}"
        );
        return Ok(exit::CHECK_FAILED);
    }
    crate::assemble::finalize(request, &assembled).map_err(|e| Error::Usage(e.to_string()))?;
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

pub fn platforms_table() -> String {
    crate::platform::listing::table()
}
