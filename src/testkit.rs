//! Unit tests of permission boundaries (feature `testkit`).
//!
//! Proving that a component can do what it needs and nothing more takes a
//! few lines:
//!
//! - [`Sandbox`] builds a temporary tree — files, nested directories,
//!   symlinks inside and to the outside, dangling links, chains and loops,
//!   hard links, a fifo — with a [`Canary`] outside whose content, mtime and
//!   surroundings prove whether anything escaped;
//! - [`Harness`] runs one component with a given grant inside a test,
//!   feeding its mailbox and reporting its events and faults;
//! - [`assert_denied!`](crate::assert_denied) and
//!   [`assert_allowed!`](crate::assert_allowed) check single operations;
//! - [`probe()`] runs the escape battery against every capability a grant
//!   holds and returns a [`Report`] that prints as a table ending in
//!   `N attempts, M escaped`; with the `process` feature, `probe_process`
//!   runs it from inside a process child, adding the attempts only a
//!   process boundary stops;
//! - [`ops`] drives random sequences of path operations (for fuzzing and
//!   property tests).
//!
//! # A boundary test
//!
//! ```
//! use compartment::caps::{Dir, ReadOnlyDir};
//! use compartment::testkit::{Sandbox, probe};
//! use compartment::{Grant, ambient_authority, assert_allowed, assert_denied};
//!
//! #[derive(Grant)]
//! struct Thumbnails { originals: ReadOnlyDir, thumbs: Dir }
//!
//! let sandbox = Sandbox::standard(ambient_authority())?;
//! let root = sandbox.dir()?;
//! let grant = Thumbnails {
//!     originals: root.open_dir("docs")?.into_read_only(),
//!     thumbs: root.open_dir("docs/deep")?,
//! };
//! assert_allowed!(grant.originals.read("latest"));
//! assert_denied!(grant.originals.read("../links/abs-canary"));
//! assert_denied!(grant.thumbs.read("../../notes.txt"));
//! probe(&grant).assert_contained();
//! sandbox.canary().check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/boundary_test.rs` adds running the component itself with a
//! [`Harness`].
//!
//! # Fuzzing
//!
//! `fuzz/` holds a cargo-fuzz target over [`ops`]; on the stable toolchain:
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run path_ops -- -runs=100000 -seed=1
//! ```

mod assert;
mod harness;
mod host;
pub mod ops;
mod probe;
#[cfg(all(feature = "process", target_os = "linux"))]
mod process_main;
mod sandbox;

pub use assert::Refusal;
#[doc(hidden)]
pub use assert::describe_failure;
pub use harness::{Harness, Run, RunExit};
pub use host::Host;
pub use probe::{
    Attempt, Expected, Outcome, ProbeOptions, Report, probe, probe_hosted, probe_with,
};
#[cfg(all(feature = "process", target_os = "linux"))]
pub use probe::{ProbeFailed, ProbeGrant, probe_entry, probe_process, probe_process_with};
#[cfg(all(feature = "process", target_os = "linux"))]
pub use process_main::{ProcessTest, process_main};
pub use sandbox::{CANARY_CONTENT, Canary, CanaryChanged, Sandbox, SandboxBuilder, SandboxError};
