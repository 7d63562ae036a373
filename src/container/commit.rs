//! `commit` of a container: find its overlay upper dir (its changes) and its
//! image, pause it while the changes are archived (Docker's default), and
//! hand both to the image layer, which builds and stores the new image.

use std::path::PathBuf;

use super::export::container_mapping;
use super::{lifecycle, ContainerError, ContainerRecord, Status};
use crate::image::commit::{self as image_commit, ChangesFrom, CommitOptions, Committed};
use crate::linux::userns::IdMapping;
use crate::sandbox::RootfsMode;
use crate::store::Store;

/// What the sandbox creates in a container's root when the image lacks it,
/// to mount on (see `sandbox/child.rs`): the runtime's, not the
/// container's changes, so a commit leaves them out while they are empty
/// placeholders (Docker keeps them in an init layer it never commits).
pub const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "proc",
    "dev",
    "sys",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    super::APT_NO_SANDBOX,
];

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] image_commit::CommitError),
}

/// Commit `rec`'s changes as a new image. `pause` stops a running
/// container's processes for the duration, so the archive is one moment of
/// its filesystem; without it, files written meanwhile may be caught half
/// way (each file is still archived whole, at its size when it was reached).
pub fn commit(
    store: &Store,
    mapping: &IdMapping,
    rec: &mut ContainerRecord,
    mut opts: CommitOptions,
    pause: bool,
) -> Result<Committed, CommitError> {
    let dir = store.container_dir(&rec.id);
    let upper = if rec.rootfs_mode == Some(RootfsMode::Copy) {
        // A full copy of the image: its changes are what differs from the
        // image's layers.
        ChangesFrom::Copy {
            rootfs: dir.join("rootfs"),
            lowers: rec.lowers(store),
        }
    } else if rec.rootfs_mode == Some(RootfsMode::FuseOverlayfs) {
        ChangesFrom::FuseUpper(dir.join("upper"))
    } else {
        ChangesFrom::Upper(dir.join("upper"))
    };
    let present = match &upper {
        ChangesFrom::Upper(d) | ChangesFrom::FuseUpper(d) => d.is_dir(),
        ChangesFrom::Copy { rootfs, .. } => rootfs.is_dir(),
    };
    if !present {
        return Err(ContainerError::NeverStarted(rec.name.clone()).into());
    }
    if opts.created_by.is_empty() {
        let mut argv = vec![rec.path.clone()];
        argv.extend(rec.args.iter().cloned());
        opts.created_by = argv.join(" ");
    }
    opts.mount_points = RUNTIME_MOUNT_POINTS.iter().map(PathBuf::from).collect();
    let source = container_mapping(rec, mapping);
    let paused_here = pause && rec.live_status(store) == Status::Running;
    if paused_here {
        lifecycle::pause(store, rec)?;
    }
    let result = image_commit::commit_changes(store, mapping, &source, &rec.image, &upper, &opts);
    if paused_here {
        if let Err(e) = lifecycle::unpause(store, rec) {
            tracing::warn!("unpausing {} after commit: {e}", rec.name);
        }
    }
    Ok(result?)
}
