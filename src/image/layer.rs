//! Safe application of one tar layer to a directory (overlay whiteout format),
//! and flattening of a layer stack into one directory for the copy fallback.
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

use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::linux::fs::{fgetxattr, fsetxattr};

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
    /// A filesystem operation failed; `source` names the step.
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copy buffer for file contents. Larger than the read buffer so that big
/// reads bypass `BufReader` and land directly in this buffer.
const COPY_BUF: usize = 256 * 1024;
/// Read-ahead for headers and small files.
const READ_BUF: usize = 64 * 1024;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &CStr = c"user.overlay.opaque";
/// PAX records carrying extended attributes, as written by GNU tar and Docker.
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// Overlay's own attributes change how the stack is merged (redirects,
/// metacopy, opacity); a layer may only express those through whiteout files.
const OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";

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
        source: ctx(e, "open layer directory"),
    })?;
    let counter = CountingReader {
        inner: reader,
        count: 0,
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(READ_BUF, counter));
    let mut x = Extractor::new(root, opts.ids).map_err(|e| LayerError::Write {
        path: dest.to_path_buf(),
        source: ctx(e, "stat layer directory"),
    })?;
    let mut scratch = Scratch::default();
    for entry in archive.entries().map_err(LayerError::Read)? {
        let mut entry = entry.map_err(LayerError::Read)?;
        x.apply_entry(&mut scratch, &mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| LayerError::Read(ctx(e, "reading past the end of the archive")))?;
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

/// Copies extracted layers, bottom to top, into `dest`, merging them as
/// overlayfs would: a 0/0 character device deletes the path below it, an
/// opaque directory hides everything below it. Used when overlayfs cannot be
/// mounted.
///
/// Owners are preserved where the kernel allows (EPERM/EINVAL are ignored),
/// as are modes and mtimes. Hard links become separate copies. Device nodes
/// and sockets are skipped. `dest`'s own metadata is left alone, as an
/// overlay mount's root takes its metadata from the upper directory.
/// Symlinks in `dest` are never followed: every descent opens the next
/// directory with `O_NOFOLLOW` relative to its parent's descriptor.
pub fn flatten_layers(lowers_bottom_to_top: &[PathBuf], dest: &Path) -> Result<(), LayerError> {
    let root = open_dir(dest).map_err(|e| LayerError::Write {
        path: dest.to_path_buf(),
        source: ctx(e, "open destination directory"),
    })?;
    let mut dirs = Vec::new();
    let mut rel = Vec::new();
    for layer in lowers_bottom_to_top {
        let src = open_dir(layer).map_err(|e| LayerError::Write {
            path: layer.clone(),
            source: ctx(e, "open layer directory"),
        })?;
        rel.clear();
        copy_tree(src.as_fd(), root.as_fd(), &mut rel, &mut dirs).map_err(|e| {
            LayerError::Write {
                path: layer.join(bytes_path(&rel)),
                source: e,
            }
        })?;
    }
    apply_dir_metas(root.as_fd(), &dirs, true).map_err(|(path, e)| LayerError::Write {
        path: dest.join(bytes_path(&path)),
        source: e,
    })
}

// ---------------------------------------------------------------------------
// Extraction

/// Counts every byte the tar parser (and the final drain) reads.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Per-entry buffers, reused across entries to avoid allocations.
#[derive(Default)]
struct Scratch {
    /// The entry's name as stored in the archive (for error messages).
    raw: Vec<u8>,
    /// Normalised relative name (no leading `/`, no `.`/`..`/empty components).
    norm: Vec<u8>,
    link_raw: Vec<u8>,
    link_norm: Vec<u8>,
    /// `user.*` extended attributes from PAX records.
    xattrs: Vec<(CString, Vec<u8>)>,
    /// Nanosecond mtime from a PAX record, if any.
    pax_mtime: Option<TimeSpec>,
}

impl Scratch {
    fn path(&self) -> PathBuf {
        bytes_path(&self.raw)
    }

    fn unsafe_err(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Unsafe {
            path: self.path(),
            reason: reason.into(),
        }
    }

    fn write_err(&self, e: impl Into<io::Error>, step: impl fmt::Display) -> LayerError {
        LayerError::Write {
            path: self.path(),
            source: ctx(e, step),
        }
    }

    fn read_err(&self, e: impl Into<io::Error>, step: impl fmt::Display) -> LayerError {
        let e = e.into();
        LayerError::Read(io::Error::new(
            e.kind(),
            format!("entry {:?}: {step}: {e}", self.path()),
        ))
    }
}

/// Directory metadata applied after everything else (see module docs).
struct DirMeta {
    /// Normalised path relative to the root; empty for the root itself.
    path: Vec<u8>,
    mode: u32,
    mtime: TimeSpec,
    /// Owner to set at the end (flatten); `None` when already set (extraction).
    owner: Option<(u32, u32)>,
}

/// The descriptor of the most recently used parent directory. Archives list
/// a directory's files together, so most entries reuse it.
struct ParentCache {
    path: Vec<u8>,
    fd: Option<OwnedFd>,
    /// Whether the cached directory is set-group-ID (new files then take its group).
    setgid: bool,
    root_setgid: bool,
}

impl ParentCache {
    /// Returns a descriptor for `parent` (normalised, relative to `root`),
    /// creating missing directories, and whether that directory is setgid.
    fn get<'a>(
        &'a mut self,
        root: BorrowedFd<'a>,
        parent: &[u8],
    ) -> io::Result<(BorrowedFd<'a>, bool)> {
        if parent.is_empty() {
            return Ok((root, self.root_setgid));
        }
        let hit = self.fd.is_some() && self.path == parent;
        if !hit {
            self.fd = None;
            let fd = resolve_parent(root, parent)?;
            self.setgid = is_setgid(fd.as_fd())?;
            self.path.clear();
            self.path.extend_from_slice(parent);
            self.fd = Some(fd);
        }
        let fd = self.fd.as_ref().expect("cached parent set above").as_fd();
        Ok((fd, self.setgid))
    }

    /// Called after anything was removed: the removed name may have been a
    /// component (say, a symlink) of the cached path, which would now resolve
    /// elsewhere. Creating new names cannot change how an existing path resolves.
    fn invalidate(&mut self) {
        self.fd = None;
    }
}

struct Extractor {
    root: OwnedFd,
    ids: IdPolicy,
    /// Our effective uid/gid: what a new file gets unless its parent is setgid.
    me: (u32, u32),
    cache: ParentCache,
    buf: Vec<u8>,
    dirs: Vec<DirMeta>,
    entries: u64,
    devices: u64,
    clamped: u64,
    unsupported: u64,
    xattrs_unsupported: u64,
    nonzero_owner: bool,
}

/// What an entry becomes on disk.
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Fifo,
}

impl Extractor {
    fn new(root: OwnedFd, ids: IdPolicy) -> io::Result<Self> {
        let root_setgid = is_setgid(root.as_fd())?;
        Ok(Extractor {
            root,
            ids,
            me: (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            ),
            cache: ParentCache {
                path: Vec::new(),
                fd: None,
                setgid: false,
                root_setgid,
            },
            buf: Vec::new(),
            dirs: Vec::new(),
            entries: 0,
            devices: 0,
            clamped: 0,
            unsupported: 0,
            xattrs_unsupported: 0,
            nonzero_owner: false,
        })
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.devices > 0 {
            notes.push(format!(
                "skipped {} device node(s) (unprivileged)",
                self.devices
            ));
        }
        if let IdPolicy::Keep { max_uid, max_gid } = self.ids {
            if self.clamped > 0 {
                let limit = if max_uid == max_gid {
                    format!("uid/gid {max_uid} to {max_uid}")
                } else {
                    format!("uid {max_uid} / gid {max_gid} to those limits")
                };
                notes.push(format!(
                    "clamped {} file owner(s) above {limit}",
                    self.clamped
                ));
            }
        }
        if matches!(self.ids, IdPolicy::Collapse) && self.nonzero_owner {
            notes.push("no subuid/subgid range: all files in the layer belong to you".into());
        }
        if self.unsupported > 0 {
            notes.push(format!(
                "skipped {} archive entr{} of unsupported type",
                self.unsupported,
                if self.unsupported == 1 { "y" } else { "ies" }
            ));
        }
        if self.xattrs_unsupported > 0 {
            notes.push(format!(
                "dropped {} extended attribute(s) the filesystem does not support",
                self.xattrs_unsupported
            ));
        }
        notes
    }

    /// The owner to give a new file, or `None` to leave it to the caller.
    fn owner(&mut self, uid: u64, gid: u64) -> Option<(u32, u32)> {
        match self.ids {
            IdPolicy::Collapse => {
                if uid != 0 || gid != 0 {
                    self.nonzero_owner = true;
                }
                None
            }
            IdPolicy::Keep { max_uid, max_gid } => {
                let u = uid.min(u64::from(max_uid)) as u32;
                let g = gid.min(u64::from(max_gid)) as u32;
                if u64::from(u) != uid || u64::from(g) != gid {
                    self.clamped += 1;
                }
                Some((u, g))
            }
        }
    }

    fn apply_entry<E: Read>(
        &mut self,
        s: &mut Scratch,
        entry: &mut tar::Entry<'_, E>,
    ) -> Result<(), LayerError> {
        use tar::EntryType as T;
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            // Metadata records the parser did not fold into an entry: nothing to create.
            return Ok(());
        }
        s.raw.clear();
        s.raw.extend_from_slice(&entry.path_bytes());
        normalize(&s.raw, &mut s.norm).map_err(|r| s.unsafe_err(r))?;
        // Whiteouts are recognised by name whatever their type.
        let whiteout = basename(&s.norm).starts_with(WHITEOUT_PREFIX);
        let kind = match etype {
            T::Regular | T::Continuous | T::GNUSparse if s.raw.ends_with(b"/") => Kind::Dir,
            T::Regular | T::Continuous | T::GNUSparse => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::HardLink,
            T::Fifo => Kind::Fifo,
            _ if whiteout => Kind::File,
            T::Char | T::Block => {
                self.devices += 1;
                return Ok(());
            }
            _ => {
                self.unsupported += 1;
                return Ok(());
            }
        };
        self.read_pax(s, entry)?;

        let header = entry.header();
        let raw = header.as_old();
        let mode = numeric(header.mode().map(u64::from), &raw.mode)
            .map_err(|e| s.read_err(e, "corrupt header (mode)"))? as u32
            & 0o7777;
        let uid =
            numeric(header.uid(), &raw.uid).map_err(|e| s.read_err(e, "corrupt header (uid)"))?;
        let gid =
            numeric(header.gid(), &raw.gid).map_err(|e| s.read_err(e, "corrupt header (gid)"))?;
        let mtime = match s.pax_mtime {
            Some(t) => t,
            None => {
                let secs = numeric(header.mtime(), &raw.mtime)
                    .map_err(|e| s.read_err(e, "corrupt header (mtime)"))?;
                TimeSpec::new(secs.min(i64::MAX as u64) as i64, 0)
            }
        };

        let split = s.norm.iter().rposition(|b| *b == b'/');
        let (parent, name) = match split {
            Some(i) => (&s.norm[..i], &s.norm[i + 1..]),
            None => (&[][..], &s.norm[..]),
        };

        if name.is_empty() {
            // The entry names the layer root itself (`./` or `/`).
            if !matches!(kind, Kind::Dir) {
                return Err(s.unsafe_err("a non-directory entry names the layer root"));
            }
            if let Some((u, g)) = self.owner(uid, gid) {
                fchown(&self.root, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                    .map_err(|e| s.write_err(e, "chown layer root"))?;
            }
            apply_xattrs(s, self.root.as_fd(), &mut self.xattrs_unsupported)?;
            self.dirs.push(DirMeta {
                path: Vec::new(),
                mode,
                mtime,
                owner: None,
            });
            self.entries += 1;
            return Ok(());
        }

        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.apply_whiteout(s, parent, name, rest);
        }
        // Hard links share their target's inode and owner.
        let owner = match kind {
            Kind::HardLink => None,
            _ => self.owner(uid, gid),
        };

        let root = self.root.as_fd();
        let (dir, parent_setgid) = self
            .cache
            .get(root, parent)
            .map_err(|e| s.write_err(e, "open parent directory"))?;
        // A new inode already belongs to us (or, under a setgid parent, to
        // us and the parent's group): skip the chown when it would be a no-op.
        let me = self.me;
        let new_owner = owner.filter(|o| parent_setgid || *o != me);
        let mut removed = false;
        match kind {
            Kind::File => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let (fd, r) = replace_at(dir, name, || {
                    openat(dir, name, flags, Mode::from_bits_truncate(0o600))
                })
                .map_err(|e| s.write_err(e, "create file"))?;
                removed = r;
                let mut file = File::from(fd);
                let size = entry.size();
                if size > 0 {
                    if self.buf.is_empty() {
                        self.buf = vec![0; COPY_BUF];
                    }
                    let mut copied = 0u64;
                    loop {
                        let n = match entry.read(&mut self.buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(s.read_err(e, "reading file data")),
                        };
                        file.write_all(&self.buf[..n])
                            .map_err(|e| s.write_err(e, "write file data"))?;
                        copied += n as u64;
                    }
                    if copied != size {
                        return Err(s.read_err(
                            io::Error::from(io::ErrorKind::UnexpectedEof),
                            format_args!(
                                "archive truncated inside file data ({copied} of {size} bytes)"
                            ),
                        ));
                    }
                }
                set_fd_meta(&file, new_owner, mode, &mtime)
                    .map_err(|e| s.write_err(e, "set file owner/mode/mtime"))?;
                apply_xattrs(s, file.as_fd(), &mut self.xattrs_unsupported)?;
            }
            Kind::Dir => {
                let dir_owner = match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => new_owner,
                    Err(Errno::EEXIST) => {
                        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                            .map_err(|e| s.write_err(e, "stat existing entry"))?;
                        if is_dir(st.st_mode) {
                            owner
                        } else {
                            remove_all_at(dir, name)
                                .map_err(|e| s.write_err(e, "remove existing entry"))?;
                            removed = true;
                            mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                                .map_err(|e| s.write_err(e, "create directory"))?;
                            new_owner
                        }
                    }
                    Err(e) => return Err(s.write_err(e, "create directory")),
                };
                if let Some((u, g)) = dir_owner {
                    fchownat(
                        dir,
                        name,
                        Some(Uid::from_raw(u)),
                        Some(Gid::from_raw(g)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| s.write_err(e, "chown directory"))?;
                }
                if !s.xattrs.is_empty() {
                    let fd = openat(dir, name, dir_flags(), Mode::empty())
                        .map_err(|e| s.write_err(e, "open directory"))?;
                    apply_xattrs(s, fd.as_fd(), &mut self.xattrs_unsupported)?;
                }
                self.dirs.push(DirMeta {
                    path: s.norm.clone(),
                    mode,
                    mtime,
                    owner: None,
                });
            }
            Kind::Symlink => {
                s.link_raw.clear();
                match entry.link_name_bytes() {
                    Some(t) if !t.is_empty() => s.link_raw.extend_from_slice(&t),
                    _ => return Err(s.unsafe_err("symbolic link without a target")),
                }
                let target = &s.link_raw[..];
                let ((), r) = replace_at(dir, name, || symlinkat(target, dir, name))
                    .map_err(|e| s.write_err(e, "create symbolic link"))?;
                removed = r;
                if let Some((u, g)) = new_owner {
                    fchownat(
                        dir,
                        name,
                        Some(Uid::from_raw(u)),
                        Some(Gid::from_raw(g)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| s.write_err(e, "chown symbolic link"))?;
                }
                utimensat(dir, name, &mtime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| s.write_err(e, "set symbolic link mtime"))?;
            }
            Kind::HardLink => {
                s.link_raw.clear();
                match entry.link_name_bytes() {
                    Some(t) => s.link_raw.extend_from_slice(&t),
                    None => return Err(s.unsafe_err("hard link without a target")),
                }
                normalize(&s.link_raw, &mut s.link_norm)
                    .map_err(|r| s.unsafe_err(format!("hard link target: {r}")))?;
                let (tparent, tname) = match s.link_norm.iter().rposition(|b| *b == b'/') {
                    Some(i) => (&s.link_norm[..i], &s.link_norm[i + 1..]),
                    None => (&[][..], &s.link_norm[..]),
                };
                if tname.is_empty() {
                    return Err(s.unsafe_err("hard link to the layer root"));
                }
                if tparent == parent && tname == name {
                    // A link to itself: nothing to do (removing it first would lose it).
                    self.entries += 1;
                    return Ok(());
                }
                let target_err = |e: Errno| {
                    let step = format!(
                        "hard link target {:?} in the layer",
                        bytes_path(&s.link_raw)
                    );
                    s.write_err(e, step)
                };
                // The target's directory is resolved inside the root like any
                // other path, so `/etc/passwd` means `<dest>/etc/passwd`.
                let tdir_owned;
                let tdir = if tparent.is_empty() {
                    root
                } else if tparent == parent {
                    dir
                } else {
                    tdir_owned = open_in_root(root, tparent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(target_err)?;
                    tdir_owned.as_fd()
                };
                // Fail before removing anything if the target is missing.
                fstatat(tdir, tname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(target_err)?;
                // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
                let ((), r) = replace_at(dir, name, || {
                    linkat(tdir, tname, dir, name, AtFlags::empty())
                })
                .map_err(|e| s.write_err(e, "create hard link"))?;
                removed = r;
            }
            Kind::Fifo => {
                let ((), r) = replace_at(dir, name, || {
                    mknodat(
                        dir,
                        name,
                        SFlag::S_IFIFO,
                        Mode::from_bits_truncate(0o600),
                        0,
                    )
                })
                .map_err(|e| s.write_err(e, "create fifo"))?;
                removed = r;
                // O_NONBLOCK: opening a fifo for reading must not wait for a writer.
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| s.write_err(e, "open fifo"))?;
                set_fd_meta(&fd, new_owner, mode, &mtime)
                    .map_err(|e| s.write_err(e, "set fifo owner/mode/mtime"))?;
            }
        }
        if removed {
            self.cache.invalidate();
        }
        self.entries += 1;
        Ok(())
    }

    /// `parent/.wh.NAME` → 0/0 char device `parent/NAME`;
    /// `parent/.wh..wh..opq` → `user.overlay.opaque=y` on `parent`.
    fn apply_whiteout(
        &mut self,
        s: &Scratch,
        parent: &[u8],
        name: &[u8],
        hidden: &[u8],
    ) -> Result<(), LayerError> {
        let root = self.root.as_fd();
        if name == OPAQUE_MARKER {
            let (pfd, _) = self
                .cache
                .get(root, parent)
                .map_err(|e| s.write_err(e, "open opaque directory"))?;
            // The cached descriptor may be O_PATH, which cannot carry xattrs;
            // reopen the same directory for real.
            let fd = openat(pfd, ".", dir_flags(), Mode::empty())
                .map_err(|e| s.write_err(e, "open opaque directory"))?;
            fsetxattr(&fd, OPAQUE_XATTR, b"y")
                .map_err(|e| s.write_err(e, "set user.overlay.opaque"))?;
            self.entries += 1;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            // Other `.wh..wh.` names are AUFS bookkeeping (hard-link dirs);
            // they carry nothing an overlay layer needs.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(s.unsafe_err("whiteout without a valid name"));
        }
        let (dir, _) = self
            .cache
            .get(root, parent)
            .map_err(|e| s.write_err(e, "open parent directory"))?;
        let ((), removed) = replace_at(dir, hidden, || {
            mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        })
        .map_err(|e| s.write_err(e, "create whiteout (0/0 character device)"))?;
        if removed {
            self.cache.invalidate();
        }
        self.entries += 1;
        Ok(())
    }

    /// Collects the nanosecond mtime and `user.*` xattrs from PAX records.
    fn read_pax<E: Read>(
        &mut self,
        s: &mut Scratch,
        entry: &mut tar::Entry<'_, E>,
    ) -> Result<(), LayerError> {
        s.pax_mtime = None;
        s.xattrs.clear();
        let exts = match entry.pax_extensions() {
            Ok(Some(exts)) => exts,
            Ok(None) => return Ok(()),
            Err(e) => return Err(s.read_err(e, "reading PAX records")),
        };
        for ext in exts {
            let ext = ext.map_err(|e| {
                LayerError::Read(ctx(e, format_args!("entry {:?}: PAX record", s.path())))
            })?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                s.pax_mtime = parse_pax_time(ext.value_bytes());
            } else if let Some(attr) = key.strip_prefix(PAX_XATTR_PREFIX) {
                if attr.starts_with(b"user.") && !attr.starts_with(OVERLAY_XATTR_PREFIX) {
                    if let Ok(name) = CString::new(attr) {
                        s.xattrs.push((name, ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sets the entry's PAX `user.*` xattrs on `fd`, counting those the
/// filesystem does not support.
fn apply_xattrs(s: &Scratch, fd: BorrowedFd<'_>, unsupported: &mut u64) -> Result<(), LayerError> {
    for (name, value) in &s.xattrs {
        match fsetxattr(fd, name, value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => *unsupported += 1,
            Err(e) => {
                return Err(s.write_err(e, format_args!("set xattr {}", name.to_string_lossy())))
            }
        }
    }
    Ok(())
}

/// Go's archive/tar, which writes most image layers, reads an empty numeric
/// header field as 0; do the same rather than reject the layer.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        r => r,
    }
}

/// Last component of a normalised path.
fn basename(norm: &[u8]) -> &[u8] {
    norm.rsplit(|b| *b == b'/').next().unwrap_or(norm)
}

/// Normalises an archive name into `out` (see module docs). Returns the
/// reason when the name climbs above the root.
fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
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
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
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

// ---------------------------------------------------------------------------
// Filesystem helpers (descriptor-relative, never following a final symlink)

fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// Prefixes an error with the step that failed, keeping its kind.
fn ctx(e: impl Into<io::Error>, step: impl fmt::Display) -> io::Error {
    let e = e.into();
    io::Error::new(e.kind(), format!("{step}: {e}"))
}

fn is_setgid(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(nix::sys::stat::fstat(fd)?.st_mode & libc::S_ISGID != 0)
}

fn is_dir(mode: libc::mode_t) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens a directory given by the caller (trusted path).
fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `path` with every symlink resolved as if `root` were `/`: nothing
/// it names can lie outside `root`.
fn open_in_root(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN: the kernel saw a concurrent rename during a `..` walk and
    // refuses to guess; trying again is the documented answer.
    let mut tries = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Opens directory `parent` (normalised, non-empty) inside `root`, creating
/// missing components with mode 0755 (as Docker does for implicit parents).
fn resolve_parent(root: BorrowedFd<'_>, parent: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, parent, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(ctx(e, format_args!("{:?}", bytes_path(parent)))),
    }
    // Slow path: walk from the root, creating what is missing. Each prefix is
    // resolved from the root (not from the previous component) so that
    // absolute symlinks in the layer keep their in-root meaning.
    let mut cur: Option<OwnedFd> = None;
    let mut end = 0;
    for comp in parent.split(|b| *b == b'/') {
        end += comp.len();
        let prefix = &parent[..end];
        end += 1;
        let here = |e: Errno| ctx(e, format_args!("{:?}", bytes_path(prefix)));
        let next = match open_in_root(root, prefix, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let dirfd = cur.as_ref().map_or(root, |fd| fd.as_fd());
                match mkdirat(dirfd, comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        let fd = openat(dirfd, comp, dir_flags(), Mode::empty()).map_err(here)?;
                        // mkdirat's mode went through the umask.
                        fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(here)?;
                        fd
                    }
                    // Something is there but does not resolve: a dangling symlink.
                    Err(Errno::EEXIST) => match open_in_root(root, prefix, flags) {
                        Ok(fd) => fd,
                        Err(Errno::ENOENT) => {
                            return Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                format!(
                                    "{:?} is a symbolic link to a missing directory",
                                    bytes_path(prefix)
                                ),
                            ))
                        }
                        Err(e) => return Err(here(e)),
                    },
                    Err(e) => return Err(here(e)),
                }
            }
            Err(e) => return Err(here(e)),
        };
        cur = Some(next);
    }
    cur.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Runs `op` (which creates `name` in `dir`); if the name is taken, removes
/// what is there (recursively for a directory) and runs it again. Returns
/// whether something was removed.
fn replace_at<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut op: impl FnMut() -> nix::Result<T>,
) -> io::Result<(T, bool)> {
    match op() {
        Ok(v) => Ok((v, false)),
        Err(Errno::EEXIST) => {
            remove_all_at(dir, name).map_err(|e| ctx(e, "remove existing entry"))?;
            Ok((op()?, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `dir`, recursively if it is a directory. Never follows
/// symlinks: a symlink is removed itself.
fn remove_all_at<P: ?Sized + nix::NixPath>(dir: BorrowedFd<'_>, name: &P) -> io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        // Linux says EISDIR for a directory; POSIX allows EPERM.
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = openat(dir, name, dir_flags(), Mode::empty())?;
    empty_dir(fd.as_fd())?;
    drop(fd);
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// Removes everything inside the directory `fd`.
fn empty_dir(fd: BorrowedFd<'_>) -> io::Result<()> {
    for name in list_dir(fd)? {
        remove_all_at(fd, name.as_c_str())?;
    }
    Ok(())
}

/// Names in directory `fd`, without `.` and `..`. Collected first so the
/// directory can be modified while the caller walks the list.
fn list_dir(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut d = Dir::openat(fd, ".", dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let name = ent.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Owner (if any), then mode (after chown, which clears set-id bits), then mtime.
fn set_fd_meta<Fd: AsFd>(
    fd: Fd,
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime: &TimeSpec,
) -> nix::Result<()> {
    if let Some((u, g)) = owner {
        fchown(&fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
    }
    fchmod(&fd, Mode::from_bits_truncate(mode & 0o7777))?;
    futimens(&fd, mtime, mtime)
}

/// Applies deferred directory metadata in order (later entries win). A path
/// that is no longer a directory was replaced later in the archive and is
/// skipped. With `lenient_owner`, EPERM/EINVAL from chown are ignored.
fn apply_dir_metas(
    root: BorrowedFd<'_>,
    metas: &[DirMeta],
    lenient_owner: bool,
) -> Result<(), (Vec<u8>, io::Error)> {
    for m in metas {
        let fail = |e: Errno, step: &str| (m.path.clone(), ctx(e, step));
        let owned;
        let fd = if m.path.is_empty() {
            root
        } else {
            match open_in_root(root, &m.path, dir_flags()) {
                Ok(fd) => {
                    owned = fd;
                    owned.as_fd()
                }
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => continue,
                Err(e) => return Err(fail(e, "open directory to set its metadata")),
            }
        };
        if let Some((u, g)) = m.owner {
            match fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g))) {
                Ok(()) => {}
                Err(Errno::EPERM) | Err(Errno::EINVAL) if lenient_owner => {}
                Err(e) => return Err(fail(e, "chown directory")),
            }
        }
        fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777))
            .map_err(|e| fail(e, "chmod directory"))?;
        futimens(fd, &m.mtime, &m.mtime).map_err(|e| fail(e, "set directory mtime"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Flattening

fn is_opaque(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut buf = [0u8; 8];
    match fgetxattr(fd, OPAQUE_XATTR, &mut buf) {
        Ok(Some(n)) => Ok(&buf[..n] == b"y"),
        Ok(None) => Ok(false),
        // A value that does not fit cannot be "y"; a filesystem without
        // xattrs cannot hold opaque directories.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ERANGE) | Some(libc::ENOTSUP)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Copies the contents of layer directory `src` into `dst`. `rel` is the
/// path of `src` relative to the layer root; on error it names the entry
/// that failed.
fn copy_tree(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    rel: &mut Vec<u8>,
    dirs: &mut Vec<DirMeta>,
) -> io::Result<()> {
    for name in list_dir(src).map_err(|e| ctx(e, "list layer directory"))? {
        let name = name.as_c_str();
        let base = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.to_bytes());
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| ctx(e, "stat layer entry"))?;
        let mode = st.st_mode & 0o7777;
        let owner = (st.st_uid, st.st_gid);
        let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFCHR if st.st_rdev == 0 => match remove_all_at(dst, name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ctx(e, "apply whiteout")),
            },
            libc::S_IFDIR => {
                let sfd = openat(src, name, dir_flags(), Mode::empty())
                    .map_err(|e| ctx(e, "open layer directory"))?;
                let opaque = is_opaque(sfd.as_fd()).map_err(|e| ctx(e, "read opaque xattr"))?;
                let dfd = match openat(dst, name, dir_flags(), Mode::empty()) {
                    Ok(fd) => {
                        if opaque {
                            empty_dir(fd.as_fd()).map_err(|e| ctx(e, "empty opaque directory"))?;
                        }
                        fd
                    }
                    Err(e @ (Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)) => {
                        if e != Errno::ENOENT {
                            // A file or symlink is in the way.
                            remove_all_at(dst, name)
                                .map_err(|e| ctx(e, "remove entry replaced by a directory"))?;
                        }
                        // 0700 until the end: see `apply_dir_metas`.
                        mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                            .map_err(|e| ctx(e, "create directory"))?;
                        openat(dst, name, dir_flags(), Mode::empty())
                            .map_err(|e| ctx(e, "open new directory"))?
                    }
                    Err(e) => return Err(ctx(e, "open directory")),
                };
                copy_tree(sfd.as_fd(), dfd.as_fd(), rel, dirs)?;
                dirs.push(DirMeta {
                    path: rel.clone(),
                    mode,
                    mtime,
                    owner: Some(owner),
                });
            }
            libc::S_IFREG => {
                let mut from = File::from(
                    openat(
                        src,
                        name,
                        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| ctx(e, "open layer file"))?,
                );
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let (fd, _) = replace_at(dst, name.to_bytes(), || {
                    openat(dst, name, flags, Mode::from_bits_truncate(0o600))
                })
                .map_err(|e| ctx(e, "create file"))?;
                let mut to = File::from(fd);
                // File-to-file io::copy uses copy_file_range on Linux.
                io::copy(&mut from, &mut to).map_err(|e| ctx(e, "copy file data"))?;
                lenient_chown(fchown(
                    &to,
                    Some(Uid::from_raw(owner.0)),
                    Some(Gid::from_raw(owner.1)),
                ))
                .map_err(|e| ctx(e, "chown file"))?;
                set_fd_meta(&to, None, mode, &mtime).map_err(|e| ctx(e, "set file mode/mtime"))?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(src, name).map_err(|e| ctx(e, "read symbolic link"))?;
                replace_at(dst, name.to_bytes(), || {
                    symlinkat(target.as_os_str(), dst, name)
                })
                .map_err(|e| ctx(e, "create symbolic link"))?;
                lenient_chown(fchownat(
                    dst,
                    name,
                    Some(Uid::from_raw(owner.0)),
                    Some(Gid::from_raw(owner.1)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ))
                .map_err(|e| ctx(e, "chown symbolic link"))?;
                utimensat(dst, name, &mtime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| ctx(e, "set symbolic link mtime"))?;
            }
            libc::S_IFIFO => {
                replace_at(dst, name.to_bytes(), || {
                    mknodat(
                        dst,
                        name,
                        SFlag::S_IFIFO,
                        Mode::from_bits_truncate(0o600),
                        0,
                    )
                })
                .map_err(|e| ctx(e, "create fifo"))?;
                let fd = openat(
                    dst,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ctx(e, "open fifo"))?;
                lenient_chown(fchown(
                    &fd,
                    Some(Uid::from_raw(owner.0)),
                    Some(Gid::from_raw(owner.1)),
                ))
                .map_err(|e| ctx(e, "chown fifo"))?;
                set_fd_meta(&fd, None, mode, &mtime).map_err(|e| ctx(e, "set fifo mode/mtime"))?;
            }
            // Devices and sockets: cannot be created unprivileged, and
            // `apply_layer` never produces them.
            _ => {}
        }
        rel.truncate(base);
    }
    Ok(())
}

/// Owners the current user namespace cannot represent (or cannot assign)
/// are left as they are: the copy fallback is best effort.
fn lenient_chown(r: nix::Result<()>) -> nix::Result<()> {
    match r {
        Err(Errno::EPERM) | Err(Errno::EINVAL) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Cursor;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use tar::{Builder, EntryType, Header};

    const KEEP: ApplyOptions = ApplyOptions {
        ids: IdPolicy::Keep {
            max_uid: 65535,
            max_gid: 65535,
        },
    };
    const COLLAPSE: ApplyOptions = ApplyOptions {
        ids: IdPolicy::Collapse,
    };
    const MTIME: u64 = 1_600_000_000;

    /// A temp dir holding `dest` (the layer) and `outside` (must stay as seeded).
    struct Env {
        tmp: tempfile::TempDir,
        dest: PathBuf,
        outside: PathBuf,
    }

    impl Env {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("dest");
            let outside = tmp.path().join("outside");
            fs::create_dir(&dest).unwrap();
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("file"), b"secret").unwrap();
            fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
            fs::set_permissions(outside.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
            Env { tmp, dest, outside }
        }

        fn out(&self) -> String {
            self.outside.to_str().unwrap().to_string()
        }

        fn apply(&self, tar: &[u8]) -> Result<ApplyReport, LayerError> {
            apply_layer(tar, &self.dest, &KEEP)
        }

        /// Nothing appeared, changed or got linked outside `dest`.
        fn assert_contained(&self) {
            // `layers/` holds the flatten tests' inputs.
            let mut top: Vec<_> = fs::read_dir(self.tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != "layers")
                .collect();
            top.sort();
            assert_eq!(top, ["dest", "outside"], "something escaped next to dest");
            let inside: Vec<_> = fs::read_dir(&self.outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(inside, ["file"], "something was created in outside/");
            let f = self.outside.join("file");
            let md = fs::symlink_metadata(&f).unwrap();
            assert!(md.is_file());
            assert_eq!(md.nlink(), 1, "outside/file was hard-linked");
            assert_eq!(md.mode() & 0o7777, 0o644, "outside/file was chmod'ed");
            assert_eq!(fs::read(&f).unwrap(), b"secret");
            let omd = fs::symlink_metadata(&self.outside).unwrap();
            assert_eq!(omd.mode() & 0o7777, 0o755, "outside/ was chmod'ed");
            let mut buf = [0u8; 8];
            let dir = File::open(&self.outside).unwrap();
            assert_eq!(fgetxattr(&dir, OPAQUE_XATTR, &mut buf).unwrap(), None);
        }
    }

    fn header(kind: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    /// Well-formed archives, through `tar::Builder`.
    struct Tar(Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Self {
            Tar(Builder::new(Vec::new()))
        }
        fn entry(&mut self, path: &str, mut h: Header, data: &[u8]) -> &mut Self {
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }
        fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            self.entry(
                path,
                header(EntryType::Regular, data.len() as u64, 0o644),
                data,
            )
        }
        fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
            self.entry(
                path,
                header(EntryType::Regular, data.len() as u64, mode),
                data,
            )
        }
        fn owned(&mut self, path: &str, kind: EntryType, uid: u64, gid: u64) -> &mut Self {
            let mut h = header(kind, 0, if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_uid(uid);
            h.set_gid(gid);
            if kind.is_symlink() {
                h.set_link_name("target").unwrap();
            }
            self.entry(path, h, b"")
        }
        fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
            self.entry(path, header(EntryType::Directory, 0, mode), b"")
        }
        fn link(&mut self, kind: EntryType, path: &str, target: &str) -> &mut Self {
            let mut h = header(kind, 0, 0o777);
            h.set_link_name(target).unwrap();
            self.entry(path, h, b"")
        }
        fn node(&mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
            let mut h = header(kind, 0, 0o666);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            self.entry(path, h, b"")
        }
        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            let mut data = Vec::new();
            for (k, v) in records {
                // "LEN key=value\n", LEN counting itself.
                let body = k.len() + v.len() + 3;
                let mut len = body + 1;
                while len != body + len.to_string().len() {
                    len = body + len.to_string().len();
                }
                data.extend_from_slice(format!("{len} {k}=").as_bytes());
                data.extend_from_slice(v);
                data.push(b'\n');
            }
            let h = header(EntryType::XHeader, data.len() as u64, 0o644);
            self.entry("PaxHeaders/x", h, &data)
        }
        fn finish(&mut self) -> Vec<u8> {
            self.0.finish().unwrap();
            self.0.get_ref().clone()
        }
    }

    /// Hostile archives: raw headers, so names may hold `..` or start with `/`.
    #[derive(Default)]
    struct Raw(Vec<u8>);

    impl Raw {
        fn entry(&mut self, name: &str, kind: EntryType, link: &str, data: &[u8]) -> &mut Self {
            let mut h = header(kind, data.len() as u64, 0o644);
            {
                let old = h.as_old_mut();
                old.name = [0; 100];
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                old.linkname = [0; 100];
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.resize(self.0.len() + pad, 0);
            self
        }
        fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
            self.entry(name, EntryType::Regular, "", data)
        }
        fn finish(&mut self) -> Vec<u8> {
            let mut v = self.0.clone();
            v.resize(v.len() + 1024, 0);
            v
        }
    }

    fn unsafe_reason(r: Result<ApplyReport, LayerError>) -> String {
        match r {
            Err(LayerError::Unsafe { reason, .. }) => reason,
            other => panic!("expected LayerError::Unsafe, got {other:?}"),
        }
    }

    fn is_root() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("SKIPPED: this test needs root (chown)");
        }
        root
    }

    fn xattr(path: &Path, name: &CStr) -> Option<Vec<u8>> {
        let f = File::open(path).unwrap();
        let mut buf = [0u8; 256];
        fgetxattr(&f, name, &mut buf)
            .unwrap()
            .map(|n| buf[..n].to_vec())
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    // --- well-formed archives -------------------------------------------

    #[test]
    fn extracts_files_dirs_links_fifos_with_metadata() {
        let env = Env::new();
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let tar = Tar::new()
            .dir("etc/", 0o750)
            .file("etc/hosts", b"127.0.0.1 localhost\n")
            .file_mode("bin/su", b"#!", 0o4755)
            .file("bin/big", &big)
            .link(EntryType::Symlink, "bin/sh", "busybox")
            .link(EntryType::Symlink, "abs", "/etc/hosts")
            .link(EntryType::Link, "etc/hosts.hard", "etc/hosts")
            .entry("run/fifo", header(EntryType::Fifo, 0, 0o640), b"")
            .dir("ro/", 0o555)
            .file("ro/inside", b"x")
            .file("usr/share/doc/implicit", b"")
            .finish();
        let report = env.apply(&tar).unwrap();
        assert_eq!(report.entries, 11);
        assert_eq!(report.tar_bytes, tar.len() as u64);
        assert!(report.notes.is_empty(), "{:?}", report.notes);

        let d = &env.dest;
        assert_eq!(
            fs::read(d.join("etc/hosts")).unwrap(),
            b"127.0.0.1 localhost\n"
        );
        assert_eq!(fs::read(d.join("bin/big")).unwrap(), big);
        let su = fs::metadata(d.join("bin/su")).unwrap();
        assert_eq!(su.mode() & 0o7777, 0o4755, "setuid bit kept");
        assert_eq!(su.mtime(), MTIME as i64);
        assert_eq!(
            fs::read_link(d.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fs::read_link(d.join("abs")).unwrap(),
            Path::new("/etc/hosts")
        );
        let hard = fs::metadata(d.join("etc/hosts.hard")).unwrap();
        assert_eq!(hard.ino(), fs::metadata(d.join("etc/hosts")).unwrap().ino());
        let fifo = fs::symlink_metadata(d.join("run/fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        // Directory metadata is applied last, so children do not disturb it.
        let etc = fs::metadata(d.join("etc")).unwrap();
        assert_eq!(etc.mode() & 0o7777, 0o750);
        assert_eq!(etc.mtime(), MTIME as i64);
        let ro = fs::metadata(d.join("ro")).unwrap();
        assert_eq!(ro.mode() & 0o7777, 0o555);
        assert_eq!(fs::read(d.join("ro/inside")).unwrap(), b"x");
        let implicit = fs::metadata(d.join("usr/share/doc")).unwrap();
        assert_eq!(implicit.mode() & 0o7777, 0o755);
        env.assert_contained();
    }

    #[test]
    fn long_names_pax_mtime_and_user_xattrs() {
        let env = Env::new();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        let tar = Tar::new()
            .file(&long, b"long")
            .pax(&[
                ("mtime", b"1600000000.5"),
                ("SCHILY.xattr.user.test", b"hello"),
                ("SCHILY.xattr.user.overlay.redirect", b"/elsewhere"),
                ("SCHILY.xattr.security.capability", b"\x01\x02"),
            ])
            .file("pax", b"p")
            .finish();
        let report = env.apply(&tar).unwrap();
        assert_eq!(fs::read(env.dest.join(&long)).unwrap(), b"long");
        let md = fs::metadata(env.dest.join("pax")).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (MTIME as i64, 500_000_000));
        if report
            .notes
            .iter()
            .any(|n| n.contains("extended attribute"))
        {
            eprintln!("SKIPPED xattr check: filesystem lacks user xattrs");
        } else {
            let p = env.dest.join("pax");
            assert_eq!(xattr(&p, c"user.test").as_deref(), Some(&b"hello"[..]));
            assert_eq!(xattr(&p, c"user.overlay.redirect"), None);
        }
        env.assert_contained();
    }

    #[test]
    fn pax_time_parsing() {
        let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("12.25"), Some((12, 250_000_000)));
        assert_eq!(t("12.1234567891"), Some((12, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("x"), None);
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let env = Env::new();
        let out = env.out();
        let tar = Tar::new()
            .file("a", b"file first")
            .dir("a/", 0o755)
            .file("a/f", b"in dir")
            .dir("b/", 0o755)
            .file("b/child", b"gone")
            .file("b", b"dir became file")
            .link(EntryType::Symlink, "c", &format!("{out}/file"))
            .file("c", b"not through the link")
            .file("d", b"old")
            .file("d", b"new")
            .finish();
        env.apply(&tar).unwrap();
        let d = &env.dest;
        assert_eq!(fs::read(d.join("a/f")).unwrap(), b"in dir");
        assert_eq!(fs::read(d.join("b")).unwrap(), b"dir became file");
        assert!(fs::symlink_metadata(d.join("c")).unwrap().is_file());
        assert_eq!(fs::read(d.join("c")).unwrap(), b"not through the link");
        assert_eq!(fs::read(d.join("d")).unwrap(), b"new");
        env.assert_contained();
    }

    #[test]
    fn root_entry_sets_root_metadata() {
        let env = Env::new();
        let tar = Tar::new().dir("./", 0o711).file("./x", b"").finish();
        env.apply(&tar).unwrap();
        let md = fs::metadata(&env.dest).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o711);
        assert_eq!(md.mtime(), MTIME as i64);
        assert!(env.dest.join("x").exists());
    }

    // --- hostile names ---------------------------------------------------

    #[test]
    fn dotdot_escape_is_rejected() {
        let env = Env::new();
        let tar = Raw::default().file("../escape", b"pwned").finish();
        assert!(unsafe_reason(env.apply(&tar)).contains(".."));
        env.assert_contained();
        assert!(names(&env.dest).is_empty());
    }

    #[test]
    fn dotdot_in_the_middle_is_rejected() {
        let env = Env::new();
        let tar = Raw::default().file("a/../../escape", b"pwned").finish();
        unsafe_reason(env.apply(&tar));
        let tar = Raw::default()
            .file("a/b/../../../outside/file", b"pwned")
            .finish();
        unsafe_reason(env.apply(&tar));
        env.assert_contained();
    }

    #[test]
    fn dotdot_that_stays_inside_is_normalised() {
        let env = Env::new();
        let tar = Raw::default().file("a/../b/./c", b"ok").finish();
        env.apply(&tar).unwrap();
        assert_eq!(fs::read(env.dest.join("b/c")).unwrap(), b"ok");
        assert!(!env.dest.join("a").exists());
        env.assert_contained();
    }

    #[test]
    fn absolute_paths_are_made_relative() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .file("/abs/path", b"1")
            .file(&format!("{out}/file"), b"2")
            .finish();
        env.apply(&tar).unwrap();
        assert_eq!(fs::read(env.dest.join("abs/path")).unwrap(), b"1");
        let inner = env.dest.join(out.trim_start_matches('/')).join("file");
        assert_eq!(fs::read(inner).unwrap(), b"2");
        env.assert_contained();
    }

    #[test]
    fn symlink_to_outside_then_file_through_it() {
        let env = Env::new();
        let out = env.out();
        // Absolute target: resolves to <dest><outside>, which does not exist.
        let tar = Raw::default()
            .entry("evil", EntryType::Symlink, &out, b"")
            .file("evil/pwned", b"x")
            .finish();
        assert!(matches!(env.apply(&tar), Err(LayerError::Write { .. })));
        env.assert_contained();

        // Relative target climbing out: clamped at the root like `/..`.
        let env = Env::new();
        let tar = Raw::default()
            .entry("evil", EntryType::Symlink, "../outside", b"")
            .file("evil/pwned", b"x")
            .finish();
        assert!(matches!(env.apply(&tar), Err(LayerError::Write { .. })));
        env.assert_contained();

        let env = Env::new();
        let tar = Raw::default()
            .entry("evil", EntryType::Symlink, "../../..", b"")
            .file("evil/pwned", b"x")
            .finish();
        env.apply(&tar).unwrap();
        assert_eq!(fs::read(env.dest.join("pwned")).unwrap(), b"x");
        env.assert_contained();
    }

    #[test]
    fn symlink_to_outside_file_then_file_over_it() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("x", EntryType::Symlink, &format!("{out}/file"), b"")
            .file("x", b"overwrite?")
            .entry("y", EntryType::Symlink, &format!("{out}/file"), b"")
            .entry("y", EntryType::Fifo, "", b"")
            .finish();
        env.apply(&tar).unwrap();
        assert_eq!(fs::read(env.dest.join("x")).unwrap(), b"overwrite?");
        env.assert_contained();
    }

    #[test]
    fn symlink_replacing_a_directory_then_file_through_it() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("d/", EntryType::Directory, "", b"")
            .file("d/before", b"1")
            .entry("d", EntryType::Symlink, &out, b"")
            .file("d/after", b"2")
            .finish();
        assert!(matches!(env.apply(&tar), Err(LayerError::Write { .. })));
        env.assert_contained();
    }

    #[test]
    fn whiteout_and_opaque_through_symlink_stay_inside() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("w", EntryType::Symlink, &out, b"")
            .file("w/.wh.file", b"")
            .finish();
        assert!(env.apply(&tar).is_err());
        env.assert_contained();
        let env = Env::new();
        let tar = Raw::default()
            .entry("o", EntryType::Symlink, &out, b"")
            .file("o/.wh..wh..opq", b"")
            .finish();
        assert!(env.apply(&tar).is_err());
        env.assert_contained();
    }

    #[test]
    fn hardlink_to_dotdot_outside_is_rejected() {
        let env = Env::new();
        let tar = Raw::default()
            .entry("h", EntryType::Link, "../outside/file", b"")
            .finish();
        assert!(unsafe_reason(env.apply(&tar)).starts_with("hard link target"));
        env.assert_contained();
        assert!(names(&env.dest).is_empty());
    }

    #[test]
    fn hardlink_to_absolute_host_path_resolves_in_root() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("h", EntryType::Link, &format!("{out}/file"), b"")
            .finish();
        assert!(matches!(env.apply(&tar), Err(LayerError::Write { .. })));
        env.assert_contained();
        assert!(names(&env.dest).is_empty());

        // `/etc/passwd` names <dest>/etc/passwd, which the layer may provide.
        let env = Env::new();
        let tar = Raw::default()
            .entry("h", EntryType::Link, "/etc/passwd", b"")
            .finish();
        assert!(env.apply(&tar).is_err());
        assert!(names(&env.dest).is_empty());
        let passwd = fs::metadata("/etc/passwd").unwrap();
        let tar = Raw::default()
            .file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")
            .entry("h", EntryType::Link, "/etc/passwd", b"")
            .finish();
        env.apply(&tar).unwrap();
        let h = fs::metadata(env.dest.join("h")).unwrap();
        assert_ne!(h.ino(), passwd.ino());
        assert_eq!(
            h.ino(),
            fs::metadata(env.dest.join("etc/passwd")).unwrap().ino()
        );
        env.assert_contained();
    }

    #[test]
    fn hardlink_through_symlinked_dir() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("ln", EntryType::Symlink, &out, b"")
            .entry("h", EntryType::Link, "ln/file", b"")
            .finish();
        assert!(matches!(env.apply(&tar), Err(LayerError::Write { .. })));
        env.assert_contained();

        let env = Env::new();
        let tar = Raw::default()
            .entry("ln", EntryType::Symlink, "../../outside", b"")
            .entry("h", EntryType::Link, "ln/file", b"")
            .finish();
        assert!(env.apply(&tar).is_err());
        env.assert_contained();

        // Inside the layer, a symlinked directory resolves like in the container.
        let env = Env::new();
        let tar = Raw::default()
            .file("real/file", b"data")
            .entry("ln", EntryType::Symlink, "/real", b"")
            .entry("h", EntryType::Link, "ln/file", b"")
            .finish();
        env.apply(&tar).unwrap();
        let h = fs::metadata(env.dest.join("h")).unwrap();
        assert_eq!(
            h.ino(),
            fs::metadata(env.dest.join("real/file")).unwrap().ino()
        );
        env.assert_contained();
    }

    #[test]
    fn hardlink_to_symlink_links_the_symlink_itself() {
        let env = Env::new();
        let out = env.out();
        let tar = Raw::default()
            .entry("s", EntryType::Symlink, &format!("{out}/file"), b"")
            .entry("h", EntryType::Link, "s", b"")
            .finish();
        env.apply(&tar).unwrap();
        let h = fs::symlink_metadata(env.dest.join("h")).unwrap();
        assert!(h.file_type().is_symlink());
        env.assert_contained();
    }

    // --- special entries ---------------------------------------------------

    #[test]
    fn device_nodes_are_skipped_with_one_note() {
        let env = Env::new();
        let tar = Tar::new()
            .node("dev/null", EntryType::Char, 1, 3)
            .node("dev/sda", EntryType::Block, 8, 0)
            .file("dev/keep", b"")
            .finish();
        let report = env.apply(&tar).unwrap();
        assert_eq!(report.notes, ["skipped 2 device node(s) (unprivileged)"]);
        assert_eq!(report.entries, 1);
        assert_eq!(names(&env.dest.join("dev")), ["keep"]);
    }

    #[test]
    fn whiteouts_become_char_devices() {
        let env = Env::new();
        let tar = Tar::new()
            .dir("gone/", 0o755)
            .file("gone/inner", b"x")
            .file(".wh.gone", b"")
            .file("sub/.wh.name", b"")
            .finish();
        let report = env.apply(&tar).unwrap();
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        for p in ["gone", "sub/name"] {
            let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
            assert!(md.file_type().is_char_device(), "{p}");
            assert_eq!(md.rdev(), 0, "{p}");
        }
        assert!(!env.dest.join(".wh.gone").exists());
        assert_eq!(names(&env.dest.join("sub")), ["name"]);
        env.assert_contained();
    }

    #[test]
    fn opaque_marker_sets_xattr() {
        let env = Env::new();
        let tar = Tar::new()
            .dir("d/", 0o755)
            .file("d/.wh..wh..opq", b"")
            .file("d/kept", b"")
            .file("implicit/.wh..wh..opq", b"")
            .file(".wh..wh.plnk", b"")
            .finish();
        env.apply(&tar).unwrap();
        for p in ["d", "implicit"] {
            assert_eq!(
                xattr(&env.dest.join(p), OPAQUE_XATTR).as_deref(),
                Some(&b"y"[..]),
                "{p}"
            );
        }
        assert_eq!(names(&env.dest.join("d")), ["kept"]);
        assert!(names(&env.dest.join("implicit")).is_empty());
        assert_eq!(names(&env.dest), ["d", "implicit"]);
    }

    #[test]
    fn empty_numeric_fields_read_as_zero() {
        let env = Env::new();
        let mut h = header(EntryType::Regular, 1, 0o644);
        {
            let old = h.as_old_mut();
            old.name[..1].copy_from_slice(b"a");
            old.uid = [0; 8];
            old.gid = [b' '; 8];
            old.mtime = [0; 12];
        }
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.push(b'x');
        tar.resize(2048, 0);
        env.apply(&tar).unwrap();
        assert_eq!(fs::metadata(env.dest.join("a")).unwrap().mtime(), 0);
        // A field holding junk is still an error.
        h.as_old_mut().uid = *b"zz\0\0\0\0\0\0";
        h.set_cksum();
        tar[..512].copy_from_slice(h.as_bytes());
        assert!(matches!(env.apply(&tar), Err(LayerError::Read(_))));
    }

    #[test]
    fn invalid_whiteout_name_is_rejected() {
        let env = Env::new();
        let tar = Raw::default().file("a/.wh...", b"").finish();
        unsafe_reason(env.apply(&tar));
        env.assert_contained();
    }

    // --- broken streams --------------------------------------------------

    #[test]
    fn truncated_inside_file_data_is_an_error() {
        let env = Env::new();
        let tar = Tar::new().file("a", &[7u8; 5000]).finish();
        let cut = &tar[..512 + 3000];
        match env.apply(cut) {
            Err(LayerError::Read(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                assert!(e.to_string().contains("\"a\""), "{e}");
            }
            other => panic!("expected Read error, got {other:?}"),
        }
    }

    #[test]
    fn truncated_inside_header_is_an_error() {
        let env = Env::new();
        let tar = Tar::new().file("a", b"x").file("b", b"y").finish();
        let cut = &tar[..1024 + 200];
        assert!(matches!(env.apply(cut), Err(LayerError::Read(_))));
        // Data complete but its padding missing: still inside the entry.
        let cut = &tar[..512 + 1];
        assert!(matches!(env.apply(cut), Err(LayerError::Read(_))));
    }

    #[test]
    fn missing_end_of_archive_marker_is_accepted() {
        let env = Env::new();
        let tar = Tar::new().file("a", b"x").finish();
        let report = env.apply(&tar[..1024]).unwrap();
        assert_eq!(report.entries, 1);
        assert_eq!(report.tar_bytes, 1024);
    }

    #[test]
    fn garbage_is_an_error() {
        let env = Env::new();
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 13) as u8).collect();
        assert!(matches!(env.apply(&garbage), Err(LayerError::Read(_))));
        assert!(matches!(env.apply(b"not a tar"), Err(LayerError::Read(_))));
        let mut bad_sum = Tar::new().file("a", b"x").finish();
        bad_sum[0] ^= 1;
        assert!(matches!(env.apply(&bad_sum), Err(LayerError::Read(_))));
        assert!(names(&env.dest).is_empty());
    }

    #[test]
    fn drains_reader_and_counts_every_byte() {
        let env = Env::new();
        let mut tar = Tar::new().file("a", b"x").finish();
        // Record padding and trailing junk after the end-of-archive blocks.
        tar.extend_from_slice(&[0u8; 8192]);
        tar.extend_from_slice(b"trailing junk");
        let mut cursor = Cursor::new(&tar);
        let report = apply_layer(&mut cursor, &env.dest, &KEEP).unwrap();
        assert_eq!(report.tar_bytes, tar.len() as u64);
        assert_eq!(cursor.position(), tar.len() as u64);
    }

    // --- ownership -------------------------------------------------------

    #[test]
    fn ownership_keep_and_clamp() {
        if !is_root() {
            return;
        }
        let env = Env::new();
        let tar = Tar::new()
            .owned("f", EntryType::Regular, 1000, 2000)
            .owned("d/", EntryType::Directory, 3, 4)
            .owned("s", EntryType::Symlink, 5, 6)
            .owned("big", EntryType::Regular, 70000, 100)
            .owned("huge", EntryType::Regular, 1 << 33, 1 << 40)
            .finish();
        let report = env.apply(&tar).unwrap();
        assert_eq!(
            report.notes,
            ["clamped 2 file owner(s) above uid/gid 65535 to 65535"]
        );
        let own = |p: &str| {
            let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
            (md.uid(), md.gid())
        };
        assert_eq!(own("f"), (1000, 2000));
        assert_eq!(own("d"), (3, 4));
        assert_eq!(own("s"), (5, 6));
        assert_eq!(own("big"), (65535, 100));
        assert_eq!(own("huge"), (65535, 65535));
        // The symlink's target was not created or chowned.
        assert!(!env.dest.join("target").exists());
    }

    #[test]
    fn ownership_keep_preserves_setuid_after_chown() {
        if !is_root() {
            return;
        }
        let env = Env::new();
        let mut h = header(EntryType::Regular, 2, 0o6755);
        h.set_uid(1000);
        h.set_gid(1000);
        let tar = Tar::new().entry("su", h, b"#!").finish();
        env.apply(&tar).unwrap();
        let md = fs::metadata(env.dest.join("su")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1000, 1000, 0o6755)
        );
    }

    #[test]
    fn ownership_keep_under_setgid_dir_is_exact() {
        if !is_root() {
            return;
        }
        let env = Env::new();
        // New files in a setgid directory take its group: the chown is needed.
        nix::unistd::chown(&env.dest, None, Some(Gid::from_raw(1234))).unwrap();
        fs::set_permissions(&env.dest, fs::Permissions::from_mode(0o2755)).unwrap();
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let tar = Tar::new()
            .owned("f", EntryType::Regular, me.0.into(), me.1.into())
            .owned("d/", EntryType::Directory, me.0.into(), me.1.into())
            .owned("s", EntryType::Symlink, me.0.into(), me.1.into())
            .finish();
        env.apply(&tar).unwrap();
        for p in ["f", "d", "s"] {
            let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
            assert_eq!((md.uid(), md.gid()), me, "{p}");
        }
    }

    #[test]
    fn ownership_collapse() {
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let env = Env::new();
        let tar = Tar::new()
            .owned("f", EntryType::Regular, 1000, 1000)
            .owned("s", EntryType::Symlink, 0, 5)
            .finish();
        let report = apply_layer(&tar[..], &env.dest, &COLLAPSE).unwrap();
        assert_eq!(
            report.notes,
            ["no subuid/subgid range: all files in the layer belong to you"]
        );
        let md = fs::symlink_metadata(env.dest.join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), me);

        let env = Env::new();
        let tar = Tar::new().owned("f", EntryType::Regular, 0, 0).finish();
        let report = apply_layer(&tar[..], &env.dest, &COLLAPSE).unwrap();
        assert!(report.notes.is_empty(), "{:?}", report.notes);
    }

    // --- flattening ------------------------------------------------------

    fn layer(env: &Env, name: &str, tar: &[u8]) -> PathBuf {
        let dir = env.tmp.path().join("layers").join(name);
        fs::create_dir_all(&dir).unwrap();
        apply_layer(tar, &dir, &KEEP).unwrap();
        dir
    }

    #[test]
    fn flatten_merges_whiteouts_and_opaque_dirs() {
        let env = Env::new();
        let l1 = layer(
            &env,
            "l1",
            &Tar::new()
                .dir("a/", 0o755)
                .file("a/one", b"1")
                .file("a/two", b"2")
                .dir("b/", 0o755)
                .file("b/x", b"x")
                .dir("c/", 0o750)
                .file("c/sub/y", b"y")
                .file("keep", b"v1")
                .file("gone", b"g")
                .link(EntryType::Symlink, "link", "a/one")
                .entry("fifo", header(EntryType::Fifo, 0, 0o600), b"")
                .file_mode("ro/file", b"r", 0o444)
                .dir("ro/", 0o555)
                .finish(),
        );
        let l2 = layer(
            &env,
            "l2",
            &Tar::new()
                .file(".wh.b", b"")
                .dir("c/", 0o750)
                .dir("ro/", 0o555)
                .dir("a/", 0o700)
                .file("a/.wh..wh..opq", b"")
                .file("a/new", b"n")
                .file("c/sub/z", b"z")
                .file("keep", b"v2")
                .file(".wh.gone", b"")
                .file("ro/added", b"+")
                .finish(),
        );
        let l3 = layer(
            &env,
            "l3",
            &Tar::new()
                .dir("c/", 0o750)
                .file("c/.wh.sub", b"")
                .dir("b/", 0o755)
                .file("b/again", b"again")
                .finish(),
        );
        flatten_layers(&[l1, l2, l3], &env.dest).unwrap();
        let d = &env.dest;
        assert_eq!(names(d), ["a", "b", "c", "fifo", "keep", "link", "ro"]);
        assert_eq!(names(&d.join("a")), ["new"]);
        assert_eq!(names(&d.join("b")), ["again"]);
        assert!(names(&d.join("c")).is_empty());
        assert_eq!(names(&d.join("ro")), ["added", "file"]);
        assert_eq!(fs::read(d.join("keep")).unwrap(), b"v2");
        assert_eq!(fs::read_link(d.join("link")).unwrap(), Path::new("a/one"));
        assert!(fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let a = fs::metadata(d.join("a")).unwrap();
        assert_eq!(a.mode() & 0o7777, 0o700, "upper layer's mode wins");
        assert_eq!(
            xattr(&d.join("a"), OPAQUE_XATTR),
            None,
            "no overlay xattrs copied"
        );
        let c = fs::metadata(d.join("c")).unwrap();
        assert_eq!((c.mode() & 0o7777, c.mtime()), (0o750, MTIME as i64));
        assert_eq!(fs::metadata(d.join("ro")).unwrap().mode() & 0o7777, 0o555);
        let f = fs::metadata(d.join("ro/file")).unwrap();
        assert_eq!((f.mode() & 0o7777, f.mtime()), (0o444, MTIME as i64));
        assert_eq!(fs::read(d.join("ro/file")).unwrap(), b"r");
        env.assert_contained();
    }

    #[test]
    fn flatten_never_follows_symlinks_in_dest() {
        let env = Env::new();
        let out = env.out();
        let l1 = layer(
            &env,
            "l1",
            &Tar::new()
                .link(EntryType::Symlink, "s", &out)
                .link(EntryType::Symlink, "f", &format!("{out}/file"))
                .finish(),
        );
        let l2 = layer(
            &env,
            "l2",
            &Tar::new()
                .dir("s/", 0o755)
                .file("s/file", b"pwned")
                .file("f", b"pwned")
                .finish(),
        );
        flatten_layers(&[l1, l2], &env.dest).unwrap();
        assert!(fs::symlink_metadata(env.dest.join("s")).unwrap().is_dir());
        assert_eq!(fs::read(env.dest.join("s/file")).unwrap(), b"pwned");
        assert!(fs::symlink_metadata(env.dest.join("f")).unwrap().is_file());
        env.assert_contained();
    }
}
