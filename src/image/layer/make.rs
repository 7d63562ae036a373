//! Making each kind of entry on disk, through the descriptor of its parent
//! inside the layer root: a file with its data, a directory (or the one
//! there kept), a symbolic link as stored, a hard link whose target
//! resolves inside the root, a fifo; and the entry's PAX xattrs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

use super::entry::Scratch;
use super::entry::{bytes_path, normalize};
use super::LayerError;
use crate::linux::fs::{
    dir_flags, fsetxattr, openat_in_root, remove_all_at, replace_at, set_fd_meta, DirMeta,
};

/// Copy buffer for file contents. Larger than the read buffer so that big
/// reads bypass `BufReader` and land directly in this buffer.
const COPY_BUF: usize = 256 * 1024;

/// Where an entry is made (its parent directory; its name there is the
/// last component of `Scratch::norm`) and what it gets: the owner to set
/// (None when the new inode's own is right), its mode and mtime.
pub(super) struct Place<'a> {
    pub(super) dir: BorrowedFd<'a>,
    pub(super) new_owner: Option<(u32, u32)>,
    pub(super) mode: u32,
    pub(super) mtime: TimeSpec,
}

/// A normalised path's parent and last component (the parent empty at
/// the top).
pub(super) fn parent_and_name(norm: &[u8]) -> (&[u8], &[u8]) {
    match norm.iter().rposition(|b| *b == b'/') {
        Some(i) => (&norm[..i], &norm[i + 1..]),
        None => (&[][..], norm),
    }
}

/// A regular file with the entry's data; whether something in its way was
/// removed.
pub(super) fn write_file<E: Read>(
    s: &Scratch,
    entry: &mut tar::Entry<'_, E>,
    at: &Place<'_>,
    buf: &mut Vec<u8>,
    xattrs_unsupported: &mut u64,
) -> Result<bool, LayerError> {
    let (dir, name) = (at.dir, parent_and_name(&s.norm).1);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let (fd, removed) = replace_at(dir, name, || {
        openat(dir, name, flags, Mode::from_bits_truncate(0o600))
    })
    .map_err(|e| s.write_err(e, "create file"))?;
    let mut file = File::from(fd);
    let size = entry.size();
    if size > 0 {
        if buf.is_empty() {
            *buf = vec![0; COPY_BUF];
        }
        let mut copied = 0u64;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(s.read_err(e, "reading file data")),
            };
            file.write_all(&buf[..n])
                .map_err(|e| s.write_err(e, "write file data"))?;
            copied += n as u64;
        }
        if copied != size {
            return Err(s.read_err(
                io::Error::from(io::ErrorKind::UnexpectedEof),
                format_args!("archive truncated inside file data ({copied} of {size} bytes)"),
            ));
        }
    }
    set_fd_meta(&file, at.new_owner, at.mode, &at.mtime)
        .map_err(|e| s.write_err(e, "set file owner/mode/mtime"))?;
    apply_xattrs(s, file.as_fd(), xattrs_unsupported)?;
    Ok(removed)
}

/// A directory, or the one already there kept (anything else there is
/// removed first); its mode and mtime are set at the end, from `dirs`.
pub(super) fn make_dir(
    s: &Scratch,
    at: &Place<'_>,
    owner: Option<(u32, u32)>,
    xattrs_unsupported: &mut u64,
    dirs: &mut Vec<DirMeta>,
) -> Result<bool, LayerError> {
    let (dir, name) = (at.dir, parent_and_name(&s.norm).1);
    let mut removed = false;
    let dir_owner = match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => at.new_owner,
        Err(Errno::EEXIST) => {
            let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| s.write_err(e, "stat existing entry"))?;
            if is_dir(st.st_mode) {
                owner
            } else {
                remove_all_at(dir, name).map_err(|e| s.write_err(e, "remove existing entry"))?;
                removed = true;
                mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| s.write_err(e, "create directory"))?;
                at.new_owner
            }
        }
        Err(e) => return Err(s.write_err(e, "create directory")),
    };
    if let Some(owner) = dir_owner {
        chown_at(dir, name, owner).map_err(|e| s.write_err(e, "chown directory"))?;
    }
    if !s.xattrs.is_empty() {
        let fd = openat(dir, name, dir_flags(), Mode::empty())
            .map_err(|e| s.write_err(e, "open directory"))?;
        apply_xattrs(s, fd.as_fd(), xattrs_unsupported)?;
    }
    dirs.push(DirMeta {
        path: s.norm.clone(),
        mode: at.mode,
        mtime: at.mtime,
        owner: None,
    });
    Ok(removed)
}

/// Give `name` in `dir` to `owner`, a symlink itself (never followed).
fn chown_at(dir: BorrowedFd<'_>, name: &[u8], (u, g): (u32, u32)) -> nix::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(u)),
        Some(Gid::from_raw(g)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// A symbolic link to the entry's target, stored as given (it is never
/// followed here).
pub(super) fn make_symlink<E: Read>(
    s: &mut Scratch,
    entry: &tar::Entry<'_, E>,
    at: &Place<'_>,
) -> Result<bool, LayerError> {
    s.link_raw.clear();
    match entry.link_name_bytes() {
        Some(t) if !t.is_empty() => s.link_raw.extend_from_slice(&t),
        _ => return Err(s.unsafe_err("symbolic link without a target")),
    }
    let (dir, name) = (at.dir, parent_and_name(&s.norm).1);
    let target = &s.link_raw[..];
    let ((), removed) = replace_at(dir, name, || symlinkat(target, dir, name))
        .map_err(|e| s.write_err(e, "create symbolic link"))?;
    if let Some(owner) = at.new_owner {
        chown_at(dir, name, owner).map_err(|e| s.write_err(e, "chown symbolic link"))?;
    }
    utimensat(
        dir,
        name,
        &at.mtime,
        &at.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| s.write_err(e, "set symbolic link mtime"))?;
    Ok(removed)
}

/// A hard link to another entry of the layer, its target resolved inside
/// `root`; a link to itself is left as it is.
pub(super) fn make_hard_link<E: Read>(
    s: &mut Scratch,
    entry: &tar::Entry<'_, E>,
    root: BorrowedFd<'_>,
    at: &Place<'_>,
) -> Result<bool, LayerError> {
    s.link_raw.clear();
    match entry.link_name_bytes() {
        Some(t) => s.link_raw.extend_from_slice(&t),
        None => return Err(s.unsafe_err("hard link without a target")),
    }
    normalize(&s.link_raw, &mut s.link_norm)
        .map_err(|r| s.unsafe_err(format!("hard link target: {r}")))?;
    let (parent, name) = parent_and_name(&s.norm);
    let (tparent, tname) = parent_and_name(&s.link_norm);
    if tname.is_empty() {
        return Err(s.unsafe_err("hard link to the layer root"));
    }
    if tparent == parent && tname == name {
        // A link to itself: nothing to do (removing it first would lose it).
        return Ok(false);
    }
    let dir = at.dir;
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
        tdir_owned = openat_in_root(root, tparent, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(target_err)?;
        tdir_owned.as_fd()
    };
    // Fail before removing anything if the target is missing.
    fstatat(tdir, tname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(target_err)?;
    // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
    let ((), removed) = replace_at(dir, name, || {
        linkat(tdir, tname, dir, name, AtFlags::empty())
    })
    .map_err(|e| s.write_err(e, "create hard link"))?;
    Ok(removed)
}

/// A fifo, opened without waiting for a writer to set its owner, mode and
/// mtime.
pub(super) fn make_fifo(s: &Scratch, at: &Place<'_>) -> Result<bool, LayerError> {
    let (dir, name) = (at.dir, parent_and_name(&s.norm).1);
    let ((), removed) = replace_at(dir, name, || {
        mknodat(
            dir,
            name,
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o600),
            0,
        )
    })
    .map_err(|e| s.write_err(e, "create fifo"))?;
    // O_NONBLOCK: opening a fifo for reading must not wait for a writer.
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| s.write_err(e, "open fifo"))?;
    set_fd_meta(&fd, at.new_owner, at.mode, &at.mtime)
        .map_err(|e| s.write_err(e, "set fifo owner/mode/mtime"))?;
    Ok(removed)
}

/// Sets the entry's PAX `user.*` xattrs on `fd`, counting those the
/// filesystem does not support.
pub(super) fn apply_xattrs(
    s: &Scratch,
    fd: BorrowedFd<'_>,
    unsupported: &mut u64,
) -> Result<(), LayerError> {
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

fn is_dir(mode: libc::mode_t) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}
