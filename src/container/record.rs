//! The container record on disk (Docker's `inspect` field names) and its
//! status, checked against the live process so a dead supervisor never
//! leaves a container shown as Up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::health::state as health;
use super::{ContainerError, Result};
use crate::linux::process;
use crate::sandbox::RootfsMode;
use crate::store::{self, Store};
use crate::util::human;

pub const RECORD_FILE: &str = "container.json";
/// The exit of the container's last run, when the record could not say it
/// (or there is more to say: writes that failed), in space reserved for it.
pub const EXIT_FILE: &str = "exit.json";
/// What `EXIT_FILE` holds, and reserves: one block of any file system.
const EXIT_SPACE: usize = 4096;
/// The container's output, in Docker's json-file format.
pub const LOG_FILE: &str = "container.log";

/// A monitor's hold on its container, released when it ends.
pub struct MonitorLock {
    _lock: Flock<std::fs::File>,
}

/// The container's run configuration: the image's config copied at create
/// time, with the command-line overrides applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exposed_ports: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// The image's HEALTHCHECK with `--health-*` over it, field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::image::config::Healthcheck>,
    /// `--health-on-failure` (podman's name for it in `inspect`).
    #[serde(
        rename = "HealthcheckOnFailureAction",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub health_on_failure: String,
    /// The image's SHELL, which runs a `CMD-SHELL` health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    pub tty: bool,
    pub open_stdin: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub auto_remove: bool,
    /// Bind and tmpfs mounts (`-v`, `--mount`, `--tmpfs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<super::mounts::MountSpec>,
    /// `--read-only`: the root filesystem is mounted read-only.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `--cap-add` and `--cap-drop`, applied to Docker's default set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `--security-opt`, as `container::security` checked them (a seccomp
    /// profile file is kept as `seccomp=<its JSON>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `--privileged`: every capability of the container's user namespace,
    /// no seccomp filter (unless a profile file is given), no masked or
    /// read-only paths, a writable sysfs in a private network namespace.
    #[serde(default)]
    pub privileged: bool,
    /// `--init`: burrow is PID 1, forwarding signals and reaping zombies.
    #[serde(default)]
    pub init: bool,
    /// `--userns=keep-id`: the caller's own uid/gid inside.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
    /// `run --timeout`: seconds before the monitor kills the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `--network`: private, none, host, pasta or slirp4netns; empty in
    /// records made before burrow had networking (they shared the host's).
    #[serde(default)]
    pub network_mode: String,
    /// `-p`: `3000/tcp` → host address and port (empty: any, a free one).
    #[serde(default)]
    pub port_bindings: crate::network::PortMap,
    /// `-P`: every exposed port on a free host port.
    #[serde(default)]
    pub publish_all_ports: bool,
    /// `--dns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `--add-host HOST:IP`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Resource limits: Docker's `Memory`, `NanoCpus`, ... fields.
    #[serde(flatten)]
    pub resources: super::cgroup::Resources,
    /// `--log-driver` and `--log-opt`.
    #[serde(default)]
    pub log_config: LogConfig,
    /// `--restart`, carried out by the container's monitor.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
}

/// Where the container's output goes: Docker's `json-file` (the default)
/// or `none`, with the rotation options (`max-size`, `max-file`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            kind: "json-file".into(),
            config: BTreeMap::new(),
        }
    }
}

impl LogConfig {
    /// Whether output is kept at all (`none` keeps nothing).
    pub fn keeps_output(&self) -> bool {
        self.kind != "none"
    }
}

/// Docker's `RestartPolicy`: `no`, `on-failure` (at most
/// `MaximumRetryCount` times when non-zero), `always`, `unless-stopped`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        }
    }
}

impl RestartPolicy {
    pub fn is_none(&self) -> bool {
        self.name == "no" || self.name.is_empty()
    }

    /// Whether a run that ended with `code` is followed by another, after
    /// `restarts` restarts so far. A manual stop (`stop`, `kill`, `rm -f`)
    /// is checked by the monitor before it asks.
    pub fn restarts_after(&self, code: i32, restarts: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// What the running container's network looks like from the host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// The ports published while it runs: `3000/tcp` → host address and port.
    #[serde(default)]
    pub ports: crate::network::PortMap,
    /// The user network it is on (`--network NAME`): aliases always, its
    /// address, gateway and MAC while it runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, crate::network::member::Endpoint>,
    /// Its address on the default network while it runs (Docker's
    /// top-level copy of the `bridge` entry, which scripts read).
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default)]
    pub ip_prefix_len: u8,
    #[serde(default)]
    pub gateway: String,
}

impl NetworkSettings {
    /// The container stopped: nothing it had while running stays.
    pub fn clear_running(&mut self) {
        self.ports.clear();
        self.networks
            .values_mut()
            .for_each(crate::network::member::Endpoint::clear_lease);
        self.ip_address.clear();
        self.ip_prefix_len = 0;
        self.gateway.clear();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    /// Shown, never stored: exited, and its monitor will start it again
    /// (`State.Restarting`).
    Restarting,
    Exited,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
    /// Between two runs of a container with a restart policy: ended, and
    /// its monitor will start it again after a short delay.
    #[serde(default)]
    pub restarting: bool,
    /// How `pause` stopped the container: "freezer" (cgroup.freeze) or
    /// "SIGSTOP" (every process stopped by signal, without a cgroup).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pause_method: String,
    /// Read from its own file by `with_live_state` (the prober writes
    /// there), never from the record.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl State {
    pub fn running(pid: i32) -> Self {
        State {
            status: Status::Running,
            running: true,
            pid,
            started_at: human::now_rfc3339(),
            finished_at: ZERO_TIME.into(),
            ..Default::default()
        }
    }

    /// Paused by `method`: "freezer" or "SIGSTOP".
    pub fn pause(&mut self, method: &str) {
        self.status = Status::Paused;
        self.paused = true;
        self.pause_method = method.into();
    }

    /// Running again after `pause`.
    pub fn unpause(&mut self) {
        self.status = Status::Running;
        self.paused = false;
        self.pause_method.clear();
    }

    /// PID 1 ended with `code` (a paused container may be killed).
    pub fn finish(&mut self, code: i32) {
        self.status = Status::Exited;
        self.running = false;
        self.paused = false;
        self.pause_method.clear();
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = human::now_rfc3339();
    }
}

/// How one run ended, for the exit file: the run is named by its start
/// time (nanoseconds, so a later run's is never the same).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExitRecord {
    started_at: String,
    exit_code: i32,
    finished_at: String,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    error: String,
    /// Writes that failed (the log, the record), one line each.
    problems: Vec<String>,
}

/// Reserve the exit file's space in `dir`, once: a file of `EXIT_SPACE`
/// bytes, written now (not sparse), so that rewriting it in place at the
/// exit needs no new block. On ext4, xfs and tmpfs an overwrite of a
/// written block allocates nothing, so it succeeds on a full disk; on a
/// copy-on-write file system (btrfs) it does not guarantee that.
fn reserve_exit(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(EXIT_FILE))?;
    if f.metadata()?.len() >= EXIT_SPACE as u64 {
        return Ok(());
    }
    f.write_all_at(&[b' '; EXIT_SPACE], 0)
}

/// Rewrite the exit file in place, within its reserved space: no
/// truncation, no new file, so no new block. Long messages are cut to fit.
fn write_exit(dir: &Path, mut x: ExitRecord) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join(EXIT_FILE))?;
    if f.metadata()?.len() < EXIT_SPACE as u64 {
        return Err(std::io::Error::other("its space was never reserved"));
    }
    x.problems.truncate(8);
    let mut bytes = serde_json::to_vec(&x).expect("exit record serializes");
    // Shorten the longest texts until it fits (the code and times stay).
    while bytes.len() >= EXIT_SPACE {
        let longest = x
            .problems
            .iter_mut()
            .chain(std::iter::once(&mut x.error))
            .max_by_key(|t| t.len())
            .expect("there is the error at least");
        let half = longest.len() / 2;
        let keep = (0..=half)
            .rev()
            .find(|&i| longest.is_char_boundary(i))
            .unwrap_or(0);
        longest.truncate(keep);
        longest.push('…');
        bytes = serde_json::to_vec(&x).expect("exit record serializes");
    }
    bytes.resize(EXIT_SPACE - 1, b' ');
    bytes.push(b'\n');
    f.write_all_at(&bytes, 0)
}

/// Everything burrow knows about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image id (`sha256:...`), as Docker's inspect shows it.
    pub image: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// overlay or copy, known once the container has started.
    pub rootfs_mode: Option<RootfsMode>,
    /// The image's layers (diff ids, bottom first), copied at create time so
    /// the container keeps working if the tag moves.
    pub layers: Vec<String>,
    /// The running container's cgroup; null when it has none
    /// (no delegated cgroup v2 subtree) or is not running.
    #[serde(default)]
    pub cgroup: Option<std::path::PathBuf>,
    #[serde(default)]
    pub network_settings: NetworkSettings,
    /// How often the monitor has restarted it (`--restart`).
    #[serde(default)]
    pub restart_count: u32,
}

impl ContainerRecord {
    /// The network mode (an unreadable one is the host's, as old records).
    pub fn network_mode(&self) -> crate::network::Mode {
        crate::network::Mode::parse(&self.host_config.network_mode)
            .unwrap_or(crate::network::Mode::Host)
    }

    /// What `--network` named: a mode, or a user network's name.
    pub fn network_name(&self) -> &str {
        match self.network_mode() {
            crate::network::Mode::User | crate::network::Mode::Host => {
                if self.host_config.network_mode.is_empty() {
                    "host"
                } else {
                    &self.host_config.network_mode
                }
            }
            m => m.name(),
        }
    }

    /// The user network it is on, if any.
    pub fn user_network(&self) -> Option<&str> {
        (self.network_mode() == crate::network::Mode::User)
            .then_some(self.host_config.network_mode.as_str())
    }

    /// The ports to publish when it starts (`-p`, and `-P`'s exposed ports).
    pub fn ports_to_publish(&self) -> Vec<crate::network::PortSpec> {
        if self.network_mode() == crate::network::Mode::Host {
            return Vec::new();
        }
        let exposed: Vec<String> = self.config.exposed_ports.iter().cloned().collect();
        crate::network::specs_to_publish(
            &self.host_config.port_bindings,
            self.host_config.publish_all_ports,
            &exposed,
        )
    }

    /// Docker's PORTS column: what is published now.
    pub fn ports_text(&self) -> String {
        crate::network::ports_text(&self.network_settings.ports)
    }

    /// Where container `id`'s record is stored.
    pub fn path(store: &Store, id: &str) -> std::path::PathBuf {
        store.container_dir(id).join(RECORD_FILE)
    }

    /// The record, with the exit of its last run when only the exit file
    /// has it (see `save_exit`).
    pub fn load(store: &Store, id: &str) -> Result<Self> {
        let p = Self::path(store, id);
        let bytes = std::fs::read(&p).map_err(|_| ContainerError::NoSuch(id.to_string()))?;
        let mut rec: Self = serde_json::from_slice(&bytes).map_err(|e| {
            ContainerError::Store(store::StoreError::BadJson { path: p, source: e })
        })?;
        if matches!(rec.state.status, Status::Running | Status::Paused) {
            if let Some(x) = rec.exit_record(store) {
                rec.state.finish(x.exit_code);
                rec.state.finished_at = x.finished_at;
                rec.state.oom_killed = x.oom_killed;
                rec.state.error = x.error;
                rec.cgroup = None;
                rec.network_settings.clear_running();
            }
        }
        Ok(rec)
    }

    /// The exit file's record of this run (the one the state's start
    /// time names), if it holds one.
    fn exit_record(&self, store: &Store) -> Option<ExitRecord> {
        let text = std::fs::read(store.container_dir(&self.id).join(EXIT_FILE)).ok()?;
        let x: ExitRecord = serde_json::from_slice(text.trim_ascii()).ok()?;
        (!x.started_at.is_empty() && x.started_at == self.state.started_at).then_some(x)
    }

    /// What failed to be written during this run (its log, its record),
    /// one line each, for the command that reports its exit.
    pub fn exit_problems(&self, store: &Store) -> Vec<String> {
        self.exit_record(store)
            .map(|x| x.problems)
            .unwrap_or_default()
    }

    pub fn save(&self, store: &Store) -> Result<()> {
        self.save_in(store, &store.container_dir(&self.id))
    }

    /// Write the record into `dir` (the container's directory, or the
    /// staging directory it is being made in), and make sure the exit
    /// file's space is reserved there.
    pub fn save_in(&self, store: &Store, dir: &Path) -> Result<()> {
        let p = dir.join(RECORD_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("record serializes");
        store.replace(&p, &bytes, false)?;
        if let Err(e) = reserve_exit(dir) {
            tracing::debug!("reserving {:?}: {e}", dir.join(EXIT_FILE));
        }
        Ok(())
    }

    /// Record the end of a run (the state `State::finish` set), with the
    /// writes that failed while it ran. The record is replaced whole (a
    /// new file renamed over it), which needs free space: a container that
    /// filled the disk would leave it saying running, and `ps` would guess
    /// a kill (137). So when that fails, the exit goes into the exit file,
    /// rewritten in place in the space reserved for it (not the runtime
    /// directory: a tmpfs can be full too, and it is gone after a reboot),
    /// and `load` reads it from there. The failure is one of the problems
    /// reported with the exit.
    pub fn save_exit(&mut self, store: &Store, problems: &[String]) -> Result<()> {
        let mut problems = problems.to_vec();
        let own_error = !self.state.error.is_empty();
        if !own_error {
            self.state.error = problems.join("; ");
        }
        let saved = self.save(store);
        if let Err(e) = &saved {
            // The cause alone (ENOSPC), not the staging file's name.
            let mut cause: &dyn std::error::Error = e;
            while let Some(c) = cause.source() {
                cause = c;
            }
            problems.push(format!(
                "recording the exit in {RECORD_FILE}: {cause}; it is kept in {EXIT_FILE} instead"
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let x = ExitRecord {
            started_at: self.state.started_at.clone(),
            exit_code: self.state.exit_code,
            finished_at: self.state.finished_at.clone(),
            oom_killed: self.state.oom_killed,
            error: if own_error {
                self.state.error.clone()
            } else {
                problems.join("; ")
            },
            problems,
        };
        let kept = write_exit(&store.container_dir(&self.id), x);
        if let Err(e) = &kept {
            tracing::debug!("writing {EXIT_FILE}: {e}");
        }
        // The record has the exit, or the exit file has it.
        saved.or(kept.map_err(ContainerError::RecordExit))
    }

    /// Record PID 1 and its start time in the runtime dir, so a later burrow
    /// can tell the live process from a reused pid.
    pub fn write_pid_file(&self, store: &Store) -> std::io::Result<()> {
        let start = process::start_time(Path::new("/proc"), self.state.pid).unwrap_or(0);
        std::fs::write(
            store.pid_file(&self.id),
            format!("{} {start}\n", self.state.pid),
        )
    }

    /// The pid file's "PID STARTTIME", written by `write_pid_file`.
    fn pid_file_entry(&self, store: &Store) -> Option<(i32, u64)> {
        let text = std::fs::read_to_string(store.pid_file(&self.id)).ok()?;
        let mut f = text.split_whitespace();
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    }

    /// PID 1's start time as recorded, to check it is still the same
    /// process before entering its namespaces (exec, cp).
    pub fn pid1_start(&self, store: &Store) -> Option<u64> {
        self.pid_file_entry(store).map(|(_, start)| start)
    }

    /// Is PID 1 (as recorded) still the same live process?
    fn pid_alive(&self, store: &Store) -> bool {
        self.pid_file_entry(store).is_some_and(|(pid, start)| {
            pid > 0 && process::start_time(Path::new("/proc"), pid) == Some(start)
        })
    }

    /// The image's layer directories, top-most first (overlayfs order).
    pub fn lowers(&self, store: &Store) -> Vec<std::path::PathBuf> {
        self.layers
            .iter()
            .rev()
            .map(|d| store.layer_fs(d))
            .collect()
    }

    /// The status, corrected for a supervisor that died without recording
    /// the end (killed burrow, reboot).
    pub fn live_status(&self, store: &Store) -> Status {
        match self.state.status {
            Status::Running | Status::Paused if !self.pid_alive(store) => Status::Exited,
            Status::Exited if self.is_restarting(store) => Status::Restarting,
            s => s,
        }
    }

    /// Between two runs of a restart policy, with its monitor alive to
    /// start the next one.
    pub fn is_restarting(&self, store: &Store) -> bool {
        self.state.restarting && self.monitor_alive(store)
    }

    /// Take the monitor lock, which a container's monitor holds for as long
    /// as it runs (one monitor per container, and `stop` can wait for a
    /// restart loop to end); None when another monitor holds it.
    pub fn lock_monitor(&self, store: &Store) -> std::io::Result<Option<MonitorLock>> {
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(store.monitor_lock_file(&self.id))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(MonitorLock { _lock: l })),
            Err((_, nix::Error::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Is a monitor supervising this container now?
    pub fn monitor_alive(&self, store: &Store) -> bool {
        let Ok(f) = std::fs::File::open(store.monitor_lock_file(&self.id)) else {
            return false;
        };
        matches!(
            Flock::lock(f, FlockArg::LockSharedNonblock),
            Err((_, nix::Error::EWOULDBLOCK))
        )
    }

    /// The marker a manual stop leaves (`stop`, `kill`, `rm -f`): the
    /// monitor does not restart a container after it. A start clears it.
    pub fn manual_stop_path(&self, store: &Store) -> std::path::PathBuf {
        store.container_dir(&self.id).join("manually-stopped")
    }

    /// Record a manual stop before signalling, so the monitor sees it
    /// when the container ends.
    pub fn mark_manual_stop(&self, store: &Store) {
        if !self.host_config.restart_policy.is_none() {
            let _ = std::fs::write(self.manual_stop_path(store), b"");
        }
    }

    /// Running or paused: PID 1 is alive.
    pub fn is_up(&self, store: &Store) -> bool {
        matches!(self.live_status(store), Status::Running | Status::Paused)
    }

    /// The record as `inspect` shows it: the state corrected as above.
    pub fn with_live_state(mut self, store: &Store) -> Self {
        if self.config.healthcheck.as_ref().is_some_and(health::probes) {
            self.state.health = health::load(store, &self.id);
        }
        if matches!(self.state.status, Status::Running | Status::Paused)
            && self.live_status(store) == Status::Exited
        {
            self.state.status = Status::Exited;
            self.state.running = false;
            self.state.paused = false;
            self.state.pid = 0;
            if self.state.error.is_empty() {
                self.state.error = "the burrow process supervising this container ended without recording its exit".into();
            }
            if self.state.exit_code == 0 {
                self.state.exit_code = 137;
            }
        }
        if self.state.restarting {
            if !self.monitor_alive(store) {
                self.state.restarting = false;
            } else if self.state.status == Status::Exited {
                self.state.status = Status::Restarting;
            }
        }
        self
    }

    /// Docker's STATUS column: `Created`, `Up 5 seconds`, `Exited (0) 3 minutes ago`.
    pub fn status_text(&self, store: &Store) -> String {
        let live = self.clone().with_live_state(store);
        match live.state.status {
            Status::Created => "Created".into(),
            Status::Running | Status::Paused => {
                let up = match humantime::parse_rfc3339_weak(&live.state.started_at) {
                    Ok(t) => format!("Up {}", human::since(t)),
                    Err(_) => "Up".into(),
                };
                match &live.state.health {
                    _ if live.state.status == Status::Paused => format!("{up} (Paused)"),
                    Some(h) => format!("{up} ({})", h.ps_text()),
                    None => up,
                }
            }
            Status::Restarting => {
                format!(
                    "Restarting ({}) {}",
                    live.state.exit_code,
                    human::ago(&live.state.finished_at)
                )
            }
            Status::Exited => {
                let when =
                    if live.state.finished_at == ZERO_TIME || live.state.finished_at.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", human::ago(&live.state.finished_at))
                    };
                format!("Exited ({}){when}", live.state.exit_code)
            }
        }
    }

    /// A created container named `name`, saved in `store`, for tests of
    /// what happens to records without starting anything.
    #[cfg(test)]
    pub(crate) fn saved_for_test(store: &Store, name: &str) -> Self {
        let rec = ContainerRecord {
            id: store::random_hex(32),
            name: name.into(),
            created: human::now_rfc3339(),
            image: String::new(),
            path: "sh".into(),
            args: Vec::new(),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            state: State::default(),
            rootfs_mode: None,
            layers: Vec::new(),
            cgroup: None,
            network_settings: NetworkSettings::default(),
            restart_count: 0,
        };
        std::fs::create_dir_all(store.container_dir(&rec.id)).unwrap();
        rec.save(store).unwrap();
        rec
    }

    /// SIGKILL PID 1 (the kernel then kills its whole pid namespace) and
    /// wait until it is gone.
    pub fn kill_and_wait(&self) {
        if self.state.pid <= 0 {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.state.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        crate::util::poll::until(Duration::from_secs(5), Duration::from_millis(10), || {
            nix::sys::signal::kill(pid, None).is_err().then_some(())
        });
    }
}

#[cfg(test)]
mod tests;
