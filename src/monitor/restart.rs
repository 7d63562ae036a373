//! Restarts under `--restart` and `--health-on-failure=restart`: whether
//! an ended container starts again, and Docker's growing delay between
//! the runs.

use std::time::{Duration, Instant};

use crate::container::ContainerRecord;
use crate::store::Store;

/// Whether the restart policy starts the container again after it ended
/// with `code`: not after a manual stop (`stop`, `kill`, `rm -f`: a marker
/// or a missing record), else as the policy says.
pub(super) fn restart_due(store: &Store, rec: &mut ContainerRecord, code: i32) -> bool {
    let policy = &rec.host_config.restart_policy;
    if policy.is_none() {
        return false;
    }
    match ContainerRecord::load(store, &rec.id) {
        Ok(latest) => *rec = latest,
        Err(_) => return false,
    }
    !rec.manual_stop_path(store).exists()
        && rec
            .host_config
            .restart_policy
            .restarts_after(code, rec.restart_count)
}

/// After `--health-on-failure=restart` stopped it: whatever its policy
/// says, unless it was stopped or removed meanwhile (`rec` becomes the
/// latest record).
pub(super) fn health_restart_due(store: &Store, rec: &mut ContainerRecord) -> bool {
    !rec.manual_stop_path(store).exists()
        && match ContainerRecord::load(store, &rec.id) {
            Ok(latest) => {
                *rec = latest;
                true
            }
            Err(_) => false,
        }
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
    use crate::container::{ContainerConfig, HostConfig, RestartPolicy, State};

    /// A saved record with `policy`, in a store of its own.
    fn saved(policy: &str) -> (tempfile::TempDir, Store, ContainerRecord) {
        let (d, store) = crate::store::temp_store();
        let blank = |v: serde_json::Result<serde_json::Value>| v.unwrap();
        let mut rec: ContainerRecord = serde_json::from_value(serde_json::json!({
            "Id": "cd".repeat(32), "Name": "again", "Created": "", "Image": "",
            "Path": "true", "Args": [], "RootfsMode": null, "Layers": [],
            "Config": blank(serde_json::to_value(ContainerConfig::default())),
            "HostConfig": blank(serde_json::to_value(HostConfig::default())),
            "State": blank(serde_json::to_value(State::default())),
        }))
        .unwrap();
        rec.host_config.restart_policy = RestartPolicy {
            name: policy.into(),
            maximum_retry_count: 2,
        };
        std::fs::create_dir_all(store.container_dir(&rec.id)).unwrap();
        rec.save(&store).unwrap();
        (d, store, rec)
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
        assert!(!restart_due(&store, &mut rec, 1));
        let (_d, store, mut rec) = saved("on-failure");
        assert!(restart_due(&store, &mut rec, 1));
        assert!(!restart_due(&store, &mut rec, 0));
        rec.restart_count = 2;
        rec.save(&store).unwrap();
        assert!(!restart_due(&store, &mut rec, 1), "retries used up");
        let (_d, store, mut rec) = saved("always");
        assert!(restart_due(&store, &mut rec, 0));
        rec.mark_manual_stop(&store);
        assert!(!restart_due(&store, &mut rec, 0), "stopped by hand");
        let (_d, store, mut rec) = saved("always");
        std::fs::remove_dir_all(store.container_dir(&rec.id)).unwrap();
        assert!(!restart_due(&store, &mut rec, 0), "removed");
    }

    #[test]
    fn a_health_restart_takes_the_latest_record_unless_stopped() {
        let (_d, store, mut rec) = saved("always");
        let mut latest = rec.clone();
        latest.name = "renamed".into();
        latest.save(&store).unwrap();
        assert!(health_restart_due(&store, &mut rec));
        assert_eq!(rec.name, "renamed");
        rec.mark_manual_stop(&store);
        assert!(!health_restart_due(&store, &mut rec));
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
}
