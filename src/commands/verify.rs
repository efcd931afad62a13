//! `mab-verify PATH…`: verify binaries, directories, images and push scripts alike.

use super::conclude;
use crate::error::Result;
use crate::pipeline::{Input, verify_inputs};
use crate::report::Report;
use crate::settings::Settings;
use std::path::PathBuf;

pub fn verify(paths: &[PathBuf], options: &Settings) -> Result<u8> {
    let inputs: Vec<Input> = paths
        .iter()
        .map(|p| Input {
            path: p.clone(),
            declared: None,
        })
        .collect();
    let names = paths.iter().map(|p| p.display().to_string()).collect();
    let (artifacts, missing) = verify_inputs(&inputs, options)?;
    conclude(
        Report::new(names, artifacts, options.strict),
        missing,
        options,
    )
}
