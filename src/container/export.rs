//! `export`: a container's merged filesystem as one plain tar stream. The
//! view is a private read-only overlay of the container's upper dir over its
//! image layers, mounted in a user namespace of the caller's own: the same
//! for a running and a stopped container, and it never touches the work dir
//! the container's own mount writes through. A container on the copy
//! fallback is read from its copied rootfs. Owners read as inside the
//! container because the namespace has the container's id mapping.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ContainerError, ContainerRecord, Result};
use crate::image::layer_tar::{write_tree, PackReport, TreeKind};
use crate::linux::mount;
use crate::linux::userns::{run_in_userns_with, IdMapping, UsernsError};
use crate::sandbox::RootfsMode;
use crate::store::Store;

/// The id mapping the container's processes run with: file owners read
/// through it are the owners the container sees.
pub fn container_mapping(rec: &ContainerRecord, mapping: &IdMapping) -> IdMapping {
    if rec.host_config.userns_mode == "keep-id" {
        crate::sandbox::user::keep_id(mapping)
    } else {
        mapping.clone()
    }
}

/// Why the archive could not be written (in the packing child).
#[derive(Debug, thiserror::Error)]
enum Pack {
    #[error("new mount namespace: {0}")]
    Unshare(nix::Error),
    #[error("{0}")]
    Fuse(crate::linux::fuse_overlay::FuseOverlayError),
    #[error("{0}")]
    Mount(mount::MountError),
    #[error("{0}")]
    Tree(crate::image::layer_tar::PackError),
    #[error("{0}")]
    Buffer(std::io::Error),
    #[error("writing the archive: {0}")]
    Write(std::io::Error),
}

fn child_err(e: UsernsError) -> ContainerError {
    match e {
        UsernsError::Child(msg) => ContainerError::Exporting(msg),
        e => ContainerError::Userns(e),
    }
}

/// Write the container's filesystem as a tar stream to `out`; returns notes
/// for the user (sockets skipped, files that changed while being read).
pub fn export(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    out: File,
) -> Result<Vec<String>> {
    let dir = store.container_dir(&rec.id);
    let copy_mode = rec.rootfs_mode == Some(RootfsMode::Copy);
    let fuse_mode = rec.rootfs_mode == Some(RootfsMode::FuseOverlayfs);
    let rootfs = dir.join("rootfs");
    let mut lowers: Vec<PathBuf> = vec![dir.join("upper")];
    lowers.extend(rec.lowers(store));
    if !copy_mode && !fuse_mode && lowers.len() < 2 {
        // overlayfs needs two layers for a mount without an upper dir.
        return Err(ContainerError::NoLayers(rec.name.clone()));
    }
    let mount_point = store.mount_point();
    let report: PackReport = run_in_userns_with(&container_mapping(rec, mapping), move || {
        // A read-only view served by fuse-overlayfs, which reads its own
        // upper dir's marks (the kernel's overlayfs does not), until the
        // archive is written.
        let mut _daemon = None;
        let root = if copy_mode {
            rootfs
        } else if fuse_mode {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(Pack::Unshare)?;
            _daemon = Some(
                crate::linux::fuse_overlay::Daemon::mount(&lowers, None, &mount_point, None)
                    .map_err(Pack::Fuse)?,
            );
            mount_point
        } else {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(Pack::Unshare)?;
            mount::overlay_readonly(&lowers, &mount_point).map_err(Pack::Mount)?;
            mount_point
        };
        let (report, w) = write_tree(
            &root,
            TreeKind::Plain,
            BufWriter::with_capacity(256 * 1024, out),
        )
        .map_err(Pack::Tree)?;
        w.into_inner()
            .map_err(|e| Pack::Buffer(e.into_error()))?
            .flush()
            .map_err(Pack::Write)?;
        Ok::<_, Pack>(report)
    })
    .map_err(child_err)?;
    Ok(report.notes)
}

/// Export into `path`: written to a temporary file beside it and renamed
/// into place when complete, so `path` never holds half an archive.
pub fn export_to_path(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    path: &Path,
) -> Result<Vec<String>> {
    let name = path
        .file_name()
        .ok_or_else(|| ContainerError::NotAFileName(path.to_path_buf()))?;
    let tmp = path.with_file_name(format!(
        ".{}.burrow-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&tmp).map_err(|source| ContainerError::Io {
        step: "creating",
        path: tmp.clone(),
        source,
    })?;
    let result = export(store, rec, mapping, file).and_then(|notes| {
        std::fs::rename(&tmp, path).map_err(|source| ContainerError::Io {
            step: "writing",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(notes)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
