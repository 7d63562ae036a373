//! Waiting for a container process's exit report while relaying signals to
//! it (shared by `run` and `exec`): the caller blocks the signals `docker
//! run` proxies and reads them from a signalfd next to the report channel.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::wire::ExitReport;
use crate::linux::channel::{ChannelError, Receiver};

/// Signals relayed to the container's process, as `docker run` does
/// (sig-proxy).
pub const RELAYED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Block the relayed signals and return a signalfd they queue on instead
/// (children inherit the mask; they reset it before exec).
pub fn relay_signalfd() -> Option<SignalFd> {
    let mut set = SigSet::empty();
    for s in RELAYED {
        set.add(s);
    }
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ok()
}

/// One message from the reporter: the exit code if it was the exit; `Err`
/// once the channel is closed (or unreadable).
pub fn read_exit<M: ExitReport>(reports: &mut Receiver<M>) -> Result<Option<i32>, ChannelError> {
    match reports.recv() {
        Ok(m) if m.exit_code().is_some() => Ok(m.exit_code()),
        Ok(m) => {
            tracing::warn!("unexpected report while waiting for an exit: {m:?}");
            Ok(None)
        }
        Err(ChannelError::Garbled(l)) => {
            tracing::warn!("garbled report: {l:?}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Wait for the `Exited` report, relaying signals from `signals` to
/// `target`. None if the channel closed without one (the reporter was
/// killed).
pub fn wait_exit<M: ExitReport>(
    reports: &mut Receiver<M>,
    signals: Option<&SignalFd>,
    target: Pid,
) -> Option<i32> {
    loop {
        // Messages are read one at a time: none waits unseen by poll.
        if let Some(sfd) = signals {
            let mut fds = [
                PollFd::new(reports.as_fd(), PollFlags::POLLIN),
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            ];
            // Any other poll error falls back to a blocking read below.
            if let Err(nix::Error::EINTR) = poll(&mut fds, PollTimeout::NONE) {
                continue;
            }
            if fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                if let Ok(Some(info)) = sfd.read_signal() {
                    if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                        let _ = nix::sys::signal::kill(target, sig);
                    }
                }
                continue;
            }
        }
        match read_exit(reports) {
            Ok(Some(code)) => return Some(code),
            Ok(None) => {}
            Err(_) => return None,
        }
    }
}
