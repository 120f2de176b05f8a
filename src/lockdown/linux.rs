//! Landlock and seccomp on Linux.

use std::collections::BTreeMap;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, make_bitflags,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{Enforcement, LandlockLevel, Lockdown, LockdownError, Mode};
use crate::caps::NetAccess;
use crate::grant::{Capability, Inventory, Rights};

/// The highest Landlock ABI the policy uses (the ceiling: 7).
const TARGET_ABI: ABI = ABI::V7;

/// The ABI that brought the last part of the policy (scopes): anything older
/// cannot enforce it fully.
const REQUIRED_ABI: u8 = 6;

/// Landlock has one rule per port; a grant whose rules span more ports than
/// this cannot be expressed.
const MAX_TCP_PORTS: usize = 4096;

/// A child's kernel policy: the seccomp programs compiled once for its
/// specification, and how to derive Landlock rules from each instance's
/// grant.
#[derive(Debug)]
pub struct Policy {
    lockdown: Lockdown,
    /// The filters to install, in order; empty when they could not be
    /// compiled in best-effort mode.
    filters: Vec<BpfProgram>,
}

fn landlock_error(err: impl std::fmt::Display) -> LockdownError {
    LockdownError::Landlock(err.to_string())
}

fn seccomp_error(err: impl std::fmt::Display) -> LockdownError {
    LockdownError::Seccomp(err.to_string())
}

impl Policy {
    /// Compiles the part of the policy that depends only on what kinds of
    /// capabilities `grant` holds: the seccomp filter, which allows sockets
    /// only when the grant holds a network capability.
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when a required part cannot be built here.
    pub fn compile(lockdown: Lockdown, grant: &Inventory<'_>) -> Result<Self, LockdownError> {
        let has_net = grant
            .iter()
            .any(|held| matches!(held.capability(), Capability::Net { .. }));
        let filters = match compile_filters(has_net) {
            Ok(filters) => filters,
            // Best effort goes on without seccomp; `apply` reports it as
            // not enforced.
            Err(_) if lockdown.mode == Mode::BestEffort => Vec::new(),
            Err(err) => return Err(err),
        };
        Ok(Self { lockdown, filters })
    }

    /// Confines the calling thread, and threads it spawns later, to what
    /// `grant` holds; reports what the kernel enforced.
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when the policy cannot be enforced as required.
    pub fn apply(&self, grant: &Inventory<'_>) -> Result<Enforcement, LockdownError> {
        let require = self.lockdown.mode == Mode::Require;
        let mut enforcement = self.landlock(grant)?;
        let mut installed = !self.filters.is_empty();
        for filter in &self.filters {
            if let Err(err) = seccompiler::apply_filter(filter) {
                if require {
                    return Err(seccomp_error(err));
                }
                installed = false;
                break;
            }
        }
        if require && !installed {
            return Err(LockdownError::Unsupported {
                missing: "a seccomp filter for this architecture".to_owned(),
            });
        }
        enforcement.seccomp = installed;
        // Both Landlock and seccomp set it; either suffices.
        enforcement.no_new_privs |= installed;
        Ok(enforcement)
    }

    fn landlock(&self, grant: &Inventory<'_>) -> Result<Enforcement, LockdownError> {
        let require = self.lockdown.mode == Mode::Require;
        let (connect, bind) = tcp_ports(grant);
        let expressible = connect.len() <= MAX_TCP_PORTS && bind.len() <= MAX_TCP_PORTS;
        if require && !expressible {
            return Err(LockdownError::Unsupported {
                missing: format!(
                    "Landlock needs one rule per TCP port, and the grant's network rules span {} connect and {} bind ports (at most {MAX_TCP_PORTS} each)",
                    connect.len(),
                    bind.len()
                ),
            });
        }
        let compat = if require {
            CompatLevel::HardRequirement
        } else {
            CompatLevel::BestEffort
        };
        let mut ruleset = Ruleset::default()
            .set_compatibility(compat)
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .map_err(unsupported_if_required(require))?;
        if expressible {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(TARGET_ABI))
                .map_err(unsupported_if_required(require))?;
        }
        let mut created = ruleset
            .scope(Scope::from_all(TARGET_ABI))
            .map_err(unsupported_if_required(require))?
            .create()
            .map_err(unsupported_if_required(require))?;
        let mut directories = 0;
        for held in grant.iter() {
            if let (Capability::Dir { rights }, Some(descriptor)) =
                (held.capability(), held.descriptor())
            {
                created = created
                    .add_rule(PathBeneath::new(descriptor.borrow(), dir_access(*rights)))
                    .map_err(landlock_error)?;
                directories += 1;
            }
        }
        if expressible {
            for port in connect {
                created = created
                    .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                    .map_err(landlock_error)?;
            }
            for port in bind {
                created = created
                    .add_rule(NetPort::new(port, AccessNet::BindTcp))
                    .map_err(landlock_error)?;
            }
        }
        let status = created
            .restrict_self()
            .map_err(unsupported_if_required(require))?;
        let abi = match status.landlock {
            LandlockStatus::Available { effective_abi, .. } => Some(effective_abi as u8),
            _ => None,
        };
        let landlock = match status.ruleset {
            RulesetStatus::FullyEnforced => LandlockLevel::Full,
            RulesetStatus::PartiallyEnforced => LandlockLevel::Partial,
            _ => LandlockLevel::None,
        };
        if require && (landlock != LandlockLevel::Full || abi.is_none_or(|abi| abi < REQUIRED_ABI))
        {
            return Err(LockdownError::Unsupported {
                missing: format!(
                    "Landlock ABI {REQUIRED_ABI} (the kernel offers {})",
                    abi.map_or_else(|| "none".to_owned(), |abi| abi.to_string())
                ),
            });
        }
        let enforced = landlock != LandlockLevel::None;
        Ok(Enforcement {
            landlock,
            landlock_abi: abi,
            scoped: enforced && abi.is_some_and(|abi| abi >= REQUIRED_ABI),
            tcp_rules: enforced && expressible && abi.is_some_and(|abi| abi >= 4),
            seccomp: false,
            no_new_privs: status.no_new_privs,
            directories,
        })
    }
}

fn unsupported_if_required(require: bool) -> impl Fn(landlock::RulesetError) -> LockdownError {
    move |err| {
        if require {
            LockdownError::Unsupported {
                missing: err.to_string(),
            }
        } else {
            landlock_error(err)
        }
    }
}

/// The Landlock rights of a directory capability: what its API can do, and
/// no more. Symlinks are left out: Landlock cannot check a symlink's target,
/// so under lockdown none can be created.
fn dir_access(rights: Rights) -> BitFlags<AccessFs> {
    match rights {
        Rights::Full => make_bitflags!(AccessFs::{
            ReadFile | ReadDir | WriteFile | RemoveDir | RemoveFile | MakeDir | MakeReg | Refer | Truncate
        }),
        _ => make_bitflags!(AccessFs::{ReadFile | ReadDir}),
    }
}

/// The TCP ports the grant's network rules name, for connect and for bind.
fn tcp_ports(grant: &Inventory<'_>) -> (Vec<u16>, Vec<u16>) {
    let mut connect = std::collections::BTreeSet::new();
    let mut bind = std::collections::BTreeSet::new();
    for held in grant.iter() {
        if let Capability::Net { rules } = held.capability() {
            for rule in rules {
                let ports = rule.ports();
                match rule.access() {
                    NetAccess::Connect => connect.extend(ports),
                    NetAccess::Bind => bind.extend(ports),
                }
            }
        }
    }
    (connect.into_iter().collect(), bind.into_iter().collect())
}

/// Syscalls denied with `EPERM` whatever the grant.
fn always_denied() -> Vec<i64> {
    let mut syscalls = vec![
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_chroot,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setreuid,
        libc::SYS_setregid,
        libc::SYS_setresuid,
        libc::SYS_setresgid,
        libc::SYS_setfsuid,
        libc::SYS_setfsgid,
        libc::SYS_setgroups,
        libc::SYS_capset,
        libc::SYS_io_uring_setup,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_tkill,
        libc::SYS_pidfd_send_signal,
        libc::SYS_pidfd_getfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_fchown,
        libc::SYS_fchownat,
    ];
    #[cfg(target_arch = "x86_64")]
    syscalls.extend([
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_iopl,
        libc::SYS_ioperm,
    ]);
    syscalls
}

/// Syscalls denied with `EPERM` when the grant holds no network capability.
fn network_syscalls() -> [i64; 7] {
    [
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
    ]
}

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, LockdownError> {
    SeccompCondition::new(arg, len, op, value).map_err(seccomp_error)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, LockdownError> {
    SeccompRule::new(conditions).map_err(seccomp_error)
}

/// Matches when the mode argument `arg` has a set-user-ID or set-group-ID
/// bit.
fn set_id_mode(arg: u8) -> Result<Vec<SeccompRule>, LockdownError> {
    [0o4000, 0o2000, 0o6000]
        .into_iter()
        .map(|bits| {
            rule(vec![condition(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(0o6000),
                bits,
            )?])
        })
        .collect()
}

fn compile_filters(has_net: bool) -> Result<Vec<BpfProgram>, LockdownError> {
    let arch =
        TargetArch::try_from(std::env::consts::ARCH).map_err(|_| LockdownError::Unsupported {
            missing: format!("a seccomp target for {}", std::env::consts::ARCH),
        })?;
    let pid = u64::from(std::process::id());
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = always_denied()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    if !has_net {
        denied.extend(network_syscalls().into_iter().map(|nr| (nr, Vec::new())));
    }
    // A new process, not a thread.
    denied.insert(
        libc::SYS_clone,
        vec![rule(vec![condition(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
            0,
        )?])?],
    );
    // Signals to any process but this one.
    for (syscall, arg) in [(libc::SYS_kill, 0), (libc::SYS_tgkill, 0)] {
        denied.insert(
            syscall,
            vec![rule(vec![condition(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Ne,
                pid,
            )?])?],
        );
    }
    denied.insert(libc::SYS_fchmod, set_id_mode(1)?);
    denied.insert(libc::SYS_fchmodat, set_id_mode(2)?);
    #[cfg(target_arch = "x86_64")]
    denied.insert(libc::SYS_chmod, set_id_mode(1)?);

    let deny = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    // clone3's flags live in memory a filter cannot read: answer ENOSYS so
    // the C library falls back to clone, whose flags the first filter checks.
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    Ok(vec![
        deny.try_into().map_err(seccomp_error)?,
        clone3.try_into().map_err(seccomp_error)?,
    ])
}
