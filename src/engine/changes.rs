//! What a container changed, and where its changes go: `diff` (the changes
//! against its image), `commit` (them as a new image) and `export` (its
//! whole tree as a tar).

use std::fs::File;
use std::path::PathBuf;

use super::{containers::find, Engine, Result};
use crate::container::{self, commit::RUNTIME_MOUNT_POINTS, export::container_mapping};
use crate::image::changes::{self, Change};
use crate::image::commit::CommitOptions;
use crate::sandbox::RootfsMode;

pub use crate::image::changes::Kind;

/// The files a container added, changed or deleted against its image, as
/// `docker diff` lists them (the runtime's own mount points left out).
pub fn diff(engine: &Engine, key: &str) -> Result<Vec<Change>> {
    let rec = find(engine, key)?;
    let dir = engine.store.container_dir(&rec.id);
    let skip: Vec<PathBuf> = RUNTIME_MOUNT_POINTS.iter().map(PathBuf::from).collect();
    let mapping = container_mapping(&rec, &engine.mapping);
    let lowers = rec.lowers(&engine.store);
    if rec.rootfs_mode == Some(RootfsMode::Copy) {
        // A full copy of the image: compared with the image's layers.
        let rootfs = dir.join("rootfs");
        if !rootfs.is_dir() {
            return Ok(Vec::new());
        }
        return Ok(changes::list_copy(&rootfs, &lowers, &skip, &mapping)?);
    }
    let upper = dir.join("upper");
    if !upper.is_dir() {
        return Ok(Vec::new());
    }
    let fuse = rec.rootfs_mode == Some(RootfsMode::FuseOverlayfs);
    Ok(changes::list(&upper, &lowers, &skip, &mapping, fuse)?)
}

/// Docker's number for a kind of change (the API's `Kind`).
pub fn kind_number(kind: Kind) -> u8 {
    match kind {
        Kind::Changed => 0,
        Kind::Added => 1,
        Kind::Deleted => 2,
    }
}

/// What to commit a container as.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Dockerfile instructions applied to the image's config (`-c`).
    pub changes: Vec<String>,
    pub comment: String,
    pub author: String,
    /// The new image's name; none leaves it untagged.
    pub reference: Option<String>,
    /// Pause a running container while its changes are archived.
    pub pause: bool,
}

/// A committed image: its id, and notes on what was left out.
pub use crate::image::commit::Committed;

/// The container's changes as a new image on top of its own.
pub fn commit(engine: &Engine, key: &str, req: CommitRequest) -> Result<Committed> {
    let reference = super::images::new_name(req.reference.as_deref())?;
    let mut rec = find(engine, key)?;
    let opts = CommitOptions {
        changes: req.changes,
        comment: req.comment,
        author: req.author,
        reference,
        ..Default::default()
    };
    Ok(container::commit::commit(
        &engine.store,
        &engine.mapping,
        &mut rec,
        opts,
        req.pause,
    )?)
}

/// The container's whole tree as a tar written to `out`; returns notes on
/// what could not be archived as it is.
pub fn export(engine: &Engine, key: &str, out: File) -> Result<Vec<String>> {
    let rec = find(engine, key)?;
    Ok(container::export::export(
        &engine.store,
        &rec,
        &engine.mapping,
        out,
    )?)
}

/// The same tar, written to a new file at `path` (left as it was when the
/// export fails).
pub fn export_to_path(engine: &Engine, key: &str, path: &std::path::Path) -> Result<Vec<String>> {
    let rec = find(engine, key)?;
    Ok(container::export::export_to_path(
        &engine.store,
        &rec,
        &engine.mapping,
        path,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_dockers_numbers() {
        assert_eq!(
            [Kind::Changed, Kind::Added, Kind::Deleted].map(kind_number),
            [0, 1, 2]
        );
    }
}
