//! The only place with `unsafe`: thin wrappers over Linux syscalls and kernel
//! files, and the host services burrow talks to (the user's systemd over
//! D-Bus). Nothing here knows about images, containers or the CLI.

// The syscall wrappers below are the crate's only `unsafe`; the lint refuses it elsewhere.
#![allow(unsafe_code)]

pub mod caps;
pub mod cgroup;
pub mod channel;
pub mod dbus;
pub mod fs;
pub mod fuse_overlay;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod newuser;
pub mod ns;
pub mod process;
pub mod seccomp;
pub mod seqpacket;
pub mod systemd;
pub mod tap;
pub mod tty;
pub mod userns;
pub mod vfork;
pub mod worker;
