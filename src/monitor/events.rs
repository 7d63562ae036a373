//! The monitor's event loop while a container runs: one poll over the
//! container's output, the attach socket and its clients, the published
//! ports, the health probes and the exit report, with `--timeout` and the
//! health stop's deadline as timers (`ending.rs` says when they strike).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::health::{OnFailure, ProbeFd};
use crate::container::{lifecycle, ContainerRecord, Ended, Watch};
use crate::exit;
use crate::network::forward;
use crate::sandbox::{Failure, Started, Step};

use super::ending::{self, Deadlines};
use super::io::{broadcast, Client, ParentIo};
use super::{attach, health, log, Monitor};

/// What the event loop waits on, one per poll entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// The container's output (stdout, stderr or the pty), by index. First,
    /// so nothing written before the exit is lost.
    Output(usize),
    /// An attach client's frames (stdin, resize, end of stdin).
    Client(usize),
    /// A published port's listener or connection.
    Forward(forward::Key),
    /// A new attach client.
    Listener,
    /// The sandbox's report channel: the exit.
    Report,
    /// A health probe's report or output.
    Probe(ProbeFd),
}

impl Monitor {
    /// Wait for the exit, copying output to the log and the clients,
    /// clients' input to the container, and enforcing `--timeout`.
    /// Returns the exit code and whether the deadline struck.
    fn event_loop(
        &mut self,
        started: &mut Started,
        io: &mut ParentIo,
        rec: &ContainerRecord,
    ) -> (i32, bool) {
        self.deadlines = Deadlines::starting(self.timeout, Instant::now());
        let mut buf = vec![0u8; 64 * 1024];
        let mut outputs = io.outputs();
        crate::linux::process::trim_heap();
        loop {
            if self.deadlines.strike(Instant::now()) {
                let _ = nix::sys::signal::kill(started.pid1, nix::sys::signal::Signal::SIGKILL);
            }
            // The nearest timer: --timeout, a probe due or overdue, a stop's
            // deadline. Rounded up, so it never wakes just before it.
            let probe = self.prober.as_ref().and_then(health::Prober::wake_at);
            let wake = self.deadlines.wake(probe);
            let timeout = poll_timeout(wake, Instant::now());
            let (sources, mut fds) = self.interest(started, &outputs);
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => return (exit::BURROW, self.deadlines.timed_out),
            }
            let ready = ready(sources, &fds);
            drop(fds);
            for source in ready {
                if let Some(code) = self.serve(source, started, io, &mut outputs, &mut buf) {
                    self.drain(&mut outputs, &mut buf);
                    return (code, self.deadlines.timed_out);
                }
            }
            let action = match &mut self.prober {
                Some(p) => p.tick(&self.store, rec),
                None => None,
            };
            if let Some(a) = action {
                self.on_unhealthy(a, started, rec);
            }
            self.clients.retain(|c| c.alive);
            if let Some(f) = &mut self.forwarder {
                f.sweep();
            }
        }
    }

    /// The poll set: each source to wait on with its descriptor.
    fn interest<'a>(
        &'a self,
        started: &'a Started,
        outputs: &'a [(u8, Option<OwnedFd>)],
    ) -> (Vec<Source>, Vec<PollFd<'a>>) {
        let mut sources = vec![Source::Report, Source::Listener];
        let mut fds = vec![
            PollFd::new(started.report_fd(), PollFlags::POLLIN),
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
        ];
        for (i, (_, fd)) in outputs.iter().enumerate() {
            if let Some(fd) = fd {
                sources.push(Source::Output(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            sources.push(Source::Client(i));
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
        }
        if let Some(f) = &self.forwarder {
            for (key, fd, flags) in f.interest() {
                sources.push(Source::Forward(key));
                fds.push(PollFd::new(fd, flags));
            }
        }
        if let Some(p) = &self.prober {
            for (which, fd) in p.fds() {
                sources.push(Source::Probe(which));
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
        }
        (sources, fds)
    }

    /// Serve one ready source; the exit code once the report says the
    /// container has ended.
    fn serve(
        &mut self,
        source: Source,
        started: &mut Started,
        io: &mut ParentIo,
        outputs: &mut [(u8, Option<OwnedFd>)],
        buf: &mut [u8],
    ) -> Option<i32> {
        match source {
            Source::Output(i) => {
                let (stream, fd) = &mut outputs[i];
                let Some(f) = fd else { return None };
                match nix::unistd::read(f.as_fd(), buf) {
                    Ok(n) if n > 0 => self.output(*stream, &buf[..n]),
                    // EOF (or EIO on a pty whose slave is gone).
                    _ => *fd = None,
                }
            }
            Source::Client(i) => self.clients[i].read_input(io),
            Source::Forward(key) => {
                if let Some(f) = &mut self.forwarder {
                    f.ready(key);
                }
            }
            Source::Listener => {
                while let Ok((s, _)) = self.listener.accept() {
                    let _ = s.set_nonblocking(false);
                    self.clients.push(Client::new(s));
                }
            }
            Source::Report => {
                return started.read_report();
            }
            Source::Probe(which) => {
                if let Some(p) = &mut self.prober {
                    p.readable(which);
                }
            }
        }
        None
    }

    /// `--health-on-failure`: kill it, or stop it (the stop signal, SIGKILL
    /// after Docker's ten seconds), and for `restart` start it again once
    /// it has ended.
    fn on_unhealthy(&mut self, action: OnFailure, started: &Started, rec: &ContainerRecord) {
        tracing::info!("container {} is unhealthy: {action:?}", rec.name);
        let Some(r) = ending::respond(action, lifecycle::stop_signal(rec)) else {
            return;
        };
        let _ = nix::sys::signal::kill(started.pid1, r.signal);
        if let Some(after) = r.kill_after {
            self.deadlines.kill_at = Some(Instant::now() + after);
            self.health_restart = r.restart;
        }
    }

    /// What the container wrote before it ended, still in the pipes.
    fn drain(&mut self, outputs: &mut [(u8, Option<OwnedFd>)], buf: &mut [u8]) {
        for (stream, fd) in outputs.iter_mut() {
            if let Some(f) = fd.take() {
                let _ = nix::fcntl::fcntl(
                    &f,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                while let Ok(n) = nix::unistd::read(f.as_fd(), buf) {
                    if n == 0 {
                        break;
                    }
                    self.output(*stream, &buf[..n]);
                }
            }
        }
        if let Some(Err(e)) = self.log.as_mut().map(log::Writer::flush) {
            self.log_failed.get_or_insert_with(|| log::write_failed(&e));
        }
    }

    fn output(&mut self, stream: u8, data: &[u8]) {
        if let Some(Err(e)) = self.log.as_mut().map(|l| l.write(stream, data)) {
            self.log_failed.get_or_insert_with(|| log::write_failed(&e));
        }
        broadcast(&mut self.clients, stream, data);
    }
}

/// The sources `poll` found ready, in `Source` order (the container's
/// output before its exit), each once.
fn ready(sources: Vec<Source>, fds: &[PollFd]) -> Vec<Source> {
    let mut ready: Vec<Source> = sources
        .into_iter()
        .zip(fds)
        .filter(|(_, f)| {
            f.revents().is_some_and(|r| {
                r.intersects(
                    PollFlags::POLLIN
                        | PollFlags::POLLOUT
                        | PollFlags::POLLHUP
                        | PollFlags::POLLERR,
                )
            })
        })
        .map(|(s, _)| s)
        .collect();
    ready.sort();
    // A connection polled on both of its sockets is pumped once.
    ready.dedup();
    ready
}

/// How long `poll` may sleep before the timer at `wake`: rounded up, so it
/// never wakes just before it, and a minute at most; with no timer, until
/// something happens.
fn poll_timeout(wake: Option<Instant>, now: Instant) -> PollTimeout {
    match wake {
        Some(d) => {
            let left = d.saturating_duration_since(now);
            let ms = left.as_micros().div_ceil(1000).min(60_000) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE)
        }
        None => PollTimeout::NONE,
    }
}

impl Watch for Monitor {
    /// With `-t`, receive the pty master PID 1 sent before it exec'd; with
    /// published ports, open the namespaces the forwarder dials into.
    fn started(&mut self, started: &Started) -> Result<(), Failure> {
        if let Some(f) = &mut self.forwarder {
            // Through the inner process, which outlives PID 1 and whose
            // pid cannot be reused under us (see `Forwarder::attach`).
            // On the keeper's network, the container's bridge address is
            // dialed from there, from the client's own address where the
            // keeper allows it.
            let bridged = started.bridge.as_ref().map(|b| {
                let keeper = crate::network::keeper::dir(self.store.paths.runtime_base());
                crate::network::forward::Bridged {
                    namespaces: b.namespaces.clone(),
                    address: b.address,
                    transparent: keeper.join(crate::network::keeper::TRANSPARENT).exists(),
                }
            });
            f.attach(started.inner.as_raw(), bridged)
                .map_err(|e| Failure::new(Step::Network, e.to_string(), exit::BURROW))?;
        }
        let io = self
            .io
            .take()
            .expect("the container's stdio is handed over once");
        let parent = io.parent_side().map_err(|e| {
            Failure::new(
                Step::Terminal,
                format!("receiving the container's pty: {e}"),
                exit::BURROW,
            )
        })?;
        self.parent = Some(parent);
        Ok(())
    }

    fn wait(&mut self, mut started: Started, rec: &ContainerRecord) -> Ended {
        if let Some(mut s) = self.status.take() {
            s.tell(super::launch::Status::Pid(started.pid1.as_raw()));
        }
        let mut io = self.parent.take().expect("started hands over our stdio");
        self.prober = health::Prober::new(&self.store, rec, self.single_id);
        let (code, timed_out) = self.event_loop(&mut started, &mut io, rec);
        // A probe still running dies with this run.
        self.prober = None;
        // The published ports are free before the exit is recorded.
        self.forwarder = None;
        broadcast(&mut self.clients, attach::EXIT, &code.to_be_bytes());
        Ended {
            code,
            problems: self.log_failed.take().into_iter().collect(),
            error: timed_out.then(|| {
                format!(
                    "killed after --timeout {}s",
                    rec.host_config.timeout.unwrap_or(0)
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::process;
    use std::time::Duration;

    #[test]
    fn output_is_served_before_the_exit_and_each_source_once() {
        let (quiet_r, _quiet_w) = process::pipe().unwrap();
        let (out_r, out_w) = process::pipe().unwrap();
        let (report_r, report_w) = process::pipe().unwrap();
        nix::unistd::write(&out_w, b"x").unwrap();
        nix::unistd::write(&report_w, b"0").unwrap();
        let sources = vec![
            Source::Report,
            Source::Client(0),
            Source::Output(1),
            Source::Output(1),
        ];
        let mut fds = vec![
            PollFd::new(report_r.as_fd(), PollFlags::POLLIN),
            PollFd::new(quiet_r.as_fd(), PollFlags::POLLIN),
            PollFd::new(out_r.as_fd(), PollFlags::POLLIN),
            PollFd::new(out_r.as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::ZERO).unwrap();
        assert_eq!(
            ready(sources, &fds),
            [Source::Output(1), Source::Report],
            "the quiet client is left out"
        );
    }

    #[test]
    fn poll_sleeps_until_the_nearest_timer_rounded_up_and_a_minute_at_most() {
        let now = Instant::now();
        let ms = |n: i32| PollTimeout::try_from(n).unwrap();
        assert_eq!(poll_timeout(None, now), PollTimeout::NONE);
        assert_eq!(poll_timeout(Some(now), now), ms(0));
        assert_eq!(
            poll_timeout(Some(now - Duration::from_secs(1)), now),
            ms(0),
            "overdue"
        );
        assert_eq!(
            poll_timeout(Some(now + Duration::from_micros(1500)), now),
            ms(2)
        );
        assert_eq!(
            poll_timeout(Some(now + Duration::from_secs(3600)), now),
            ms(60_000)
        );
    }
}
