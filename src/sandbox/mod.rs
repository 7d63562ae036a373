//! The sandbox: turn a container's spec into a process tree.
//!
//! ```text
//! burrow (caller, host ids)            writes the id maps, relays signals, waits
//!  └─ inner  (root of a new user ns;   mounts the rootfs (overlay or copy) in its
//!             also new mnt/uts/ipc/pid) own mount ns, waits for PID 1, cleans up
//!      └─ PID 1 (new mount ns)         /proc, /dev, /sys, /etc files, pivot_root,
//!                                      hostname, cwd, user, exec the command
//! ```
//!
//! The inner process exists because files in the container's upper dir may
//! belong to subordinate ids: only a process inside the user namespace can
//! delete them, and only a process outside PID 1's mount namespace still sees
//! the store after pivot_root.

mod child;
mod spawn;
mod user;

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

/// Everything the sandbox needs; built by `container` from the record.
#[derive(Debug, Clone)]
pub struct Spec {
    /// containers/<id>: holds upper/, work/, merged/, rootfs/, hosts, ...
    pub dir: PathBuf,
    /// Layer directories, top-most first (overlayfs order).
    pub lowers: Vec<PathBuf>,
    pub rootfs: RootfsChoice,
    pub hostname: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub mapping: IdMapping,
    /// Keep the caller's stdin (`-i`); otherwise PID 1 reads /dev/null.
    pub stdin: bool,
    /// `--rm`: the inner process deletes upper/work/rootfs when PID 1 ends.
    pub remove_rootfs_after: bool,
}

/// Why a container could not start, with the exit code Docker would use.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct StartError {
    pub step: String,
    pub message: String,
    pub code: i32,
}

/// Messages from the inner process and PID 1 to the caller, one JSON object
/// per line on a close-on-exec pipe; EOF after `Pid` means exec succeeded.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Rootfs(RootfsMode),
    Pid(i32),
    Failed(StartError),
}
