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

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::report;
use super::{Report, StartError};
use crate::exit;
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::process;

/// The step name of a failure that means the container is gone.
const NOT_RUNNING: &str = "not running";

/// What to run, and where; built by the CLI from the container record.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The container's PID 1 as the host sees it, and its start time (clock
    /// ticks since boot) as recorded in the pid file: a reused pid is refused.
    pub pid1: i32,
    pub pid1_start: u64,
    pub argv: Vec<String>,
    /// The full environment (container's Env, HOSTNAME, overrides).
    pub env: Vec<String>,
    /// Absolute working directory; empty means `/`.
    pub cwd: String,
    /// `name|uid[:group|gid]`, resolved in the container's /etc/passwd.
    pub user: String,
    /// Keep the caller's stdin (`-i`); otherwise the process reads /dev/null.
    pub stdin: bool,
    /// `-d`: stdio on /dev/null, a session of its own, nobody waits for it.
    pub detach: bool,
    /// `-t` on a terminal: a pty from the container's own devpts, relayed to
    /// the caller's terminal by the joiner.
    pub tty: bool,
    /// The container's capability mask.
    pub caps: u64,
    /// The container's seccomp filter applies.
    pub seccomp: bool,
    /// The container's cgroup, which the process joins (its limits apply,
    /// `pause` freezes it, `stats` counts it).
    pub cgroup: Option<std::path::PathBuf>,
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
            ExecError::Failed(e) => e.code,
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
    reports: BufReader<File>,
    signals: Option<SignalFd>,
}

fn fail(step: &str, message: impl Into<String>, code: i32) -> StartError {
    StartError::new(step, message, code)
}

/// Start `spec.argv` in the container whose PID 1 is `spec.pid1`. Returns
/// once the command has been exec'd (for `-d`, with nothing left to wait
/// for), or with the reason it could not be.
pub fn exec(spec: &ExecSpec) -> Result<Execd, ExecError> {
    let sys =
        |step: &'static str| move |e: nix::Error| fail(step, format!("{step}: {e}"), exit::BURROW);

    // Step 1: PID 1's namespaces, opened while it is provably the recorded
    // process (same start time, read through a pinned /proc/PID fd).
    let ns =
        Namespaces::open(Path::new("/proc"), spec.pid1, spec.pid1_start).map_err(|e| match e {
            NsError::Gone { .. } | NsError::Reused { .. } => ExecError::NotRunning,
            e => fail("namespaces", e.to_string(), exit::BURROW).into(),
        })?;

    // Step 2: signals to relay queue on a signalfd from now on, so a Ctrl-C
    // during setup still reaches the process. The children inherit the
    // mask: the joiner keeps it (it must survive to report the exit), the
    // process resets it before exec.
    let signals = if spec.detach {
        None
    } else {
        report::relay_signalfd()
    };

    // Step 3: the joiner.
    let (report_r, report_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (exec_r, exec_w) = process::pipe().map_err(sys("creating pipe"))?;
    let ours = [report_r.as_raw_fd(), exec_r.as_raw_fd()];
    let joiner = process::fork_child(|| {
        for fd in ours {
            let _ = nix::unistd::close(fd);
        }
        joiner_main(spec, &ns, report_w, exec_w)
    })
    .map_err(sys("forking"))?;
    drop(ns);

    // Step 4: the joiner reports the process's pid, or why it has none.
    let mut reports = BufReader::new(File::from(report_r));
    let mut line = String::new();
    let pid = loop {
        line.clear();
        if reports.read_line(&mut line).unwrap_or(0) == 0 {
            let code = process::wait_exit_code(joiner).unwrap_or(exit::BURROW);
            return Err(fail(
                "exec",
                format!("joining the container ended early (exit code {code}) without saying why"),
                exit::BURROW,
            )
            .into());
        }
        match serde_json::from_str::<Report>(line.trim_end()) {
            Ok(Report::Pid(p)) => break Pid::from_raw(p),
            Ok(Report::Failed(e)) => {
                let _ = process::wait_exit_code(joiner);
                return Err(if e.step == NOT_RUNNING {
                    ExecError::NotRunning
                } else {
                    e.into()
                });
            }
            Ok(_) | Err(_) => tracing::warn!("unexpected report from exec: {line:?}"),
        }
    };

    // Step 5: the process sets itself up; EOF on the exec pipe means it
    // exec'd (the pipe is close-on-exec), a line says why it did not.
    let mut exec_report = String::new();
    let _ = File::from(exec_r).read_to_string(&mut exec_report);
    if let Some(l) = exec_report.lines().next() {
        let err = match serde_json::from_str::<Report>(l) {
            Ok(Report::Failed(e)) => e,
            _ => fail(
                "exec",
                format!("garbled report from the exec'd process: {l:?}"),
                exit::BURROW,
            ),
        };
        let _ = process::wait_exit_code(joiner);
        return Err(err.into());
    }
    if spec.detach {
        // The joiner exits as soon as it has reported the pid.
        let _ = process::wait_exit_code(joiner);
    }
    Ok(Execd {
        joiner,
        pid,
        reports,
        signals,
    })
}

impl Execd {
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
fn join_cgroup(dir: &std::path::Path) -> Result<(), String> {
    use crate::linux::{cgroup, systemd};
    let e = match cgroup::move_pid(dir, 0) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let denied = matches!(&e, cgroup::CgroupError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM)));
    let root = std::path::Path::new(cgroup::SYS_FS_CGROUP);
    if !denied || systemd::unit_of(root, dir).is_none() {
        return Err(e.to_string());
    }
    systemd::attach_self(root, dir, std::time::Duration::from_secs(10))
        .map_err(|s| format!("{e}; {s}"))
}

/// The joiner. Runs as the forked child; returns its exit code.
fn joiner_main(spec: &ExecSpec, ns: &Namespaces, report_w: OwnedFd, exec_w: OwnedFd) -> i32 {
    let mut rep = File::from(report_w);
    let failed = |rep: &mut File, e: StartError| {
        report::send(rep, &Report::Failed(e));
        exit::BURROW
    };
    // In the foreground, if the caller dies, so do we (and the process
    // after us); a detached process outlives the caller by design.
    if !spec.detach {
        let _ = process::set_parent_death_signal(Signal::SIGKILL);
    }

    // Step 1: the container's cgroup, while /sys/fs/cgroup is still the
    // host's (the container's /sys is a read-only bind), and before the
    // fork, so the process is never counted outside its limits.
    if let Some(dir) = &spec.cgroup {
        if let Err(e) = join_cgroup(dir) {
            return failed(&mut rep, fail("cgroup", e, exit::BURROW));
        }
    }

    // Step 2: the container's namespaces, user first (see linux::ns).
    if let Err(e) = ns.join() {
        return failed(&mut rep, fail("setns", e.to_string(), exit::BURROW));
    }

    // Step 3: fork into the pid namespace. ENOMEM means its init (PID 1)
    // has exited and the namespace takes no new members (pid_namespaces(7)).
    let rep_fd = rep.as_raw_fd();
    let groups_allowed = ns.setgroups_allowed;
    let mut exec_file = File::from(exec_w);
    // -t: a pty from the container's devpts (we are in its mount namespace
    // now), so `tty` inside names a real /dev/pts/N.
    let pty = if spec.tty {
        match crate::linux::tty::open_pty_in(Path::new("/dev/pts")) {
            Ok(p) => Some(p),
            Err(e) => {
                return failed(
                    &mut rep,
                    fail("tty", format!("allocating a pty: {e}"), exit::BURROW),
                )
            }
        }
    } else {
        None
    };
    let slave_fd = pty.as_ref().map(|(_, s)| s.as_raw_fd());
    let pid = match process::fork_child(|| {
        // The process must not keep the report pipe: the caller reads it to EOF.
        let _ = nix::unistd::close(rep_fd);
        if let Some(fd) = slave_fd {
            for target in 0..3 {
                if process::dup_onto(fd, target).is_err() {
                    return exit::BURROW;
                }
            }
            let _ = nix::unistd::setsid();
            let _ = crate::linux::tty::set_controlling_terminal(0);
        }
        process_main(spec, groups_allowed, &mut exec_file)
    }) {
        Ok(p) => p,
        Err(nix::Error::ENOMEM) => {
            return failed(
                &mut rep,
                fail(
                    NOT_RUNNING,
                    "the container's PID 1 has exited",
                    exit::BURROW,
                ),
            )
        }
        Err(e) => {
            return failed(
                &mut rep,
                fail(
                    "fork",
                    format!("forking into the container: {e}"),
                    exit::BURROW,
                ),
            )
        }
    };
    drop(exec_file);
    report::send(&mut rep, &Report::Pid(pid.as_raw()));

    // Step 4: wait and pass the exit on; a detached process is left to
    // whoever inherits it (the nearest subreaper, or init).
    if spec.detach {
        return 0;
    }
    if let Some((master, slave)) = pty {
        drop(slave);
        relay_pty(&master);
    }
    let code = process::wait_exit_code(pid).unwrap_or(exit::BURROW);
    report::send(&mut rep, &Report::Exited(code));
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

/// The process inside the container; returns only on failure (the exit code).
fn process_main(spec: &ExecSpec, groups_allowed: bool, rep: &mut File) -> i32 {
    match setup_and_exec(spec, groups_allowed) {
        Ok(never) => match never {},
        Err(e) => {
            let code = e.code;
            report::send(rep, &Report::Failed(e));
            code
        }
    }
}

fn setup_and_exec(
    spec: &ExecSpec,
    groups_allowed: bool,
) -> Result<super::child::Never, StartError> {
    let null = || {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| fail("stdio", format!("opening /dev/null: {e}"), exit::BURROW))
    };
    if spec.detach {
        // Detached: a session of its own (no terminal signals from the
        // caller's), and stdio that holds none of the caller's pipes open.
        let _ = nix::unistd::setsid();
        let null = null()?;
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    } else {
        // Die with the joiner, so nothing outlives its supervisor.
        let _ = process::set_parent_death_signal(Signal::SIGKILL);
        // stdin: /dev/null unless -i (Docker closes it too).
        if !spec.stdin {
            let _ = nix::unistd::dup2_stdin(&null()?);
        }
    }

    // User and groups, resolved in the container's own /etc/passwd (our
    // root is the container's since setns(mnt)).
    let ids = super::user::resolve(&spec.user, Path::new("/etc"))
        .map_err(|e| fail("user", e, exit::CANNOT_RUN))?;
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }
    // The container's seccomp filter and capabilities, as run applies them
    // (see child.rs).
    if spec.seccomp {
        crate::linux::seccomp::install(spec.caps & (1 << 21) != 0)
            .map_err(|e| fail("seccomp", e.to_string(), exit::BURROW))?;
    }
    crate::linux::caps::drop_bounding(spec.caps)
        .map_err(|e| fail("caps", e.to_string(), exit::BURROW))?;
    ids.apply(groups_allowed)
        .map_err(|e| fail("user", e, exit::CANNOT_RUN))?;
    crate::linux::caps::set_sets(spec.caps)
        .map_err(|e| fail("caps", e.to_string(), exit::BURROW))?;

    // Working directory: unlike run, never created (docker exec fails too).
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    super::child::enter_workdir(cwd)?;

    match super::child::exec(&spec.argv, &env)? {}
}
