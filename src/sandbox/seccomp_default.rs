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

/// Calls every container may make (Docker's first, unconditional rule).
/// io_uring_* are left out, as Docker does since 25.0: io_uring bypasses
/// seccomp for the operations it submits.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

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
mod tests {
    use super::*;
    use crate::linux::seccomp::{AbiFilter, Action, ArgCmp};
    use crate::sandbox::seccomp::{Abi, Host};
    use std::collections::BTreeSet;

    /// What a filter does with syscall `nr`: its conditional rules in
    /// order, then the answer when none matches.
    fn decision(f: &AbiFilter, nr: u32) -> (Vec<(Vec<ArgCmp>, Action)>, Action) {
        let rules: Vec<_> = f.rules.iter().filter(|r| r.nr == nr).collect();
        let conditional = rules
            .iter()
            .filter(|r| !r.args.is_empty())
            .map(|r| (r.args.clone(), r.action))
            .collect();
        let plain = rules
            .iter()
            .find(|r| r.args.is_empty())
            .map_or(f.default, |r| r.action);
        (conditional, plain)
    }

    /// Capability sets worth comparing: none, Docker's default, the
    /// default plus each capability a profile mentions, and all.
    fn cap_sets(profiles: &[&Profile]) -> Vec<u64> {
        use crate::linux::caps::{bit, number, ALL};
        let default = crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT);
        let mut sets = vec![0, default, ALL];
        for p in profiles {
            for r in &p.syscalls {
                for c in r.includes.caps.iter().chain(&r.excludes.caps) {
                    if let Some(n) = number(c) {
                        sets.push(default | bit(n));
                        sets.push(bit(n));
                    }
                }
            }
        }
        sets.sort();
        sets.dedup();
        sets
    }

    /// Every (name, arch, caps) where `a` and `b` decide differently.
    fn differences(a: &Profile, b: &Profile, names: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for native in [Abi::X86_64, Abi::Aarch64] {
            for bounding in cap_sets(&[a, b]) {
                let host = Host {
                    native,
                    bounding,
                    kernel: (6, 1),
                };
                let (fa, fb) = (a.resolve(&host).unwrap(), b.resolve(&host).unwrap());
                assert_eq!(fa.abis.len(), fb.abis.len(), "{native:?}");
                for (abi, (x, y)) in native_family(native)
                    .iter()
                    .zip(fa.abis.iter().zip(&fb.abis))
                {
                    assert_eq!(x.arch, y.arch);
                    for name in names {
                        let Some(nr) = abi.number(name) else { continue };
                        if decision(x, nr) != decision(y, nr) {
                            out.insert(name.clone());
                        }
                    }
                }
            }
        }
        out
    }

    fn native_family(native: Abi) -> Vec<Abi> {
        match native {
            Abi::X86_64 => vec![Abi::X86_64, Abi::X86],
            _ => vec![Abi::Aarch64, Abi::Arm],
        }
    }

    /// Where podman's profile (the file Debian installs) and Docker's
    /// policy part ways, and why.
    const PODMAN_DIFFERS: &[(&[&str], &str)] = &[
        (
            &[
                "clone", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount",
                "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "setns", "syslog",
                "umount", "umount2", "unshare",
            ],
            "podman allows these to everyone; Docker only with CAP_SYS_ADMIN (clone: only without namespace flags)",
        ),
        (
            &["get_mempolicy", "mbind", "set_mempolicy"],
            "podman allows these to everyone; Docker only with CAP_SYS_NICE",
        ),
        (&["pidfd_getfd"], "podman allows it; Docker only with CAP_SYS_PTRACE"),
        (&["reboot"], "podman allows it; Docker only with CAP_SYS_BOOT"),
        (
            &["keyctl", "pivot_root"],
            "podman allows them; Docker refuses them (the keyring is not namespaced)",
        ),
        (
            &["readdir", "sigaction", "signal", "sigpending", "sigsuspend"],
            "old 32-bit calls podman lists and Docker does not",
        ),
        (
            &["io_pgetevents", "vmsplice"],
            "Docker allows them; podman refuses them",
        ),
        (
            &["bpf", "perf_event_open"],
            "Docker also allows them with CAP_BPF / CAP_PERFMON",
        ),
        (&["query_module"], "podman allows it with CAP_SYS_MODULE; Docker never"),
        (
            &["socket"],
            "podman refuses audit netlink sockets without CAP_AUDIT_WRITE; Docker allows every socket",
        ),
    ];

    #[test]
    fn same_decisions_as_the_installed_profile_file() {
        let path = "/usr/share/containers/seccomp.json";
        let Ok(bytes) = std::fs::read(path) else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED same_decisions_as_the_installed_profile_file: {path} is missing (Debian package golang-github-containers-common)"
            );
            return;
        };
        let file = Profile::parse(&bytes).unwrap();
        let names: BTreeSet<String> = file
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter().cloned())
            .collect();
        // The file Debian installs is podman's variant of Docker's
        // profile: its calls that no rule allows fail with ENOSYS rather
        // than EPERM, and its policy differs on the calls in
        // PODMAN_DIFFERS. Every other decision must be the same.
        assert_eq!(profile().default_errno_ret, Some(1));
        let mut same_default = file.clone();
        same_default.default_errno_ret = Some(1);
        let diff = differences(&same_default, &profile(), &names);
        let known: BTreeSet<String> = PODMAN_DIFFERS
            .iter()
            .flat_map(|(names, _)| names.iter().map(|n| n.to_string()))
            .collect();
        let unexpected: Vec<_> = diff.difference(&known).collect();
        assert!(
            unexpected.is_empty(),
            "decided differently from {path}: {unexpected:?}"
        );
        // Each known difference still is one (else the table is stale),
        // unless this copy of the file has caught up with Docker.
        let gone: Vec<_> = known
            .difference(&diff)
            .filter(|n| names.contains(*n))
            .collect();
        assert!(gone.is_empty(), "no longer differ from {path}: {gone:?}");
    }

    #[test]
    fn the_compiled_default_answers_as_docker() {
        use crate::linux::seccomp::{run, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
        let default_caps = crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT);
        let host = |bounding| Host {
            native: Abi::X86_64,
            bounding,
            kernel: (6, 1),
        };
        let prog = profile().compile(&host(default_caps)).unwrap();
        // Runs of neighbouring numbers share one answer, which keeps the
        // program short (two ABIs plus x32 refusal; one leaf per number would
        // be about 2000 instructions): the kernel checks and compiles it at
        // every start.
        assert!(prog.len() < 600, "{} instructions", prog.len());
        let ret = |a: Action| match a {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            _ => unreachable!(),
        };
        let (allow, eperm, enosys) = (
            ret(Action::Allow),
            ret(Action::Errno(1)),
            ret(Action::Errno(38)),
        );
        let x64 = |name: &str, args: [u64; 6]| {
            run(
                &prog,
                AUDIT_ARCH_X86_64,
                Abi::X86_64.number(name).unwrap(),
                args,
            )
        };
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        const SIGCHLD: u64 = 17;
        assert_eq!(x64("read", [0; 6]), allow);
        assert_eq!(x64("clone", [SIGCHLD, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            x64("clone", [SIGCHLD | CLONE_NEWUSER, 0, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(x64("clone3", [0; 6]), enosys);
        assert_eq!(x64("unshare", [CLONE_NEWUSER, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(x64("keyctl", [0; 6]), eperm);
        assert_eq!(x64("io_uring_setup", [0; 6]), eperm);
        assert_eq!(x64("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), allow);
        assert_eq!(x64("personality", [0x0040000, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(x64("arch_prctl", [0; 6]), allow);
        assert_eq!(x64("process_vm_readv", [0; 6]), allow);
        assert_eq!(x64("kcmp", [0; 6]), eperm);
        // Unlike Docker's: no typing into a terminal (TIOCSTI) or pasting a
        // console's selection (TIOCLINUX), whatever the request's high
        // bits (the kernel ignores them); other ioctls stay allowed.
        const TIOCSTI: u64 = 0x5412;
        const TIOCLINUX: u64 = 0x541c;
        const TCGETS: u64 = 0x5401;
        for request in [TIOCSTI, TIOCLINUX] {
            assert_eq!(x64("ioctl", [0, request, 0, 0, 0, 0]), eperm);
            assert_eq!(x64("ioctl", [0, 1 << 32 | request, 0, 0, 0, 0]), eperm);
        }
        assert_eq!(x64("ioctl", [0, TCGETS, 0, 0, 0, 0]), allow);
        assert_eq!(x64("ioctl", [0, 1 << 32 | TCGETS, 0, 0, 0, 0]), allow);
        // i386 programs run under their own table; x32 calls get ENOSYS.
        let i386 = |name: &str| {
            run(
                &prog,
                AUDIT_ARCH_I386,
                Abi::X86.number(name).unwrap(),
                [0; 6],
            )
        };
        assert_eq!(i386("socketcall"), allow);
        let i386_ioctl = |request| {
            let nr = Abi::X86.number("ioctl").unwrap();
            run(&prog, AUDIT_ARCH_I386, nr, [0, request, 0, 0, 0, 0])
        };
        assert_eq!(i386_ioctl(TIOCSTI), eperm);
        assert_eq!(i386_ioctl(TCGETS), allow);
        assert_eq!(i386("unshare"), eperm);
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1, [0; 6]),
            enosys
        );
        // CAP_SYS_ADMIN in the bounding set brings namespaces back.
        let admin = profile()
            .compile(&host(
                default_caps | crate::linux::caps::bit(crate::linux::caps::CAP_SYS_ADMIN),
            ))
            .unwrap();
        let nr = Abi::X86_64.number("unshare").unwrap();
        assert_eq!(
            run(
                &admin,
                AUDIT_ARCH_X86_64,
                nr,
                [CLONE_NEWUSER, 0, 0, 0, 0, 0]
            ),
            allow
        );
        // No table for the host's architecture: refused, never open.
        assert!(Host::this(0).is_ok() == Abi::native().is_some());
    }
}
