//! A RUN step whose output is the build's to report, not this process's to
//! print: PID 1's stdout and stderr share one pipe, read while it runs and
//! passed to the host as `BuildEvent::Output`, whole lines at a time.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{BuildEvent, Host, RunEnv};
use crate::container::{self, ContainerError, ContainerRecord, Ended, Supervision, Watch};
use crate::linux::process;
use crate::linux::userns::IdMapping;
use crate::sandbox::{Started, Stdio};
use crate::store::Store;

/// Output held back for the rest of its line, up to this much.
const MAX_PENDING: usize = 64 * 1024;

/// Start `rec` and wait for it, its output sent to `host` (read and dropped
/// when `quiet`). Returns PID 1's exit code.
pub fn run(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    env: &RunEnv,
    quiet: bool,
    host: &mut dyn Host,
) -> container::Result<i32> {
    let (reader, out) = process::pipe().map_err(ContainerError::OutputPipe)?;
    let err = out.try_clone().map_err(ContainerError::OutputPipeCopy)?;
    // Stdin is this process's, which a build made /dev/null.
    let how = Supervision {
        rootfs: env.rootfs,
        scopes: env.scopes,
        stdio: Stdio::Pipes([0, out.as_raw_fd(), err.as_raw_fd()]),
        list_running: !rec.host_config.auto_remove,
        net: crate::network::Access {
            helper_path: env.helper_path.clone(),
            keeper: None,
        },
    };
    let mut forward = Forward {
        writers: Some((out, err)),
        reader,
        pending: Vec::new(),
        quiet,
        host,
    };
    container::supervise(store, rec, mapping, how, &mut forward)
}

struct Forward<'a> {
    /// PID 1's ends, until it has them.
    writers: Option<(OwnedFd, OwnedFd)>,
    reader: OwnedFd,
    /// The start of a line not yet ended.
    pending: Vec<u8>,
    /// Read and dropped.
    quiet: bool,
    host: &'a mut dyn Host,
}

impl Forward<'_> {
    /// Read one chunk: false at the end (or, non-blocking, when empty).
    fn pump(&mut self, buf: &mut [u8]) -> bool {
        match nix::unistd::read(self.reader.as_fd(), buf) {
            Ok(n) if n > 0 => {
                self.pending.extend_from_slice(&buf[..n]);
                let cut = match self.pending.iter().rposition(|b| *b == b'\n') {
                    Some(i) => i + 1,
                    None if self.pending.len() >= MAX_PENDING => self.pending.len(),
                    None => return true,
                };
                let text: Vec<u8> = self.pending.drain(..cut).collect();
                self.send(&text);
                true
            }
            Err(nix::Error::EINTR) => true,
            _ => false,
        }
    }

    fn send(&mut self, text: &[u8]) {
        if !text.is_empty() && !self.quiet {
            let text = String::from_utf8_lossy(text).into_owned();
            self.host.event(BuildEvent::Output(text));
        }
    }
}

impl Watch for Forward<'_> {
    /// PID 1 holds the write ends now: drop ours so its end is our EOF.
    fn started(&mut self, _started: &Started) -> Result<(), crate::sandbox::Failure> {
        self.writers = None;
        Ok(())
    }

    fn wait(&mut self, mut started: Started, _rec: &ContainerRecord) -> Ended {
        let mut buf = vec![0u8; 16 * 1024];
        let mut open = true;
        let code = loop {
            let mut fds = vec![PollFd::new(started.report_fd(), PollFlags::POLLIN)];
            if open {
                fds.push(PollFd::new(self.reader.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(_) => break started.wait_relaying_signals(),
            }
            let ready = process::ready(&fds);
            drop(fds);
            let report = ready[0];
            let output = ready.get(1) == Some(&true);
            // Output first, so nothing written before the exit is lost.
            if output {
                open = self.pump(&mut buf);
            }
            if report {
                if let Some(code) = started.read_report() {
                    break code;
                }
            }
        };
        // PID 1 is gone, and with it every process of its pid namespace:
        // what is left in the pipe ends.
        if open {
            let _ = nix::fcntl::fcntl(
                &self.reader,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while self.pump(&mut buf) {}
        }
        let rest = std::mem::take(&mut self.pending);
        self.send(&rest);
        Ended {
            code,
            error: None,
            problems: Vec::new(),
        }
    }
}
