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
//! A standby is a convenience, never a need: at most [`MAX_STANDING_BY`]
//! stand by in a process at once, so that a burst of restarts across a
//! large pool does not take the threads and memory maps that starts need
//! (past that, restarts spawn their threads as before).
//!
//! The thread never ran an instance before the one it is named for, so a
//! fresh-thread successor still starts on a new thread with fresh
//! thread-locals; it inherits what a spawned successor would, being
//! spawned from the same kind of thread. A claim and a retirement race on
//! one atomic state, so an instance handed over is never left behind by a
//! standby that just gave up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel as cb;

use super::instance::InstanceRun;
use super::launch::instance_thread;
use crate::ceiling;

/// How long a standby thread waits for the restart it was spawned for
/// before it ends: in a burst of restarts each finds one ready, and a
/// child that crashed once does not keep a thread for it.
const STANDBY_IDLE: Duration = Duration::from_secs(1);

/// How many threads may stand by at once, in the whole process.
const MAX_STANDING_BY: usize = 64;

/// Threads standing by now.
static STANDING_BY: AtomicUsize = AtomicUsize::new(0);

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
        Self::spawn_counted(path, instance, &STANDING_BY, MAX_STANDING_BY)
    }

    /// As [`spawn`](Self::spawn), counting the thread in `standing_by`
    /// while it waits, and spawning none when `max` already do.
    fn spawn_counted(
        path: &str,
        instance: u64,
        standing_by: &'static AtomicUsize,
        max: usize,
    ) -> Option<Self> {
        if standing_by.fetch_add(1, Ordering::AcqRel) >= max {
            standing_by.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let state = Arc::new(AtomicU8::new(WAITING));
        let (hand_over, handed) = cb::bounded(1);
        let waiting = Arc::clone(&state);
        let body = move || {
            let handover = wait_for_handover(&handed, &waiting);
            // From here it is an instance's thread, or ends.
            standing_by.fetch_sub(1, Ordering::AcqRel);
            if let Some((run, gate)) = handover {
                let _ = gate.recv();
                instance_thread(run, None);
            }
        };
        if ceiling::spawn(format!("{path}#{instance}"), body).is_err() {
            standing_by.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until `standing_by` reads `expected`: the threads of dropped
    /// standbys end on their own time. The deadline only turns a hang
    /// into a failure.
    #[allow(
        clippy::disallowed_methods,
        reason = "a test's bound on a wait, not a measurement"
    )]
    fn wait_for_count(standing_by: &AtomicUsize, expected: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while standing_by.load(Ordering::Acquire) != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "still {} standing by",
                standing_by.load(Ordering::Acquire)
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn no_more_threads_stand_by_than_the_cap_and_dropped_ones_end() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let standbys: Vec<Standby> = (0..5)
            .filter_map(|n| Standby::spawn_counted("capped", n, &COUNT, 3))
            .collect();
        assert_eq!(standbys.len(), 3);
        assert_eq!(COUNT.load(Ordering::Acquire), 3);
        drop(standbys);
        wait_for_count(&COUNT, 0);
        // Room again once they ended.
        let again = Standby::spawn_counted("capped", 9, &COUNT, 3);
        assert!(again.is_some());
        drop(again);
        wait_for_count(&COUNT, 0);
    }

    #[test]
    fn a_standby_is_claimed_only_for_the_instance_it_is_named_for() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let standby = Standby::spawn_counted("named", 7, &COUNT, 8).unwrap();
        assert!(standby.claim(8).is_none(), "named for 7");
        let standby = Standby::spawn_counted("named", 7, &COUNT, 8).unwrap();
        let claimed = standby.claim(7);
        assert!(claimed.is_some());
        // A claim dropped without its instance ends the thread too.
        drop(claimed);
        wait_for_count(&COUNT, 0);
    }
}
