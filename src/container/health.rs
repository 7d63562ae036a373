//! A container's health check: its schedule (the configured HEALTHCHECK
//! with Docker's defaults), one probe run as an exec in the container with
//! its output captured, and the state `inspect` shows as `State.Health`,
//! kept in `health.json` beside the record (replaced whole, under
//! `health.lock`, by whichever process probed) and updated by Docker's
//! rules for each result.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::{ContainerRecord, ExecOptions, Status};
use crate::linux::process;
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
    fn failed(start: SystemTime, output: String) -> Self {
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
/// health check.
pub fn load(store: &Store, id: &str) -> Option<Health> {
    let bytes = std::fs::read(store.container_dir(id).join(HEALTH_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save(store: &Store, id: &str, h: &Health) {
    let bytes = serde_json::to_vec(h).expect("health serializes");
    if let Err(e) = store.replace(&store.container_dir(id).join(HEALTH_FILE), &bytes, false) {
        tracing::warn!("recording the health of container {id}: {e}");
    }
}

/// Held while the state is read, changed and written: a monitor and a
/// `healthcheck run` may record at the same time.
fn lock(store: &Store, id: &str) -> Option<Flock<std::fs::File>> {
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store.container_dir(id).join(LOCK_FILE))
        .ok()?;
    Flock::lock(f, FlockArg::LockExclusive).ok()
}

/// A new run of the container: `starting`, no failing streak, the log kept
/// (Docker's reset at each start).
pub fn reset(store: &Store, id: &str) {
    let _lock = lock(store, id);
    let mut h = load(store, id).unwrap_or_default();
    h.status = STARTING.into();
    h.failing_streak = 0;
    save(store, id, &h);
}

/// Record `result` in the stored state and journal a change of status as
/// Docker's `health_status: STATUS` event. Returns the status after it, and
/// whether it changed.
pub fn record(
    store: &Store,
    rec: &ContainerRecord,
    result: ProbeResult,
    in_start_period: bool,
    retries: u32,
) -> (String, bool) {
    let (status, changed) = {
        let _lock = lock(store, &rec.id);
        let mut h = load(store, &rec.id).unwrap_or_else(|| Health {
            status: STARTING.into(),
            ..Default::default()
        });
        let before = h.status.clone();
        h.add(result, in_start_period, retries);
        // Removed meanwhile: nothing to write into.
        if store.container_dir(&rec.id).is_dir() {
            save(store, &rec.id, &h);
        }
        let changed = h.status != before;
        (h.status, changed)
    };
    if changed {
        super::events::record(store, rec, &format!("health_status: {status}"), &[]);
    }
    (status, changed)
}

/// Which of a running probe's descriptors is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeFd {
    /// The runner's one-line report.
    Report,
    /// The probe's stdout and stderr.
    Output,
}

/// One probe in flight: a runner process (forked, so the caller never
/// blocks on entering the container) execs the command in the container
/// through the one exec path and reports its exit code or why it could not
/// run; the caller reads the output and the report from its event loop.
pub struct Probe {
    runner: Option<Pid>,
    report: Option<OwnedFd>,
    output: Option<OwnedFd>,
    report_text: Vec<u8>,
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
    /// Start `sched`'s command in `rec`; a probe that cannot even be forked
    /// is a failed result at once.
    pub fn start(
        store: &Store,
        rec: &ContainerRecord,
        sched: &Schedule,
        single_id: bool,
    ) -> Result<Probe, ProbeResult> {
        let start = SystemTime::now();
        let started = Instant::now();
        let fail = |what: &str, e: nix::Error| ProbeResult::failed(start, format!("{what}: {e}"));
        let (out_r, out_w) = process::pipe().map_err(|e| fail("pipe", e))?;
        let (rep_r, rep_w) = process::pipe().map_err(|e| fail("pipe", e))?;
        let keep = [0, 1, 2, out_w.as_raw_fd(), rep_w.as_raw_fd()];
        let runner = process::fork_child(|| {
            // Nothing of the caller's (a monitor's pipes and sockets) stays
            // open in the probe's processes.
            process::close_fds_except(&keep);
            // Whoever waits for the probe (a monitor, `healthcheck run`)
            // takes it along when it dies.
            let _ = process::set_parent_death_signal(Signal::SIGKILL);
            run(store, rec, sched, single_id, out_w.as_raw_fd(), rep_w)
        })
        .map_err(|e| fail("fork", e.errno()))?;
        drop(out_w);
        let _ = nix::fcntl::fcntl(
            &out_r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Ok(Probe {
            runner: Some(runner),
            report: Some(rep_r),
            output: Some(out_r),
            report_text: Vec::new(),
            out: Vec::new(),
            truncated: false,
            start,
            started,
            deadline: started + sched.timeout,
            timeout: sched.timeout,
            expired: None,
        })
    }

    /// The descriptors to poll.
    pub fn fds(&self) -> Vec<(ProbeFd, BorrowedFd<'_>)> {
        let mut v = Vec::new();
        if let Some(f) = &self.report {
            v.push((ProbeFd::Report, f.as_fd()));
        }
        if let Some(f) = &self.output {
            v.push((ProbeFd::Output, f.as_fd()));
        }
        v
    }

    /// Read what `which` has.
    pub fn readable(&mut self, which: ProbeFd) {
        let mut buf = [0u8; 4096];
        match which {
            ProbeFd::Output => loop {
                let Some(f) = &self.output else { return };
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(0) => self.output = None,
                    Ok(n) => self.keep_output(&buf[..n]),
                    Err(nix::Error::EINTR) => continue,
                    Err(nix::Error::EAGAIN) => return,
                    Err(_) => self.output = None,
                }
            },
            ProbeFd::Report => {
                let Some(f) = &self.report else { return };
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(0) => self.report = None,
                    Ok(n) => self.report_text.extend_from_slice(&buf[..n]),
                    Err(nix::Error::EINTR) => {}
                    Err(_) => self.report = None,
                }
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

    fn kill(&mut self) {
        if let Some(p) = self.runner {
            // The runner's children die with it (parent-death signals):
            // the joiner, then the command.
            let _ = kill(p, Signal::SIGKILL);
        }
    }

    /// The runner has reported (or is gone).
    pub fn done(&self) -> bool {
        self.report.is_none()
    }

    /// The result, once `done`.
    pub fn finish(mut self) -> ProbeResult {
        if let Some(p) = self.runner.take() {
            let _ = process::wait_exit_code(p);
        }
        // What the command wrote before it ended; a process it left behind
        // holding the pipe is not waited for.
        self.readable(ProbeFd::Output);
        if let Some(r) = self.expired.take() {
            return r;
        }
        let text = String::from_utf8_lossy(&self.report_text).into_owned();
        if let Some(code) = text
            .strip_prefix("exit ")
            .and_then(|c| c.trim().parse().ok())
        {
            let mut output = String::from_utf8_lossy(&self.out).into_owned();
            if self.truncated {
                output.push_str("...");
            }
            return ProbeResult {
                start: rfc3339(self.start),
                end: human::now_rfc3339(),
                exit_code: code,
                output,
            };
        }
        let why = match text.strip_prefix("error ") {
            Some(e) => e.to_string(),
            None => "the health check ended without a result".into(),
        };
        ProbeResult::failed(self.start, why)
    }
}

impl Drop for Probe {
    /// A probe abandoned (the container ended) is killed and reaped.
    fn drop(&mut self) {
        if let Some(p) = self.runner.take() {
            let _ = kill(p, Signal::SIGKILL);
            let _ = process::wait_exit_code(p);
        }
    }
}

/// The runner: exec the probe in the container, wait for it, report one
/// line (`exit CODE` or `error WHY`). Returns its own exit code.
fn run(
    store: &Store,
    rec: &ContainerRecord,
    sched: &Schedule,
    single_id: bool,
    output: std::os::fd::RawFd,
    report: OwnedFd,
) -> i32 {
    let mut report = std::fs::File::from(report);
    // A paused container would hold the command stopped: Docker refuses
    // the exec, and the probe fails with that.
    let paused = ContainerRecord::load(store, &rec.id)
        .map(|r| r.live_status(store) == Status::Paused)
        .unwrap_or(false);
    let line = if paused {
        format!(
            "error Container {} is paused, unpause the container before exec",
            rec.id
        )
    } else {
        let opts = ExecOptions {
            argv: sched.argv.clone(),
            single_id,
            output: Some(output),
            ..Default::default()
        };
        match super::exec(store, rec, opts) {
            Ok(execd) => format!("exit {}", execd.wait_relaying_signals()),
            Err(e) => format!("error {e}"),
        }
    };
    let _ = report.write_all(line.as_bytes());
    0
}

/// Run one probe now and wait for it (`healthcheck run`): its result.
pub fn probe_now(
    store: &Store,
    rec: &ContainerRecord,
    sched: &Schedule,
    single_id: bool,
) -> ProbeResult {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut p = match Probe::start(store, rec, sched, single_id) {
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
    p.finish()
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
