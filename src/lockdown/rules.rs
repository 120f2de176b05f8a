//! What the seccomp part of the policy refuses, class by class, as a table
//! of syscall rules for this architecture (x86-64 or aarch64).
//!
//! Landlock decides which files and TCP ports a thread reaches; everything
//! else a grant could not hold is refused here. Each class below says why
//! refusing it costs a component nothing its capabilities need: the
//! capabilities work through descriptors they already hold, on the calling
//! thread, inside the calling process. Refusals answer `EPERM` (never kill:
//! the component sees an error and its supervisor stays in charge). Numbers
//! past the newest syscall this table knows answer `ENOSYS`, so a kernel
//! that grows a new authority does not grow it for a locked component.

use std::collections::BTreeMap;

use super::bpf::{Answer, Arch, Check, Rule, Table, Test, arg};

const DENY: Answer = Answer::Errno(libc::EPERM as u16);
const UNKNOWN: Answer = Answer::Errno(libc::ENOSYS as u16);

/// Syscalls numbered from 424 on share their numbers on every
/// architecture; some are newer than the `libc` crate.
mod unified {
    pub(super) const PIDFD_SEND_SIGNAL: u32 = 424;
    pub(super) const IO_URING_SETUP: u32 = 425;
    pub(super) const IO_URING_ENTER: u32 = 426;
    pub(super) const IO_URING_REGISTER: u32 = 427;
    pub(super) const OPEN_TREE: u32 = 428;
    pub(super) const MOVE_MOUNT: u32 = 429;
    pub(super) const FSOPEN: u32 = 430;
    pub(super) const FSCONFIG: u32 = 431;
    pub(super) const FSMOUNT: u32 = 432;
    pub(super) const FSPICK: u32 = 433;
    pub(super) const PIDFD_OPEN: u32 = 434;
    pub(super) const CLONE3: u32 = 435;
    pub(super) const OPENAT2: u32 = 437;
    pub(super) const PIDFD_GETFD: u32 = 438;
    pub(super) const PROCESS_MADVISE: u32 = 440;
    pub(super) const MOUNT_SETATTR: u32 = 442;
    pub(super) const QUOTACTL_FD: u32 = 443;
    pub(super) const LANDLOCK_RESTRICT_SELF: u32 = 446;
    pub(super) const PROCESS_MRELEASE: u32 = 448;
    pub(super) const FCHMODAT2: u32 = 452;
    pub(super) const STATMOUNT: u32 = 457;
    pub(super) const LISTMOUNT: u32 = 458;
    pub(super) const LSM_SET_SELF_ATTR: u32 = 460;
    pub(super) const MSEAL: u32 = 462;
    pub(super) const SETXATTRAT: u32 = 463;
    pub(super) const GETXATTRAT: u32 = 464;
    pub(super) const LISTXATTRAT: u32 = 465;
    pub(super) const REMOVEXATTRAT: u32 = 466;
    pub(super) const OPEN_TREE_ATTR: u32 = 467;
    pub(super) const FILE_GETATTR: u32 = 468;
    pub(super) const FILE_SETATTR: u32 = 469;
    /// The first number this table does not know.
    pub(super) const UNKNOWN_FROM: u32 = 470;
}

/// What kinds of network access a grant holds: sockets follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Sockets {
    pub(crate) tcp: bool,
    pub(crate) udp: bool,
}

#[cfg(test)]
impl Sockets {
    /// Each kind of network access a grant may hold, as the tests try them.
    pub(crate) const EVERY: [Sockets; 3] = [
        Sockets {
            tcp: false,
            udp: false,
        },
        Sockets {
            tcp: true,
            udp: false,
        },
        Sockets {
            tcp: true,
            udp: true,
        },
    ];
}

/// The architecture this build runs on, or `None` where the table has no
/// syscall numbers.
pub(crate) fn arch() -> Option<Arch> {
    if cfg!(target_arch = "x86_64") {
        Some(Arch {
            audit: 0xc000_003e,
            // x32 shares the architecture and marks its numbers with this bit.
            foreign_abi_bit: Some(0x4000_0000),
        })
    } else if cfg!(target_arch = "aarch64") {
        Some(Arch {
            audit: 0xc000_00b7,
            foreign_abi_bit: None,
        })
    } else {
        None
    }
}

/// Which threads a program lets its thread start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Threads {
    /// None: the program of a component's thread.
    Refused,
    /// Threads, never processes: the program of a child's carrier thread,
    /// which starts the component's threads. Each of those stacks
    /// [`thread_ban`] on what it inherits before it runs component code.
    Carrier,
    /// Threads, never processes, in a process child: there a thread is no
    /// escape (the process is the boundary), and what no grant ever allows
    /// — new processes and programs, the kernel and host — kills the
    /// process instead of failing, so hostile code learns nothing by trying.
    #[cfg_attr(
        not(feature = "process"),
        allow(dead_code, reason = "the process tier's table")
    )]
    Process,
}

/// The table for a grant whose network access is `sockets`, in a process
/// whose id is `pid`.
pub(crate) fn table(arch: Arch, sockets: Sockets, pid: u32, threads: Threads) -> Table {
    let fatal = |class: Class| match threads {
        Threads::Process => killing(class),
        Threads::Refused | Threads::Carrier => class,
    };
    let mut rules = BTreeMap::new();
    for class in [
        fatal(new_processes(threads)),
        process_wide_state(),
        other_processes(pid),
        fatal(kernel_and_host()),
        metadata(),
        set_id_modes(),
        network(sockets),
    ] {
        for (nr, rule) in class {
            // Each syscall belongs to one class.
            let previous = rules.insert(nr, rule);
            debug_assert!(previous.is_none(), "syscall {nr} in two classes");
        }
    }
    if threads == Threads::Process {
        // A process child's signal handlers are its own: the runtime's
        // fault handlers restore the default action before a fatal signal
        // is delivered again, and would otherwise fault forever.
        rules.remove(&nr(libc::SYS_rt_sigaction));
    }
    Table {
        arch,
        rules,
        default: Answer::Allow,
        unknown_from: unified::UNKNOWN_FROM,
        unknown: UNKNOWN,
    }
}

type Class = Vec<(u32, Rule)>;

fn nr(number: libc::c_long) -> u32 {
    number as u32
}

fn deny(numbers: impl IntoIterator<Item = u32>) -> Class {
    numbers
        .into_iter()
        .map(|number| (number, Rule::always(DENY)))
        .collect()
}

/// Allowed when one of `cases` holds (each a list of checks that must all
/// hold); refused otherwise.
fn allow_only(cases: Vec<Vec<Check>>) -> Rule {
    Rule {
        cases: cases
            .into_iter()
            .map(|checks| (checks, Answer::Allow))
            .collect(),
        otherwise: DENY,
    }
}

/// Refused when one of `cases` holds; allowed otherwise.
fn deny_when(cases: Vec<Vec<Check>>) -> Rule {
    Rule {
        cases: cases.into_iter().map(|checks| (checks, DENY)).collect(),
        otherwise: Answer::Allow,
    }
}

/// New processes and programs, and threads not started by the crate.
///
/// A grant holds no authority to run programs. Threads are a capability
/// (`Context::spawn`): the crate starts them from a thread of its own and
/// confines each before it runs, so a locked thread never needs `clone`.
/// A raw `std::thread::spawn` from component code fails instead of
/// starting a thread outside the instance's accounting.
fn new_processes(threads: Threads) -> Class {
    let mut class = deny([nr(libc::SYS_execve), nr(libc::SYS_execveat)]);
    #[cfg(target_arch = "x86_64")]
    class.extend(deny([nr(libc::SYS_fork), nr(libc::SYS_vfork)]));
    match threads {
        Threads::Refused => class.extend(thread_creation()),
        Threads::Carrier | Threads::Process => class.extend([
            // A thread, never a process.
            (
                nr(libc::SYS_clone),
                deny_when(vec![vec![arg(
                    0,
                    Test::Masked {
                        mask: libc::CLONE_THREAD as u32,
                        value: 0,
                    },
                )]]),
            ),
            // Its flags live in memory a filter cannot read: `ENOSYS`
            // sends the C library back to `clone`, whose flags are checked.
            (unified::CLONE3, Rule::always(UNKNOWN)),
        ]),
    }
    class
}

/// The table of a process child whose grant's network rules name
/// `brokered`: it creates, connects and binds no socket (its broker does),
/// and accepts on the TCP listeners it was handed.
#[cfg(feature = "process")]
pub(crate) fn process_table(arch: Arch, brokered: Sockets, pid: u32) -> Table {
    let mut table = table(arch, Sockets::default(), pid, Threads::Process);
    if brokered.tcp {
        table.rules.remove(&nr(libc::SYS_accept));
        table.rules.remove(&nr(libc::SYS_accept4));
    }
    table
}

/// What a zygote still does once it has attached the shared part of the
/// process children's table, and what a child's init and component do
/// before the component attaches its own part: socket pairs for each
/// child's sockets, `clone3` for the child and `fork` for its component,
/// the parent-death signal (`prctl`) and each child's resource limits.
/// With them go the rules that differ from child to child, on the grant
/// (`accept`, `accept4`) or on the child's process id (`tgkill`,
/// `rt_tgsigqueueinfo`, `prlimit64`).
#[cfg(feature = "process")]
fn own_syscalls() -> Vec<u32> {
    let mut own = vec![
        nr(libc::SYS_socketpair),
        unified::CLONE3,
        nr(libc::SYS_clone),
        nr(libc::SYS_prctl),
        nr(libc::SYS_setrlimit),
        nr(libc::SYS_prlimit64),
        nr(libc::SYS_accept),
        nr(libc::SYS_accept4),
        nr(libc::SYS_tgkill),
        nr(libc::SYS_rt_tgsigqueueinfo),
    ];
    #[cfg(target_arch = "x86_64")]
    own.extend([nr(libc::SYS_fork), nr(libc::SYS_vfork)]);
    own
}

/// The part of every process child's table that its zygote attaches to
/// itself, once, after it has made its namespaces and root ready: each
/// child inherits it as a copy of the zygote, at no cost to its start (an
/// attach costs about 200 µs for the whole table on this crate's test
/// machine, about 60 µs for the child's own part on top of this one).
#[cfg(feature = "process")]
pub(crate) fn shared_process_table(arch: Arch) -> Table {
    let own = own_syscalls();
    let mut table = process_table(arch, Sockets::default(), 0);
    table.rules.retain(|nr, _| !own.contains(nr));
    table
}

/// The part a process child attaches on top of the shared one it
/// inherited: the two answer as [`process_table`] for the same arguments.
#[cfg(feature = "process")]
pub(crate) fn own_process_table(arch: Arch, brokered: Sockets, pid: u32) -> Table {
    let own = own_syscalls();
    let mut table = process_table(arch, brokered, pid);
    table.rules.retain(|nr, _| own.contains(nr));
    // The shared part answers for numbers past the table and other ABIs.
    table.unknown = Answer::Allow;
    table
}

/// The class with every refusal turned into killing the process.
fn killing(class: Class) -> Class {
    let kill = |answer: Answer| if answer == DENY { Answer::Kill } else { answer };
    class
        .into_iter()
        .map(|(nr, rule)| {
            let rule = Rule {
                cases: rule
                    .cases
                    .into_iter()
                    .map(|(checks, answer)| (checks, kill(answer)))
                    .collect(),
                otherwise: kill(rule.otherwise),
            };
            (nr, rule)
        })
        .collect()
}

/// `clone` and `clone3` refused, whatever their flags.
fn thread_creation() -> Class {
    deny([nr(libc::SYS_clone), unified::CLONE3])
}

/// The program a thread started by a carrier stacks on the one it
/// inherited: no thread of its own. Everything else it leaves to the
/// inherited program.
pub(crate) fn thread_ban(arch: Arch) -> Table {
    Table {
        arch,
        rules: thread_creation().into_iter().collect(),
        default: Answer::Allow,
        unknown_from: unified::UNKNOWN_FROM,
        // The inherited program answers these.
        unknown: Answer::Allow,
    }
}

/// State every thread of the process shares: the working directory, the
/// root, the umask, namespaces, credentials, resource limits, signal
/// handlers, interval timers, sessions, memory-wide settings, and policies
/// applied to all threads at once.
///
/// Capabilities resolve paths from their own descriptors, so no component
/// needs a working directory; a change here would be a change to the host.
fn process_wide_state() -> Class {
    let mut class = deny([
        nr(libc::SYS_chdir),
        nr(libc::SYS_fchdir),
        nr(libc::SYS_chroot),
        nr(libc::SYS_pivot_root),
        nr(libc::SYS_umask),
        nr(libc::SYS_unshare),
        nr(libc::SYS_setns),
        nr(libc::SYS_setsid),
        nr(libc::SYS_setpgid),
        nr(libc::SYS_setuid),
        nr(libc::SYS_setgid),
        nr(libc::SYS_setreuid),
        nr(libc::SYS_setregid),
        nr(libc::SYS_setresuid),
        nr(libc::SYS_setresgid),
        nr(libc::SYS_setfsuid),
        nr(libc::SYS_setfsgid),
        nr(libc::SYS_setgroups),
        nr(libc::SYS_capset),
        nr(libc::SYS_setrlimit),
        nr(libc::SYS_mlockall),
        nr(libc::SYS_munlockall),
        // Interval timers belong to the process, and their signals end it.
        nr(libc::SYS_setitimer),
        unified::MSEAL,
        unified::LSM_SET_SELF_ATTR,
    ]);
    #[cfg(target_arch = "x86_64")]
    class.extend(deny([
        nr(libc::SYS_modify_ldt),
        nr(libc::SYS_uselib),
        nr(libc::SYS_alarm),
    ]));
    class.extend([
        // Querying the execution domain only.
        (
            nr(libc::SYS_personality),
            allow_only(vec![vec![arg(0, Test::Is(0xffff_ffff))]]),
        ),
        // Reading a handler, never installing one: handlers are the
        // process's.
        (
            nr(libc::SYS_rt_sigaction),
            allow_only(vec![vec![arg(1, Test::Null)]]),
        ),
        // A filter or ruleset for the calling thread only, never for all.
        (
            nr(libc::SYS_seccomp),
            deny_when(vec![vec![arg(
                1,
                Test::AnyOf(libc::SECCOMP_FILTER_FLAG_TSYNC as u32),
            )]]),
        ),
        (
            unified::LANDLOCK_RESTRICT_SELF,
            deny_when(vec![vec![arg(
                1,
                Test::AnyOf(LANDLOCK_RESTRICT_SELF_TSYNC),
            )]]),
        ),
        (nr(libc::SYS_prctl), allow_only(thread_prctls())),
    ]);
    class
}

/// `landlock_restrict_self`'s flag that applies a ruleset to every thread.
const LANDLOCK_RESTRICT_SELF_TSYNC: u32 = 8;

/// The `prctl` options a locked thread keeps: naming itself, reading its
/// own settings, and narrowing itself further. Everything else (dumpable,
/// subreaper, securebits, memory-wide switches, ptracer) is process-wide or
/// widens authority.
fn thread_prctls() -> Vec<Vec<Check>> {
    const PR_SET_VMA: u32 = 0x5356_4d41;
    [
        libc::PR_GET_PDEATHSIG,
        libc::PR_GET_DUMPABLE,
        libc::PR_GET_KEEPCAPS,
        libc::PR_SET_NAME,
        libc::PR_GET_NAME,
        libc::PR_GET_SECCOMP,
        libc::PR_SET_SECCOMP,
        libc::PR_CAPBSET_READ,
        libc::PR_GET_SECUREBITS,
        libc::PR_GET_TIMERSLACK,
        libc::PR_SET_TIMERSLACK,
        libc::PR_GET_CHILD_SUBREAPER,
        libc::PR_SET_NO_NEW_PRIVS,
        libc::PR_GET_NO_NEW_PRIVS,
        libc::PR_GET_TID_ADDRESS,
        libc::PR_GET_THP_DISABLE,
        libc::PR_GET_SPECULATION_CTRL,
    ]
    .into_iter()
    .map(|option| option as u32)
    // Names for anonymous memory (the C library labels its own maps).
    .chain([PR_SET_VMA])
    .map(|option| vec![arg(0, Test::Is(option))])
    .collect()
}

/// Other processes: signals, tracing, memory access, scheduling, priority
/// and limits. A thread may still signal, schedule and prioritise itself,
/// named as it is when it means itself (`0`, or this process's id for
/// signals to its own threads); it may read limits without setting any.
fn other_processes(pid: u32) -> Class {
    let this_thread = |index| vec![arg(index, Test::Is(0))];
    let mut class = deny([
        nr(libc::SYS_ptrace),
        nr(libc::SYS_process_vm_readv),
        nr(libc::SYS_process_vm_writev),
        nr(libc::SYS_kcmp),
        nr(libc::SYS_kill),
        nr(libc::SYS_tkill),
        nr(libc::SYS_rt_sigqueueinfo),
        nr(libc::SYS_migrate_pages),
        unified::PIDFD_OPEN,
        unified::PIDFD_SEND_SIGNAL,
        unified::PIDFD_GETFD,
        unified::PROCESS_MADVISE,
        unified::PROCESS_MRELEASE,
    ]);
    class.extend([
        // Signals to the threads of this process only (`raise`, `abort`).
        (
            nr(libc::SYS_tgkill),
            allow_only(vec![vec![arg(0, Test::Is(pid))]]),
        ),
        (
            nr(libc::SYS_rt_tgsigqueueinfo),
            allow_only(vec![vec![arg(0, Test::Is(pid))]]),
        ),
        (
            nr(libc::SYS_setpriority),
            allow_only(vec![vec![
                arg(0, Test::Is(libc::PRIO_PROCESS)),
                arg(1, Test::Is(0)),
            ]]),
        ),
        (
            nr(libc::SYS_ioprio_set),
            // IOPRIO_WHO_PROCESS with 0: the calling thread.
            allow_only(vec![vec![arg(0, Test::Is(1)), arg(1, Test::Is(0))]]),
        ),
        (
            nr(libc::SYS_sched_setaffinity),
            allow_only(vec![this_thread(0)]),
        ),
        (
            nr(libc::SYS_sched_setscheduler),
            allow_only(vec![this_thread(0)]),
        ),
        (
            nr(libc::SYS_sched_setparam),
            allow_only(vec![this_thread(0)]),
        ),
        (
            nr(libc::SYS_sched_setattr),
            allow_only(vec![this_thread(0)]),
        ),
        (nr(libc::SYS_move_pages), allow_only(vec![this_thread(0)])),
        (
            nr(libc::SYS_get_robust_list),
            allow_only(vec![this_thread(0)]),
        ),
        // Limits are read, never set (they are the process's), and read
        // only of this process.
        (
            nr(libc::SYS_prlimit64),
            allow_only(vec![
                vec![arg(0, Test::Is(0)), arg(2, Test::Null)],
                vec![arg(0, Test::Is(pid)), arg(2, Test::Null)],
            ]),
        ),
    ]);
    class
}

/// The kernel and the host: mounts, modules, BPF, performance counters,
/// keyrings, `io_uring` (whose operations bypass this filter), fault
/// handling for other memory, handles by inode, clocks, reboots, swap,
/// quotas, the kernel log, and raw I/O ports. No grant holds any of them.
fn kernel_and_host() -> Class {
    let mut class = deny([
        nr(libc::SYS_mount),
        nr(libc::SYS_umount2),
        unified::OPEN_TREE,
        unified::OPEN_TREE_ATTR,
        unified::MOVE_MOUNT,
        unified::FSOPEN,
        unified::FSCONFIG,
        unified::FSMOUNT,
        unified::FSPICK,
        unified::MOUNT_SETATTR,
        unified::STATMOUNT,
        unified::LISTMOUNT,
        nr(libc::SYS_bpf),
        nr(libc::SYS_perf_event_open),
        nr(libc::SYS_keyctl),
        nr(libc::SYS_add_key),
        nr(libc::SYS_request_key),
        unified::IO_URING_SETUP,
        unified::IO_URING_ENTER,
        unified::IO_URING_REGISTER,
        nr(libc::SYS_userfaultfd),
        nr(libc::SYS_kexec_load),
        nr(libc::SYS_kexec_file_load),
        nr(libc::SYS_init_module),
        nr(libc::SYS_finit_module),
        nr(libc::SYS_delete_module),
        nr(libc::SYS_open_by_handle_at),
        nr(libc::SYS_name_to_handle_at),
        nr(libc::SYS_fanotify_init),
        nr(libc::SYS_reboot),
        nr(libc::SYS_swapon),
        nr(libc::SYS_swapoff),
        nr(libc::SYS_settimeofday),
        nr(libc::SYS_clock_settime),
        nr(libc::SYS_clock_adjtime),
        nr(libc::SYS_adjtimex),
        nr(libc::SYS_sethostname),
        nr(libc::SYS_setdomainname),
        nr(libc::SYS_acct),
        nr(libc::SYS_quotactl),
        unified::QUOTACTL_FD,
        nr(libc::SYS_syslog),
        nr(libc::SYS_vhangup),
    ]);
    #[cfg(target_arch = "x86_64")]
    class.extend(deny([nr(libc::SYS_iopl), nr(libc::SYS_ioperm)]));
    class
}

/// Metadata by path: mode, owner, times, extended attributes and inode
/// flags of any file the path names — outside the grant as well, since
/// Landlock does not govern them — and extended-attribute reads by path.
///
/// The descriptor forms stay (`fchmod`, `futimens`, `fsetxattr`): they act
/// on a file the thread has already opened, which Landlock checked, and a
/// capability changes metadata only through a descriptor. Ownership never
/// changes, by path or descriptor: no grant gives files away.
fn metadata() -> Class {
    let mut class = deny([
        nr(libc::SYS_fchmodat),
        unified::FCHMODAT2,
        nr(libc::SYS_fchown),
        nr(libc::SYS_fchownat),
        nr(libc::SYS_setxattr),
        nr(libc::SYS_lsetxattr),
        nr(libc::SYS_removexattr),
        nr(libc::SYS_lremovexattr),
        unified::SETXATTRAT,
        unified::REMOVEXATTRAT,
        unified::FILE_SETATTR,
        nr(libc::SYS_getxattr),
        nr(libc::SYS_lgetxattr),
        nr(libc::SYS_listxattr),
        nr(libc::SYS_llistxattr),
        unified::GETXATTRAT,
        unified::LISTXATTRAT,
        unified::FILE_GETATTR,
    ]);
    #[cfg(target_arch = "x86_64")]
    class.extend(deny([
        nr(libc::SYS_chmod),
        nr(libc::SYS_chown),
        nr(libc::SYS_lchown),
        nr(libc::SYS_utime),
        nr(libc::SYS_utimes),
        nr(libc::SYS_futimesat),
    ]));
    class.extend([
        // The descriptor form (`futimens`: a null path) only.
        (
            nr(libc::SYS_utimensat),
            allow_only(vec![vec![arg(1, Test::Null)]]),
        ),
        (nr(libc::SYS_fchmod), deny_when(set_id(1))),
    ]);
    class
}

/// Set-user-ID and set-group-ID bits in the mode of every call that
/// creates a file or directory or changes a mode. `openat2` carries its
/// mode in memory a filter cannot read: it answers `EPERM`, on which
/// cap-std falls back to `openat`, checked here.
fn set_id_modes() -> Class {
    let mut class: Class = vec![
        (nr(libc::SYS_openat), deny_when(set_id(3))),
        (nr(libc::SYS_mknodat), deny_when(set_id(2))),
        (nr(libc::SYS_mkdirat), deny_when(set_id(2))),
        (unified::OPENAT2, Rule::always(DENY)),
    ];
    #[cfg(target_arch = "x86_64")]
    class.extend([
        (nr(libc::SYS_open), deny_when(set_id(2))),
        (nr(libc::SYS_creat), deny_when(set_id(1))),
        (nr(libc::SYS_mknod), deny_when(set_id(1))),
        (nr(libc::SYS_mkdir), deny_when(set_id(1))),
    ]);
    class
}

fn set_id(index: u8) -> Vec<Vec<Check>> {
    vec![vec![arg(index, Test::AnyOf(libc::S_ISUID | libc::S_ISGID))]]
}

/// Sockets as the grant holds them: IPv4 and IPv6 TCP with TCP rules (whose
/// ports Landlock checks), UDP with UDP rules; never Unix (no capability
/// names one), raw, packet, netlink or any other family, and no socket
/// calls at all without a network capability.
fn network(sockets: Sockets) -> Class {
    let mut families = Vec::new();
    for (granted, kind, protocol) in [
        (sockets.tcp, libc::SOCK_STREAM, libc::IPPROTO_TCP),
        (sockets.udp, libc::SOCK_DGRAM, libc::IPPROTO_UDP),
    ] {
        if !granted {
            continue;
        }
        for family in [libc::AF_INET, libc::AF_INET6] {
            // The type may carry SOCK_NONBLOCK and SOCK_CLOEXEC; the
            // protocol is the default or the transport's own (not SCTP
            // over a stream, not ICMP over datagrams).
            for proto in [0, protocol] {
                families.push(vec![
                    arg(0, Test::Is(family as u32)),
                    arg(
                        1,
                        Test::Masked {
                            mask: 0xf,
                            value: kind as u32,
                        },
                    ),
                    arg(2, Test::Is(proto as u32)),
                ]);
            }
        }
    }
    let mut class = vec![
        (nr(libc::SYS_socket), allow_only(families)),
        (nr(libc::SYS_socketpair), Rule::always(DENY)),
    ];
    if !sockets.tcp && !sockets.udp {
        class.extend(deny([
            nr(libc::SYS_connect),
            nr(libc::SYS_bind),
            nr(libc::SYS_listen),
            nr(libc::SYS_accept),
            nr(libc::SYS_accept4),
        ]));
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(table: &Table, syscall: libc::c_long, args: [u64; 6]) -> Answer {
        table.answer(table.arch.audit, nr(syscall), &args)
    }

    fn table_for(sockets: Sockets) -> Table {
        table(arch().unwrap(), sockets, 4242, Threads::Refused)
    }

    #[cfg(feature = "process")]
    #[test]
    fn a_process_child_starts_threads_and_dies_for_a_process() {
        let thread = libc::CLONE_THREAD as u64 | libc::CLONE_VM as u64;
        let process = libc::SIGCHLD as u64;
        let child = table(arch().unwrap(), Sockets::default(), 1, Threads::Process);
        assert_eq!(
            answer(&child, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]),
            Answer::Allow
        );
        for (syscall, args) in [
            (libc::SYS_clone, [process, 0, 0, 0, 0, 0]),
            (libc::SYS_execve, [0; 6]),
            (libc::SYS_mount, [0; 6]),
            (libc::SYS_bpf, [0; 6]),
        ] {
            assert_eq!(
                answer(&child, syscall, args),
                Answer::Kill,
                "syscall {syscall}"
            );
        }
        assert_eq!(
            answer(&child, libc::SYS_rt_sigaction, [11, 1, 0, 8, 0, 0]),
            Answer::Allow
        );
        // With a network capability, sockets come from the broker: none is
        // created, connected or bound here; handed listeners accept.
        let tcp = Sockets {
            tcp: true,
            udp: true,
        };
        let brokered = process_table(arch().unwrap(), tcp, 1);
        let inet = [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0];
        assert_eq!(answer(&brokered, libc::SYS_socket, inet), DENY);
        assert_eq!(
            answer(&brokered, libc::SYS_connect, [3, 0, 16, 0, 0, 0]),
            DENY
        );
        assert_eq!(answer(&brokered, libc::SYS_bind, [3, 0, 16, 0, 0, 0]), DENY);
        assert_eq!(
            answer(&brokered, libc::SYS_accept4, [3, 0, 0, 0, 0, 0]),
            Answer::Allow
        );
        let unbrokered = process_table(arch().unwrap(), Sockets::default(), 1);
        assert_eq!(
            answer(&unbrokered, libc::SYS_accept4, [3, 0, 0, 0, 0, 0]),
            DENY
        );
        // What a capability might need in another grant still fails softly.
        assert_eq!(answer(&child, libc::SYS_chdir, [0; 6]), DENY);
        assert_eq!(
            answer(
                &child,
                libc::SYS_socket,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0]
            ),
            DENY
        );
    }

    /// What the kernel answers for a program stacked on another: the more
    /// severe answer; between two errnos, the newer program's.
    #[cfg(feature = "process")]
    fn stacked(older: Answer, newer: Answer) -> Answer {
        let severity = |answer: Answer| match answer {
            Answer::Allow => 0,
            Answer::Errno(_) => 1,
            Answer::Kill => 2,
        };
        if severity(older) > severity(newer) {
            older
        } else {
            newer
        }
    }

    #[cfg(feature = "process")]
    #[test]
    fn a_childs_own_part_on_the_zygotes_shared_part_answers_as_its_whole_table() {
        let arch = arch().unwrap();
        let shared = shared_process_table(arch);
        let values = [
            0,
            1,
            2,
            7,
            4242,
            libc::PR_SET_PDEATHSIG as u64,
            libc::PR_SET_NAME as u64,
            (libc::CLONE_THREAD | libc::CLONE_VM) as u64,
            libc::SIGCHLD as u64,
            0o6755,
            u64::MAX,
        ];
        for brokered in Sockets::EVERY {
            for pid in [1, 2, 4242] {
                let whole = process_table(arch, brokered, pid);
                let own = own_process_table(arch, brokered, pid);
                // The shared part is attached before any child's grant or
                // process id is known.
                let differing: Vec<u32> = (0..unified::UNKNOWN_FROM)
                    .filter(|nr| {
                        !own.rules.contains_key(nr) && whole.rules.get(nr) != shared.rules.get(nr)
                    })
                    .collect();
                assert!(
                    differing.is_empty(),
                    "syscalls {differing:?} differ with {brokered:?}, pid {pid}, outside the own part"
                );
                for nr in (0..600).chain([0x4000_0000, 0x4000_0002, u32::MAX]) {
                    for audit in [arch.audit, 0x4000_0003] {
                        for (a, b) in values.iter().flat_map(|&a| values.map(|b| (a, b))) {
                            let args = [a, b, b, a, 0, 0];
                            assert_eq!(
                                stacked(
                                    shared.answer(audit, nr, &args),
                                    own.answer(audit, nr, &args)
                                ),
                                whole.answer(audit, nr, &args),
                                "syscall {nr}, arch {audit:#x}, args {args:?}, {brokered:?}, pid {pid}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_carrier_starts_threads_and_its_threads_start_none() {
        let thread = libc::CLONE_THREAD as u64 | libc::CLONE_VM as u64;
        let process = libc::SIGCHLD as u64;
        let carrier = table(arch().unwrap(), Sockets::default(), 4242, Threads::Carrier);
        assert_eq!(
            answer(&carrier, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]),
            Answer::Allow
        );
        assert_eq!(
            answer(&carrier, libc::SYS_clone, [process, 0, 0, 0, 0, 0]),
            DENY
        );
        assert_eq!(answer(&carrier, libc::SYS_execve, [0; 6]), DENY);
        let refused = table_for(Sockets::default());
        assert_eq!(
            answer(&refused, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]),
            DENY
        );
        let ban = thread_ban(arch().unwrap());
        assert_eq!(answer(&ban, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), DENY);
        assert_eq!(answer(&ban, libc::SYS_openat, [0; 6]), Answer::Allow);
        assert!(ban.compile().unwrap().len() < 16);
    }

    #[test]
    fn the_table_compiles_to_a_short_program() {
        for sockets in [
            Sockets::default(),
            Sockets {
                tcp: true,
                udp: true,
            },
        ] {
            let program = table_for(sockets).compile().unwrap();
            // An eighth of what the kernel accepts: room for the table to grow.
            assert!(program.len() <= 512, "{} instructions", program.len());
        }
    }

    #[test]
    fn a_thread_may_act_on_itself_only() {
        let table = table_for(Sockets::default());
        assert_eq!(
            answer(&table, libc::SYS_sched_setaffinity, [0; 6]),
            Answer::Allow
        );
        assert_eq!(
            answer(&table, libc::SYS_sched_setaffinity, [1, 0, 0, 0, 0, 0]),
            DENY
        );
        assert_eq!(
            answer(&table, libc::SYS_tgkill, [4242, 7, 6, 0, 0, 0]),
            Answer::Allow
        );
        assert_eq!(answer(&table, libc::SYS_tgkill, [1, 1, 9, 0, 0, 0]), DENY);
        assert_eq!(
            answer(&table, libc::SYS_prlimit64, [0, 7, 0, 0x1000, 0, 0]),
            Answer::Allow
        );
        assert_eq!(
            answer(&table, libc::SYS_prlimit64, [0, 7, 0x1000, 0, 0, 0]),
            DENY
        );
        assert_eq!(
            answer(&table, libc::SYS_prlimit64, [1, 7, 0, 0x1000, 0, 0]),
            DENY
        );
    }

    #[test]
    fn sockets_follow_the_grant() {
        let stream = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        let datagram = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
        let socket = |family: i32, kind: i32, protocol: i32| {
            [family as u64, kind as u64, protocol as u64, 0, 0, 0]
        };
        let tcp_only = table_for(Sockets {
            tcp: true,
            udp: false,
        });
        let tcp = socket(libc::AF_INET6, stream, 0);
        let udp = socket(libc::AF_INET, datagram, 0);
        assert_eq!(answer(&tcp_only, libc::SYS_socket, tcp), Answer::Allow);
        assert_eq!(answer(&tcp_only, libc::SYS_socket, udp), DENY);
        for refused in [
            socket(libc::AF_UNIX, stream, 0),
            socket(libc::AF_NETLINK, libc::SOCK_RAW, 0),
            socket(libc::AF_PACKET, libc::SOCK_RAW, 0),
            socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            socket(libc::AF_INET, stream, libc::IPPROTO_SCTP),
        ] {
            assert_eq!(answer(&tcp_only, libc::SYS_socket, refused), DENY);
        }
        let both = table_for(Sockets {
            tcp: true,
            udp: true,
        });
        assert_eq!(answer(&both, libc::SYS_socket, udp), Answer::Allow);
        assert_eq!(
            answer(
                &both,
                libc::SYS_socket,
                socket(libc::AF_INET, datagram, libc::IPPROTO_ICMP)
            ),
            DENY
        );
        let none = table_for(Sockets::default());
        assert_eq!(answer(&none, libc::SYS_socket, tcp), DENY);
        assert_eq!(answer(&none, libc::SYS_connect, [3, 0, 0, 0, 0, 0]), DENY);
    }

    #[test]
    fn creating_calls_refuse_set_id_modes_only() {
        let table = table_for(Sockets::default());
        let openat = |mode: u64| [0, 0, 0o101, mode, 0, 0];
        assert_eq!(
            answer(&table, libc::SYS_openat, openat(0o644)),
            Answer::Allow
        );
        assert_eq!(answer(&table, libc::SYS_openat, openat(0o4755)), DENY);
        assert_eq!(answer(&table, libc::SYS_openat, openat(0o2755)), DENY);
        assert_eq!(
            answer(&table, libc::SYS_mknodat, [0, 0, 0o104755, 0, 0, 0]),
            DENY
        );
        assert_eq!(
            answer(&table, libc::SYS_mkdirat, [0, 0, 0o2755, 0, 0, 0]),
            DENY
        );
        assert_eq!(
            answer(&table, libc::SYS_mkdirat, [0, 0, 0o755, 0, 0, 0]),
            Answer::Allow
        );
        assert_eq!(
            answer(&table, libc::SYS_fchmod, [3, 0o755, 0, 0, 0, 0]),
            Answer::Allow
        );
        assert_eq!(
            answer(&table, libc::SYS_fchmod, [3, 0o6755, 0, 0, 0, 0]),
            DENY
        );
    }

    #[test]
    fn metadata_changes_by_path_are_refused_and_by_descriptor_kept() {
        let table = table_for(Sockets::default());
        assert_eq!(
            answer(&table, libc::SYS_utimensat, [3, 0, 0x1000, 0, 0, 0]),
            Answer::Allow
        );
        assert_eq!(
            answer(&table, libc::SYS_utimensat, [3, 0x2000, 0x1000, 0, 0, 0]),
            DENY
        );
        assert_eq!(answer(&table, libc::SYS_fchmodat, [0; 6]), DENY);
        assert_eq!(answer(&table, libc::SYS_setxattr, [0; 6]), DENY);
        assert_eq!(answer(&table, libc::SYS_fsetxattr, [0; 6]), Answer::Allow);
        assert_eq!(
            table.answer(table.arch.audit, unified::FILE_SETATTR, &[0; 6]),
            DENY
        );
        assert_eq!(
            table.answer(table.arch.audit, unified::UNKNOWN_FROM, &[0; 6]),
            UNKNOWN
        );
    }
}
