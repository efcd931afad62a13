//! The integration tests, one binary: each module drives the real `mab-verify` on real inputs.

mod harness;
mod nix_versions;
mod support;

mod assemble;
mod audit;
mod build;
mod cache;
mod catalogue;
mod debian_ports;
mod demo_out;
mod docker_formats;
mod fixtures_smoke;
mod foreign_platforms;
mod gate_copy;
mod hostile_shapes;
mod image_fixtures_smoke;
mod images;
mod inspect;
mod nix_files;
mod parallel_read;
mod progress;
mod publish;
mod publish_exact;
mod push_hardening;
mod registry_push;
mod remote_verify;
mod reports;
mod run;
mod run_limits;
mod runtime_reading;
mod sealed_runs;
mod settings;
mod third_party;
