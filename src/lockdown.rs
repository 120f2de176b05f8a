//! Kernel lockdown: a component's grant becomes a Landlock + seccomp policy
//! for its own thread (Linux, feature `lockdown`).
//!
//! Types stop honest code; the kernel stops the rest. A child specified
//! with [`Child::lockdown`](crate::Child::lockdown) has its instance thread —
//! and every thread it starts through
//! [`Context::spawn`](crate::Context::spawn) — confined, before the entry
//! function runs, to exactly what its grant holds:
//!
//! - **Landlock**, derived from the grant's inventory alone: each directory
//!   capability's descriptor with the rights that capability holds (read
//!   rights for a read-only directory; for a full one, reading, writing,
//!   creating and removing files and directories, renaming and truncating —
//!   but not symlinks, devices, fifos or sockets); TCP bind and connect
//!   rules for the ports of the grant's TCP rules; the scopes that block
//!   abstract Unix sockets and signals outside the component. Nothing else on
//!   the filesystem is reachable.
//! - **seccomp**, compiled once per child specification, refusing by class
//!   what no grant holds: new processes and threads not started by the
//!   crate; state the whole process shares (working directory, root, umask,
//!   resource limits, signal handlers, namespaces, credentials, `prctl`
//!   beyond the thread's own name and settings); other processes (signals,
//!   limits, priority, scheduling, tracing, memory); the kernel and host
//!   (mounts, BPF, perf, keyrings, modules, `io_uring`, clocks, reboots);
//!   metadata changes and extended-attribute reads by path; set-id bits in
//!   any mode argument; and sockets beyond the grant — TCP only with TCP
//!   rules, UDP only with UDP rules, never Unix, raw, packet, netlink or any
//!   other family, and no socket call at all without a network capability.
//!   Every refusal is `EPERM`; syscalls newer than the crate's table answer
//!   `ENOSYS`. The process is never killed.
//!
//! The policy applies to the component's threads only: its supervisor and
//! the other components stay unrestricted, and a restart gets a new thread
//! with the policy applied afresh.
//!
//! # On threads of your own
//!
//! [`Policy`] is what a supervisor uses: [`Policy::compile`] once from a
//! grant's [inventory](crate::Grant::inventory) on an unconfined thread,
//! [`Policy::apply`] on each thread to confine it to a grant (which must
//! hold the same kinds of capabilities). Applying is irreversible for that
//! thread, and a confined thread cannot start threads itself. A thread
//! started with [`Policy::spawn`] comes from the policy's carrier thread,
//! which attached the seccomp program once: applying the policy there costs
//! its Landlock ruleset and a few instructions, not the whole program.

//! # Fail closed
//!
//! With [`Lockdown::require`] (the default), a component whose full policy
//! the kernel cannot enforce does not start, and the error says what is
//! missing. With [`Lockdown::best_effort`] it starts, and the level enforced
//! is reported in the `LockedDown` event and in `status()`. No mode runs
//! unenforced silently.
//!
//! # What it cannot stop
//!
//! Everything inside the process that does not pass through the confined
//! thread's syscalls: unsafe code writing another component's memory,
//! `process::exit`, a stack overflow, an abort; code a component registers
//! globally (a panic hook, a `tracing` subscriber or logger, work for a
//! global thread pool), which later runs on other, unconfined threads;
//! descriptors the process already holds; `stat` of paths outside the
//! grant. Those need a process boundary; the boundary table in
//! `ARCHITECTURE.md` lists each. Landlock does not restrict operations on
//! descriptors opened before the policy (such as files in the grant), which
//! is why capabilities never hand out their descriptors.

use std::fmt;

#[cfg(all(target_os = "linux", feature = "lockdown"))]
mod bpf;
#[cfg(all(target_os = "linux", feature = "lockdown"))]
mod carrier;
#[cfg(all(target_os = "linux", feature = "lockdown"))]
mod linux;
#[cfg(all(target_os = "linux", feature = "lockdown"))]
mod rules;
#[cfg(all(target_os = "linux", feature = "lockdown"))]
pub use linux::Policy;
#[cfg(all(target_os = "linux", feature = "lockdown"))]
pub(crate) use linux::confinement;
#[cfg(all(target_os = "linux", feature = "process"))]
pub(crate) use linux::{confine_process, confine_zygote, process_program};

#[cfg(not(all(target_os = "linux", feature = "lockdown")))]
mod unsupported;
#[cfg(not(all(target_os = "linux", feature = "lockdown")))]
pub use unsupported::Policy;
#[cfg(not(all(target_os = "linux", feature = "lockdown")))]
pub(crate) use unsupported::confinement;

/// How strictly a child's policy must be enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Every part of the policy, or the component does not start.
    #[default]
    Require,
    /// As much as the kernel can; the level is reported.
    BestEffort,
}

/// A child's request to be confined by the kernel.
///
/// # Examples
///
/// ```
/// # #[cfg(all(target_os = "linux", feature = "lockdown"))] {
/// use compartment::{Child, Context, Lockdown};
///
/// fn worker(_: (), _: &Context) -> Result<(), String> { Ok(()) }
/// let child = Child::new("worker", worker, ()).lockdown(Lockdown::require());
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lockdown {
    pub(crate) mode: Mode,
}

impl Lockdown {
    /// The full policy, or no start (the default).
    pub fn require() -> Self {
        Self {
            mode: Mode::Require,
        }
    }

    /// As much of the policy as the kernel can enforce, reported.
    pub fn best_effort() -> Self {
        Self {
            mode: Mode::BestEffort,
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

/// How much of Landlock's part of the policy the kernel enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LandlockLevel {
    /// All of it.
    Full,
    /// Some of it (an older kernel, in best-effort mode).
    Partial,
    /// None of it.
    None,
}

/// What the kernel enforced for one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Enforcement {
    /// Landlock's part.
    pub landlock: LandlockLevel,
    /// The Landlock ABI used (the highest the kernel offers, up to 7).
    pub landlock_abi: Option<u8>,
    /// Whether signals and abstract Unix sockets are scoped to the component.
    pub scoped: bool,
    /// Whether TCP bind/connect follow the grant's network rules.
    pub tcp_rules: bool,
    /// Whether the seccomp filter is installed.
    pub seccomp: bool,
    /// Whether `no_new_privs` is set.
    pub no_new_privs: bool,
    /// Directory capabilities turned into Landlock rules.
    pub directories: usize,
}

impl Enforcement {
    /// Whether every part is enforced.
    pub fn is_full(&self) -> bool {
        self.landlock == LandlockLevel::Full
            && self.scoped
            && self.tcp_rules
            && self.seccomp
            && self.no_new_privs
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.landlock, self.landlock_abi) {
            (LandlockLevel::None, _) => f.write_str("landlock off")?,
            (level, abi) => write!(
                f,
                "landlock {} (ABI {}), {} director{}",
                if level == LandlockLevel::Full {
                    "full"
                } else {
                    "partial"
                },
                abi.map_or_else(|| "?".to_owned(), |abi| abi.to_string()),
                self.directories,
                if self.directories == 1 { "y" } else { "ies" }
            )?,
        }
        write!(
            f,
            ", tcp rules {}, scopes {}, seccomp {}, no_new_privs {}",
            on(self.tcp_rules),
            on(self.scoped),
            on(self.seccomp),
            on(self.no_new_privs)
        )
    }
}

fn on(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

/// The kernel could not enforce a required policy, or the policy could not
/// be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockdownError {
    /// A required part of the policy is not available on this kernel.
    #[error("the kernel cannot enforce the required policy: {missing}")]
    Unsupported {
        /// What is missing.
        missing: String,
    },
    /// Building or applying the Landlock ruleset failed.
    #[error("landlock: {0}")]
    Landlock(String),
    /// Building or applying the seccomp filter failed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A confined thread's threads could not be started confined.
    #[error("threads: {0}")]
    Threads(String),
}
