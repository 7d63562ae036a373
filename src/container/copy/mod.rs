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
use crate::linux::channel::ChannelError;
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::userns::{run_in_userns, IdMapping, UsernsError};
use crate::linux::worker::{self, SpawnError, WorkerError};
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

/// Why a copy (`cp`, a path's stat, an archive) failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A worker's own account: the step, path and errno it failed with.
    #[error(transparent)]
    Failed(Failure),
    /// A worker that ended without a word, with its exit code (1 when it
    /// had none).
    #[error("copy failed ({code})")]
    Ended { code: i32, channel: ChannelError },
    #[error(transparent)]
    Pipe(nix::Error),
    #[error(transparent)]
    Spawn(SpawnError),
    #[error(transparent)]
    Namespaces(NsError),
    /// The stopped container's worker, as its user namespace reports it
    /// (its message alone: a disabled namespace's says its own fix).
    #[error("{0}")]
    Userns(UsernsError),
    #[error("no such host path: {}", .0.display())]
    NoHostPath(PathBuf),
    /// A scratch file in the store (a fresh name, where the file system
    /// has no O_TMPFILE) that could not be made.
    #[error("{source}")]
    ScratchOpen { path: PathBuf, source: nix::Error },
    /// A scratch file (a stat's answer, an archive on its way) that could
    /// not be reopened, rewound or read back.
    #[error(transparent)]
    Scratch(std::io::Error),
    /// A directory's archive copied with its names spelled `./NAME`.
    #[error(transparent)]
    DotPrefixed(std::io::Error),
    #[error("reading a stat of {path}: {source}")]
    Stat {
        path: String,
        source: serde_json::Error,
    },
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
        Err(WorkerError::Failed(f)) => Err(CopyError::Failed(f).into()),
        Err(WorkerError::Channel(channel)) => Err(CopyError::Ended { code, channel }.into()),
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
    let (r, w) = process::pipe().map_err(CopyError::Pipe)?;
    let (host_side, ctr_side): (Worker, Worker);
    let (host_end, ctr_end) = match dir {
        Direction::In { host, container } => {
            if !host.exists() {
                return Err(CopyError::NoHostPath(host.clone()).into());
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
    .map_err(CopyError::Spawn)?;
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
        let ns = Namespaces::open(Path::new("/proc"), rec.state.pid, start)
            .map_err(CopyError::Namespaces)?;
        let w = worker::spawn(move |report| {
            let joined = ns.join();
            // Its descriptors are closed here, not by close_fds_except
            // under it (dropping an OwnedFd already closed aborts).
            drop(ns);
            joined.map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
            process::close_fds_except(&[fd.as_raw_fd(), report]);
            f(fd).map(|()| None)
        })
        .map_err(CopyError::Spawn)?;
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
    .map_err(|e| CopyError::Userns(e).into())
}
