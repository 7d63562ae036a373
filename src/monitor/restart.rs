//! Restarts under `--restart`: whether the policy starts an ended
//! container again, and Docker's growing delay between the runs.

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

    /// Record the container as restarting and sleep; false when a manual
    /// stop or a removal came meanwhile.
    pub(super) fn wait(&mut self, store: &Store, rec: &mut ContainerRecord, ran: Duration) -> bool {
        if ran >= Self::STEADY {
            self.delay = Self::FIRST;
        }
        rec.state.restarting = true;
        if rec.save(store).is_err() {
            return false;
        }
        let until = Instant::now() + self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
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
