//! burrow's built-in seccomp profile: Docker's default policy (which calls,
//! under which conditions), written down as a table in burrow's own form
//! and turned into a [`Profile`] that `sandbox::seccomp` resolves like any
//! profile file. Everything not named fails with EPERM; clone3 fails with
//! ENOSYS unless CAP_SYS_ADMIN is in the bounding set, so libc falls back
//! to clone(2), whose flags a filter can read (clone3 passes them in
//! memory, which seccomp cannot see: seccomp(2)). `sandbox::seccomp` adds
//! one refusal Docker's policy lacks, to this profile as to any other:
//! ioctl's TIOCSTI and TIOCLINUX requests fail with EPERM.

use super::seccomp::{Arg, Conditions, Profile, SyscallRule};

mod allowed;

use allowed::ALLOWED;

/// The personality(2) values Docker allows: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (a query).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Calls allowed only when the bounding set holds a capability (Docker's
/// `includes.caps` rules; a container granted the capability may make
/// the calls it guards).
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Calls allowed only on some native architectures (Go's GOARCH names).
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// Every namespace flag of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET. Without CAP_SYS_ADMIN clone is allowed
/// only with none of them set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn allow(names: &[&str]) -> SyscallRule {
    SyscallRule {
        names: strings(names),
        action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    }
}

/// Docker's default profile as a [`Profile`].
pub fn profile() -> Profile {
    let mut rules = vec![allow(ALLOWED)];
    // ptrace and process_vm_{read,write}v became safe to allow with 4.8,
    // which closed the ptrace bypass of seccomp (seccomp(2), "Caveats").
    rules.push(SyscallRule {
        includes: Conditions {
            min_kernel: Some("4.8".into()),
            ..Default::default()
        },
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    });
    for value in PERSONALITIES {
        rules.push(SyscallRule {
            args: vec![Arg {
                index: 0,
                value,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            }],
            ..allow(&["personality"])
        });
    }
    for (arches, names) in BY_ARCH {
        rules.push(SyscallRule {
            includes: Conditions {
                arches: strings(arches),
                ..Default::default()
            },
            ..allow(names)
        });
    }
    for (cap, names) in BY_CAPABILITY {
        rules.push(SyscallRule {
            includes: Conditions {
                caps: vec![cap.to_string()],
                ..Default::default()
            },
            ..allow(names)
        });
    }
    // clone without namespace flags (s390 passes the flags second).
    for (index, arches_in, arches_out) in [
        (0, vec![], vec!["s390", "s390x"]),
        (1, vec!["s390", "s390x"], vec![]),
    ] {
        rules.push(SyscallRule {
            args: vec![Arg {
                index,
                value: CLONE_NAMESPACE_FLAGS,
                value_two: 0,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
            includes: Conditions {
                arches: strings(&arches_in),
                ..Default::default()
            },
            excludes: Conditions {
                caps: vec!["CAP_SYS_ADMIN".into()],
                arches: strings(&arches_out),
                ..Default::default()
            },
            ..allow(&["clone"])
        });
    }
    rules.push(SyscallRule {
        names: vec!["clone3".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: Conditions {
            caps: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        },
        ..Default::default()
    });
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        arch_map: vec![
            super::seccomp::ArchMap {
                architecture: "SCMP_ARCH_X86_64".into(),
                sub_architectures: strings(&["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            },
            super::seccomp::ArchMap {
                architecture: "SCMP_ARCH_AARCH64".into(),
                sub_architectures: strings(&["SCMP_ARCH_ARM"]),
            },
        ],
        architectures: Vec::new(),
        syscalls: rules,
    }
}

#[cfg(test)]
mod tests;
