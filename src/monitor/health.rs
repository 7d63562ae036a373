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
    /// The prober of a container that has just started, its state reset to
    /// `starting`; None without a health check.
    pub fn new(store: &Store, rec: &ContainerRecord, single_id: bool) -> Option<Prober> {
        let sched = Schedule::of(rec)?;
        let mut recorder = Recorder::new(store, &rec.id);
        recorder.reset();
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
