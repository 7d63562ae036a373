//! The sandbox: turn a container's spec into a process tree.
//!
//! ```text
//! burrow (caller, host ids)            writes the id maps, relays signals, reads
//!                                      the exit code the inner process reports
//!  └─ inner  (root of a new user ns;   mounts the rootfs (overlay or copy),
//!             also new mnt/uts/ipc/pid) waits for PID 1, reports, cleans up
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

mod child;
mod cleanup;
pub mod exec;
mod report;
mod rootfs_copy;
mod spawn;
mod user;

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use child::DEFAULT_PATH;
pub use spawn::{start, Started};

use crate::linux::userns::IdMapping;

/// How the container's root filesystem is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsMode {
    /// overlayfs over the shared layers; creating a container copies nothing.
    Overlay,
    /// A private full copy of the layers (when overlayfs will not mount).
    Copy,
}

/// Which rootfs mode to use: `BURROW_ROOTFS=overlay|copy|auto` (auto tries
/// overlay and falls back to copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsChoice {
    Auto,
    Force(RootfsMode),
}

impl RootfsChoice {
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("BURROW_ROOTFS").as_deref() {
            Err(_) | Ok("") | Ok("auto") => Ok(RootfsChoice::Auto),
            Ok("overlay") => Ok(RootfsChoice::Force(RootfsMode::Overlay)),
            Ok("copy") => Ok(RootfsChoice::Force(RootfsMode::Copy)),
            Ok(other) => Err(format!(
                "BURROW_ROOTFS={other:?} is not one of overlay, copy, auto"
            )),
        }
    }
}

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

/// Everything the sandbox needs; built by `container` from the record.
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
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub mapping: IdMapping,
    /// Bind and tmpfs mounts, set up in order before pivot_root.
    pub mounts: Vec<Mount>,
    /// Remount the root filesystem read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// Capabilities the command keeps (Docker's default set, adjusted by
    /// `--cap-add`/`--cap-drop`), as a mask.
    pub caps: u64,
    /// Install the seccomp filter (see linux::seccomp).
    pub seccomp: bool,
    /// `--init`: PID 1 stays burrow, forwarding signals to the command and
    /// reaping orphans, so `stop` works on programs that ignore SIGTERM as
    /// PID 1.
    pub init: bool,
    /// Keep stdin (`-i`); otherwise PID 1 reads /dev/null.
    pub stdin: bool,
    /// PID 1's stdin, stdout and stderr, when not the caller's own (a
    /// monitor's pipes or a pty's slave side). The inner process closes its
    /// copies once PID 1 is forked, so the monitor sees EOF when it ends.
    pub stdio: Option<[RawFd; 3]>,
    /// stdio is a terminal: PID 1 starts a session and takes it as its
    /// controlling terminal.
    pub tty: bool,
    /// `-t` under a monitor: a unix socket on which PID 1 sends the master of
    /// a pty it opens in the container's own devpts (runc's console socket),
    /// and whose slave becomes its stdio.
    pub console: Option<RawFd>,
    /// `--rm`: paths the inner process deletes, in order, when PID 1 ends
    /// and before it reports the exit (the record, the name).
    pub remove_after: Vec<PathBuf>,
    /// `--rm`: after reporting the exit, the inner process deletes `dir`
    /// (files there may belong to subordinate ids, and unmounting costs an
    /// RCU grace period: neither belongs on the caller's critical path).
    pub remove_dir_after: bool,
    /// The container's cgroup (issue 4), set by the caller after
    /// `build_spec`; None runs it in the caller's cgroup.
    pub cgroup: Option<crate::linux::cgroup::Placement>,
}

/// Why a container could not start, with the exit code Docker would use.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct StartError {
    pub step: String,
    pub message: String,
    pub code: i32,
    /// PID 1 had started: the inner process ran the `--rm` cleanup itself.
    #[serde(default)]
    pub cleaned_up: bool,
}

impl StartError {
    pub fn new(step: &str, message: impl Into<String>, code: i32) -> Self {
        StartError {
            step: step.into(),
            message: message.into(),
            code,
            cleaned_up: false,
        }
    }
}

/// Messages to the caller, one JSON object per line. The inner process
/// sends `Rootfs`, `Pid` and finally `Exited` on the report pipe; PID 1 sends
/// `Failed` on the exec pipe, whose EOF alone means exec succeeded.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Rootfs(RootfsMode),
    Pid(i32),
    Failed(StartError),
    /// PID 1's exit code, sent once `remove_after` is done: the caller need
    /// not wait for the inner process to exit, which costs milliseconds of
    /// namespace teardown.
    Exited(i32),
}
