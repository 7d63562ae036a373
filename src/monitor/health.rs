//! Health probes on a monitor's event loop: a timer for the next probe (an
//! instant the loop's poll timeout counts down to, so between probes the
//! monitor sleeps in poll and costs nothing), the running probe's
//! descriptors among the loop's sources, its deadline, and Docker's
//! schedule: the first probe one interval after the start (the start
//! interval while starting within the start period), the next one interval
//! after the previous ended.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::container::health::{self, OnFailure, Prepared, Probe, ProbeFd, Recorder, Schedule};
use crate::container::ContainerRecord;
use crate::store::Store;

pub struct Prober {
    sched: Schedule,
    on_failure: OnFailure,
    single_id: bool,
    /// The probe's exec, built at the first probe (and again after one
    /// that could not be built).
    prepared: Option<Prepared>,
    /// When this run of the container started.
    run_started: Instant,
    /// When the next probe starts (while none runs).
    next: Instant,
    probe: Option<Probe>,
    /// The stored state, kept open between probes.
    recorder: Recorder,
}

impl Prober {
    /// The prober of a container that has just started; None without a
    /// health check. Its supervisor reset the state to `starting` as it
    /// recorded the container running (a monitor's start always does), so
    /// the state is taken as it is: a `healthcheck run` since then counts.
    pub fn new(store: &Store, rec: &ContainerRecord, single_id: bool) -> Option<Prober> {
        let sched = Schedule::of(rec)?;
        // Its first record reads the state from the file, and builds on it.
        let recorder = Recorder::new(store, &rec.id);
        let now = Instant::now();
        Some(Prober {
            next: now + sched.next_wait(Duration::ZERO, health::STARTING),
            on_failure: OnFailure::of(rec),
            sched,
            single_id,
            prepared: None,
            run_started: now,
            probe: None,
            recorder,
        })
    }

    /// When the loop must wake up for us next.
    pub fn wake_at(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) => p.deadline(),
            None => Some(self.next),
        }
    }

    /// The running probe's descriptors.
    pub fn fds(&self) -> Vec<(ProbeFd, BorrowedFd<'_>)> {
        self.probe.as_ref().map(Probe::fds).unwrap_or_default()
    }

    pub fn readable(&mut self, which: ProbeFd) {
        if let Some(p) = &mut self.probe {
            p.readable(which);
        }
    }

    /// Whatever is due: a finished probe recorded, a late one killed, the
    /// next one started. Returns what to do to the container when it has
    /// just become unhealthy.
    pub fn tick(&mut self, store: &Store, rec: &ContainerRecord) -> Option<OnFailure> {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            if p.done() {
                let p = self.probe.take().expect("a probe runs");
                let began = p.started;
                let prepared = self.prepared.as_mut().expect("a probe runs prepared");
                let result = p.finish(prepared);
                return self.recorded(store, rec, began, result);
            }
            if p.deadline().is_some_and(|d| now >= d) {
                p.expire();
            }
            return None;
        }
        if now < self.next {
            return None;
        }
        let started = std::time::SystemTime::now();
        let prepared = match &mut self.prepared {
            Some(p) => p,
            None => match Prepared::new(store, rec, &self.sched, self.single_id) {
                Ok(p) => self.prepared.insert(p),
                Err(e) => {
                    let result = health::ProbeResult::failed(started, e.to_string());
                    return self.recorded(store, rec, now, result);
                }
            },
        };
        match Probe::start(store, rec, prepared, self.sched.timeout) {
            Ok(p) => {
                self.probe = Some(p);
                None
            }
            Err(result) => self.recorded(store, rec, now, result),
        }
    }

    fn recorded(
        &mut self,
        store: &Store,
        rec: &ContainerRecord,
        began: Instant,
        result: health::ProbeResult,
    ) -> Option<OnFailure> {
        let in_start = health::in_start_period(
            &self.sched,
            began.saturating_duration_since(self.run_started),
        );
        let (status, changed) =
            self.recorder
                .record(store, rec, result, in_start, self.sched.retries);
        let now = Instant::now();
        self.next = now
            + self
                .sched
                .next_wait(now.saturating_duration_since(self.run_started), &status);
        (changed && status == health::UNHEALTHY && self.on_failure != OnFailure::None)
            .then_some(self.on_failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::Healthcheck;

    const SEC: i64 = 1_000_000_000;

    /// A saved record probed with `retries`, `start_period` seconds and
    /// `on_failure`, and its store.
    fn checked(
        retries: i64,
        start_period: i64,
        on_failure: &str,
    ) -> (tempfile::TempDir, Store, ContainerRecord) {
        let (d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "probed");
        rec.config.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 30 * SEC,
            start_period: start_period * SEC,
            start_interval: 2 * SEC,
            retries,
            ..Default::default()
        });
        rec.config.health_on_failure = on_failure.into();
        rec.save(&store).unwrap();
        (d, store, rec)
    }

    fn result(code: i32) -> health::ProbeResult {
        health::ProbeResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn the_health_goes_from_starting_to_healthy_or_unhealthy_and_acts_once() {
        use OnFailure::{Kill, Restart, Stop};
        let (s, h, u) = (health::STARTING, health::HEALTHY, health::UNHEALTHY);
        // Retries, start period (s), --health-on-failure; then each probe:
        // when it began (s after the start), its exit code, the status
        // after it and the action due.
        type Step = (u64, i32, &'static str, Option<OnFailure>);
        let cases: [(i64, i64, &str, &[Step]); 5] = [
            (
                3,
                0,
                "",
                &[
                    (0, 1, s, None),
                    (0, 1, s, None),
                    (0, 1, u, None),
                    (0, 0, h, None),
                ],
            ),
            (
                2,
                0,
                "restart",
                &[
                    (0, 1, s, None),
                    (0, 1, u, Some(Restart)),
                    (0, 1, u, None),
                    (0, 0, h, None),
                    (0, 1, h, None),
                    (0, 1, u, Some(Restart)),
                ],
            ),
            (
                1,
                60,
                "kill",
                &[
                    (1, 1, s, None),
                    (5, 1, s, None),
                    (6, 0, h, None),
                    (7, 1, u, Some(Kill)),
                ],
            ),
            (1, 10, "stop", &[(11, 1, u, Some(Stop))]),
            (1, 0, "none", &[(0, -1, u, None), (0, 0, h, None)]),
        ];
        for (retries, start_period, on_failure, steps) in cases {
            let (_d, store, rec) = checked(retries, start_period, on_failure);
            health::reset(&store, &rec.id);
            let mut p = Prober::new(&store, &rec, false).unwrap();
            // The first probe: the start interval within a start period.
            let first = if start_period > 0 { 2 } else { 30 };
            assert_eq!(
                p.wake_at(),
                Some(p.run_started + Duration::from_secs(first))
            );
            for (i, &(at, code, status, action)) in steps.iter().enumerate() {
                let case = format!(
                    "{on_failure:?} retries {retries} start period {start_period}, probe {i}"
                );
                let began = p.run_started + Duration::from_secs(at);
                assert_eq!(
                    p.recorded(&store, &rec, began, result(code)),
                    action,
                    "{case}"
                );
                assert_eq!(
                    health::load(&store, &rec.id).unwrap().status,
                    status,
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn a_new_run_s_prober_takes_the_state_its_start_reset() {
        let (_d, store, rec) = checked(2, 0, "restart");
        // The last run ended unhealthy; this one's supervisor reset it.
        let mut last = health::Recorder::new(&store, &rec.id);
        last.add(result(1), false, 2);
        last.add(result(1), false, 2);
        health::reset(&store, &rec.id);
        // A `healthcheck run` before the prober began.
        let mut other = health::Recorder::new(&store, &rec.id);
        assert_eq!(
            other.add(result(1), false, 2),
            (health::STARTING.into(), false)
        );
        let mut p = Prober::new(&store, &rec, false).unwrap();
        let h = health::load(&store, &rec.id).unwrap();
        assert_eq!(
            (h.status.as_str(), h.failing_streak, h.log.len()),
            (health::STARTING, 1, 3)
        );
        // Its failure counts: one more is the second in a row.
        let now = p.run_started;
        assert_eq!(
            p.recorded(&store, &rec, now, result(1)),
            Some(OnFailure::Restart)
        );
        assert_eq!(health::load(&store, &rec.id).unwrap().failing_streak, 2);
    }
}
