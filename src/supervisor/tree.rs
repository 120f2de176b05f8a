//! What every supervisor of one tree shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel as cb;
use parking_lot::Mutex;

use super::control::Control;
use super::dead_letter::DeadLetter;
use crate::caps::Random;
use crate::channel::Sender;
use crate::event::{EventBus, EventKind};
use crate::limits::watchdog::Watchdog;
use crate::revoke::Revoker;
use crate::runtime_clock::RuntimeClock;

/// How to reach a running supervisor by path.
#[derive(Debug, Clone)]
pub(crate) struct SupervisorHandle {
    pub(crate) control: cb::Sender<Control>,
}

/// Shared by every supervisor thread of one tree.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) bus: Arc<EventBus>,
    pub(crate) clock: RuntimeClock,
    pub(crate) random: Random,
    pub(crate) forward_panics: bool,
    pub(crate) backtraces: bool,
    pub(crate) dead_letters: Option<Sender<DeadLetter>>,
    /// Running supervisors by path, for requests addressed by path.
    pub(crate) supervisors: Mutex<HashMap<String, SupervisorHandle>>,
    /// Detached threads in the whole tree.
    pub(crate) leaked: AtomicUsize,
    /// Measures instances with limits.
    pub(crate) watchdog: Watchdog,
    /// Attached to every instance's grant besides its own revoker: revoked
    /// once the tree has ended, so no instance outlives its tree with live
    /// capabilities (one detached after a timeout, or one whose supervisor
    /// died).
    pub(crate) revoker: Revoker,
}

impl Tree {
    pub(crate) fn publish(&self, path: &str, instance: Option<u64>, kind: EventKind) {
        self.bus.publish(self.clock.now(), path, instance, kind);
    }

    pub(crate) fn leaked(&self) -> usize {
        self.leaked.load(Ordering::Relaxed)
    }

    pub(crate) fn count_leak(&self) {
        self.leaked.fetch_add(1, Ordering::Relaxed);
    }
}
