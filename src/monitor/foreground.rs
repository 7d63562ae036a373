//! A foreground `run` that keeps a log: the caller supervises the container
//! itself (no monitor process), gives PID 1 pipes for stdout and stderr, and
//! copies what arrives to its own stdout and stderr and to the json-file log,
//! relaying signals as the plain foreground `run` does. A `--rm` container or
//! one with `--log-driver none` skips this and writes straight to the
//! caller's stdio.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};

use super::log;
use crate::container::cgroup::SystemdScopes;
use crate::container::{self, ContainerError, ContainerRecord, Ended, Supervision, Watch};
use crate::linux::process;
use crate::linux::userns::IdMapping;
use crate::sandbox::{self, RootfsChoice, Started, Stdio};
use crate::store::Store;

/// Start `rec` and wait for it, its output copied to ours and to its log.
/// Returns PID 1's exit code.
pub fn run(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    rootfs: RootfsChoice,
    scopes: SystemdScopes,
    net: crate::network::Access,
) -> container::Result<i32> {
    if rec.is_up(store) {
        return Err(ContainerError::AlreadyRunning(rec.id.clone()));
    }
    let rotation = log::Rotation::of(&rec.host_config.log_config)?;
    let path: PathBuf = store.container_dir(&rec.id).join(container::LOG_FILE);
    let format = log::Format::of(&rec.host_config.log_config).unwrap_or(log::Format::JsonFile);
    let log = log::Writer::open(&path, rotation, format).map_err(|source| ContainerError::Log {
        what: "opening",
        path: Some(path.clone()),
        source,
    })?;
    let pipe = || {
        process::pipe().map_err(|e| ContainerError::Log {
            what: "a pipe for its output",
            path: None,
            source: e.into(),
        })
    };
    let mut copier = Copier {
        writers: vec![pipe()?, pipe()?],
        readers: Vec::new(),
        log,
        log_failed: None,
    };
    let how = Supervision {
        rootfs,
        scopes,
        stdio: copier.stdio(),
        list_running: true,
        net,
    };
    container::supervise(store, rec, mapping, how, &mut copier)
}

struct Copier {
    /// The pipes for PID 1's stdout and stderr until it has them.
    writers: Vec<(OwnedFd, OwnedFd)>,
    /// Our read ends, by stream (1 or 2); None once it has ended, or once
    /// our own output for it was closed.
    readers: Vec<(u8, Option<OwnedFd>)>,
    log: log::Writer,
    /// The first failed write of the log.
    log_failed: Option<String>,
}

impl Copier {
    /// Stdin stays the caller's (replaced by /dev/null without `-i`).
    fn stdio(&self) -> Stdio {
        Stdio::Pipes([
            0,
            self.writers[0].1.as_raw_fd(),
            self.writers[1].1.as_raw_fd(),
        ])
    }

    /// Copy one chunk from stream `i`: false at its end (or, when
    /// draining, once it is empty). When our own stdout or stderr is a
    /// closed pipe (`run ... | head`), the stream is closed on the
    /// container too, so its writer gets SIGPIPE, as it would writing to
    /// that pipe itself.
    fn pump(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let (stream, Some(fd)) = &self.readers[i] else {
            return false;
        };
        let stream = *stream;
        match nix::unistd::read(fd.as_fd(), buf) {
            Ok(n) if n > 0 => {
                let data = &buf[..n];
                let shown = if stream == 2 {
                    write_out(&mut std::io::stderr().lock(), data)
                } else {
                    write_out(&mut std::io::stdout().lock(), data)
                };
                if let Err(e) = self.log.write(stream, data) {
                    self.log_failed.get_or_insert_with(|| log::write_failed(&e));
                }
                if shown.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
                    self.readers[i].1 = None;
                    return false;
                }
                true
            }
            Err(nix::Error::EINTR) => true,
            _ => false,
        }
    }
}

fn write_out(w: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    w.write_all(data)?;
    w.flush()
}

impl Watch for Copier {
    /// PID 1 holds the write ends now: drop ours so its exit is our EOF.
    fn started(&mut self, _started: &Started) -> Result<(), sandbox::Failure> {
        for (stream, (r, _w)) in [1u8, 2].into_iter().zip(self.writers.drain(..)) {
            self.readers.push((stream, Some(r)));
        }
        Ok(())
    }

    fn wait(&mut self, mut started: Started, _rec: &ContainerRecord) -> Ended {
        let signals = sandbox::relay_signalfd();
        // A closed stdout is an EPIPE to handle (see `pump`), not the end of
        // the process that records the container's exit. Blocked, the
        // signal stays pending and is never delivered: this process ends
        // without unblocking it.
        let mut pipe = nix::sys::signal::SigSet::empty();
        pipe.add(Signal::SIGPIPE);
        let _ = pipe.thread_block();
        let mut buf = vec![0u8; 64 * 1024];
        let code = loop {
            let mut fds = vec![PollFd::new(started.report_fd(), PollFlags::POLLIN)];
            let mut which = Vec::new();
            for (i, (_, fd)) in self.readers.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    which.push(i);
                }
            }
            let signal_at = fds.len();
            if let Some(s) = &signals {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(_) => break started.wait_relaying_signals(),
            }
            let ready = process::ready(&fds);
            drop(fds);
            let report = ready[0];
            let outputs: Vec<usize> = which
                .iter()
                .zip(&ready[1..signal_at])
                .filter(|(_, r)| **r)
                .map(|(i, _)| *i)
                .collect();
            let signalled = signals.is_some() && ready[signal_at];
            // Output first, so nothing written before the exit is lost.
            for i in outputs {
                if !self.pump(i, &mut buf) {
                    self.readers[i].1 = None;
                }
            }
            if signalled {
                if let Some(Ok(Some(info))) = signals.as_ref().map(|s| s.read_signal()) {
                    if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                        let _ = kill(started.pid1, sig);
                    }
                }
            }
            if report {
                if let Some(code) = started.read_report() {
                    break code;
                }
            }
        };
        // What is still in the pipes: PID 1 is gone, and with it every
        // process of its pid namespace, so each pipe ends.
        for i in 0..self.readers.len() {
            if let Some(fd) = &self.readers[i].1 {
                let _ = nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                // Non-blocking: EAGAIN ends it too.
                while self.pump(i, &mut buf) {}
            }
        }
        if let Err(e) = self.log.flush() {
            self.log_failed.get_or_insert_with(|| log::write_failed(&e));
        }
        Ended {
            code,
            error: None,
            problems: self.log_failed.take().into_iter().collect(),
        }
    }
}
