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
//! - `wasm` (feature `wasm`): the same tree running WebAssembly modules
//!   whose only imports are their grant — for plugins that may be hostile;
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
//! | `wasm` | no | the wasm tier (`wasmtime`) |
//! | `testkit` | no | the `testkit` module |
//! | `tracing` | no | lifecycle events as `tracing` events |
//!
//! # From zero to a supervised component
//!
//! A grant, a component, a tree; a call answered, the tree's status, a
//! panic that becomes data, and shutdown. Everything here is in this
//! crate.
//!
//! ```
//! use std::time::Duration;
//!
//! use compartment::caps::{Dir, ReadOnlyDir};
//! use compartment::channel::{self, CallError, Receiver, Request};
//! use compartment::event::EventKind;
//! use compartment::{Child, Context, ContextError, Grant, Supervisor, ambient_authority};
//!
//! // 1. What the component may touch, as a type: read originals, write
//! //    thumbnails, answer requests. Nothing else exists for it.
//! #[derive(Grant)]
//! struct Thumbnailer {
//!     originals: ReadOnlyDir,
//!     thumbs: Dir,
//!     requests: Receiver<Request<String, usize>>,
//! }
//!
//! // 2. The component: a plain function of its grant and its context.
//! fn thumbnailer(g: Thumbnailer, cx: &Context) -> Result<(), ContextError> {
//!     cx.serve(&g.requests, |name| {
//!         let image = g.originals.read(&name).expect("a granted original");
//!         g.thumbs.write(format!("{name}.thumb"), &image[..2]).expect("room for thumbnails");
//!         assert!(g.originals.read("../secret").is_err()); // no way out
//!         image.len()
//!     })
//! }
//!
//! // 3. The granting side (here, main) is the one place with ambient authority.
//! let root = std::env::temp_dir().join(format!("compartment-walkthrough-{}", std::process::id()));
//! std::fs::create_dir_all(root.join("originals"))?;
//! std::fs::create_dir_all(root.join("thumbs"))?;
//! let data = Dir::open_ambient_dir(&root, ambient_authority())?;
//! data.write("originals/cat.jpg", b"meow")?;
//! let (client, requests) = channel::bounded(16)?;
//! let grant = Thumbnailer {
//!     originals: data.open_dir("originals")?.into_read_only(),
//!     thumbs: data.open_dir("thumbs")?,
//!     requests,
//! };
//!
//! // 4. A tree: the component restarts on failure, with its grant re-issued.
//! let supervisor = Supervisor::new("app").child(Child::new("thumbnailer", thumbnailer, grant));
//! let events = supervisor.events(64);
//! let system = supervisor.start()?;
//!
//! // 5. Request/reply.
//! assert_eq!(client.call("cat.jpg".to_owned())?, 4);
//! assert!(data.exists("thumbs/cat.jpg.thumb"));
//!
//! // 6. A crash is data: the caller gets the panic, the tree an event, and
//! //    the restarted instance serves the next call.
//! assert!(matches!(client.call("missing.jpg".to_owned()), Err(CallError::Crashed(_))));
//! let (faulted, _) = events.wait_for(Duration::from_secs(30), |e| {
//!     matches!(e.kind, EventKind::Faulted { .. })
//! });
//! assert!(faulted.is_some());
//! assert_eq!(client.call("cat.jpg".to_owned())?, 4);
//!
//! // 7. Who holds what, and how each child is doing.
//! println!("{}", system.capability_map().text());
//! let status = system.status();
//! assert_eq!(status.find("app/thumbnailer").map(|child| child.restarts), Some(1));
//!
//! // 8. Shutdown: children stop in reverse start order.
//! system.shutdown();
//! std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Coming from cap-std, crossbeam or kameo
//!
//! - **cap-std.** [`caps::Dir`] and [`caps::ReadOnlyDir`] wrap cap-std's
//!   `Dir` with the same method names (`open_ambient_dir`, `open_with`,
//!   `create_dir_all`, `read_dir`, `symlink` with the target first) and add
//!   what a grant needs: read-only attenuation that holds at the type
//!   level, revocation, no writes through a file that other hard links
//!   name, no set-id modes, and an inventory entry. `Dir::from_cap_std` takes a cap-std directory you
//!   already hold. The differences are tested and named, case by case, in
//!   `tests/capstd_parity.rs`.
//! - **crossbeam.** [`channel::bounded`] is crossbeam's `bounded`
//!   (capacity 0 is a rendezvous) with no unbounded variant; `send`,
//!   `try_send`, `recv`, `recv_timeout`, `iter` and `try_iter` behave as
//!   crossbeam's, and every send error hands the message back. Inside a
//!   component, receive through the [`Context`] (`cx.recv`, `cx.serve`):
//!   those wake on cancellation and track the message in flight, so a
//!   crash redelivers it. Request/reply ([`channel::Request`],
//!   `Sender::call`) is built in.
//! - **kameo** (or another actor library). A component is a function, not
//!   an actor type: its state is local variables, its mailbox any
//!   receivers in its grant. Supervision follows OTP — restart types,
//!   one-for-one, one-for-all and rest-for-one, intensity, backoff,
//!   significant children — and a restart re-issues the grant, so a
//!   restarted component holds fresh handles. Components run on threads
//!   (or processes, or wasm instances), not on an async runtime.
//!
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
// `unsafe` is denied everywhere; four modules allow it, with a `SAFETY:`
// comment on every block: `alloc` for its `GlobalAlloc` implementation,
// `futex_hash` for the one `prctl` option without a safe binding,
// `process::sys` for creating and leaving processes, and
// `process::shared_memory` for mapping a bridge's ring.
#![deny(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alloc;
mod capability;
pub mod caps;
mod ceiling;
pub mod channel;
mod component;
mod context;
pub mod event;
mod fault;
mod futex_hash;
mod grant;
pub mod limits;
pub mod lockdown;
mod mailbox;
#[cfg(all(feature = "process", target_os = "linux"))]
pub mod process;
mod revoke;
mod runtime_clock;
mod signal;
pub mod supervisor;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod threads;
#[cfg(all(feature = "wasm", target_os = "linux"))]
pub mod wasm;

pub use component::{Backoff, BoxError, Child, Restart, RestartMode};
pub use context::{Cancelled, Context, ContextError, ContextSendError, Select, TrackedMessage};
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
