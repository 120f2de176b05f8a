//! Landlock and seccomp on Linux.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::JoinHandle;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
    make_bitflags,
};
use seccompiler::{BpfProgram, sock_filter};

use super::carrier::{self, Carrier};
use super::rules::{self, Sockets, Threads};
use super::{Enforcement, LandlockLevel, Lockdown, LockdownError, Mode};
use crate::capability::{Capability, Rights};
use crate::caps::{NetAccess, Transport};
use crate::grant::Inventory;
use crate::threads::SpawnError;

/// The highest Landlock ABI the policy uses (the ceiling: 7).
const TARGET_ABI: ABI = ABI::V7;

/// The ABI that brought the last part of the policy (scopes): anything older
/// cannot enforce it fully.
const REQUIRED_ABI: u8 = 6;

/// Landlock has one rule per port; a grant whose rules span more ports than
/// this cannot be expressed.
const MAX_TCP_PORTS: usize = 4096;

/// A child's kernel policy: the seccomp programs compiled once for its
/// specification, the carrier thread that starts its threads, and how to
/// derive Landlock rules from each instance's grant.
#[derive(Debug)]
pub struct Policy {
    lockdown: Lockdown,
    programs: Option<Programs>,
    /// Starts the child's threads with its program already attached; `None`
    /// in best-effort mode when it could not start.
    carrier: Option<Arc<Carrier>>,
}

/// The seccomp programs of one policy; absent when they could not be built
/// in best-effort mode.
#[derive(Debug, Clone)]
struct Programs {
    /// The whole program, for a thread that inherited none.
    whole: Arc<BpfProgram>,
    /// What a thread its carrier started adds to what it inherited.
    ban: Arc<BpfProgram>,
}

fn landlock_error(err: impl std::fmt::Display) -> LockdownError {
    LockdownError::Landlock(err.to_string())
}

fn seccomp_error(err: impl std::fmt::Display) -> LockdownError {
    LockdownError::Seccomp(err.to_string())
}

impl Policy {
    /// Compiles the part of the policy that depends only on what kinds of
    /// capabilities `grant` holds: the seccomp program, which allows TCP and
    /// UDP sockets only as the grant's network rules name them.
    ///
    /// Also starts the policy's carrier: a thread that attaches the program
    /// once (in its variant that still allows threads) and starts the
    /// threads [`spawn`](Self::spawn) asks for, so that they inherit it.
    /// Call this from an unconfined thread, as a supervisor does: a
    /// confined thread cannot start one.
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when a required part cannot be built here.
    pub fn compile(lockdown: Lockdown, grant: &Inventory<'_>) -> Result<Self, LockdownError> {
        let best_effort = lockdown.mode == Mode::BestEffort;
        let (programs, carrier_program) = match compile_programs(sockets(grant)) {
            Ok((programs, carrier_program)) => (Some(programs), Some(carrier_program)),
            // Best effort goes on without seccomp; `apply` reports it as
            // not enforced.
            Err(_) if best_effort => (None, None),
            Err(err) => return Err(err),
        };
        let carrier = match carrier_program.map(Carrier::start) {
            Some(Ok(carrier)) => Some(carrier),
            Some(Err(_)) if best_effort => None,
            Some(Err(why)) => return Err(LockdownError::Threads(why)),
            None => None,
        };
        Ok(Self {
            lockdown,
            programs,
            carrier,
        })
    }

    /// Starts a thread for this policy: from its carrier, so that the
    /// thread already carries the seccomp program and [`apply`](Self::apply)
    /// on it attaches only Landlock and a short program that refuses it
    /// threads of its own. Without a carrier (best effort, where it could
    /// not start), an ordinary thread.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the thread could not be started.
    pub fn spawn(
        &self,
        name: impl Into<String>,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<JoinHandle<()>, SpawnError> {
        carrier::spawn(self.carrier.as_deref(), name.into(), work)
    }

    /// Confines the calling thread to what `grant` holds and reports what
    /// the kernel enforced. Threads it starts afterwards through
    /// [`Context::spawn`](crate::Context::spawn) carry the same policy;
    /// it cannot start others.
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when the policy cannot be enforced as required.
    pub fn apply(&self, grant: &Inventory<'_>) -> Result<Enforcement, LockdownError> {
        let (ruleset, facts) = self.ruleset(grant)?;
        let confinement = Confinement {
            ruleset: ruleset.try_clone().map_err(landlock_error)?,
            programs: self.programs.clone(),
            carrier: self.carrier.clone(),
            mode: self.lockdown.mode,
            facts,
        };
        let enforcement = confinement.enforce(ruleset)?;
        CONFINEMENT.with(|current| *current.borrow_mut() = Some(Arc::new(confinement)));
        Ok(enforcement)
    }

    /// The instance's Landlock ruleset, created but not yet applied, and
    /// what it will enforce.
    fn ruleset(&self, grant: &Inventory<'_>) -> Result<(RulesetCreated, Facts), LockdownError> {
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
        Ok((
            created,
            Facts {
                directories,
                expressible,
            },
        ))
    }
}

/// What a ruleset holds, for the report.
#[derive(Debug, Clone, Copy)]
struct Facts {
    directories: usize,
    expressible: bool,
}

thread_local! {
    /// The policy the crate applied to this thread, which threads it starts
    /// through the thread capability carry too.
    static CONFINEMENT: RefCell<Option<Arc<Confinement>>> = const { RefCell::new(None) };
}

/// The policy of the calling thread, if the crate confined it.
pub(crate) fn confinement() -> Option<Arc<Confinement>> {
    CONFINEMENT.with(|current| current.borrow().clone())
}

/// One instance's policy in a form that confines further threads: its
/// Landlock ruleset (one per instance, so later threads get the same
/// directories), the child's seccomp programs and its carrier.
#[derive(Debug)]
pub(crate) struct Confinement {
    ruleset: RulesetCreated,
    programs: Option<Programs>,
    carrier: Option<Arc<Carrier>>,
    mode: Mode,
    facts: Facts,
}

impl Confinement {
    /// Applies `ruleset` and the seccomp program to the calling thread: the
    /// short ban when its carrier started it (it inherited the rest), the
    /// whole program otherwise.
    fn enforce(&self, ruleset: RulesetCreated) -> Result<Enforcement, LockdownError> {
        let require = self.mode == Mode::Require;
        let mut enforcement = restrict(ruleset, self.facts, require)?;
        let carried = self
            .carrier
            .as_ref()
            .is_some_and(|carrier| carrier.carries_current_thread());
        let program = self.programs.as_ref().map(|programs| {
            if carried {
                &programs.ban
            } else {
                &programs.whole
            }
        });
        let installed = match program {
            Some(filter) => match seccompiler::apply_filter(filter) {
                Ok(()) => true,
                Err(err) if require => return Err(seccomp_error(err)),
                Err(_) => false,
            },
            None => false,
        };
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

    /// Starts a thread that carries this policy: from the child's carrier
    /// (a confined thread cannot start one), confined before `work` runs.
    /// Returns once the policy is in force on it.
    pub(crate) fn spawn(
        self: Arc<Self>,
        name: String,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<JoinHandle<()>, SpawnError> {
        let (ready, applied) = crossbeam_channel::bounded(1);
        let carrier = self.carrier.clone();
        let body = move || {
            let enforced = self
                .ruleset
                .try_clone()
                .map_err(landlock_error)
                .and_then(|ruleset| self.enforce(ruleset));
            let confined = enforced.is_ok();
            let _ = ready.send(enforced.map(drop));
            if confined {
                CONFINEMENT.with(|current| *current.borrow_mut() = Some(self));
                work();
            }
        };
        let join = carrier::spawn(carrier.as_deref(), name, body)?;
        match applied.recv() {
            Ok(Ok(())) => Ok(join),
            Ok(Err(source)) => Err(SpawnError::Lockdown { source }),
            Err(_) => Err(SpawnError::Lockdown {
                source: LockdownError::Threads(
                    "the thread ended before its kernel policy was applied".to_owned(),
                ),
            }),
        }
    }
}

/// Applies a Landlock ruleset to the calling thread.
fn restrict(
    ruleset: RulesetCreated,
    facts: Facts,
    require: bool,
) -> Result<Enforcement, LockdownError> {
    let status = ruleset
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
    if require && (landlock != LandlockLevel::Full || abi.is_none_or(|abi| abi < REQUIRED_ABI)) {
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
        tcp_rules: enforced && facts.expressible && abi.is_some_and(|abi| abi >= 4),
        seccomp: false,
        no_new_privs: status.no_new_privs,
        directories: facts.directories,
    })
}

/// The seccomp programs for a grant with network access `sockets`, and
/// the carrier's.
fn compile_programs(sockets: Sockets) -> Result<(Programs, Arc<BpfProgram>), LockdownError> {
    let arch = table_arch()?;
    let pid = std::process::id();
    let compile = |table| bpf_program(table).map(Arc::new);
    let programs = Programs {
        whole: compile(rules::table(arch, sockets, pid, Threads::Refused))?,
        ban: compile(rules::thread_ban(arch))?,
    };
    let carrier = compile(rules::table(arch, sockets, pid, Threads::Carrier))?;
    Ok((programs, carrier))
}

/// Attaches the part of every process child's seccomp table that does not
/// depend on its grant or process id to the calling process: a zygote,
/// still single-threaded, whose namespaces and root are ready. Each child
/// it makes inherits the part and attaches only its own
/// ([`process_program`]) on top.
#[cfg(feature = "process")]
pub(crate) fn confine_zygote() -> Result<(), LockdownError> {
    let program = bpf_program(rules::shared_process_table(table_arch()?))?;
    seccompiler::apply_filter(&program).map_err(seccomp_error)
}

/// Confines the whole calling process — a process child, still
/// single-threaded, so that every thread it starts afterwards inherits the
/// policy — to `grant`: Landlock from its inventory, and the seccomp table
/// that lets it start threads but kills it for a new process, a program or
/// a call on the kernel and host, and leaves socket creation to its broker.
///
/// `inherited`: whether the process inherited [`confine_zygote`]'s part
/// of the table, on which `program` (the child's own part, compiled for
/// this grant on the supervisor's side) completes it. Without that part
/// the whole table is compiled and attached here, as it is when `program`
/// is empty.
#[cfg(feature = "process")]
pub(crate) fn confine_process(
    lockdown: Lockdown,
    grant: &Inventory<'_>,
    program: &[u64],
    inherited: bool,
) -> Result<Enforcement, LockdownError> {
    let require = lockdown.mode == Mode::Require;
    let policy = Policy {
        lockdown,
        programs: None,
        carrier: None,
    };
    let (ruleset, facts) = policy.ruleset(grant)?;
    let mut enforcement = restrict(ruleset, facts, require)?;
    let pid = std::process::id();
    let program = match (inherited, program.is_empty()) {
        (true, false) => Ok(unpacked(program)),
        (true, true) => process_program(grant, pid).map(|packed| unpacked(&packed)),
        (false, _) => table_arch()
            .and_then(|arch| bpf_program(rules::process_table(arch, sockets(grant), pid))),
    };
    let installed =
        program.and_then(|program| seccompiler::apply_filter(&program).map_err(seccomp_error));
    enforcement.seccomp = match installed {
        Ok(()) => true,
        Err(err) if require => return Err(err),
        Err(_) => false,
    };
    enforcement.no_new_privs |= enforcement.seccomp;
    Ok(enforcement)
}

/// The own part of the seccomp table of a process child holding `grant`
/// (see [`confine_zygote`] for the shared part), whose process id (in its
/// own pid namespace) is `pid`, each instruction packed into a `u64`
/// (code, jt, jf, k) to cross to the child: compiled once per child
/// specification on the supervisor's side, attached in each child.
///
/// The program depends on the grant only through which transports its
/// network rules name, so each of the few there are is compiled once per
/// process and kept.
#[cfg(feature = "process")]
pub(crate) fn process_program(grant: &Inventory<'_>, pid: u32) -> Result<Vec<u64>, LockdownError> {
    type Compiled = Vec<((Sockets, u32), Vec<u64>)>;
    static COMPILED: parking_lot::Mutex<Compiled> = parking_lot::Mutex::new(Vec::new());
    let key = (sockets(grant), pid);
    if let Some((_, program)) = COMPILED.lock().iter().find(|(k, _)| *k == key) {
        return Ok(program.clone());
    }
    let program: Vec<u64> = bpf_program(rules::own_process_table(table_arch()?, key.0, pid))?
        .into_iter()
        .map(|insn| {
            (u64::from(insn.code) << 48)
                | (u64::from(insn.jt) << 40)
                | (u64::from(insn.jf) << 32)
                | u64::from(insn.k)
        })
        .collect();
    COMPILED.lock().push((key, program.clone()));
    Ok(program)
}

/// A program [`process_program`] packed, as seccompiler installs it.
#[cfg(feature = "process")]
fn unpacked(program: &[u64]) -> BpfProgram {
    program
        .iter()
        .map(|&packed| sock_filter {
            code: (packed >> 48) as u16,
            jt: (packed >> 40) as u8,
            jf: (packed >> 32) as u8,
            k: packed as u32,
        })
        .collect()
}

/// The architecture the syscall tables have numbers for, or why none.
fn table_arch() -> Result<super::bpf::Arch, LockdownError> {
    rules::arch().ok_or_else(|| LockdownError::Unsupported {
        missing: format!("a seccomp syscall table for {}", std::env::consts::ARCH),
    })
}

/// A table compiled into the form seccompiler installs.
fn bpf_program(table: super::bpf::Table) -> Result<BpfProgram, LockdownError> {
    let program = table.compile().map_err(seccomp_error)?;
    Ok(program
        .into_iter()
        .map(|insn| sock_filter {
            code: insn.code,
            jt: insn.jt,
            jf: insn.jf,
            k: insn.k,
        })
        .collect())
}

/// The kinds of sockets the grant's network rules name.
fn sockets(grant: &Inventory<'_>) -> Sockets {
    let mut sockets = Sockets::default();
    for held in grant.iter() {
        if let Capability::Net { rules } = held.capability() {
            for rule in rules {
                match rule.transport() {
                    Transport::Tcp => sockets.tcp = true,
                    Transport::Udp => sockets.udp = true,
                }
            }
        }
    }
    sockets
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
            for rule in rules
                .iter()
                .filter(|rule| rule.transport() == Transport::Tcp)
            {
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
