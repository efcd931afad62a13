//! Builds the bundled demo program for a platform row with Debian's cross toolchains.
