//! `cp` between the host and a container, as a tar stream between two forked
//! workers: one on the host, one inside the container. For a running
//! container the inner worker joins its namespaces (its mount namespace
//! shows the live rootfs); for a stopped one it mounts the container's
//! overlay privately in a user namespace of its own. Inside, paths resolve
//! against the container's root, so its symlinks cannot reach the host.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{ContainerError, ContainerRecord, Result};
use crate::exit;
use crate::image::layer::{apply_layer, ApplyOptions, IdPolicy};
use crate::linux::channel::{channel, ChannelError, Failure, Sender, Step};
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
type Worker = Box<dyn FnOnce(OwnedFd) -> std::result::Result<(), Failure>>;

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

/// A copy failure at `path`.
fn copy_failure(e: &std::io::Error, path: &Path) -> Failure {
    Failure::io(Step::Copy, e, 1).at(path)
}

/// A worker's outcome as it arrived, or how it ended without one.
fn outcome(r: std::result::Result<(), ChannelError>, pid: nix::unistd::Pid) -> Result<()> {
    let code = process::wait_exit_code(pid).unwrap_or(1);
    match r {
        Ok(()) => Ok(()),
        Err(ChannelError::Failed(f)) => Err(other(f)),
        Err(_) => Err(other(format!("copy failed ({code})"))),
    }
}

/// Run `job` and send its outcome; returns the worker's exit code.
fn report(tx: &mut Sender, job: impl FnOnce() -> std::result::Result<(), Failure>) -> i32 {
    match job() {
        Ok(()) => {
            tx.done();
            0
        }
        Err(f) => {
            tx.failed(f);
            1
        }
    }
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
    let (mut tx, mut rx) = channel().map_err(other)?;
    let keep = [host_end.as_raw_fd(), tx.as_raw_fd()];
    let host_pid = process::fork_child(move || {
        process::close_fds_except(&keep);
        report(&mut tx, || host_side(host_end))
    })
    .map_err(other)?;
    // The closure (and with it the host worker's pipe and channel ends) is
    // gone from this process: only the workers hold the pipe, so each sees
    // EOF in time.
    let inside = in_container(store, rec, mapping, ctr_end, ctr_side);
    let host = outcome(rx.wait_done(), host_pid);
    inside?;
    host
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
        let (mut tx, mut rx) = channel().map_err(other)?;
        let keep = [fd.as_raw_fd(), tx.as_raw_fd()];
        let pid = process::fork_child(move || {
            report(&mut tx, || {
                ns.join()
                    .map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
                process::close_fds_except(&keep);
                f(fd)
            })
        })
        .map_err(other)?;
        return outcome(rx.wait_done(), pid);
    }
    // Stopped: mount its rootfs privately and chroot into it. (chroot is
    // fine here: nothing after it creates a user namespace.)
    let dir = store.container_dir(&rec.id);
    let mount_point = store.mount_point();
    let lowers = rec.lowers(store);
    let copy_mode = rec.rootfs_mode == Some(RootfsMode::Copy);
    // This worker inherits only our stdio, its end of the pipe and the host
    // worker's channel (nothing else is open here). Its failure comes back
    // as run_in_userns's message.
    run_in_userns(mapping, move || {
        let enter = || -> std::result::Result<(), Failure> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::sys(Step::Unshare, e, 1))?;
            let root = if copy_mode {
                dir.join("rootfs")
            } else {
                mount::overlay(&lowers, &dir.join("upper"), &dir.join("work"), &mount_point)
                    .map_err(|e| Failure::sys(Step::Overlay, e.source, 1).at(&mount_point))?;
                mount_point
            };
            nix::unistd::chroot(&root)
                .map_err(|e| Failure::sys(Step::PivotRoot, e, 1).at(&root))?;
            nix::unistd::chdir("/").map_err(|e| Failure::sys(Step::Workdir, e, 1).at("/"))?;
            f(fd)
        };
        enter().map_err(|f| f.to_string())
    })
    .map_err(|e| other(e.to_string()))
}

/// Write `src` as a tar stream, its top entry named after `src`.
fn pack(src: &Path, fd: OwnedFd) -> std::result::Result<(), Failure> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| copy_failure(&e, src))?;
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
        .map_err(|e| copy_failure(&e, src))
}

/// Unpack a tar stream whose top entry is the copied item to `dst`: into it
/// if it is an existing directory, else as `dst` itself.
fn unpack(fd: OwnedFd, dst: &Path) -> std::result::Result<(), Failure> {
    let opts = ApplyOptions {
        ids: IdPolicy::Collapse,
    };
    let layer_failure = |e: &dyn std::fmt::Display| Failure::new(Step::Copy, e.to_string(), 1);
    let reader = File::from(fd);
    if dst.is_dir() {
        return apply_layer(reader, dst, &opts)
            .map(|_| ())
            .map_err(|e| layer_failure(&e).at(dst));
    }
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Failure::new(Step::Copy, "no such directory", 1).at(parent));
    }
    // Unpack beside the destination, then rename the one top entry to it.
    let tmp = parent.join(format!(".burrow-cp-{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| copy_failure(&e, &tmp))?;
    let result = apply_layer(reader, &tmp, &opts)
        .map_err(|e| layer_failure(&e).at(dst))
        .and_then(|_| {
            let mut entries = std::fs::read_dir(&tmp).map_err(|e| copy_failure(&e, &tmp))?;
            let top = entries
                .next()
                .ok_or_else(|| Failure::new(Step::Copy, "nothing to copy", 1))?
                .map_err(|e| copy_failure(&e, &tmp))?;
            std::fs::rename(top.path(), dst).map_err(|e| copy_failure(&e, dst))
        });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
