//! Mounts inside a user+mount namespace: overlayfs with `userxattr`, binds
//! made and changed through descriptors (open_tree(2), move_mount(2); a
//! remount keeps the source's locked flags), tmpfs, proc, devpts and the
//! pivot_root dance.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

#[derive(Debug, thiserror::Error)]
#[error("{step} {target:?}: {source}")]
pub struct MountError {
    pub step: &'static str,
    pub target: PathBuf,
    #[source]
    pub source: nix::Error,
}

type Result<T> = std::result::Result<T, MountError>;

fn err(step: &'static str, target: &Path) -> impl FnOnce(nix::Error) -> MountError {
    let target = target.to_path_buf();
    move |source| MountError {
        step,
        target,
        source,
    }
}

/// The attribute that makes a directory opaque (hides the layers below it)
/// to an overlayfs mounted with `userxattr`: set on the value `y`.
pub const OPAQUE_XATTR: &std::ffi::CStr = c"user.overlay.opaque";

/// Mount overlayfs at `target`. `lowers` are top-most first, as overlayfs
/// wants them. `userxattr` makes overlayfs keep its metadata in `user.*`
/// xattrs, the only kind an unprivileged user may set (Linux 5.11+).
pub fn overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let mut opts = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            opts.push(':');
        }
        opts.push_str(&escape_overlay_path(l));
    }
    opts.push_str(&format!(
        ",upperdir={},workdir={},userxattr",
        escape_overlay_path(upper),
        escape_overlay_path(work)
    ));
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(err("mounting overlayfs on", target))
}

/// Mount a read-only overlayfs of `lowers` (top-most first, at least two)
/// at `target`: no upper or work dir, so a view of a container's files can
/// be taken without touching the directories its own mount writes to.
pub fn overlay_readonly(lowers: &[PathBuf], target: &Path) -> Result<()> {
    let lower: Vec<String> = lowers.iter().map(|l| escape_overlay_path(l)).collect();
    let opts = format!("lowerdir={},userxattr", lower.join(":"));
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .map_err(err("mounting overlayfs on", target))
}

/// overlayfs splits its options on ',' and lowerdir on ':'; escape both.
fn escape_overlay_path(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Bind `src` onto `target` (recursively when `recursive`).
pub fn bind(src: &Path, target: &Path, recursive: bool) -> Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(src), target, None::<&str>, flags, None::<&str>).map_err(err("binding onto", target))
}

/// The flags of the mount holding `p` that a user namespace may not clear.
fn locked_flags(p: &Path) -> MsFlags {
    let Ok(st) = statvfs(p) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}

/// open_tree(2) and move_mount(2) flags (linux/mount.h; libc lacks them).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// The `/proc/self/fd/N` path of `fd`, for the calls that take a path.
fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Bind what `src` names (any descriptor, O_PATH included) onto what
/// `target` names, recursively when `recursive`, and return a descriptor of
/// the new mount itself. The copy is made detached (open_tree(2),
/// OPEN_TREE_CLONE) and attached with move_mount(2), so no path is looked
/// up: a directory swapped for a symlink meanwhile (runc's CVE-2021-30465)
/// changes nothing, and the returned descriptor lets the caller change the
/// exact mount it made ([`remount_bind_fd`]) instead of whatever a path
/// names later.
pub fn bind_fd(src: BorrowedFd<'_>, target: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) reads the empty NUL-terminated path and the
    // borrowed descriptor only during the call; on success it returns a new
    // descriptor that nothing else owns, which we wrap at once.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, src.as_raw_fd(), c"".as_ptr(), flags) };
    if tree < 0 {
        return Err(err("binding (open_tree) onto", &fd_path(target))(
            nix::Error::last(),
        ));
    }
    // SAFETY: `tree` is a fresh descriptor from open_tree, owned only here.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as libc::c_int) };
    // SAFETY: move_mount(2) reads the two empty paths and the two borrowed
    // descriptors only during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(err("binding (move_mount) onto", &fd_path(target))(
            nix::Error::last(),
        ));
    }
    Ok(tree)
}

/// Remount the mount whose root `mnt` names (from [`bind_fd`]) with
/// `flags` (MS_RDONLY, MS_NOSUID, ...). In a user namespace the source
/// mount's nosuid/nodev/noexec/atime flags are locked (mount(2), EPERM), so
/// the remount repeats them. The path is the descriptor's magic link, which leads to
/// that mount's root and nowhere else.
pub fn remount_bind_fd(mnt: BorrowedFd<'_>, flags: MsFlags) -> Result<()> {
    let target = fd_path(mnt);
    let locked = locked_flags(&target);
    let step = if flags.contains(MsFlags::MS_RDONLY) {
        "remounting read-only"
    } else {
        "remounting"
    };
    mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .map_err(err(step, &target))
}

/// Make the mount whose root `mnt` names (from [`bind_fd`]) and every
/// mount below it read-only: a remount changes one mount, not the ones
/// below it, so the host's /sys/fs/cgroup hierarchies under a bound /sys
/// would stay writable (CVE-2023-25809). mount_setattr(2) with
/// AT_RECURSIVE on the descriptor, or (before Linux 5.12) a remount of
/// each mount /proc/self/mountinfo lists there.
pub fn readonly_below(mnt: BorrowedFd<'_>) -> Result<()> {
    let target = fd_path(mnt);
    /// struct mount_attr (linux/mount.h).
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads the empty NUL-terminated path, the
    // borrowed descriptor and `attr`, all alive for the call, and is told
    // the struct's size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = nix::Error::last();
    if e != nix::Error::ENOSYS {
        return Err(err("making read-only", &target)(e));
    }
    let real = std::fs::canonicalize(&target).map_err(|e| {
        err("making read-only", &target)(nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
    })?;
    for m in mounts_below(&real) {
        mount(
            None::<&str>,
            &m,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&m),
            None::<&str>,
        )
        .map_err(err("remounting read-only", &m))?;
    }
    Ok(())
}

/// The mount points strictly below `target`, from /proc/self/mountinfo
/// (proc(5): the fifth field, with space, tab, newline and backslash
/// written as octal escapes).
fn mounts_below(target: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .filter(|p| p != target && p.starts_with(target))
        .collect()
}

fn unescape_octal(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')) as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Set the propagation of the mount whose root `mnt` names (see
/// [`set_propagation`]).
pub fn set_propagation_fd(mnt: BorrowedFd<'_>, flags: MsFlags) -> Result<()> {
    set_propagation(&fd_path(mnt), flags)
}

/// Set the propagation type of the mount at `target` (MS_PRIVATE,
/// MS_SLAVE, MS_SHARED or MS_UNBINDABLE, with MS_REC for the whole tree).
pub fn set_propagation(target: &Path, flags: MsFlags) -> Result<()> {
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(err("changing propagation of", target))
}

/// Mount `fstype` from `source` (a device, or a name for a filesystem
/// without one) at `target`.
pub fn filesystem(
    source: &str,
    fstype: &str,
    target: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(Some(source), target, Some(fstype), flags, data).map_err(err("mounting", target))
}

/// Make the mount at `target` read-only (its own flags only; mounts below
/// it keep theirs).
pub fn remount_readonly(target: &Path) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(err("remounting read-only", target))
}

/// Mount a filesystem that needs no source (tmpfs, proc, devpts, mqueue).
pub fn special(fstype: &str, target: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data).map_err(err("mounting", target))
}

/// Make `root` the new `/` and detach the old one, without a second
/// directory: pivot_root(".", ".") then unmount the old root stacked on top
/// (the trick runc and LXC use; pivot_root(2) documents it).
pub fn pivot_into(root: &Path) -> Result<()> {
    nix::unistd::chdir(root).map_err(err("entering new root", root))?;
    nix::unistd::pivot_root(".", ".").map_err(err("pivot_root into", root))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(err("detaching old root", root))?;
    nix::unistd::chdir("/").map_err(err("entering new root", root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(escape_overlay_path(Path::new("/a:b,c")), "/a\\:b\\,c");
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_octal("/a\\040b\\134c\\12"), "/a b\\c\\12");
    }
}
