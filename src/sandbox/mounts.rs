//! The container's mount tree as data: [`plan`] turns a spec into an ordered
//! list of operations (a pure function, unit-tested below), which joins the
//! container's entry (`sandbox::entry`) that PID 1 runs in one loop before
//! and through pivot_root, as bubblewrap runs its setup-op list; `apply`
//! runs each. Each failure names the operation and its path.

mod apply;

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::{Mount, Spec};

pub use apply::apply_one;

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
    let mut ops = Vec::new();
    proc_and_dev(spec, &mut ops);
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

/// A filesystem without a source at `target`; empty `data` is none.
fn fs(fstype: &'static str, target: &str, flags: MsFlags, data: &str) -> MountOp {
    MountOp::Fs {
        fstype,
        target: target.into(),
        flags,
        data: (!data.is_empty()).then(|| data.to_string()),
    }
}

/// A fresh /proc for our pid namespace; /dev as a small tmpfs with the
/// host's harmless devices bound in, devpts, /dev/shm and the usual links.
fn proc_and_dev(spec: &Spec, ops: &mut Vec<MountOp>) {
    ops.push(fs(
        "proc",
        "proc",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "",
    ));
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::linux::userns::IdMapping;
    use crate::sandbox::RootfsChoice;

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

    /// A spec with `mapping`, `mounts` and a read-only root when
    /// `readonly`, without Docker's masks.
    pub(crate) fn spec(mapping: IdMapping, mounts: Vec<Mount>, readonly: bool) -> Spec {
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
            process: crate::sandbox::process::tests::bare(),
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
