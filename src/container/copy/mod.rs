//! `cp` between the host and a container, as a tar stream between two forked
//! workers: one on the host, one inside the container. For a running
//! container the inner worker joins its namespaces (its mount namespace
//! shows the live rootfs); for a stopped one it mounts the container's
//! overlay privately in a user namespace of its own. Inside, paths resolve
//! against the container's root, so its symlinks cannot reach the host.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{ContainerError, ContainerRecord, Result};
use crate::exit;
use crate::linux::ns::Namespaces;
use crate::linux::userns::{run_in_userns, IdMapping};
use crate::linux::worker::{self, WorkerError};
use crate::linux::{mount, process};
use crate::sandbox::{Failure, RootfsMode, Step};
use crate::store::Store;

mod archive;
mod stream;

pub use archive::{archive, extract, scratch_file, stat, PathStat};

use stream::{pack, top_name, unpack, Land};

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

pub(super) fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

/// A copy failure at `path`.
pub(super) fn copy_failure(e: &std::io::Error, path: &Path) -> Failure {
    Failure::io(Step::Copy, e, 1).at(path)
}

/// A worker's outcome as it arrived, or how it ended without one.
fn outcome(w: worker::Worker<Failure>) -> Result<()> {
    let (word, code) = w.wait();
    let code = code.unwrap_or(1);
    match word {
        Ok(_) => Ok(()),
        Err(WorkerError::Failed(f)) => Err(other(f)),
        Err(_) => Err(other(format!("copy failed ({code})"))),
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
            let top = top_name(&h);
            host_side = Box::new(move |fd| pack(&h, fd));
            ctr_side = Box::new(move |fd| unpack(fd, Path::new(&c), &top, Land::Container));
            (w, r)
        }
        Direction::Out { container, host } => {
            let (h, c) = (host.clone(), container.clone());
            let top = top_name(Path::new(&c));
            host_side = Box::new(move |fd| unpack(fd, &h, &top, Land::Host));
            ctr_side = Box::new(move |fd| pack(Path::new(&c), fd));
            (r, w)
        }
    };

    // The host worker first (a plain fork), then the container worker.
    let host_worker = worker::spawn(move |report| {
        process::close_fds_except(&[host_end.as_raw_fd(), report]);
        host_side(host_end).map(|()| None)
    })
    .map_err(other)?;
    // The closure (and with it the host worker's pipe and channel ends) is
    // gone from this process: only the workers hold the pipe, so each sees
    // EOF in time.
    let inside = in_container(store, rec, mapping, ctr_end, ctr_side);
    let host = outcome(host_worker);
    // The unpacking side's failure is the cause; the packing side then
    // only saw the pipe close (EPIPE, SIGPIPE).
    match dir {
        Direction::In { .. } => inside.and(host),
        Direction::Out { .. } => host.and(inside),
    }
}

/// Run `f` with the container's root as `/`, in a child process.
pub(super) fn in_container(
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
        let w = worker::spawn(move |report| {
            let joined = ns.join();
            // Its descriptors are closed here, not by close_fds_except
            // under it (dropping an OwnedFd already closed aborts).
            drop(ns);
            joined.map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
            process::close_fds_except(&[fd.as_raw_fd(), report]);
            f(fd).map(|()| None)
        })
        .map_err(other)?;
        return outcome(w);
    }
    // Stopped: mount its rootfs privately and chroot into it. (chroot is
    // fine here: nothing after it creates a user namespace.)
    let dir = store.container_dir(&rec.id);
    let mount_point = store.mount_point();
    let lowers = rec.lowers(store);
    let copy_mode = rec.rootfs_mode == Some(RootfsMode::Copy);
    let fuse_mode = rec.rootfs_mode == Some(RootfsMode::FuseOverlayfs);
    // This worker inherits only our stdio, its end of the pipe and the host
    // worker's channel (nothing else is open here). Its failure comes back
    // as run_in_userns's message.
    run_in_userns(mapping, move || {
        let enter = || -> std::result::Result<(), Failure> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::sys(Step::Unshare, e, 1))?;
            // Served by fuse-overlayfs for as long as the copy runs; it
            // stays in the root it started in (chroot moves only us).
            let mut daemon = None;
            let root = if copy_mode {
                dir.join("rootfs")
            } else if fuse_mode {
                let (upper, work) = (dir.join("upper"), dir.join("work"));
                daemon = Some(
                    crate::linux::fuse_overlay::Daemon::mount(
                        &lowers,
                        Some((&upper, &work)),
                        &mount_point,
                        None,
                    )
                    .map_err(|e| Failure::new(Step::Overlay, e.to_string(), 1))?,
                );
                mount_point
            } else {
                mount::overlay(&lowers, &dir.join("upper"), &dir.join("work"), &mount_point)
                    .map_err(|e| Failure::sys(Step::Overlay, e.source, 1).at(&mount_point))?;
                mount_point
            };
            nix::unistd::chroot(&root)
                .map_err(|e| Failure::sys(Step::PivotRoot, e, 1).at(&root))?;
            nix::unistd::chdir("/").map_err(|e| Failure::sys(Step::Workdir, e, 1).at("/"))?;
            let done = f(fd);
            if let Some(d) = daemon {
                // What was copied in is written through before it ends.
                d.stop(Path::new("/"));
            }
            done
        };
        enter()
    })
    .map_err(|e| other(e.to_string()))
}
