//! Profiles resolved and compiled: syscall numbers, the terminal wall, fake
//! ids over any policy, and bad profiles refused.

use super::own_rules::TERMINAL_INJECTION;
use super::*;

#[test]
fn x86_64_numbers_match_libc() {
    let check = [
        ("read", libc::SYS_read),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("unshare", libc::SYS_unshare),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("personality", libc::SYS_personality),
        ("socket", libc::SYS_socket),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("uname", libc::SYS_uname),
        ("mount", libc::SYS_mount),
    ];
    if cfg!(target_arch = "x86_64") {
        for (name, nr) in check {
            assert_eq!(Abi::X86_64.number(name), Some(nr as u32), "{name}");
        }
    }
    assert_eq!(Abi::X86.number("unshare"), Some(310));
    assert_eq!(Abi::X86.number("arch_prctl"), Some(384));
    assert_eq!(Abi::X86_64.number("no_such_call"), None);
}

#[test]
fn every_profile_refuses_terminal_injection() {
    use crate::linux::seccomp::{run, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    let parse = |s: &str| Profile::parse(s.as_bytes()).unwrap();
    let allow_ioctl = r#"{"names":["ioctl"],"action":"SCMP_ACT_ALLOW"}"#;
    let profiles = [
        ("the default", crate::sandbox::seccomp_default::profile()),
        (
            "one allowing ioctl",
            parse(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{allow_ioctl}]}}"#
            )),
        ),
        (
            "one allowing everything",
            parse(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#),
        ),
        (
            "one allowing TIOCSTI by name",
            parse(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":21522,"op":"SCMP_CMP_EQ"}}]}},{allow_ioctl}]}}"#
            )),
        ),
    ];
    let eperm = Action::Errno(libc::EPERM as u16).ret();
    let allow = Action::Allow.ret();
    for native in [Abi::X86_64, Abi::Aarch64] {
        let host = Host {
            native,
            bounding: crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT),
            kernel: (6, 1),
        };
        let abis: &[(u32, Abi)] = match native {
            Abi::X86_64 => &[
                (AUDIT_ARCH_X86_64, Abi::X86_64),
                (AUDIT_ARCH_I386, Abi::X86),
            ],
            _ => &[
                (crate::linux::seccomp::AUDIT_ARCH_AARCH64, Abi::Aarch64),
                (AUDIT_ARCH_ARM, Abi::Arm),
            ],
        };
        for (what, p) in &profiles {
            let prog = p.compile(&host).unwrap();
            // The profiles naming no architectures cover the native one.
            let covered: Vec<u32> = p
                .resolve(&host)
                .unwrap()
                .abis
                .iter()
                .map(|a| a.arch)
                .collect();
            for (arch, abi) in abis.iter().filter(|(arch, _)| covered.contains(arch)) {
                let ioctl = |request: u64| {
                    run(
                        &prog,
                        *arch,
                        abi.number("ioctl").unwrap(),
                        [1, request, 0, 0, 0, 0],
                    )
                };
                for (name, request) in TERMINAL_INJECTION {
                    assert_eq!(ioctl(request), eperm, "{name} under {what} ({abi:?})");
                    // The kernel truncates the request to 32 bits.
                    assert_eq!(
                        ioctl(0xffff_ffff_0000_0000 | request),
                        eperm,
                        "{name} with high bits under {what} ({abi:?})"
                    );
                }
                // Every other request is the profile's: TCGETS, FIONREAD.
                for other in [0x5401, 0x541b, 0x1_0000_5401] {
                    assert_eq!(ioctl(other), allow, "{other:#x} under {what} ({abi:?})");
                }
            }
        }
    }
    // A profile that refuses ioctl altogether still does; a profile
    // that kills on it refuses these two with EPERM (first) instead.
    let host = Host {
        native: Abi::X86_64,
        bounding: 0,
        kernel: (6, 1),
    };
    let kill = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#)
        .compile(&host)
        .unwrap();
    let nr = Abi::X86_64.number("ioctl").unwrap();
    assert_eq!(
        run(&kill, AUDIT_ARCH_X86_64, nr, [1, 0x5412, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        run(&kill, AUDIT_ARCH_X86_64, nr, [1, 0x5401, 0, 0, 0, 0]),
        Action::KillProcess.ret()
    );
}

#[test]
fn fake_ids_succeed_without_effect_over_any_policy() {
    use crate::linux::seccomp::{run, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    let parse = |s: &str| Profile::parse(s.as_bytes()).unwrap();
    let host = Host {
        native: Abi::X86_64,
        bounding: crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT),
        kernel: (6, 1),
    };
    let faked = Action::Errno(0).ret();
    let allow = Action::Allow.ret();
    let policies = [
        ("the default", crate::sandbox::seccomp_default::profile()),
        ("none", Profile::allow_all()),
        (
            "one that kills on setuid and refuses chown by argument",
            parse(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[{"names":["setuid","uname"],"action":"SCMP_ACT_KILL_PROCESS"},{"names":["chown"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":42,"op":"SCMP_CMP_EQ"}]}]}"#,
            ),
        ),
    ];
    for (what, policy) in &policies {
        let prog = policy.with_fake_ids().compile(&host).unwrap();
        let call = |arch: u32, abi: Abi, name: &str, args: [u64; 6]| {
            run(&prog, arch, abi.number(name).unwrap(), args)
        };
        let x64 = |name: &str, args| call(AUDIT_ARCH_X86_64, Abi::X86_64, name, args);
        for name in FAKED_ID_CALLS {
            if let Some(nr) = Abi::X86_64.number(name) {
                let got = run(&prog, AUDIT_ARCH_X86_64, nr, [42, 42, 42, 0, 0, 0]);
                assert_eq!(got, faked, "{name} under {what}");
            }
            if let Some(nr) = Abi::X86.number(name) {
                let got = run(&prog, AUDIT_ARCH_I386, nr, [42, 42, 42, 0, 0, 0]);
                assert_eq!(got, faked, "{name} (i386) under {what}");
            }
        }
        // Device nodes are faked; a FIFO and a regular file are not.
        let chr = u64::from(libc::S_IFCHR | 0o600);
        let blk = u64::from(libc::S_IFBLK | 0o600);
        let fifo = u64::from(libc::S_IFIFO | 0o600);
        assert_eq!(x64("mknod", [0, chr, 0, 0, 0, 0]), faked, "{what}");
        assert_eq!(x64("mknodat", [0, 0, blk, 0, 0, 0]), faked, "{what}");
        assert_eq!(x64("mknodat", [0, 0, fifo, 0, 0, 0]), allow, "{what}");
        assert_eq!(
            x64("mknod", [0, u64::from(libc::S_IFREG), 0, 0, 0, 0]),
            allow
        );
        // The rest is the policy's, the terminal wall included.
        assert_eq!(
            x64("ioctl", [1, 0x5412, 0, 0, 0, 0]),
            Action::Errno(1).ret()
        );
        assert_eq!(x64("getuid", [0; 6]), allow, "{what}");
        assert_eq!(x64("capset", [0; 6]), allow, "{what}");
    }
    let killer = policies[2].1.with_fake_ids().compile(&host).unwrap();
    let uname = Abi::X86_64.number("uname").unwrap();
    assert_eq!(
        run(&killer, AUDIT_ARCH_X86_64, uname, [0; 6]),
        Action::KillProcess.ret()
    );
    // The default still refuses what it refuses.
    let default = crate::sandbox::seccomp_default::profile()
        .with_fake_ids()
        .compile(&host)
        .unwrap();
    let mount = Abi::X86_64.number("mount").unwrap();
    assert_eq!(
        run(&default, AUDIT_ARCH_X86_64, mount, [0; 6]),
        Action::Errno(libc::EPERM as u16).ret()
    );
}

#[test]
fn kernel_versions() {
    assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(kernel_version("4.8"), Some((4, 8)));
    assert_eq!(kernel_version("x"), None);
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    let bad = |s: &str| Profile::parse(s.as_bytes()).unwrap_err().to_string();
    assert!(bad("{").contains("parsing"));
    assert!(bad(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("SCMP_ACT_NOPE"));
    assert!(bad(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_WHAT"}]}]}"#
    )
    .contains("SCMP_CMP_WHAT"));
    // A plain OCI LinuxSeccomp object reads too.
    let oci = Profile::parse(
        br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"flags":[],"syscalls":[{"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let host = Host {
        native: Abi::X86_64,
        bounding: 0,
        kernel: (6, 1),
    };
    let f = oci.resolve(&host).unwrap();
    assert_eq!(f.abis.len(), 2);
    // After the two ioctl refusals every filter starts with.
    assert_eq!(
        f.abis[0].rules[TERMINAL_INJECTION.len()..],
        [Rule {
            nr: 63,
            args: vec![],
            action: Action::Errno(1)
        }]
    );
}
