//! The per-container monitor: burrow re-executed (`burrow __monitor ID`) in
//! a session of its own, so detached containers outlive the shell that
//! started them. It is the parent of the sandbox's inner process (which
//! reaps PID 1), records the exit, writes the log, holds the pty of `-t`
//! containers, serves attach clients on a unix socket, forwards published
//! ports (`network::forward`), enforces `--timeout`, starts the container
//! again as `--restart` says, and removes `--rm` containers. If it is killed, the parent-death signals
//! take the container down with it, and `ps` shows it exited.

pub mod attach;
mod ending;
mod events;
pub mod foreground;
mod health;
mod io;
mod launch;
pub mod log;
mod restart;

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::container::cgroup::SystemdScopes;
use crate::container::{self, ContainerRecord, MonitorLock, Supervision};
use crate::exit;
use crate::linux::channel::Sender;
use crate::linux::userns::IdMapping;
use crate::network::forward::Forwarder;
use crate::sandbox::{self, Failure, RootfsChoice, Step};
use crate::store::Store;

pub use self::io::{connect, socket_path};
use self::io::{Client, ContainerIo, ParentIo};
pub use self::launch::{launch, Launched};
use self::launch::{monitor_failure, status_sender, Status};
use self::restart::{again_due, Backoff};

/// The monitor process (`burrow __monitor ID`). Returns its exit code.
/// `rootfs` and `scopes` are the front end's reading of the environment
/// the monitor inherited (a bad setting fails before any container starts).
pub fn main(
    store: &Store,
    mapping: &IdMapping,
    id: &str,
    attach_first: bool,
    rootfs: RootfsChoice,
    scopes: SystemdScopes,
    net: crate::network::Access,
) -> i32 {
    let mut status = status_sender();
    let mut fail = |f: Failure| {
        if let Some(s) = &mut status {
            s.tell(Status::Failed(f));
        }
        exit::BURROW
    };
    let mut rec = match ContainerRecord::load(store, id) {
        Ok(r) => r,
        Err(e) => return fail(monitor_failure(e.to_string())),
    };
    let _lock = match lock(store, &rec) {
        Ok(l) => l,
        Err(f) => return fail(f),
    };
    // A start clears a manual stop and, as in Docker, the restart count.
    let _ = std::fs::remove_file(rec.manual_stop_path(store));
    rec.restart_count = 0;
    let mut monitor = match Monitor::prepare(store, &rec, attach_first, status, !mapping.is_range())
    {
        Ok(m) => m,
        Err((f, mut status)) => {
            if let Some(s) = &mut status {
                s.tell(Status::Failed(f));
            }
            return exit::BURROW;
        }
    };
    let result = run(store, &mut rec, mapping, rootfs, scopes, &net, &mut monitor);
    let _ = std::fs::remove_file(&monitor.sock_path);
    finish(store, mapping, &rec, &result);
    match result {
        Ok(code) => code,
        Err(e) => {
            let f = match e {
                container::ContainerError::Start(e) => e.failure,
                e => monitor_failure(e.to_string()),
            };
            if let Some(s) = &mut monitor.status {
                s.tell(Status::Failed(f));
            }
            exit::BURROW
        }
    }
}

/// One container under one monitor: a second one (a `start` while the
/// first waits to restart it) would run it twice. The previous monitor of
/// a container just stopped may still be finishing (it records the exit
/// before it ends): give it a moment.
fn lock(store: &Store, rec: &ContainerRecord) -> Result<MonitorLock, Failure> {
    let locked = crate::util::poll::until(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || match rec.lock_monitor(store) {
            Ok(None) => None,
            r => Some(r),
        },
    );
    match locked.unwrap_or(Ok(None)) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(monitor_failure(format!(
            "container {} is restarting under its monitor: stop it first",
            rec.name
        ))),
        Err(e) => Err(monitor_failure(format!("the monitor lock: {e}"))),
    }
}

/// Run the container, and again as its restart policy or
/// `--health-on-failure=restart` says, until it stays ended.
fn run(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    rootfs: RootfsChoice,
    scopes: SystemdScopes,
    net: &crate::network::Access,
    monitor: &mut Monitor,
) -> Result<i32, container::ContainerError> {
    let mut backoff = Backoff::default();
    loop {
        // The record says where its ports are published while it runs.
        if let Some(f) = &monitor.forwarder {
            rec.network_settings.ports = f.published();
        }
        let how = Supervision {
            rootfs,
            scopes,
            stdio: monitor.io_for_container(),
            list_running: true,
            net: net.clone(),
        };
        let began = Instant::now();
        let result = container::supervise(store, rec, mapping, how, monitor);
        let Ok(code) = result else { break result };
        // `--health-on-failure=restart` stopped it: start it again unless
        // it was stopped or removed meanwhile, whatever its policy says.
        let health_restart = std::mem::take(&mut monitor.health_restart);
        if !again_due(store, rec, code, health_restart) {
            break result;
        }
        if !backoff.wait(store, rec, began.elapsed()) {
            break result;
        }
        rec.restart_count += 1;
        if let Err(f) = monitor.again(rec) {
            tracing::warn!("restarting container {}: {}", rec.name, f.detail);
            break result;
        }
    }
}

/// What is left when the container stays ended: a restart delay's mark,
/// and for `--rm` the exit code for its waiters and its anonymous volumes.
fn finish(
    store: &Store,
    mapping: &IdMapping,
    rec: &ContainerRecord,
    result: &Result<i32, container::ContainerError>,
) {
    // A stop during the delay: the record no longer says restarting.
    if let Ok(mut latest) = ContainerRecord::load(store, &rec.id) {
        if latest.state.restarting {
            latest.state.restarting = false;
            let _ = latest.save(store);
        }
    }
    // `--rm` takes the container's anonymous volumes with it, as in Docker;
    // for a container under a monitor (`-d`, `-t`, `-p`) only the monitor
    // is sure to be there when it ends.
    if rec.host_config.auto_remove {
        // The record is gone: whoever waits for the container's removal
        // reads its exit code here.
        if let Ok(code) = result {
            let _ = std::fs::write(store.removed_exit_file(&rec.id), code.to_string());
        }
        if let Err(e) = container::remove_anonymous_volumes(store, mapping, rec) {
            tracing::warn!("removing the volumes of container {}: {e}", rec.name);
        }
    }
}

/// One container under this monitor: its stdio, log, attach clients and
/// deadline.
struct Monitor {
    status: Option<Sender<Status>>,
    sock_path: PathBuf,
    listener: UnixListener,
    clients: Vec<Client>,
    /// None with `--log-driver none`.
    log: Option<log::Writer>,
    /// The first failed write of the log in this run.
    log_failed: Option<String>,
    /// The container's ends of its stdio until it has them.
    io: Option<ContainerIo>,
    /// Our ends, once PID 1 runs.
    parent: Option<ParentIo>,
    timeout: Option<u64>,
    /// Published ports (`-p`, `-P`), bound before the container starts.
    forwarder: Option<Forwarder>,
    store: Store,
    /// The caller's mapping has one id (how a probe's exec is confined).
    single_id: bool,
    /// The health probes of the current run.
    prober: Option<health::Prober>,
    /// The timers that end the current run.
    deadlines: ending::Deadlines,
    /// `--health-on-failure=restart` stopped this run.
    health_restart: bool,
}
impl Monitor {
    /// Everything before the container starts: stdio, the attach socket
    /// (and with `attach_first`, its first client), the log.
    fn prepare(
        store: &Store,
        rec: &ContainerRecord,
        attach_first: bool,
        mut status: Option<Sender<Status>>,
        single_id: bool,
    ) -> Result<Monitor, (Failure, Option<Sender<Status>>)> {
        // Published ports first: a taken one fails the start before
        // anything else is set up, naming the port.
        let forwarder = match Forwarder::bind(&rec.ports_to_publish()) {
            Ok(f) if f.is_empty() => None,
            Ok(f) => Some(f),
            Err(e) => {
                return Err((
                    Failure::new(Step::Network, e.to_string(), exit::BURROW),
                    status,
                ))
            }
        };
        let io = match ContainerIo::new(rec.config.tty, rec.config.open_stdin) {
            Ok(io) => io,
            Err(e) => return Err((Failure::sys(Step::Stdio, e, exit::BURROW), status)),
        };
        let sock_path = socket_path(store, &rec.id);
        let _ = std::fs::remove_file(&sock_path);
        let listener = match UnixListener::bind(&sock_path) {
            Ok(l) => l,
            Err(e) => {
                return Err((
                    Failure::io(Step::Monitor, &e, exit::BURROW).at(&sock_path),
                    status,
                ))
            }
        };
        let mut clients = Vec::new();
        if attach_first {
            if let Some(s) = &mut status {
                s.tell(Status::Listening);
            }
            // The launcher connects at once; don't wait forever for a dead one.
            let _ = listener.set_nonblocking(true);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        clients.push(Client::new(s));
                        break;
                    }
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => {
                        return Err((monitor_failure(format!("no attach client: {e}")), status))
                    }
                }
            }
        }
        let _ = listener.set_nonblocking(true);
        let log_path = store.container_dir(&rec.id).join(container::LOG_FILE);
        let cfg = &rec.host_config.log_config;
        let log = match (log::Format::of(cfg), log::Rotation::of(cfg)) {
            (None, _) => None,
            (_, Err(e)) => return Err((monitor_failure(e.to_string()), status)),
            (Some(format), Ok(rotation)) => match log::Writer::open(&log_path, rotation, format) {
                Ok(l) => Some(l),
                Err(e) => {
                    return Err((
                        Failure::io(Step::Monitor, &e, exit::BURROW).at(&log_path),
                        status,
                    ))
                }
            },
        };
        Ok(Monitor {
            status,
            sock_path,
            listener,
            clients,
            log,
            log_failed: None,
            io: Some(io),
            parent: None,
            timeout: rec.host_config.timeout,
            forwarder,
            store: store.clone(),
            single_id,
            prober: None,
            deadlines: ending::Deadlines::default(),
            health_restart: false,
        })
    }

    /// Ready for the next run of a restarted container: fresh stdio, the
    /// published ports bound again.
    fn again(&mut self, rec: &ContainerRecord) -> Result<(), Failure> {
        self.io = Some(
            ContainerIo::new(rec.config.tty, rec.config.open_stdin)
                .map_err(|e| Failure::sys(Step::Stdio, e, exit::BURROW))?,
        );
        self.forwarder = match Forwarder::bind(&rec.ports_to_publish()) {
            Ok(f) if f.is_empty() => None,
            Ok(f) => Some(f),
            Err(e) => return Err(Failure::new(Step::Network, e.to_string(), exit::BURROW)),
        };
        Ok(())
    }

    /// PID 1's stdio as the sandbox takes it.
    fn io_for_container(&self) -> sandbox::Stdio {
        self.io
            .as_ref()
            .map_or(sandbox::Stdio::Inherit, ContainerIo::for_container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_that_stays_ended_is_no_longer_restarting_and_leaves_its_code() {
        let mapping = IdMapping::detect(std::path::Path::new("/etc"));
        let (_d, store) = crate::store::temp_store();
        // Stopped during a restart delay.
        let mut rec = ContainerRecord::saved_for_test(&store, "delayed");
        rec.state.restarting = true;
        rec.save(&store).unwrap();
        finish(&store, &mapping, &rec, &Ok(0));
        let saved = ContainerRecord::load(&store, &rec.id).unwrap();
        assert!(!saved.state.restarting);
        assert!(!store.removed_exit_file(&rec.id).exists(), "it is kept");
        // `--rm`: its waiters read the code it ended with; none for a
        // start that failed.
        for (result, left) in [
            (Ok(3), Some("3")),
            (Err(container::ContainerError::SameName), None),
        ] {
            let mut gone = ContainerRecord::saved_for_test(&store, "gone");
            gone.host_config.auto_remove = true;
            std::fs::remove_dir_all(store.container_dir(&gone.id)).unwrap();
            finish(&store, &mapping, &gone, &result);
            let code = std::fs::read_to_string(store.removed_exit_file(&gone.id)).ok();
            assert_eq!(code.as_deref(), left, "{result:?}");
        }
    }
}
