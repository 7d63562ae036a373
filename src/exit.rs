//! Docker-compatible exit codes.

/// burrow itself failed (bad flag, unknown image, store error).
pub const BURROW: i32 = 125;
/// The container's command exists but could not be run (permission, not executable).
pub const CANNOT_RUN: i32 = 126;
/// The container's command was not found.
pub const NOT_FOUND: i32 = 127;
/// A named object (container, image, volume, network) does not exist.
pub const MISSING: i32 = 1;
