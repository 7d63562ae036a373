//! burrow's own seccomp BPF emitter and installer: a [`Filter`] (per system
//! call ABI, rules by syscall number with argument conditions, and an
//! action for everything else) compiled to classic BPF, and the prctl(2)
//! calls that install it and set no_new_privs. It knows numbers and
//! actions only; which calls a container may make is `sandbox::seccomp`'s.

use std::io;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

// struct seccomp_data offsets (seccomp(2)): nr, arch, ip, args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

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

/// Where a conditional jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Label(usize),
}

enum Op {
    Stmt(u16, u32),
    Jump(u16, u32, To, To),
    /// Unconditional jump (32-bit offset): how the arch dispatch reaches an
    /// ABI's block, which can be longer than a conditional jump's 255.
    Ja(usize),
    Label(usize),
}

#[derive(Default)]
struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Stmt(code, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Jump(code, k, jt, jf));
    }
    fn ret(&mut self, a: Action) {
        self.stmt(RET_K, a.ret());
    }
    fn place(&mut self, l: usize) {
        self.ops.push(Op::Label(l));
    }

    fn finish(self, nr_of: impl Fn(usize) -> u32) -> Result<Vec<Insn>, CompileError> {
        let mut at = vec![0usize; self.labels];
        let mut n = 0;
        for op in &self.ops {
            match op {
                Op::Label(l) => at[*l] = n,
                _ => n += 1,
            }
        }
        if n > MAX_INSNS {
            return Err(CompileError::TooLong(n));
        }
        let mut out = Vec::with_capacity(n);
        for (i, op) in self.ops.iter().enumerate() {
            let here = out.len();
            let off = |t: To| -> Result<u8, CompileError> {
                match t {
                    To::Next => Ok(0),
                    To::Label(l) => u8::try_from(at[l] - here - 1)
                        .map_err(|_| CompileError::JumpTooFar(nr_of(i))),
                }
            };
            match *op {
                Op::Label(_) => {}
                Op::Stmt(code, k) => out.push(Insn {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Op::Jump(code, k, jt, jf) => out.push(Insn {
                    code,
                    jt: off(jt)?,
                    jf: off(jf)?,
                    k,
                }),
                Op::Ja(l) => out.push(Insn {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (at[l] - here - 1) as u32,
                }),
            }
        }
        Ok(out)
    }
}

/// The rules of one syscall number, in the order the filter lists them.
type Group<'a> = (u32, Vec<&'a Rule>);

/// What a run of consecutive syscall numbers answers.
enum Answer<'a> {
    /// The same action for every number of the run, whatever the arguments.
    Plain(Action),
    /// One number whose rules look at arguments (in the filter's order).
    Rules(u32, &'a [&'a Rule]),
}

/// The numbers from `from` up to the next span's `from` (or the end of the
/// number space).
struct Span<'a> {
    from: u32,
    answer: Answer<'a>,
}

/// Cut the whole number space into spans: consecutive numbers with the
/// same plain action share one, a number with argument rules has its own,
/// and the numbers no rule names take the default. Docker's allow list is
/// mostly long runs of neighbours, so this leaves a few dozen spans per ABI
/// where one leaf per number would be hundreds: a shorter program for the
/// kernel to check and compile at every container start.
fn spans<'a>(groups: &'a [Group<'a>], default: Action) -> Vec<Span<'a>> {
    let mut out: Vec<Span> = Vec::new();
    let mut push = |from: u32, answer: Answer<'a>| {
        if let (Some(last), Answer::Plain(a)) = (out.last(), &answer) {
            if matches!(last.answer, Answer::Plain(b) if b == *a) {
                return;
            }
        }
        out.push(Span { from, answer });
    };
    let mut next: u64 = 0;
    for (nr, rules) in groups {
        if u64::from(*nr) > next {
            push(next as u32, Answer::Plain(default));
        }
        let answer = if rules.iter().any(|r| !r.args.is_empty()) {
            Answer::Rules(*nr, rules)
        } else {
            Answer::Plain(rules[0].action)
        };
        push(*nr, answer);
        next = u64::from(*nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(next as u32, Answer::Plain(default));
    }
    out
}

/// The search over `spans` (which cover every number from `spans[0].from`
/// up), with the syscall number in the accumulator: one `>=` test per
/// level, down to a span's answer. Every path returns.
fn emit_tree(
    asm: &mut Asm,
    spans: &[Span],
    default: Action,
    nrs_at: &mut Vec<(usize, u32)>,
) -> Result<(), CompileError> {
    if let [span] = spans {
        match span.answer {
            Answer::Plain(a) => asm.ret(a),
            Answer::Rules(nr, rules) => {
                nrs_at.push((asm.ops.len(), nr));
                for r in rules.iter().filter(|r| !r.args.is_empty()) {
                    let next = asm.label();
                    for c in &r.args {
                        emit_cmp(asm, c, next)?;
                    }
                    asm.ret(r.action);
                    asm.place(next);
                }
                let plain = rules.iter().find(|r| r.args.is_empty()).map(|r| r.action);
                asm.ret(plain.unwrap_or(default));
            }
        }
        return Ok(());
    }
    let (low, high) = spans.split_at(spans.len() / 2);
    // The test jumps over the low half to reach the high one; a conditional
    // jump reaches 255 instructions at most, so when the low half is longer
    // the test falls through to an unconditional `ja` instead. Which one is
    // known once the low half is written, so two slots are kept for it.
    let (to_high, to_low) = (asm.label(), asm.label());
    let at = asm.ops.len();
    asm.ops.push(Op::Label(to_low));
    asm.ops.push(Op::Label(to_low));
    asm.place(to_low);
    emit_tree(asm, low, default, nrs_at)?;
    let low_len = asm.ops[at + 2..]
        .iter()
        .filter(|op| !matches!(op, Op::Label(_)))
        .count();
    if low_len <= usize::from(u8::MAX) {
        asm.ops[at] = Op::Jump(JGE_K, high[0].from, To::Label(to_high), To::Next);
    } else {
        asm.ops[at] = Op::Jump(JGE_K, high[0].from, To::Next, To::Label(to_low));
        asm.ops[at + 1] = Op::Ja(to_high);
    }
    asm.place(to_high);
    emit_tree(asm, high, default, nrs_at)
}

/// Compile `f`. Per syscall, conditional rules are tried in order, then an
/// unconditional one (the rule without conditions is the fallback, as a
/// more specific rule goes first), then the ABI's default. The syscall
/// number is found by a binary search over runs of numbers that answer
/// alike, so a call costs a dozen instructions or so instead of a walk
/// down a chain of hundreds.
pub fn compile(f: &Filter) -> Result<Vec<Insn>, CompileError> {
    let mut asm = Asm::default();
    let blocks: Vec<usize> = f.abis.iter().map(|_| asm.label()).collect();
    asm.stmt(LD_W_ABS, OFF_ARCH);
    for (abi, block) in f.abis.iter().zip(&blocks) {
        let skip = asm.label();
        asm.jump(JEQ_K, abi.arch, To::Next, To::Label(skip));
        asm.ops.push(Op::Ja(*block));
        asm.place(skip);
    }
    asm.ret(f.other_arch);
    let mut nrs_at = Vec::new();
    for (abi, block) in f.abis.iter().zip(blocks) {
        asm.place(block);
        asm.stmt(LD_W_ABS, OFF_NR);
        if abi.refuse_x32 {
            let native = asm.label();
            asm.jump(JGE_K, X32_SYSCALL_BIT, To::Next, To::Label(native));
            asm.ret(Action::Errno(libc::ENOSYS as u16));
            asm.place(native);
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut slot = std::collections::HashMap::new();
        for r in &abi.rules {
            let i = *slot.entry(r.nr).or_insert_with(|| {
                groups.push((r.nr, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(r);
        }
        groups.sort_by_key(|g| g.0);
        emit_tree(
            &mut asm,
            &spans(&groups, abi.default),
            abi.default,
            &mut nrs_at,
        )?;
    }
    asm.finish(|op| {
        nrs_at
            .iter()
            .rev()
            .find(|(at, _)| *at <= op)
            .map_or(0, |(_, nr)| *nr)
    })
}

/// Fall through when `c` holds; jump to `fail` otherwise. Unsigned
/// comparisons on (high, low) word pairs, as libseccomp does.
fn emit_cmp(asm: &mut Asm, c: &ArgCmp, fail: usize) -> Result<(), CompileError> {
    if c.index > 5 {
        return Err(CompileError::BadArgIndex(c.index));
    }
    // Little-endian: the low word first (x86_64 and aarch64 both are).
    let lo_off = OFF_ARGS + 8 * u32::from(c.index);
    let hi_off = lo_off + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let f = To::Label(fail);
    let ok = asm.label();
    let o = To::Label(ok);
    match c.cmp {
        Cmp::Eq(v) => {
            let (h, l) = split(v);
            asm.stmt(LD_W_ABS, hi_off);
            asm.jump(JEQ_K, h, To::Next, f);
            asm.stmt(LD_W_ABS, lo_off);
            asm.jump(JEQ_K, l, To::Next, f);
        }
        Cmp::Ne(v) => {
            let (h, l) = split(v);
            asm.stmt(LD_W_ABS, hi_off);
            asm.jump(JEQ_K, h, To::Next, o);
            asm.stmt(LD_W_ABS, lo_off);
            asm.jump(JEQ_K, l, f, To::Next);
        }
        Cmp::Gt(v) | Cmp::Ge(v) => {
            let (h, l) = split(v);
            asm.stmt(LD_W_ABS, hi_off);
            asm.jump(JGT_K, h, o, To::Next);
            asm.jump(JEQ_K, h, To::Next, f);
            asm.stmt(LD_W_ABS, lo_off);
            let code = if matches!(c.cmp, Cmp::Gt(_)) {
                JGT_K
            } else {
                JGE_K
            };
            asm.jump(code, l, To::Next, f);
        }
        Cmp::Lt(v) | Cmp::Le(v) => {
            let (h, l) = split(v);
            asm.stmt(LD_W_ABS, hi_off);
            asm.jump(JGT_K, h, f, To::Next);
            asm.jump(JEQ_K, h, To::Next, o);
            asm.stmt(LD_W_ABS, lo_off);
            // lo < l  is  !(lo >= l);  lo <= l  is  !(lo > l).
            let code = if matches!(c.cmp, Cmp::Lt(_)) {
                JGE_K
            } else {
                JGT_K
            };
            asm.jump(code, l, f, To::Next);
        }
        Cmp::MaskedEq { mask, value } => {
            // A word the mask clears always holds when the value's word is
            // zero too (a 32-bit mask, such as one for ioctl's request,
            // which the kernel reads as an unsigned int): nothing to test.
            // A mask word of all ones needs no AND.
            for (off, m, v) in [(hi_off, mask >> 32, value >> 32), (lo_off, mask, value)] {
                let (m, v) = (m as u32, v as u32);
                if m == 0 && v == 0 {
                    continue;
                }
                asm.stmt(LD_W_ABS, off);
                if m != u32::MAX {
                    asm.stmt(AND_K, m);
                }
                asm.jump(JEQ_K, v, To::Next, f);
            }
        }
    }
    asm.place(ok);
    Ok(())
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

/// A simulator of the emitted program, for tests: what it returns for
/// `data` (arch, nr, args).
#[cfg(test)]
pub fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if o >= OFF_ARGS => {
                let i = ((o - OFF_ARGS) / 8) as usize;
                if (o - OFF_ARGS) % 8 == 0 {
                    args[i] as u32
                } else {
                    (args[i] >> 32) as u32
                }
            }
            _ => 0,
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = word(i.k),
            AND_K => a &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let t = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
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
        // it, as they did before fork_child checked for threads.
        let child = unsafe { crate::linux::process::fork_unchecked(body) }.unwrap();
        assert_eq!(crate::linux::process::wait_exit_code(child).unwrap(), 0);
    }
}
