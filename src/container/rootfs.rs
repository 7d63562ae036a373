//! Which rootfs mode a store's file system allows: whether overlayfs mounts
//! there from a user namespace, probed once per store and kept in the store
//! (`ROOT/rootfs-mode.json`), keyed by what makes the answer true (the
//! file system's device and type, and the kernel), and whether the user has
//! been told that containers there get a copy.
//!
//! overlayfs refuses an upper directory on a file system that lacks what it
//! needs (RENAME_WHITEOUT, O_TMPFILE, `user.*` xattrs: FUSE, NFS, Lustre,
//! GPFS, ecryptfs), with EINVAL and a line in the kernel log
//! (fs/overlayfs/super.c, `ovl_make_workdir`); one scratch mount shows it
//! without waiting for a container to fail. There, when fuse-overlayfs is
//! installed and a scratch mount of it works (it needs /dev/fuse), it is
//! used instead of the copy: a container starts without copying its image.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::linux::{fuse_overlay, mount, userns};
use crate::sandbox::{RootfsChoice, RootfsMode};
use crate::store::{self, Store};

/// The probe's answer for one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRootfs {
    pub key: Key,
    pub mode: RootfsMode,
    /// Why overlayfs is not used (None when it is).
    pub reason: Option<String>,
}

/// What the answer depends on: it is probed again when any of these change
/// (the store moved to another file system, a new kernel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub dev: u64,
    pub fs_type: i64,
    pub kernel: String,
    /// The installed fuse-overlayfs (path, size, mtime), if any.
    #[serde(default)]
    pub fuse_overlayfs: Option<String>,
}

impl StoreRootfs {
    /// The choice to start containers with: overlay stays `Auto` (a mount
    /// that fails at start still falls back to the copy); copy skips a
    /// mount that is known to fail.
    pub fn choice(&self) -> RootfsChoice {
        match self.mode {
            RootfsMode::Overlay => RootfsChoice::Auto,
            RootfsMode::Copy => RootfsChoice::Force(RootfsMode::Copy),
            RootfsMode::FuseOverlayfs => RootfsChoice::FuseOrCopy,
        }
    }

    /// The file system's name, as statfs(2)'s f_type tells it.
    pub fn fs_name(&self) -> String {
        fs_name(self.key.fs_type)
    }
}

/// Names for the `f_type` values (linux/magic.h) of the file systems where
/// overlayfs's upper directory usually cannot live.
fn fs_name(fs_type: i64) -> String {
    match fs_type {
        0x6573_5546 => "fuse".into(),
        0x6969 => "nfs".into(),
        0xf15f => "ecryptfs".into(),
        0x0bd0_0bd0 => "lustre".into(),
        0x4750_4653 => "gpfs".into(),
        0xff53_4d42 | 0xfe53_4d42 => "cifs".into(),
        0x794c_7630 => "overlay".into(),
        0x0102_1994 => "tmpfs".into(),
        0xef53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683e => "btrfs".into(),
        other => format!("type {other:#x}"),
    }
}

fn cache_path(store: &Store) -> PathBuf {
    store.root().join("rootfs-mode.json")
}

fn told_path(store: &Store) -> PathBuf {
    store.root().join("rootfs-mode.told")
}

fn current_key(store: &Store) -> Option<Key> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(store.root()).ok()?.dev();
    let fs = nix::sys::statfs::statfs(store.root()).ok()?;
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    #[allow(clippy::unnecessary_cast)]
    Some(Key {
        dev,
        fs_type: fs.filesystem_type().0 as i64,
        kernel,
        fuse_overlayfs: fuse_overlay::identity(),
    })
}

/// The store's rootfs mode: the cached answer when its key still holds,
/// else a fresh probe (a scratch overlay mount in a user namespace under
/// the store's tmp/), cached. None when the store cannot be probed (not
/// writable): callers try overlayfs and fall back at start.
pub fn probe(store: &Store, mapping: &userns::IdMapping) -> Option<StoreRootfs> {
    let key = current_key(store)?;
    if let Some(cached) = std::fs::read(cache_path(store))
        .ok()
        .and_then(|b| serde_json::from_slice::<StoreRootfs>(&b).ok())
        .filter(|c| c.key == key)
    {
        return Some(cached);
    }
    let reason = overlay_refusal(store, mapping)?;
    let mode = match &reason {
        None => RootfsMode::Overlay,
        Some(_) if key.fuse_overlayfs.is_some() && try_fuse_overlayfs(store, mapping) => {
            RootfsMode::FuseOverlayfs
        }
        Some(_) => RootfsMode::Copy,
    };
    let answer = StoreRootfs { key, mode, reason };
    save(store, &answer);
    Some(answer)
}

/// Record that a container's overlay (or fuse-overlayfs) mount failed at
/// start although the probe said it would work: later starts copy, and the
/// user is told once.
pub fn record_start_fallback(store: &Store, reason: &str) {
    let Some(key) = current_key(store) else {
        return;
    };
    save(
        store,
        &StoreRootfs {
            key,
            mode: RootfsMode::Copy,
            reason: Some(format!("{reason} at a container's start")),
        },
    );
}

fn save(store: &Store, answer: &StoreRootfs) {
    if let Ok(bytes) = serde_json::to_vec(answer) {
        if let Err(e) = store.replace(&cache_path(store), &bytes, false) {
            tracing::debug!("cannot cache the store's rootfs mode: {e}");
        }
    }
}

/// True exactly once per store and key when containers there get a copy:
/// the caller says so then. A marker holding the key makes it once, across
/// processes (created exclusively) and until the key changes.
pub fn tell_once(store: &Store, answer: &StoreRootfs) -> bool {
    if answer.mode == RootfsMode::Overlay {
        return false;
    }
    let Ok(stamp) = serde_json::to_vec(answer) else {
        return false;
    };
    let path = told_path(store);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => f.write_all(&stamp).is_ok(),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::read(&path).is_ok_and(|b| b == stamp) {
                return false;
            }
            store.replace(&path, &stamp, false).is_ok()
        }
        Err(_) => false,
    }
}

/// One scratch overlay mount under the store's tmp/: no reason when it
/// mounted, the reason (as users read it, and as it is kept) when not;
/// None when the store has no room to try.
fn overlay_refusal(store: &Store, mapping: &userns::IdMapping) -> Option<Option<String>> {
    let dir = store.staging_dir("probe").ok()?;
    for d in ["l", "u", "w", "m"] {
        let _ = std::fs::create_dir(dir.join(d));
    }
    let d = dir.clone();
    let r = userns::run_in_userns(mapping, move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(Probe::Unshare)?;
        mount::overlay(&[d.join("l")], &d.join("u"), &d.join("w"), &d.join("m"))
            .map_err(Probe::Overlay)
    });
    let _ = store::remove_tree(&dir, mapping);
    Some(r.err().map(|e| describe(&e.to_string(), &dir)))
}

/// Why a scratch mount failed (in the probing child).
#[derive(Debug, thiserror::Error)]
enum Probe {
    #[error("{0}")]
    Unshare(nix::Error),
    #[error("{0}")]
    Overlay(mount::MountError),
    #[error("{0}")]
    Fuse(fuse_overlay::FuseOverlayError),
}

/// One scratch fuse-overlayfs mount in a user namespace under the store's
/// tmp/: true when it mounted (the program runs, /dev/fuse opens, FUSE
/// mounts are allowed in a user namespace: Linux 4.18+).
fn try_fuse_overlayfs(store: &Store, mapping: &userns::IdMapping) -> bool {
    if !fuse_overlay::device_usable() {
        return false;
    }
    let Ok(dir) = store.staging_dir("probe") else {
        return false;
    };
    for d in ["l", "u", "w", "m"] {
        let _ = std::fs::create_dir(dir.join(d));
    }
    let d = dir.clone();
    let r = userns::run_in_userns(mapping, move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(Probe::Unshare)?;
        let daemon = fuse_overlay::Daemon::mount(
            &[d.join("l")],
            Some((&d.join("u"), &d.join("w"))),
            &d.join("m"),
            None,
        )
        .map_err(Probe::Fuse)?;
        daemon.stop(&d.join("m"));
        Ok::<_, Probe>(())
    });
    if let Err(e) = &r {
        tracing::debug!("fuse-overlayfs cannot be used here: {e}");
    }
    let _ = store::remove_tree(&dir, mapping);
    r.is_ok()
}

/// The failure without the scratch directory's path, which is gone.
fn describe(err: &str, dir: &Path) -> String {
    let err = err.replace(&format!("{:?}", dir.join("m")), "the store");
    let err = err.strip_prefix("in user namespace: ").unwrap_or(&err);
    if err.contains("EINVAL") {
        // What the kernel logs then (only root may read it).
        format!("{err} (the file system lacks what overlayfs needs of an upper directory: RENAME_WHITEOUT, O_TMPFILE or user.* xattrs)")
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_and_nfs_are_named() {
        assert_eq!(fs_name(0x6573_5546), "fuse");
        assert_eq!(fs_name(0x6969), "nfs");
        assert_eq!(fs_name(0x1234), "type 0x1234");
    }

    #[test]
    fn only_copy_is_a_forced_choice() {
        let key = Key {
            dev: 1,
            fs_type: 0x6573_5546,
            kernel: "6".into(),
            fuse_overlayfs: None,
        };
        let mut a = StoreRootfs {
            key,
            mode: RootfsMode::Overlay,
            reason: None,
        };
        assert_eq!(a.choice(), RootfsChoice::Auto);
        a.mode = RootfsMode::Copy;
        assert_eq!(a.choice(), RootfsChoice::Force(RootfsMode::Copy));
        a.mode = RootfsMode::FuseOverlayfs;
        assert_eq!(a.choice(), RootfsChoice::FuseOrCopy);
    }
}
