//! The report pipe between a sandbox's helper processes and the caller:
//! writing one JSON line, and waiting for the exit report while relaying
//! signals to the container's process (shared by `run` and `exec`).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::Report;

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

/// Send one report line; a write error means the caller is gone and there is
/// nobody to tell.
pub fn send(w: &mut File, r: &Report) {
    let mut s = serde_json::to_string(r).expect("report serializes");
    s.push('\n');
    let _ = w.write_all(s.as_bytes());
}

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

/// One report line: the exit code if it was `Exited`; `Err` at EOF.
pub fn read_exit(reports: &mut BufReader<File>) -> Result<Option<i32>, ()> {
    let mut line = String::new();
    match reports.read_line(&mut line) {
        Ok(0) | Err(_) => Err(()),
        Ok(_) => Ok(match serde_json::from_str(line.trim_end()) {
            Ok(Report::Exited(code)) => Some(code),
            _ => None,
        }),
    }
}

/// Wait for the `Exited` report, relaying signals from `signals` to
/// `target`. None if the pipe closed without one (the reporter was killed).
pub fn wait_exit(
    reports: &mut BufReader<File>,
    signals: Option<&SignalFd>,
    target: Pid,
) -> Option<i32> {
    loop {
        // Data already buffered from an earlier read needs no poll.
        if reports.buffer().is_empty() {
            if let Some(sfd) = signals {
                let mut fds = [
                    PollFd::new(reports.get_ref().as_fd(), PollFlags::POLLIN),
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
        }
        match read_exit(reports) {
            Ok(Some(code)) => return Some(code),
            Ok(None) => {}
            Err(()) => return None,
        }
    }
}
