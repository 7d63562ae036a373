//! The per-container monitor: burrow re-executed (`burrow __monitor ID`) in
//! a session of its own, so detached containers outlive the shell that
//! started them. It is the parent of the sandbox's inner process (which
//! reaps PID 1), records the exit, writes the log, holds the pty of `-t`
//! containers, serves attach clients on a unix socket, forwards published
//! ports (`network::forward`), enforces `--timeout`, starts the container
//! again as `--restart` says, and removes `--rm` containers. If it is killed, the parent-death signals
//! take the container down with it, and `ps` shows it exited.

pub mod attach;
pub mod foreground;
mod health;
pub mod log;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::cgroup::SystemdScopes;
use crate::container::health::{OnFailure, ProbeFd};
use crate::container::{self, ContainerRecord, Ended, Supervision, Watch};
use crate::exit;
use crate::linux::channel::{channel, ChannelError, Message, Sender};
use crate::linux::userns::IdMapping;
use crate::linux::{process, tty};
use crate::network::forward::{self, Forwarder};
use crate::sandbox::{self, Failure, RootfsChoice, StartError, Started, Step};
use crate::store::Store;

/// The descriptor number the launcher's status channel has in the monitor.
const STATUS_FD: RawFd = 3;

/// The attach socket of a container. Unix socket paths are limited to 107
/// bytes, so it is named by the short id, directly in the runtime dir.
pub fn socket_path(store: &Store, id: &str) -> PathBuf {
    store
        .paths
        .runtime
        .join(format!("{}.sock", &id[..id.len().min(12)]))
}

/// A running monitor, as seen by the process that launched it.
pub struct Launched {
    /// Connected before the container started (`attach_first`): no output is
    /// missed.
    pub attached: Option<UnixStream>,
    pub pid1: i32,
}

fn monitor_failure(detail: impl Into<String>) -> Failure {
    Failure::new(Step::Monitor, detail, exit::BURROW)
}

/// Start `rec` under a new monitor and return once PID 1 runs (or with why it
/// could not). With `attach_first`, connect to the monitor before it starts
/// the container.
pub fn launch(
    store: &Store,
    rec: &ContainerRecord,
    attach_first: bool,
) -> Result<Launched, StartError> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| Failure::io(Step::Monitor, &e, exit::BURROW).at("/proc/self/exe"))?;
    let (status_tx, mut status_rx) =
        channel().map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))?;
    let root = store.root().to_path_buf();
    let id = rec.id.clone();
    let status_raw = status_tx.as_raw_fd();
    let child = process::fork_child(|| {
        // A session of our own: the caller's terminal hangups and Ctrl-C
        // must not reach a detached container.
        let _ = nix::unistd::setsid();
        if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
            for fd in 0..3 {
                let _ = process::dup_onto(null.as_raw_fd(), fd);
            }
        }
        if process::dup_onto(status_raw, STATUS_FD).is_err() {
            return exit::BURROW;
        }
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg0("burrow")
            .arg("--root")
            .arg(&root)
            .arg("__monitor")
            .arg(&id);
        if attach_first {
            cmd.arg("--attach-first");
        }
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        let _ = e;
        exit::CANNOT_RUN
    })
    .map_err(|e| Failure::sys(Step::Fork, e.errno(), exit::BURROW))?;
    drop(status_tx);
    // The monitor's own exit is reaped by init once we are gone; reap it
    // here only if it dies early (below).
    let mut attached = None;
    loop {
        match status_rx.recv() {
            Ok(Message::Listening) => {
                let sock = UnixStream::connect(socket_path(store, &rec.id))
                    .map_err(|e| monitor_failure(format!("attaching: {e}")))?;
                attached = Some(sock);
            }
            Ok(Message::Pid(pid1)) => return Ok(Launched { attached, pid1 }),
            Ok(Message::Failed(f)) => {
                let _ = process::wait_exit_code(child);
                return Err(f.into());
            }
            Err(ChannelError::Closed) => {
                let code = process::wait_exit_code(child).unwrap_or(exit::BURROW);
                return Err(monitor_failure(format!(
                    "the container's monitor exited ({code}) before starting it"
                ))
                .into());
            }
            Ok(m) => return Err(monitor_failure(format!("unexpected status {m:?}")).into()),
            Err(e) => return Err(monitor_failure(format!("status from the monitor: {e}")).into()),
        }
    }
}

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
    helper_path: String,
) -> i32 {
    let mut status = status_sender();
    let mut fail = |f: Failure| {
        if let Some(s) = &mut status {
            s.failed(f);
        }
        exit::BURROW
    };
    let mut rec = match ContainerRecord::load(store, id) {
        Ok(r) => r,
        Err(e) => return fail(monitor_failure(e.to_string())),
    };
    // One monitor per container: a second one (a `start` while the first
    // waits to restart it) would run it twice. The previous monitor of a
    // container just stopped may still be finishing (it records the exit
    // before it ends): give it a moment.
    let locked = crate::util::poll::until(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || match rec.lock_monitor(store) {
            Ok(None) => None,
            r => Some(r),
        },
    );
    let _lock = match locked.unwrap_or(Ok(None)) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return fail(monitor_failure(format!(
                "container {} is restarting under its monitor: stop it first",
                rec.name
            )))
        }
        Err(e) => return fail(monitor_failure(format!("the monitor lock: {e}"))),
    };
    // A start clears a manual stop and, as in Docker, the restart count.
    let _ = std::fs::remove_file(rec.manual_stop_path(store));
    rec.restart_count = 0;
    let mut monitor = match Monitor::prepare(store, &rec, attach_first, status, !mapping.is_range())
    {
        Ok(m) => m,
        Err((f, mut status)) => {
            if let Some(s) = &mut status {
                s.failed(f);
            }
            return exit::BURROW;
        }
    };
    let mut backoff = Backoff::default();
    let result = loop {
        // The record says where its ports are published while it runs.
        if let Some(f) = &monitor.forwarder {
            rec.network_settings.ports = f.published();
        }
        let how = Supervision {
            rootfs,
            scopes,
            stdio: monitor.io_for_container(),
            list_running: true,
            helper_path: helper_path.clone(),
        };
        let began = Instant::now();
        let result = container::supervise(store, &mut rec, mapping, how, &mut monitor);
        let Ok(code) = result else { break result };
        // `--health-on-failure=restart` stopped it: start it again unless
        // it was stopped or removed meanwhile, whatever its policy says.
        let health_restart = std::mem::take(&mut monitor.health_restart)
            && !rec.manual_stop_path(store).exists()
            && match ContainerRecord::load(store, &rec.id) {
                Ok(latest) => {
                    rec = latest;
                    true
                }
                Err(_) => false,
            };
        if !health_restart && !restart_due(store, &mut rec, code) {
            break result;
        }
        if !backoff.wait(store, &mut rec, began.elapsed()) {
            break result;
        }
        rec.restart_count += 1;
        if let Err(f) = monitor.again(&rec) {
            tracing::warn!("restarting container {}: {}", rec.name, f.detail);
            break result;
        }
    };
    let _ = std::fs::remove_file(&monitor.sock_path);
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
        if let Ok(code) = &result {
            let _ = std::fs::write(store.removed_exit_file(&rec.id), code.to_string());
        }
        if let Err(e) = container::remove_anonymous_volumes(store, mapping, &rec) {
            tracing::warn!("removing the volumes of container {}: {e}", rec.name);
        }
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            let f = match e {
                container::ContainerError::Start(e) => e.failure,
                e => monitor_failure(e.to_string()),
            };
            if let Some(s) = &mut monitor.status {
                s.failed(f);
            }
            exit::BURROW
        }
    }
}

/// Whether the restart policy starts the container again after it ended
/// with `code`: not after a manual stop (`stop`, `kill`, `rm -f`: a marker
/// or a missing record), else as the policy says.
fn restart_due(store: &Store, rec: &mut ContainerRecord, code: i32) -> bool {
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
struct Backoff {
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
    fn wait(&mut self, store: &Store, rec: &mut ContainerRecord, ran: Duration) -> bool {
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

/// The status channel `launch` passed as descriptor 3, if we were launched
/// that way (a pipe inherited there).
fn status_sender() -> Option<Sender> {
    let fd = process::adopt_inherited_fd(STATUS_FD).ok().flatten()?;
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {
            Some(Sender::from(OwnedFd::from(file)))
        }
        // Not ours to use; dropping it closes a descriptor nobody else
        // owns (it was inherited, see adopt_inherited_fd).
        _ => None,
    }
}

/// One container under this monitor: its stdio, log, attach clients and
/// deadline.
struct Monitor {
    status: Option<Sender>,
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
    /// Stopping for `--health-on-failure`: SIGKILL at this instant.
    kill_at: Option<Instant>,
    /// `--health-on-failure=restart` stopped this run.
    health_restart: bool,
}

/// What the event loop waits on, one per poll entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// The container's output (stdout, stderr or the pty), by index. First,
    /// so nothing written before the exit is lost.
    Output(usize),
    /// An attach client's frames (stdin, resize, end of stdin).
    Client(usize),
    /// A published port's listener or connection.
    Forward(forward::Key),
    /// A new attach client.
    Listener,
    /// The sandbox's report channel: the exit.
    Report,
    /// A health probe's report or output.
    Probe(ProbeFd),
}

impl Monitor {
    /// Everything before the container starts: stdio, the attach socket
    /// (and with `attach_first`, its first client), the log.
    fn prepare(
        store: &Store,
        rec: &ContainerRecord,
        attach_first: bool,
        mut status: Option<Sender>,
        single_id: bool,
    ) -> Result<Monitor, (Failure, Option<Sender>)> {
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
                s.listening();
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
            kill_at: None,
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

    /// Wait for the exit, copying output to the log and the clients,
    /// clients' input to the container, and enforcing `--timeout`.
    /// Returns the exit code and whether the deadline struck.
    fn event_loop(
        &mut self,
        started: &mut Started,
        io: &mut ParentIo,
        rec: &ContainerRecord,
    ) -> (i32, bool) {
        let deadline = self
            .timeout
            .map(|t| Instant::now() + Duration::from_secs(t));
        let mut timed_out = false;
        let mut buf = vec![0u8; 64 * 1024];
        let mut outputs = io.outputs();
        crate::linux::process::trim_heap();
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) && !timed_out {
                // --timeout: the container has had its time.
                timed_out = true;
                let _ = nix::sys::signal::kill(started.pid1, nix::sys::signal::Signal::SIGKILL);
            }
            if self.kill_at.is_some_and(|d| Instant::now() >= d) {
                // The stop signal was not enough.
                self.kill_at = None;
                let _ = nix::sys::signal::kill(started.pid1, nix::sys::signal::Signal::SIGKILL);
            }
            // The nearest timer: --timeout, a probe due or overdue, a stop's
            // deadline. Rounded up, so it never wakes just before it.
            let wake = [
                deadline.filter(|_| !timed_out),
                self.prober.as_ref().and_then(health::Prober::wake_at),
                self.kill_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = match wake {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    let ms = left.as_micros().div_ceil(1000).min(60_000) as i32;
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE)
                }
                None => PollTimeout::NONE,
            };
            let mut sources = vec![Source::Report, Source::Listener];
            let mut fds = vec![
                PollFd::new(started.report_fd(), PollFlags::POLLIN),
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            ];
            for (i, (_, fd)) in outputs.iter().enumerate() {
                if let Some(fd) = fd {
                    sources.push(Source::Output(i));
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            for (i, c) in self.clients.iter().enumerate() {
                sources.push(Source::Client(i));
                fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
            }
            if let Some(f) = &self.forwarder {
                for (key, fd, flags) in f.interest() {
                    sources.push(Source::Forward(key));
                    fds.push(PollFd::new(fd, flags));
                }
            }
            if let Some(p) = &self.prober {
                for (which, fd) in p.fds() {
                    sources.push(Source::Probe(which));
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => return (exit::BURROW, timed_out),
            }
            let mut ready: Vec<Source> = sources
                .into_iter()
                .zip(&fds)
                .filter(|(_, f)| {
                    f.revents().is_some_and(|r| {
                        r.intersects(
                            PollFlags::POLLIN
                                | PollFlags::POLLOUT
                                | PollFlags::POLLHUP
                                | PollFlags::POLLERR,
                        )
                    })
                })
                .map(|(s, _)| s)
                .collect();
            drop(fds);
            ready.sort();
            // A connection polled on both of its sockets is pumped once.
            ready.dedup();
            for source in ready {
                match source {
                    Source::Output(i) => {
                        let (stream, fd) = &mut outputs[i];
                        let Some(f) = fd else { continue };
                        match nix::unistd::read(f.as_fd(), &mut buf) {
                            Ok(n) if n > 0 => self.output(*stream, &buf[..n]),
                            // EOF (or EIO on a pty whose slave is gone).
                            _ => *fd = None,
                        }
                    }
                    Source::Client(i) => self.clients[i].read_input(io),
                    Source::Forward(key) => {
                        if let Some(f) = &mut self.forwarder {
                            f.ready(key);
                        }
                    }
                    Source::Listener => {
                        while let Ok((s, _)) = self.listener.accept() {
                            let _ = s.set_nonblocking(false);
                            self.clients.push(Client::new(s));
                        }
                    }
                    Source::Report => {
                        if let Some(code) = started.read_report() {
                            self.drain(&mut outputs, &mut buf);
                            return (code, timed_out);
                        }
                    }
                    Source::Probe(which) => {
                        if let Some(p) = &mut self.prober {
                            p.readable(which);
                        }
                    }
                }
            }
            let action = match &mut self.prober {
                Some(p) => p.tick(&self.store, rec),
                None => None,
            };
            if let Some(a) = action {
                self.on_unhealthy(a, started, rec);
            }
            self.clients.retain(|c| c.alive);
            if let Some(f) = &mut self.forwarder {
                f.sweep();
            }
        }
    }

    /// `--health-on-failure`: kill it, or stop it (the stop signal, SIGKILL
    /// after Docker's ten seconds), and for `restart` start it again once
    /// it has ended.
    fn on_unhealthy(&mut self, action: OnFailure, started: &Started, rec: &ContainerRecord) {
        use nix::sys::signal::{kill, Signal};
        tracing::info!("container {} is unhealthy: {action:?}", rec.name);
        match action {
            OnFailure::None => {}
            OnFailure::Kill => {
                let _ = kill(started.pid1, Signal::SIGKILL);
            }
            OnFailure::Stop | OnFailure::Restart => {
                let sig = rec
                    .config
                    .stop_signal
                    .as_deref()
                    .and_then(|s| crate::util::signal::parse_signal(s).ok())
                    .unwrap_or(Signal::SIGTERM);
                let _ = kill(started.pid1, sig);
                self.kill_at = Some(Instant::now() + Duration::from_secs(10));
                self.health_restart = action == OnFailure::Restart;
            }
        }
    }

    /// What the container wrote before it ended, still in the pipes.
    fn drain(&mut self, outputs: &mut [(u8, Option<OwnedFd>)], buf: &mut [u8]) {
        for (stream, fd) in outputs.iter_mut() {
            if let Some(f) = fd.take() {
                let _ = nix::fcntl::fcntl(
                    &f,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                while let Ok(n) = nix::unistd::read(f.as_fd(), buf) {
                    if n == 0 {
                        break;
                    }
                    self.output(*stream, &buf[..n]);
                }
            }
        }
        if let Some(Err(e)) = self.log.as_mut().map(log::Writer::flush) {
            self.log_failed.get_or_insert_with(|| log::write_failed(&e));
        }
    }

    fn output(&mut self, stream: u8, data: &[u8]) {
        if let Some(Err(e)) = self.log.as_mut().map(|l| l.write(stream, data)) {
            self.log_failed.get_or_insert_with(|| log::write_failed(&e));
        }
        broadcast(&mut self.clients, stream, data);
    }
}

impl Watch for Monitor {
    /// With `-t`, receive the pty master PID 1 sent before it exec'd; with
    /// published ports, open the namespaces the forwarder dials into.
    fn started(&mut self, started: &Started) -> Result<(), Failure> {
        if let Some(f) = &mut self.forwarder {
            // Through the inner process, which outlives PID 1 and whose
            // pid cannot be reused under us (see `Forwarder::attach`).
            f.attach(started.inner.as_raw())
                .map_err(|e| Failure::new(Step::Network, e.to_string(), exit::BURROW))?;
        }
        let io = self
            .io
            .take()
            .expect("the container's stdio is handed over once");
        let parent = io.parent_side().map_err(|e| {
            Failure::new(
                Step::Terminal,
                format!("receiving the container's pty: {e}"),
                exit::BURROW,
            )
        })?;
        self.parent = Some(parent);
        Ok(())
    }

    fn wait(&mut self, mut started: Started, rec: &ContainerRecord) -> Ended {
        if let Some(mut s) = self.status.take() {
            s.pid(started.pid1.as_raw());
        }
        let mut io = self.parent.take().expect("started hands over our stdio");
        self.prober = health::Prober::new(&self.store, rec, self.single_id);
        self.kill_at = None;
        let (code, timed_out) = self.event_loop(&mut started, &mut io, rec);
        // A probe still running dies with this run.
        self.prober = None;
        // The published ports are free before the exit is recorded.
        self.forwarder = None;
        broadcast(&mut self.clients, attach::EXIT, &code.to_be_bytes());
        Ended {
            code,
            problems: self.log_failed.take().into_iter().collect(),
            error: timed_out.then(|| {
                format!(
                    "killed after --timeout {}s",
                    rec.host_config.timeout.unwrap_or(0)
                )
            }),
        }
    }
}

/// The container's stdio as the monitor holds it.
struct ContainerIo {
    tty: Option<(OwnedFd, OwnedFd)>,
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: Option<(OwnedFd, OwnedFd)>,
    null: Option<OwnedFd>,
}

impl ContainerIo {
    fn new(tty_mode: bool, open_stdin: bool) -> nix::Result<Self> {
        if tty_mode {
            // PID 1 opens the pty in the container's devpts and sends us
            // the master over this socket pair.
            let (ours, theirs) = tty::console_socketpair()?;
            return Ok(ContainerIo {
                tty: Some((ours, theirs)),
                stdin: None,
                stdout: None,
                stderr: None,
                null: None,
            });
        }
        let null = File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|_| nix::Error::ENOENT)?;
        Ok(ContainerIo {
            tty: None,
            stdin: if open_stdin {
                Some(process::pipe()?)
            } else {
                None
            },
            stdout: Some(process::pipe()?),
            stderr: Some(process::pipe()?),
            null: Some(null),
        })
    }

    /// PID 1's stdio: the console socket (`-t`), else stdin (a pipe or
    /// /dev/null), stdout and stderr pipes.
    fn for_container(&self) -> sandbox::Stdio {
        if let Some((_, theirs)) = &self.tty {
            return sandbox::Stdio::ConsoleSocket(theirs.as_raw_fd());
        }
        let stdin = match (&self.stdin, &self.null) {
            (Some((r, _)), _) => r.as_raw_fd(),
            (None, Some(n)) => n.as_raw_fd(),
            (None, None) => 0,
        };
        sandbox::Stdio::Pipes([
            stdin,
            self.stdout.as_ref().map_or(1, |(_, w)| w.as_raw_fd()),
            self.stderr.as_ref().map_or(2, |(_, w)| w.as_raw_fd()),
        ])
    }

    /// Drop the ends that belong to the container now that it has them;
    /// with `-t`, receive the pty master PID 1 sent before it exec'd.
    fn parent_side(self) -> nix::Result<ParentIo> {
        Ok(match self.tty {
            Some((ours, _theirs)) => ParentIo {
                input: None,
                master: Some(tty::recv_fd(ours.as_raw_fd())?),
                stdout: None,
                stderr: None,
            },
            None => ParentIo {
                input: self.stdin.map(|(_, w)| w),
                master: None,
                stdout: self.stdout.map(|(r, _)| r),
                stderr: self.stderr.map(|(r, _)| r),
            },
        })
    }
}

struct ParentIo {
    input: Option<OwnedFd>,
    master: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl ParentIo {
    /// Streams to read: (stream id, fd). A pty is all stdout.
    fn outputs(&self) -> Vec<(u8, Option<OwnedFd>)> {
        let dup = |f: &OwnedFd| f.try_clone().ok();
        match &self.master {
            Some(m) => vec![(attach::STDOUT, dup(m))],
            None => vec![
                (attach::STDOUT, self.stdout.as_ref().and_then(dup)),
                (attach::STDERR, self.stderr.as_ref().and_then(dup)),
            ],
        }
    }

    fn write_input(&self, data: &[u8]) {
        let target = self.master.as_ref().or(self.input.as_ref());
        if let Some(fd) = target {
            let _ = write_all_fd(fd, data);
        }
    }

    fn close_input(&mut self) {
        match &self.master {
            // With a pty, end of input is the terminal's EOF character.
            Some(m) => {
                let _ = write_all_fd(m, &[4]);
            }
            // Dropping our write end gives the container EOF on stdin.
            None => self.input = None,
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        if let Some(m) = &self.master {
            let _ = tty::set_window_size(m, rows, cols);
        }
    }
}

struct Client {
    sock: UnixStream,
    frames: attach::Frames,
    alive: bool,
}

impl Client {
    fn new(sock: UnixStream) -> Self {
        Client {
            sock,
            frames: attach::Frames::default(),
            alive: true,
        }
    }

    fn read_input(&mut self, io: &mut ParentIo) {
        let mut buf = [0u8; 16 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) | Err(_) => self.alive = false,
            Ok(n) => {
                self.frames.feed(&buf[..n]);
                while let Some((kind, data)) = self.frames.next_frame() {
                    match kind {
                        attach::STDIN => io.write_input(&data),
                        attach::STDIN_EOF => io.close_input(),
                        attach::RESIZE if data.len() == 4 => io.resize(
                            u16::from_be_bytes([data[0], data[1]]),
                            u16::from_be_bytes([data[2], data[3]]),
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

fn write_all_fd(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn broadcast(clients: &mut [Client], stream: u8, data: &[u8]) {
    let f = attach::frame(stream, data);
    for c in clients.iter_mut() {
        if c.sock.write_all(&f).is_err() {
            c.alive = false;
        }
    }
}

/// Connect to a running container's monitor.
pub fn connect(store: &Store, id: &str) -> std::io::Result<UnixStream> {
    UnixStream::connect(socket_path(store, id))
}
