//! A container's health probes: the exec of the health check's command
//! built once and started for each probe by a resident joiner, its output
//! captured and its end read from the caller's poll loop, past its timeout
//! killed; and one probe run now and waited for (`healthcheck run`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::state::{rfc3339, ProbeResult};
use super::Schedule;
use crate::container::exec::{exec_error, exec_spec};
use crate::container::{ContainerRecord, ExecOptions, Status};
use crate::linux::process;
use crate::sandbox::exec::{self as sandbox_exec, ExecError, ExecSpec, Report, Resident};
use crate::store::Store;
use crate::util::human;

/// Docker keeps the first 4096 bytes of a probe's output.
pub const MAX_OUTPUT: usize = 4096;

/// What a probe runs: the exec of the health check's command, built once
/// (environment, capabilities, the seccomp filter), and the resident
/// joiner that has entered the container once and forks it for each probe
/// (started at the first probe, again after one that died).
pub struct Prepared {
    spec: ExecSpec,
    cgroup: Option<PathBuf>,
    resident: Option<Resident>,
    /// The record file last read for `paused` (inode, mtime), and what it
    /// said.
    record_seen: Option<((u64, i64, i64), bool)>,
}

impl Prepared {
    pub fn new(
        store: &Store,
        rec: &ContainerRecord,
        sched: &Schedule,
        single_id: bool,
    ) -> crate::container::Result<Prepared> {
        let opts = ExecOptions {
            argv: sched.argv.clone(),
            single_id,
            // The probe's own pipe replaces it each time.
            output: Some(1),
            ..Default::default()
        };
        let spec = exec_spec(store, rec, opts)?;
        Ok(Prepared {
            cgroup: spec.cgroup.clone(),
            spec,
            resident: None,
            record_seen: None,
        })
    }

    /// A paused container would hold the command stopped: Docker refuses
    /// the exec, and the probe fails with that. Without a cgroup the record
    /// says so, read again only once it has been replaced (each save is a
    /// new file: a new inode).
    fn paused(&mut self, store: &Store, rec: &ContainerRecord) -> bool {
        use std::os::unix::fs::MetadataExt;
        if let Some(dir) = &self.cgroup {
            return std::fs::read_to_string(dir.join("cgroup.freeze"))
                .is_ok_and(|s| s.trim() == "1");
        }
        let file = std::fs::metadata(ContainerRecord::path(store, &rec.id))
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
        if let (Some(f), Some((seen, paused))) = (file, self.record_seen) {
            if f == seen {
                return paused;
            }
        }
        let paused = ContainerRecord::load(store, &rec.id)
            .is_ok_and(|r| r.live_status(store) == Status::Paused);
        self.record_seen = file.map(|f| (f, paused));
        paused
    }
}

/// Which of a running probe's descriptors is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeFd {
    /// The joiner's reports: the command's pid, then its exit.
    Report,
    /// The command's stdout and stderr.
    Output,
}

/// Why a probe's command has no exit code; its text is the result's
/// output.
#[derive(Debug, thiserror::Error)]
enum NoExit {
    /// The joiner could not start it.
    #[error(transparent)]
    Failed(ExecError),
    /// The joiner went (killed with the container, or at the deadline).
    #[error("the container is not running")]
    Gone,
    /// Killed at the deadline before the joiner forked it.
    #[error("killed")]
    Killed,
}

/// One probe in flight: the command started in the container by the
/// resident joiner, its output and the joiner's reports read from the
/// caller's poll loop, so the caller never waits on it.
pub struct Probe {
    /// Lent by the `Prepared` for the probe, given back when it ends.
    resident: Option<Resident>,
    /// The command, once read from the joiner (see `Resident::started`).
    pid: Option<Pid>,
    /// Its exit code, or why it did not run.
    outcome: Option<Result<i32, NoExit>>,
    output: Option<OwnedFd>,
    out: Vec<u8>,
    truncated: bool,
    start: SystemTime,
    /// When it started, on the monotonic clock.
    pub started: Instant,
    deadline: Instant,
    timeout: Duration,
    /// The result recorded when the deadline struck.
    expired: Option<ProbeResult>,
}

impl Probe {
    /// Start the prepared command in `rec`; one that cannot start is a
    /// failed result at once, with why as its output.
    pub fn start(
        store: &Store,
        rec: &ContainerRecord,
        prepared: &mut Prepared,
        timeout: Duration,
    ) -> Result<Probe, ProbeResult> {
        let start = SystemTime::now();
        let started = Instant::now();
        let failed = |why: String| ProbeResult::failed(start, why);
        if prepared.paused(store, rec) {
            return Err(failed(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        let (out_r, out_w) = process::pipe().map_err(|e| failed(format!("pipe: {e}")))?;
        // A joiner that died since (killed) takes no request: a new one.
        let kept = prepared
            .resident
            .take()
            .filter(|r| !r.spent())
            .and_then(|mut r| r.start(out_w.as_fd()).is_ok().then_some(r));
        let resident = match kept {
            Some(r) => r,
            None => {
                let mut r = sandbox_exec::resident(&prepared.spec)
                    .map_err(|e| failed(exec_error(rec, e).to_string()))?;
                r.start(out_w.as_fd())
                    .map_err(|e| failed(exec_error(rec, e).to_string()))?;
                r
            }
        };
        drop(out_w);
        let _ = nix::fcntl::fcntl(
            &out_r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Ok(Probe {
            resident: Some(resident),
            pid: None,
            outcome: None,
            output: Some(out_r),
            out: Vec::new(),
            truncated: false,
            start,
            started,
            deadline: started + timeout,
            timeout,
            expired: None,
        })
    }

    /// The descriptors to poll.
    pub fn fds(&self) -> Vec<(ProbeFd, BorrowedFd<'_>)> {
        let mut v = Vec::new();
        if let (Some(r), None) = (&self.resident, &self.outcome) {
            v.push((ProbeFd::Report, r.report_fd()));
        }
        if let Some(f) = &self.output {
            v.push((ProbeFd::Output, f.as_fd()));
        }
        v
    }

    /// Read what `which` has.
    pub fn readable(&mut self, which: ProbeFd) {
        match which {
            ProbeFd::Report => self.read_reports(),
            ProbeFd::Output => {
                let mut buf = [0u8; 4096];
                loop {
                    let Some(f) = &self.output else { return };
                    match nix::unistd::read(f.as_fd(), &mut buf) {
                        Ok(0) => self.output = None,
                        Ok(n) => self.keep_output(&buf[..n]),
                        Err(nix::Error::EINTR) => continue,
                        Err(nix::Error::EAGAIN) => return,
                        Err(_) => self.output = None,
                    }
                }
            }
        }
    }

    /// The joiner's reports, as many as have come.
    fn read_reports(&mut self) {
        while self.outcome.is_none() {
            let Some(r) = &mut self.resident else { return };
            match r.report() {
                Report::Exited(code) => {
                    // Its pid, which the joiner said before this, is off
                    // the socket before the next command's can come.
                    if self.pid.is_none() {
                        self.pid = r.started();
                    }
                    self.outcome = Some(Ok(code));
                }
                Report::Failed(e) => self.outcome = Some(Err(NoExit::Failed(e))),
                Report::Gone => {
                    // Killed with the container, or at the deadline before
                    // the command was forked: a new joiner next time.
                    self.resident = None;
                    self.outcome = Some(Err(NoExit::Gone));
                }
            }
            if !self.resident.as_ref().is_some_and(Resident::reported) {
                return;
            }
        }
    }

    fn keep_output(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.out.len());
        self.out.extend_from_slice(&data[..data.len().min(room)]);
        if data.len() > room {
            self.truncated = true;
        }
    }

    /// When it must have ended; None once it has been killed.
    pub fn deadline(&self) -> Option<Instant> {
        self.expired.is_none().then_some(self.deadline)
    }

    /// Past its timeout: the result says so (Docker's words, with the
    /// configured timeout), and the probe is killed.
    pub fn expire(&mut self) {
        if self.expired.is_some() {
            return;
        }
        self.expired = Some(ProbeResult::failed(
            self.start,
            format!(
                "Health check exceeded timeout ({})",
                human::go_duration_string(self.timeout.as_nanos().min(i64::MAX as u128) as i64)
            ),
        ));
        self.kill();
    }

    /// The command is a session leader (every exec'd process is): its
    /// group takes what it started along. Not forked yet: the joiner goes.
    fn kill(&mut self) {
        if self.pid.is_none() {
            self.pid = self.resident.as_ref().and_then(Resident::started);
        }
        match self.pid {
            Some(pid) => {
                if killpg(pid, Signal::SIGKILL).is_err() {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
            None => {
                self.resident = None;
                self.outcome.get_or_insert(Err(NoExit::Killed));
            }
        }
    }

    /// The command has ended (or never started).
    pub fn done(&self) -> bool {
        self.outcome.is_some() || self.resident.is_none()
    }

    /// The result, once `done`; the joiner goes back to `prepared`.
    pub fn finish(mut self, prepared: &mut Prepared) -> ProbeResult {
        prepared.resident = self.resident.take();
        // What the command wrote before it ended; a process it left behind
        // holding the pipe is not waited for.
        self.readable(ProbeFd::Output);
        if let Some(r) = self.expired.take() {
            return r;
        }
        // Kept, so that dropping the probe kills nothing.
        let (exit_code, mut output) = match &self.outcome {
            Some(Ok(code)) => (*code, String::from_utf8_lossy(&self.out).into_owned()),
            Some(Err(why)) => (-1, why.to_string()),
            None => (-1, String::new()),
        };
        if self.truncated {
            output.push_str("...");
        }
        ProbeResult {
            start: rfc3339(self.start),
            end: human::now_rfc3339(),
            exit_code,
            output,
        }
    }
}

impl Drop for Probe {
    /// A probe abandoned (the container ended) is killed, its joiner with
    /// it.
    fn drop(&mut self) {
        if self.outcome.is_none() {
            self.kill();
        }
    }
}

/// Run one probe now and wait for it (`healthcheck run`): its result.
pub fn probe_now(
    store: &Store,
    rec: &ContainerRecord,
    sched: &Schedule,
    single_id: bool,
) -> ProbeResult {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let started = SystemTime::now();
    let mut prepared = match Prepared::new(store, rec, sched, single_id) {
        Ok(p) => p,
        Err(e) => return ProbeResult::failed(started, e.to_string()),
    };
    let mut p = match Probe::start(store, rec, &mut prepared, sched.timeout) {
        Ok(p) => p,
        Err(r) => return r,
    };
    while !p.done() {
        let now = Instant::now();
        if p.deadline().is_some_and(|d| now >= d) {
            p.expire();
        }
        let timeout = p.deadline().map_or(PollTimeout::NONE, |d| {
            let left = d.saturating_duration_since(now).as_millis().min(60_000) as i32;
            PollTimeout::try_from(left + 1).unwrap_or(PollTimeout::NONE)
        });
        let (which, mut fds): (Vec<ProbeFd>, Vec<PollFd>) = p
            .fds()
            .into_iter()
            .map(|(w, f)| (w, PollFd::new(f, PollFlags::POLLIN)))
            .unzip();
        if let Err(e) = poll(&mut fds, timeout) {
            if e != nix::Error::EINTR {
                break;
            }
        }
        let ready: Vec<ProbeFd> = crate::linux::process::ready_among(which, &fds);
        drop(fds);
        for w in ready {
            p.readable(w);
        }
    }
    p.finish(&mut prepared)
}
