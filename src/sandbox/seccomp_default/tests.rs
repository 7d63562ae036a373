//! The default profile against Docker's installed profile file, and its
//! compiled filter's answers.

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
