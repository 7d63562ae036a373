//! Docker-compatible exit codes and the trait that maps an error to one.

/// burrow itself failed (bad flag, unknown image, store error).
pub const BURROW: i32 = 125;
/// The container's command exists but could not be run (permission, not executable).
pub const CANNOT_RUN: i32 = 126;
/// The container's command was not found.
pub const NOT_FOUND: i32 = 127;
