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
//!
//! A caller that starts the same command again and again (a health check's
//! probes) keeps a [`Resident`] joiner instead: it enters the container
//! once and then starts the process for each request as a child that
//! shares its memory until the exec, so a probe costs the command's setup
//! and exec rather than two forks, opening the namespaces and joining them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::fork::{fork_process, fork_tree, Before, How, Keep, Middle};
use super::process::ContainerType;
use super::wire::{self, ExecReport, SetupReport};
use super::{report, Failure, Process, StartError, Stdio, Step};
use crate::exit;
use crate::linux::channel::{channel, ChannelError, Receiver, Sender};
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::{process, vfork};

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
    /// Nobody waits for the process: it outlives its caller.
    fn detached(&self) -> bool {
        !self.process.dies_with_parent()
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
    reports: Receiver<ExecReport>,
    signals: Option<SignalFd>,
}

/// Start `spec.process` in the container whose PID 1 is `spec.pid1`.
/// Returns once the command has been exec'd (for `-d`, with nothing left to
/// wait for), or with the reason it could not be.
pub fn exec(spec: &ExecSpec) -> Result<Execd, ExecError> {
    // Step 1: PID 1's namespaces.
    let ns = open_namespaces(spec)?;

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
    let mut tree = fork_tree(Keep::AllBut(&[]), false, exit::BURROW, |middle| {
        joiner_main(spec, &ns, middle)
    })
    .map_err(|e| e.into_failure(exit::BURROW))?;
    drop(ns);

    // Step 4: the joiner reports the process's pid, or why it has none.
    let pid = tree
        .wait_pid(|m| tracing::warn!("unexpected report from exec: {m:?}"))
        .map_err(|e| tree.ended_early(e, Step::JoinNamespaces))?;

    // Step 5: the process sets itself up; EOF on the exec channel means it
    // exec'd (the pipe is close-on-exec), a message says why it did not.
    if let Err(e) = wire::wait_exec(&mut tree.setup) {
        tree.reap();
        return Err(e.into_failure(Step::Exec, || exit::BURROW).into());
    }
    if spec.detached() {
        // The joiner exits as soon as it has reported the pid.
        tree.reap();
    }
    Ok(Execd {
        joiner: tree.middle,
        pid,
        reports: tree.reports,
        signals,
    })
}

/// PID 1's namespaces, opened while it is provably the recorded process
/// (same start time, read through a pinned /proc/PID fd).
fn open_namespaces(spec: &ExecSpec) -> Result<Namespaces, ExecError> {
    Namespaces::open(Path::new("/proc"), spec.pid1, spec.pid1_start).map_err(|e| match e {
        NsError::Gone { .. } | NsError::Reused { .. } => ExecError::NotRunning,
        e => Failure::new(Step::OpenNamespaces, e.to_string(), exit::BURROW).into(),
    })
}

/// The stack a resident joiner's processes set themselves up on: the
/// setup's deepest calls (seccomp, the user lookup, the failure report)
/// need far less; only the pages touched are backed.
const SHARED_STACK: usize = 1024 * 1024;

/// A joiner that stays in the container for its caller's life: it enters
/// the cgroup and the namespaces once, and on each request forks
/// `spec.process` again, its stdout and stderr on the descriptor the
/// request carries. Dropped, the joiner is killed, and a process it runs
/// with it (its parent death signal).
#[derive(Debug)]
pub struct Resident {
    joiner: Pid,
    requests: OwnedFd,
    reports: Receiver<ExecReport>,
    /// Processes started so far.
    starts: u32,
}

/// How many processes a resident joiner starts before its caller should
/// replace it: each leaves the few allocations it held at its exec in the
/// joiner's heap (about a kilobyte), so a joiner is bounded to well under
/// a megabyte of them; a new one costs about two probes.
const RESIDENT_STARTS: u32 = 512;

/// What a resident joiner says about the process it started, on its
/// report channel. The process's pid comes the other way, on the request
/// socket ([`Resident::started`]): the caller needs it only to kill the
/// process, so it is not woken for it.
#[derive(Debug)]
pub enum Report {
    /// It ran and ended with this exit code (128 + signal when killed).
    Exited(i32),
    /// It could not be started; nothing more follows for this request.
    Failed(ExecError),
    /// The joiner is gone (killed, or the container ended).
    Gone,
}

/// Start a resident joiner for `spec` in the container whose PID 1 is
/// `spec.pid1`; returns once it is inside, or with why it could not enter.
pub fn resident(spec: &ExecSpec) -> Result<Resident, ExecError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let ns = open_namespaces(spec)?;
    // Datagrams: one request a message, EOF once the caller is gone.
    let (requests, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Failure::sys(Step::Pipe, e, exit::BURROW))?;
    let ours = [requests.as_raw_fd()];
    let mut tree = fork_tree(Keep::AllBut(&ours), false, exit::BURROW, |middle| {
        resident_main(spec, &ns, middle, theirs)
    })
    .map_err(|e| e.into_failure(exit::BURROW))?;
    drop(ns);
    if let Err(e) = wire::wait_ready(&mut tree.reports) {
        return Err(tree.ended_early(e, Step::JoinNamespaces).into());
    }
    Ok(Resident {
        joiner: tree.middle,
        requests,
        reports: tree.reports,
        starts: 0,
    })
}

impl Resident {
    /// Start the process once more, its stdout and stderr on `output`;
    /// what becomes of it comes as reports.
    pub fn start(&mut self, output: BorrowedFd<'_>) -> Result<(), ExecError> {
        self.starts += 1;
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let fds = [output.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"x")];
        sendmsg::<()>(
            self.requests.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            // A joiner that is gone is an error, never SIGPIPE.
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Failure::sys(Step::Fork, e, exit::BURROW))?;
        Ok(())
    }

    /// The host pid (a session leader) of the process started for the
    /// last request, once it has exec'd; None before that, or when it could
    /// not be started. Said once for each process that ran: after its
    /// `Exited` report, this takes the pid of that process off the socket.
    pub fn started(&self) -> Option<Pid> {
        use nix::sys::socket::{recv, MsgFlags};
        let mut pid = [0u8; 4];
        match recv(self.requests.as_raw_fd(), &mut pid, MsgFlags::MSG_DONTWAIT) {
            Ok(4) => Some(Pid::from_raw(i32::from_ne_bytes(pid))),
            _ => None,
        }
    }

    /// It has started as many processes as it should: replace it.
    pub fn spent(&self) -> bool {
        self.starts >= RESIDENT_STARTS
    }

    /// Readable when a report has come.
    pub fn report_fd(&self) -> BorrowedFd<'_> {
        self.reports.as_fd()
    }

    /// A report was read along with the previous one: poll would not see
    /// it. Never so: reports are read one message at a time.
    pub fn reported(&self) -> bool {
        false
    }

    /// The next report; blocks until it comes.
    pub fn report(&mut self) -> Report {
        match self.reports.recv() {
            Ok(ExecReport::Exited(code)) => Report::Exited(code),
            Ok(ExecReport::Failed(f)) => Report::Failed(f.into()),
            Ok(m) => {
                tracing::warn!("unexpected report from a resident exec: {m:?}");
                Report::Gone
            }
            Err(_) => Report::Gone,
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.joiner, Signal::SIGKILL);
        let _ = process::wait_exit_code(self.joiner);
    }
}

/// The resident joiner: enters once, then one process per request until
/// the caller closes its end.
fn resident_main(
    spec: &ExecSpec,
    ns: &Namespaces,
    mut middle: Middle<ExecReport>,
    requests: OwnedFd,
) -> i32 {
    // Living in the container's cgroup, we would be one of its processes
    // for `top`, `stats` and its pids limit: each process moves itself in
    // through this file, opened while /sys/fs/cgroup is still the host's.
    // Only where the kernel lets it (a forked child tries once); elsewhere
    // the manager moves us (see `join_cgroup`) and the processes inherit it.
    let procs = spec
        .cgroup
        .as_deref()
        .filter(|dir| moves_itself_into(dir))
        .and_then(|dir| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .ok()
        });
    if let Err(f) = enter_container(spec, ns, procs.is_none()) {
        return middle.fail(f);
    }
    // The trampoline once, for every process after (it is sealed), and
    // the caller's heap handed back before we settle in.
    super::trampoline::preload();
    process::trim_heap();
    let mut settled = match settle(spec) {
        Ok(s) => s,
        Err(f) => return middle.fail(f),
    };
    middle.up.tell(ExecReport::Ready);
    loop {
        // EOF: the caller is done with us (or gone); any other error (a
        // profile that refuses recvmsg) is said.
        let output = match crate::linux::tty::recv_fd(requests.as_raw_fd()) {
            Ok(fd) => fd,
            Err(nix::Error::EBADMSG) => return 0,
            Err(e) => return middle.fail(Failure::sys(Step::Seccomp, e, exit::BURROW)),
        };
        let fd = output.as_raw_fd();
        if let Stdio::Pipes(fds) = &mut settled.spec.process.stdio {
            fds[1] = fd;
            fds[2] = fd;
        }
        let ours = [
            middle.up.as_raw_fd(),
            requests.as_raw_fd(),
            settled.exec_rx.as_raw_fd(),
        ];
        let before = match &procs {
            Some(f) => Before::JoinCgroup(f.as_fd()),
            None => Before::Nothing,
        };
        let how = How::Shared {
            stack: &mut settled.stack,
        };
        let joined = ContainerType::Joined { terminal: None };
        let (p, setup) = (&settled.spec.process, &mut settled.exec_tx);
        let pid = match fork_process(joined, p, ns.setgroups_allowed, &ours, setup, before, how) {
            Ok(p) => p,
            Err(f) => {
                let gone = f.step == Step::ContainerGone;
                middle.up.tell(ExecReport::Failed(f));
                if gone {
                    return exit::BURROW;
                }
                continue;
            }
        };
        // The process shared our memory until it exec'd or exited, so by
        // now it has either exec'd, closing its copy of the channel, or
        // said why not and exited: a message is a failure, an empty
        // channel an exec.
        match settled.exec_rx.recv() {
            Err(ChannelError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            got => {
                let e = match got {
                    Ok(SetupReport::Failed(f)) => wire::ReportError::Failed(f),
                    Ok(m) => wire::ReportError::unexpected("exec or a failure", m),
                    Err(e) => wire::ReportError::Channel(e),
                };
                let code = process::wait_exit_code(pid).unwrap_or(exit::BURROW);
                middle
                    .up
                    .tell(ExecReport::Failed(e.into_failure(Step::Exec, || code)));
                continue;
            }
        }
        // The pid on the request socket, which the caller reads only when
        // it must kill the process; the exit on the report channel, which
        // wakes it. Our copy of `output` is closed only after the report,
        // so the end of the output never wakes the caller before it.
        let _ = nix::sys::socket::send(
            requests.as_raw_fd(),
            &pid.as_raw().to_ne_bytes(),
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        );
        middle.up.tell(ExecReport::Exited(
            process::wait_exit_code(pid).unwrap_or(exit::BURROW),
        ));
        drop(output);
    }
}

/// What a resident joiner sets up once for all its processes.
struct Settled {
    /// The stack its processes set themselves up on.
    stack: vfork::Stack,
    /// Its processes' spec: stdin /dev/null unless kept, the seccomp filter
    /// left out (installed in the joiner).
    spec: ExecSpec,
    /// Why a process could not exec, if it could not: a message before it
    /// exits. Not read to EOF, so one channel serves them all.
    exec_tx: Sender<SetupReport>,
    exec_rx: Receiver<SetupReport>,
    /// /dev/null, the processes' stdin unless kept.
    _null: std::fs::File,
}

/// A resident joiner, inside the container, settles in: its processes'
/// stack, stdin and channel, the bounding set dropped, the seccomp filter.
fn settle(spec: &ExecSpec) -> Result<Settled, Failure> {
    // Each process runs in our memory until its exec: forking a copy of
    // it for each would cost more than the command (page tables, pages
    // copied on write, the copy torn down at the exec).
    let stack =
        vfork::Stack::new(SHARED_STACK).map_err(|e| Failure::sys(Step::Fork, e, exit::BURROW))?;
    // The container's seccomp filter, once: every process inherits it
    // from us, where installing it in each would have the kernel compile
    // it each time (a fifth of a probe's cost). Installed last, as we hold
    // CAP_SYS_ADMIN in the container's user namespace, so no_new_privs is
    // not needed, as for the process itself (see `sandbox::process`); what
    // is left for us to do (receive a request, start a process, wait for
    // it, report) is what Docker's default profile allows any container.
    let mut spec = spec.clone();
    // What every process would otherwise look up or open for itself:
    // /dev/null as its stdin (the container's, as it would open it), the
    // kernel's last capability.
    let null = super::process::open_null()?;
    let stdin = if spec.process.stdin {
        0
    } else {
        spec.process.stdin = true;
        null.as_raw_fd()
    };
    spec.process.stdio = Stdio::Pipes([stdin, 1, 2]);
    crate::linux::caps::last_cap();
    // The bounding set every process drops to, dropped by us once (we are
    // root in the container's user namespace until the last of them).
    super::process::drop_bounding(spec.process.bounding())?;
    let (exec_tx, exec_rx) =
        channel::<SetupReport>().map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))?;
    let _ = nix::fcntl::fcntl(
        exec_rx.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    // A filter that could not be built is left to each process to report.
    if let super::seccomp::Seccomp::Filter(_) = &spec.process.seccomp {
        super::process::install_seccomp(&spec.process.seccomp)?;
        spec.process.seccomp = super::seccomp::Seccomp::Unconfined;
    }
    Ok(Settled {
        stack,
        spec,
        exec_tx,
        exec_rx,
        _null: null,
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
    pub fn report_fd(&self) -> BorrowedFd<'_> {
        self.reports.as_fd()
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

/// Steps 1 to 3 of a joiner: the container's cgroup (unless `cgroup` is
/// false: each process joins it itself), not dumpable, its namespaces.
fn enter_container(spec: &ExecSpec, ns: &Namespaces, cgroup: bool) -> Result<(), Failure> {
    // In the foreground, if the caller dies, so do we (and the process
    // after us); a detached process outlives the caller by design.
    if !spec.detached() {
        let _ = process::set_parent_death_signal(Signal::SIGKILL);
    }

    // Step 1: the container's cgroup, while /sys/fs/cgroup is still the
    // host's (the container's /sys is a read-only bind), and before the
    // fork, so the process is never counted outside its limits.
    if let Some(dir) = spec.cgroup.as_ref().filter(|_| cgroup) {
        join_cgroup(dir)?;
    }

    // Step 2: nothing in the container may trace the process we fork into
    // it, or read its memory (the caller's environment), before it execs
    // (runc's CVE-2016-9962); it inherits this from us.
    process::set_dumpable(false).map_err(|e| Failure::sys(Step::Dumpable, e, exit::BURROW))?;

    // Step 3: the container's namespaces, user first (see linux::ns).
    ns.join()
        .map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))
}

/// Whether a child of ours may move itself into the cgroup `dir` by
/// writing its `cgroup.procs` (the kernel's delegation rules), as a forked
/// child that exits at once tries.
fn moves_itself_into(dir: &Path) -> bool {
    process::fork_child(|| i32::from(crate::linux::cgroup::move_pid(dir, 0).is_err()))
        .ok()
        .and_then(|pid| process::wait_exit_code(pid).ok())
        == Some(0)
}

/// The joiner. Runs as the forked child; returns its exit code.
fn joiner_main(spec: &ExecSpec, ns: &Namespaces, mut middle: Middle<ExecReport>) -> i32 {
    if let Err(f) = enter_container(spec, ns, true) {
        return middle.fail(f);
    }

    // -t: a pty from the container's devpts (we are in its mount namespace
    // now), so `tty` inside names a real /dev/pts/N.
    let pty = if spec.process.stdio == Stdio::Pty {
        match crate::linux::tty::open_pty_in(Path::new("/dev/pts")) {
            Ok(p) => Some(p),
            Err(e) => {
                return middle.fail(Failure::sys(Step::Terminal, e, exit::BURROW).at("/dev/pts"))
            }
        }
    } else {
        None
    };

    // Step 4: fork into the pid namespace.
    let terminal = pty.as_ref().map(|(_, s)| s.as_raw_fd());
    let joined = ContainerType::Joined { terminal };
    let pid =
        match middle.fork_process(joined, &spec.process, ns.setgroups_allowed, Before::Nothing) {
            Ok(p) => p,
            Err(f) => return middle.fail(f),
        };
    middle.report_pid(pid);

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
    middle.up.tell(ExecReport::Exited(code));
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
        let ready = process::ready(&fds);
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
