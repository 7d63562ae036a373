//! The rules burrow adds to a profile: ids and device nodes faked for a
//! single-id mapping, the allow-all profile they are added to when there
//! is no other, and the refusal of terminal injection every filter starts
//! with.

use super::{Abi, Arg, Profile, SyscallRule};

/// The calls that change ids and owners, which a container with a
/// single-id mapping cannot make for any id but its one (user_namespaces(7):
/// setgroups is denied, chown(2) and setuid(2) to an unmapped id fail with
/// EINVAL): with fake ids they succeed without doing anything, so programs
/// that only believe they are root go on (apt's download sandbox drops to
/// `_apt` with setgroups/setresgid/setresuid, dpkg chowns every file it
/// unpacks). Charliecloud's `ch-image --force=seccomp` fakes the same
/// family. capset(2) stays real: a program that drops capabilities to
/// sandbox itself must really lose them.
pub const FAKED_ID_CALLS: &[&str] = &[
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "fchownat",
    "lchown",
    "lchown32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "setgroups",
    "setgroups32",
];

/// mknod(2) and mknodat(2) of a character or block device are faked too
/// (a user namespace may not create device nodes: mknod(2), EPERM), as
/// Charliecloud does, so a package that ships or makes a device node
/// installs; the node is not there afterwards. Other kinds (FIFOs,
/// sockets, regular files) stay real. The mode is the argument after the
/// path: (call, index of mode).
const FAKED_MKNOD: [(&str, u8); 2] = [("mknod", 1), ("mknodat", 2)];

impl Profile {
    /// This profile with [`FAKED_ID_CALLS`] and device [`FAKED_MKNOD`]s
    /// succeeding without effect, whatever the profile says of them: a
    /// faked call does nothing, so it gives no more than the profile's
    /// refusal would. Every other call is the profile's.
    pub fn with_fake_ids(&self) -> Profile {
        let faked = |n: &String| FAKED_ID_CALLS.contains(&n.as_str());
        let mut syscalls: Vec<SyscallRule> = vec![SyscallRule {
            names: FAKED_ID_CALLS.iter().map(|n| n.to_string()).collect(),
            action: "SCMP_ACT_ERRNO".into(),
            // SECCOMP_RET_ERRNO with 0: the call returns 0 (seccomp(2)).
            errno_ret: Some(0),
            ..Default::default()
        }];
        for (name, index) in FAKED_MKNOD {
            for kind in [libc::S_IFCHR, libc::S_IFBLK] {
                syscalls.push(SyscallRule {
                    names: vec![name.into()],
                    action: "SCMP_ACT_ERRNO".into(),
                    errno_ret: Some(0),
                    args: vec![Arg {
                        index,
                        value: u64::from(libc::S_IFMT),
                        value_two: u64::from(kind),
                        op: "SCMP_CMP_MASKED_EQ".into(),
                    }],
                    ..Default::default()
                });
            }
        }
        for r in &self.syscalls {
            let mut r = r.clone();
            r.names.retain(|n| !faked(n));
            if r.name.as_ref().is_some_and(faked) {
                r.name = None;
            }
            if !r.names.is_empty() || r.name.is_some() {
                syscalls.push(r);
            }
        }
        Profile {
            syscalls,
            ..self.clone()
        }
    }

    /// A profile that allows every call: what fake ids are added to when
    /// the container has no filter of its own (`seccomp=unconfined`,
    /// `--privileged`). It covers every ABI burrow has a table for, so
    /// 32-bit programs run too (x32 calls, which burrow has no table for,
    /// fail with ENOSYS as under any filter).
    pub fn allow_all() -> Profile {
        Profile {
            default_action: "SCMP_ACT_ALLOW".into(),
            architectures: [Abi::X86_64, Abi::X86, Abi::Aarch64, Abi::Arm]
                .iter()
                .map(|a| a.scmp().to_string())
                .collect(),
            ..Default::default()
        }
    }
}

/// ioctl(2) requests that act on a terminal the caller may not own: TIOCSTI
/// pushes bytes into a terminal's input queue, to be read as if typed
/// (bubblewrap's CVE-2017-5226: a sandbox that shares the user's terminal
/// types commands into the user's shell), and TIOCLINUX's subcodes copy and
/// paste a virtual console's selection (Flatpak's CVE-2023-28100). The
/// values are the same on every ABI burrow has a table for
/// (asm-generic/ioctls.h).
pub(super) const TERMINAL_INJECTION: [(&str, u64); 2] =
    [("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541c)];

/// Rules every filter burrow builds puts ahead of the profile's own: the
/// [`TERMINAL_INJECTION`] requests fail with EPERM, whatever the profile
/// says about ioctl. Docker's profile allows them because a Docker
/// container never shares a session with the user's shell; a burrow
/// container is the shell's own child, so a profile written for Docker
/// does not know that risk. The container also gets a session of its own
/// (no controlling terminal to inject into); this is the second wall.
///
/// The kernel reads ioctl's request as an `unsigned int` (ioctl(2)), so
/// only its low 32 bits are compared: a request with high bits set is the
/// same request to the tty driver, which an equality test on all 64 bits
/// let through in Flatpak (CVE-2019-10063).
pub(super) fn terminal_wall() -> Vec<SyscallRule> {
    TERMINAL_INJECTION
        .iter()
        .map(|(_, request)| SyscallRule {
            names: vec!["ioctl".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(libc::EPERM as u32),
            args: vec![Arg {
                index: 1,
                value: u64::from(u32::MAX),
                value_two: *request,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
            ..Default::default()
        })
        .collect()
}
