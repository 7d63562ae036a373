//! The sandbox: turn a container's spec into a process tree.
//!
//! ```text
//! burrow (caller, host ids)            writes the id maps, relays signals, reads
//!                                      the exit code the inner process reports
//!  └─ inner  (root of a new user ns;   mounts the rootfs (overlay or copy),
//!             also new mnt/uts/ipc/pid) waits for PID 1, reports, cleans up
//!      ├─ fuse-overlayfs               (fuse-overlayfs mode) serves the rootfs
//!      │                               from the first mount namespace; the
//!      │                               pid and a second mount namespace are
//!      │                               unshared after it started
//!      └─ PID 1                        /proc, /dev, /sys, /etc files, pivot_root,
//!                                      hostname, cwd, user, exec the command
//! ```
//!
//! The inner process exists because files in the container's upper dir may
//! belong to subordinate ids: only a process inside the user namespace can
//! delete them. PID 1 pivots in the inner process's own mount namespace (one
//! namespace copy, one teardown); the inner process keeps directory fds opened
//! before the pivot for `--rm`. The overlay is mounted on the store's shared
//! `mnt/` (private to this mount namespace, so no per-container mount point
//! is made or removed on disk); after pivot_root it is no longer mounted
//! there, so removing the container needs no unmount (each unmount or
//! namespace teardown costs an RCU grace period: milliseconds on a VM).

pub mod caps;
mod cleanup;
mod entry;
pub mod exec;
mod failure;
pub mod fork;
pub mod init;
pub mod link;
mod mounts;
mod process;
mod report;
mod rootfs_copy;
pub mod seccomp;
pub mod seccomp_default;
mod spawn;
mod trampoline;
pub mod user;
pub mod wire;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use entry::{Entry, EntryOp};
pub use failure::{Failure, Step};
pub use mounts::{MountOp, Symlinks, DEVICES, DEV_LINKS, MASKED_PATHS, READONLY_PATHS};
pub use process::{BundleInit, ContainerType, Process, Stdio, DEFAULT_PATH};
pub use report::relay_signalfd;
pub use rootfs_copy::flatten_layers;
pub use spawn::{start, start_with, BeforeSetup, Started};
pub use user::{resolve as resolve_user, Ids as UserIds};

use crate::linux::userns::IdMapping;

/// How the container's root filesystem is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsMode {
    /// overlayfs over the shared layers; creating a container copies nothing.
    Overlay,
    /// A private full copy of the layers (when overlayfs will not mount).
    Copy,
    /// An overlay served by fuse-overlayfs(1) (when the kernel's overlayfs
    /// will not mount and the program and /dev/fuse are usable). Its upper
    /// dir marks deletions and opaque dirs its own way (`image::changes`).
    #[serde(rename = "fuse-overlayfs")]
    FuseOverlayfs,
}

impl RootfsMode {
    /// The word `info`, `BURROW_ROOTFS` and the records use.
    pub fn word(self) -> &'static str {
        match self {
            RootfsMode::Overlay => "overlay",
            RootfsMode::Copy => "copy",
            RootfsMode::FuseOverlayfs => "fuse-overlayfs",
        }
    }
}

/// Which rootfs mode to use: `BURROW_ROOTFS=overlay|copy|fuse-overlayfs|auto`
/// (auto tries overlay and falls back to copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsChoice {
    Auto,
    Force(RootfsMode),
    /// fuse-overlayfs, or the copy when it fails to mount (a store probed
    /// as one where fuse-overlayfs works).
    FuseOrCopy,
}

impl RootfsChoice {
    /// The `BURROW_ROOTFS` setting (unset, `auto`, `overlay` or `copy`).
    pub fn from_setting(value: Option<&str>) -> Result<Self, BadRootfsChoice> {
        match value {
            None | Some("") | Some("auto") => Ok(RootfsChoice::Auto),
            Some("overlay") => Ok(RootfsChoice::Force(RootfsMode::Overlay)),
            Some("copy") => Ok(RootfsChoice::Force(RootfsMode::Copy)),
            Some("fuse-overlayfs") => Ok(RootfsChoice::Force(RootfsMode::FuseOverlayfs)),
            Some(other) => Err(BadRootfsChoice(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("BURROW_ROOTFS={0:?} is not one of overlay, copy, fuse-overlayfs, auto")]
pub struct BadRootfsChoice(pub String);

/// A mount added to the container's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host path bound at `target`.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs at `target` with mount `options` (size=, mode=).
    Tmpfs { target: String, options: String },
}

/// Everything the sandbox needs to start a container; built by `container`
/// from the record.
#[derive(Debug, Clone)]
pub struct Spec {
    /// containers/<id>: holds upper/, work/, rootfs/, hosts, ...
    pub dir: PathBuf,
    /// Where the overlay is mounted in the inner process's mount namespace
    /// (`Store::mount_point`).
    pub mount_point: PathBuf,
    /// Layer directories, top-most first (overlayfs order).
    pub lowers: Vec<PathBuf>,
    pub rootfs: RootfsChoice,
    pub hostname: String,
    pub mapping: IdMapping,
    /// A network namespace of its own with only loopback up (`--network
    /// private` or `none`); false shares the caller's (`host`).
    pub private_network: bool,
    /// Bind and tmpfs mounts, set up in order before pivot_root.
    pub mounts: Vec<Mount>,
    /// Remount the root filesystem read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// What PID 1 runs, and as whom.
    pub process: Process,
    /// `--rm`: paths the inner process deletes, in order, when PID 1 ends
    /// and before it reports the exit (the record, the name).
    pub remove_after: Vec<PathBuf>,
    /// `--rm`: after reporting the exit, the inner process deletes `dir`
    /// (files there may belong to subordinate ids, and unmounting costs an
    /// RCU grace period: neither belongs on the caller's critical path).
    pub remove_dir_after: bool,
    /// The container's cgroup, set by the caller after `build_spec`; None
    /// runs it in the caller's cgroup.
    pub cgroup: Option<Placement>,
    /// Changes to Docker's masked and read-only paths (`mask=`, `unmask=`).
    pub paths: PathRules,
    /// Join a shared user and network namespace instead of making a user
    /// namespace of its own (`mapping` is then the shared one's already).
    pub join: Option<link::Join>,
}

/// `--security-opt mask=` and `unmask=`: more masked paths, and which of
/// Docker's masked and read-only paths to leave alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathRules {
    /// Absolute paths inside the container to mask as well.
    pub mask: Vec<String>,
    /// `unmask=ALL`.
    pub unmask_all: bool,
    /// Absolute paths to leave unmasked and writable.
    pub unmask: Vec<String>,
    /// `--privileged`: a private network's sysfs is mounted writable (the
    /// kernel still lets a user namespace write only what it owns).
    pub writable_sys: bool,
}

/// Where the sandbox puts a container: the caller moves the inner process
/// into `dir` before it sets anything up (so PID 1 and all it forks are born
/// inside); once PID 1 is forked, the inner process moves itself back to
/// `leave_to`, so only the container's own processes stay in the cgroup and
/// are frozen, killed and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub dir: PathBuf,
    pub leave_to: Option<PathBuf>,
}

/// Why a container (or an exec'd process) could not start, with the exit
/// code Docker would use.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{failure}")]
pub struct StartError {
    pub failure: Failure,
    /// PID 1 had started: the inner process ran the `--rm` cleanup itself.
    pub cleaned_up: bool,
}

impl StartError {
    pub fn code(&self) -> i32 {
        self.failure.code
    }
}

impl From<Failure> for StartError {
    fn from(failure: Failure) -> Self {
        StartError {
            failure,
            cleaned_up: false,
        }
    }
}
