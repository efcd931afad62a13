//! mab-verify: prove that every platform's build of a cross-compiled program is what it claims.

pub mod inspect;
pub mod platform;
pub mod rootfs;
pub mod demo;
