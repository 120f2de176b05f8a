//! A supervisor's child slot: the specification it restarts from, the
//! instance it runs now, and what outlives instances (mailbox, counters).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel as cb;

use super::control::Control;
use super::launch::Parked;
use super::plan::{AsMember, Member};
use super::relaunch::Relaunch;
use super::spec::{Strategy, Supervisor};
use super::status::StatusBoard;
use crate::caps::Capability;
use crate::component::{Child, ChildSettings};
use crate::fault::Fault;
use crate::limits::Meter;
use crate::lockdown::Enforcement;
use crate::mailbox::{InFlightCell, Mailbox};
use crate::revoke::Revoker;
use crate::signal::Signal;
use crate::threads::ThreadGroup;

/// A child's identity within its supervisor: stable across restarts and
/// across other children being added or removed (unlike its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ChildId(pub(crate) u64);

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a running instance is, seen from its supervisor.
pub(crate) enum Handle {
    Worker {
        cancel: Arc<Signal>,
        revoker: Revoker,
        /// The message it is handling, settled by whoever closes the cell.
        in_flight: Arc<InFlightCell>,
        /// The threads it started through its context.
        threads: Arc<ThreadGroup>,
        /// What the kernel enforces for this instance, when locked down.
        enforcement: Option<Enforcement>,
        /// Its resource measurements, when it has limits.
        meter: Option<Arc<Meter>>,
        /// For in-place restarts: where the next instance is handed to this
        /// thread.
        resume: Option<cb::Sender<Box<super::instance::InstanceRun>>>,
    },
    Supervisor {
        control: cb::Sender<Control>,
    },
}

impl Handle {
    /// Gives up an instance nobody supervises (it will not run, or its
    /// report came too late): its grant revoked, it cancelled, its meter
    /// finished.
    pub(crate) fn abandon(&self) {
        self.ask_to_stop();
        if let Handle::Worker { revoker, meter, .. } = self {
            revoker.revoke();
            if let Some(meter) = meter {
                meter.finish();
            }
        }
    }

    /// Asks the instance to stop: cancels a worker, sends a nested
    /// supervisor `Shutdown`.
    pub(crate) fn ask_to_stop(&self) {
        match self {
            Handle::Worker { cancel, .. } => cancel.raise(),
            Handle::Supervisor { control } => {
                let _ = control.send(Control::Shutdown);
            }
        }
    }
}

/// The life of a slot. Only the supervisor's thread changes it.
///
/// | state | entered when | left when |
/// |---|---|---|
/// | `Stopped` | created; its instance ended and is not restarted; stopped | started |
/// | `Running` | an instance started | the instance ends, or is stopped or detached |
/// | `Restarting` | chosen for a restart set | started (or the start fails) |
/// | `BackingOff` | chosen for a restart set that waits for a backoff | the timer fires |
pub(crate) enum SlotState {
    Running {
        instance: u64,
        handle: Handle,
        started_at: Instant,
    },
    Restarting,
    BackingOff,
    Stopped,
}

/// What a slot starts instances from.
pub(crate) enum Spec {
    Worker(Child),
    Supervisor {
        /// `None` while the nested supervisor's thread owns it.
        spec: Option<Box<Supervisor>>,
        settings: ChildSettings,
        strategy: Strategy,
        pool: bool,
        board: Option<Arc<StatusBoard>>,
    },
}

pub(crate) struct Slot {
    pub(crate) id: ChildId,
    pub(crate) path: Arc<str>,
    pub(crate) spec: Spec,
    pub(crate) state: SlotState,
    pub(crate) instance: u64,
    pub(crate) restarts: u64,
    pub(crate) failures_in_row: u32,
    pub(crate) last_fault: Option<Arc<Fault>>,
    pub(crate) leaked: usize,
    /// What the kernel enforces for the current (or last) instance.
    pub(crate) enforcement: Option<Enforcement>,
    pub(crate) mailbox: Arc<Mailbox>,
    /// The grant's capabilities, or why they could not be listed (its
    /// `visit` panicked: the child cannot start).
    pub(crate) capabilities: Result<Arc<[(String, Capability)]>, String>,
    /// An in-place child's thread, waiting for its next instance.
    pub(crate) parked: Option<Parked>,
    /// Its permit to restart itself, once it has been eligible.
    pub(crate) relaunch: Option<Arc<Relaunch>>,
    /// Part of the specification (restored when this supervisor restarts),
    /// as opposed to added at run time.
    pub(crate) initial: bool,
    /// An initial child that ended for good (temporary) or was removed: kept
    /// for the specification, invisible otherwise.
    pub(crate) retired: bool,
}

impl Slot {
    /// Whether this child's instances run in child processes (revoking one
    /// kills it).
    pub(crate) fn runs_in_process(&self) -> bool {
        match &self.spec {
            Spec::Worker(child) => child.factory.runs_in_process(),
            Spec::Supervisor { .. } => false,
        }
    }

    pub(crate) fn settings(&self) -> &ChildSettings {
        match &self.spec {
            Spec::Worker(child) => &child.settings,
            Spec::Supervisor { settings, .. } => settings,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        matches!(self.state, SlotState::Running { .. })
    }

    /// Whether the child is running or will run again on its own.
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self.state,
            SlotState::Running { .. } | SlotState::Restarting | SlotState::BackingOff
        )
    }

    /// Whether `instance` is the one running now.
    pub(crate) fn runs(&self, instance: u64) -> bool {
        matches!(self.state, SlotState::Running { instance: running, .. } if running == instance)
    }
}

impl AsMember for Slot {
    /// The slot as the restart planner sees it.
    fn member(&self) -> Member {
        let settings = self.settings();
        Member {
            restart: settings.restart,
            significant: settings.significant,
            running: self.is_running(),
            active: self.is_active(),
            retired: self.retired,
        }
    }
}
