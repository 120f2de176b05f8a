//! A one-way, many-waiter flag that blocking operations can select on.
//!
//! Revocation and cancellation are both "raised once, seen by everyone, wakes
//! whoever is blocked". A raised [`Signal`] drops the only sender of a private
//! channel, so every `crossbeam_channel::Select` that includes
//! [`Signal::watch`] wakes at once with a disconnection, without polling.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// The uninhabited message of a watch channel: nothing is ever sent on it,
/// it only disconnects.
#[derive(Debug)]
pub(crate) enum Never {}

/// A flag raised at most once.
#[derive(Debug)]
pub(crate) struct Signal {
    raised: AtomicBool,
    /// Dropped (set to `None`) when raised; that disconnects `watch`.
    waker: Mutex<Option<Sender<Never>>>,
    watch: Receiver<Never>,
}

impl Signal {
    pub(crate) fn new() -> Self {
        let (waker, watch) = crossbeam_channel::bounded(1);
        Self {
            raised: AtomicBool::new(false),
            waker: Mutex::new(Some(waker)),
            watch,
        }
    }

    /// Raises the flag and wakes every waiter. Idempotent.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        drop(self.waker.lock().take());
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// A receiver that becomes disconnected when the flag is raised; use it in
    /// a `Select` next to the operation that should be interrupted.
    pub(crate) fn watch(&self) -> &Receiver<Never> {
        &self.watch
    }
}

impl Default for Signal {
    fn default() -> Self {
        Self::new()
    }
}
