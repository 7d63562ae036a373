//! `exec`: a new process inside a running container's namespaces.
//!
//! ```text
//! burrow exec (caller, host ids)   opens PID 1's namespaces, relays signals,
//!                                  reads the exit code the joiner reports
//!  └─ joiner                       setns user, mnt, uts, ipc, pid; waits for
//!                                  the process and reports its exit
//!      └─ process (in the pid ns)  user, env, cwd, signals, exec the command
//! ```
//!
//! Rootless, this needs no helper: the caller owns the container's user
//! namespace (its inner process created it with the caller's euid), so it
//! holds every capability in it, which is what setns(2) asks for. setns of a
//! pid namespace only applies to children, hence the second fork.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::process::{enter_and_exec, ContainerType};
use super::{channel_failure, report, Failure, Process, StartError, Stdio, Step};
use crate::exit;
use crate::linux::channel::{channel, Receiver, Sender};
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::process;

/// What to run, and where; built by `container::exec` from the record.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The container's PID 1 as the host sees it, and its start time (clock
    /// ticks since boot) as recorded in the pid file: a reused pid is refused.
    pub pid1: i32,
    pub pid1_start: u64,
    /// `Stdio::Detached` for `-d`, `Stdio::Pty` for `-t` on a terminal.
    pub process: Process,
    /// The container's cgroup, which the process joins (its limits apply,
    /// `pause` freezes it, `stats` counts it).
    pub cgroup: Option<std::path::PathBuf>,
    /// Relay the caller's SIGINT, SIGTERM, SIGHUP and SIGQUIT to the
    /// process (a front end's exec); a caller with its own loop (a monitor's
    /// health probe) keeps its signals.
    pub relay_signals: bool,
}

impl ExecSpec {
    fn detached(&self) -> bool {
        self.process.stdio == Stdio::Detached || self.process.outlives_parent
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// PID 1 is gone (or its pid now names another process).
    #[error("the container is not running")]
    NotRunning,
    /// Joining or starting failed; carries Docker's exit code.
    #[error(transparent)]
    Failed(#[from] StartError),
}

impl ExecError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotRunning => exit::BURROW,
            ExecError::Failed(e) => e.code(),
        }
    }
}

impl From<Failure> for ExecError {
    fn from(f: Failure) -> Self {
        if f.step == Step::ContainerGone {
            ExecError::NotRunning
        } else {
            ExecError::Failed(f.into())
        }
    }
}

/// A process that has been exec'd inside the container.
#[derive(Debug)]
pub struct Execd {
    /// The joiner (our child), which waits for the process.
    joiner: Pid,
    /// The exec'd process as the host sees it.
    pub pid: Pid,
    reports: Receiver,
    signals: Option<SignalFd>,
}

/// Start `spec.process` in the container whose PID 1 is `spec.pid1`.
/// Returns once the command has been exec'd (for `-d`, with nothing left to
/// wait for), or with the reason it could not be.
pub fn exec(spec: &ExecSpec) -> Result<Execd, ExecError> {
    // Step 1: PID 1's namespaces, opened while it is provably the recorded
    // process (same start time, read through a pinned /proc/PID fd).
    let ns =
        Namespaces::open(Path::new("/proc"), spec.pid1, spec.pid1_start).map_err(|e| match e {
            NsError::Gone { .. } | NsError::Reused { .. } => ExecError::NotRunning,
            e => Failure::new(Step::OpenNamespaces, e.to_string(), exit::BURROW).into(),
        })?;

    // Step 2: signals to relay queue on a signalfd from now on, so a Ctrl-C
    // during setup still reaches the process. The children inherit the
    // mask: the joiner keeps it (it must survive to report the exit), the
    // process resets it before exec.
    let signals = if spec.detached() || !spec.relay_signals {
        None
    } else {
        report::relay_signalfd()
    };

    // Step 3: the joiner.
    let pipe_err = |e: std::io::Error| Failure::io(Step::Pipe, &e, exit::BURROW);
    let (up_tx, mut up_rx) = channel().map_err(pipe_err)?;
    let (exec_tx, mut exec_rx) = channel().map_err(pipe_err)?;
    let ours = [up_rx.as_raw_fd(), exec_rx.as_raw_fd()];
    let joiner = process::fork_child(|| {
        for fd in ours {
            let _ = nix::unistd::close(fd);
        }
        joiner_main(spec, &ns, up_tx, exec_tx)
    })
    .map_err(|e| Failure::sys(Step::Fork, e.errno(), exit::BURROW))?;
    drop(ns);

    // Step 4: the joiner reports the process's pid, or why it has none.
    let pid = up_rx.wait_pid(|m| tracing::warn!("unexpected report from exec: {m:?}"));
    let pid = match pid {
        Ok(p) => Pid::from_raw(p),
        Err(e) => {
            let code = process::wait_exit_code(joiner).unwrap_or(exit::BURROW);
            return Err(channel_failure(Step::JoinNamespaces, e, || code).into());
        }
    };

    // Step 5: the process sets itself up; EOF on the exec channel means it
    // exec'd (the pipe is close-on-exec), a message says why it did not.
    if let Err(e) = exec_rx.wait_exec() {
        let _ = process::wait_exit_code(joiner);
        return Err(channel_failure(Step::Exec, e, || exit::BURROW).into());
    }
    if spec.detached() {
        // The joiner exits as soon as it has reported the pid.
        let _ = process::wait_exit_code(joiner);
    }
    Ok(Execd {
        joiner,
        pid,
        reports: up_rx,
        signals,
    })
}

impl Execd {
    /// The process that joined the container and relays its terminal:
    /// SIGWINCH to it copies our stdin's window size to the exec's pty.
    pub fn joiner(&self) -> Pid {
        self.joiner
    }

    /// The channel the joiner reports the exit on, for a caller's own poll
    /// loop: readable once the process has ended (then
    /// `wait_relaying_signals` returns at once).
    pub fn report_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.reports.as_fd()
    }

    /// The exit report was read along with the pid: poll would not see it.
    pub fn reported(&self) -> bool {
        self.reports.has_buffered()
    }

    /// Wait for the process's exit code (128 + signal when killed),
    /// relaying SIGINT, SIGTERM, SIGHUP and SIGQUIT to it.
    pub fn wait_relaying_signals(mut self) -> i32 {
        match report::wait_exit(&mut self.reports, self.signals.as_ref(), self.pid) {
            Some(code) => {
                let _ = process::wait_exit_code(self.joiner);
                code
            }
            // The joiner died without reporting (killed): its own exit
            // status is the best we know.
            None => process::wait_exit_code(self.joiner).unwrap_or(exit::BURROW),
        }
    }
}

/// Move this process into the container's cgroup `dir`. The kernel lets us
/// only from a cgroup that shares a delegated ancestor with it; from a login
/// session's cgroup (a container in a scope of the user's systemd), the
/// manager does the move for us, as podman's processes rely on it to.
fn join_cgroup(dir: &Path) -> Result<(), Failure> {
    use crate::linux::{cgroup, systemd};
    let e = match cgroup::move_pid(dir, 0) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let failure = |detail: String| Failure::new(Step::Cgroup, detail, exit::BURROW).at(dir);
    let denied = matches!(&e, cgroup::CgroupError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM)));
    let root = Path::new(cgroup::SYS_FS_CGROUP);
    if !denied || systemd::unit_of(root, dir).is_none() {
        return Err(failure(e.to_string()));
    }
    systemd::attach_self(root, dir, std::time::Duration::from_secs(10))
        .map_err(|s| failure(format!("{e}; {s}")))
}

/// The joiner. Runs as the forked child; returns its exit code.
fn joiner_main(spec: &ExecSpec, ns: &Namespaces, mut up: Sender, mut exec_tx: Sender) -> i32 {
    let mut failed = |f: Failure| {
        up.failed(f);
        exit::BURROW
    };
    // In the foreground, if the caller dies, so do we (and the process
    // after us); a detached process outlives the caller by design.
    if !spec.detached() {
        let _ = process::set_parent_death_signal(Signal::SIGKILL);
    }

    // Step 1: the container's cgroup, while /sys/fs/cgroup is still the
    // host's (the container's /sys is a read-only bind), and before the
    // fork, so the process is never counted outside its limits.
    if let Some(dir) = &spec.cgroup {
        if let Err(f) = join_cgroup(dir) {
            return failed(f);
        }
    }

    // Step 2: nothing in the container may trace the process we fork into
    // it, or read its memory (the caller's environment), before it execs
    // (runc's CVE-2016-9962); it inherits this from us.
    if let Err(e) = process::set_dumpable(false) {
        return failed(Failure::sys(Step::Dumpable, e, exit::BURROW));
    }

    // Step 3: the container's namespaces, user first (see linux::ns).
    if let Err(e) = ns.join() {
        return failed(Failure::new(
            Step::JoinNamespaces,
            e.to_string(),
            exit::BURROW,
        ));
    }

    // -t: a pty from the container's devpts (we are in its mount namespace
    // now), so `tty` inside names a real /dev/pts/N.
    let pty = if spec.process.stdio == Stdio::Pty {
        match crate::linux::tty::open_pty_in(Path::new("/dev/pts")) {
            Ok(p) => Some(p),
            Err(e) => return failed(Failure::sys(Step::Terminal, e, exit::BURROW).at("/dev/pts")),
        }
    } else {
        None
    };

    // Step 4: fork into the pid namespace. ENOMEM means its init (PID 1)
    // has exited and the namespace takes no new members (pid_namespaces(7)).
    let up_fd = up.as_raw_fd();
    let joined = ContainerType::Joined {
        terminal: pty.as_ref().map(|(_, s)| s.as_raw_fd()),
    };
    let pid = match process::fork_child(|| {
        // The process must not keep the report channel: the caller reads it
        // to EOF.
        let _ = nix::unistd::close(up_fd);
        enter_and_exec(joined, &spec.process, ns.setgroups_allowed, &mut exec_tx)
    }) {
        Ok(p) => p,
        Err(e) if e.errno() == nix::Error::ENOMEM => {
            up.failed(Failure::new(
                Step::ContainerGone,
                "its PID 1 has exited",
                exit::BURROW,
            ));
            return exit::BURROW;
        }
        Err(e) => {
            up.failed(Failure::sys(Step::Fork, e.errno(), exit::BURROW));
            return exit::BURROW;
        }
    };
    drop(exec_tx);
    up.pid(pid.as_raw());

    // Step 5: wait and pass the exit on; a detached process is left to
    // whoever inherits it (the nearest subreaper, or init).
    if spec.detached() {
        return 0;
    }
    if let Some((master, slave)) = pty {
        drop(slave);
        relay_pty(&master);
    }
    let code = process::wait_exit_code(pid).unwrap_or(exit::BURROW);
    up.exited(code);
    code
}

/// Copy the caller's terminal (our stdin/stdout) to and from the pty master
/// until the command's side closes, keeping the window size in step.
fn relay_pty(master: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;

    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let copy_size = || {
        if let Some((rows, cols)) = crate::linux::tty::window_size(stdin.as_fd()) {
            let _ = crate::linux::tty::set_window_size(master, rows, cols);
        }
    };
    copy_size();
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    let _ = set.thread_block();
    let winch = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut buf = [0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Some(w) = &winch {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e == nix::Error::EINTR {
                continue;
            }
            return;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            // EIO: every slave descriptor is closed, the command is gone.
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    if write_all(stdout.as_fd(), &buf[..n]).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
        if stdin_open && ready[1] {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
        if ready.last() == Some(&true) {
            if let Some(w) = &winch {
                while let Ok(Some(_)) = w.read_signal() {}
                copy_size();
            }
        }
    }
}

fn write_all<Fd: std::os::fd::AsFd>(fd: Fd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(&fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
