//! A container's overlay upper dir read as Docker's change list (`diff`:
//! `A`dded, `C`hanged, `D`eleted paths against the image's layers) and as
//! a size (`ps -s`).
//!
//! In the upper dir a 0/0 character device is a deletion (overlayfs's
//! whiteout), a directory marked `user.overlay.opaque=y` replaces the
//! image's directory of that name (a change of the directory, whose entries
//! are all new), and anything else is new unless a lower layer has it.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::linux::userns::{self, IdMapping};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Added,
    Changed,
    Deleted,
}

impl Kind {
    /// Docker's letter.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        }
    }
}

/// One changed path, absolute inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: Kind,
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("reading {path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("reading the changes in a user namespace: {0}")]
    Userns(String),
}

/// The changes in `upper` over `lowers` (top-most first), sorted by path.
/// `skip` names paths (relative) that are the runtime's own empty mount
/// points, not the container's changes. Files the caller cannot read (a
/// directory owned by one of the container's subordinate ids) are read
/// again from inside a user namespace with `mapping`, where the caller is
/// root over them.
pub fn list(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
    mapping: &IdMapping,
) -> Result<Vec<Change>, ChangesError> {
    match walk_changes(upper, lowers, skip) {
        Err(ChangesError::Io { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            let (u, l, s) = (upper.to_path_buf(), lowers.to_vec(), skip.to_vec());
            userns::run_in_userns_with(mapping, move || {
                walk_changes(&u, &l, &s).map_err(|e| e.to_string())
            })
            .map_err(|e| ChangesError::Userns(e.to_string()))
        }
        r => r,
    }
}

fn walk_changes(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
) -> Result<Vec<Change>, ChangesError> {
    let mut out = Vec::new();
    visit(upper, Path::new(""), &mut |rel, md| {
        let abs = format!("/{}", rel.display());
        let kind = if md.file_type().is_char_device() && md.rdev() == 0 {
            if !in_lowers(lowers, rel) {
                // A whiteout of nothing the image has: nothing to report.
                return Ok(false);
            }
            Kind::Deleted
        } else if skip.iter().any(|p| p == rel) && is_empty(&upper.join(rel), md) {
            return Ok(false);
        } else if in_lowers(lowers, rel) || (md.is_dir() && is_opaque(&upper.join(rel))) {
            Kind::Changed
        } else {
            Kind::Added
        };
        out.push(Change { kind, path: abs });
        Ok(md.is_dir())
    })?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The bytes of the files in `upper` (what Docker's `ps -s` calls the
/// container's size). Entries the caller cannot read are not counted.
pub fn size(upper: &Path) -> u64 {
    let mut total = 0;
    let _ = visit(upper, Path::new(""), &mut |_, md| {
        if md.is_file() {
            total += md.len();
        }
        Ok(md.is_dir())
    });
    total
}

/// [`size`], counting what the caller cannot read too: directories owned by
/// the container's subordinate ids (mode 700, say) are walked again from
/// inside a user namespace with `mapping`, where the caller is root over
/// them. Stat is enough there; no file is opened.
pub fn size_as(upper: &Path, mapping: &IdMapping) -> u64 {
    let walk = |upper: &Path| -> Result<u64, ChangesError> {
        let mut total = 0;
        visit(upper, Path::new(""), &mut |_, md| {
            if md.is_file() {
                total += md.len();
            }
            Ok(md.is_dir())
        })?;
        Ok(total)
    };
    match walk(upper) {
        Ok(n) => n,
        Err(ChangesError::Io { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            let u = upper.to_path_buf();
            userns::run_in_userns_with(mapping, move || walk(&u).map_err(|e| e.to_string()))
                .unwrap_or_else(|_| size(upper))
        }
        Err(_) => size(upper),
    }
}

/// Depth-first over `root/rel`, never following symlinks; `f` says whether
/// to descend into a directory. An unreadable directory is an error unless
/// it is the caller's choice not to descend.
fn visit(
    root: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &Metadata) -> Result<bool, ChangesError>,
) -> Result<(), ChangesError> {
    let dir = root.join(rel);
    let io_err = |source| ChangesError::Io {
        path: dir.clone(),
        source,
    };
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let md = fs::symlink_metadata(root.join(&child)).map_err(|source| ChangesError::Io {
            path: root.join(&child),
            source,
        })?;
        if f(&child, &md)? && md.is_dir() {
            visit(root, &child, f)?;
        }
    }
    Ok(())
}

fn is_empty(path: &Path, md: &Metadata) -> bool {
    if md.is_dir() {
        fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
    } else {
        md.is_file() && md.len() == 0
    }
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(f) = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
    else {
        return false;
    };
    let mut buf = [0u8; 4];
    matches!(
        crate::linux::fs::fgetxattr(&f, c"user.overlay.opaque", &mut buf),
        Ok(Some(1)) if buf[0] == b'y'
    )
}

/// Does the image (its layers, top-most first, merged as overlayfs merges
/// them) have `rel`? Each component is looked at without following
/// symlinks, so a layer's symlink never leads the lookup off the layer.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().collect();
    for layer in lowers {
        let mut p = layer.clone();
        let mut hidden_below = false;
        for (i, c) in parts.iter().enumerate() {
            p.push(c);
            let Ok(md) = fs::symlink_metadata(&p) else {
                break;
            };
            if md.file_type().is_char_device() && md.rdev() == 0 {
                // Deleted by this layer: lower layers do not show through.
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if !md.is_dir() {
                // A file or symlink here hides deeper paths of lower layers.
                return false;
            }
            if is_opaque(&p) {
                hidden_below = true;
            }
        }
        if hidden_below {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(p: &Path) -> bool {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .is_ok()
    }

    #[test]
    fn added_changed_deleted() {
        let d = tempfile::tempdir().unwrap();
        let (upper, lower) = (d.path().join("u"), d.path().join("l"));
        for p in ["etc", "bin", "var/log", "gone"] {
            fs::create_dir_all(lower.join(p)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("bin/sh"), "").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("tmp/new")).unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::write(upper.join("etc/passwd"), "root\nme").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("tmp/new/f"), "12345").unwrap();
        let skip = vec![PathBuf::from("proc"), PathBuf::from("etc/hosts")];
        let mapping = IdMapping::detect(Path::new("/etc"));
        let got = list(&upper, std::slice::from_ref(&lower), &skip, &mapping).unwrap();
        let shown: Vec<String> = got
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        assert_eq!(
            shown,
            [
                "C /etc",
                "C /etc/passwd",
                "A /tmp",
                "A /tmp/new",
                "A /tmp/new/f"
            ]
        );
        assert_eq!(size(&upper), 12);
        // Whiteouts need mknod of 0/0, which an unprivileged user may not do.
        if !whiteout(&upper.join("gone")) {
            eprintln!("SKIPPED whiteouts: mknod 0/0 not permitted here");
            return;
        }
        assert!(whiteout(&upper.join("never-there")));
        let got = list(&upper, &[lower], &skip, &mapping).unwrap();
        assert!(got.contains(&Change {
            kind: Kind::Deleted,
            path: "/gone".into()
        }));
        assert!(!got.iter().any(|c| c.path == "/never-there"));
    }
}
