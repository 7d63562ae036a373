//! Starting a monitor: the launcher forks and execs `burrow __monitor ID`,
//! and the two speak over a status channel the monitor finds at a known
//! descriptor (listening for the first attach client, PID 1 running, or
//! why it failed).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::container::ContainerRecord;
use crate::exit;
use crate::linux::channel::{channel, ChannelError, Message, Sender};
use crate::linux::process;
use crate::sandbox::{Failure, StartError, Step};
use crate::store::Store;

use super::io::socket_path;

/// The descriptor number the launcher's status channel has in the monitor.
const STATUS_FD: RawFd = 3;

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
    let (status_tx, mut status_rx) =
        channel().map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))?;
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
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg0("burrow")
            .arg("--root")
            .arg(&root)
            .arg("__monitor")
            .arg(&id);
        if attach_first {
            cmd.arg("--attach-first");
        }
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        let _ = e;
        exit::CANNOT_RUN
    })
    .map_err(|e| Failure::sys(Step::Fork, e.errno(), exit::BURROW))?;
    drop(status_tx);
    // The monitor's own exit is reaped by init once we are gone; reap it
    // here only if it dies early (below).
    let mut attached = None;
    loop {
        match status_rx.recv() {
            Ok(Message::Listening) => {
                let sock = UnixStream::connect(socket_path(store, &rec.id))
                    .map_err(|e| monitor_failure(format!("attaching: {e}")))?;
                attached = Some(sock);
            }
            Ok(Message::Pid(pid1)) => return Ok(Launched { attached, pid1 }),
            Ok(Message::Failed(f)) => {
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
            Ok(m) => return Err(monitor_failure(format!("unexpected status {m:?}")).into()),
            Err(e) => return Err(monitor_failure(format!("status from the monitor: {e}")).into()),
        }
    }
}

/// The status channel `launch` passed as descriptor 3, if we were launched
/// that way (a pipe inherited there).
pub(super) fn status_sender() -> Option<Sender> {
    let fd = process::adopt_inherited_fd(STATUS_FD).ok().flatten()?;
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {
            Some(Sender::from(OwnedFd::from(file)))
        }
        // Not ours to use; dropping it closes a descriptor nobody else
        // owns (it was inherited, see adopt_inherited_fd).
        _ => None,
    }
}
