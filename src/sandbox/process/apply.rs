//! Running a process's plan ([`Plan`]): each [`ProcessOp`] in order in the
//! process forked to enter the container, up to its exec; the first
//! failure stops it and is sent on the report channel.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use super::{Plan, ProcessOp, Stdio, DEFAULT_PATH};
use crate::exit;
use crate::linux::channel::Sender;
use crate::linux::{caps, process, seccomp, tty};
use crate::sandbox::seccomp::Seccomp;
use crate::sandbox::user::{self, Ids, UserError};
use crate::sandbox::wire::SetupReport;
use crate::sandbox::{Failure, Step};

enum Never {}

/// Run `plan`: enter the container and exec. Returns only on failure,
/// after sending it on `report` (a close-on-exec channel, so its EOF alone
/// means exec succeeded): the exit code.
pub fn enter_and_exec(plan: &Plan, report: &mut Sender<SetupReport>) -> i32 {
    let mut entering = Entering {
        report,
        argv: plan.argv,
        groups_allowed: plan.groups_allowed,
        init_binary: None,
        trampoline: None,
        ids: None,
        env: plan.env.to_vec(),
    };
    match entering.run(plan) {
        Ok(never) => match never {},
        Err(f) => {
            let code = f.code;
            entering.report.tell(SetupReport::Failed(f));
            code
        }
    }
}

/// What the steps run so far made, for the steps after them.
struct Entering<'r, 'p> {
    report: &'r mut Sender<SetupReport>,
    argv: &'p [String],
    groups_allowed: bool,
    /// A static init program of the host's, opened.
    init_binary: Option<File>,
    trampoline: Option<File>,
    /// The user, once looked up.
    ids: Option<Ids>,
    /// The environment, with HOME once the user is looked up.
    env: Vec<String>,
}

impl Entering<'_, '_> {
    fn run(&mut self, plan: &Plan) -> Result<Never, Failure> {
        for op in &plan.ops {
            match op {
                ProcessOp::ExecInit(path) => {
                    let binary = self.init_binary.as_ref().ok_or_else(not_opened)?;
                    return exec_init(binary, path, self.argv, &self.env);
                }
                ProcessOp::RunInit => {
                    return run_init(self.argv, &self.env, self.trampoline.as_ref())
                }
                ProcessOp::Exec { preserve_fds } => {
                    return exec(
                        self.argv,
                        &self.env,
                        *preserve_fds,
                        self.trampoline.as_ref(),
                    )
                }
                op => self.step(op)?,
            }
        }
        // A plan always ends in an exec.
        Err(Failure::new(Step::Exec, "no exec planned", exit::BURROW))
    }

    /// One step short of the exec.
    fn step(&mut self, op: &ProcessOp) -> Result<(), Failure> {
        let cap_err = |step| move |e| Failure::io(step, &e, exit::BURROW);
        match op {
            // A process that is not dumpable is open through /proc and
            // ptrace only to holders of CAP_SYS_PTRACE in the namespace our
            // binary was exec'd in, the host's (ptrace(2), "Ptrace access
            // mode checking"). execve(2) makes the container's program
            // dumpable again.
            ProcessOp::NotDumpable => process::set_dumpable(false)
                .map_err(|e| Failure::sys(Step::Dumpable, e, exit::BURROW))?,
            ProcessOp::DieWithParent => {
                let _ = process::set_parent_death_signal(Signal::SIGKILL);
            }
            ProcessOp::OpenInit(path) => {
                self.init_binary = Some(
                    process::open_path(path)
                        .map_err(|e| Failure::sys(Step::Exec, e, exit::BURROW).at(path))?,
                );
            }
            ProcessOp::LoadTrampoline => self.trampoline = load_trampoline()?,
            ProcessOp::Entry { root, entry } => entry.run(root)?,
            // Every process starts a session of its own, so the caller's
            // terminal is never its controlling terminal: TIOCSTI on it
            // would type into the caller's shell (bubblewrap's
            // CVE-2017-5226).
            ProcessOp::Stdio { stdio, terminal } => setup_stdio(*stdio, *terminal)?,
            ProcessOp::NullStdin => {
                process::dup_onto(open_null()?.as_raw_fd(), 0)
                    .map_err(|e| Failure::sys(Step::Stdio, e, exit::BURROW))?;
            }
            // Only stdio, our report channel and what was passed on
            // purpose stay open from here: a directory descriptor of the
            // caller's left open (even close-on-exec) would be a way out
            // through /proc/self/fd/N as the working directory, or the
            // path of any file we create or open below (runc's
            // CVE-2024-21626).
            ProcessOp::CloseFds { gate, preserve_fds } => {
                let mut keep = vec![self.report.as_raw_fd()];
                keep.extend(self.init_binary.as_ref().map(|f| f.as_raw_fd()));
                keep.extend(self.trampoline.as_ref().map(|f| f.as_raw_fd()));
                keep.extend(gate);
                keep.extend((0..*preserve_fds).filter_map(|i| RawFd::try_from(3 + i).ok()));
                process::close_fds_except(&keep);
            }
            ProcessOp::User { user, groups } => {
                let mut ids = user::resolve(user, Path::new("/etc")).map_err(user_failure)?;
                if let Some(groups) = groups {
                    ids.groups = groups.to_vec();
                }
                if !self.env.iter().any(|e| e.starts_with("HOME=")) {
                    self.env.push(format!("HOME={}", ids.home));
                }
                self.ids = Some(ids);
            }
            ProcessOp::MakeWorkdir(cwd) => {
                if !Path::new(cwd).is_dir() {
                    let _ = std::fs::create_dir_all(cwd);
                }
            }
            ProcessOp::RefuseFakedSwitch => self
                .ids()?
                .refuse_faked_switch(self.groups_allowed)
                .map_err(user_failure)?,
            ProcessOp::NoNewPrivs => seccomp::set_no_new_privs()
                .map_err(|e| Failure::io(Step::NoNewPrivs, &e, exit::BURROW))?,
            ProcessOp::Seccomp(s) => install_seccomp(s)?,
            ProcessOp::CapBounding(keep) => drop_bounding(*keep)?,
            ProcessOp::KeepCaps(on) => {
                caps::keep_across_setuid(*on).map_err(cap_err(Step::CapSets))?
            }
            ProcessOp::Groups => self.ids()?.set_groups().map_err(user_failure)?,
            ProcessOp::Gid => self
                .ids()?
                .set_gid(self.groups_allowed)
                .map_err(user_failure)?,
            ProcessOp::Uid => self
                .ids()?
                .set_uid(self.groups_allowed)
                .map_err(user_failure)?,
            ProcessOp::CapSets(keep) => caps::set_sets(*keep).map_err(cap_err(Step::CapSets))?,
            ProcessOp::CapSetsEach(sets) => caps::set_each(sets).map_err(cap_err(Step::CapSets))?,
            ProcessOp::Workdir(cwd) => enter_workdir(cwd)?,
            ProcessOp::Ready => self.report.tell(SetupReport::Ready),
            ProcessOp::WaitForStart(gate) => wait_for_start(*gate)?,
            ProcessOp::FindProgram => find_program(self.argv, &self.env)?,
            // The exec, which `run` does.
            ProcessOp::ExecInit(_) | ProcessOp::RunInit | ProcessOp::Exec { .. } => {}
        }
        Ok(())
    }

    /// The user the `User` step looked up.
    fn ids(&self) -> Result<&Ids, Failure> {
        self.ids
            .as_ref()
            .ok_or_else(|| Failure::new(Step::User, "no user looked up", exit::BURROW))
    }
}

/// `ExecInit` with no `OpenInit` before it.
fn not_opened() -> Failure {
    Failure::new(Step::Exec, "no init program opened", exit::BURROW)
}

/// The trampoline (see `sandbox::trampoline`), or why the kernel refuses
/// it.
fn load_trampoline() -> Result<Option<File>, Failure> {
    crate::sandbox::trampoline::load().map_err(|e| {
        let mut f = Failure::sys(Step::Exec, e, exit::BURROW);
        if e == nix::Error::EACCES {
            f.detail = "the kernel refuses to run programs from memory (vm.memfd_noexec = 2); burrow needs that to keep its own binary out of containers' reach".into();
        }
        f
    })
}

/// Install `filter`. The program was compiled before anything forked; one
/// that could not be is an error, never a reason to run unfiltered.
pub(in crate::sandbox) fn install_seccomp(filter: &Seccomp) -> Result<(), Failure> {
    match filter {
        Seccomp::Unconfined => Ok(()),
        Seccomp::Filter(prog) => {
            seccomp::install(prog).map_err(|e| Failure::io(Step::Seccomp, &e, exit::BURROW))
        }
        Seccomp::Unusable(why) => Err(Failure::new(Step::Seccomp, why.clone(), exit::BURROW)),
    }
}

/// Drop everything but `keep` from the bounding set.
pub(in crate::sandbox) fn drop_bounding(keep: u64) -> Result<(), Failure> {
    caps::drop_bounding(keep).map_err(|e| Failure::io(Step::CapBounding, &e, exit::BURROW))
}

/// /dev/null, for reading and writing.
pub(in crate::sandbox) fn open_null() -> Result<File, Failure> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Failure::io(Step::Stdio, &e, exit::BURROW).at("/dev/null"))
}

/// Why the user could not be resolved or switched to.
fn user_failure(e: UserError) -> Failure {
    Failure {
        step: Step::User,
        path: None,
        detail: e.to_string(),
        errno: e.errno().map(|n| n as i32),
        code: exit::CANNOT_RUN,
    }
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
    let c_args = cstrings(&crate::sandbox::init::command_line(path, argv))?;
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

/// stdin, stdout and stderr from `stdio`, or `terminal`, in a session of
/// our own.
fn setup_stdio(stdio: Stdio, terminal: Option<RawFd>) -> Result<(), Failure> {
    let sys = |e| Failure::sys(Step::Stdio, e, exit::BURROW);
    let tty_err = |e| Failure::sys(Step::Terminal, e, exit::BURROW);
    // A terminal's slave becomes stdio and the controlling terminal of a
    // session of our own (setsid(2), then TIOCSCTTY: tty_ioctl(4)).
    let become_terminal = |slave: RawFd| -> Result<(), Failure> {
        for target in 0..3 {
            process::dup_onto(slave, target).map_err(tty_err)?;
        }
        nix::unistd::setsid().map_err(tty_err)?;
        tty::set_controlling_terminal(0).map_err(tty_err)
    };
    match (stdio, terminal) {
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
            let null = open_null()?;
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
                Ok(()) => process::exec_fd(
                    t,
                    &crate::sandbox::trampoline::argv(&c_path, &c_argv),
                    &c_env,
                ),
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
