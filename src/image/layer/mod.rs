//! Safe application of one tar layer to a directory (overlay whiteout
//! format): the public API and its rules. `extract.rs` applies entries,
//! `entry.rs` reads names and header fields; the descriptor-relative
//! primitives (in-root opening, replace, remove) are `linux::fs`'s.
//!
//! # Security model
//!
//! A layer archive is untrusted input. Nothing may be created, written,
//! chmod'ed, chown'ed or linked outside the destination directory, however the
//! archive is crafted. Every entry is handled in two steps:
//!
//! 1. Its name is normalised lexically: leading `/` is stripped (as Docker
//!    does), `.` and empty components are dropped, and `..` removes the
//!    previous component. A `..` that would climb above the layer root makes
//!    the whole layer fail with [`LayerError::Unsafe`] (we reject rather than
//!    clamp: no legitimate image contains such names, and silently rewriting
//!    them would hide a hostile archive). The same rule applies to hard-link
//!    targets. Symlink *targets* are stored verbatim: they are only ever
//!    followed with `RESOLVE_IN_ROOT`, here and inside the container.
//! 2. The entry's parent directory is opened with `openat2(RESOLVE_IN_ROOT)`
//!    relative to a descriptor of the destination, so symlinks already
//!    extracted resolve as if the destination were `/` (like a container
//!    rootfs) and can never lead outside it. Missing parents are created one
//!    component at a time. The final component is then touched only with
//!    `*at` calls that do not follow symlinks (`O_CREAT|O_EXCL|O_NOFOLLOW`,
//!    `mknodat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`,
//!    `AT_SYMLINK_NOFOLLOW`), or through a descriptor opened with `O_NOFOLLOW`.
//!
//! Whatever already exists at an entry's name is removed first (recursively
//! for a directory, like Docker), except that a directory entry over an
//! existing directory only updates its metadata.
//!
//! # Output format
//!
//! The result is an overlayfs layer for a mount with the `userxattr` option:
//! `dir/.wh.NAME` becomes a 0/0 character device `dir/NAME`, and
//! `dir/.wh..wh..opq` sets `user.overlay.opaque=y` on `dir`. Device nodes
//! cannot be created unprivileged and are skipped (with a note).
//!
//! Directory modes and mtimes are applied after the whole archive is read:
//! creating children changes a directory's mtime, and a read-only directory
//! (0555) would stop us from filling it when we run without `CAP_DAC_OVERRIDE`.
//!
//! A stream that ends cleanly on an entry boundary without the two zero
//! end-of-archive blocks is accepted (Docker accepts it too); a stream that
//! ends inside a header or inside an entry's data is an error.

use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::linux::fs::{apply_dir_metas, open_dir, with_step};

mod entry;
mod extract;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod hostile;
mod make;
#[cfg(test)]
mod tests;

use entry::bytes_path;
use entry::Scratch;
use extract::{Budget, CountingReader, Extractor};

/// What having no subordinate range means for the owners of files in
/// `what`: said by `import` for a layer with other owners than root, and
/// once by the commands that make images and containers.
pub fn no_range_note(what: &str) -> String {
    format!("no subuid/subgid range: all files in {what} belong to you")
}

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
    /// The stream could not be read, is not a tar archive, or is truncated.
    #[error("reading layer archive: {0}")]
    Read(#[source] std::io::Error),
    /// The entry's name or link target would escape the layer root, or is malformed.
    #[error("layer entry {path:?}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    /// More entries than [`MAX_ENTRIES`]: a tar bomb.
    #[error("the layer has more than {0} entries: refused as a tar bomb")]
    TooManyEntries(u64),
    /// A filesystem operation failed; `source` names the step.
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read-ahead for headers and small files.
const READ_BUF: usize = 64 * 1024;

/// The most an entry's PAX and GNU long-name/long-link headers may take
/// together. Real ones are a few hundred bytes (a PATH_MAX name, some
/// xattrs); the tar crate holds them in memory.
pub const MAX_EXTENDED_HEADERS: u64 = 1 << 20;

/// The most entries one layer may have. The largest real layers (a full
/// TeX or node_modules tree) hold a few hundred thousand files; a layer of
/// a million tiny entries is a bomb, refused once it passes this.
pub const MAX_ENTRIES: u64 = 1_000_000;

/// Extracts one uncompressed tar stream into `dest` (an existing directory),
/// producing an overlayfs layer (see the module docs for the rules).
///
/// The reader is drained to EOF even after the end-of-archive marker, so a
/// caller hashing the stream sees every byte; `tar_bytes` counts them all.
/// On error `dest` is left partly written; the caller discards it.
pub fn apply_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, LayerError> {
    let root = open_dir(dest).map_err(|e| LayerError::Write {
        path: dest.to_path_buf(),
        source: with_step(e, "open layer directory"),
    })?;
    apply_layer_at(reader, root, dest, opts)
}

/// [`apply_layer`] into the open directory `root` (named `dest` in
/// messages): for a caller that resolved the destination itself and must
/// not have it looked up again by path.
pub fn apply_layer_at<R: Read>(
    reader: R,
    root: OwnedFd,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, LayerError> {
    let budget = std::rc::Rc::new(Budget::default());
    let counter = CountingReader {
        inner: reader,
        count: 0,
        budget: budget.clone(),
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(READ_BUF, counter));
    let mut x = Extractor::new(root, opts.ids).map_err(|e| LayerError::Write {
        path: dest.to_path_buf(),
        source: with_step(e, "stat layer directory"),
    })?;
    let mut scratch = Scratch::default();
    let mut entries = archive.entries().map_err(LayerError::Read)?;
    // Finding the next entry skips what is left of this one's data (padded
    // to a block), then reads headers: the extended ones are bounded.
    let mut skip = 0u64;
    let mut count = 0u64;
    loop {
        budget.limit.set(
            budget
                .count
                .get()
                .saturating_add(skip)
                .saturating_add(MAX_EXTENDED_HEADERS + READ_BUF as u64 + 8 * 512),
        );
        let next = entries.next();
        budget.limit.set(u64::MAX);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(LayerError::Read)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(LayerError::TooManyEntries(MAX_ENTRIES));
        }
        skip = entry.size().div_ceil(512) * 512;
        x.apply_entry(&mut scratch, &mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| LayerError::Read(with_step(e, "reading past the end of the archive")))?;
    let tar_bytes = rest.into_inner().count;

    apply_dir_metas(x.root.as_fd(), &x.dirs, false).map_err(|(path, e)| LayerError::Write {
        path: if path.is_empty() {
            PathBuf::from(".")
        } else {
            bytes_path(&path)
        },
        source: e,
    })?;
    Ok(ApplyReport {
        tar_bytes,
        entries: x.entries,
        notes: x.notes(),
    })
}
