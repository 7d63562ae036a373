//! The monitor's decisions to end a running container, apart from the
//! signals that carry them out: the timers (`--timeout`, the SIGKILL that
//! follows a health stop's signal) and what `--health-on-failure` does.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::container::health::OnFailure;

/// How long a health stop waits for the stop signal before SIGKILL, as
/// Docker's `stop` does by default.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The timers that end one run of the container with SIGKILL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Deadlines {
    /// `--timeout`: when the container has had its time.
    timeout: Option<Instant>,
    /// The `--timeout` kill was sent.
    pub timed_out: bool,
    /// Stopping for `--health-on-failure`: SIGKILL at this instant.
    pub kill_at: Option<Instant>,
}

impl Deadlines {
    /// The timers of a run that starts at `now`, with `--timeout` seconds.
    pub fn starting(timeout: Option<u64>, now: Instant) -> Self {
        Deadlines {
            timeout: timeout.map(|t| now + Duration::from_secs(t)),
            ..Default::default()
        }
    }

    /// Whether PID 1 is to be killed at `now`: a timer has struck (each
    /// strikes once).
    pub fn strike(&mut self, now: Instant) -> bool {
        let mut kill = false;
        if self.timeout.is_some_and(|d| now >= d) && !self.timed_out {
            // The container has had its time.
            self.timed_out = true;
            kill = true;
        }
        if self.kill_at.is_some_and(|d| now >= d) {
            // The stop signal was not enough.
            self.kill_at = None;
            kill = true;
        }
        kill
    }

    /// The nearest timer still to come, `probe` (the next health probe's)
    /// among them.
    pub fn wake(&self, probe: Option<Instant>) -> Option<Instant> {
        [
            self.timeout.filter(|_| !self.timed_out),
            probe,
            self.kill_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// What `--health-on-failure` does to a container that became unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Response {
    /// Sent to PID 1 at once.
    pub signal: Signal,
    /// SIGKILL this long after, if it has not ended.
    pub kill_after: Option<Duration>,
    /// Start it again once it has ended.
    pub restart: bool,
}

/// `action`'s response, `stop` being the container's stop signal: kill
/// it, or stop it (SIGKILL after Docker's ten seconds) and for `restart`
/// start it again; nothing for `none`.
pub(super) fn respond(action: OnFailure, stop: Signal) -> Option<Response> {
    let stopping = |restart| Response {
        signal: stop,
        kill_after: Some(STOP_GRACE),
        restart,
    };
    match action {
        OnFailure::None => None,
        OnFailure::Kill => Some(Response {
            signal: Signal::SIGKILL,
            kill_after: None,
            restart: false,
        }),
        OnFailure::Stop => Some(stopping(false)),
        OnFailure::Restart => Some(stopping(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_health_action_has_its_response() {
        let grace = Some(STOP_GRACE);
        let cases = [
            (OnFailure::None, Signal::SIGTERM, None),
            (
                OnFailure::Kill,
                Signal::SIGTERM,
                Some((Signal::SIGKILL, None, false)),
            ),
            (
                OnFailure::Stop,
                Signal::SIGTERM,
                Some((Signal::SIGTERM, grace, false)),
            ),
            (
                OnFailure::Stop,
                Signal::SIGQUIT,
                Some((Signal::SIGQUIT, grace, false)),
            ),
            (
                OnFailure::Restart,
                Signal::SIGINT,
                Some((Signal::SIGINT, grace, true)),
            ),
        ];
        for (action, stop, expected) in cases {
            let got = respond(action, stop).map(|r| (r.signal, r.kill_after, r.restart));
            assert_eq!(got, expected, "{action:?} with {stop:?}");
        }
    }

    #[test]
    fn each_timer_strikes_once_and_the_loop_wakes_for_the_nearest() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // No timer: nothing strikes, the probe's is the only wake.
        let mut none = Deadlines::starting(None, t0);
        assert!(!none.strike(t0 + s(3600)));
        assert_eq!(none.wake(None), None);
        assert_eq!(none.wake(Some(t0 + s(1))), Some(t0 + s(1)));
        // --timeout 5.
        let mut d = Deadlines::starting(Some(5), t0);
        assert_eq!(d.wake(Some(t0 + s(30))), Some(t0 + s(5)));
        assert!(!d.strike(t0 + s(4)));
        assert!(d.strike(t0 + s(5)));
        assert!(d.timed_out);
        assert!(!d.strike(t0 + s(6)), "once");
        assert_eq!(d.wake(None), None);
        assert_eq!(d.wake(Some(t0 + s(30))), Some(t0 + s(30)));
        // A health stop's kill, before the --timeout.
        let mut d = Deadlines::starting(Some(60), t0);
        d.kill_at = Some(t0 + s(10));
        assert_eq!(d.wake(Some(t0 + s(30))), Some(t0 + s(10)));
        assert_eq!(d.wake(Some(t0 + s(2))), Some(t0 + s(2)));
        assert!(!d.strike(t0 + s(9)));
        assert!(d.strike(t0 + s(10)));
        assert_eq!((d.kill_at, d.timed_out), (None, false));
        assert_eq!(d.wake(None), Some(t0 + s(60)));
        // Both due at once: one kill, both spent.
        let mut d = Deadlines::starting(Some(1), t0);
        d.kill_at = Some(t0 + s(1));
        assert!(d.strike(t0 + s(2)));
        assert!(d.timed_out && d.kill_at.is_none());
        assert!(!d.strike(t0 + s(3)));
    }
}
