//! Small helpers shared by several modules: signals by name, human-readable
//! sizes and ages, ids and names, timestamps.

pub mod human;
pub mod signal;
