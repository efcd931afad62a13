//! mab-verify: prove that every platform's build of a cross-compiled program is what it claims.

pub mod assemble;
pub mod cache;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod discover;
pub mod error;
pub mod image;
pub mod inspect;
pub mod nix;
pub mod pipeline;
pub mod platform;
pub mod progress;
pub mod publish;
pub mod report;
pub mod rootfs;
pub mod run;
pub mod settings;
pub mod write;
