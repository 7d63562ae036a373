//! Safe application of one tar layer to a directory (overlay whiteout format),
//! and flattening of a layer stack into one directory for the copy fallback.
//!
//! STUB: being written by a helper; the interface below is fixed.

use std::io::Read;
use std::path::{Path, PathBuf};

/// How file owners recorded in the archive are applied.
#[derive(Debug, Clone, Copy)]
pub enum IdPolicy {
    /// Keep owners (we run as root of a user namespace with a range mapped).
    /// Ids above the limits are clamped to the limit, with a note.
    Keep { max_uid: u32, max_gid: u32 },
    /// Single-id mapping: every file belongs to the caller; no chown at all.
    Collapse,
}

#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub ids: IdPolicy,
}

#[derive(Debug, Default, Clone)]
pub struct ApplyReport {
    /// Bytes of uncompressed tar read (the whole stream, drained to EOF).
    pub tar_bytes: u64,
    /// Number of archive entries applied.
    pub entries: u64,
    /// One-line notes for the user, each distinct kind said once
    /// (skipped device nodes, clamped ids, collapsed ownership).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading layer archive: {0}")]
    Read(#[source] std::io::Error),
    #[error("layer entry {path:?}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn apply_layer<R: Read>(_reader: R, _dest: &Path, _opts: &ApplyOptions) -> Result<ApplyReport, LayerError> {
    unimplemented!("helper")
}

pub fn flatten_layers(_lowers_bottom_to_top: &[PathBuf], _dest: &Path) -> Result<(), LayerError> {
    unimplemented!("helper")
}
