//! The compiled program, run in the simulator against the rules it came
//! from, and one filter installed in a child.

use super::*;

fn filter(rules: Vec<Rule>) -> Filter {
    Filter {
        abis: vec![AbiFilter {
            arch: AUDIT_ARCH_X86_64,
            refuse_x32: true,
            rules,
            default: Action::Errno(1),
        }],
        other_arch: Action::KillProcess,
    }
}

fn rule(nr: u32, args: Vec<ArgCmp>, action: Action) -> Rule {
    Rule { nr, args, action }
}

#[test]
fn dispatch_by_arch_x32_and_default() {
    let p = compile(&filter(vec![rule(0, vec![], Action::Allow)])).unwrap();
    let allow = Action::Allow.ret();
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0, [0; 6]), allow);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 1, [0; 6]),
        Action::Errno(1).ret()
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]),
        Action::Errno(38).ret()
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 0, [0; 6]),
        Action::KillProcess.ret()
    );
}

#[test]
fn sixty_four_bit_comparisons_use_both_words() {
    let big = 0x1_0000_0005u64;
    let cases: Vec<(Cmp, Vec<(u64, bool)>)> = vec![
        (
            Cmp::Eq(big),
            vec![(big, true), (5, false), (big + 1, false)],
        ),
        (
            Cmp::Ne(big),
            vec![(big, false), (5, true), (0x2_0000_0005, true)],
        ),
        (
            Cmp::Gt(big),
            vec![
                (big, false),
                (big + 1, true),
                (0x2_0000_0000, true),
                (6, false),
            ],
        ),
        (
            Cmp::Ge(big),
            vec![(big, true), (big - 1, false), (u64::MAX, true)],
        ),
        (
            Cmp::Lt(big),
            vec![
                (big, false),
                (big - 1, true),
                (6, true),
                (0x2_0000_0000, false),
            ],
        ),
        (Cmp::Le(big), vec![(big, true), (big + 1, false), (0, true)]),
        (
            Cmp::MaskedEq {
                mask: 0x7e02_0000,
                value: 0,
            },
            vec![(0x11, true), (0x1000_0000, false), (0x1_0000_0000, true)],
        ),
        // The low word only (ioctl's request): high bits never matter.
        (
            Cmp::MaskedEq {
                mask: 0xffff_ffff,
                value: 0x5412,
            },
            vec![
                (0x5412, true),
                (0xdead_beef_0000_5412, true),
                (0x5413, false),
                (0x1_0000_5413, false),
            ],
        ),
        // Every bit: an equality test.
        (
            Cmp::MaskedEq {
                mask: u64::MAX,
                value: big,
            },
            vec![(big, true), (5, false), (0x2_0000_0005, false)],
        ),
        // A value with bits the mask clears can never match.
        (
            Cmp::MaskedEq {
                mask: 0xff,
                value: 0x1_0000_0001,
            },
            vec![(1, false), (0x1_0000_0001, false), (u64::MAX, false)],
        ),
    ];
    for (cmp, checks) in cases {
        let p = compile(&filter(vec![rule(
            7,
            vec![ArgCmp { index: 2, cmp }],
            Action::Allow,
        )]))
        .unwrap();
        for (v, allowed) in checks {
            let got = run(&p, AUDIT_ARCH_X86_64, 7, [0, 0, v, 0, 0, 0]) == Action::Allow.ret();
            assert_eq!(got, allowed, "{cmp:?} on {v:#x}");
        }
    }
}

#[test]
fn conditional_rules_first_then_the_plain_one() {
    let p = compile(&filter(vec![
        rule(
            41,
            vec![
                ArgCmp {
                    index: 0,
                    cmp: Cmp::Eq(16),
                },
                ArgCmp {
                    index: 2,
                    cmp: Cmp::Eq(9),
                },
            ],
            Action::Errno(22),
        ),
        rule(41, vec![], Action::Allow),
    ]))
    .unwrap();
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 41, [16, 0, 9, 0, 0, 0]),
        Action::Errno(22).ret()
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 41, [16, 0, 0, 0, 0, 0]),
        Action::Allow.ret()
    );
    assert!(matches!(
        compile(&filter(vec![rule(
            1,
            vec![ArgCmp {
                index: 6,
                cmp: Cmp::Eq(0)
            }],
            Action::Allow
        )])),
        Err(CompileError::BadArgIndex(6))
    ));
}

/// What `f` means, read directly: the first conditional rule of the
/// number whose conditions all hold, else its plain rule, else the
/// ABI's default.
fn meaning(f: &Filter, nr: u32, args: [u64; 6]) -> u32 {
    let abi = &f.abis[0];
    let holds = |c: &ArgCmp| {
        let v = args[usize::from(c.index)];
        match c.cmp {
            Cmp::Eq(x) => v == x,
            Cmp::Ne(x) => v != x,
            Cmp::Lt(x) => v < x,
            Cmp::Le(x) => v <= x,
            Cmp::Gt(x) => v > x,
            Cmp::Ge(x) => v >= x,
            Cmp::MaskedEq { mask, value } => v & mask == value,
        }
    };
    let mine = abi.rules.iter().filter(|r| r.nr == nr);
    let cond = mine
        .clone()
        .find(|r| !r.args.is_empty() && r.args.iter().all(holds));
    let plain = mine.clone().find(|r| r.args.is_empty());
    cond.or(plain).map_or(abi.default, |r| r.action).ret()
}

#[test]
fn the_search_tree_answers_as_the_rules_read() {
    // Hundreds of numbers in no order, some with conditions (listed
    // before and after their plain rule), gaps between them.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut rules = Vec::new();
    for _ in 0..600 {
        let nr = (next() % 700) as u32;
        let action = match next() % 3 {
            0 => Action::Allow,
            1 => Action::Errno((next() % 100) as u16),
            _ => Action::Log,
        };
        let args = if next() % 4 == 0 {
            vec![ArgCmp {
                index: (next() % 6) as u8,
                cmp: Cmp::Eq(next() % 3),
            }]
        } else {
            vec![]
        };
        rules.push(rule(nr, args, action));
    }
    let f = filter(rules);
    let p = compile(&f).unwrap();
    for nr in 0..720 {
        for v in 0..3u64 {
            let args = [v, v, v, v, v, v];
            assert_eq!(
                run(&p, AUDIT_ARCH_X86_64, nr, args),
                meaning(&f, nr, args),
                "syscall {nr}, args {v}"
            );
        }
    }
}

#[test]
fn runs_of_neighbours_share_one_leaf_and_gaps_keep_the_default() {
    // 0..=99 allowed but 50, 200..=299 logged, the last number allowed.
    let mut rules: Vec<Rule> = (0..100)
        .filter(|n| *n != 50)
        .chain(200..300)
        .map(|n| rule(n, vec![], if n < 100 { Action::Allow } else { Action::Log }))
        .collect();
    rules.push(rule(u32::MAX, vec![], Action::Allow));
    let mut f = filter(rules);
    f.abis[0].refuse_x32 = false;
    let p = compile(&f).unwrap();
    // Seven runs: a handful of instructions, not one leaf per number.
    assert!(p.len() < 20, "{} instructions", p.len());
    for nr in (0..320).chain([u32::MAX - 1, u32::MAX]) {
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, nr, [0; 6]),
            meaning(&f, nr, [0; 6]),
            "syscall {nr}"
        );
    }
}

#[test]
fn an_installed_filter_refuses_in_a_child() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    // unshare(CLONE_NEWUSER) refused, anything else allowed.
    let mut f = Filter {
        abis: vec![AbiFilter {
            arch: AUDIT_ARCH_X86_64,
            refuse_x32: true,
            rules: vec![rule(
                libc::SYS_unshare as u32,
                vec![ArgCmp {
                    index: 0,
                    cmp: Cmp::MaskedEq {
                        mask: libc::CLONE_NEWUSER as u64,
                        value: 0,
                    },
                }],
                Action::Allow,
            )],
            default: Action::Allow,
        }],
        other_arch: Action::Allow,
    };
    f.abis[0]
        .rules
        .push(rule(libc::SYS_unshare as u32, vec![], Action::Errno(1)));
    let prog = compile(&f).unwrap();
    // Install in a forked child (the test process must stay
    // unfiltered); without CAP_SYS_ADMIN this needs no_new_privs.
    let body = || {
        if set_no_new_privs().is_err() || install(&prog).is_err() {
            return 2;
        }
        match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
            Err(nix::Error::EPERM) => {}
            _ => return 3,
        }
        match crate::linux::process::fork_child(|| 0) {
            Ok(p) if crate::linux::process::wait_exit_code(p) == Ok(0) => 0,
            _ => 4,
        }
    };
    // SAFETY: the test harness has other threads; the child installs a
    // filter and forks, and glibc's fork handlers keep malloc usable in
    // the child of a threaded process.
    let child = unsafe { crate::linux::process::fork_unchecked(body) }.unwrap();
    assert_eq!(crate::linux::process::wait_exit_code(child).unwrap(), 0);
}
