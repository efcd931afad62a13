//! Command line: `mab-verify [OPTIONS] PATH…` and its subcommands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  mab-verify ./result                                 inspect and run a Nix output
  mab-verify --expect linux/arm/v7 ./result/bin/app   exit 1 unless it is an armv7 hard-float binary
  mab-verify --format json ./result > report.json
  mab-verify --sysroot /usr/aarch64-linux-gnu ./hello-aarch64
  mab-verify --no-run ./result                        headers only
  mab-verify image.tar.gz                             a docker-archive (dockerTools output)
  mab-verify --expect linux/amd64 --expect linux/arm64 app.oci.tar   multi-arch index
  mab-verify --platform linux/arm64 app.oci.tar       only that platform's image
  mab-verify docker://ghcr.io/org/app:1.2             an image in a registry, read without pulling it
  mab-verify oci:./layout:1.2                         one ref.name of an OCI layout
  mab-verify platforms                                every platform name it accepts
  mab-verify demo                                     build, image and assemble the bundled demo into ./mab-demo, verify it

Exit codes: 0 all checks passed, 1 a check failed, 2 bad input or usage,
3 the environment lacks something required (qemu with --require-run).";

#[derive(Debug, Parser)]
#[command(name = "mab-verify", version, about = "Prove that every platform's cross-built binary is what it claims to be, and runs.", after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Binaries or directories (a Nix `result`), images, archives or layouts to verify.
    pub paths: Vec<PathBuf>,
    /// Inspect every ELF file in a directory, not only executables under bin/ and libexec/.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub verify: VerifyFlags,
    #[command(flatten)]
    pub remote: RemoteFlags,
}

/// How registries are reached: those of `docker://` inputs, and `push`'s target.
#[derive(Debug, Args, Clone, Default)]
pub struct RemoteFlags {
    /// Speak HTTP, not HTTPS, to the registry (loopback registries).
    #[arg(long)]
    pub plain_http: bool,
    /// USER:PASSWORD for the registry; otherwise ~/.docker/config.json,
    /// $REGISTRY_AUTH_FILE, or MAB_REGISTRY_USER/MAB_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Read the registry password from stdin (one line); --creds then gives only USER.
    #[arg(long, requires = "creds")]
    pub password_stdin: bool,
    /// Trust for the registry: CA files *.crt, client pairs NAME.cert + NAME.key.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// --tls-verify=false: do not check the certificates of the registries named.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the platform table and every name each row accepts.
    Platforms,
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  mab-verify completions bash > /etc/bash_completion.d/mab-verify"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `mab-verify man | man -l -`.
    Man,
    /// Build every cross target of a flake with nix, then verify every output.
    #[command(after_help = BUILD_EXAMPLES)]
    Build {
        /// The flake.
        #[arg(long, default_value = ".")]
        flake: String,
        /// The system whose packages to build [default: this machine's].
        #[arg(long)]
        system: Option<String>,
        /// Only these targets (the attribute names under --attr); repeatable.
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Where the targets are: an attribute path in the flake, {system} filled in.
        #[arg(long, default_value = "packages.{system}", value_name = "PATH")]
        attr: String,
        #[command(flatten)]
        verify: Box<VerifyFlags>,
    },
    /// Verify ARTIFACT; only if it passes, run the command (which publishes it).
    #[command(after_help = GATE_EXAMPLES)]
    Gate {
        /// The image archive, layout or binary to verify.
        artifact: PathBuf,
        /// The publishing command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
        #[command(flatten)]
        verify: Box<VerifyFlags>,
    },
    /// Verify an OCI archive or layout, then push exactly those bytes to a registry.
    #[command(after_help = PUSH_EXAMPLES)]
    Push {
        /// An OCI archive or layout (make one with `mab-verify assemble`).
        artifact: PathBuf,
        /// Where to: registry/repository:tag.
        reference: String,
        // --creds, --password-stdin, --plain-http, --cert-dir, --tls-verify, as for docker://.
        #[command(flatten)]
        remote: RemoteFlags,
        /// Allow --plain-http to a registry that is not on this machine.
        #[arg(long, requires = "plain_http")]
        allow_remote_plain_http: bool,
        /// Also push the audit's in-toto attestation as an OCI referrer of what was pushed.
        #[arg(long)]
        attach_attestation: bool,
        #[command(flatten)]
        verify: Box<VerifyFlags>,
    },
    /// Merge per-target JSON reports (from CI matrix jobs) into one report and one verdict.
    MergeReports {
        /// JSON reports written by `mab-verify --format json`.
        #[arg(required = true, value_name = "REPORT")]
        files: Vec<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as failures.
        #[arg(long)]
        strict: bool,
    },
    /// Combine per-platform images into one multi-arch OCI archive or layout, offline.
    #[command(after_help = ASSEMBLE_EXAMPLES)]
    Assemble {
        /// Output: an OCI archive (default) or, with --layout, an OCI layout directory.
        #[arg(short, long, value_name = "PATH")]
        output: PathBuf,
        /// Write an OCI layout directory instead of an archive.
        #[arg(long)]
        layout: bool,
        /// Name for the index (org.opencontainers.image.ref.name), as in oci-archive:OUT:TAG.
        #[arg(long)]
        tag: Option<String>,
        /// How layers are stored.
        #[arg(long, value_enum, default_value_t = LayerCompression::Gzip)]
        compression: LayerCompression,
        /// Rewrite a config whose architecture/variant disagrees with its binaries.
        #[arg(long)]
        fix_config: bool,
        /// Per-platform images: docker-archives (dockerTools), OCI archives or layouts.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Flags of the final verification (`--expect` lists the platforms the result must hold).
        #[command(flatten)]
        verify: Box<VerifyFlags>,
    },
    /// Build the bundled demo for every platform here, image and assemble it, verify it all.
    Demo {
        /// Keep the binaries, images, multi-arch archive and reports here (a rerun replaces a
        /// previous demo output; any other non-empty directory is refused).
        #[arg(long, value_name = "DIR", default_value = crate::demo::output::DEFAULT_DIR)]
        out: PathBuf,
        #[command(flatten)]
        verify: Box<VerifyFlags>,
    },
}

const BUILD_EXAMPLES: &str = "\
Examples:
  mab-verify build                              # flake in ., this system, every target
  mab-verify build --flake github:org/repo --system x86_64-linux --target aarch64 --target native
  mab-verify build --format json > report.json
  mab-verify build --attr 'legacyPackages.{system}.demo'   # this repo's demo targets

Targets are the attributes under packages.<system>: either one level (packages.<system>.<target>)
or the article's two (packages.<system>.<target>.{myproject,docker}). Each target's platform
comes from mab.toml [build.platforms], else its stdenv.hostPlatform, else its name.";

const PUSH_EXAMPLES: &str = "\
Examples:
  mab-verify push app.oci.tar ghcr.io/org/app:1.2 --creds \"$USER:$TOKEN\"
  mab-verify push app.oci.tar 127.0.0.1:5000/app:dev --plain-http
  mab-verify push app.oci.tar registry.internal:5000/app:1.2 --cert-dir /etc/containers/certs.d/registry.internal:5000

Nothing is pushed unless verification passes. Blobs the registry has are skipped. After the
push the index is fetched back by tag and its digest compared with the verified one.";

const GATE_EXAMPLES: &str = "\
Examples:
  mab-verify gate app.oci.tar -- skopeo copy --all oci-archive:app.oci.tar docker://ghcr.io/org/app:1.2

The command runs only if verification passes, with MAB_VERIFIED_DIGEST (the index or manifest
digest), MAB_REPORT (the JSON report) and MAB_PLATFORMS in its environment; its exit status
becomes mab-verify's. If the artifact changes between verification and the command, it is not
run.";

const ASSEMBLE_EXAMPLES: &str = "\
Examples:
  mab-verify assemble -o app.oci.tar amd64.tar.gz arm64.tar.gz armv7.tar.gz
  mab-verify assemble --layout -o app-oci/ ./result-*
  mab-verify assemble --tag v1.2.3 -o app.oci.tar imgs/*.tar.gz
  skopeo copy --all oci-archive:app.oci.tar docker://registry.example/app:v1.2.3

Each image's platform comes from its binaries; a config that disagrees stops assembly
(--fix-config rewrites it). The output is verified before it is moved into place, and the
same inputs always give the same bytes (SOURCE_DATE_EPOCH sets archive timestamps).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// The flags every command that verifies takes: what to expect, how to run, how to report.
#[derive(Debug, Args, Clone, Default)]
pub struct VerifyFlags {
    /// Platform the artifacts must be (repeatable: every one must be present): linux/arm64, aarch64-linux, aarch64-multiplatform, aarch64-unknown-linux-gnu, …
    #[arg(long, value_name = "PLATFORM")]
    pub expect: Vec<String>,
    /// Verify only this platform's image of a multi-arch index.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Platforms beyond the --expect ones do not fail index.expected.
    #[arg(long)]
    pub allow_extra: bool,
    /// Exit 3 when a platform cannot be run here (no qemu), instead of skipping it.
    #[arg(long)]
    pub require_run: bool,
    /// Inspect headers only; do not run anything.
    #[arg(long, conflicts_with = "require_run")]
    pub no_run: bool,
    /// One argument for the binary under test; repeat for more (`--args --version`).
    #[arg(
        long = "args",
        value_name = "ARG",
        allow_hyphen_values = true,
        num_args = 1
    )]
    pub run_args: Vec<String>,
    /// Exit 3 when runs cannot be sealed here (no bubblewrap or no namespaces).
    #[arg(long)]
    pub require_sealed: bool,
    /// Expected stdout, a template: {os} {arch} {oci_arch} {variant} {triple} {version}; `none` checks only the exit status.
    #[arg(
        long,
        value_name = "TEMPLATE",
        conflicts_with = "expect_output_regex",
        allow_hyphen_values = true
    )]
    pub expect_output: Option<String>,
    /// Expected stdout as a regular expression (templates are filled in first).
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    pub expect_output_regex: Option<String>,
    /// Seconds a run may take before its whole process group is killed [default: 10].
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<f64>,
    /// Root in which loaders and libraries are looked up and runs find their libraries.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// Treat warnings as failures.
    #[arg(long)]
    pub strict: bool,
    /// Config file [default: ./mab.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write a report: FORMAT=FILE with FORMAT human, json, markdown, junit or attestation; repeatable.
    #[arg(long = "report", value_name = "FORMAT=FILE")]
    pub reports: Vec<ReportSpec>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Colour in the human report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only failures, warnings and the verdict; no progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// Where verified layers' facts are kept [default: $XDG_CACHE_HOME/mab-verify, else ~/.cache/mab-verify].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Read every layer in full and keep nothing in the cache (beats --cache-dir).
    #[arg(long)]
    pub no_cache: bool,
    /// Largest size of the cache, in bytes (suffixes K, M, G); least recently used entries go first [default: 2G].
    #[arg(long, value_name = "BYTES")]
    pub cache_max: Option<String>,
    /// Most distinct images one input may hold [default: 256, or `[limits] max_images`].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_images: Option<u32>,
    /// Most layer reads, checks and runs at once, across all images [default: one per core]; 1 reads in index order.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
}

/// A report format `--report` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Human,
    Json,
    Markdown,
    Junit,
    Attestation,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Human => "human",
            ReportFormat::Json => "json",
            ReportFormat::Markdown => "markdown",
            ReportFormat::Junit => "junit",
            ReportFormat::Attestation => "attestation",
        }
    }
}

/// `--report FORMAT=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub format: ReportFormat,
    pub path: PathBuf,
}

/// Why a `--report` value is not `FORMAT=FILE`.
#[derive(Debug, thiserror::Error)]
pub enum ReportSpecError {
    #[error("write FORMAT=FILE with FORMAT one of human, json, markdown, junit, attestation")]
    Shape,
    #[error(
        "unknown format {0}: write FORMAT=FILE with FORMAT one of human, json, markdown, junit, attestation"
    )]
    Format(String),
}

impl std::str::FromStr for ReportSpec {
    type Err = ReportSpecError;
    fn from_str(spec: &str) -> Result<Self, ReportSpecError> {
        let (format, file) = spec.split_once('=').ok_or(ReportSpecError::Shape)?;
        let format = match format {
            "human" => ReportFormat::Human,
            "json" => ReportFormat::Json,
            "markdown" | "md" => ReportFormat::Markdown,
            "junit" => ReportFormat::Junit,
            "attestation" | "in-toto" => ReportFormat::Attestation,
            other => return Err(ReportSpecError::Format(other.to_string())),
        };
        if file.is_empty() {
            return Err(ReportSpecError::Shape);
        }
        Ok(ReportSpec {
            format,
            path: PathBuf::from(file),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
