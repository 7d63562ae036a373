//! A container's health check: its schedule (the configured HEALTHCHECK
//! with Docker's defaults), one probe run as an exec in the container with
//! its output captured (the exec built once, started for each probe), and the state `inspect` shows as `State.Health`,
//! kept in `health.json` beside the record (replaced whole, under
//! `health.lock`, by whichever process probed) and updated by Docker's
//! rules for each result.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::exec::exec_error;
use super::{ContainerRecord, ExecOptions, Status};
use crate::linux::process;
use crate::sandbox::exec::{self as sandbox_exec, ExecSpec, Report, Resident};
use crate::store::Store;
use crate::util::human;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

const HEALTH_FILE: &str = "health.json";
const LOCK_FILE: &str = "health.lock";
/// Docker keeps the last five results.
const MAX_LOG: usize = 5;
/// Docker keeps the first 4096 bytes of a probe's output.
pub const MAX_OUTPUT: usize = 4096;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

/// What the monitor does when the container becomes unhealthy (podman's
/// `--health-on-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    None,
    Kill,
    Restart,
    Stop,
}

impl OnFailure {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "none" => Ok(OnFailure::None),
            "kill" => Ok(OnFailure::Kill),
            "restart" => Ok(OnFailure::Restart),
            "stop" => Ok(OnFailure::Stop),
            other => Err(format!(
                "invalid --health-on-failure {other:?}: none, kill, restart or stop"
            )),
        }
    }

    pub fn of(rec: &ContainerRecord) -> Self {
        Self::parse(&rec.config.health_on_failure).unwrap_or(OnFailure::None)
    }
}

/// When and how a container is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The probe's command: `CMD`'s arguments, or the shell and `CMD-SHELL`'s.
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

impl Schedule {
    /// The container's probe, if it has one (`NONE` and no test: none).
    pub fn of(rec: &ContainerRecord) -> Option<Schedule> {
        let hc = rec.config.healthcheck.as_ref()?;
        let argv = match hc.test.first().map(String::as_str) {
            Some("CMD") => hc.test[1..].to_vec(),
            Some("CMD-SHELL") => {
                let mut v = rec
                    .config
                    .shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                v.extend(hc.test[1..].iter().cloned());
                v
            }
            _ => return None,
        };
        if argv.is_empty() {
            return None;
        }
        let or = |ns: i64, default: Duration| {
            if ns > 0 {
                Duration::from_nanos(ns as u64)
            } else {
                default
            }
        };
        Some(Schedule {
            argv,
            interval: or(hc.interval, DEFAULT_INTERVAL),
            timeout: or(hc.timeout, DEFAULT_TIMEOUT),
            start_period: or(hc.start_period, Duration::ZERO),
            start_interval: or(hc.start_interval, DEFAULT_START_INTERVAL),
            retries: if hc.retries > 0 {
                hc.retries.min(u32::MAX as i64) as u32
            } else {
                DEFAULT_RETRIES
            },
        })
    }

    /// The wait before the next probe, `since_start` after the container
    /// started: the start interval while it is still starting within its
    /// start period, else the interval.
    pub fn next_wait(&self, since_start: Duration, status: &str) -> Duration {
        if since_start < self.start_period && status == STARTING {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// `State.Health`, as Docker writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    /// Oldest first.
    pub log: Vec<ProbeResult>,
}

/// One probe's result (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl ProbeResult {
    /// A probe that could not run, or ran past its timeout.
    pub fn failed(start: SystemTime, output: String) -> Self {
        ProbeResult {
            start: rfc3339(start),
            end: human::now_rfc3339(),
            exit_code: -1,
            output,
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

impl Health {
    /// Docker's words after `Up 5 seconds` in `ps`.
    pub fn ps_text(&self) -> String {
        if self.status == STARTING {
            "health: starting".into()
        } else {
            self.status.clone()
        }
    }

    /// Docker's rules for one result: success is `healthy` and no streak;
    /// a failure counts unless the container is still starting within its
    /// start period, and `retries` in a row make it `unhealthy`.
    fn add(&mut self, result: ProbeResult, in_start_period: bool, retries: u32) {
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            let extra = self.log.len() - MAX_LOG;
            self.log.drain(..extra);
        }
        let passed = self.log.last().is_some_and(|r| r.exit_code == 0);
        if passed {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
    }
}

/// The stored state of container `id`, if it has been started with a
/// health check. Read under a shared lock: the writer rewrites the file in
/// place under the exclusive one.
pub fn load(store: &Store, id: &str) -> Option<Health> {
    let dir = store.container_dir(id);
    let _lock = std::fs::File::open(dir.join(LOCK_FILE))
        .ok()
        .and_then(|f| Flock::lock(f, FlockArg::LockShared).ok());
    read(&dir)
}

fn read(dir: &std::path::Path) -> Option<Health> {
    let bytes = std::fs::read(dir.join(HEALTH_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A new run of the container: `starting`, no failing streak, the log kept
/// (Docker's reset at each start).
pub fn reset(store: &Store, id: &str) {
    Recorder::new(store, id).reset();
}

/// Record `result` in the stored state (see [`Recorder::record`]).
pub fn record(
    store: &Store,
    rec: &ContainerRecord,
    result: ProbeResult,
    in_start_period: bool,
    retries: u32,
) -> (String, bool) {
    Recorder::new(store, &rec.id).record(store, rec, result, in_start_period, retries)
}

/// The stored state as its writer keeps it: `health.lock` and
/// `health.json` open, and the bytes it wrote last with the state they
/// say. A record is then the lock, one read that finds the file as we left
/// it, one write and the unlock, with nothing parsed; a file someone else
/// wrote meanwhile (a `healthcheck run`) reads differently and is parsed.
///
/// The file is rewritten in place: one write of the whole state, padded
/// with blanks (JSON's own whitespace) to the length it had, so it never
/// needs truncating. A new file and a rename for each probe would cost the
/// file system a new inode, a flush of its data and the old inode's blocks
/// freed, several times what the probe itself costs.
pub struct Recorder {
    dir: PathBuf,
    /// The lock file and the state's file, once opened.
    files: Option<(std::fs::File, std::fs::File)>,
    /// What we wrote last (padding included), and the state it says.
    written: Vec<u8>,
    state: Option<Health>,
}

impl Recorder {
    pub fn new(store: &Store, id: &str) -> Recorder {
        Recorder {
            dir: store.container_dir(id),
            files: None,
            written: Vec::new(),
            state: None,
        }
    }

    /// A new run of the container: `starting`, no failing streak, the log
    /// kept (Docker's reset at each start).
    pub fn reset(&mut self) {
        self.update(|h| {
            h.status = STARTING.into();
            h.failing_streak = 0;
        });
    }

    /// Record `result` by Docker's rules and journal a change of status as
    /// Docker's `health_status: STATUS` event. Returns the status after
    /// it, and whether it changed.
    pub fn record(
        &mut self,
        store: &Store,
        rec: &ContainerRecord,
        result: ProbeResult,
        in_start_period: bool,
        retries: u32,
    ) -> (String, bool) {
        let mut before = String::new();
        let status = self.update(|h| {
            before.clone_from(&h.status);
            h.add(result, in_start_period, retries);
        });
        let changed = status != before;
        if changed {
            super::events::record(store, rec, &format!("health_status: {status}"), &[]);
        }
        (status, changed)
    }

    /// Read, change and write the state with the exclusive lock held (a
    /// monitor and a `healthcheck run` may record at the same time, and
    /// readers take it shared); the status after.
    fn update(&mut self, change: impl FnOnce(&mut Health)) -> String {
        let Some((lock, file)) = self.files.take().or_else(|| self.open()) else {
            // Removed meanwhile: nothing to write into.
            let mut h = self.state.take().unwrap_or_else(starting);
            change(&mut h);
            let status = h.status.clone();
            self.state = Some(h);
            return status;
        };
        let guard = Flock::lock(lock, FlockArg::LockExclusive);
        let (mut h, len) = self.current(&file);
        change(&mut h);
        if let Err(e) = self.save(&file, &h, len) {
            self.written.clear();
            tracing::warn!("recording the health in {}: {e}", self.dir.display());
        }
        let status = h.status.clone();
        self.state = Some(h);
        // Unlocked, the lock file is kept for the next record; one that
        // will not unlock is closed, which unlocks it.
        let lock = match guard {
            Ok(g) => g.unlock().ok(),
            Err((f, _)) => Some(f),
        };
        if let Some(lock) = lock {
            self.files = Some((lock, file));
        }
        status
    }

    fn open(&mut self) -> Option<(std::fs::File, std::fs::File)> {
        let open = |name: &str| {
            std::fs::File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.dir.join(name))
        };
        match open(LOCK_FILE).and_then(|l| Ok((l, open(HEALTH_FILE)?))) {
            Ok(files) => {
                self.written.clear();
                Some(files)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!("recording the health in {}: {e}", self.dir.display());
                None
            }
        }
    }

    /// The stored state and the file's length: ours, when it still holds
    /// exactly what we wrote (read one byte past it, to see that it did not
    /// grow); else what it says (starting, if nothing).
    fn current(&mut self, file: &std::fs::File) -> (Health, usize) {
        use std::os::unix::fs::FileExt;
        if let Some(h) = self.state.take().filter(|_| !self.written.is_empty()) {
            let mut buf = vec![0u8; self.written.len() + 1];
            if file.read_at(&mut buf, 0).ok() == Some(self.written.len())
                && buf[..self.written.len()] == self.written[..]
            {
                return (h, self.written.len());
            }
        }
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = file.read_at(&mut buf, bytes.len() as u64) {
            bytes.extend_from_slice(&buf[..n]);
        }
        let h = serde_json::from_slice(&bytes).unwrap_or_else(|_| starting());
        (h, bytes.len())
    }

    /// One write of the whole state at the start of the file, padded to
    /// `len`, the length it had.
    fn save(&mut self, file: &std::fs::File, h: &Health, len: usize) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.written.clear();
        serde_json::to_writer(&mut self.written, h).expect("health serializes");
        if let Some(pad) = len.checked_sub(self.written.len()) {
            self.written.resize(self.written.len() + pad, b' ');
        }
        file.write_all_at(&self.written, 0)
    }
}

/// The state before any result.
fn starting() -> Health {
    Health {
        status: STARTING.into(),
        ..Default::default()
    }
}

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
    ) -> super::Result<Prepared> {
        let opts = ExecOptions {
            argv: sched.argv.clone(),
            single_id,
            // The probe's own pipe replaces it each time.
            output: Some(1),
            ..Default::default()
        };
        let spec = super::exec::exec_spec(store, rec, opts)?;
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

/// One probe in flight: the command started in the container by the
/// resident joiner, its output and the joiner's reports read from the
/// caller's poll loop, so the caller never waits on it.
pub struct Probe {
    /// Lent by the `Prepared` for the probe, given back when it ends.
    resident: Option<Resident>,
    /// The command, once read from the joiner (see `Resident::started`).
    pid: Option<Pid>,
    /// Its exit code, or why it did not run.
    outcome: Option<Result<i32, String>>,
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
                Report::Failed(e) => self.outcome = Some(Err(e.to_string())),
                Report::Gone => {
                    // Killed with the container, or at the deadline before
                    // the command was forked: a new joiner next time.
                    self.resident = None;
                    self.outcome = Some(Err("the container is not running".into()));
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
                self.outcome.get_or_insert(Err("killed".into()));
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
        let (exit_code, mut output) = match self.outcome.clone() {
            Some(Ok(code)) => (code, String::from_utf8_lossy(&self.out).into_owned()),
            Some(Err(why)) => (-1, why),
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
        let ready: Vec<ProbeFd> = which
            .into_iter()
            .zip(&fds)
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(w, _)| w)
            .collect();
        drop(fds);
        for w in ready {
            p.readable(w);
        }
    }
    p.finish(&mut prepared)
}

/// Whether a probe that starts `since_start` after the container started
/// falls in its start period.
pub fn in_start_period(sched: &Schedule, since_start: Duration) -> bool {
    since_start < sched.start_period
}

/// How long ago `rec`'s current run started, by its record.
pub fn since_started(rec: &ContainerRecord) -> Duration {
    humantime::parse_rfc3339_weak(&rec.state.started_at)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> ProbeResult {
        ProbeResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn docker_rules_for_results() {
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        // Failures in the start period do not count while starting.
        h.add(result(1), true, 2);
        h.add(result(1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        h.add(result(1), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        h.add(result(0), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Once healthy, the start period no longer shields a failure.
        h.add(result(1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        h.add(result(-1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert_eq!(h.log.len(), MAX_LOG);
        assert_eq!(h.ps_text(), "unhealthy");
    }

    #[test]
    fn a_recorder_rereads_what_another_wrote_and_keeps_the_file_whole() {
        let (_d, store) = crate::store::temp_store();
        let id = "ab".repeat(32);
        std::fs::create_dir_all(store.container_dir(&id)).unwrap();
        let mut monitor = Recorder::new(&store, &id);
        monitor.reset();
        monitor.update(|h| h.add(result(0), false, 3));
        monitor.update(|h| h.add(result(0), false, 3));
        assert_eq!(load(&store, &id).unwrap().log.len(), 2);
        // A `healthcheck run` records in between.
        let mut other = Recorder::new(&store, &id);
        assert_eq!(other.update(|h| h.add(result(1), false, 1)), UNHEALTHY);
        // The monitor's next record builds on it, not on what it wrote.
        assert_eq!(monitor.update(|h| h.add(result(1), false, 3)), UNHEALTHY);
        let h = load(&store, &id).unwrap();
        assert_eq!((h.log.len(), h.failing_streak), (4, 2));
        // A shorter state is padded to the file's length, and reads back.
        let path = store.container_dir(&id).join(HEALTH_FILE);
        let before = std::fs::metadata(&path).unwrap().len();
        other.reset();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        assert_eq!(load(&store, &id).unwrap().status, STARTING);
        assert_eq!(monitor.update(|h| h.add(result(0), false, 3)), HEALTHY);
        assert_eq!(load(&store, &id).unwrap().log.len(), 5);
    }

    #[test]
    fn the_next_probe_waits_the_start_interval_only_while_starting() {
        let s = Schedule {
            argv: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: DEFAULT_TIMEOUT,
            start_period: Duration::from_secs(10),
            start_interval: Duration::from_secs(1),
            retries: 3,
        };
        assert_eq!(
            s.next_wait(Duration::from_secs(2), STARTING),
            Duration::from_secs(1)
        );
        assert_eq!(
            s.next_wait(Duration::from_secs(2), HEALTHY),
            Duration::from_secs(30)
        );
        assert_eq!(
            s.next_wait(Duration::from_secs(11), STARTING),
            Duration::from_secs(30)
        );
    }
}
