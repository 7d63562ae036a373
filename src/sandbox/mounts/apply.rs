//! Running the mount plan: each [`MountOp`] under the new root, every
//! target resolved inside it (openat2 RESOLVE_IN_ROOT, O_NOFOLLOW on what
//! is made), so an image's symlinks cannot aim a mount at a host path.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use super::{MountOp, Symlinks};
use crate::exit;
use crate::linux::mount::{self, MountError};
use crate::sandbox::{Failure, Step};

/// Run one operation under `root`.
pub fn apply_one(root: &Path, op: &MountOp) -> Result<(), Failure> {
    match op {
        MountOp::Dir { target } => ensure_dir(root, target).map(|_| ()),
        MountOp::Fs {
            fstype,
            target,
            flags,
            data,
        } => {
            let dir = ensure_dir(root, target)?;
            mount::special(fstype, &fd_path(&dir), *flags, data.as_deref())
                .map_err(mount_failure(target))
        }
        MountOp::BindFile {
            source,
            target,
            optional,
        } => {
            if *optional && !source.exists() {
                return Ok(());
            }
            let src = open_source(source, target)?;
            let file = ensure_file(root, target)?;
            mount::bind_fd(src.as_fd(), file.as_fd(), false)
                .map(drop)
                .map_err(mount_failure(target))
        }
        MountOp::BindTreeReadonly { source, target } => {
            let src = open_source(source, target)?;
            let dir = ensure_dir(root, target)?;
            let mnt =
                mount::bind_fd(src.as_fd(), dir.as_fd(), true).map_err(mount_failure(target))?;
            mount::remount_bind_fd(mnt.as_fd(), MsFlags::MS_RDONLY)
                .and_then(|()| mount::readonly_below(mnt.as_fd()))
                .map_err(mount_failure(target))
        }
        MountOp::Symlink { link, points_to } => {
            let (parent, name) = split_parent(link);
            let fail = |e: nix::Error| failure(Step::Symlink, &e.into(), link);
            let dir = open_parent(root, parent).map_err(fail)?;
            nix::unistd::symlinkat(*points_to, dir.as_fd(), name).map_err(fail)
        }
        MountOp::UserBind {
            source,
            target,
            readonly,
        } => user_bind(root, source, target, *readonly),
        MountOp::UserTmpfs {
            target,
            flags,
            data,
        } => {
            let via = resolve_in_root(root, target, true)?;
            refuse_on_procfs(&via.0, target, "")?;
            mount::special("tmpfs", &via.1, *flags, Some(data)).map_err(mount_failure(target))
        }
        MountOp::RemountRootReadonly => mount::remount_readonly(root).map_err(mount_failure("/")),
        MountOp::MaskPath { target } => mask_path(root, target),
        MountOp::PrepareRoot { propagation } => {
            mount::set_propagation(Path::new("/"), *propagation).map_err(mount_failure("/"))?;
            mount::bind(root, root, true).map_err(mount_failure("/"))
        }
        MountOp::Mount {
            source,
            fstype,
            target,
            flags,
            data,
            bind,
            recursive,
            propagation,
            symlinks,
        } => {
            if *bind {
                let how = BindHow {
                    flags: *flags,
                    recursive: *recursive,
                    propagation: *propagation,
                    symlinks: *symlinks,
                };
                oci_bind(root, source, target, how)
            } else {
                let fs = (source.as_str(), fstype.as_str(), data.as_str());
                oci_filesystem(root, fs, target, *flags, *propagation)
            }
        }
        MountOp::MakeDirs { target } => resolve_in_root(root, target, true).map(|_| ()),
        MountOp::Sysctl { key, value } => sysctl(root, key, value),
        MountOp::ReadonlyPath { target } => {
            let Some((fd, _)) = open_existing(root, target)? else {
                return Ok(());
            };
            let mnt =
                mount::bind_fd(fd.as_fd(), fd.as_fd(), true).map_err(mount_failure(target))?;
            mount::remount_bind_fd(mnt.as_fd(), MsFlags::MS_RDONLY).map_err(mount_failure(target))
        }
    }
}

/// `-v`/`--mount`: `source` bound at `target` resolved inside the root.
fn user_bind(root: &Path, source: &Path, target: &str, readonly: bool) -> Result<(), Failure> {
    let src = open_source(source, target)?;
    let want_dir = source.is_dir();
    let (dst, _) = resolve_in_root(root, target, want_dir)?;
    refuse_on_procfs(&dst, target, "")?;
    // The descriptor of the new mount is what goes read-only: a second
    // lookup of `target` could meet a directory swapped for a symlink by
    // another container sharing a volume on the way, and make some other
    // mount read-only while this one stays writable.
    let mnt = mount::bind_fd(src.as_fd(), dst.as_fd(), true).map_err(mount_failure(target))?;
    if readonly {
        mount::remount_bind_fd(mnt.as_fd(), MsFlags::MS_RDONLY).map_err(mount_failure(target))?;
    }
    Ok(())
}

/// A masked path: an empty read-only tmpfs over a directory, the host's
/// null device over a file; nothing when it is missing.
fn mask_path(root: &Path, target: &str) -> Result<(), Failure> {
    let Some((fd, via)) = open_existing(root, target)? else {
        return Ok(());
    };
    let is_dir = nix::sys::stat::fstat(&fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false);
    if is_dir {
        mount::special(
            "tmpfs",
            &via,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=755"),
        )
        .map_err(mount_failure(target))
    } else {
        let null = open_null(target)?;
        mount::bind_fd(null.as_fd(), fd.as_fd(), false)
            .map(drop)
            .map_err(mount_failure(target))
    }
}

/// How an OCI bind mount is made (see `MountOp::Mount`).
struct BindHow {
    flags: MsFlags,
    recursive: bool,
    propagation: MsFlags,
    symlinks: Symlinks,
}

/// An OCI bind mount of `source` at `target`.
fn oci_bind(root: &Path, source: &str, target: &str, how: BindHow) -> Result<(), Failure> {
    let BindHow {
        flags,
        recursive,
        propagation,
        symlinks,
    } = how;
    let nofollow = symlinks.src_nofollow || symlinks.copy;
    let src = open_source_with(Path::new(source), target, nofollow)?;
    let kind = nix::sys::stat::fstat(&src)
        .map(|st| st.st_mode & libc::S_IFMT)
        .map_err(|e| failure(Step::Bind, &e.into(), target))?;
    if symlinks.copy && kind == libc::S_IFLNK {
        return copy_symlink(root, &src, target);
    }
    let want_dir = kind == libc::S_IFDIR;
    let dst = match symlinks.dest_nofollow {
        true => open_nofollow(root, target)?,
        false => None,
    };
    let dst = match dst {
        Some(fd) => fd,
        None => resolve_in_root(root, target, want_dir)?.0,
    };
    refuse_on_procfs(&dst, target, "")?;
    let mnt = mount::bind_fd(src.as_fd(), dst.as_fd(), recursive).map_err(mount_failure(target))?;
    if !flags.is_empty() {
        mount::remount_bind_fd(mnt.as_fd(), flags).map_err(mount_failure(target))?;
    }
    if recursive && flags.contains(MsFlags::MS_RDONLY) {
        // The mounts below too, or a bound host /sys leaves the host's
        // cgroup hierarchies writable (CVE-2023-25809).
        mount::readonly_below(mnt.as_fd()).map_err(mount_failure(target))?;
    }
    if !propagation.is_empty() {
        mount::set_propagation_fd(mnt.as_fd(), propagation).map_err(mount_failure(target))?;
    }
    Ok(())
}

/// An OCI mount of a filesystem, `(source, fstype, data)`, at `target`.
fn oci_filesystem(
    root: &Path,
    (source, fstype, data): (&str, &str, &str),
    target: &str,
    flags: MsFlags,
    propagation: MsFlags,
) -> Result<(), Failure> {
    let data = match fstype {
        "tmpfs" => tmpfs_data_with_mode(root, target, data)?,
        _ => data.to_string(),
    };
    let via = resolve_in_root(root, target, true)?;
    refuse_on_procfs(&via.0, target, fstype)?;
    let data = (!data.is_empty()).then_some(data.as_str());
    mount::filesystem(source, fstype, &via.1, flags, data).map_err(mount_failure(target))?;
    if !propagation.is_empty() {
        // A new filesystem has no descriptor until it is mounted; the
        // lookup stays inside the root.
        let top = resolve_in_root(root, target, true)?;
        mount::set_propagation(&top.1, propagation).map_err(mount_failure(target))?;
    }
    Ok(())
}

/// A sysctl `key` (dotted) written under the container's /proc/sys.
fn sysctl(root: &Path, key: &str, value: &str) -> Result<(), Failure> {
    let rel = format!("sys/{}", key.replace('.', "/"));
    let shown = format!("proc/{rel}");
    let fail =
        |e: std::io::Error| Failure::io(Step::Sysctl, &e, exit::BURROW).at(in_container(&shown));
    // Only into the procfs mounted at the container's /proc, through no
    // other mount and no symlink (CVE-2025-52881).
    let proc = crate::linux::fs::open_dir(root)
        .and_then(|r| {
            crate::linux::fs::openat_in_root(r.as_fd(), "proc", OFlag::O_PATH | OFlag::O_DIRECTORY)
        })
        .map_err(|e| fail(e.into()))?;
    let fd = crate::linux::fs::open_procfs_file(proc.as_fd(), rel.as_str(), OFlag::O_WRONLY)
        .map_err(|e| fail(e.into()))?;
    File::from(fd).write_all(value.as_bytes()).map_err(fail)
}

/// A bundle's tmpfs `data`, with the mode of the directory it covers when
/// it names none, as runc and crun keep it (a tmpfs is otherwise 1777); a
/// target that does not exist yet gets tmpfs's own.
fn tmpfs_data_with_mode(root: &Path, target: &str, data: &str) -> Result<String, Failure> {
    if data.split(',').any(|o| o.starts_with("mode=")) {
        return Ok(data.to_string());
    }
    let Some((fd, _)) = open_existing(root, target)? else {
        return Ok(data.to_string());
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| failure(Step::MountFs, &e.into(), target))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Ok(data.to_string());
    }
    let mode = format!("mode={:o}", st.st_mode & 0o7777);
    Ok(if data.is_empty() {
        mode
    } else {
        format!("{data},{mode}")
    })
}

/// Files under /proc a bind may cover: what lxcfs serves per container, the
/// list runc allows (its checkProcMount).
const PROC_BIND_ALLOWED: [&str; 9] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
];

/// Refuse a mount whose resolved target `fd` lies on a procfs, unless it is
/// a new procfs (`fstype` "proc") or one of lxcfs's files: a volume or an
/// image's content over /proc would make every later write to /proc (the
/// sysctls, the masks) land in a fake tree (runc's CVE-2019-16884 and
/// CVE-2023-27561).
fn refuse_on_procfs(fd: &OwnedFd, target: &str, fstype: &str) -> Result<(), Failure> {
    let plain = target.trim_matches('/');
    let is_file =
        nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    if fstype == "proc"
        || !crate::linux::fs::on_procfs(fd)
        || (is_file && PROC_BIND_ALLOWED.contains(&plain))
    {
        return Ok(());
    }
    Err(Failure::new(
        Step::ResolveTarget,
        "a mount over procfs is refused",
        exit::BURROW,
    )
    .at(in_container(target)))
}

/// A host path given as a mount source, opened once (O_PATH) so the mount
/// is made from what was opened.
fn open_source(source: &Path, target: &str) -> Result<OwnedFd, Failure> {
    open_source_with(source, target, false)
}

/// [`open_source`]; with `nofollow`, a symlink is opened itself.
fn open_source_with(source: &Path, target: &str, nofollow: bool) -> Result<OwnedFd, Failure> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    nix::fcntl::open(source, flags, Mode::empty())
        .map_err(|e| Failure::sys(Step::Bind, e, exit::BURROW).at(in_container(target)))
}

/// `target` opened without following it when it is there: its parent is
/// resolved inside the root, its last component is not (`dest-nofollow`);
/// None when missing, to be made as any target is.
fn open_nofollow(root: &Path, target: &str) -> Result<Option<OwnedFd>, Failure> {
    let (parent, name) = split_parent(target.trim_start_matches('/'));
    let fail = |e: nix::Error| failure(Step::ResolveTarget, &e.into(), target);
    let dir = match open_parent(root, parent) {
        Ok(d) => d,
        Err(nix::Error::ENOENT) => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    match nix::fcntl::openat(
        &dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// `copy-symlink`: the symlink `src` (opened O_PATH|O_NOFOLLOW on the
/// host) made again at `target`, its parent resolved and made inside the
/// root. A link already there with the same text is kept; anything else
/// there is an error, never replaced.
fn copy_symlink(root: &Path, src: &OwnedFd, target: &str) -> Result<(), Failure> {
    let fail = |e: nix::Error| failure(Step::Symlink, &e.into(), target);
    let text = nix::fcntl::readlinkat(src, "").map_err(fail)?;
    let (parent, name) = split_parent(target.trim_start_matches('/'));
    let dir = if parent.is_empty() {
        open_parent(root, "").map_err(fail)?
    } else {
        resolve_in_root(root, parent, true)?.0
    };
    match nix::unistd::symlinkat(text.as_os_str(), dir.as_fd(), name) {
        Ok(()) => Ok(()),
        Err(nix::Error::EEXIST) => match nix::fcntl::readlinkat(&dir, name) {
            Ok(there) if there == text => Ok(()),
            _ => Err(Failure::new(
                Step::Symlink,
                "something else is there already",
                exit::BURROW,
            )
            .at(in_container(target))),
        },
        Err(e) => Err(fail(e)),
    }
}

/// The host's null device, checked through its descriptor to be the
/// character device 1:3: what masks a file is never something else
/// (runc's CVE-2025-31133, where the container's /dev/null was a symlink).
fn open_null(target: &str) -> Result<OwnedFd, Failure> {
    let fd = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| failure(Step::MaskPath, &e.into(), target))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| failure(Step::MaskPath, &e.into(), target))?;
    let null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(st.st_rdev) == 1
        && libc::minor(st.st_rdev) == 3;
    if !null {
        return Err(Failure::new(
            Step::MaskPath,
            "/dev/null is not the null device",
            exit::BURROW,
        )
        .at(in_container(target)));
    }
    Ok(fd)
}

/// `path` without its last component, and that component.
fn split_parent(path: &str) -> (&str, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

/// The directory `parent` (relative to `root`, "" for the root), resolved
/// inside the root.
fn open_parent(root: &Path, parent: &str) -> nix::Result<OwnedFd> {
    let root_fd = crate::linux::fs::open_dir(root)?;
    let parent = if parent.is_empty() { "." } else { parent };
    crate::linux::fs::openat_in_root(root_fd.as_fd(), parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// The `/proc/self/fd/N` path of `fd`.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `target` opened (O_PATH) inside `root` without creating anything, or
/// None when it does not exist there (a masked path the kernel or the
/// image lacks is skipped).
fn open_existing(root: &Path, target: &str) -> Result<Option<(OwnedFd, PathBuf)>, Failure> {
    let fail = |e: nix::Error| failure(Step::MaskPath, &std::io::Error::from(e), target);
    let dir = crate::linux::fs::open_dir(root).map_err(fail)?;
    match crate::linux::fs::openat_in_root(dir.as_fd(), target, nix::fcntl::OFlag::O_PATH) {
        Ok(fd) => {
            let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            Ok(Some((fd, via)))
        }
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// `target` opened inside `root` (created if missing), with the
/// `/proc/self/fd/N` path that names it while the descriptor is held.
fn resolve_in_root(
    root: &Path,
    target: &str,
    want_dir: bool,
) -> Result<(OwnedFd, PathBuf), Failure> {
    let fd = crate::linux::fs::open_in_root(root, target, want_dir)
        .map_err(|e| failure(Step::ResolveTarget, &e, target))?;
    let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok((fd, via))
}

/// A path as the container will see it.
fn in_container(target: &str) -> PathBuf {
    Path::new("/").join(target)
}

fn failure(step: Step, e: &std::io::Error, target: &str) -> Failure {
    Failure::io(step, e, exit::BURROW).at(in_container(target))
}

/// A mount error as a failure at `target`; `linux::mount` says which call
/// (mount, remount) failed, the step says which kind.
fn mount_failure(target: &str) -> impl Fn(MountError) -> Failure + '_ {
    move |e| {
        let step = match e.step {
            s if s.contains("read-only") => Step::RemountReadonly,
            s if s.contains("binding") => Step::Bind,
            _ => Step::MountFs,
        };
        Failure::sys(step, e.source, exit::BURROW).at(in_container(target))
    }
}

/// `rel` under `root` as a real directory, opened O_PATH: anything else
/// there (a symlink, a file) is replaced. Every step is relative to the
/// parent's descriptor, resolved inside the root, and the result is opened
/// without following a symlink, so a swap meanwhile fails the start instead
/// of moving the mount.
fn ensure_dir(root: &Path, rel: &str) -> Result<OwnedFd, Failure> {
    ensure(root, rel, true).map_err(|e| failure(Step::MakeDir, &e, rel))
}

/// `rel` under `root` as a regular file, opened O_PATH (see `ensure_dir`).
fn ensure_file(root: &Path, rel: &str) -> Result<OwnedFd, Failure> {
    ensure(root, rel, false).map_err(|e| failure(Step::MakeFile, &e, rel))
}

fn ensure(root: &Path, rel: &str, dir: bool) -> std::io::Result<OwnedFd> {
    use nix::sys::stat::{fchmod, fstatat, mkdirat};
    let (parent, name) = split_parent(rel);
    let parent = open_parent(root, parent)?;
    let kind = libc::S_IFMT
        & fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(|st| st.st_mode)
            .unwrap_or(0);
    let want = if dir { libc::S_IFDIR } else { libc::S_IFREG };
    let made = kind != want;
    if made {
        if kind != 0 {
            crate::linux::fs::remove_all_at(parent.as_fd(), name)?;
        }
        if dir {
            mkdirat(&parent, name, Mode::from_bits_truncate(0o755))?;
        } else {
            drop(nix::fcntl::openat(
                &parent,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?);
        }
    }
    let flags = if dir {
        OFlag::O_RDONLY | OFlag::O_DIRECTORY
    } else {
        OFlag::O_PATH
    };
    let fd = nix::fcntl::openat(
        &parent,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != want {
        return Err(nix::Error::ELOOP.into());
    }
    if made && dir {
        // mkdir(2) applies the umask; 0755 is what containers expect.
        fchmod(&fd, Mode::from_bits_truncate(0o755))?;
    }
    Ok(fd)
}
