//! The process tier (Linux, feature `process`): a component in a confined
//! child process, under the same tree, with the same grant type.
//!
//! A thread cannot stand against code that calls `abort`, overflows its
//! stack, writes memory through `unsafe` or installs a global hook: each
//! takes or reaches the whole process. A process child can: its faults end
//! only its own process, and the kernel confines it to its grant.
//!
//! # Three steps
//!
//! 1. Name each entry that may run in a process with [`entry!`](crate::entry)
//!    and pass them to [`init`] as the **first line of `main`**, while the
//!    program has one thread: it forks a small *zygote* that later starts
//!    every process child, and in a child it runs the entry and never
//!    returns.
//! 2. Make the grant [`Portable`] (`#[derive(Grant, Portable)]`).
//! 3. Specify the child with [`Child::process`](crate::Child::process)
//!    instead of `Child::new`. Restart types, strategies, intensity, backoff,
//!    poison threshold, events and `status()` work as for threads.
//!
//! ```no_run
//! use compartment::caps::ReadOnlyDir;
//! use compartment::process::Portable;
//! use compartment::{Child, Context, Grant, Supervisor, entry};
//!
//! #[derive(Grant, Portable)]
//! struct PluginGrant {
//!     assets: ReadOnlyDir,
//! }
//!
//! fn plugin(grant: PluginGrant, _cx: &Context) -> Result<(), compartment::BoxError> {
//!     let _manifest = grant.assets.read_to_string("manifest.toml")?;
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     compartment::process::init(&[&entry!(plugin)])?;
//!     let assets = ReadOnlyDir::open_ambient_dir("assets", compartment::ambient_authority())?;
//!     let system = Supervisor::new("host")
//!         .child(Child::process("plugin", entry!(plugin), PluginGrant { assets }))
//!         .start()?;
//!     system.shutdown();
//!     Ok(())
//! }
//! ```
//!
//! # The confinement
//!
//! Each child is created by the zygote with `clone3(CLONE_PARENT |
//! CLONE_PIDFD)`, so the supervisor's process is its parent and holds a
//! pidfd to wait on and kill it without races. The zygote keeps one child
//! made ahead of the next start — in its namespaces, its ids mapped, its
//! component's process forked, holding nothing of any request — and hands
//! it the next request, so a start waits for none of that (a program that
//! uses the tier has those two processes idle). Where the kernel (or a
//! container's filter) refuses that, or for a child specified with
//! [`Spawning::Reexec`], the supervisor runs its own program again instead,
//! and `init` in the new process picks up the child's request. Before the
//! entry runs, the child:
//!
//! - asks to be killed when the supervisor's process ends;
//! - enters new user, mount, pid, ipc, uts and network namespaces — a
//!   network namespace of its own even when its grant holds a
//!   [`Net`](crate::caps::Net), whose sockets a broker on the supervisor's
//!   side creates under the same rules and passes over;
//! - replaces its root with an empty read-only tmpfs (`pivot_root`), so no
//!   outside path exists for it;
//! - sees no environment variable: the zygote (and a program started
//!   again) clears the program's before any child starts, so an
//!   [`Env`](crate::caps::Env) in the grant is the only way to one;
//! - keeps no descriptor but its grant's (directories and files passed over
//!   `SCM_RIGHTS`, one socket per bridged channel endpoint and, for a
//!   sender, the sealed shared memory of its ring) and its control socket;
//!   its standard output and error go to a pipe whose tail ends up in its
//!   faults;
//! - sets resource limits from its [`Limits`](crate::Limits): CPU seconds
//!   (`RLIMIT_CPU`), memory (`RLIMIT_DATA`), open files, no core dumps;
//! - applies Landlock from its grant's inventory and a seccomp filter that
//!   lets it start threads but kills it for a new process, a program or a
//!   call on the kernel and host.
//!
//! With [`Lockdown::require`](crate::Lockdown::require) (the default) a child
//! whose confinement is incomplete does not run its entry, and its start
//! fails naming what is missing; with
//! [`Lockdown::best_effort`](crate::Lockdown::best_effort) it runs with what
//! the host offers.
//!
//! # Faults
//!
//! A returned error or a panic is reported by the child as it would be by a
//! thread (message, location, the message in flight). Anything else is a
//! [`FaultKind::Died`](crate::FaultKind::Died) with the exit code or signal
//! and the tail of the child's output, or — for `SIGXCPU` after its CPU
//! seconds, or an allocation refused at its memory limit — a
//! [`FaultKind::BudgetExceeded`](crate::FaultKind::BudgetExceeded).
//! A child that ignores shutdown is killed, never left running. So is one
//! that writes to its descriptors what its side of the runtime never
//! sends (a forged answer, a frame of no known kind or past the size limit,
//! a position or length in a sender's ring that no writer publishes, a
//! report that does not decode): it dies with
//! [`ProcessExit::Killed`](crate::ProcessExit::Killed), whose reason names
//! the socket and what came, and nothing it sent is kept.
//!
//! # What stays with threads
//!
//! In-place restarts keep the supervisor-side thread only; the accounting
//! allocator's quotas, manual clocks and seeded random sources do not cross
//! (a child's memory is bounded by `RLIMIT_DATA` instead).
//!
//! Request/reply channels cross in both directions: a child can serve
//! `Request`s made on the supervisor's side, and call servers there. A
//! handler that panics holding a request answers its caller with the panic
//! (`CallError::Crashed`), across the boundary in either direction; so
//! does a child that dies holding a request without unwinding (an abort,
//! an exit, a signal, a kill), with how it died ("its process child ended:
//! killed by SIGABRT (6)").

mod bridge;
mod broker;
mod calls;
mod child;
mod entry;
mod feed;
mod instance;
mod outbox;
mod portable;
mod reexec;
mod ring;
mod shared_memory;
mod sys;
mod usage;
mod wire;
mod zygote;

pub use entry::{Entry, Registered};
pub use portable::{PackError, Packing, Portable, Unpacking};
pub use reexec::Spawning;
pub use zygote::{InitError, init};

pub(crate) use bridge::Inbox;
pub(crate) use broker::Broker;
pub(crate) use calls::BridgedReply;
#[cfg_attr(
    not(feature = "testkit"),
    allow(unused_imports, reason = "read by the testkit")
)]
pub(crate) use child::in_child;
pub(crate) use feed::Feeds;
pub(crate) use instance::ProcessWorker;
pub(crate) use outbox::Outbox;
pub(crate) use usage::{RunningProcess, usage};
pub(crate) use wire::PATIENCE;

#[doc(hidden)]
pub use child::Launch;

/// The serde the derived [`Portable`] names for `#[grant(data)]` fields.
#[doc(hidden)]
pub use serde as __serde;

/// Derives [`Portable`] for a struct or enum whose fields are all
/// [`Portable`]; fields marked `#[grant(data)]` are copied with serde.
#[cfg(feature = "derive")]
pub use compartment_derive::Portable;
