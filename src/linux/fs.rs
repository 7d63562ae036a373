//! Filesystem helpers nix does not provide: extended attributes, the one
//! in-root opener (`openat2(RESOLVE_IN_ROOT)`) and what is built on it
//! (mount targets, deferred directory metadata), and descriptor-relative
//! create/replace/remove of tree entries (layer extraction, the copy fallback).
//!
//! Every function works from an open descriptor, so callers resolve paths
//! safely first; none of them follows a symlink in a final component.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, futimens, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use nix::NixPath;

/// Sets extended attribute `name` to `value` on the open file `fd`
/// (creating or replacing it).
pub fn fsetxattr<Fd: AsFd>(fd: Fd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated C string and `value` is a valid
    // slice of `value.len()` bytes, both borrowed for the whole call; the kernel
    // only reads them. The descriptor is borrowed, so it stays open during the call.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads extended attribute `name` of the open file `fd` into `buf`.
///
/// Returns `Ok(None)` when the attribute is not set, `Ok(Some(len))` with the
/// value's length otherwise; a value longer than `buf` is an error (`ERANGE`).
pub fn fgetxattr<Fd: AsFd>(fd: Fd, name: &CStr, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `name` is a valid NUL-terminated C string; `buf` is a valid,
    // exclusively borrowed buffer of `buf.len()` writable bytes, and the kernel
    // writes at most that many. The descriptor is borrowed, so it stays open.
    let rc = unsafe {
        libc::fgetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc >= 0 {
        // rc is non-negative and at most buf.len(), so the cast is lossless.
        return Ok(Some(rc as usize));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENODATA) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Names of the extended attributes of the open file `fd` (those the
/// caller may see: `trusted.*` is hidden outside the initial namespace).
pub fn flistxattr<Fd: AsFd>(fd: Fd) -> io::Result<Vec<std::ffi::CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `buf` is a valid, exclusively borrowed buffer of
        // `buf.len()` writable bytes and the kernel writes at most that many;
        // the descriptor is borrowed, so it stays open during the call.
        let rc =
            unsafe { libc::flistxattr(fd.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            // rc is non-negative and at most buf.len(), so the cast is lossless.
            buf.truncate(rc as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|n| !n.is_empty())
                .filter_map(|n| std::ffi::CString::new(n).ok())
                .collect());
        }
        let err = io::Error::last_os_error();
        // The list grew between calls, or the buffer was too small: retry
        // with room for the largest list the kernel allows (64 KiB).
        if err.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 16 {
            buf = vec![0u8; 1 << 16];
            continue;
        }
        return Err(err);
    }
}

// ---------------------------------------------------------------------------
// Descriptor-relative tree operations, shared by layer extraction and the
// copy fallback: none follows a final symlink.

/// Prefixes an error with the step that failed, keeping its kind; the
/// original error (with its errno) stays inside, as the [`Stepped`] the
/// result wraps (`get_ref`).
pub fn with_step(e: impl Into<io::Error>, step: impl fmt::Display) -> io::Error {
    let error = e.into();
    io::Error::new(
        error.kind(),
        Stepped {
            step: step.to_string(),
            error,
        },
    )
}

/// An I/O error and the step it failed in. The error is a field, not a
/// source: its text is already in the message, and chains that join every
/// cause would say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {error}")]
pub struct Stepped {
    pub step: String,
    pub error: io::Error,
}

/// Flags for opening a directory to read or change it, never through a
/// symlink in the last component.
pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens a directory given by the caller (trusted path).
pub fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `path` relative to `root` with every symlink resolved as if `root`
/// were `/` (`openat2(RESOLVE_IN_ROOT)`, magic links refused): nothing it
/// names can lie outside `root`. The one place burrow resolves a path
/// inside a rootfs or layer; `O_CLOEXEC` is always added.
pub fn openat_in_root<P: ?Sized + NixPath>(
    root: BorrowedFd<'_>,
    path: &P,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
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

/// Whether `path` is the root of a file system the kernel makes up (proc,
/// sysfs, cgroup, devpts, mqueue, debugfs and the like): its files describe
/// the running system, not the container's data.
pub fn is_kernel_fs(path: &std::path::Path) -> bool {
    use nix::sys::statfs::*;
    const KINDS: &[FsType] = &[
        PROC_SUPER_MAGIC,
        SYSFS_MAGIC,
        CGROUP_SUPER_MAGIC,
        CGROUP2_SUPER_MAGIC,
        DEVPTS_SUPER_MAGIC,
        DEBUGFS_MAGIC,
        TRACEFS_MAGIC,
        SECURITYFS_MAGIC,
        BPF_FS_MAGIC,
        // mqueue's, which nix does not name (linux/magic.h).
        FsType(0x1980_0202),
    ];
    statfs(path).is_ok_and(|st| KINDS.contains(&st.filesystem_type()))
}

/// Whether `fd` lies on a procfs (fstatfs(2) says PROC_SUPER_MAGIC).
pub fn on_procfs<Fd: AsFd>(fd: Fd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Open `rel` (`sys/kernel/...`) under `proc`, a descriptor of a procfs
/// root, only as a file of that procfs itself: `proc` must be a procfs's
/// root directory, and the walk may cross no mount and follow no symlink
/// (openat2 RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH), so a
/// file bound over another (even another procfs file, runc's
/// CVE-2025-52881) or a fake tree mounted over /proc is refused with EXDEV.
pub fn open_procfs_file<P: ?Sized + NixPath>(
    proc: BorrowedFd<'_>,
    rel: &P,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    // procfs's root inode is always 1 (PROC_ROOT_INO, fs/proc/root.c).
    let is_root = nix::sys::stat::fstat(proc).is_ok_and(|st| st.st_ino == 1);
    if !on_procfs(proc) || !is_root {
        return Err(Errno::EXDEV);
    }
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(proc, rel, how)?;
    if !on_procfs(&fd) {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// Runs `op` (which creates `name` in `dir`); if the name is taken, removes
/// what is there (recursively for a directory) and runs it again. Returns
/// whether something was removed.
pub fn replace_at<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut op: impl FnMut() -> nix::Result<T>,
) -> io::Result<(T, bool)> {
    match op() {
        Ok(v) => Ok((v, false)),
        Err(Errno::EEXIST) => {
            remove_all_at(dir, name).map_err(|e| with_step(e, "remove existing entry"))?;
            Ok((op()?, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `dir`, recursively if it is a directory. Never follows
/// symlinks: a symlink is removed itself.
pub fn remove_all_at<P: ?Sized + NixPath>(dir: BorrowedFd<'_>, name: &P) -> io::Result<()> {
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
pub fn empty_dir(fd: BorrowedFd<'_>) -> io::Result<()> {
    for name in list_dir(fd)? {
        remove_all_at(fd, name.as_c_str())?;
    }
    Ok(())
}

/// Names in directory `fd`, without `.` and `..`. Collected first so the
/// directory can be modified while the caller walks the list.
pub fn list_dir(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
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
pub fn set_fd_meta<Fd: AsFd>(
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

/// A directory's metadata, set only after its whole tree is written:
/// creating children changes its mtime, and a read-only mode would stop us
/// filling it when we run without `CAP_DAC_OVERRIDE`.
pub struct DirMeta {
    /// Path relative to the root, without `.`/`..`; empty for the root itself.
    pub path: Vec<u8>,
    pub mode: u32,
    pub mtime: TimeSpec,
    /// Owner to set at the end, or `None` when the directory already has it.
    pub owner: Option<(u32, u32)>,
}

/// Applies deferred directory metadata in order (later entries win). A path
/// that is no longer a directory was replaced later in the archive and is
/// skipped. With `lenient_owner`, EPERM/EINVAL from chown are ignored.
pub fn apply_dir_metas(
    root: BorrowedFd<'_>,
    metas: &[DirMeta],
    lenient_owner: bool,
) -> Result<(), (Vec<u8>, io::Error)> {
    for m in metas {
        let fail = |e: Errno, step: &str| (m.path.clone(), with_step(e, step));
        let owned;
        let fd = if m.path.is_empty() {
            root
        } else {
            match openat_in_root(root, m.path.as_slice(), dir_flags()) {
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

/// Open `path` (absolute, as seen inside the rootfs at `root`) with every
/// component resolved as if `root` were `/` (`openat2(RESOLVE_IN_ROOT)`), so
/// a symlink in the image cannot lead outside it. Missing components are
/// created: directories, and the last one as a directory when `want_dir`,
/// else as an empty file. Returns an `O_PATH` descriptor, usable as a mount
/// target through `/proc/self/fd/N`.
pub fn open_in_root(
    root: &std::path::Path,
    path: &str,
    want_dir: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::readlinkat;
    use nix::sys::stat::{fstatat, mkdirat, SFlag};

    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let in_root = |p: &str| openat_in_root(root_fd.as_fd(), p, OFlag::O_PATH);
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let mut comps = split(path);
    if comps.iter().any(|c| c == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains '..'",
        ));
    }
    // A dangling symlink on the way (`/evil -> /somewhere`) is followed by
    // rewriting the path and starting over, like securejoin; bound the hops.
    let mut hops = 0;
    'restart: loop {
        let mut prefix = String::from(".");
        for i in 0..comps.len() {
            let parent = prefix.clone();
            prefix.push('/');
            prefix.push_str(&comps[i]);
            match in_root(&prefix) {
                Ok(_) => continue,
                Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let parent_fd = in_root(&parent)?;
            let c = comps[i].as_str();
            if let Ok(st) = fstatat(&parent_fd, c, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                    hops += 1;
                    if hops > 40 {
                        return Err(nix::Error::ELOOP.into());
                    }
                    let target = readlinkat(&parent_fd, c)?;
                    let target = target.to_string_lossy();
                    let mut next = if target.starts_with('/') {
                        split(&target)
                    } else {
                        let mut v = comps[..i].to_vec();
                        v.extend(split(&target));
                        v
                    };
                    next.extend(comps[i + 1..].iter().cloned());
                    // `..` in a link target is resolved lexically, clamped at the root.
                    let mut clean: Vec<String> = Vec::new();
                    for c in next {
                        if c == ".." {
                            clean.pop();
                        } else {
                            clean.push(c);
                        }
                    }
                    comps = clean;
                    continue 'restart;
                }
            }
            let last = i + 1 == comps.len();
            if !last || want_dir {
                match mkdirat(&parent_fd, c, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                // An O_PATH parent is enough for openat with O_CREAT.
                let f = openat(
                    &parent_fd,
                    c,
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                drop(f);
            }
        }
        return Ok(in_root(&prefix)?);
    }
}

/// An anonymous in-memory file holding `bytes`, positioned at its start:
/// input for a child process that needs no pipe (a child that never reads
/// its stdin cannot make the writer die of SIGPIPE).
pub fn memory_file(name: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)?;
    f.rewind()?;
    Ok(f)
}

#[cfg(test)]
mod open_in_root_tests {
    use super::*;

    #[test]
    fn creates_inside_and_never_escapes_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An image symlink to a host path: resolved inside the root instead.
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        open_in_root(&root, "/evil/target", true).unwrap();
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing created outside"
        );
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("target")
            .is_dir());
        open_in_root(&root, "/a/b/file", false).unwrap();
        assert!(root.join("a/b/file").is_file());
        assert!(open_in_root(&root, "/a/../../x", true).is_err());
    }
}

/// Why a directory is not a private directory of ours.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    #[error("is a symbolic link, not a directory of yours")]
    Symlink,
    #[error("is not a directory")]
    NotDir,
    #[error("is not a directory of yours (owner uid {0})")]
    NotOurs(u32),
    #[error("is writable by others (mode {0:04o})")]
    OpenToOthers(u32),
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Make `dir` (and missing parents) 0700 when it is missing, then check it
/// is a directory of ours that no one else may write to: not a symlink, not
/// another user's, no group or other write bit. For state kept in a shared
/// place such as `/tmp`, where another user can plant a directory or a
/// symlink first; `/tmp` is sticky, so one that passes stays ours.
pub fn private_dir_of_ours(dir: &Path) -> Result<(), PrivateDirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let io_err = |step| move |source| PrivateDirError::Io { step, source };
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let made = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
            // Something there now (made by another process of ours at the
            // same time, or planted) is checked like anything else.
            match (std::fs::symlink_metadata(dir), made) {
                (Ok(m), _) => m,
                (Err(_), Err(e)) => return Err(io_err("creating")(e)),
                (Err(e), Ok(())) => return Err(io_err("checking")(e)),
            }
        }
        other => other.map_err(io_err("checking"))?,
    };
    if meta.file_type().is_symlink() {
        return Err(PrivateDirError::Symlink);
    }
    if !meta.is_dir() {
        return Err(PrivateDirError::NotDir);
    }
    if meta.uid() != Uid::effective().as_raw() {
        return Err(PrivateDirError::NotOurs(meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(PrivateDirError::OpenToOthers(meta.mode() & 0o7777));
    }
    Ok(())
}

/// The first `name` in the directories of `path_var` (a `PATH` value) that
/// is a regular file with an execute bit: how helper programs (pasta,
/// slirp4netns, fuse-overlayfs) are found. A `/dev/null` bound over one
/// hides it.
pub fn executable_in(path_var: &std::ffi::OsStr, name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How [`flock_description`] locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLock {
    /// Shared, waiting for an exclusive holder to go.
    Shared,
    /// Exclusive, failing with EWOULDBLOCK when held elsewhere.
    ExclusiveNow,
}

/// flock(2) on `fd`'s open file description, with no guard: the lock goes
/// with the description, so a child that inherits the descriptor holds it
/// after the parent has closed its own, and it is released only when the
/// last descriptor of it is closed, in whichever process (flock(2)).
pub fn flock_description<Fd: AsFd>(fd: Fd, how: FileLock) -> nix::Result<()> {
    let op = match how {
        FileLock::Shared => libc::LOCK_SH,
        FileLock::ExclusiveNow => libc::LOCK_EX | libc::LOCK_NB,
    };
    loop {
        // SAFETY: flock takes a descriptor, borrowed open for the call, and
        // an operation; no memory is passed.
        let r = unsafe { libc::flock(fd.as_fd().as_raw_fd(), op) };
        match Errno::result(r) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}
