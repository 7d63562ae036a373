//! The per-container monitor: burrow re-executed (`burrow __monitor ID`) in
//! a session of its own, so detached containers outlive the shell that
//! started them. It is the parent of the sandbox's inner process (which
//! reaps PID 1), records the exit, writes the log, holds the pty of `-t`
//! containers, serves attach clients on a unix socket, enforces `--timeout`,
//! and removes `--rm` containers. If it is killed, the parent-death signals
//! take the container down with it, and `ps` shows it exited.

pub mod attach;
pub mod log;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

use crate::container::{self, ContainerRecord, State};
use crate::exit;
use crate::linux::userns::IdMapping;
use crate::linux::{process, tty};
use crate::sandbox::{self, RootfsChoice, StartError};
use crate::store::Store;

/// What the monitor tells the process that launched it, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
enum Status {
    /// The attach socket is ready (only when asked to wait for a client).
    Listening,
    /// PID 1 runs (host pid).
    Started(i32),
    Failed(StartError),
}

/// The descriptor number the launcher's status pipe has in the monitor.
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

/// Start `rec` under a new monitor and return once PID 1 runs (or with why it
/// could not). With `attach_first`, connect to the monitor before it starts
/// the container.
pub fn launch(
    store: &Store,
    rec: &ContainerRecord,
    attach_first: bool,
) -> Result<Launched, StartError> {
    let fail = |m: String| StartError {
        step: "monitor".into(),
        message: m,
        code: exit::BURROW,
        cleaned_up: false,
    };
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| fail(format!("finding burrow's own binary: {e}")))?;
    let (status_r, status_w) = process::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    let root = store.root().to_path_buf();
    let id = rec.id.clone();
    let status_raw = status_w.as_raw_fd();
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
    .map_err(|e| fail(format!("fork: {e}")))?;
    drop(status_w);
    // The monitor's own exit is reaped by init once we are gone; reap it
    // here only if it dies early (below).
    let mut lines = BufReader::new(File::from(status_r));
    let mut attached = None;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            let code = process::wait_exit_code(child).unwrap_or(exit::BURROW);
            return Err(fail(format!(
                "the container's monitor exited ({code}) before starting it"
            )));
        }
        match serde_json::from_str::<Status>(line.trim_end()) {
            Ok(Status::Listening) => {
                let sock = UnixStream::connect(socket_path(store, &rec.id))
                    .map_err(|e| fail(format!("attaching: {e}")))?;
                attached = Some(sock);
            }
            Ok(Status::Started(pid1)) => return Ok(Launched { attached, pid1 }),
            Ok(Status::Failed(e)) => {
                let _ = process::wait_exit_code(child);
                return Err(e);
            }
            Err(e) => return Err(fail(format!("garbled status from monitor: {e}"))),
        }
    }
}

/// The monitor process (`burrow __monitor ID`). Returns its exit code.
pub fn main(store: &Store, mapping: &IdMapping, id: &str, attach_first: bool) -> i32 {
    let status = status_file();
    let mut status = StatusPipe(status);
    let fail = |status: &mut StatusPipe, msg: String| {
        status.send(&Status::Failed(StartError {
            step: "monitor".into(),
            message: msg,
            code: exit::BURROW,
            cleaned_up: false,
        }));
        exit::BURROW
    };
    let mut rec = match ContainerRecord::load(store, id) {
        Ok(r) => r,
        Err(e) => return fail(&mut status, e.to_string()),
    };
    let rootfs = match RootfsChoice::from_env() {
        Ok(r) => r,
        Err(e) => return fail(&mut status, e),
    };
    let tty_mode = rec.config.tty;

    // The container's stdio: a pty, or pipes for stdout and stderr (and
    // stdin with -i).
    let io = match Stdio::new(tty_mode, rec.config.open_stdin) {
        Ok(io) => io,
        Err(e) => return fail(&mut status, format!("setting up stdio: {e}")),
    };

    // The attach socket.
    let sock_path = socket_path(store, id);
    let _ = std::fs::remove_file(&sock_path);
    let listener = match UnixListener::bind(&sock_path) {
        Ok(l) => l,
        Err(e) => return fail(&mut status, format!("binding {sock_path:?}: {e}")),
    };
    let mut clients: Vec<Client> = Vec::new();
    if attach_first {
        status.send(&Status::Listening);
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
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return fail(&mut status, format!("no attach client: {e}")),
            }
        }
    }
    let _ = listener.set_nonblocking(true);

    let mut log = match log::Writer::open(&store.container_dir(id).join(container::LOG_FILE)) {
        Ok(l) => l,
        Err(e) => return fail(&mut status, format!("opening the log: {e}")),
    };

    let mut spec = container::build_spec(store, &rec, mapping, rootfs, io.child_fds(), tty_mode);
    spec.console = io.console();
    // The container's cgroup (issue 4): we stay outside it.
    let mut started = match container::cgroup::for_start(&rec).and_then(|cg| {
        spec.cgroup = cg;
        sandbox::start(&spec).inspect_err(|_| {
            container::cgroup::discard(&spec);
        })
    }) {
        Ok(s) => s,
        Err(e) => {
            container::record_start_failure(store, &mut rec, mapping, &e);
            let _ = std::fs::remove_file(&sock_path);
            status.send(&Status::Failed(e));
            return exit::BURROW;
        }
    };
    let mut io = match io.parent_side() {
        Ok(io) => io,
        Err(e) => {
            // Without its terminal the container is unusable: end it.
            let _ = nix::sys::signal::kill(started.pid1, nix::sys::signal::Signal::SIGKILL);
            status.send(&Status::Failed(StartError::new(
                "tty",
                format!("receiving the container's pty: {e}"),
                exit::BURROW,
            )));
            return exit::BURROW;
        }
    };
    rec.rootfs_mode = Some(started.rootfs);
    rec.cgroup = spec.cgroup.as_ref().map(|p| p.dir.clone());
    rec.state = State::running(started.pid1.as_raw());
    let _ = rec.save(store);
    let _ = rec.write_pid_file(store);
    status.send(&Status::Started(started.pid1.as_raw()));
    drop(status);

    let deadline = rec
        .host_config
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(t));
    let mut timed_out = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut outputs: Vec<(u8, Option<OwnedFd>)> = io.outputs();
    let code = loop {
        let timeout = match deadline {
            Some(d) if !timed_out => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::NONE)
            }
            _ => PollTimeout::NONE,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) && !timed_out {
            // --timeout: the container has had its time.
            timed_out = true;
            let _ = nix::sys::signal::kill(started.pid1, nix::sys::signal::Signal::SIGKILL);
        }
        let mut fds = vec![
            PollFd::new(started.report_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        let out_base = fds.len();
        for (_, fd) in &outputs {
            if let Some(fd) = fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let client_base = fds.len();
        for c in &clients {
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break exit::BURROW,
        }
        let revents: Vec<bool> = fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            })
            .collect();
        drop(fds);
        // Output first, so nothing written before the exit is lost.
        let mut k = out_base;
        for (stream, fd) in outputs.iter_mut() {
            let Some(f) = fd else { continue };
            if revents[k] {
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = log.write(*stream, &buf[..n]);
                        broadcast(&mut clients, *stream, &buf[..n]);
                    }
                    // EOF (or EIO on a pty whose slave is gone).
                    _ => *fd = None,
                }
            }
            k += 1;
        }
        for (i, c) in clients.iter_mut().enumerate() {
            if revents[client_base + i] {
                c.read_input(&mut io);
            }
        }
        clients.retain(|c| c.alive);
        if revents[1] {
            while let Ok((s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                clients.push(Client::new(s));
            }
        }
        if revents[0] {
            if let Some(code) = started.read_report() {
                break code;
            }
        }
    };
    // Drain what the container wrote before it ended.
    for (stream, fd) in outputs.iter_mut() {
        if let Some(f) = fd.take() {
            let _ = nix::fcntl::fcntl(
                &f,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while let Ok(n) = nix::unistd::read(f.as_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                let _ = log.write(*stream, &buf[..n]);
                broadcast(&mut clients, *stream, &buf[..n]);
            }
        }
    }
    let _ = log.flush();
    broadcast(&mut clients, attach::EXIT, &code.to_be_bytes());
    let _ = std::fs::remove_file(&sock_path);
    let oom_killed = container::cgroup::discard(&spec);
    // The exit is recorded before the pid file goes: a record that still
    // says running without a pid file means its supervisor died.
    if !rec.host_config.auto_remove {
        // Re-read: `pause` may have changed the record meanwhile.
        let mut latest = ContainerRecord::load(store, id).unwrap_or(rec);
        latest.state.finish(code);
        latest.state.oom_killed = oom_killed;
        latest.cgroup = None;
        if timed_out {
            latest.state.error = format!(
                "killed after --timeout {}s",
                latest.host_config.timeout.unwrap_or(0)
            );
        }
        let _ = latest.save(store);
    }
    let _ = std::fs::remove_file(store.pid_file(id));
    code
}

/// The status pipe `launch` passed as descriptor 3.
fn status_file() -> Option<File> {
    let f = process::adopt_fd(STATUS_FD);
    // Only trust descriptor 3 if it is a pipe (we were launched by `launch`);
    // otherwise forget it without closing whatever it is.
    match f.metadata() {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {
            let _ = nix::fcntl::fcntl(
                &f,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            Some(f)
        }
        _ => {
            std::mem::forget(f);
            None
        }
    }
}

struct StatusPipe(Option<File>);

impl StatusPipe {
    fn send(&mut self, s: &Status) {
        if let Some(f) = &mut self.0 {
            let mut line = serde_json::to_string(s).expect("status serializes");
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// The container's stdio as the monitor holds it.
struct Stdio {
    tty: Option<(OwnedFd, OwnedFd)>,
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: Option<(OwnedFd, OwnedFd)>,
    null: Option<OwnedFd>,
}

impl Stdio {
    fn new(tty_mode: bool, open_stdin: bool) -> nix::Result<Self> {
        if tty_mode {
            // PID 1 opens the pty in the container's devpts and sends us
            // the master over this socket pair.
            let (ours, theirs) = tty::console_socketpair()?;
            return Ok(Stdio {
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
        Ok(Stdio {
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

    /// PID 1's end of the console socket (`-t`).
    fn console(&self) -> Option<RawFd> {
        self.tty.as_ref().map(|(_, theirs)| theirs.as_raw_fd())
    }

    /// PID 1's stdin, stdout, stderr (none with `-t`: the pty's slave).
    fn child_fds(&self) -> Option<[RawFd; 3]> {
        if self.tty.is_some() {
            return None;
        }
        let stdin = match (&self.stdin, &self.null) {
            (Some((r, _)), _) => r.as_raw_fd(),
            (None, Some(n)) => n.as_raw_fd(),
            (None, None) => 0,
        };
        Some([
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
