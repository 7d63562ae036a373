//! A [`Filter`] compiled to classic BPF: a check of the ABI, a binary search
//! for the syscall number, each call's argument compares; and, for tests, a
//! simulator of the program that comes out.

use super::{Action, ArgCmp, Cmp, CompileError, Filter, Insn, Rule, MAX_INSNS, X32_SYSCALL_BIT};

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
