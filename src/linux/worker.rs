//! A forked worker that does one job and says `Done` or why it failed on a
//! channel of its own; the parent's wait for that word, and the reaping.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use nix::unistd::Pid;

use super::channel::{channel, ChannelError, Failure, Receiver};
use super::process::{self, ForkError};

/// Why no worker was started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Pipe(io::Error),
    #[error(transparent)]
    Fork(ForkError),
}

/// A running worker: our child, with the channel it reports on.
#[derive(Debug)]
pub struct Worker {
    pid: Pid,
    reports: Receiver,
}

/// Fork a worker for `job`, which is given the descriptor of its report
/// channel (to keep when it closes the others). It exits 0 once it has said
/// `Done`, 1 once it has sent its failure.
pub fn spawn<F>(job: F) -> Result<Worker, SpawnError>
where
    F: FnOnce(RawFd) -> Result<(), Failure>,
{
    let (mut tx, reports) = channel().map_err(SpawnError::Pipe)?;
    // The closure (with our copy of the sending end) is dropped here once
    // the child is forked: the report channel sees EOF when the worker ends.
    let pid = process::fork_child(move || {
        let fd = tx.as_raw_fd();
        match job(fd) {
            Ok(()) => {
                tx.done();
                0
            }
            Err(f) => {
                tx.failed(f);
                1
            }
        }
    })
    .map_err(SpawnError::Fork)?;
    Ok(Worker { pid, reports })
}

impl Worker {
    /// Wait for the worker's word, then reap it: the word (a failure it
    /// sent, or how the channel ended without one) and its exit code.
    pub fn wait(mut self) -> (Result<(), ChannelError>, nix::Result<i32>) {
        let word = self.reports.wait_done();
        (word, process::wait_exit_code(self.pid))
    }
}
