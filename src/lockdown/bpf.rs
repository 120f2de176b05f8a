//! A seccomp program from a table of syscall rules: classic BPF laid out as
//! a binary search over syscall numbers.
//!
//! The kernel converts and compiles a filter on every attach, at a cost
//! that grows with the program's length, and runs it on every syscall of
//! the thread, at a cost that grows with the path taken. A linear list of
//! comparisons is long on both counts; this layout merges neighbouring
//! numbers with the same answer into one range, finds a range in
//! `log2(ranges)` comparisons, and checks arguments only for the syscalls
//! whose rule has cases. The table, not the program, is what the rest of
//! the crate reads and tests; `Table::answer` (compiled for tests) is its
//! reference meaning, and the tests run every program against it in an
//! interpreter.

use std::collections::BTreeMap;

/// What the filter answers for one syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Answer {
    /// The syscall runs.
    Allow,
    /// The syscall fails with this errno without running.
    Errno(u16),
    /// The kernel kills the whole process (`SIGSYS`): for what a process
    /// child's policy never allows.
    #[cfg_attr(
        not(feature = "process"),
        allow(dead_code, reason = "the process tier's answer")
    )]
    Kill,
}

impl Answer {
    fn ret(self) -> u32 {
        match self {
            Answer::Allow => SECCOMP_RET_ALLOW,
            Answer::Errno(errno) => SECCOMP_RET_ERRNO | u32::from(errno),
            Answer::Kill => SECCOMP_RET_KILL_PROCESS,
        }
    }
}

/// A test on one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Test {
    /// The low 32 bits equal the value (an `int` argument: the kernel reads
    /// only those).
    Is(u32),
    /// The low 32 bits, masked, equal the value.
    Masked { mask: u32, value: u32 },
    /// One of the bits is set in the low 32 bits.
    AnyOf(u32),
    /// All 64 bits are zero (a null pointer).
    Null,
}

impl Test {
    #[cfg(test)]
    fn holds(self, arg: u64) -> bool {
        let low = arg as u32;
        match self {
            Test::Is(value) => low == value,
            Test::Masked { mask, value } => low & mask == value,
            Test::AnyOf(bits) => low & bits != 0,
            Test::Null => arg == 0,
        }
    }
}

/// A test on the argument at `index` (0 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Check {
    pub(crate) index: u8,
    pub(crate) test: Test,
}

/// `Check` on argument `index`.
pub(crate) fn arg(index: u8, test: Test) -> Check {
    Check { index, test }
}

/// How one syscall is answered: the first case whose checks all hold
/// answers; when none does, `otherwise` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Rule {
    pub(crate) cases: Vec<(Vec<Check>, Answer)>,
    pub(crate) otherwise: Answer,
}

impl Rule {
    /// The same answer whatever the arguments.
    pub(crate) fn always(answer: Answer) -> Self {
        Self {
            cases: Vec::new(),
            otherwise: answer,
        }
    }

    #[cfg(test)]
    fn answer(&self, args: &[u64; 6]) -> Answer {
        self.cases
            .iter()
            .find(|(checks, _)| {
                checks
                    .iter()
                    .all(|check| check.test.holds(args[usize::from(check.index)]))
            })
            .map_or(self.otherwise, |(_, answer)| *answer)
    }
}

/// The architecture a program is for, as the kernel names it in
/// `seccomp_data.arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Arch {
    pub(crate) audit: u32,
    /// Numbers with this bit set belong to another ABI sharing the
    /// architecture (x32 on x86-64); they are refused.
    pub(crate) foreign_abi_bit: Option<u32>,
}

/// Every syscall's rule for one architecture.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) arch: Arch,
    pub(crate) rules: BTreeMap<u32, Rule>,
    /// The answer for numbers without a rule below `unknown_from`.
    pub(crate) default: Answer,
    /// Numbers from here on are newer than the table: the kernel may give
    /// them authority the table never considered.
    pub(crate) unknown_from: u32,
    /// The answer for those, and for another architecture's or ABI's calls.
    pub(crate) unknown: Answer,
}

impl Table {
    /// What the program compiled from this table answers: the meaning the
    /// program must have.
    #[cfg(test)]
    pub(crate) fn answer(&self, arch: u32, nr: u32, args: &[u64; 6]) -> Answer {
        if arch != self.arch.audit
            || self.arch.foreign_abi_bit.is_some_and(|bit| nr & bit != 0)
            || nr >= self.unknown_from
        {
            return self.unknown;
        }
        self.rules
            .get(&nr)
            .map_or(self.default, |rule| rule.answer(args))
    }

    /// The program, laid out as a binary search over ranges of numbers.
    pub(crate) fn compile(&self) -> Result<Vec<Insn>, TooLong> {
        let mut program = vec![
            Insn::stmt(LD_ABS_W, ARCH_OFFSET),
            Insn::jump(JEQ_K, self.arch.audit, 1, 0),
            Insn::stmt(RET_K, self.unknown.ret()),
            Insn::stmt(LD_ABS_W, NR_OFFSET),
        ];
        if let Some(bit) = self.arch.foreign_abi_bit {
            program.push(Insn::jump(JSET_K, bit, 0, 1));
            program.push(Insn::stmt(RET_K, self.unknown.ret()));
        }
        program.extend(search(&self.ranges())?);
        if program.len() > BPF_MAXINSNS {
            return Err(TooLong(program.len()));
        }
        Ok(program)
    }

    /// The number line cut into ranges, each with one rule; neighbours with
    /// the same unconditional answer are merged.
    fn ranges(&self) -> Vec<(u32, Rule)> {
        let mut ranges: Vec<(u32, Rule)> = Vec::new();
        let mut push = |start: u32, rule: Rule| {
            let merges = rule.cases.is_empty()
                && ranges
                    .last()
                    .is_some_and(|(_, last)| last.cases.is_empty() && *last == rule);
            if !merges {
                ranges.push((start, rule));
            }
        };
        let mut next = 0;
        for (&nr, rule) in self.rules.range(..self.unknown_from) {
            if nr > next {
                push(next, Rule::always(self.default));
            }
            push(nr, rule.clone());
            next = nr + 1;
        }
        if next < self.unknown_from {
            push(next, Rule::always(self.default));
        }
        push(self.unknown_from, Rule::always(self.unknown));
        ranges
    }
}

/// A program longer than the kernel accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the seccomp program has {0} instructions; the kernel accepts at most {BPF_MAXINSNS}")]
pub(crate) struct TooLong(pub(crate) usize);

/// Searches `ranges` (sorted by start, the first starting at 0) for the
/// syscall number in the accumulator, and answers by its rule.
fn search(ranges: &[(u32, Rule)]) -> Result<Vec<Insn>, TooLong> {
    if let [(_, rule)] = ranges {
        return Ok(leaf(rule));
    }
    let middle = ranges.len() / 2;
    let below = search(&ranges[..middle])?;
    let above = search(&ranges[middle..])?;
    let start = ranges[middle].0;
    let mut program = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        // A conditional jump reaches at most 255 instructions ahead.
        Ok(skip) => program.push(Insn::jump(JGE_K, start, skip, 0)),
        Err(_) => {
            let skip = u32::try_from(below.len()).map_err(|_| TooLong(below.len()))?;
            program.push(Insn::jump(JGE_K, start, 0, 1));
            program.push(Insn::stmt(JA, skip));
        }
    }
    program.extend(below);
    program.extend(above);
    Ok(program)
}

/// The instructions that answer one syscall by its rule; the accumulator
/// may be overwritten.
fn leaf(rule: &Rule) -> Vec<Insn> {
    let mut program = Vec::new();
    for (checks, answer) in &rule.cases {
        let mut case = Vec::new();
        // Jumps to the next case are patched once the case's length is known.
        let mut to_next_case = Vec::new();
        for check in checks {
            let low = args_offset(check.index);
            match check.test {
                Test::Is(value) => {
                    case.push(Insn::stmt(LD_ABS_W, low));
                    to_next_case.push(case.len());
                    case.push(Insn::jump(JEQ_K, value, 0, 0));
                }
                Test::Masked { mask, value } => {
                    case.push(Insn::stmt(LD_ABS_W, low));
                    case.push(Insn::stmt(ALU_AND_K, mask));
                    to_next_case.push(case.len());
                    case.push(Insn::jump(JEQ_K, value, 0, 0));
                }
                Test::AnyOf(bits) => {
                    case.push(Insn::stmt(LD_ABS_W, low));
                    to_next_case.push(case.len());
                    case.push(Insn::jump(JSET_K, bits, 0, 0));
                }
                Test::Null => {
                    for half in [low, low + 4] {
                        case.push(Insn::stmt(LD_ABS_W, half));
                        to_next_case.push(case.len());
                        case.push(Insn::jump(JEQ_K, 0, 0, 0));
                    }
                }
            }
        }
        case.push(Insn::stmt(RET_K, answer.ret()));
        let length = case.len();
        for at in to_next_case {
            // A case is a handful of instructions: far below 255.
            case[at].jf = u8::try_from(length - at - 1).unwrap_or(u8::MAX);
        }
        program.extend(case);
    }
    program.push(Insn::stmt(RET_K, rule.otherwise.ret()));
    program
}

/// One classic BPF instruction, laid out as the kernel's `sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Insn {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

impl Insn {
    fn stmt(code: u16, k: u32) -> Self {
        Self {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Self { code, jt, jf, k }
    }
}

const LD_ABS_W: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const BPF_MAXINSNS: usize = 4096;

/// Offsets into `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// The offset of an argument's low 32 bits (the architectures supported
/// are little-endian).
fn args_offset(index: u8) -> u32 {
    16 + 8 * u32::from(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a program the way the kernel's classic BPF interpreter would,
    /// on the instructions this module emits.
    fn run(program: &[Insn], arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        run_counting(program, arch, nr, args).0
    }

    /// The answer, and how many instructions ran to reach it.
    fn run_counting(program: &[Insn], arch: u32, nr: u32, args: &[u64; 6]) -> (u32, usize) {
        let word = |offset: u32| -> u32 {
            match offset {
                NR_OFFSET => nr,
                ARCH_OFFSET => arch,
                offset if offset >= 16 => {
                    let arg = args[((offset - 16) / 8) as usize];
                    if (offset - 16) % 8 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                offset => panic!("a load from offset {offset}"),
            }
        };
        let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let insn = program[pc];
            steps += 1;
            let branch = |taken: bool| pc + 1 + usize::from(if taken { insn.jt } else { insn.jf });
            pc = match insn.code {
                LD_ABS_W => {
                    acc = word(insn.k);
                    pc + 1
                }
                ALU_AND_K => {
                    acc &= insn.k;
                    pc + 1
                }
                JA => pc + 1 + insn.k as usize,
                JEQ_K => branch(acc == insn.k),
                JGE_K => branch(acc >= insn.k),
                JSET_K => branch(acc & insn.k != 0),
                RET_K => return (insn.k, steps),
                code => panic!("an instruction this module does not emit: {code:#x}"),
            };
        }
    }

    const ARCH: Arch = Arch {
        audit: 0xc000_003e,
        foreign_abi_bit: Some(0x4000_0000),
    };

    fn sample_table(rules: BTreeMap<u32, Rule>) -> Table {
        Table {
            arch: ARCH,
            rules,
            default: Answer::Allow,
            unknown_from: 470,
            unknown: Answer::Errno(38),
        }
    }

    fn arguments() -> Vec<[u64; 6]> {
        let values = [0u64, 1, 2, 0o4000, 0o6755, 0x1_0000_0000, u64::MAX, 17];
        values
            .iter()
            .flat_map(|&a| values.iter().map(move |&b| [a, b, b, a, 0, 0]))
            .collect()
    }

    fn assert_matches_table(table: &Table) {
        let program = table.compile().unwrap();
        for nr in (0..600).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
            for args in arguments() {
                for arch in [table.arch.audit, 0x4000_0003] {
                    assert_eq!(
                        run(&program, arch, nr, &args),
                        table.answer(arch, nr, &args).ret(),
                        "syscall {nr} arch {arch:#x} args {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_program_answers_what_its_table_says() {
        let deny = Answer::Errno(1);
        let mut rules = BTreeMap::new();
        for nr in [3, 4, 5, 9, 100, 101, 250, 469] {
            rules.insert(nr, Rule::always(deny));
        }
        rules.insert(
            7,
            Rule {
                cases: vec![
                    (vec![arg(0, Test::Is(0))], Answer::Allow),
                    (vec![arg(0, Test::Is(17))], Answer::Allow),
                ],
                otherwise: deny,
            },
        );
        rules.insert(
            8,
            Rule {
                cases: vec![(vec![arg(1, Test::AnyOf(0o6000)), arg(2, Test::Null)], deny)],
                otherwise: Answer::Allow,
            },
        );
        rules.insert(
            12,
            Rule {
                cases: vec![(
                    vec![arg(
                        3,
                        Test::Masked {
                            mask: 0xf,
                            value: 2,
                        },
                    )],
                    Answer::Allow,
                )],
                otherwise: Answer::Errno(13),
            },
        );
        assert_matches_table(&sample_table(rules));
    }

    #[test]
    fn the_lockdown_table_compiles_to_its_meaning() {
        use crate::lockdown::rules::{Sockets, Threads, arch, table, thread_ban};
        assert_matches_table(&thread_ban(arch().unwrap()));
        for sockets in Sockets::EVERY {
            for threads in [Threads::Refused, Threads::Carrier, Threads::Process] {
                assert_matches_table(&table(arch().unwrap(), sockets, 4242, threads));
            }
            #[cfg(feature = "process")]
            assert_matches_table(&crate::lockdown::rules::own_process_table(
                arch().unwrap(),
                sockets,
                2,
            ));
        }
        #[cfg(feature = "process")]
        assert_matches_table(&crate::lockdown::rules::shared_process_table(
            arch().unwrap(),
        ));
    }

    #[test]
    fn neighbours_with_one_answer_become_one_range() {
        let deny = Rule::always(Answer::Errno(1));
        let rules = (10..60).map(|nr| (nr, deny.clone())).collect();
        let table = sample_table(rules);
        // Allowed below, denied, allowed above, unknown.
        assert_eq!(table.ranges().len(), 4);
        assert_matches_table(&table);
    }

    #[test]
    fn long_branches_jump_over_far_halves() {
        // Alternating answers with argument checks: no range merges, and
        // the lower half of the search is longer than a conditional jump
        // reaches.
        let checked = Rule {
            cases: vec![(vec![arg(0, Test::Null), arg(1, Test::Null)], Answer::Allow)],
            otherwise: Answer::Errno(1),
        };
        let rules = (0..400)
            .step_by(2)
            .map(|nr| (nr, checked.clone()))
            .collect();
        let table = sample_table(rules);
        let program = table.compile().unwrap();
        assert!(program.len() > 2 * 256, "{} instructions", program.len());
        assert!(program.iter().any(|insn| insn.code == JA));
        assert_matches_table(&table);
        // A search, not a scan: about log2(400) comparisons, a jump per
        // level at most, and the leaf's checks.
        let longest = (0..600)
            .map(|nr| run_counting(&program, ARCH.audit, nr, &[0; 6]).1)
            .max()
            .unwrap();
        assert!(longest <= 30, "{longest} instructions on the longest path");
    }

    #[test]
    fn a_table_past_the_kernels_length_is_refused() {
        let checked = Rule {
            cases: vec![(vec![arg(0, Test::Null), arg(1, Test::Null)], Answer::Allow)],
            otherwise: Answer::Errno(1),
        };
        let mut table = sample_table((0..5000).map(|nr| (nr, checked.clone())).collect());
        table.unknown_from = 6000;
        assert!(matches!(table.compile(), Err(TooLong(len)) if len > BPF_MAXINSNS));
    }
}
