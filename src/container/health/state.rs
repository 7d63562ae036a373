//! A container's stored health (`State.Health`, as `inspect` shows it):
//! the result log and status kept in `health.json` beside the record
//! (rewritten in place, under `health.lock`, by whichever process probed)
//! and Docker's rules for each result. It knows no record: the record reads
//! it, and the probes above it write it.

use std::path::PathBuf;
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::image::config::Healthcheck;
use crate::store::Store;
use crate::util::human;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

const HEALTH_FILE: &str = "health.json";
const LOCK_FILE: &str = "health.lock";
/// Docker keeps the last five results.
const MAX_LOG: usize = 5;

/// Whether a configured health check runs a probe at all: `NONE`, no
/// test, or `CMD` without a command do not (Docker's rules).
pub fn probes(hc: &Healthcheck) -> bool {
    match hc.test.first().map(String::as_str) {
        Some("CMD") => hc.test.len() > 1,
        // The shell (the image's or /bin/sh -c) is a command even when the
        // test adds nothing to it.
        Some("CMD-SHELL") => true,
        _ => false,
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

pub(super) fn rfc3339(t: SystemTime) -> String {
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

    /// Record `result` by Docker's rules. Returns the status after it,
    /// and whether it changed.
    pub fn add(
        &mut self,
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
        self.keep(guard, file);
        status
    }

    /// The files kept for the next record, the lock file unlocked; one
    /// that will not unlock is closed, which unlocks it.
    fn keep(
        &mut self,
        guard: Result<Flock<std::fs::File>, (std::fs::File, nix::Error)>,
        file: std::fs::File,
    ) {
        let lock = match guard {
            Ok(g) => g.unlock().ok(),
            Err((f, _)) => Some(f),
        };
        if let Some(lock) = lock {
            self.files = Some((lock, file));
        }
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
        let bytes = read_all(file);
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

/// The whole file, read from its start (it is rewritten in place).
fn read_all(file: &std::fs::File) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = file.read_at(&mut buf, bytes.len() as u64) {
        bytes.extend_from_slice(&buf[..n]);
    }
    bytes
}

/// The state before any result.
fn starting() -> Health {
    Health {
        status: STARTING.into(),
        ..Default::default()
    }
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
    fn which_checks_probe() {
        let hc = |test: &[&str]| Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(probes(&hc(&["CMD", "true"])));
        assert!(probes(&hc(&["CMD-SHELL", "exit 0"])));
        assert!(probes(&hc(&["CMD-SHELL"])));
        assert!(!probes(&hc(&["CMD"])));
        assert!(!probes(&hc(&["NONE"])));
        assert!(!probes(&hc(&[])));
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
}
