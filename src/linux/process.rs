//! Processes: fork (single-threaded only), pipes, waiting, parent-death
//! signals, descriptor hygiene.

use std::os::fd::{OwnedFd, RawFd};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// Which of `fds` poll(2) reported anything for (readable, hung up or in
/// error), in their order: what an event loop looks at after its poll.
pub fn ready(fds: &[nix::poll::PollFd]) -> Vec<bool> {
    fds.iter().map(has_events).collect()
}

/// The `items` (one per descriptor of `fds`, in the same order) whose
/// descriptor poll(2) reported anything for.
pub fn ready_among<T>(items: impl IntoIterator<Item = T>, fds: &[nix::poll::PollFd]) -> Vec<T> {
    items
        .into_iter()
        .zip(fds)
        .filter(|(_, f)| has_events(f))
        .map(|(item, _)| item)
        .collect()
}

fn has_events(f: &nix::poll::PollFd) -> bool {
    f.revents().is_some_and(|r| !r.is_empty())
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// Why [`fork_child`] did not fork.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    /// A forked child inherits only the forking thread, but any lock another
    /// thread held (allocator, stdio) stays locked in it forever; and the
    /// kernel refuses a user namespace to a multi-threaded process
    /// (unshare(2), EINVAL). Work that uses threads (pulling layers) runs in
    /// a child of its own and is over before anything forks.
    #[error("burrow has {0} threads; it may only fork while single-threaded")]
    Threads(usize),
    #[error("fork: {0}")]
    Sys(#[from] nix::Error),
}

impl ForkError {
    /// The errno to report (EAGAIN for the thread check: try again later).
    pub fn errno(&self) -> nix::Error {
        match self {
            ForkError::Threads(_) => nix::Error::EAGAIN,
            ForkError::Sys(e) => *e,
        }
    }
}

/// Fork; the child runs `f` and exits with its return value without running
/// the parent's atexit handlers or destructors. Refuses (without forking)
/// when `/proc/self/task` shows more than one thread: that check is what
/// makes this function safe to call.
pub fn fork_child<F: FnOnce() -> i32>(f: F) -> Result<Pid, ForkError> {
    match thread_count() {
        Some(1) | None => {}
        Some(n) => return Err(ForkError::Threads(n)),
    }
    // SAFETY: we just checked that this process has a single thread, so the
    // child cannot inherit a lock held by another thread. The child only
    // runs `f` and then `_exit`s, never returning into the parent's stack
    // frames.
    Ok(unsafe { fork_unchecked(f) }?)
}

/// [`fork_child`] without the thread check, for unit tests (the test
/// harness runs tests on threads of its own).
///
/// # Safety
///
/// Other threads may hold locks (the allocator's, stdio's) that stay locked
/// forever in the child: `f` must take none of them, or the caller must know
/// that no other thread exists at the time of the fork.
pub(crate) unsafe fn fork_unchecked<F: FnOnce() -> i32>(f: F) -> nix::Result<Pid> {
    // SAFETY: the caller guarantees the child takes no lock another thread
    // may hold; the child runs `f` and `_exit`s, never returning into the
    // parent's stack frames.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = f();
            exit_now(code)
        }
    }
}

/// How many threads this process has (`/proc/self/task`), when /proc says.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Give the heap's free pages back to the kernel. A process that set a
/// container up and now only waits for it (the monitor, the supervisor)
/// would otherwise keep the memory of the setup for the container's life,
/// once per container.
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes their
    // locks, and no other thread of ours can hold them at this point.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Leave the process at once, without unwinding or flushing stdio buffers
/// that belong to the parent's copy.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Ask the kernel to send `sig` to us when our parent thread dies, so a
/// container never outlives the process supervising it.
pub fn set_parent_death_signal<S: Into<Option<Signal>>>(sig: S) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(sig)
}

/// Ignore `sig` (SIG_IGN survives exec: reset before exec'ing user code).
pub fn ignore_signal(sig: Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler, so no code runs in signal context.
    unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }.map(|_| ())
}

/// Close every descriptor from 3 up except `keep`. A forked child inherits
/// all of its parent's descriptors (close-on-exec only acts at exec): one it
/// keeps by accident can hold a pipe open, or hand a container a host file.
pub fn close_fds_except(keep: &[RawFd]) {
    // close_range(2) over the gaps between the kept descriptors: a few
    // calls, where listing /proc/self/fd costs an open, a directory read
    // and a close per descriptor.
    let mut kept: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut from = 3u32;
    for k in kept {
        if k > from && !close_range(from, k - 1) {
            return close_fds_listed(keep);
        }
        // A descriptor number fits an i32, so this cannot overflow.
        from = k + 1;
    }
    if !close_range(from, u32::MAX) {
        close_fds_listed(keep);
    }
}

/// PR_SET_DUMPABLE (prctl(2)): whether processes other than ones with
/// CAP_SYS_PTRACE over our binary's user namespace may trace us or open our
/// /proc files (mem, environ, fd, exe).
pub fn set_dumpable(dumpable: bool) -> nix::Result<()> {
    nix::sys::prctl::set_dumpable(dumpable)
}

/// set_mempolicy(2): this thread's NUMA memory policy, `mode` with its
/// flags, over the nodes set in `nodes` (bit N of word N/64 for node N).
/// Inherited by children and kept across execve.
pub fn set_mempolicy(mode: i32, nodes: &[libc::c_ulong]) -> nix::Result<()> {
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel reads maxnode - 1 bits (numactl passes one more).
        (
            nodes.as_ptr(),
            nodes.len() * libc::c_ulong::BITS as usize + 1,
        )
    };
    // SAFETY: `ptr` is null with maxnode 0, or points at `nodes`, whose
    // words hold the maxnode - 1 bits the kernel reads; it only reads them.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    nix::errno::Errno::result(r).map(drop)
}

/// `code` (a whole executable) in an anonymous memory file (memfd_create(2))
/// sealed against every change (F_SEAL_WRITE, SHRINK, GROW, then SEAL), to
/// exec with [`exec_fd`]: a program no other process can alter, whatever
/// reaches it through /proc/PID/exe. MFD_EXEC asks for an executable memfd
/// where the kernel knows the flag (Linux 6.3, vm.memfd_noexec); older ones
/// make them executable anyway.
pub fn sealed_program(name: &str, code: &[u8]) -> nix::Result<std::fs::File> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::Write;
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    let fd = match memfd_create(name, base | exec) {
        Err(nix::Error::EINVAL) => memfd_create(name, base)?,
        other => other?,
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(code)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL;
    fcntl(&file, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(file)
}

/// A program opened O_PATH, to exec later with [`exec_fd`] from wherever
/// we are by then (after pivot_root, say).
pub fn open_path(path: &std::path::Path) -> nix::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Exec the program `binary` refers to (execveat(2) with AT_EMPTY_PATH);
/// returns only on failure.
pub fn exec_fd(
    binary: &std::fs::File,
    argv: &[std::ffi::CString],
    env: &[std::ffi::CString],
) -> nix::Error {
    use std::os::fd::AsFd;
    match nix::unistd::execveat(
        binary.as_fd(),
        c"",
        argv,
        env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    ) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// close_range(2) (Linux 5.9): false where the kernel lacks it.
fn close_range(first: u32, last: u32) -> bool {
    // SAFETY: close_range takes two descriptor numbers and flags, no
    // pointers; whatever owned those descriptors in the parent does not
    // run in this process (we are its forked child).
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) == 0 }
}

/// [`close_fds_except`] for kernels without close_range: close what
/// /proc/self/fd lists.
fn close_fds_listed(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Collect first: closing while iterating would close the iterator's own fd.
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a raw descriptor number; whatever owned it in
            // the parent does not run in this process (we are its forked
            // child, about to use only `keep`).
            unsafe { libc::close(fd) };
        }
    }
}

/// Mark every descriptor from 3 up close-on-exec, so the program we exec
/// inherits only stdin, stdout and stderr (close_range(2), Linux 5.11).
pub fn cloexec_from_3() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// Like [`cloexec_from_3`], but descriptors 3..3+`keep` stay open across
/// exec (an engine's `--preserve-fds`, socket activation's LISTEN_FDS).
pub fn cloexec_from_3_keeping(keep: u32) {
    // SAFETY: as in `cloexec_from_3`; no pointers are passed.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32.saturating_add(keep),
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// Restore SIGPIPE's default action, which Rust's runtime ignores.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}

/// Give the process a clean signal state before exec: every signal unblocked
/// and at its default action. Rust's runtime ignores SIGPIPE and our inner
/// process ignores SIGINT & co.; a container's program must not inherit that.
pub fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// dup2(2) onto a raw descriptor number, for the descriptors a child sets
/// up for the program it execs next (stdio, a monitor's status pipe). The
/// copy is not close-on-exec, even when `fd` already is `target` (dup2 then
/// changes nothing, so the flag is cleared by hand).
pub fn dup_onto(fd: RawFd, target: RawFd) -> nix::Result<()> {
    if fd == target {
        // SAFETY: F_SETFD only changes a flag of the descriptor; no memory
        // is passed.
        let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        return if r < 0 {
            Err(nix::Error::last())
        } else {
            Ok(())
        };
    }
    // SAFETY: dup2 takes no pointers; it atomically replaces whatever
    // `target` named (any descriptor number, not only 0..=2). If something
    // in this process owned that number, it now holds the new file: callers
    // only aim at numbers whose old files they are handing over to the
    // program they exec next. `fd` stays open and owned by the caller.
    let r = unsafe { libc::dup2(fd, target) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Take ownership of descriptor `fd` if it was inherited across exec (a
/// parent set it up for us at a known number, as `monitor::launch` does
/// with its status pipe). Returns None when `fd` is not open.
///
/// It is checked, not trusted: every descriptor Rust's standard library or
/// nix opens in this process is close-on-exec, so one without FD_CLOEXEC
/// (fcntl(2) F_GETFD) was inherited and nothing here owns it yet. Adopting
/// it sets the flag, so a second call for the same number finds it owned
/// and returns an error instead of a second owner.
pub fn adopt_inherited_fd(fd: RawFd) -> std::io::Result<Option<OwnedFd>> {
    // SAFETY: F_GETFD only reads the descriptor's flags; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EBADF) => Ok(None),
            _ => Err(e),
        };
    }
    if flags & libc::FD_CLOEXEC != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("descriptor {fd} was opened by this process, not inherited"),
        ));
    }
    // SAFETY: F_SETFD only changes the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is open (F_GETFD succeeded) and was not close-on-exec,
    // so nothing in this process opened it (see above) and nothing adopted
    // it before (adopting sets the flag): the OwnedFd is its only owner.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Wait for `pid` and turn its end into a shell-style exit code
/// (128 + signal number when killed by a signal).
pub fn wait_exit_code(pid: Pid) -> nix::Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The start time of a process in clock ticks since boot (field 22 of
/// /proc/PID/stat), to tell a live container process from a reused pid.
pub fn start_time(proc_root: &std::path::Path, pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 (start time) of the text of a /proc/PID/stat file.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The state letter of a process (field 3 of /proc/PID/stat: R, S, D, T,
/// t, Z, X...); None once it is gone.
pub fn state(proc_root: &std::path::Path, pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    stat.get(stat.rfind(')')? + 1..)?
        .trim_start()
        .chars()
        .next()
}

/// `pid` and all its descendants, from /proc/PID/task/*/children.
pub fn descendants(proc_root: &std::path::Path, pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(proc_root.join(p.to_string()).join("task")) {
            for t in tasks.flatten() {
                if let Ok(children) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<i32>().ok()),
                    );
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_stable() {
        let me = std::process::id() as i32;
        let a = start_time(std::path::Path::new("/proc"), me).unwrap();
        let b = start_time(std::path::Path::new("/proc"), me).unwrap();
        assert_eq!(a, b);
        assert!(start_time(std::path::Path::new("/proc"), i32::MAX).is_none());
        // This thread, reading its own stat, is running.
        let tid = nix::unistd::gettid().as_raw();
        assert_eq!(state(std::path::Path::new("/proc"), tid), Some('R'));
        assert_eq!(state(std::path::Path::new("/proc"), i32::MAX), None);
    }

    #[test]
    fn exit_codes_and_signals() {
        // SAFETY: the children only return or raise a signal; they take no
        // lock the test harness's other threads could hold.
        let p = unsafe { fork_unchecked(|| 7) }.unwrap();
        assert_eq!(wait_exit_code(p).unwrap(), 7);
        // SAFETY: as above.
        let p = unsafe {
            fork_unchecked(|| {
                let _ = nix::sys::signal::raise(Signal::SIGKILL);
                0
            })
        }
        .unwrap();
        assert_eq!(wait_exit_code(p).unwrap(), 137);
    }

    #[test]
    fn close_fds_except_keeps_only_what_it_is_told() {
        use std::os::fd::AsRawFd;
        let files: Vec<std::fs::File> = (0..4)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: F_GETFD only reads a descriptor's flags.
        let open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        // SAFETY: the child only makes system calls (close_range, fcntl)
        // and returns; it takes no lock the harness's threads could hold.
        let p = unsafe {
            fork_unchecked(|| {
                // Kept out of order, with a duplicate and stdio.
                close_fds_except(&[fds[3], fds[1], fds[1], 2]);
                let want = [false, true, false, true];
                let ok = fds.iter().zip(want).all(|(&fd, w)| open(fd) == w);
                i32::from(!(ok && open(0) && open(1) && open(2)))
            })
        }
        .unwrap();
        assert_eq!(wait_exit_code(p).unwrap(), 0);
        assert!(fds.iter().all(|&fd| open(fd)), "the parent keeps its own");
    }
}

/// Why [`spawn_detached`] did not start its program.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("/dev/null: {0}")]
    Null(#[source] std::io::Error),
    #[error("fork: {0}")]
    Fork(#[source] ForkError),
    /// The intermediate child's exit code (or why it could not be had).
    #[error("the intermediate process failed: {0:?}")]
    Middle(nix::Result<i32>),
}

/// Start `exe` with `args` (its argv[0] `name`) detached: in a session of
/// its own, a grandchild nobody waits for, stdin and stdout /dev/null,
/// stderr `log`, `extra` as descriptor 3 when given, and no other
/// descriptor of ours, so that it neither dies with its starter nor holds
/// a caller's pipe open. Returns once the intermediate child is reaped.
pub fn spawn_detached(
    exe: &std::path::Path,
    name: &str,
    args: &[&std::ffi::OsStr],
    log: &std::fs::File,
    extra: Option<RawFd>,
) -> Result<(), DetachError> {
    use std::os::fd::AsRawFd;
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(DetachError::Null)?;
    let middle = fork_child(|| {
        let _ = nix::unistd::setsid();
        let _ = set_parent_death_signal(None);
        match fork_child(|| {
            let mut moves = vec![
                (null.as_raw_fd(), 0),
                (null.as_raw_fd(), 1),
                (log.as_raw_fd(), 2),
            ];
            moves.extend(extra.map(|fd| (fd, 3)));
            for (fd, target) in moves {
                if dup_onto(fd, target).is_err() {
                    return 1;
                }
            }
            let keep: &[RawFd] = if extra.is_some() {
                &[0, 1, 2, 3]
            } else {
                &[0, 1, 2]
            };
            close_fds_except(keep);
            reset_signals();
            use std::os::unix::process::CommandExt;
            let _ = std::process::Command::new(exe).arg0(name).args(args).exec();
            // Nobody waits for this process: the code is for a tracer.
            127
        }) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    })
    .map_err(DetachError::Fork)?;
    match wait_exit_code(middle) {
        Ok(0) => Ok(()),
        other => Err(DetachError::Middle(other)),
    }
}
