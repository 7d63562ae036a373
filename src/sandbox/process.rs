//! A process in a container, one type for `run` (PID 1) and `exec`, and
//! the one function that enters the container and execs it, in a fixed
//! order: mounts and pivot_root (a new container's PID 1 only), stdio and a
//! session of its own, every other descriptor closed, user, working
//! directory, seccomp, bounding set, ids, capability sets, exec (of the
//! command, or with `--init` of a static init program that runs it).
//!
//! The two kinds differ only where youki's `ContainerType` does: PID 1 of a
//! new container (`Init`) builds the mount tree and pivots into it; a
//! process joining a running container (`Joined`) finds all that done, as
//! its joiner has setns'd before forking it (setns(2) of a pid namespace
//! only applies to children, so the join cannot happen here).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use super::entry::Entry;
use super::wire::SetupReport;
use super::{Failure, Step};
use crate::exit;
use crate::linux::channel::Sender;
use crate::linux::{caps, process, seccomp, tty};

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What runs in the container, and as whom.
#[derive(Debug, Clone)]
pub struct Process {
    pub argv: Vec<String>,
    /// The full environment (container's Env, HOSTNAME, overrides); HOME is
    /// added from /etc/passwd when missing.
    pub env: Vec<String>,
    /// Absolute working directory; empty means `/`.
    pub cwd: String,
    /// `name|uid[:group|gid]`, resolved in the container's /etc/passwd.
    pub user: String,
    /// Capabilities the process keeps (see `sandbox::caps`), as a mask.
    pub caps: u64,
    /// The seccomp filter to install (see `sandbox::seccomp`).
    pub seccomp: super::seccomp::Seccomp,
    /// The filter fakes changes of ids (`seccomp::FAKED_ID_CALLS`): the
    /// process must already be the user it runs as.
    pub fake_ids: bool,
    /// Keep stdin (`-i`); otherwise it reads /dev/null, as Docker's does.
    pub stdin: bool,
    pub stdio: Stdio,
    /// `--init`: PID 1 is an init that forwards signals to the command and
    /// reaps orphans, so `stop` works on programs that ignore SIGTERM as
    /// PID 1: `init_program` (see `sandbox::init`), else a fork of ours.
    pub init: bool,
    /// A static init program on the host, exec'd as PID 1 for `init`.
    pub init_program: Option<PathBuf>,
    /// `--security-opt no-new-privileges`: prctl(PR_SET_NO_NEW_PRIVS)
    /// before exec, so setuid programs and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// The supplementary groups exactly (an OCI bundle's `additionalGids`);
    /// None looks them up in the container's /etc/group.
    pub groups: Option<Vec<u32>>,
    /// No parent-death signal and nobody waits: an engine's shim, a
    /// subreaper, inherits and reaps the process (the runc contract).
    pub outlives_parent: bool,
    /// An OCI process's five capability sets, each applied as given (a
    /// non-root user keeps them across the user switch, ambient ones
    /// across exec); None gives `caps` to bounding, effective and
    /// permitted, with inheritable and ambient empty.
    pub cap_sets: Option<caps::Sets>,
}

/// Where the process's stdin, stdout and stderr come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's own (the foreground `run`, `exec` without `-t`).
    Inherit,
    /// A monitor's pipes (or /dev/null): stdin, stdout, stderr. Helpers
    /// close their copies once the process is forked, so the monitor sees
    /// EOF when it ends.
    Pipes([RawFd; 3]),
    /// `-t` under a monitor: a unix socket on which the process sends the
    /// master of a pty it opens in the container's own devpts (runc's
    /// console socket); the slave becomes its stdio and controlling
    /// terminal.
    ConsoleSocket(RawFd),
    /// `exec -t`: a pty from the container's devpts, which the joiner opens
    /// and relays to the caller's terminal.
    Pty,
    /// `exec -d`: /dev/null, a session of its own (no terminal signals from
    /// the caller's), and nobody waits for it.
    Detached,
}

impl Stdio {
    /// Descriptors from 3 up that the process needs and its helpers must
    /// keep open until it is forked.
    pub fn passed_fds(&self) -> Vec<RawFd> {
        match *self {
            Stdio::Pipes(fds) => fds.into_iter().filter(|fd| *fd > 2).collect(),
            Stdio::ConsoleSocket(fd) => vec![fd],
            _ => Vec::new(),
        }
    }
}

/// Which way into the container.
#[derive(Clone, Copy)]
pub enum ContainerType<'a> {
    /// PID 1 of a new container: runs its `entry` (the mount tree under
    /// `root`, the pivot into it, the hostname).
    Init { root: &'a Path, entry: &'a Entry },
    /// A process forked by a joiner already inside the container's
    /// namespaces; `terminal` is the slave of the pty it opened for `-t`.
    Joined { terminal: Option<RawFd> },
    /// PID 1 of a container an engine created from an OCI bundle.
    Bundle(&'a BundleInit<'a>),
}

/// What PID 1 of a container made from an OCI bundle sets up besides the
/// shared order: like `Init`, its `entry` (the hostname and NIS domain name
/// in it only when the bundle gives a UTS namespace them), and `start_gate`
/// (a FIFO open for reading and writing): once set up, the process says
/// `Ready` on its report channel, then blocks reading the FIFO until the
/// engine's `start` writes a byte into it.
#[derive(Debug, Clone, Copy)]
pub struct BundleInit<'a> {
    pub root: &'a Path,
    pub entry: &'a Entry,
    pub start_gate: BorrowedFd<'a>,
    /// Descriptors 3..3+N the engine passed (`--preserve-fds`), kept open
    /// across exec.
    pub preserve_fds: u32,
}

pub(super) enum Never {}

/// Enter the container as `kind` says and exec `p`. `groups_allowed` is
/// false under a single-id mapping, where setgroups(2) is denied
/// (user_namespaces(7)). Returns only on failure, after sending it on
/// `report` (a close-on-exec channel, so its EOF alone means exec succeeded):
/// the exit code.
pub fn enter_and_exec(
    kind: ContainerType,
    p: &Process,
    groups_allowed: bool,
    report: &mut Sender<SetupReport>,
) -> i32 {
    match enter(kind, p, groups_allowed, report) {
        Ok(never) => match never {},
        Err(f) => {
            let code = f.code;
            report.tell(SetupReport::Failed(f));
            code
        }
    }
}

fn enter(
    kind: ContainerType,
    p: &Process,
    groups_allowed: bool,
    report: &mut Sender<SetupReport>,
) -> Result<Never, Failure> {
    let (init_binary, trampoline) = prepare(p)?;

    // A new container's entry: the mount tree and the switch into it (the
    // rootfs becomes /, the host's tree is detached), its names.
    let terminal = match kind {
        ContainerType::Init { root, entry } => {
            entry.run(root)?;
            None
        }
        ContainerType::Bundle(b) => {
            b.entry.run(b.root)?;
            None
        }
        ContainerType::Joined { terminal } => terminal,
    };

    // stdio, after pivot_root: a console pty comes from the container's own
    // devpts. Every process starts a session of its own, so the caller's
    // terminal is never its controlling terminal: TIOCSTI on it would type
    // into the caller's shell (bubblewrap's CVE-2017-5226).
    setup_stdio(p, terminal)?;

    // Only stdio, our report channel and what was passed on purpose stay
    // open from here: a directory descriptor of the caller's left open
    // (even close-on-exec) would be a way out through /proc/self/fd/N as
    // the working directory, or the path of any file we create or open
    // below (runc's CVE-2024-21626).
    let mut keep = vec![report.as_raw_fd()];
    keep.extend(init_binary.as_ref().map(|(f, _)| f.as_raw_fd()));
    keep.extend(trampoline.as_ref().map(|f| f.as_raw_fd()));
    if let ContainerType::Bundle(b) = kind {
        keep.push(b.start_gate.as_raw_fd());
        keep.extend((0..b.preserve_fds).filter_map(|i| i32::try_from(3 + i).ok()));
    }
    process::close_fds_except(&keep);

    // User and groups, resolved in the container's own /etc/passwd.
    let mut ids = super::user::resolve(&p.user, Path::new("/etc")).map_err(user_failure)?;
    if let Some(groups) = &p.groups {
        ids.groups = groups.clone();
    }
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }

    // Working directory: a new container creates it if missing, as Docker
    // does; `exec` never does (docker exec fails too).
    let cwd = if p.cwd.is_empty() { "/" } else { &p.cwd };
    if matches!(kind, ContainerType::Init { .. } | ContainerType::Bundle(_))
        && !Path::new(cwd).is_dir()
    {
        let _ = std::fs::create_dir_all(cwd);
    }

    if p.fake_ids {
        ids.refuse_faked_switch(groups_allowed)
            .map_err(user_failure)?;
    }

    confine(p, &ids, groups_allowed)?;
    enter_workdir(cwd)?;

    let mut preserve_fds = 0;
    if let ContainerType::Bundle(b) = kind {
        // A missing program fails `create`, where the engine reads the
        // error (and maps "not found" to 127), not a later `start`.
        find_program(&p.argv, &env)?;
        report.tell(SetupReport::Ready);
        wait_for_start(b.start_gate)?;
        preserve_fds = b.preserve_fds;
    }
    if let Some((binary, path)) = init_binary {
        // The init cannot tell us a command is missing; say it the way the
        // command's own exec would have.
        find_program(&p.argv, &env)?;
        return exec_init(&binary, path, &p.argv, &env);
    }
    if p.init {
        return run_init(&p.argv, &env, trampoline.as_ref());
    }
    exec(&p.argv, &env, preserve_fds, trampoline.as_ref())
}

/// A static init program of the host's, opened, and its path.
type InitBinary<'a> = Option<(File, &'a PathBuf)>;

/// The first steps of every process entering a container, while the
/// host's tree is still ours: not dumpable, the parent-death signal, and
/// what it will exec through (a static init program, or the trampoline).
fn prepare(p: &Process) -> Result<(InitBinary<'_>, Option<File>), Failure> {
    // Nothing in the container may trace us or read our memory, environment
    // or descriptors until we have exec'd its program (runc's CVE-2016-9962):
    // a process that is not dumpable is open through /proc and ptrace only
    // to holders of CAP_SYS_PTRACE in the namespace our binary was exec'd in,
    // the host's (ptrace(2), "Ptrace access mode checking"). execve(2) makes
    // the container's program dumpable again.
    process::set_dumpable(false).map_err(|e| Failure::sys(Step::Dumpable, e, exit::BURROW))?;
    // Die with the process that supervises us, so nothing outlives it; a
    // detached exec, or a process an engine's shim inherits, outlives its
    // caller by design.
    if p.stdio != Stdio::Detached && !p.outlives_parent {
        let _ = process::set_parent_death_signal(Signal::SIGKILL);
    }
    // `--init` execs a static init program of the host's once set up: open
    // it while the host's tree is still ours, so nothing in the container's
    // can stand in for it.
    let init_binary = match (&p.init_program, p.init) {
        (Some(path), true) => Some((
            process::open_path(path)
                .map_err(|e| Failure::sys(Step::Exec, e, exit::BURROW).at(path))?,
            path,
        )),
        _ => None,
    };
    // The program the container's program is exec'd through, so that no
    // process exec'ing it is running burrow's binary (see
    // `sandbox::trampoline`). Made before seccomp, which may refuse memfds;
    // not needed when a static init execs the program.
    let trampoline = match init_binary {
        Some(_) => None,
        None => super::trampoline::load().map_err(|e| {
            let mut f = Failure::sys(Step::Exec, e, exit::BURROW);
            if e == nix::Error::EACCES {
                f.detail = "the kernel refuses to run programs from memory (vm.memfd_noexec = 2); burrow needs that to keep its own binary out of containers' reach".into();
            }
            f
        })?,
    };
    Ok((init_binary, trampoline))
}

/// Why the user could not be resolved or switched to.
fn user_failure(e: super::user::UserError) -> Failure {
    Failure {
        step: Step::User,
        path: None,
        detail: e.to_string(),
        errno: e.errno().map(|n| n as i32),
        code: exit::CANNOT_RUN,
    }
}

/// The process's confinement, in its fixed order: no_new_privs, seccomp,
/// the bounding set, the ids, the capability sets.
fn confine(p: &Process, ids: &super::user::Ids, groups_allowed: bool) -> Result<(), Failure> {
    // no_new_privs when asked for, before the filter (prctl(2)).
    if p.no_new_privs {
        seccomp::set_no_new_privs().map_err(|e| Failure::io(Step::NoNewPrivs, &e, exit::BURROW))?;
    }
    // seccomp: while we still hold CAP_SYS_ADMIN in the container's user
    // namespace, so no_new_privs is not needed (setuid programs keep
    // working); seccomp(2) asks for one or the other. The program was
    // compiled before anything forked; one that could not be is an error,
    // never a reason to run unfiltered.
    match &p.seccomp {
        super::seccomp::Seccomp::Unconfined => {}
        super::seccomp::Seccomp::Filter(prog) => {
            seccomp::install(prog).map_err(|e| Failure::io(Step::Seccomp, &e, exit::BURROW))?
        }
        super::seccomp::Seccomp::Unusable(why) => {
            return Err(Failure::new(Step::Seccomp, why.clone(), exit::BURROW))
        }
    }
    // Capabilities: the bounding set first (PR_CAPBSET_DROP needs
    // CAP_SETPCAP, which a non-root user loses at setuid), the ids, then the
    // process's own sets.
    let cap_err = |step| move |e| Failure::io(step, &e, exit::BURROW);
    match &p.cap_sets {
        None => {
            caps::drop_bounding(p.caps).map_err(cap_err(Step::CapBounding))?;
            ids.apply(groups_allowed).map_err(user_failure)?;
            caps::set_sets(p.caps).map_err(cap_err(Step::CapSets))?;
        }
        Some(sets) => {
            caps::drop_bounding(sets.bounding).map_err(cap_err(Step::CapBounding))?;
            caps::keep_across_setuid(true).map_err(cap_err(Step::CapSets))?;
            ids.apply(groups_allowed).map_err(user_failure)?;
            caps::keep_across_setuid(false).map_err(cap_err(Step::CapSets))?;
            caps::set_each(sets).map_err(cap_err(Step::CapSets))?;
        }
    }
    Ok(())
}

/// Into the working directory `cwd`, which must be inside the root.
fn enter_workdir(cwd: &str) -> Result<(), Failure> {
    nix::unistd::chdir(cwd)
        .map_err(|e| Failure::sys(Step::Workdir, e, exit::CANNOT_RUN).at(cwd))?;
    // The working directory must be inside the container's root: one that
    // is not (reached through a magic link) has no path from `/`, which
    // getcwd(3) reports as ENOENT (getcwd(2) as "(unreachable)").
    match nix::unistd::getcwd() {
        Ok(dir) if dir.is_absolute() => {}
        _ => {
            return Err(Failure::new(
                Step::Workdir,
                "it is outside the container's root",
                exit::CANNOT_RUN,
            )
            .at(cwd))
        }
    }
    Ok(())
}

/// Exec the static init program `binary` (opened from `path`) as PID 1 with
/// the container's environment only, so PID 1 is a fresh program (as
/// Docker execs tini) rather than a copy of the process that set the
/// container up, which held the caller's environment and memory.
fn exec_init(
    binary: &File,
    path: &Path,
    argv: &[String],
    env: &[String],
) -> Result<Never, Failure> {
    let c_args = cstrings(&super::init::command_line(path, argv))?;
    let c_env = cstrings(env)?;
    process::reset_signals();
    let e = process::exec_fd(binary, &c_args, &c_env);
    Err(Failure::sys(Step::Exec, e, exit::CANNOT_RUN).at(path))
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, Failure> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_str()).map_err(|_| {
                Failure::new(
                    Step::Exec,
                    format!("{s:?} contains a NUL byte"),
                    exit::BURROW,
                )
            })
        })
        .collect()
}

/// Block until the engine's `start` writes its byte into the FIFO behind
/// `gate`, a descriptor opened for reading and writing before we were
/// forked (so reading never sees an end of file, and nothing is reopened
/// through a /proc the container may not have).
fn wait_for_start(gate: BorrowedFd<'_>) -> Result<(), Failure> {
    let mut byte = [0u8; 1];
    let fail = |e: nix::Error| Failure::sys(Step::StartGate, e, exit::BURROW);
    loop {
        match nix::unistd::read(gate, &mut byte) {
            Ok(1) => break,
            Err(nix::Error::EINTR) => {}
            Ok(_) => return Err(fail(nix::Error::EPIPE)),
            Err(e) => return Err(fail(e)),
        }
    }
    // Close-on-exec: gone once the container's program runs.
    Ok(())
}

/// The failure `exec` would report if no candidate for `argv[0]` exists.
fn find_program(argv: &[String], env: &[String]) -> Result<(), Failure> {
    let (prog, candidates) = exec_candidates(argv, env)?;
    if candidates.iter().any(|c| c.exists()) {
        return Ok(());
    }
    Err(not_found(prog))
}

/// `argv[0]`, and where execvp would look for it: the path itself when it
/// has a slash, else each directory of the container's PATH (Docker's when
/// the image sets none).
fn exec_candidates<'a>(
    argv: &'a [String],
    env: &[String],
) -> Result<(&'a str, Vec<PathBuf>), Failure> {
    let prog = argv
        .first()
        .ok_or_else(|| Failure::new(Step::Exec, "no command specified", exit::BURROW))?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let candidates = if prog.contains('/') {
        vec![PathBuf::from(prog)]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(prog))
            .collect()
    };
    Ok((prog, candidates))
}

/// Docker's words (and exit code) for a program none of whose candidates
/// exists.
fn not_found(prog: &str) -> Failure {
    let detail = if prog.contains('/') {
        format!("{prog:?}: stat {prog}: no such file or directory")
    } else {
        format!("{prog:?}: executable file not found in $PATH")
    };
    Failure::new(Step::Exec, detail, exit::NOT_FOUND)
}

fn setup_stdio(p: &Process, terminal: Option<RawFd>) -> Result<(), Failure> {
    let sys = |e| Failure::sys(Step::Stdio, e, exit::BURROW);
    let tty_err = |e| Failure::sys(Step::Terminal, e, exit::BURROW);
    let null = || {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Failure::io(Step::Stdio, &e, exit::BURROW).at("/dev/null"))
    };
    // A terminal's slave becomes stdio and the controlling terminal of a
    // session of our own (setsid(2), then TIOCSCTTY: tty_ioctl(4)).
    let become_terminal = |slave: RawFd| -> Result<(), Failure> {
        for target in 0..3 {
            process::dup_onto(slave, target).map_err(tty_err)?;
        }
        nix::unistd::setsid().map_err(tty_err)?;
        tty::set_controlling_terminal(0).map_err(tty_err)
    };
    match (p.stdio, terminal) {
        (_, Some(slave)) => become_terminal(slave)?,
        (Stdio::ConsoleSocket(sock), None) => {
            let (master, slave) =
                tty::open_pty_in(Path::new("/dev/pts")).map_err(|e| tty_err(e).at("/dev/pts"))?;
            tty::send_fd(sock, master.as_raw_fd()).map_err(tty_err)?;
            drop(master);
            become_terminal(slave.as_raw_fd())?;
        }
        (Stdio::Pipes(fds), None) => {
            for (target, fd) in (0..).zip(fds) {
                if fd != target {
                    process::dup_onto(fd, target).map_err(sys)?;
                }
            }
            nix::unistd::setsid().map_err(sys)?;
        }
        (Stdio::Detached, None) => {
            nix::unistd::setsid().map_err(sys)?;
            let null = null()?;
            for target in 0..3 {
                process::dup_onto(null.as_raw_fd(), target).map_err(sys)?;
            }
        }
        // The caller's stdio, which may be its terminal: ours to read and
        // write, never our controlling terminal.
        (Stdio::Inherit | Stdio::Pty, None) => {
            nix::unistd::setsid().map_err(sys)?;
        }
    }
    if !p.stdin && p.stdio != Stdio::Detached {
        process::dup_onto(null()?.as_raw_fd(), 0).map_err(sys)?;
    }
    Ok(())
}

/// `--init` without a static init program on the host: fork the command
/// and stay PID 1 (not dumpable, so nothing in the container reads the
/// memory we share with our caller). Signals sent to the container
/// are forwarded to the command; orphans reparented to us are reaped; we end
/// with the command's exit code. Blocked signals reach a namespace's init
/// even without a handler (the kernel only ignores unblocked default ones),
/// so a signalfd sees them, as tini's sigtimedwait does.
fn run_init(argv: &[String], env: &[String], trampoline: Option<&File>) -> Result<Never, Failure> {
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

    let sys = |e| Failure::sys(Step::Signals, e, exit::BURROW);
    let all = SigSet::all();
    all.thread_block().map_err(sys)?;
    let sfd = SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC).map_err(sys)?;
    // The command reports its own exec failure on stderr, then we see it
    // exit with Docker's code.
    let child = process::fork_child(|| match exec(argv, env, 0, trampoline) {
        Ok(never) => match never {},
        Err(f) => {
            eprintln!("burrow: {f}");
            f.code
        }
    })
    .map_err(|e| Failure::sys(Step::Fork, e.errno(), exit::BURROW))?;
    // From here on nobody reads the exec pipe's failure reports: close ours
    // so the caller sees exec "succeeded" (the command runs under us).
    process::close_fds_except(&[sfd.as_raw_fd()]);
    loop {
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig == Signal::SIGCHLD as i32 {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p == child => process::exit_now(code),
                    Ok(WaitStatus::Signaled(p, s, _)) if p == child => {
                        process::exit_now(128 + s as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else if let Ok(s) = Signal::try_from(sig) {
            let _ = nix::sys::signal::kill(child, s);
        }
    }
}

/// Find the program the way execvp does, but with the container's PATH, and
/// exec it, through `trampoline` when there is one (see
/// `sandbox::trampoline`). Errors carry Docker's wording and exit codes (127
/// not found, 126 not runnable).
fn exec(
    argv: &[String],
    env: &[String],
    preserve_fds: u32,
    trampoline: Option<&File>,
) -> Result<Never, Failure> {
    let (prog, candidates) = exec_candidates(argv, env)?;
    let c_argv = cstrings(argv)?;
    let c_env = cstrings(env)?;
    process::reset_signals();
    // Only stdin, stdout and stderr cross into the program (and what an
    // engine asked to preserve).
    if preserve_fds == 0 {
        process::cloexec_from_3();
    } else {
        process::cloexec_from_3_keeping(preserve_fds);
    }
    let mut denied = None;
    for cand in &candidates {
        let Ok(c_path) = CString::new(cand.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // Exec returns only on failure: what failed.
        let failed = match trampoline {
            // The trampoline reports a failed exec only as its exit code,
            // so what execve(2) would refuse is found out here first: a
            // missing file, a directory, no permission to execute.
            Some(t) => match nix::unistd::access(cand.as_path(), nix::unistd::AccessFlags::X_OK) {
                Err(e) => e,
                Ok(()) if cand.is_dir() => nix::Error::EACCES,
                Ok(()) => process::exec_fd(t, &super::trampoline::argv(&c_path, &c_argv), &c_env),
            },
            None => match nix::unistd::execve(&c_path, &c_argv, &c_env) {
                Ok(never) => match never {},
                Err(e) => e,
            },
        };
        match failed {
            nix::Error::ENOENT | nix::Error::ENOTDIR => continue,
            e @ (nix::Error::EACCES | nix::Error::EISDIR | nix::Error::ENOEXEC) => {
                denied.get_or_insert((cand.clone(), e));
            }
            e => {
                return Err(Failure {
                    step: Step::Exec,
                    path: None,
                    detail: format!("{prog:?}"),
                    errno: Some(e as i32),
                    code: exit::CANNOT_RUN,
                })
            }
        }
    }
    if let Some((p, e)) = denied {
        let what = if e == nix::Error::ENOEXEC {
            "exec format error"
        } else if p.is_dir() {
            "is a directory"
        } else {
            "permission denied"
        };
        return Err(Failure::new(
            Step::Exec,
            format!("{prog:?}: {what}"),
            exit::CANNOT_RUN,
        ));
    }
    Err(not_found(prog))
}
