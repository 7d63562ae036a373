//! A small seccomp filter in the spirit of Docker's default profile: no new
//! user namespaces (unshare/clone with CLONE_NEWUSER), no kernel keyring
//! (not namespaced), and clone3 answered with ENOSYS so libc falls back to
//! clone, whose flags a filter can see. Everything else is allowed.

use std::io;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// struct seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

const CLONE_NEWUSER: u32 = 0x1000_0000;

/// One system call ABI the filter knows: its audit arch and numbers.
struct Abi {
    arch: u32,
    unshare: u32,
    clone: u32,
    clone3: u32,
    keyring: [u32; 3],
    /// x86_64's x32 ABI shares the arch value; its numbers have this bit.
    x32_bit: Option<u32>,
}

#[cfg(target_arch = "x86_64")]
const ABIS: &[Abi] = &[
    Abi {
        arch: 0xc000_003e, // AUDIT_ARCH_X86_64
        unshare: 272,
        clone: 56,
        clone3: 435,
        keyring: [248, 249, 250], // add_key, request_key, keyctl
        x32_bit: Some(0x4000_0000),
    },
    Abi {
        arch: 0x4000_0003, // AUDIT_ARCH_I386
        unshare: 310,
        clone: 120,
        clone3: 435,
        keyring: [286, 287, 288],
        x32_bit: None,
    },
];

#[cfg(target_arch = "aarch64")]
const ABIS: &[Abi] = &[Abi {
    arch: 0xc000_00b7, // AUDIT_ARCH_AARCH64
    unshare: 97,
    clone: 220,
    clone3: 435,
    keyring: [217, 218, 219],
    x32_bit: None,
}];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ABIS: &[Abi] = &[];

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program. `allow_userns` keeps new user namespaces allowed
/// (Docker allows them when CAP_SYS_ADMIN was granted).
pub fn program(allow_userns: bool) -> Vec<libc::sock_filter> {
    let errno = |e: i32| stmt(RET_K, RET_ERRNO | e as u32);
    let mut prog = Vec::new();
    for abi in ABIS {
        let mut block = Vec::new();
        // The ABI's own numbers only apply when the call uses that ABI.
        if let Some(bit) = abi.x32_bit {
            block.push(stmt(LD_W_ABS, OFF_NR));
            block.push(jump(JGE_K, bit, 0, 1));
            block.push(errno(libc::ENOSYS));
        }
        block.push(stmt(LD_W_ABS, OFF_NR));
        block.push(jump(JEQ_K, abi.clone3, 0, 1));
        block.push(errno(libc::ENOSYS));
        for nr in abi.keyring {
            block.push(jump(JEQ_K, nr, 0, 1));
            block.push(errno(libc::EPERM));
        }
        if !allow_userns {
            for nr in [abi.unshare, abi.clone] {
                block.push(stmt(LD_W_ABS, OFF_NR));
                block.push(jump(JEQ_K, nr, 0, 3));
                block.push(stmt(LD_W_ABS, OFF_ARG0));
                block.push(jump(JSET_K, CLONE_NEWUSER, 0, 1));
                block.push(errno(libc::EPERM));
            }
        }
        block.push(stmt(RET_K, RET_ALLOW));
        // Enter the block only for this ABI: skip it otherwise.
        prog.push(stmt(LD_W_ABS, OFF_ARCH));
        let skip = u8::try_from(block.len()).expect("seccomp block fits a jump");
        prog.push(jump(JEQ_K, abi.arch, 0, skip));
        prog.extend(block);
    }
    prog.push(stmt(RET_K, RET_ALLOW));
    prog
}

/// Install the filter on the calling thread (inherited by children and
/// kept across exec). Call while holding CAP_SYS_ADMIN in the current user
/// namespace, which spares us no_new_privs (so setuid programs inside the
/// container keep working).
pub fn install(allow_userns: bool) -> io::Result<()> {
    let prog = program(allow_userns);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // copies the program before returning.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_shape() {
        let p = program(false);
        assert!(p.len() < 200, "fits jump offsets");
        assert_eq!(p.last().unwrap().k, RET_ALLOW);
        // Allowing user namespaces drops the clone/unshare checks.
        assert!(program(true).len() < p.len() || ABIS.is_empty());
    }

    #[test]
    fn the_filter_blocks_new_user_namespaces_in_a_child() {
        if ABIS.is_empty() {
            return;
        }
        // Install in a forked child (the test process must stay unfiltered);
        // without CAP_SYS_ADMIN this needs no_new_privs.
        let body = || {
            // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if install(false).is_err() {
                return 2;
            }
            match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Err(nix::Error::EPERM) => {}
                _ => return 3,
            }
            // Other namespaces and ordinary forks still work.
            match crate::linux::process::fork_child(|| 0) {
                Ok(p) => {
                    if crate::linux::process::wait_exit_code(p) != Ok(0) {
                        return 4;
                    }
                }
                Err(_) => return 5,
            }
            0
        };
        // SAFETY: the test harness has other threads; the child installs a
        // filter and forks, and glibc's fork handlers keep malloc usable in
        // it, as they did before fork_child checked for threads.
        let child = unsafe { crate::linux::process::fork_unchecked(body) }.unwrap();
        assert_eq!(crate::linux::process::wait_exit_code(child).unwrap(), 0);
    }
}
