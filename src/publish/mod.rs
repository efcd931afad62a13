//! Publishing: gate a command on the verdict, and push exactly the verified bytes to a registry.

pub mod auth;
pub mod place;
pub mod referrer;
pub mod registry;
mod transport;
