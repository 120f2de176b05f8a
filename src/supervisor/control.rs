//! The messages a supervisor's thread receives.

use crossbeam_channel as cb;

use super::dead_letter::DeadLetter;
use super::error::{ControlError, StartError};
use super::plan::Ending;
use super::relaunch::Successor;
use super::slot::ChildId;
use super::spec::{Node, Supervisor};
use crate::fault::Fault;

/// How an instance, or a nested supervisor, ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// It returned `Ok` on its own (a supervisor: it shut itself down).
    Normal,
    /// It stopped because it was asked to.
    Shutdown,
    /// It failed.
    Failed(Fault),
    /// A nested supervisor exceeded its restart intensity; with
    /// [`Escalation::Shutdown`](super::Escalation::Shutdown) its parent
    /// treats this as a shutdown (OTP), and the fault is kept for status.
    GaveUp(Fault),
}

impl Outcome {
    /// How the restart planner sees this outcome.
    pub(crate) fn ending(&self) -> Ending {
        match self {
            Outcome::Normal => Ending::Normal,
            Outcome::Shutdown | Outcome::GaveUp(_) => Ending::Shutdown,
            Outcome::Failed(_) => Ending::Failed,
        }
    }

    /// The fault, for a failure or a give-up.
    pub(crate) fn fault(&self) -> Option<&Fault> {
        match self {
            Outcome::Failed(fault) | Outcome::GaveUp(fault) => Some(fault),
            Outcome::Normal | Outcome::Shutdown => None,
        }
    }
}

/// What an instance thread reports when it ends.
#[derive(Debug)]
pub(crate) struct ExitReport {
    pub(crate) outcome: Outcome,
    pub(crate) dead_letter: Option<DeadLetter>,
    /// A nested supervisor's specification, handed back so its parent can
    /// start it again (`None` for workers, and for a supervisor whose
    /// thread died).
    pub(crate) spec: Option<Box<Supervisor>>,
    /// The successor the instance started itself (see `relaunch`), if it
    /// did.
    pub(crate) successor: Option<Successor>,
}

/// A request to a supervisor's thread. Every request carries its own reply
/// channel; instance threads report their exit.
#[derive(Debug)]
pub(crate) enum Control {
    /// An instance (or nested supervisor) of child `slot` ended.
    Exited {
        slot: ChildId,
        instance: u64,
        /// Boxed: the control channel allocates its slots in blocks, each
        /// at the size of the largest message.
        report: Box<ExitReport>,
    },
    /// The watchdog cancelled this instance for going over a budget: wait
    /// for it within its shutdown timeout, or treat it as a runaway.
    OverBudget { slot: ChildId, instance: u64 },
    /// Stop every child in reverse start order, then end.
    Shutdown,
    /// Start a new child at the end of the child list.
    Add {
        node: Box<Node>,
        reply: cb::Sender<Result<(), ControlError>>,
    },
    /// Stop a child and forget it.
    Remove {
        name: String,
        reply: cb::Sender<Result<(), ControlError>>,
    },
    /// Start one more member from the pool's template.
    AddPoolMember {
        reply: cb::Sender<Result<String, ControlError>>,
    },
}

/// What a supervisor thread reports to whoever started it.
pub(crate) type StartReply = cb::Sender<Result<(), StartError>>;
