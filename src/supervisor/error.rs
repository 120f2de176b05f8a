//! Errors of building, starting and controlling a supervision tree.

use crate::fault::Fault;

/// A supervisor or child specification is invalid; found before anything
/// starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A name is empty or contains `/`, `#` or a control character (names
    /// form paths like `app/workers/resizer#3`).
    #[error("`{name}` is not a valid name: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two children of one supervisor have the same name.
    #[error("supervisor `{supervisor}` has two children named `{name}`")]
    DuplicateName {
        /// The supervisor's path.
        supervisor: String,
        /// The repeated name.
        name: String,
    },
    /// The intensity period is zero, so no window could ever hold a restart.
    #[error("supervisor `{supervisor}` has a zero intensity period")]
    ZeroPeriod {
        /// The supervisor's path.
        supervisor: String,
    },
    /// A permanent child cannot be significant: it never ends on its own.
    #[error(
        "`{child}` is significant and permanent; a significant child must be transient or temporary"
    )]
    SignificantPermanent {
        /// The child's path.
        child: String,
    },
    /// A significant child under a supervisor whose auto-shutdown is `Never`
    /// would have no effect; OTP rejects it, and so does this crate.
    #[error("`{child}` is significant, but its supervisor's auto-shutdown is `Never`")]
    SignificantWithoutAutoShutdown {
        /// The child's path.
        child: String,
    },
    /// A pool's members come and go dynamically; auto-shutdown on them is
    /// refused, as OTP refuses it for `simple_one_for_one`.
    #[error("pool `{supervisor}` cannot have an auto-shutdown policy")]
    AutoShutdownInPool {
        /// The pool's path.
        supervisor: String,
    },
    /// A backoff setting is out of range.
    #[error("`{child}` has an invalid backoff: {reason}")]
    InvalidBackoff {
        /// The child's path.
        child: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A resource limit is out of range.
    #[error("`{child}` has invalid limits: {reason}")]
    InvalidLimits {
        /// The child's path.
        child: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A poison threshold of zero would dead-letter messages that never
    /// crashed anything.
    #[error("`{child}` has a poison threshold of zero")]
    ZeroPoisonThreshold {
        /// The child's path.
        child: String,
    },
}

/// A supervision tree, or a child added to it, did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The specification is invalid.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// The program is built with `panic = "abort"`: a panicking component
    /// would take the whole process down, so supervision cannot work.
    #[error(
        "supervision needs panics to unwind, but this program is built with panic = \"abort\"; set panic = \"unwind\" in the Cargo profile"
    )]
    PanicAbort,
    /// A child failed to start; the children started before it were stopped
    /// again, in reverse order.
    #[error("child `{}` failed to start", .fault.path)]
    ChildFailed {
        /// Why.
        fault: Box<Fault>,
    },
    /// A supervisor thread could not be spawned.
    #[error("could not spawn the thread of supervisor `{path}`: {source}")]
    Spawn {
        /// The supervisor's path.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A supervisor thread would pass one of the process's ceilings.
    #[error("cannot start supervisor `{path}`: {ceiling}")]
    Ceiling {
        /// The supervisor's path.
        path: String,
        /// Which ceiling, with the figures seen.
        ceiling: super::Ceiling,
    },
}

/// A runtime request to a running tree failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No running supervisor or child has this path.
    #[error("nothing running at `{path}`")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The path names a child, where a supervisor was needed.
    #[error("`{path}` is not a supervisor")]
    NotASupervisor {
        /// The path.
        path: String,
    },
    /// The supervisor is not a pool.
    #[error("`{path}` is not a pool")]
    NotAPool {
        /// The path.
        path: String,
    },
    /// The supervisor stopped before answering.
    #[error("supervisor `{path}` is not running")]
    Stopped {
        /// The supervisor's path.
        path: String,
    },
    /// The child could not be added.
    #[error(transparent)]
    Start(#[from] StartError),
}
