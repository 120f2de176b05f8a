//! Supervision trees with Erlang/OTP semantics.
//!
//! A [`Supervisor`] starts its children in order, each instance on its own
//! thread named after its path and instance (`app/workers/resizer#3`),
//! catches their panics, and restarts them according to their [`Restart`]
//! type, its [`Strategy`] and its restart intensity. Supervisors nest; one
//! that exceeds its intensity stops its children and fails, and its parent
//! treats that as a fault of its own child.
//!
//! # Honest limits
//!
//! - **A thread cannot be killed.** Stopping is cooperative: an instance is
//!   cancelled (its [`Context`](crate::Context) helpers wake up) and given
//!   its shutdown timeout. One that ignores it is reported as
//!   `ShutdownTimedOut`, its grant is revoked — every capability it holds
//!   fails from then on — and its thread is detached and counted in
//!   [`Status::leaked_threads`]. The rest of the tree shuts down regardless.
//! - **`panic = "abort"` cannot be supervised**, so [`Supervisor::start`]
//!   refuses it with [`StartError::PanicAbort`].
//! - **A panic while a panic unwinds aborts the process.** If a component
//!   panics and its grant's `Drop` panics too during the unwinding, Rust
//!   aborts; only a process boundary contains that. A panicking `Drop`
//!   after a normal return is caught like any other panic.
//!
//! [`Restart`]: crate::Restart

mod capability_map;
mod child_path;
pub(crate) mod control;
pub(crate) mod dead_letter;
mod error;
mod instance;
mod intensity;
mod launch;
mod node;
mod plan;
mod relaunch;
mod slot;
mod spec;
mod standby;
mod status;
mod system;
mod tree;

pub use crate::ceiling::Ceiling;
pub use capability_map::CapabilityMap;
pub use child_path::ChildPath;
pub use dead_letter::DeadLetter;
pub use error::{ControlError, SpecError, StartError};
pub use spec::{AutoShutdown, Escalation, Strategy, Supervisor};
pub use status::{ChildState, ChildStatus, NodeKind, ProcessUsage, Status};
pub use system::{System, SystemExit};
