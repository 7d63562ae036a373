//! The container's mount tree as data: [`plan`] turns a spec into an ordered
//! list of operations (a pure function, unit-tested below), and PID 1 runs
//! them in one loop ([`apply`]) before pivot_root, as bubblewrap runs its
//! setup-op list. Each failure names the operation and its path.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

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

/// The container's own files bound over the image's.
const ETC_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

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
    /// and mounted through /proc/self/fd, as runc does.
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
    /// A masked path, resolved inside the root; skipped when missing.
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
    },
    /// A directory made inside the root with any missing parents, resolved
    /// there (the working directory, made before the root may go
    /// read-only).
    MakeDirs { target: String },
    /// A sysctl written under the container's /proc/sys (after /proc is
    /// mounted, before /proc/sys goes read-only); `key` dotted.
    Sysctl { key: String, value: String },
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
    // /etc/hosts, /etc/hostname, /etc/resolv.conf: the container's own.
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
            mount::special(fstype, &dir, *flags, data.as_deref()).map_err(mount_failure(target))
        }
        MountOp::BindFile {
            source,
            target,
            optional,
        } => {
            if *optional && !source.exists() {
                return Ok(());
            }
            let file = ensure_file(root, target)?;
            mount::bind(source, &file, false).map_err(mount_failure(target))
        }
        MountOp::BindTreeReadonly { source, target } => {
            let dir = ensure_dir(root, target)?;
            mount::bind_readonly(source, &dir, true).map_err(mount_failure(target))
        }
        MountOp::Symlink { link, points_to } => {
            std::os::unix::fs::symlink(points_to, root.join(link))
                .map_err(|e| failure(Step::Symlink, &e, link))
        }
        MountOp::UserBind {
            source,
            target,
            readonly,
        } => {
            let want_dir = source.is_dir();
            let via = resolve_in_root(root, target, want_dir)?;
            mount::bind(source, &via.1, true).map_err(mount_failure(target))?;
            if *readonly {
                // The old descriptor still names the directory under the new
                // mount: resolve again to reach the mount itself.
                let top = resolve_in_root(root, target, want_dir)?;
                mount::remount_bind_readonly(source, &top.1).map_err(mount_failure(target))?;
            }
            Ok(())
        }
        MountOp::UserTmpfs {
            target,
            flags,
            data,
        } => {
            let via = resolve_in_root(root, target, true)?;
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
            } else {
                mount::bind(Path::new("/dev/null"), &via, false)
            }
            .map_err(mount_failure(target))
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
        } => {
            if *bind {
                let src = Path::new(source);
                let want_dir = src.is_dir();
                let via = resolve_in_root(root, target, want_dir)?;
                mount::bind(src, &via.1, *recursive).map_err(mount_failure(target))?;
                let top = resolve_in_root(root, target, want_dir)?;
                if !flags.is_empty() {
                    mount::remount_bind(src, &top.1, *flags).map_err(mount_failure(target))?;
                }
                if *recursive && flags.contains(MsFlags::MS_RDONLY) {
                    // The mounts below too, or a bound host /sys leaves the
                    // host's cgroup hierarchies writable (CVE-2023-25809).
                    mount::readonly_below(&top.1).map_err(mount_failure(target))?;
                }
                if !propagation.is_empty() {
                    mount::set_propagation(&top.1, *propagation).map_err(mount_failure(target))?;
                }
            } else {
                let via = resolve_in_root(root, target, true)?;
                let data = (!data.is_empty()).then_some(data.as_str());
                mount::filesystem(source, fstype, &via.1, *flags, data)
                    .map_err(mount_failure(target))?;
                if !propagation.is_empty() {
                    let top = resolve_in_root(root, target, true)?;
                    mount::set_propagation(&top.1, *propagation).map_err(mount_failure(target))?;
                }
            }
            Ok(())
        }
        MountOp::MakeDirs { target } => resolve_in_root(root, target, true).map(|_| ()),
        MountOp::Sysctl { key, value } => {
            let rel = format!("proc/sys/{}", key.replace('.', "/"));
            let fail = |e: std::io::Error| {
                Failure::io(Step::Sysctl, &e, exit::BURROW).at(in_container(&rel))
            };
            let Some((fd, _)) = open_existing(root, &rel)? else {
                return Err(fail(std::io::Error::from_raw_os_error(libc::ENOENT)));
            };
            let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
            std::fs::write(via, value).map_err(fail)
        }
        MountOp::ReadonlyPath { target } => {
            let Some((_fd, via)) = open_existing(root, target)? else {
                return Ok(());
            };
            mount::bind(&via, &via, true).map_err(mount_failure(target))?;
            // The old descriptor names what lies under the new bind: open
            // again to reach the bind itself.
            let Some((_top, top)) = open_existing(root, target)? else {
                return Ok(());
            };
            mount::remount_bind_readonly(&top, &top).map_err(mount_failure(target))
        }
    }
}

/// `target` opened (O_PATH) inside `root` without creating anything, or
/// None when it does not exist there (a masked path the kernel or the
/// image lacks is skipped).
fn open_existing(
    root: &Path,
    target: &str,
) -> Result<Option<(std::os::fd::OwnedFd, PathBuf)>, Failure> {
    let fail = |e: nix::Error| failure(Step::MaskPath, &std::io::Error::from(e), target);
    let dir = crate::linux::fs::open_dir(root).map_err(fail)?;
    match crate::linux::fs::openat_in_root(
        std::os::fd::AsFd::as_fd(&dir),
        target,
        nix::fcntl::OFlag::O_PATH,
    ) {
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
) -> Result<(std::os::fd::OwnedFd, PathBuf), Failure> {
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

fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf, Failure> {
    let p = root.join(rel);
    let err = |e: std::io::Error| failure(Step::MakeDir, &e, rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => return Ok(p),
        Ok(_) => std::fs::remove_file(&p).map_err(err)?,
        Err(_) => {}
    }
    std::fs::create_dir(&p).map_err(err)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(err)?;
    Ok(p)
}

fn ensure_file(root: &Path, rel: &str) -> Result<PathBuf, Failure> {
    let p = root.join(rel);
    let err = |e: std::io::Error| failure(Step::MakeFile, &e, rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => return Ok(p),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).map_err(err)?,
        Ok(_) => std::fs::remove_file(&p).map_err(err)?,
        Err(_) => {}
    }
    File::create(&p).map_err(err)?;
    Ok(p)
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
            keep_id: false,
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
        assert_eq!(ops.len(), 21);
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
        assert_eq!(ops.len(), 21);
        // --privileged: the same sysfs, writable.
        s.paths.writable_sys = true;
        assert!(plan(&s).iter().any(|op| matches!(op,
            MountOp::Fs { fstype: "sysfs", target, flags, .. }
                if target == "sys" && !flags.contains(MsFlags::MS_RDONLY))));
    }
}
