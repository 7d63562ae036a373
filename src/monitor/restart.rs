//! Restarts under `--restart` and `--health-on-failure=restart`: whether
//! an ended container starts again, and Docker's growing delay between
//! the runs.

use std::time::{Duration, Instant};

use crate::container::{ContainerRecord, RestartPolicy};
use crate::store::Store;

/// What decides whether an ended run is followed by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RunEnd {
    /// PID 1's exit code.
    pub code: i32,
    /// `--health-on-failure=restart` stopped it.
    pub health_restart: bool,
    /// A manual stop (`stop`, `kill`, `rm -f`) left its marker.
    pub stopped: bool,
    /// Its record is gone (`rm -f`) or unreadable.
    pub removed: bool,
}

/// Whether another run follows one that ended as `end`, after `restarts`
/// restarts so far: never after a manual stop or a removal; after a
/// health restart, whatever the policy says; else as the policy says.
pub(super) fn runs_again(policy: &RestartPolicy, restarts: u32, end: RunEnd) -> bool {
    !end.stopped
        && !end.removed
        && (end.health_restart || policy.restarts_after(end.code, restarts))
}

/// Whether the container starts again after its run ended with `code`
/// (`health_restart`: `--health-on-failure=restart` stopped it), by the
/// latest record, which `rec` becomes. Without a policy or a health
/// restart nothing is read: it stays ended.
pub(super) fn again_due(
    store: &Store,
    rec: &mut ContainerRecord,
    code: i32,
    health_restart: bool,
) -> bool {
    if !health_restart && rec.host_config.restart_policy.is_none() {
        return false;
    }
    let removed = match ContainerRecord::load(store, &rec.id) {
        Ok(latest) => {
            *rec = latest;
            false
        }
        Err(_) => true,
    };
    let end = RunEnd {
        code,
        health_restart,
        stopped: rec.manual_stop_path(store).exists(),
        removed,
    };
    runs_again(&rec.host_config.restart_policy, rec.restart_count, end)
}

/// Docker's delay between restarts: 100 ms, doubled each time up to a
/// minute, back to 100 ms after a run that lasted 10 seconds.
pub(super) struct Backoff {
    delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { delay: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(60);
    const STEADY: Duration = Duration::from_secs(10);

    /// The delay before the next run, after one that lasted `ran`.
    fn next(&mut self, ran: Duration) -> Duration {
        if ran >= Self::STEADY {
            self.delay = Self::FIRST;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        delay
    }

    /// Record the container as restarting and sleep; false when a manual
    /// stop or a removal came meanwhile.
    pub(super) fn wait(&mut self, store: &Store, rec: &mut ContainerRecord, ran: Duration) -> bool {
        rec.state.restarting = true;
        if rec.save(store).is_err() {
            return false;
        }
        let until = Instant::now() + self.next(ran);
        while Instant::now() < until {
            if rec.manual_stop_path(store).exists() || !store.container_dir(&rec.id).exists() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        // The last word: a stop may have come just now.
        !rec.manual_stop_path(store).exists() && ContainerRecord::load(store, &rec.id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved record with `policy`, in a store of its own.
    fn saved(policy: &str) -> (tempfile::TempDir, Store, ContainerRecord) {
        let (d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "again");
        rec.host_config.restart_policy = RestartPolicy {
            name: policy.into(),
            maximum_retry_count: 2,
        };
        rec.save(&store).unwrap();
        (d, store, rec)
    }

    #[test]
    fn a_run_ends_for_good_or_runs_again() {
        let policy = |name: &str, max| RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        };
        let end = |code, health_restart, stopped, removed| RunEnd {
            code,
            health_restart,
            stopped,
            removed,
        };
        let (no, always, unless) = (
            policy("no", 0),
            policy("always", 0),
            policy("unless-stopped", 0),
        );
        let (failure, failure_2) = (policy("on-failure", 0), policy("on-failure", 2));
        // Policy, restarts so far, how the run ended; whether one follows.
        let cases = [
            (&no, 0, end(1, false, false, false), false),
            (&no, 0, end(0, true, false, false), true),
            (&no, 0, end(0, true, true, false), false),
            (&no, 0, end(0, true, false, true), false),
            (&always, 0, end(0, false, false, false), true),
            (&always, 99, end(1, false, false, false), true),
            (&always, 0, end(0, false, true, false), false),
            (&always, 0, end(0, false, false, true), false),
            (&always, 0, end(137, true, true, false), false),
            (&unless, 5, end(0, false, false, false), true),
            (&unless, 0, end(143, false, true, false), false),
            (&failure, 0, end(0, false, false, false), false),
            (&failure, 0, end(1, false, false, false), true),
            (&failure, 1000, end(1, false, false, false), true),
            (&failure, 0, end(0, true, false, false), true),
            (&failure, 0, end(1, false, true, false), false),
            (&failure_2, 1, end(1, false, false, false), true),
            (&failure_2, 2, end(1, false, false, false), false),
            (&failure_2, 2, end(0, true, false, false), true),
            (&failure_2, 2, end(0, true, false, true), false),
        ];
        for (policy, restarts, end, again) in cases {
            assert_eq!(
                runs_again(policy, restarts, end),
                again,
                "{} after {restarts}: {end:?}",
                policy.name
            );
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_starts_over_after_a_steady_run() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(b.next(short), ms(100));
        assert_eq!(b.next(short), ms(200));
        assert_eq!(b.next(short), ms(400));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), Backoff::MAX);
        assert_eq!(b.next(Backoff::STEADY), ms(100));
        assert_eq!(b.next(short), ms(200));
    }

    #[test]
    fn the_policy_decides_unless_a_manual_stop_or_a_removal_came() {
        let (_d, store, mut rec) = saved("no");
        assert!(!again_due(&store, &mut rec, 1, false));
        let (_d, store, mut rec) = saved("on-failure");
        assert!(again_due(&store, &mut rec, 1, false));
        assert!(!again_due(&store, &mut rec, 0, false));
        rec.restart_count = 2;
        rec.save(&store).unwrap();
        assert!(!again_due(&store, &mut rec, 1, false), "retries used up");
        let (_d, store, mut rec) = saved("always");
        assert!(again_due(&store, &mut rec, 0, false));
        rec.mark_manual_stop(&store);
        assert!(!again_due(&store, &mut rec, 0, false), "stopped by hand");
        let (_d, store, mut rec) = saved("always");
        std::fs::remove_dir_all(store.container_dir(&rec.id)).unwrap();
        assert!(!again_due(&store, &mut rec, 0, false), "removed");
    }

    #[test]
    fn a_health_restart_takes_the_latest_record_unless_stopped() {
        let (_d, store, mut rec) = saved("always");
        let mut latest = rec.clone();
        latest.name = "renamed".into();
        latest.save(&store).unwrap();
        assert!(again_due(&store, &mut rec, 0, true));
        assert_eq!(rec.name, "renamed");
        rec.mark_manual_stop(&store);
        assert!(!again_due(&store, &mut rec, 0, true));
    }

    #[test]
    fn the_wait_marks_the_record_restarting_and_ends_at_a_stop() {
        let (_d, store, mut rec) = saved("always");
        let mut b = Backoff::default();
        assert!(b.wait(&store, &mut rec, Duration::ZERO));
        let on_disk = ContainerRecord::load(&store, &rec.id).unwrap();
        assert!(on_disk.state.restarting);
        rec.mark_manual_stop(&store);
        assert!(!b.wait(&store, &mut rec, Duration::ZERO));
    }

    #[test]
    fn the_wait_ends_at_a_removal() {
        let (_d, store, mut rec) = saved("always");
        std::fs::remove_dir_all(store.container_dir(&rec.id)).unwrap();
        assert!(!Backoff::default().wait(&store, &mut rec, Duration::ZERO));
    }
}
