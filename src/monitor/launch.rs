//! Starting a monitor: the launcher forks and execs `burrow __monitor ID`,
//! and the two speak over a status channel the monitor finds at a known
//! descriptor (listening for the first attach client, PID 1 running, or
//! why it failed).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::Pid;

use crate::container::ContainerRecord;
use crate::exit;
use serde::{Deserialize, Serialize};

use crate::linux::channel::{channel, ChannelError, Receiver, Sender};
use crate::linux::process;
use crate::sandbox::{Failure, StartError, Step};
use crate::store::Store;

use super::io::socket_path;

/// The descriptor number the launcher's status channel has in the monitor.
const STATUS_FD: RawFd = 3;

/// The monitor → its launcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Status {
    /// The attach socket accepts clients.
    Listening,
    /// The host pid of the container's PID 1, which now runs.
    Pid(i32),
    /// The start failed; nothing more follows.
    Failed(Failure),
}

/// A running monitor, as seen by the process that launched it.
pub struct Launched {
    /// Connected before the container started (`attach_first`): no output is
    /// missed.
    pub attached: Option<UnixStream>,
    pub pid1: i32,
}

pub(super) fn monitor_failure(detail: impl Into<String>) -> Failure {
    Failure::new(Step::Monitor, detail, exit::BURROW)
}

/// Start `rec` under a new monitor and return once PID 1 runs (or with why it
/// could not). With `attach_first`, connect to the monitor before it starts
/// the container.
pub fn launch(
    store: &Store,
    rec: &ContainerRecord,
    attach_first: bool,
) -> Result<Launched, StartError> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| Failure::io(Step::Monitor, &e, exit::BURROW).at("/proc/self/exe"))?;
    let (mut status_tx, mut status_rx) =
        channel::<Status>().map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))?;
    let root = store.root().to_path_buf();
    let id = rec.id.clone();
    let status_raw = status_tx.as_raw_fd();
    let child = process::fork_child(|| {
        // A session of our own: the caller's terminal hangups and Ctrl-C
        // must not reach a detached container.
        let _ = nix::unistd::setsid();
        if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
            for fd in 0..3 {
                let _ = process::dup_onto(null.as_raw_fd(), fd);
            }
        }
        if process::dup_onto(status_raw, STATUS_FD).is_err() {
            return exit::BURROW;
        }
        let e = exec_monitor(&exe, &root, &id, attach_first);
        // Still here: the launcher learns why from the status channel.
        status_tx.tell(Status::Failed(
            Failure::io(Step::Monitor, &e, exit::BURROW).at(&exe),
        ));
        exit::CANNOT_RUN
    })
    .map_err(|e| Failure::sys(Step::Fork, e.errno(), exit::BURROW))?;
    drop(status_tx);
    await_start(&mut status_rx, &socket_path(store, &rec.id), child)
}

/// Replace this (forked) process with the monitor of container `id`;
/// returns only why it could not.
fn exec_monitor(exe: &Path, root: &Path, id: &str, attach_first: bool) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0("burrow")
        .arg("--root")
        .arg(root)
        .arg("__monitor")
        .arg(id);
    if attach_first {
        cmd.arg("--attach-first");
    }
    cmd.exec()
}

/// Read the monitor's status until PID 1 runs (connecting to `sock` when
/// the monitor listens for its first client) or the start failed.
fn await_start(
    status_rx: &mut Receiver<Status>,
    sock: &Path,
    child: Pid,
) -> Result<Launched, StartError> {
    // The monitor's own exit is reaped by init once we are gone; reap it
    // here only if it dies early (below).
    let mut attached = None;
    loop {
        match status_rx.recv() {
            Ok(Status::Listening) => {
                let sock = UnixStream::connect(sock)
                    .map_err(|e| monitor_failure(format!("attaching: {e}")))?;
                attached = Some(sock);
            }
            Ok(Status::Pid(pid1)) => return Ok(Launched { attached, pid1 }),
            Ok(Status::Failed(f)) => {
                let _ = process::wait_exit_code(child);
                return Err(f.into());
            }
            Err(ChannelError::Closed) => {
                let code = process::wait_exit_code(child).unwrap_or(exit::BURROW);
                return Err(monitor_failure(format!(
                    "the container's monitor exited ({code}) before starting it"
                ))
                .into());
            }
            Err(e) => return Err(monitor_failure(format!("status from the monitor: {e}")).into()),
        }
    }
}

/// The status channel `launch` passed as descriptor 3, if we were launched
/// that way (a socket inherited there).
pub(super) fn status_sender() -> Option<Sender<Status>> {
    let fd = process::adopt_inherited_fd(STATUS_FD).ok().flatten()?;
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            Some(Sender::from(OwnedFd::from(file)))
        }
        // Not ours to use; dropping it closes a descriptor nobody else
        // owns (it was inherited, see adopt_inherited_fd).
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitor_that_cannot_be_executed_says_why_to_its_launcher() {
        let exe = Path::new("/nonexistent/burrow");
        let e = exec_monitor(exe, Path::new("/nonexistent/root"), "abc", false);
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let (mut tx, mut rx) = channel().unwrap();
        tx.tell(Status::Failed(
            Failure::io(Step::Monitor, &e, exit::BURROW).at(exe),
        ));
        drop(tx);
        // No such child: the launcher's reaping finds nothing to wait for.
        let err = match await_start(
            &mut rx,
            Path::new("/nonexistent.sock"),
            Pid::from_raw(i32::MAX),
        ) {
            Ok(_) => panic!("a failed exec is no start"),
            Err(e) => e,
        };
        assert_eq!(err.failure.step, Step::Monitor);
        assert_eq!(err.failure.errno, Some(nix::Error::ENOENT as i32));
        assert_eq!(err.failure.path.as_deref(), Some(exe));
        assert_eq!(err.code(), exit::BURROW);
    }

    #[test]
    fn the_launcher_returns_pid_1_once_it_runs() {
        let (mut tx, mut rx) = channel().unwrap();
        tx.tell(Status::Pid(42));
        let launched = await_start(
            &mut rx,
            Path::new("/nonexistent.sock"),
            Pid::from_raw(i32::MAX),
        )
        .unwrap_or_else(|e| panic!("{}", e.failure));
        assert_eq!(launched.pid1, 42);
        assert!(launched.attached.is_none());
    }
}
