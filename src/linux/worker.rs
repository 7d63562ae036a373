//! A forked worker that does one job and reports how it went on a channel
//! of its own (done, with a descriptor it made if any, or its error); the
//! parent's wait for that word, and the reaping.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::channel::{channel, ChannelError, Receiver};
use super::process::{self, ForkError};

/// Why no worker was started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Pipe(io::Error),
    #[error(transparent)]
    Fork(ForkError),
}

/// Why a worker did not report success.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError<E> {
    /// The error it sent.
    #[error(transparent)]
    Failed(E),
    /// How its channel ended without a word (it was killed, or died).
    #[error(transparent)]
    Channel(ChannelError),
}

/// A running worker: our child, with the channel it reports on.
#[derive(Debug)]
pub struct Worker<E> {
    pid: Pid,
    reports: Receiver<Result<(), E>>,
}

/// Fork a worker for `job`, which is given the descriptor of its report
/// channel (to keep when it closes the others). The descriptor its job
/// returns, if any, travels back with the report. It exits 0 once it has
/// reported success, 1 once it has sent its error.
pub fn spawn<E, F>(job: F) -> Result<Worker<E>, SpawnError>
where
    E: Serialize + DeserializeOwned,
    F: FnOnce(RawFd) -> Result<Option<OwnedFd>, E>,
{
    let (mut tx, reports) = channel().map_err(SpawnError::Pipe)?;
    // The closure (with our copy of the sending end) is dropped here once
    // the child is forked: the report channel sees EOF when the worker ends.
    let pid = process::fork_child(move || {
        let fd = tx.as_raw_fd();
        match job(fd) {
            Ok(made) => {
                let fds: Vec<_> = made.iter().map(|f| f.as_fd()).collect();
                let _ = tx.send_with(&Ok(()), &fds);
                0
            }
            Err(e) => {
                tx.tell(Err(e));
                1
            }
        }
    })
    .map_err(SpawnError::Fork)?;
    Ok(Worker { pid, reports })
}

impl<E: DeserializeOwned> Worker<E> {
    /// Wait for the worker's word, then reap it: the word (with the
    /// descriptor it sent, if any) and its exit code.
    pub fn wait(mut self) -> (Result<Option<OwnedFd>, WorkerError<E>>, nix::Result<i32>) {
        let word = match self.reports.recv_with() {
            Ok((Ok(()), fds)) => Ok(fds.into_iter().next()),
            Ok((Err(e), _)) => Err(WorkerError::Failed(e)),
            Err(e) => Err(WorkerError::Channel(e)),
        };
        (word, process::wait_exit_code(self.pid))
    }
}
