//! The integration tests, one binary: each module drives the real `mab-verify` on real inputs.

mod harness;
mod nix_versions;
mod support;

mod assemble;
mod build;
mod catalogue;
mod debian_ports;
mod demo_out;
mod fixtures_smoke;
mod foreign_platforms;
mod image_fixtures_smoke;
mod images;
mod inspect;
mod nix_files;
mod publish;
mod publish_exact;
mod registry_push;
mod reports;
mod run;
mod runtime_reading;
mod sealed_runs;
mod settings;
mod third_party;
