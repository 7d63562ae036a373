//! A container's overlay upper dir read as Docker's change list (`diff`:
//! `A`dded, `C`hanged, `D`eleted paths against the image's layers) and as
//! a size (`ps -s`).
//!
//! In the upper dir a 0/0 character device is a deletion (overlayfs's
//! whiteout), a directory marked `user.overlay.opaque=y` replaces the
//! image's directory of that name (a change of the directory, whose entries
//! are all new), and anything else is new unless a lower layer has it.
//! A fuse-overlayfs upper dir (`fuse` below) also marks a deletion with an
//! empty `.wh.NAME` file where mknod is refused, and an opaque directory
//! with a `.wh..wh..opq` file or `user.fuseoverlayfs.opaque` /
//! `trusted.overlay.opaque` (fuse-overlayfs's main.c, `create_whiteout`,
//! `set_fd_opaque`).

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr};
use std::io;
use std::ops::Bound;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags};
use nix::sys::stat::{fstatat, FileStat, Mode};

use serde::{Deserialize, Serialize};

use crate::linux::fs::{dir_flags, list_dir};
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
    Userns(#[source] userns::UsernsError),
}

/// The changes in `upper` over `lowers` (top-most first), sorted by path.
/// `skip` names paths (relative) that are the runtime's own empty mount
/// points, not the container's changes. Files the caller cannot read (a
/// directory owned by one of the container's subordinate ids) are read
/// again from inside a user namespace with `mapping`, where the caller is
/// root over them. `fuse`: `upper` is fuse-overlayfs's.
pub fn list(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
    mapping: &IdMapping,
    fuse: bool,
) -> Result<Vec<Change>, ChangesError> {
    match walk_changes(upper, lowers, skip, fuse) {
        Err(ChangesError::Io { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            let (u, l, s) = (upper.to_path_buf(), lowers.to_vec(), skip.to_vec());
            userns::run_in_userns_with(mapping, move || walk_changes(&u, &l, &s, fuse))
                .map_err(ChangesError::Userns)
        }
        r => r,
    }
}

fn walk_changes(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
    fuse: bool,
) -> Result<Vec<Change>, ChangesError> {
    let mut out = Vec::new();
    walk(upper, &mut |rel, e| {
        if fuse && e.is_file() {
            if let Some(gone) = e.name.to_bytes().strip_prefix(b".wh.") {
                // The opaque marker is read with its directory.
                if gone != b".wh..opq" {
                    let target = rel.with_file_name(OsStr::from_bytes(gone));
                    if in_lowers(lowers, &target) {
                        out.push(Change {
                            kind: Kind::Deleted,
                            path: format!("/{}", target.display()),
                        });
                    }
                }
                return Ok(false);
            }
        }
        let abs = format!("/{}", rel.display());
        let kind = if e.is_whiteout() {
            if !in_lowers(lowers, rel) {
                // A whiteout of nothing the image has: nothing to report.
                return Ok(false);
            }
            Kind::Deleted
        } else if skip.iter().any(|p| p == rel) && e.is_empty() {
            return Ok(false);
        } else if in_lowers(lowers, rel) || (e.is_dir() && e.is_opaque(fuse)) {
            Kind::Changed
        } else {
            Kind::Added
        };
        out.push(Change { kind, path: abs });
        Ok(e.is_dir())
    })?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The changes in `rootfs`, a full copy of the image's layers (`lowers`,
/// top-most first) that a container ran on, sorted by path: what overlayfs
/// would have kept in an upper dir. As Docker's naive driver does
/// (pkg/archive/changes.go, `ChangesDirs`), an entry is changed when its
/// type, mode, owner, device number, or (not for directories) size or
/// mtime differs from the image's; every directory above a change is
/// changed too, and only the top of a deleted tree is listed. The copy keeps
/// the layers' mtimes to the nanosecond (`sandbox::rootfs_copy`), so an
/// untouched file compares equal. Read inside a user namespace with
/// `mapping` when the caller cannot read the copy.
pub fn list_copy(
    rootfs: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
    mapping: &IdMapping,
) -> Result<Vec<Change>, ChangesError> {
    let listed = |r: &Path, l: &[PathBuf], s: &[PathBuf]| {
        copy_changes(r, l, s).map(|c| {
            c.into_iter()
                .map(|(rel, kind)| Change {
                    kind,
                    path: format!("/{}", rel.display()),
                })
                .collect::<Vec<_>>()
        })
    };
    match listed(rootfs, lowers, skip) {
        Err(ChangesError::Io { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            let (r, l, s) = (rootfs.to_path_buf(), lowers.to_vec(), skip.to_vec());
            userns::run_in_userns_with(mapping, move || listed(&r, &l, &s))
                .map_err(ChangesError::Userns)
        }
        r => r,
    }
}

/// What the comparison looks at (Docker's `statDifferent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: i64,
    mtime: (i64, i64),
}

impl Meta {
    fn of(st: &FileStat) -> Meta {
        Meta {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
        }
    }
    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    fn differs(&self, other: &Meta) -> bool {
        if self.mode != other.mode
            || self.uid != other.uid
            || self.gid != other.gid
            || self.rdev != other.rdev
        {
            return true;
        }
        // A directory's size and mtime move whenever an entry comes or
        // goes; those entries are the change.
        !self.is_dir() && (self.size != other.size || self.mtime != other.mtime)
    }
}

/// Every path of the image, its layers merged as overlayfs merges them.
fn merged(lowers: &[PathBuf]) -> Result<BTreeMap<PathBuf, Meta>, ChangesError> {
    let mut map: BTreeMap<PathBuf, Meta> = BTreeMap::new();
    fn drop_below(map: &mut BTreeMap<PathBuf, Meta>, rel: &Path) {
        let below: Vec<PathBuf> = map
            .range::<Path, _>((Bound::Excluded(rel), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(rel))
            .map(|(p, _)| p.clone())
            .collect();
        for p in below {
            map.remove(&p);
        }
    }
    for layer in lowers.iter().rev() {
        walk(layer, &mut |rel, e| {
            if e.is_whiteout() {
                map.remove(rel);
                drop_below(&mut map, rel);
                return Ok(false);
            }
            let meta = Meta::of(&e.st);
            let replaces_dir = map.get(rel).is_some_and(|m| m.is_dir()) && !meta.is_dir();
            if replaces_dir || (e.is_dir() && e.is_opaque(false)) {
                drop_below(&mut map, rel);
            }
            map.insert(rel.to_path_buf(), meta);
            Ok(e.is_dir())
        })?;
    }
    Ok(map)
}

/// [`list_copy`]'s comparison, read as the caller: each changed path
/// (relative, as the file system spells it) and how, sorted by path.
pub fn copy_changes(
    rootfs: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
) -> Result<Vec<(PathBuf, Kind)>, ChangesError> {
    let image = merged(lowers)?;
    let mut now: BTreeMap<PathBuf, Meta> = BTreeMap::new();
    let mut changed: BTreeMap<PathBuf, Kind> = BTreeMap::new();
    walk(rootfs, &mut |rel, e| {
        let meta = Meta::of(&e.st);
        now.insert(rel.to_path_buf(), meta);
        match image.get(rel) {
            None if skip.iter().any(|p| p == rel) && e.is_empty() => {}
            None => {
                changed.insert(rel.to_path_buf(), Kind::Added);
            }
            Some(old) if old.differs(&meta) => {
                changed.insert(rel.to_path_buf(), Kind::Changed);
            }
            Some(_) => {}
        }
        Ok(e.is_dir())
    })?;
    for rel in image.keys() {
        if now.contains_key(rel) {
            continue;
        }
        // Only the top of a deleted tree, and only where the directory
        // above is still one (a file in its place hides the rest).
        let parent = rel.parent().unwrap_or(Path::new(""));
        let parent_is_dir =
            parent.as_os_str().is_empty() || now.get(parent).is_some_and(|m| m.is_dir());
        if parent_is_dir {
            changed.insert(rel.clone(), Kind::Deleted);
        }
    }
    // The directories above a change carry it (a layer must hold them).
    let tops: Vec<PathBuf> = changed.keys().cloned().collect();
    for rel in tops {
        for up in rel.ancestors().skip(1) {
            if up.as_os_str().is_empty() {
                break;
            }
            changed.entry(up.to_path_buf()).or_insert(Kind::Changed);
        }
    }
    Ok(changed.into_iter().collect())
}

/// The bytes of the files in `upper` (what Docker's `ps -s` calls the
/// container's size). Entries the caller cannot read are not counted.
pub fn size(upper: &Path) -> u64 {
    let mut total = 0;
    let _ = walk(upper, &mut |_, e| {
        if e.is_file() {
            total += e.len();
        }
        Ok(e.is_dir())
    });
    total
}

/// [`size`], counting what the caller cannot read too: directories owned by
/// the container's subordinate ids (mode 700, say) are walked again from
/// inside a user namespace with `mapping`, where the caller is root over
/// them. Stat is enough there; no file is opened.
pub fn size_as(upper: &Path, mapping: &IdMapping) -> u64 {
    let count = |upper: &Path| -> Result<u64, ChangesError> {
        let mut total = 0;
        walk(upper, &mut |_, e| {
            if e.is_file() {
                total += e.len();
            }
            Ok(e.is_dir())
        })?;
        Ok(total)
    };
    match count(upper) {
        Ok(n) => n,
        Err(ChangesError::Io { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            let u = upper.to_path_buf();
            userns::run_in_userns_with(mapping, move || count(&u)).unwrap_or_else(|_| size(upper))
        }
        Err(_) => size(upper),
    }
}

/// One entry of the walk: its name in the directory `parent` and what
/// lstat said of it there.
struct Entry<'a> {
    parent: BorrowedFd<'a>,
    name: &'a CStr,
    st: FileStat,
}

impl Entry<'_> {
    fn kind(&self) -> libc::mode_t {
        self.st.st_mode & libc::S_IFMT
    }
    fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    fn len(&self) -> u64 {
        self.st.st_size as u64
    }
    /// overlayfs's whiteout: a 0/0 character device.
    fn is_whiteout(&self) -> bool {
        self.kind() == libc::S_IFCHR && self.st.st_rdev == 0
    }
    /// The directory itself, never through a symlink put in its place
    /// since the stat.
    fn open_dir(&self) -> nix::Result<OwnedFd> {
        openat(self.parent, self.name, dir_flags(), Mode::empty())
    }
    fn is_empty(&self) -> bool {
        if self.is_dir() {
            self.open_dir()
                .is_ok_and(|fd| list_dir(fd.as_fd()).is_ok_and(|n| n.is_empty()))
        } else {
            self.is_file() && self.len() == 0
        }
    }
    fn is_opaque(&self, fuse: bool) -> bool {
        self.open_dir()
            .is_ok_and(|fd| is_opaque(fd.as_fd()) || (fuse && is_fuse_opaque(fd.as_fd())))
    }
}

/// Depth-first over the tree at `root`; `f` says whether to descend into a
/// directory. Every step is relative to its parent's descriptor, lstat'ed
/// and opened O_NOFOLLOW|O_DIRECTORY: a running container that swaps a
/// directory of its upper dir for a symlink (to the user's home, say)
/// cannot make the walk read, or report names and sizes from, the host.
/// An entry that vanishes or stops being a directory while the walk runs is
/// passed over. An unreadable directory is an error.
fn walk(
    root: &Path,
    f: &mut dyn FnMut(&Path, &Entry) -> Result<bool, ChangesError>,
) -> Result<(), ChangesError> {
    let fd = crate::linux::fs::open_dir(root).map_err(|e| ChangesError::Io {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    visit(fd.as_fd(), root, Path::new(""), f)
}

fn visit(
    dir: BorrowedFd<'_>,
    root: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &Entry) -> Result<bool, ChangesError>,
) -> Result<(), ChangesError> {
    let io_err = |path: &Path, source: io::Error| ChangesError::Io {
        path: root.join(path),
        source,
    };
    let mut names = list_dir(dir).map_err(|e| io_err(rel, e))?;
    names.sort();
    for name in names {
        let child = rel.join(OsStr::from_bytes(name.to_bytes()));
        let st = match fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(io_err(&child, e.into())),
        };
        let entry = Entry {
            parent: dir,
            name: &name,
            st,
        };
        if f(&child, &entry)? && entry.is_dir() {
            let sub = match entry.open_dir() {
                Ok(fd) => fd,
                // Removed, or replaced by a symlink or a file, since the stat.
                Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => continue,
                Err(e) => return Err(io_err(&child, e.into())),
            };
            visit(sub.as_fd(), root, &child, f)?;
        }
    }
    Ok(())
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        crate::linux::fs::fgetxattr(dir, c"user.overlay.opaque", &mut buf),
        Ok(Some(1)) if buf[0] == b'y'
    )
}

/// fuse-overlayfs's marks of an opaque directory.
fn is_fuse_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    fstatat(dir, c".wh..wh..opq", AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
        || [c"user.fuseoverlayfs.opaque", c"trusted.overlay.opaque"]
            .iter()
            .any(|x| {
                matches!(
                    crate::linux::fs::fgetxattr(dir, x, &mut buf),
                    Ok(Some(1)) if buf[0] == b'y'
                )
            })
}

/// Does the image (its layers, top-most first, merged as overlayfs merges
/// them) have `rel`? Each component is looked up relative to its parent's
/// descriptor without following symlinks, so a layer's symlink never leads
/// the lookup off the layer.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().collect();
    for layer in lowers {
        let Ok(mut cur) = crate::linux::fs::open_dir(layer) else {
            continue;
        };
        let mut hidden_below = false;
        for (i, c) in parts.iter().enumerate() {
            let name = c.as_os_str();
            let Ok(st) = fstatat(cur.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
                break;
            };
            let kind = st.st_mode & libc::S_IFMT;
            if kind == libc::S_IFCHR && st.st_rdev == 0 {
                // Deleted by this layer: lower layers do not show through.
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if kind != libc::S_IFDIR {
                // A file or symlink here hides deeper paths of lower layers.
                return false;
            }
            let Ok(next) = openat(cur.as_fd(), name, dir_flags(), Mode::empty()) else {
                break;
            };
            if is_opaque(next.as_fd()) {
                hidden_below = true;
            }
            cur = next;
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
    use std::fs;

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
    fn a_directory_swapped_for_a_symlink_mid_walk_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let (upper, host) = (d.path().join("u"), d.path().join("host"));
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/f"), "x").unwrap();
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("secret.txt"), "0123456789").unwrap();
        // A symlink in the upper dir is an entry, never a way down.
        std::os::unix::fs::symlink(&host, upper.join("l")).unwrap();
        let mut seen = Vec::new();
        walk(&upper, &mut |rel, e| {
            seen.push(rel.to_path_buf());
            if rel == Path::new("d") {
                // What a running container can do between the walk's stat
                // of d and its descent into it.
                fs::rename(upper.join("d"), upper.join("d.old")).unwrap();
                std::os::unix::fs::symlink(&host, upper.join("d")).unwrap();
            }
            Ok(e.is_dir())
        })
        .unwrap();
        assert_eq!(seen, [PathBuf::from("d"), PathBuf::from("l")]);
        assert_eq!(size(&upper), 1, "d.old/f only; nothing of the host");
    }

    #[test]
    fn a_fuse_overlayfs_upper_marks_deletions_with_files() {
        // As fuse-overlayfs writes an upper dir where mknod is refused: a
        // `.wh.NAME` file per deletion and a `.wh..wh..opq` file in an
        // opaque directory.
        let d = tempfile::tempdir().unwrap();
        let (upper, lower) = (d.path().join("u"), d.path().join("l"));
        for p in ["bin", "usr/lib"] {
            fs::create_dir_all(lower.join(p)).unwrap();
        }
        fs::write(lower.join("bin/cat"), "").unwrap();
        fs::write(lower.join("usr/lib/a"), "").unwrap();
        fs::create_dir_all(upper.join("bin")).unwrap();
        fs::create_dir_all(upper.join("usr/lib")).unwrap();
        fs::write(upper.join("bin/.wh.cat"), "").unwrap();
        fs::write(upper.join("bin/.wh.never-there"), "").unwrap();
        fs::write(upper.join("usr/lib/.wh..wh..opq"), "").unwrap();
        fs::write(upper.join("usr/lib/b"), "").unwrap();
        let mapping = IdMapping::detect(Path::new("/etc"));
        let shown = |fuse: bool| -> Vec<String> {
            list(&upper, std::slice::from_ref(&lower), &[], &mapping, fuse)
                .unwrap()
                .iter()
                .map(|c| format!("{} {}", c.kind.letter(), c.path))
                .collect()
        };
        assert_eq!(
            shown(true),
            [
                "C /bin",
                "D /bin/cat",
                "C /usr",
                "C /usr/lib",
                "A /usr/lib/b"
            ]
        );
        // Read as the kernel's format, the same files are files.
        assert!(shown(false).contains(&"A /bin/.wh.cat".to_string()));
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
        let got = list(&upper, std::slice::from_ref(&lower), &skip, &mapping, false).unwrap();
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
        let got = list(&upper, &[lower], &skip, &mapping, false).unwrap();
        assert!(got.contains(&Change {
            kind: Kind::Deleted,
            path: "/gone".into()
        }));
        assert!(!got.iter().any(|c| c.path == "/never-there"));
    }

    #[test]
    fn a_copy_compared_with_its_layers() {
        let d = tempfile::tempdir().unwrap();
        let (base, top, rootfs) = (d.path().join("l1"), d.path().join("l2"), d.path().join("r"));
        for p in ["etc", "bin", "gone/deep", "usr/lib"] {
            fs::create_dir_all(base.join(p)).unwrap();
        }
        fs::write(base.join("etc/passwd"), "root").unwrap();
        fs::write(base.join("bin/sh"), "sh").unwrap();
        fs::write(base.join("bin/cat"), "cat").unwrap();
        fs::write(base.join("gone/deep/f"), "x").unwrap();
        fs::write(base.join("usr/lib/old"), "x").unwrap();
        // The top layer replaces usr/lib (opaque where xattrs work).
        fs::create_dir_all(top.join("usr/lib")).unwrap();
        fs::write(top.join("usr/lib/new"), "y").unwrap();
        let opaque = xattr_set(&top.join("usr/lib"));
        // The copy, made as the fallback makes it: times kept exactly.
        let st = std::process::Command::new("cp")
            .args(["-a"])
            .arg(base.as_os_str())
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success());
        if opaque {
            fs::remove_file(rootfs.join("usr/lib/old")).unwrap();
        }
        let st = std::process::Command::new("cp")
            .args(["-a", "--no-preserve=xattr"])
            .arg(top.join("usr/lib/new"))
            .arg(rootfs.join("usr/lib/new"))
            .status()
            .unwrap();
        assert!(st.success());
        let lowers = vec![top.clone(), base.clone()];
        let skip = vec![PathBuf::from("proc")];
        let show = |c: Vec<(PathBuf, Kind)>| -> Vec<String> {
            c.into_iter()
                .map(|(p, k)| format!("{} /{}", k.letter(), p.display()))
                .collect()
        };
        // An untouched copy has no changes.
        let none = copy_changes(&rootfs, &lowers, &skip).unwrap();
        assert!(none.is_empty(), "{:?}", show(none));
        // What a container does.
        fs::write(rootfs.join("etc/passwd"), "root\nme").unwrap();
        fs::remove_file(rootfs.join("bin/cat")).unwrap();
        fs::remove_dir_all(rootfs.join("gone")).unwrap();
        fs::create_dir(rootfs.join("proc")).unwrap();
        fs::create_dir_all(rootfs.join("tmp/new")).unwrap();
        fs::write(rootfs.join("tmp/new/f"), "12345").unwrap();
        let got = show(copy_changes(&rootfs, &lowers, &skip).unwrap());
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/cat",
                "C /etc",
                "C /etc/passwd",
                "D /gone",
                "A /tmp",
                "A /tmp/new",
                "A /tmp/new/f"
            ]
        );
    }

    /// Mark `dir` opaque as the store's layers do; false where the file
    /// system keeps no user xattrs.
    fn xattr_set(dir: &Path) -> bool {
        std::fs::File::open(dir)
            .and_then(|f| crate::linux::fs::fsetxattr(&f, c"user.overlay.opaque", b"y"))
            .is_ok()
    }
}
