//! Applying archive entries one by one: files, directories, links and
//! fifos created through descriptors that never leave the layer root,
//! whiteouts turned into overlayfs's format, PAX xattrs and owner policy.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, makedev, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, Gid, Uid};

use super::entry::{basename, bytes_path, normalize, numeric, parse_pax_time, Scratch};
use super::make::{
    apply_xattrs, make_dir, make_fifo, make_hard_link, make_symlink, parent_and_name, write_file,
    Place,
};
use super::{IdPolicy, LayerError};
use crate::linux::fs::{dir_flags, fsetxattr, openat_in_root, replace_at, with_step, DirMeta};
use crate::linux::mount::OPAQUE_XATTR;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// PAX records carrying extended attributes, as written by GNU tar and Docker.
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// Overlay's own attributes change how the stack is merged (redirects,
/// metacopy, opacity); a layer may only express those through whiteout files.
const OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";

/// Counts every byte the tar parser (and the final drain) reads.
/// While the parser looks for the next entry, it may read only up to
/// `limit` (shared with the loop that sets it): the tar crate reads an
/// entry's PAX and GNU long-name headers into memory whole, so without this
/// bound a compressed layer could claim gigabytes of them.
pub(super) struct CountingReader<R> {
    pub(super) inner: R,
    pub(super) count: u64,
    pub(super) budget: std::rc::Rc<Budget>,
}

/// Where the parser stands and how far it may read.
#[derive(Debug)]
pub(super) struct Budget {
    pub(super) count: std::cell::Cell<u64>,
    pub(super) limit: std::cell::Cell<u64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            count: std::cell::Cell::new(0),
            limit: std::cell::Cell::new(u64::MAX),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.limit.get().saturating_sub(self.count);
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "an entry's extended headers (PAX, GNU long name) exceed {} KiB",
                    super::MAX_EXTENDED_HEADERS >> 10
                ),
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.count += n as u64;
        self.budget.count.set(self.count);
        Ok(n)
    }
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

pub(super) struct Extractor {
    pub(super) root: OwnedFd,
    ids: IdPolicy,
    /// Our effective uid/gid: what a new file gets unless its parent is setgid.
    me: (u32, u32),
    cache: ParentCache,
    buf: Vec<u8>,
    pub(super) dirs: Vec<DirMeta>,
    pub(super) entries: u64,
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
    pub(super) fn new(root: OwnedFd, ids: IdPolicy) -> io::Result<Self> {
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

    pub(super) fn notes(&self) -> Vec<String> {
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
            notes.push(super::no_range_note("the layer"));
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

    pub(super) fn apply_entry<E: Read>(
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
        let Some(kind) = self.kind_of(etype, s) else {
            return Ok(());
        };
        self.read_pax(s, entry)?;
        let meta = Meta::of(s, entry.header())?;

        let (parent, name) = parent_and_name(&s.norm);
        if name.is_empty() {
            // The entry names the layer root itself (`./` or `/`).
            return self.apply_root(s, kind, &meta);
        }
        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.apply_whiteout(s, parent, name, rest);
        }
        // Hard links share their target's inode and owner.
        let owner = match kind {
            Kind::HardLink => None,
            _ => self.owner(meta.uid, meta.gid),
        };

        let root = self.root.as_fd();
        let (dir, parent_setgid) = self
            .cache
            .get(root, parent)
            .map_err(|e| s.write_err(e, "open parent directory"))?;
        // A new inode already belongs to us (or, under a setgid parent, to
        // us and the parent's group): skip the chown when it would be a no-op.
        let me = self.me;
        let at = Place {
            dir,
            new_owner: owner.filter(|o| parent_setgid || *o != me),
            mode: meta.mode,
            mtime: meta.mtime,
        };
        let removed = match kind {
            Kind::File => write_file(s, entry, &at, &mut self.buf, &mut self.xattrs_unsupported)?,
            Kind::Dir => make_dir(s, &at, owner, &mut self.xattrs_unsupported, &mut self.dirs)?,
            Kind::Symlink => make_symlink(s, entry, &at)?,
            Kind::HardLink => make_hard_link(s, entry, root, &at)?,
            Kind::Fifo => make_fifo(s, &at)?,
        };
        if removed {
            self.cache.invalidate();
        }
        self.entries += 1;
        Ok(())
    }

    /// What an entry of type `etype` becomes, or None for one skipped (a
    /// device node, an unsupported type), counted for the notes.
    fn kind_of(&mut self, etype: tar::EntryType, s: &Scratch) -> Option<Kind> {
        use tar::EntryType as T;
        // Whiteouts are recognised by name whatever their type.
        let whiteout = basename(&s.norm).starts_with(WHITEOUT_PREFIX);
        Some(match etype {
            T::Regular | T::Continuous | T::GNUSparse if s.raw.ends_with(b"/") => Kind::Dir,
            T::Regular | T::Continuous | T::GNUSparse => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::HardLink,
            T::Fifo => Kind::Fifo,
            _ if whiteout => Kind::File,
            T::Char | T::Block => {
                self.devices += 1;
                return None;
            }
            _ => {
                self.unsupported += 1;
                return None;
            }
        })
    }

    /// An entry naming the layer root: only a directory may, and it sets
    /// the root's owner, xattrs, mode and mtime.
    fn apply_root(&mut self, s: &Scratch, kind: Kind, meta: &Meta) -> Result<(), LayerError> {
        if !matches!(kind, Kind::Dir) {
            return Err(s.unsafe_err("a non-directory entry names the layer root"));
        }
        if let Some((u, g)) = self.owner(meta.uid, meta.gid) {
            fchown(&self.root, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                .map_err(|e| s.write_err(e, "chown layer root"))?;
        }
        apply_xattrs(s, self.root.as_fd(), &mut self.xattrs_unsupported)?;
        self.dirs.push(DirMeta {
            path: Vec::new(),
            mode: meta.mode,
            mtime: meta.mtime,
            owner: None,
        });
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
                LayerError::Read(with_step(
                    e,
                    format_args!("entry {:?}: PAX record", s.path()),
                ))
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

/// The header's mode (permission bits only), owner and mtime (a PAX
/// record's, when there is one).
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
}

impl Meta {
    fn of(s: &Scratch, header: &tar::Header) -> Result<Meta, LayerError> {
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
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
        })
    }
}

fn is_setgid(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(nix::sys::stat::fstat(fd)?.st_mode & libc::S_ISGID != 0)
}

/// Opens directory `parent` (normalised, non-empty) inside `root`, creating
/// missing components with mode 0755 (as Docker does for implicit parents).
fn resolve_parent(root: BorrowedFd<'_>, parent: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match openat_in_root(root, parent, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(with_step(e, format_args!("{:?}", bytes_path(parent)))),
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
        let here = |e: Errno| with_step(e, format_args!("{:?}", bytes_path(prefix)));
        let next = match openat_in_root(root, prefix, flags) {
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
                    Err(Errno::EEXIST) => match openat_in_root(root, prefix, flags) {
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
