//! `compartment`: isolated components in one process.
//!
//! A component is a plain function of what it was granted. It receives
//! capability handles — directories with rights, bounded channel endpoints,
//! clocks, randomness, an environment snapshot, a network allowance — and
//! nothing else. Its grant is a type, so what a component may do is visible
//! in its signature and provable in a unit test.
//!
//! This crate provides:
//!
//! - [`caps`]: the capability types and their attenuations;
//! - [`channel`]: bounded channels whose endpoints are capabilities;
//! - [`Grant`] (and `#[derive(Grant)]`): the contract for everything a
//!   component may hold — re-issued for every start, enumerable, revocable;
//! - [`Revoker`]: taking authority back from a holder you cannot stop;
//! - [`Supervisor`], [`Child`], [`Context`]: supervision trees with
//!   Erlang/OTP semantics, where every fault is data ([`Fault`],
//!   [`event`]) and a restart re-issues the grant;
//! - [`supervisor::CapabilityMap`]: who holds what, as Mermaid, DOT or text;
//! - [`lockdown`] (feature `lockdown`, Linux): the grant as a Landlock +
//!   seccomp policy for the component's own thread;
//! - [`limits`] and [`alloc`]: CPU budgets, deadlines and memory quotas;
//! - [`threads`]: threads a component starts through its context, counted
//!   toward its limits and stopped with it;
//! - `process` (feature `process`, Linux): the same components, with the
//!   same grants and supervision, in confined child processes — for code
//!   you do not trust;
//! - `testkit` (feature `testkit`): sandboxes, a harness, and the escape
//!   battery for unit tests of permission boundaries.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | `#[derive(Grant)]` |
//! | `lockdown` | no | Landlock + seccomp (Linux; `landlock`, `seccompiler`) |
//! | `process` | no | the process tier (Linux; implies `lockdown`; `serde`, `postcard`) |
//! | `testkit` | no | the `testkit` module |
//! | `tracing` | no | lifecycle events as `tracing` events |
//!
//! # Example
//!
//! ```
//! use compartment::caps::{Dir, ReadOnlyDir};
//! use compartment::channel::{self, Sender};
//! use compartment::Grant;
//!
//! #[derive(Grant)]
//! struct Thumbnailer {
//!     originals: ReadOnlyDir, // may read originals, nothing else
//!     thumbs: Dir,            // may write under thumbs/ only
//!     done: Sender<String>,
//! }
//!
//! // The granting side (main) is the only place with ambient authority.
//! # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
//! # let root = tmp.try_clone()?;
//! let data = Dir::from_cap_std(root);
//! data.create_dir_all("originals")?;
//! data.create_dir_all("thumbs")?;
//! data.write("originals/cat.jpg", b"meow")?;
//!
//! let (done, finished) = channel::bounded(16)?;
//! let grant = Thumbnailer {
//!     originals: data.open_dir("originals")?.into_read_only(),
//!     thumbs: data.open_dir("thumbs")?,
//!     done,
//! };
//!
//! fn thumbnail(g: Thumbnailer) -> Result<(), Box<dyn std::error::Error>> {
//!     let image = g.originals.read("cat.jpg")?;
//!     g.thumbs.write("cat.png", &image[..2])?;
//!     assert!(g.thumbs.read("../originals/cat.jpg").is_err()); // no way out
//!     g.done.send("cat".to_owned())?;
//!     Ok(())
//! }
//!
//! thumbnail(grant.reissue()?)?;
//! assert_eq!(finished.recv()?, "cat");
//! println!("{}", grant.inventory());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![doc = concat!(
    "# The lint list\n\n",
    "Types keep honest code inside its grant; a lint keeps ambient calls out ",
    "of component code that compiles anyway. This is the `clippy.toml` the ",
    "crate holds itself to: copy it into your crate, and give each exception ",
    "(the granting side in `main`) an ",
    "`#[allow(clippy::disallowed_methods, reason = \"...\")]` with its reason.\n\n",
    "```toml\n",
    include_str!("../clippy.toml"),
    "```\n",
)]
// `unsafe` is denied everywhere; two modules allow it, with a `SAFETY:`
// comment on every block: `alloc` for its `GlobalAlloc` implementation, and
// `process::sys` for creating and leaving processes.
#![deny(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alloc;
pub mod caps;
mod ceiling;
pub mod channel;
mod component;
mod context;
pub mod event;
mod fault;
mod grant;
pub mod limits;
pub mod lockdown;
mod mailbox;
#[cfg(all(feature = "process", target_os = "linux"))]
pub mod process;
mod revoke;
mod signal;
pub mod supervisor;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod threads;
#[cfg(all(feature = "wasm", target_os = "linux"))]
pub mod wasm;

pub use component::{Backoff, BoxError, Child, Restart, RestartMode};
pub use context::{Cancelled, Context, ContextError, ContextSendError, TrackedMessage};
pub use fault::{Fault, FaultKind, InFlight, PanicLocation, ProcessExit};
pub use grant::{Descriptor, Grant, Held, Inventory, ReissueError, Segment};
pub use limits::{Budget, Limits, Usage};
pub use lockdown::Lockdown;
pub use revoke::{Revoked, Revoker};
pub use supervisor::{
    AutoShutdown, ChildPath, ControlError, SpecError, StartError, Strategy, Supervisor, System,
    SystemExit,
};
pub use threads::{Cancellation, InstanceThread, SpawnError, ThreadPanicked};

/// Derives [`Grant`] for a struct or enum whose fields all implement it.
///
/// A field holding plain data of a type without a `Grant` implementation
/// can be marked `#[grant(data)]`: it is re-issued by `Clone` and reported
/// in the inventory as [`Capability::Data`](caps::Capability::Data), so audits
/// see every such opt-out.
#[cfg(feature = "derive")]
pub use compartment_derive::Grant;

/// cap-std's token for ambient authority, and the function that produces it:
/// the granting side's only way to turn the outside world into capabilities.
pub use cap_std::{AmbientAuthority, ambient_authority};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
