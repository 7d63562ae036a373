//! A bundle's `mounts` and `linux.devices` as the sandbox's mount
//! operations, and mount options split as runc's table splits them.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::{invalid, HostDevice, Result};
use crate::sandbox::{MountOp, Symlinks, DEVICES};

/// The bundle's mounts in order, onto `ops`; `new_net`: the container has
/// a network namespace of its own. Returns whether /dev is a fresh tmpfs.
pub(super) fn mount_ops(
    spec: &Spec,
    bundle: &Path,
    new_net: bool,
    ops: &mut Vec<MountOp>,
) -> Result<bool> {
    let mut dev_tmpfs = false;
    for m in spec.mounts().clone().unwrap_or_default() {
        let target = m.destination().to_string_lossy().into_owned();
        if !target.starts_with('/') {
            return Err(invalid(format!(
                "mount destination {target:?} is not absolute"
            )));
        }
        let typ = m.typ().clone().unwrap_or_default();
        let options = m.options().clone().unwrap_or_default();
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.clone());
        let o = parse_options(&options)?;
        let bind = o.bind || typ == "bind";
        if typ == "cgroup" || typ == "cgroup2" {
            // A cgroup filesystem cannot be mounted from a user namespace on
            // a v1 or hybrid host; the host's hierarchy, read-only, shows
            // the same files (what crun does rootless).
            ops.push(MountOp::BindTreeReadonly {
                source: "/sys/fs/cgroup".into(),
                target: target.trim_start_matches('/').to_string(),
            });
            continue;
        }
        if typ == "sysfs" && !new_net {
            // Only the user namespace owning the network namespace may
            // mount sysfs: without a new one, bind the host's read-only.
            ops.push(MountOp::BindTreeReadonly {
                source: "/sys".into(),
                target: target.trim_start_matches('/').to_string(),
            });
            continue;
        }
        if target == "/dev" && typ == "tmpfs" {
            dev_tmpfs = true;
        }
        let source = if bind && !Path::new(&source).is_absolute() {
            bundle.join(&source).to_string_lossy().into_owned()
        } else {
            source
        };
        ops.push(MountOp::Mount {
            source,
            fstype: if bind { String::new() } else { typ },
            target,
            flags: o.flags,
            data: o.data,
            bind,
            recursive: o.recursive,
            propagation: o.propagation,
            symlinks: o.symlinks,
        });
    }
    Ok(dev_tmpfs)
}

/// The devices of a fresh /dev (`dev_tmpfs`), onto `ops`, with `host`
/// telling what device node a host path is. Returns the devices of
/// `linux.devices` left out.
pub(super) fn device_ops(
    linux: &oci_spec::runtime::Linux,
    dev_tmpfs: bool,
    host: &dyn Fn(&Path) -> Option<HostDevice>,
    ops: &mut Vec<MountOp>,
) -> Vec<PathBuf> {
    // A fresh /dev gets the devices every container has, bound from the
    // host (a user namespace cannot mknod) nosuid and noexec as runc and
    // crun bind them, and the usual links.
    let mut skipped_devices = Vec::new();
    if !dev_tmpfs {
        skipped_devices.extend(linux.devices().iter().flatten().map(|d| d.path().clone()));
    } else {
        for d in DEVICES {
            ops.push(device_bind(format!("/dev/{d}")));
        }
        // `linux.devices`: a user namespace cannot mknod, so the host's
        // node is bound in, when the host has that very device at that path
        // (as crun does rootless); any other is left out, and named.
        for d in linux.devices().clone().unwrap_or_default() {
            let path = d.path();
            let name = path.strip_prefix("/dev").ok().and_then(|p| p.to_str());
            if name.is_some_and(|n| DEVICES.contains(&n)) {
                continue;
            }
            let wanted = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => Some(false),
                LinuxDeviceType::B => Some(true),
                _ => None,
            };
            let same = wanted.is_some_and(|block| {
                path.is_absolute()
                    && host(path) == Some((block, d.major().max(0) as u64, d.minor().max(0) as u64))
            });
            if !same {
                skipped_devices.push(path.clone());
                continue;
            }
            ops.push(device_bind(path.to_string_lossy().into_owned()));
        }
        for (link, points_to) in crate::sandbox::DEV_LINKS {
            ops.push(MountOp::Symlink {
                link: format!("dev/{link}"),
                points_to,
            });
        }
    }
    skipped_devices
}

/// The host's device node at `path` bound at the same path in the
/// container, nosuid and noexec.
fn device_bind(path: String) -> MountOp {
    MountOp::Mount {
        target: path.trim_start_matches('/').to_string(),
        source: path,
        fstype: String::new(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        data: String::new(),
        bind: true,
        recursive: false,
        propagation: MsFlags::empty(),
        symlinks: Symlinks::default(),
    }
}

/// Mount options split as runc's table does: flags, propagation, bind,
/// and the rest as filesystem data.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Options {
    pub(super) flags: MsFlags,
    pub(super) propagation: MsFlags,
    pub(super) bind: bool,
    pub(super) recursive: bool,
    pub(super) symlinks: Symlinks,
    pub(super) data: String,
}

/// The options that set (true) or clear one mount flag. runtime-spec's
/// recursive read-only is a read-only rbind, made read-only in every mount
/// below it anyway; a bind or a new file system has no mount below it.
const FLAG_OPTIONS: [(&str, MsFlags, bool); 23] = [
    ("ro", MsFlags::MS_RDONLY, true),
    ("rro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("rrw", MsFlags::MS_RDONLY, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("suid", MsFlags::MS_NOSUID, false),
    ("nodev", MsFlags::MS_NODEV, true),
    ("dev", MsFlags::MS_NODEV, false),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("atime", MsFlags::MS_NOATIME, false),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
];

pub(super) fn parse_options(options: &[String]) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        symlinks: Symlinks::default(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in options {
        if let Some(&(_, flag, set)) = FLAG_OPTIONS.iter().find(|(name, ..)| name == opt) {
            match set {
                true => o.flags.insert(flag),
                false => o.flags.remove(flag),
            }
            continue;
        }
        match opt.as_str() {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => o.propagation = propagation_of(Some(opt))?,
            "idmap" | "ridmap" => {
                return Err(invalid(format!(
                    "mount option {opt:?} (id-mapped mounts) is not supported"
                )))
            }
            // crun's: what a bind does with a symlink at either end.
            "src-nofollow" => o.symlinks.src_nofollow = true,
            "dest-nofollow" => o.symlinks.dest_nofollow = true,
            "copy-symlink" => o.symlinks.copy = true,
            // podman's own markers, resolved before the runtime runs.
            "tmpcopyup" | "notmpcopyup" | "z" | "Z" | "U" | "copy" | "nocopy" => {}
            other if other.starts_with("x-") => {}
            other => data.push(other.to_string()),
        }
    }
    if o.symlinks.copy && (o.symlinks.src_nofollow || o.symlinks.dest_nofollow) {
        return Err(invalid(
            "mount option \"copy-symlink\" excludes \"src-nofollow\" and \"dest-nofollow\"",
        ));
    }
    o.data = data.join(",");
    Ok(o)
}

/// `rootfsPropagation` or a mount's propagation option as flags; the
/// root's default is rslave, as runc's.
pub(super) fn propagation_of(name: Option<&str>) -> Result<MsFlags> {
    Ok(match name.unwrap_or("rslave") {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        other => return Err(invalid(format!("unknown propagation {other:?}"))),
    })
}
