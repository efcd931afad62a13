//! `demo`: build the bundled hello for every platform here, image and assemble it, verify it all.

use super::conclude;
use crate::cli::VerifyFlags;
use crate::error::{Result, exit};
use crate::settings::Settings;
use std::path::Path;

/// Keep what was built in `out` (binaries, images, the multi-arch archive, reports), verify it,
/// and say what to try next.
pub fn demo(out: &Path, flags: &VerifyFlags) -> Result<u8> {
    let options = Settings::resolve(flags)?;
    let outcome = crate::demo::output::run(out, &options)?;
    let refused = outcome.assemble_refused.is_some();
    let next = outcome.next_steps();
    let code = conclude(outcome.report, outcome.missing_emulators, &options)?;
    eprint!("{next}");
    Ok(if refused { exit::CHECK_FAILED } else { code })
}
