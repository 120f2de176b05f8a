//! Standby threads: a fresh-thread restart that wakes a thread instead of
//! spawning one.
//!
//! A fresh-thread restart decided on the failing thread (see `relaunch`)
//! used to spawn its successor's thread there and then, and a spawn is the
//! larger part of such a restart. Once a child has restarted that way, the
//! thread that started the successor also spawns a *standby* for the
//! restart after it, off the restart's path, while the successor runs. The
//! standby parks until its instance is handed over (the restart claimed
//! it), which it runs; or until it has waited [`STANDBY_IDLE`], or its
//! standby is dropped (the supervisor took the restart permit back, or a
//! newer standby replaced it), and it ends.
//!
//! The thread never ran an instance before the one it is named for, so a
//! fresh-thread successor still starts on a new thread with fresh
//! thread-locals; it inherits what a spawned successor would, being
//! spawned from the same kind of thread. A claim and a retirement race on
//! one atomic state, so an instance handed over is never left behind by a
//! standby that just gave up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crossbeam_channel as cb;

use super::instance::InstanceRun;
use super::launch::instance_thread;
use crate::ceiling;

/// How long a standby thread waits for the restart it was spawned for
/// before it ends: in a burst of restarts each finds one ready, and a
/// child that crashed once does not keep a thread for it.
const STANDBY_IDLE: Duration = Duration::from_secs(1);

/// A standby's states: whether a restart claimed it or it retired,
/// whichever came first.
const WAITING: u8 = 0;
const CLAIMED: u8 = 1;
const RETIRED: u8 = 2;

/// An instance handed to a standby, and the gate it waits for before it
/// runs (opened once the restart is reported, as for a spawned successor).
type Handover = (Box<InstanceRun>, cb::Receiver<()>);

/// A thread spawned ahead of a fresh-thread restart, parked until the
/// instance it is named for is handed over. Dropping an unclaimed standby
/// ends its thread.
pub(crate) struct Standby {
    /// The instance it is named for, and the only one it runs.
    instance: u64,
    state: Arc<AtomicU8>,
    hand_over: cb::Sender<Handover>,
}

impl Standby {
    /// Spawns a thread to stand by for `instance` of the child at `path`;
    /// `None` when the process's ceilings or the kernel refuse a thread,
    /// and the restart then spawns one itself.
    pub(crate) fn spawn(path: &str, instance: u64) -> Option<Self> {
        let state = Arc::new(AtomicU8::new(WAITING));
        let (hand_over, handed) = cb::bounded(1);
        let waiting = Arc::clone(&state);
        let body = move || {
            if let Some((run, gate)) = wait_for_handover(&handed, &waiting) {
                let _ = gate.recv();
                instance_thread(run, None);
            }
        };
        ceiling::spawn(format!("{path}#{instance}"), body).ok()?;
        Some(Self {
            instance,
            state,
            hand_over,
        })
    }

    /// Claims the thread for `instance`: `None` if it stands by for
    /// another, or retired.
    pub(crate) fn claim(self, instance: u64) -> Option<Claimed> {
        let claimed = self.instance == instance
            && self
                .state
                .compare_exchange(WAITING, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        claimed.then_some(Claimed {
            hand_over: self.hand_over,
        })
    }
}

/// A standby thread claimed for its instance: it takes the instance
/// whenever it is handed over, however long it has waited.
pub(crate) struct Claimed {
    hand_over: cb::Sender<Handover>,
}

impl Claimed {
    /// Hands the instance over: the standby thread wakes, and runs it once
    /// `gate` opens (or its sender is dropped), as a spawned successor
    /// does.
    pub(crate) fn start(self, run: Box<InstanceRun>, gate: cb::Receiver<()>) {
        // The thread holds its end until it has taken this or seen the
        // claim dropped, and the channel holds one: this neither waits nor
        // fails.
        let _ = self.hand_over.send((run, gate));
    }
}

/// The standby thread's wait: its instance, or `None` when it is to end.
fn wait_for_handover(handed: &cb::Receiver<Handover>, state: &AtomicU8) -> Option<Handover> {
    match handed.recv_timeout(STANDBY_IDLE) {
        Ok(handover) => Some(handover),
        Err(cb::RecvTimeoutError::Disconnected) => None,
        Err(cb::RecvTimeoutError::Timeout) => {
            let retired = state
                .compare_exchange(WAITING, RETIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            // Claimed as it timed out: its instance is on its way, or the
            // claim was dropped, which disconnects.
            if retired { None } else { handed.recv().ok() }
        }
    }
}
