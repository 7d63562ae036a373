//! A child that shares its parent's memory until it execs (clone(2) with
//! CLONE_VM and CLONE_VFORK, the way posix_spawn(3) starts a program), on
//! a stack of its own behind a guard page: no page table is copied, no page
//! copied on write, and its exec has no copy of our memory to tear down.

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::process::{thread_count, ForkError};

/// The children's stack: mapped once, used by one child at a time.
#[derive(Debug)]
pub struct Stack {
    base: NonNull<c_void>,
    len: usize,
    guard: usize,
}

impl Stack {
    /// `size` bytes of stack above an inaccessible guard page. Pages are
    /// only backed once a child touches them.
    pub fn new(size: usize) -> nix::Result<Stack> {
        let guard = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(4096);
        let len = size.next_multiple_of(guard) + guard;
        // SAFETY: a new private anonymous mapping at an address the kernel
        // chooses; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(nix::Error::last());
        }
        let base = NonNull::new(base).ok_or(nix::Error::ENOMEM)?;
        let stack = Stack { base, len, guard };
        // SAFETY: the lowest page of the mapping just made, which is ours: a
        // child whose stack overflows faults there instead of writing into
        // the memory below, which is its parent's.
        if unsafe { libc::mprotect(base.as_ptr(), guard, libc::PROT_NONE) } != 0 {
            return Err(nix::Error::last());
        }
        Ok(stack)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no child runs on it any more (`spawn`
        // returns only once its child has exec'd or exited).
        unsafe {
            libc::munmap(self.base.as_ptr(), self.len);
        }
    }
}

/// Run `f` in a child that shares our memory until it execs or exits, on
/// `stack`, and return its pid once it has done either (we are suspended
/// meanwhile). For our memory it is as if `f` had run on this thread and,
/// if it execs, never returned: what it changed stays changed, and what it
/// allocated and still held is never freed, so `f` should allocate little.
/// Its system calls act on the child alone: it has its own descriptor
/// table, credentials, signal handlers and seccomp filter; only the
/// dumpable flag belongs to the memory, so it is shared until the exec.
/// Returning from `f` ends the child with that exit code.
pub fn spawn<F: FnMut() -> i32>(stack: &mut Stack, mut f: F) -> Result<Pid, ForkError> {
    match thread_count() {
        Some(1) | None => {}
        Some(n) => return Err(ForkError::Threads(n)),
    }
    let cb: nix::sched::CloneCb = Box::new(move || f() as isize);
    // SAFETY: the guard page and the stack above it are ours, and the
    // mutable borrow keeps any other child off them.
    let region = unsafe {
        std::slice::from_raw_parts_mut(
            stack.base.as_ptr().cast::<u8>().add(stack.guard),
            stack.len - stack.guard,
        )
    };
    // SAFETY: we are the only thread (checked above, or the process cannot
    // see its own tasks, as in a container's /proc, where it runs only
    // what it forked from a single-threaded caller), and CLONE_VFORK
    // suspends us until the child execs or exits, so the child is the only
    // user of our memory meanwhile, as `f` would be on this thread. It runs
    // on its own stack, whose guard page stops an overflow.
    Ok(unsafe {
        nix::sched::clone(
            cb,
            region,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness runs tests on threads of their own, so a child
    /// sharing our memory is refused: the check is the point. (The health
    /// tests start every probe this way.)
    #[test]
    fn a_process_with_threads_is_refused() {
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(1)));
        let mut stack = Stack::new(64 * 1024).unwrap();
        assert!(matches!(
            spawn(&mut stack, || 0),
            Err(ForkError::Threads(n)) if n > 1
        ));
    }
}
