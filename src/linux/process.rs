//! Processes: fork, pipes, waiting, parent-death signals.

use std::os::fd::{OwnedFd, RawFd};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// Fork; the child runs `f` and exits with its return value without running
/// the parent's atexit handlers or destructors.
pub fn fork_child<F: FnOnce() -> i32>(f: F) -> nix::Result<Pid> {
    // SAFETY: burrow is single-threaded whenever it forks (no runtime, no
    // worker threads; the progress bar draws on the calling thread), so the
    // child cannot inherit a lock held by another thread. The child only runs
    // `f` and then `_exit`s, never returning into the parent's stack frames.
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

/// dup2(2) onto a raw descriptor number (stdio setup before exec; the
/// copy is not close-on-exec).
pub fn dup_onto(fd: RawFd, target: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; `target` is one of
    // 0..=2 and replaced atomically, `fd` stays open and owned by the caller.
    let r = unsafe { libc::dup2(fd, target) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Take ownership of an inherited descriptor (one a parent process set up
/// for us at a known number).
pub fn adopt_fd(fd: RawFd) -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller names a descriptor that is open and that nothing
    // else in this process owns (it was inherited across exec), so the File
    // becomes its only owner.
    unsafe { std::fs::File::from_raw_fd(fd) }
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
    }

    #[test]
    fn exit_codes_and_signals() {
        let p = fork_child(|| 7).unwrap();
        assert_eq!(wait_exit_code(p).unwrap(), 7);
        let p = fork_child(|| {
            let _ = nix::sys::signal::raise(Signal::SIGKILL);
            0
        })
        .unwrap();
        assert_eq!(wait_exit_code(p).unwrap(), 137);
    }
}
