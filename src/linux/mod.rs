//! The only place with `unsafe`: thin wrappers over Linux syscalls and kernel
//! files. Nothing here knows about images, containers or the CLI.

pub mod caps;
pub mod cgroup;
pub mod fs;
pub mod mount;
pub mod ns;
pub mod process;
pub mod seccomp;
pub mod tty;
pub mod userns;
