//! `cp` between the host and a container, as a tar stream between two forked
//! workers: one on the host, one inside the container. For a running
//! container the inner worker joins its namespaces (its mount namespace
//! shows the live rootfs); for a stopped one it mounts the container's
//! overlay privately in a user namespace of its own. Inside, paths resolve
//! against the container's root, so its symlinks cannot reach the host.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{ContainerError, ContainerRecord, Result};
use crate::image::layer::{apply_layer, ApplyOptions, IdPolicy};
use crate::linux::ns::Namespaces;
use crate::linux::userns::{run_in_userns, IdMapping};
use crate::linux::{mount, process};
use crate::sandbox::RootfsMode;
use crate::store::Store;

/// Which way to copy.
#[derive(Debug, Clone)]
pub enum Direction {
    /// Host path → container path.
    In { host: PathBuf, container: String },
    /// Container path → host path.
    Out { container: String, host: PathBuf },
}

/// One side of the copy, given its end of the pipe.
type Worker = Box<dyn FnOnce(OwnedFd) -> std::result::Result<(), String>>;

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

/// Copy as `docker cp` does: into an existing directory the source keeps its
/// name; otherwise it is created at the destination path.
pub fn copy(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    dir: &Direction,
) -> Result<()> {
    let (r, w) = process::pipe().map_err(other)?;
    let (host_side, ctr_side): (Worker, Worker);
    let (host_end, ctr_end) = match dir {
        Direction::In { host, container } => {
            if !host.exists() {
                return Err(other(format!("no such host path: {}", host.display())));
            }
            let (h, c) = (host.clone(), container.clone());
            host_side = Box::new(move |fd| pack(&h, fd));
            ctr_side = Box::new(move |fd| unpack(fd, Path::new(&c)));
            (w, r)
        }
        Direction::Out { container, host } => {
            let (h, c) = (host.clone(), container.clone());
            host_side = Box::new(move |fd| unpack(fd, &h));
            ctr_side = Box::new(move |fd| pack(Path::new(&c), fd));
            (r, w)
        }
    };

    // The host worker first (a plain fork), then the container worker.
    let (err_r, err_w) = process::pipe().map_err(other)?;
    let keep = [host_end.as_raw_fd(), err_w.as_raw_fd()];
    let host_pid = process::fork_child(|| {
        process::close_fds_except(&keep);
        let mut err = File::from(err_w);
        match host_side(host_end) {
            Ok(()) => 0,
            Err(e) => {
                let _ = err.write_all(e.as_bytes());
                1
            }
        }
    })
    .map_err(other)?;
    // The closure (and with it the host worker's pipe ends) is gone from this
    // process: only the workers hold the pipe, so each sees EOF in time.
    let inside = in_container(store, rec, mapping, ctr_end, ctr_side);
    let host_code = process::wait_exit_code(host_pid).unwrap_or(1);
    let mut host_err = String::new();
    let _ = File::from(err_r).read_to_string(&mut host_err);
    inside?;
    if host_code != 0 {
        return Err(other(if host_err.is_empty() {
            format!("host side of the copy failed ({host_code})")
        } else {
            host_err
        }));
    }
    Ok(())
}

/// Run `f` with the container's root as `/`, in a child process.
fn in_container(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    fd: OwnedFd,
    f: Worker,
) -> Result<()> {
    if rec.is_up(store) {
        let start = rec
            .pid1_start(store)
            .ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
        let ns = Namespaces::open(Path::new("/proc"), rec.state.pid, start).map_err(other)?;
        let (err_r, err_w) = process::pipe().map_err(other)?;
        let keep = [fd.as_raw_fd(), err_w.as_raw_fd()];
        let pid = process::fork_child(|| {
            let mut err = File::from(err_w);
            let r = ns.join().map_err(|e| e.to_string()).and_then(|()| {
                process::close_fds_except(&keep);
                f(fd)
            });
            match r {
                Ok(()) => 0,
                Err(e) => {
                    let _ = err.write_all(e.as_bytes());
                    1
                }
            }
        })
        .map_err(other)?;
        let code = process::wait_exit_code(pid).unwrap_or(1);
        let mut msg = String::new();
        let _ = File::from(err_r).read_to_string(&mut msg);
        if code != 0 {
            return Err(other(if msg.is_empty() {
                format!("copy failed ({code})")
            } else {
                msg
            }));
        }
        return Ok(());
    }
    // Stopped: mount its rootfs privately and chroot into it. (chroot is
    // fine here: nothing after it creates a user namespace.)
    let dir = store.container_dir(&rec.id);
    let mount_point = store.mount_point();
    let lowers = rec.lowers(store);
    let copy_mode = rec.rootfs_mode == Some(RootfsMode::Copy);
    // This worker inherits only our stdio, its end of the pipe and the host
    // worker's error pipe (nothing else is open here).
    run_in_userns(mapping, move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        let root = if copy_mode {
            dir.join("rootfs")
        } else {
            mount::overlay(&lowers, &dir.join("upper"), &dir.join("work"), &mount_point)
                .map_err(|e| e.to_string())?;
            mount_point
        };
        nix::unistd::chroot(&root).map_err(|e| format!("entering the container's root: {e}"))?;
        nix::unistd::chdir("/").map_err(|e| e.to_string())?;
        f(fd)
    })
    .map_err(|e| other(e.to_string()))
}

/// Write `src` as a tar stream, its top entry named after `src`.
fn pack(src: &Path, fd: OwnedFd) -> std::result::Result<(), String> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let name = src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut b = tar::Builder::new(File::from(fd));
    b.follow_symlinks(false);
    let r = if meta.is_dir() {
        b.append_dir_all(&name, src)
    } else {
        b.append_path_with_name(src, &name)
    };
    r.and_then(|()| b.finish())
        .map_err(|e| format!("reading {}: {e}", src.display()))
}

/// Unpack a tar stream whose top entry is the copied item to `dst`: into it
/// if it is an existing directory, else as `dst` itself.
fn unpack(fd: OwnedFd, dst: &Path) -> std::result::Result<(), String> {
    let opts = ApplyOptions {
        ids: IdPolicy::Collapse,
    };
    let reader = File::from(fd);
    if dst.is_dir() {
        return apply_layer(reader, dst, &opts)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!("{}: no such directory", parent.display()));
    }
    // Unpack beside the destination, then rename the one top entry to it.
    let tmp = parent.join(format!(".burrow-cp-{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let result = apply_layer(reader, &tmp, &opts)
        .map_err(|e| e.to_string())
        .and_then(|_| {
            let mut entries = std::fs::read_dir(&tmp).map_err(|e| e.to_string())?;
            let top = entries
                .next()
                .ok_or("nothing to copy")?
                .map_err(|e| e.to_string())?;
            std::fs::rename(top.path(), dst).map_err(|e| format!("{}: {e}", dst.display()))
        });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
