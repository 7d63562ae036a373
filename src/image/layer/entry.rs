//! Reading an archive entry's name and header fields: lexical normalisation
//! (`..` above the root refused), Go's empty numeric fields, PAX times, and
//! the per-entry buffers that carry them (with the errors that name the
//! entry).

use std::ffi::{CString, OsStr};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::time::TimeSpec;

use super::LayerError;
use crate::linux::fs::with_step;

/// Go's archive/tar, which writes most image layers, reads an empty numeric
/// header field as 0; do the same rather than reject the layer.
pub(super) fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        r => r,
    }
}

/// Last component of a normalised path.
pub(super) fn basename(norm: &[u8]) -> &[u8] {
    norm.rsplit(|b| *b == b'/').next().unwrap_or(norm)
}

/// Normalises an archive name into `out` (see module docs). Returns the
/// reason when the name climbs above the root.
pub(super) fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err("path climbs above the layer root with `..`");
                }
                let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(())
}

/// Parses a PAX time (`secs[.frac]`, possibly negative) to nanoseconds.
pub(super) fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    let mut nsec: i64 = 0;
    let mut digits = 0;
    for c in frac.bytes().take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        nsec = nsec * 10 + i64::from(c - b'0');
        digits += 1;
    }
    for _ in digits..9 {
        nsec *= 10;
    }
    if int.starts_with('-') && nsec > 0 {
        // -1.25 is -2 s + 0.75 s.
        Some(TimeSpec::new(secs - 1, 1_000_000_000 - nsec))
    } else {
        Some(TimeSpec::new(secs, nsec))
    }
}

pub(super) fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// Per-entry buffers, reused across entries to avoid allocations.
#[derive(Default)]
pub(super) struct Scratch {
    /// The entry's name as stored in the archive (for error messages).
    pub(super) raw: Vec<u8>,
    /// Normalised relative name (no leading `/`, no `.`/`..`/empty components).
    pub(super) norm: Vec<u8>,
    pub(super) link_raw: Vec<u8>,
    pub(super) link_norm: Vec<u8>,
    /// `user.*` extended attributes from PAX records.
    pub(super) xattrs: Vec<(CString, Vec<u8>)>,
    /// Nanosecond mtime from a PAX record, if any.
    pub(super) pax_mtime: Option<TimeSpec>,
}

impl Scratch {
    pub(super) fn path(&self) -> PathBuf {
        bytes_path(&self.raw)
    }

    pub(super) fn unsafe_err(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Unsafe {
            path: self.path(),
            reason: reason.into(),
        }
    }

    pub(super) fn write_err(&self, e: impl Into<io::Error>, step: impl fmt::Display) -> LayerError {
        LayerError::Write {
            path: self.path(),
            source: with_step(e, step),
        }
    }

    pub(super) fn read_err(&self, e: impl Into<io::Error>, step: impl fmt::Display) -> LayerError {
        LayerError::Read(with_step(
            e,
            format_args!("entry {:?}: {step}", self.path()),
        ))
    }
}
