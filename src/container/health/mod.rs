//! A container's health check: its schedule (the configured HEALTHCHECK
//! with Docker's defaults), the action on failure, and a result recorded
//! with its event. The stored state is `state.rs` (which the record reads
//! without knowing probes), the probes themselves `probe.rs`.

mod probe;
pub mod state;

use std::time::{Duration, SystemTime};

pub use probe::{probe_now, Prepared, Probe, ProbeFd, MAX_OUTPUT};
pub use state::{load, reset, Health, ProbeResult, Recorder, HEALTHY, STARTING, UNHEALTHY};

use super::ContainerRecord;
use crate::store::Store;

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
    pub fn parse(s: &str) -> Result<Self, BadOnFailure> {
        match s {
            "" | "none" => Ok(OnFailure::None),
            "kill" => Ok(OnFailure::Kill),
            "restart" => Ok(OnFailure::Restart),
            "stop" => Ok(OnFailure::Stop),
            other => Err(BadOnFailure(other.to_string())),
        }
    }

    pub fn of(rec: &ContainerRecord) -> Self {
        Self::parse(&rec.config.health_on_failure).unwrap_or(OnFailure::None)
    }
}

/// A `--health-on-failure` that names no action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --health-on-failure {0:?}: none, kill, restart or stop")]
pub struct BadOnFailure(pub String);

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
        let hc = rec
            .config
            .healthcheck
            .as_ref()
            .filter(|hc| state::probes(hc))?;
        // `probes` let through `CMD` with a command, or `CMD-SHELL`.
        let argv = if hc.test[0] == "CMD" {
            hc.test[1..].to_vec()
        } else {
            let mut v = rec
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            v.extend(hc.test[1..].iter().cloned());
            v
        };
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

impl Recorder {
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
        let (status, changed) = self.add(result, in_start_period, retries);
        if changed {
            super::events::record(store, rec, &format!("health_status: {status}"), &[]);
        }
        (status, changed)
    }
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
