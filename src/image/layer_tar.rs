//! Writing a directory tree as one tar stream: an overlayfs upper dir as an
//! OCI layer (whiteouts and opaque dirs in the `.wh.` format) for `commit`,
//! or a plain tree for `export`. The tree is read through descriptors,
//! never following a symlink, so a tree that changes while it is read (a
//! running container) cannot lead the reader outside it.
//!
//! Mapping from the overlay upper format (see `layer.rs`):
//!
//! - a 0/0 character device `dir/NAME` → an empty regular file `dir/.wh.NAME`
//! - a directory with `user.overlay.opaque=y` → its own entry, then an empty
//!   `dir/.wh..wh..opq`
//! - other `user.overlay.*` attributes are overlay bookkeeping and are
//!   dropped, except `redirect` and `metacopy`, which mean the file's
//!   content or identity lives elsewhere and cannot be put in a layer: those
//!   are errors rather than a silently wrong layer
//!
//! A fuse-overlayfs upper dir (fuse-overlayfs's main.c, `create_whiteout`,
//! `set_fd_opaque`) differs: a deletion is a 0/0 character device or, where
//! mknod is refused, already an empty `dir/.wh.NAME` file (kept as it is);
//! an opaque dir holds a `.wh..wh..opq` file and may carry
//! `user.fuseoverlayfs.opaque` or `trusted.overlay.opaque`; its other
//! `user.fuseoverlayfs.*` attributes are its bookkeeping and are dropped.
//!
//! Owners, modes, mtimes (whole seconds, as Docker writes them), symlinks,
//! hard links, FIFOs, device nodes and every other readable xattr (as PAX
//! `SCHILY.xattr.*` records) are kept. Sockets cannot be archived: each one
//! is skipped and counted in a note.

use std::collections::{HashMap, HashSet};

use super::changes::Kind;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

use crate::linux::fs::{fgetxattr, flistxattr};

/// What kind of tree is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// An overlayfs upper dir (`userxattr` format): becomes an OCI layer.
    OverlayUpper,
    /// A fuse-overlayfs upper dir: becomes an OCI layer.
    FuseOverlayUpper,
    /// An ordinary tree (a mounted merged view): every file as it is.
    Plain,
}

/// What was written, and what the user should hear about.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct PackReport {
    pub entries: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("reading {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("{path:?} cannot be put in a layer: {reason}")]
    Unrepresentable { path: PathBuf, reason: String },
}

/// Extended attributes as archived: full name and value.
type Xattrs = Vec<(String, Vec<u8>)>;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";
/// fuse-overlayfs's own attributes, and the one it sets where it may.
const FUSE_XATTR_PREFIX: &[u8] = b"user.fuseoverlayfs.";
const TRUSTED_OVERLAY_PREFIX: &[u8] = b"trusted.overlay.";
/// The largest value Linux allows for one extended attribute.
const XATTR_MAX: usize = 64 * 1024;

/// Write the tree under `root` (not `root` itself) as a tar stream to `out`,
/// entries sorted by name so the same tree gives the same bytes. Returns the
/// writer after the end-of-archive blocks.
pub fn write_tree<W: Write>(
    root: &Path,
    kind: TreeKind,
    out: W,
) -> Result<(PackReport, W), PackError> {
    write_tree_skipping(root, kind, &[], out)
}

/// Like [`write_tree`], leaving out each path of `placeholders` (relative to
/// `root`) that is an empty file or an empty directory: mount points a
/// runtime made, which are not content. Anything else at such a path is kept.
pub fn write_tree_skipping<W: Write>(
    root: &Path,
    kind: TreeKind,
    placeholders: &[PathBuf],
    out: W,
) -> Result<(PackReport, W), PackError> {
    write_selected(root, kind, placeholders, None, out)
}

fn write_selected<W: Write>(
    root: &Path,
    kind: TreeKind,
    placeholders: &[PathBuf],
    select: Option<&Selection>,
    out: W,
) -> Result<(PackReport, W), PackError> {
    let fd =
        open(root, crate::linux::fs::dir_flags(), Mode::empty()).map_err(|e| PackError::Read {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
    let mut p = Packer {
        b: tar::Builder::new(out),
        kind,
        links: HashMap::new(),
        report: PackReport::default(),
        sockets: Vec::new(),
        plain_whiteouts: 0,
        placeholders,
        select,
    };
    p.dir(fd.as_fd(), Path::new(""))?;
    let Packer {
        b,
        mut report,
        sockets,
        plain_whiteouts,
        ..
    } = p;
    let out = b.into_inner().map_err(PackError::Write)?;
    if !sockets.is_empty() {
        report.notes.push(format!(
            "skipped {} socket(s), which a tar archive cannot hold: {}",
            sockets.len(),
            sockets
                .iter()
                .take(5)
                .map(|p| format!("/{}", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if plain_whiteouts > 0 {
        report.notes.push(format!(
            "{plain_whiteouts} file(s) named .wh.* are in the archive; importing it as a layer reads them as deletions"
        ));
    }
    Ok((report, out))
}

/// [`write_changes`]'s choice of entries: the paths written (added or
/// changed) and, per directory, the names deleted from it.
struct Selection {
    keep: HashSet<PathBuf>,
    deleted: HashMap<PathBuf, Vec<PathBuf>>,
}

/// Write the changes of a full copy of an image (`root`, the copy; `changes`
/// from `changes::copy_changes`) as one OCI layer: each added or changed
/// path as it is in `root`, each deleted one as a `.wh.NAME` entry. Entries
/// of `placeholders` that are empty are left out, as in
/// [`write_tree_skipping`].
pub fn write_changes<W: Write>(
    root: &Path,
    changes: &[(PathBuf, Kind)],
    placeholders: &[PathBuf],
    out: W,
) -> Result<(PackReport, W), PackError> {
    let mut sel = Selection {
        keep: HashSet::new(),
        deleted: HashMap::new(),
    };
    for (rel, kind) in changes {
        match kind {
            Kind::Deleted => {
                let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                if let Some(name) = rel.file_name() {
                    sel.deleted
                        .entry(parent)
                        .or_default()
                        .push(PathBuf::from(name));
                }
            }
            Kind::Added | Kind::Changed => {
                sel.keep.insert(rel.clone());
            }
        }
    }
    write_selected(root, TreeKind::Plain, placeholders, Some(&sel), out)
}

struct Packer<'a, W: Write> {
    b: tar::Builder<W>,
    kind: TreeKind,
    /// (dev, ino) of files with more than one link → the first path written.
    links: HashMap<(u64, u64), PathBuf>,
    report: PackReport,
    sockets: Vec<PathBuf>,
    plain_whiteouts: u64,
    placeholders: &'a [PathBuf],
    /// Only these entries (a copy's changes), or the whole tree.
    select: Option<&'a Selection>,
}

/// Names in directory `fd` without `.` and `..`, sorted (a stable archive).
fn list_dir(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = crate::linux::fs::list_dir(fd)?;
    names.sort();
    Ok(names)
}

/// A header with the metadata every entry kind shares.
fn header(st: &FileStat, typ: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(typ);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Reads exactly `left` bytes: the file's data, cut or zero-padded if the
/// file changed size since it was measured (the header is already written).
struct Exact<R> {
    inner: R,
    left: u64,
    changed: bool,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let n = if n == 0 {
            // Shrunk: pad with zeros so the archive stays well formed.
            self.changed = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Write> Packer<'_, W> {
    fn read_err(path: &Path) -> impl FnOnce(nix::Error) -> PackError + '_ {
        move |e| PackError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        }
    }

    fn dir(&mut self, fd: BorrowedFd<'_>, rel: &Path) -> Result<(), PackError> {
        let names = list_dir(fd).map_err(|source| PackError::Read {
            path: rel.to_path_buf(),
            source,
        })?;
        for name in names {
            let path = rel.join(OsStr::from_bytes(name.to_bytes()));
            if self.select.is_some_and(|s| !s.keep.contains(&path)) {
                continue;
            }
            let st = fstatat(fd, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(Self::read_err(&path))?;
            self.entry(fd, &name, &path, &st)?;
        }
        if let Some(gone) = self.select.and_then(|s| s.deleted.get(rel)) {
            let mut gone = gone.clone();
            gone.sort();
            for name in gone {
                let mut wh = WHITEOUT_PREFIX.to_vec();
                wh.extend_from_slice(name.as_os_str().as_bytes());
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                self.append(&mut h, &rel.join(OsStr::from_bytes(&wh)), io::empty(), &[])?;
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        st: &FileStat,
    ) -> Result<(), PackError> {
        let fmt = st.st_mode & libc::S_IFMT;
        if self.placeholders.iter().any(|p| p == path) && self.is_empty(parent, name, st) {
            tracing::debug!("leaving out the mount point /{}", path.display());
            return Ok(());
        }
        let whiteout = fmt == libc::S_IFCHR && st.st_rdev == 0;
        if self.kind == TreeKind::FuseOverlayUpper
            && name.to_bytes().starts_with(WHITEOUT_PREFIX)
            && (fmt == libc::S_IFREG || whiteout)
        {
            // Already a layer's whiteout: the opaque marker is written
            // after its directory's entry (`xattrs` found it); a deletion
            // as it is. fuse-overlayfs hides every `.wh.` name from the
            // container, so a 0/0 device of such a name (it leaves
            // `.wh..opq` ones beside an opaque marker) deletes nothing.
            if fmt == libc::S_IFREG && name.to_bytes() != OPAQUE_MARKER.as_bytes() {
                let mut h = header(st, tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                self.append(&mut h, path, io::empty(), &[])?;
            }
            return Ok(());
        }
        if name.to_bytes().starts_with(WHITEOUT_PREFIX) && !whiteout {
            match self.kind {
                _ if self.select.is_some() => {
                    return Err(PackError::Unrepresentable {
                        path: path.to_path_buf(),
                        reason: "in a layer a name starting with .wh. means a deletion".into(),
                    })
                }
                TreeKind::OverlayUpper | TreeKind::FuseOverlayUpper => {
                    return Err(PackError::Unrepresentable {
                        path: path.to_path_buf(),
                        reason: "in a layer a name starting with .wh. means a deletion".into(),
                    })
                }
                TreeKind::Plain => self.plain_whiteouts += 1,
            }
        }
        match fmt {
            libc::S_IFCHR if whiteout && self.kind != TreeKind::Plain => {
                let mut wh = WHITEOUT_PREFIX.to_vec();
                wh.extend_from_slice(name.to_bytes());
                let wpath = path.with_file_name(OsStr::from_bytes(&wh));
                let mut h = header(st, tar::EntryType::Regular);
                h.set_mode(0o600);
                self.append(&mut h, &wpath, io::empty(), &[])?;
            }
            libc::S_IFDIR => self.directory(parent, name, path, st)?,
            libc::S_IFREG => self.regular(parent, name, path, st)?,
            libc::S_IFLNK => {
                let target = readlinkat(parent, name).map_err(Self::read_err(path))?;
                let mut h = header(st, tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, path, Path::new(&target))
                    .map_err(PackError::Write)?;
                self.report.entries += 1;
            }
            libc::S_IFCHR | libc::S_IFBLK => self.device(path, st)?,
            libc::S_IFIFO => {
                let mut h = header(st, tar::EntryType::Fifo);
                self.append(&mut h, path, io::empty(), &[])?;
            }
            libc::S_IFSOCK => self.sockets.push(path.to_path_buf()),
            other => {
                return Err(PackError::Unrepresentable {
                    path: path.to_path_buf(),
                    reason: format!("unknown file type {other:o}"),
                })
            }
        }
        Ok(())
    }

    /// A directory: its entry (and an opaque marker after it when it is
    /// one), then what is in it.
    fn directory(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        st: &FileStat,
    ) -> Result<(), PackError> {
        let dfd = openat(parent, name, crate::linux::fs::dir_flags(), Mode::empty())
            .map_err(Self::read_err(path))?;
        let (xattrs, opaque) = self.xattrs(dfd.as_fd(), path)?;
        let mut h = header(st, tar::EntryType::Directory);
        self.append(&mut h, path, io::empty(), &xattrs)?;
        if opaque {
            let mut h = header(st, tar::EntryType::Regular);
            h.set_mode(st.st_mode & 0o777);
            self.append(&mut h, &path.join(OPAQUE_MARKER), io::empty(), &[])?;
        }
        self.dir(dfd.as_fd(), path)
    }

    /// A regular file: a hard link to the first name of an inode seen
    /// before, else its data as long as it measured when opened.
    fn regular(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        st: &FileStat,
    ) -> Result<(), PackError> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = header(st, tar::EntryType::Link);
                self.b
                    .append_link(&mut h, path, &first)
                    .map_err(PackError::Write)?;
                self.report.entries += 1;
                return Ok(());
            }
            self.links.insert(key, path.to_path_buf());
        }
        let ffd: OwnedFd = openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Self::read_err(path))?;
        // Measure what was opened, not what was listed.
        let fst = fstat(&ffd).map_err(Self::read_err(path))?;
        if fst.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(PackError::Read {
                path: path.to_path_buf(),
                source: io::Error::other("replaced while being read"),
            });
        }
        let (xattrs, _) = self.xattrs(ffd.as_fd(), path)?;
        let size = u64::try_from(fst.st_size).unwrap_or(0);
        let mut h = header(&fst, tar::EntryType::Regular);
        h.set_size(size);
        let mut data = Exact {
            inner: File::from(ffd),
            left: size,
            changed: false,
        };
        self.append(&mut h, path, &mut data, &xattrs)?;
        if data.changed {
            self.report.notes.push(format!(
                "/{} changed size while being archived; it was padded",
                path.display()
            ));
        }
        Ok(())
    }

    /// A character or block device node.
    fn device(&mut self, path: &Path, st: &FileStat) -> Result<(), PackError> {
        let typ = if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        };
        let mut h = header(st, typ);
        let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        h.set_device_major(major).map_err(PackError::Write)?;
        h.set_device_minor(minor).map_err(PackError::Write)?;
        self.append(&mut h, path, io::empty(), &[])
    }

    /// An empty regular file, or a directory with nothing in it.
    fn is_empty(&self, parent: BorrowedFd<'_>, name: &CStr, st: &FileStat) -> bool {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => st.st_size == 0,
            libc::S_IFDIR => openat(parent, name, crate::linux::fs::dir_flags(), Mode::empty())
                .ok()
                .and_then(|fd| list_dir(fd.as_fd()).ok())
                .is_some_and(|names| names.is_empty()),
            _ => false,
        }
    }

    /// The xattrs to archive, and whether the directory is opaque.
    fn xattrs(&self, fd: BorrowedFd<'_>, path: &Path) -> Result<(Xattrs, bool), PackError> {
        let read_err = |source: io::Error| PackError::Read {
            path: path.to_path_buf(),
            source,
        };
        let fuse = self.kind == TreeKind::FuseOverlayUpper;
        let mut opaque = fuse && fstatat(fd, OPAQUE_MARKER, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok();
        let names = match flistxattr(fd) {
            Ok(n) => n,
            // A filesystem without xattrs has none to keep.
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok((Vec::new(), opaque)),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; XATTR_MAX];
        for name in names {
            let Some(len) = fgetxattr(fd, &name, &mut buf).map_err(read_err)? else {
                continue;
            };
            let value = &buf[..len];
            let bytes = name.to_bytes();
            if fuse
                && (bytes.starts_with(FUSE_XATTR_PREFIX)
                    || bytes.starts_with(TRUSTED_OVERLAY_PREFIX))
            {
                if bytes.ends_with(b".opaque") && value == b"y" {
                    opaque = true;
                }
                continue;
            }
            if let Some(what) = bytes.strip_prefix(OVERLAY_XATTR_PREFIX) {
                if self.kind != TreeKind::Plain {
                    match what {
                        b"opaque" => opaque |= value == b"y",
                        b"redirect" | b"metacopy" => {
                            return Err(PackError::Unrepresentable {
                                path: path.to_path_buf(),
                                reason: format!(
                                    "overlayfs recorded it with {} (a renamed directory or a metadata-only copy)",
                                    name.to_string_lossy()
                                ),
                            })
                        }
                        _ => {}
                    }
                }
                continue;
            }
            out.push((name.to_string_lossy().into_owned(), value.to_vec()));
        }
        Ok((out, opaque))
    }

    /// One entry, preceded by a PAX header carrying its xattrs when any.
    fn append<R: Read>(
        &mut self,
        h: &mut tar::Header,
        path: &Path,
        data: R,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), PackError> {
        if !xattrs.is_empty() {
            let records = pax_records(xattrs);
            let mut ph = tar::Header::new_ustar();
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(records.len() as u64);
            // Only the type matters to readers; keep the name short and legal.
            ph.set_path("PaxHeader").map_err(PackError::Write)?;
            ph.set_cksum();
            self.b.append(&ph, &records[..]).map_err(PackError::Write)?;
        }
        self.b
            .append_data(h, path, data)
            .map_err(PackError::Write)?;
        self.report.entries += 1;
        Ok(())
    }
}

/// PAX records `"LEN SCHILY.xattr.NAME=VALUE\n"`, where LEN counts the
/// whole record including its own digits.
fn pax_records(xattrs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in xattrs {
        let body_len = " SCHILY.xattr.".len() + name.len() + 1 + value.len() + 1;
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len = len.to_string().len() + body_len;
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.extend_from_slice(b" SCHILY.xattr.");
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests;
