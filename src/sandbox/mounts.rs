//! The container's mount tree as data: [`plan`] turns a spec into an ordered
//! list of operations (a pure function, unit-tested below), and PID 1 runs
//! them in one loop ([`apply`]) before pivot_root, as bubblewrap runs its
//! setup-op list. Each failure names the operation and its path.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use super::{Failure, Mount, Spec, Step};
use crate::exit;
use crate::linux::mount::{self, MountError};

/// The links every container's /dev has (runc's and Docker's set), beside
/// `core` where /proc/kcore is kept.
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];
/// Host device nodes bound into the container's /dev (what Docker and
/// podman give an unprivileged container).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The container's own files bound over the image's (passwd and group
/// only where the container has them: `--userns=keep-id`'s).
const ETC_FILES: [&str; 5] = ["hosts", "hostname", "resolv.conf", "passwd", "group"];

/// Docker's masked paths: kernel files that show the host (kcore,
/// keys, timer and scheduler state) or drive its hardware. A file gets
/// /dev/null bound over it, a directory an empty read-only tmpfs.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths: kernel settings that are not namespaced
/// (sysctls, IRQ affinity, sysrq), bound read-only onto themselves.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One step of the mount tree. Targets are relative to the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// `target` as a real directory: an image may ship it as a symlink (even
    /// one pointing at a host path), and mounting through that would land
    /// elsewhere, so anything that is not a directory is replaced.
    Dir { target: String },
    /// A filesystem without a source (proc, tmpfs, devpts) on a directory
    /// made as by `Dir`.
    Fs {
        fstype: &'static str,
        target: String,
        flags: MsFlags,
        data: Option<String>,
    },
    /// A host file bound over `target`, made a regular file first (replacing
    /// a symlink, see `Dir`); skipped when `optional` and the source is
    /// missing.
    BindFile {
        source: PathBuf,
        target: String,
        optional: bool,
    },
    /// A host tree bound recursively and read-only at `target`.
    BindTreeReadonly { source: PathBuf, target: String },
    Symlink {
        link: String,
        points_to: &'static str,
    },
    /// `-v`/`--mount`: the target resolved inside the root (openat2
    /// RESOLVE_IN_ROOT, so an image's symlinks cannot aim it at a host path)
    /// and bound onto that descriptor; `readonly` remounts the new mount
    /// through its own descriptor. A target on procfs is refused.
    UserBind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// `--tmpfs`, its options split once into flags and tmpfs data.
    UserTmpfs {
        target: String,
        flags: MsFlags,
        data: String,
    },
    /// `--read-only`: the root itself; mounts above keep their own modes.
    RemountRootReadonly,
    /// A masked path, resolved inside the root; skipped when missing. A
    /// file gets the host's null device (checked to be 1:3 through its
    /// descriptor), a directory an empty read-only tmpfs.
    MaskPath { target: String },
    /// A path bound read-only onto itself, resolved inside the root;
    /// skipped when missing.
    ReadonlyPath { target: String },
    /// First for a root an engine hands over (an OCI bundle's, mounted in
    /// the engine's mount namespace): every mount becomes a slave of the
    /// engine's (`propagation`, MS_SLAVE or MS_PRIVATE with MS_REC), so
    /// nothing mounted here propagates back; then the root is bound onto
    /// itself, as pivot_root(2) wants a mount point.
    PrepareRoot { propagation: MsFlags },
    /// An OCI mount: `bind` binds `source` (recursively with `recursive`)
    /// then remounts with `flags`; otherwise `fstype` is mounted from
    /// `source` with `flags` and `data`. The target is resolved inside the
    /// root (openat2 RESOLVE_IN_ROOT) and made if missing; `propagation`
    /// (MS_PRIVATE, MS_SLAVE, MS_SHARED, with MS_REC) is applied after.
    Mount {
        source: String,
        fstype: String,
        target: String,
        flags: MsFlags,
        data: String,
        bind: bool,
        recursive: bool,
        propagation: MsFlags,
        symlinks: Symlinks,
    },
    /// A directory made inside the root with any missing parents, resolved
    /// there (the working directory, made before the root may go
    /// read-only).
    MakeDirs { target: String },
    /// A sysctl written under the container's /proc/sys (after /proc is
    /// mounted, before /proc/sys goes read-only); `key` dotted.
    Sysctl { key: String, value: String },
}

/// What a bind does with a symlink at either end (crun's mount options):
/// by default both are followed, the source on the host and the target
/// inside the root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symlinks {
    /// `src-nofollow`: a source that is a symlink is bound itself.
    pub src_nofollow: bool,
    /// `dest-nofollow`: a target that is a symlink is mounted over itself,
    /// not followed.
    pub dest_nofollow: bool,
    /// `copy-symlink`: a source that is a symlink is made again at the
    /// target (the same link text), with nothing mounted.
    pub copy: bool,
}

/// The ordered mount operations for `spec`. `is_range`: a gid range is
/// mapped, so the tty group (5) exists for devpts.
pub fn plan(spec: &Spec) -> Vec<MountOp> {
    let fs = |fstype, target: &str, flags, data: &str| MountOp::Fs {
        fstype,
        target: target.into(),
        flags,
        data: (!data.is_empty()).then(|| data.to_string()),
    };
    let mut ops = Vec::new();
    // /proc: a fresh procfs for our pid namespace.
    ops.push(fs(
        "proc",
        "proc",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "",
    ));
    // /dev: a small tmpfs with the host's harmless devices bound in.
    ops.push(fs(
        "tmpfs",
        "dev",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
    ));
    for d in DEVICES {
        ops.push(MountOp::BindFile {
            source: Path::new("/dev").join(d),
            target: format!("dev/{d}"),
            optional: false,
        });
    }
    // gid=5 (tty) exists only when a gid range is mapped.
    let pts = if spec.mapping.is_range() {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        "newinstance,ptmxmode=0666,mode=0620"
    };
    ops.push(fs(
        "devpts",
        "dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        pts,
    ));
    ops.push(fs(
        "tmpfs",
        "dev/shm",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=1777,size=65536k",
    ));
    for (link, points_to) in DEV_LINKS.iter().chain([&("core", "/proc/kcore")]) {
        ops.push(MountOp::Symlink {
            link: format!("dev/{link}"),
            points_to,
        });
    }
    // /sys: sysfs can only be mounted by a user namespace that owns the
    // network namespace (sysfs shows its devices): a fresh read-only one
    // with a private network, else the host's bound read-only.
    if spec.private_network {
        let ro = if spec.paths.writable_sys {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
        ops.push(fs(
            "sysfs",
            "sys",
            ro | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            "",
        ));
    } else {
        ops.push(MountOp::BindTreeReadonly {
            source: "/sys".into(),
            target: "sys".into(),
        });
    }
    // /etc/hosts, /etc/hostname, /etc/resolv.conf (and keep-id's
    // /etc/passwd and /etc/group): the container's own.
    ops.push(MountOp::Dir {
        target: "etc".into(),
    });
    for f in ETC_FILES {
        ops.push(MountOp::BindFile {
            source: spec.dir.join(f),
            target: format!("etc/{f}"),
            optional: true,
        });
    }
    // -v, --mount, --tmpfs, in the order given.
    for m in &spec.mounts {
        ops.push(match m {
            Mount::Bind {
                source,
                target,
                readonly,
            } => MountOp::UserBind {
                source: source.clone(),
                target: target.clone(),
                readonly: *readonly,
            },
            Mount::Tmpfs { target, options } => {
                let (flags, data) = tmpfs_options(options);
                MountOp::UserTmpfs {
                    target: target.clone(),
                    flags,
                    data,
                }
            }
        });
    }
    // Masked and read-only paths, after every mount they may lie on:
    // Docker's, then `mask=`, less `unmask=` (podman's options).
    let kept = |p: &&str| !spec.paths.unmask_all && !spec.paths.unmask.iter().any(|u| u == *p);
    for p in MASKED_PATHS
        .iter()
        .copied()
        .chain(spec.paths.mask.iter().map(String::as_str))
        .filter(kept)
    {
        ops.push(MountOp::MaskPath {
            target: p.trim_start_matches('/').to_string(),
        });
    }
    for p in READONLY_PATHS.iter().copied().filter(kept) {
        ops.push(MountOp::ReadonlyPath {
            target: p.trim_start_matches('/').to_string(),
        });
    }
    if spec.readonly_rootfs {
        ops.push(MountOp::RemountRootReadonly);
    }
    ops
}

/// Docker's tmpfs defaults: noexec, nosuid, nodev, mode 1777; "exec" and
/// "ro" are flags, the rest go to tmpfs as data.
fn tmpfs_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut data: Vec<&str> = Vec::new();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => flags.remove(MsFlags::MS_NOEXEC),
            "noexec" | "nosuid" | "nodev" | "rw" => {}
            "ro" => flags |= MsFlags::MS_RDONLY,
            other => data.push(other),
        }
    }
    if !data.iter().any(|o| o.starts_with("mode=")) {
        data.push("mode=1777");
    }
    (flags, data.join(","))
}

/// Run `ops` under `root`, in order; the first failure stops.
pub fn apply(root: &Path, ops: &[MountOp]) -> Result<(), Failure> {
    for op in ops {
        apply_one(root, op)?;
    }
    Ok(())
}

fn apply_one(root: &Path, op: &MountOp) -> Result<(), Failure> {
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
        } => {
            let src = open_source(source, target)?;
            let want_dir = source.is_dir();
            let (dst, _) = resolve_in_root(root, target, want_dir)?;
            refuse_on_procfs(&dst, target, "")?;
            // The descriptor of the new mount is what goes read-only: a
            // second lookup of `target` could meet a directory swapped for
            // a symlink by another container sharing a volume on the way,
            // and make some other mount read-only while this one stays
            // writable.
            let mnt =
                mount::bind_fd(src.as_fd(), dst.as_fd(), true).map_err(mount_failure(target))?;
            if *readonly {
                mount::remount_bind_fd(mnt.as_fd(), MsFlags::MS_RDONLY)
                    .map_err(mount_failure(target))?;
            }
            Ok(())
        }
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
        MountOp::MaskPath { target } => {
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
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
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
                let mnt = mount::bind_fd(src.as_fd(), dst.as_fd(), *recursive)
                    .map_err(mount_failure(target))?;
                if !flags.is_empty() {
                    mount::remount_bind_fd(mnt.as_fd(), *flags).map_err(mount_failure(target))?;
                }
                if *recursive && flags.contains(MsFlags::MS_RDONLY) {
                    // The mounts below too, or a bound host /sys leaves the
                    // host's cgroup hierarchies writable (CVE-2023-25809).
                    mount::readonly_below(mnt.as_fd()).map_err(mount_failure(target))?;
                }
                if !propagation.is_empty() {
                    mount::set_propagation_fd(mnt.as_fd(), *propagation)
                        .map_err(mount_failure(target))?;
                }
            } else {
                let data = match fstype.as_str() {
                    "tmpfs" => tmpfs_data_with_mode(root, target, data)?,
                    _ => data.clone(),
                };
                let via = resolve_in_root(root, target, true)?;
                refuse_on_procfs(&via.0, target, fstype)?;
                let data = (!data.is_empty()).then_some(data.as_str());
                mount::filesystem(source, fstype, &via.1, *flags, data)
                    .map_err(mount_failure(target))?;
                if !propagation.is_empty() {
                    // A new filesystem has no descriptor until it is
                    // mounted; the lookup stays inside the root.
                    let top = resolve_in_root(root, target, true)?;
                    mount::set_propagation(&top.1, *propagation).map_err(mount_failure(target))?;
                }
            }
            Ok(())
        }
        MountOp::MakeDirs { target } => resolve_in_root(root, target, true).map(|_| ()),
        MountOp::Sysctl { key, value } => {
            let rel = format!("sys/{}", key.replace('.', "/"));
            let shown = format!("proc/{rel}");
            let fail = |e: std::io::Error| {
                Failure::io(Step::Sysctl, &e, exit::BURROW).at(in_container(&shown))
            };
            // Only into the procfs mounted at the container's /proc, through
            // no other mount and no symlink (CVE-2025-52881).
            let proc = crate::linux::fs::open_dir(root)
                .and_then(|r| {
                    crate::linux::fs::openat_in_root(
                        r.as_fd(),
                        "proc",
                        OFlag::O_PATH | OFlag::O_DIRECTORY,
                    )
                })
                .map_err(|e| fail(e.into()))?;
            let fd =
                crate::linux::fs::open_procfs_file(proc.as_fd(), rel.as_str(), OFlag::O_WRONLY)
                    .map_err(|e| fail(e.into()))?;
            File::from(fd).write_all(value.as_bytes()).map_err(fail)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::userns::IdMapping;
    use crate::sandbox::{Process, RootfsChoice, Stdio};

    fn single() -> IdMapping {
        IdMapping {
            uid: 1000,
            gid: 1000,
            sub_uids: None,
            sub_gids: None,
            newuidmap: None,
            newgidmap: None,
            uid_map: vec![(0, 1000, 1)],
            gid_map: vec![(0, 1000, 1)],
        }
    }

    fn spec(mapping: IdMapping, mounts: Vec<Mount>, readonly: bool) -> Spec {
        Spec {
            dir: "/store/containers/c".into(),
            mount_point: "/store/mnt".into(),
            lowers: Vec::new(),
            rootfs: RootfsChoice::Auto,
            hostname: "h".into(),
            mapping,
            private_network: false,
            mounts,
            readonly_rootfs: readonly,
            process: Process {
                argv: vec!["true".into()],
                env: Vec::new(),
                cwd: String::new(),
                user: String::new(),
                caps: 0,
                seccomp: crate::sandbox::seccomp::Seccomp::Unconfined,
                fake_ids: false,
                stdin: false,
                stdio: Stdio::Inherit,
                init: false,
                init_program: None,
                no_new_privs: false,
                groups: None,
                outlives_parent: false,
                cap_sets: None,
            },
            remove_after: Vec::new(),
            remove_dir_after: false,
            cgroup: None,
            // The tree without Docker's masks; `masked_and_readonly_paths`
            // covers those.
            paths: crate::sandbox::PathRules {
                unmask_all: true,
                ..Default::default()
            },
            join: None,
        }
    }

    fn targets(ops: &[MountOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                MountOp::Dir { target }
                | MountOp::Fs { target, .. }
                | MountOp::BindFile { target, .. }
                | MountOp::BindTreeReadonly { target, .. }
                | MountOp::UserBind { target, .. }
                | MountOp::UserTmpfs { target, .. }
                | MountOp::MaskPath { target }
                | MountOp::ReadonlyPath { target } => target.clone(),
                MountOp::Mount { target, .. } | MountOp::MakeDirs { target } => target.clone(),
                MountOp::Sysctl { key, .. } => key.clone(),
                MountOp::Symlink { link, .. } => link.clone(),
                MountOp::RemountRootReadonly | MountOp::PrepareRoot { .. } => "/".into(),
            })
            .collect()
    }

    #[test]
    fn the_tree_in_order_with_user_mounts_last_and_the_readonly_root_after_them() {
        let ops = plan(&spec(
            single(),
            vec![
                Mount::Bind {
                    source: "/data".into(),
                    target: "/srv".into(),
                    readonly: true,
                },
                Mount::Tmpfs {
                    target: "/scratch".into(),
                    options: "exec,ro,size=1m".into(),
                },
            ],
            true,
        ));
        let t = targets(&ops);
        assert_eq!(
            t,
            [
                "proc",
                "dev",
                "dev/null",
                "dev/zero",
                "dev/full",
                "dev/random",
                "dev/urandom",
                "dev/tty",
                "dev/pts",
                "dev/shm",
                "dev/ptmx",
                "dev/fd",
                "dev/stdin",
                "dev/stdout",
                "dev/stderr",
                "dev/core",
                "sys",
                "etc",
                "etc/hosts",
                "etc/hostname",
                "etc/resolv.conf",
                "etc/passwd",
                "etc/group",
                "/srv",
                "/scratch",
                "/",
            ]
        );
        // Without a gid range there is no tty group for devpts.
        assert!(ops.iter().any(|op| matches!(op,
            MountOp::Fs { fstype: "devpts", data: Some(d), .. } if !d.contains("gid=5"))));
        assert!(ops.contains(&MountOp::BindFile {
            source: "/store/containers/c/hosts".into(),
            target: "etc/hosts".into(),
            optional: true,
        }));
        assert_eq!(
            ops[ops.len() - 2],
            MountOp::UserTmpfs {
                target: "/scratch".into(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RDONLY,
                data: "size=1m,mode=1777".into(),
            }
        );
        assert_eq!(ops.last(), Some(&MountOp::RemountRootReadonly));
    }

    #[test]
    fn tmpfs_options_are_parsed_once_into_flags_and_data() {
        let (f, d) = tmpfs_options("");
        assert_eq!(
            f,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        );
        assert_eq!(d, "mode=1777");
        let (f, d) = tmpfs_options("rw,noexec,mode=700,size=64k");
        assert!(f.contains(MsFlags::MS_NOEXEC) && !f.contains(MsFlags::MS_RDONLY));
        assert_eq!(d, "mode=700,size=64k");
    }

    #[test]
    fn no_readonly_remount_unless_asked() {
        let ops = plan(&spec(single(), Vec::new(), false));
        assert!(!ops.contains(&MountOp::RemountRootReadonly));
        assert_eq!(ops.len(), 23);
    }

    #[test]
    fn masked_and_readonly_paths_follow_docker_then_mask_and_unmask() {
        let mut sp = spec(single(), Vec::new(), true);
        sp.paths = Default::default();
        let ops = plan(&sp);
        let masked: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op {
                MountOp::MaskPath { target } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        let readonly: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op {
                MountOp::ReadonlyPath { target } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        let strip = |v: &[&str]| -> Vec<String> {
            v.iter()
                .map(|p| p.trim_start_matches('/').to_string())
                .collect()
        };
        assert_eq!(masked, strip(&MASKED_PATHS));
        assert_eq!(readonly, strip(&READONLY_PATHS));
        assert!(masked.contains(&"proc/kcore") && readonly.contains(&"proc/sys"));
        // After /proc, /sys and the user's mounts; before the root goes
        // read-only.
        let at = |t: &str| targets(&ops).iter().position(|x| x == t).unwrap();
        assert!(at("proc") < at("proc/kcore") && at("sys") < at("sys/firmware"));
        assert_eq!(ops.last(), Some(&MountOp::RemountRootReadonly));

        sp.paths = crate::sandbox::PathRules {
            mask: vec!["/srv/secret".into()],
            unmask_all: false,
            unmask: vec!["/proc/kcore".into(), "/proc/sys".into()],
            writable_sys: false,
        };
        let ops = plan(&sp);
        assert!(!ops.contains(&MountOp::MaskPath {
            target: "proc/kcore".into()
        }));
        assert!(!ops.contains(&MountOp::ReadonlyPath {
            target: "proc/sys".into()
        }));
        assert!(ops.contains(&MountOp::MaskPath {
            target: "proc/keys".into()
        }));
        assert!(ops.contains(&MountOp::MaskPath {
            target: "srv/secret".into()
        }));

        sp.paths.unmask_all = true;
        let ops = plan(&sp);
        assert!(!ops
            .iter()
            .any(|op| matches!(op, MountOp::MaskPath { .. } | MountOp::ReadonlyPath { .. })));
    }

    #[test]
    fn a_private_network_gets_a_fresh_readonly_sysfs() {
        let mut s = spec(single(), Vec::new(), false);
        assert!(plan(&s)
            .iter()
            .any(|op| matches!(op, MountOp::BindTreeReadonly { target, .. } if target == "sys")));
        s.private_network = true;
        let ops = plan(&s);
        assert!(ops.iter().any(|op| matches!(op,
            MountOp::Fs { fstype: "sysfs", target, flags, .. }
                if target == "sys" && flags.contains(MsFlags::MS_RDONLY))));
        assert!(!ops
            .iter()
            .any(|op| matches!(op, MountOp::BindTreeReadonly { .. })));
        assert_eq!(ops.len(), 23);
        // --privileged: the same sysfs, writable.
        s.paths.writable_sys = true;
        assert!(plan(&s).iter().any(|op| matches!(op,
            MountOp::Fs { fstype: "sysfs", target, flags, .. }
                if target == "sys" && !flags.contains(MsFlags::MS_RDONLY))));
    }
}
