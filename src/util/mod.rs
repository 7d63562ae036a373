//! Small helpers shared by several modules: signals by name, human-readable
//! sizes and ages, ids and names, timestamps, polling, text made safe to
//! print, tiny static ELF programs.

pub mod elf;
pub mod human;
pub mod message;
pub mod poll;
pub mod printable;
pub mod signal;
