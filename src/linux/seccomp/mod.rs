//! burrow's own seccomp BPF emitter and installer: a [`Filter`] (per system
//! call ABI, rules by syscall number with argument conditions, and an
//! action for everything else) compiled to classic BPF, and the prctl(2)
//! calls that install it and set no_new_privs. It knows numbers and
//! actions only; which calls a container may make is `sandbox::seccomp`'s.

use std::io;

mod compile;

pub use compile::compile;
#[cfg(test)]
pub use compile::run;

/// The kernel refuses longer programs (BPF_MAXINSNS, linux/bpf_common.h).
const MAX_INSNS: usize = 4096;

/// AUDIT_ARCH_* values (linux/audit.h): what `seccomp_data.arch` holds.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x86_64's x32 ABI shares AUDIT_ARCH_X86_64; its numbers carry this bit.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What the filter answers (seccomp(2), "Filter return values").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Allow,
    /// Fail the call with this errno.
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
    /// Ask a ptrace tracer; without one the call fails with ENOSYS.
    Trace(u16),
}

impl Action {
    /// The value the filter returns for this action.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::Trace(d) => 0x7ff0_0000 | u32::from(d),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }
}

/// A comparison of one 64-bit syscall argument, done in BPF as a pair of
/// 32-bit words (classic BPF loads 32 bits at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// `arg & mask == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgCmp {
    /// 0..=5
    pub index: u8,
    pub cmp: Cmp,
}

/// `action` for syscall `nr` when every condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    pub nr: u32,
    pub args: Vec<ArgCmp>,
    pub action: Action,
}

/// The rules for one ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiFilter {
    pub arch: u32,
    /// x86_64: calls numbered with the x32 bit fail with ENOSYS (the x32
    /// ABI's numbers are a table of their own that burrow does not carry).
    pub refuse_x32: bool,
    pub rules: Vec<Rule>,
    pub default: Action,
}

/// A whole filter: the ABIs it knows, and the answer for any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub abis: Vec<AbiFilter>,
    pub other_arch: Action,
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("compiling the seccomp filter: {0} instructions, more than the kernel's {MAX_INSNS}")]
    TooLong(usize),
    #[error("compiling the seccomp filter: argument index {0} is not 0..5")]
    BadArgIndex(u8),
    #[error("compiling the seccomp filter: the rules for syscall {0} are too long for a BPF jump")]
    JumpTooFar(u32),
}

/// Install `prog` on the calling thread (inherited by children and kept
/// across exec). seccomp(2) asks for CAP_SYS_ADMIN in the current user
/// namespace or no_new_privs; burrow calls this while it still holds the
/// former, so setuid programs inside keep working unless the user asked
/// for no_new_privs.
pub fn install(prog: &[Insn]) -> io::Result<()> {
    let raw: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(raw.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let fprog = libc::sock_fprog {
        len,
        filter: raw.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `raw`, which outlives the call; the kernel
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

/// prctl(PR_SET_NO_NEW_PRIVS): execve(2) never grants privileges again
/// (setuid bits and file capabilities are ignored) for this process and
/// its children; it cannot be unset.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
