//! Restarts decided on the failing thread: an instance of a one-for-one
//! child that ends starts its successor itself, instead of waiting for its
//! supervisor's thread to wake, decide and hand a new instance back.
//!
//! The supervisor stays the only writer of its children's slots. What it
//! hands an eligible instance is a *permit*: the number of the instance
//! that may start its successor. The ending instance takes it under the
//! permit's lock — only if its restart type restarts it after how it ended
//! and the supervisor's restart window (shared with the supervisor under a
//! lock of its own) has room — passes it on to the successor, builds the
//! successor as the supervisor would (a grant re-issued from the
//! specification's original, a new revoker, context and in-flight cell),
//! revokes its own grant, and reports its exit with the successor
//! attached. The supervisor then records what already happened, in the
//! order it happened: the fault or exit, `Restarting`, `Restarted`.
//!
//! Before the supervisor acts on a running instance (stopping it for a
//! shutdown or a removal), it closes the permit; a successor already on
//! its way arrives with the exit report it is waiting for and is stopped
//! in turn. A fresh-thread child's permit also keeps the thread that
//! stands by for its next restart (see `standby`), dropped with the
//! permit. Everything the planner would decide otherwise — other
//! strategies, backoff, a kernel policy, limits, process children, a full
//! restart window — goes the slow way, through the supervisor's thread.
//!
//! | permit | meaning |
//! |---|---|
//! | `None` | closed: every restart is the supervisor's |
//! | `Some(n)` | instance `n` may start instance `n + 1` itself |

use std::sync::Arc;

use parking_lot::Mutex;

use super::control::Outcome;
use super::instance::InstanceRun;
use super::intensity::Intensity;
use super::launch::{InstanceSource, Prepared};
use super::plan;
use super::standby::{Claimed, Standby};
use crate::component::{Reissue, Restart, RestartMode};
use crate::fault::FaultKind;

/// A child's permit to restart itself, and how its instances are made.
/// The rest of what a successor needs comes from the instance that ends.
pub(crate) struct Relaunch {
    permit: Mutex<Option<u64>>,
    reissue: Arc<dyn Reissue>,
    restart: Restart,
    mode: RestartMode,
    /// The supervisor's restart window.
    intensity: Arc<Mutex<Intensity>>,
    /// For fresh-thread restarts: a thread spawned for the next successor,
    /// while the permit lets the running instance start it.
    standby: Mutex<Option<Standby>>,
}

/// A successor an ending instance started (or failed to start) itself.
pub(crate) struct Successor {
    pub(crate) instance: u64,
    /// Its handle, or why it could not start.
    pub(crate) started: Result<super::slot::Handle, FaultKind>,
}

impl std::fmt::Debug for Successor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Successor")
            .field("instance", &self.instance)
            .field("started", &self.started.is_ok())
            .finish()
    }
}

impl Relaunch {
    pub(crate) fn new(
        reissue: Arc<dyn Reissue>,
        restart: Restart,
        mode: RestartMode,
        intensity: Arc<Mutex<Intensity>>,
    ) -> Self {
        Self {
            permit: Mutex::new(None),
            reissue,
            restart,
            mode,
            intensity,
            standby: Mutex::new(None),
        }
    }

    /// Lets `instance` start its successor (the supervisor, once it has
    /// started it).
    pub(crate) fn open(&self, instance: u64) {
        *self.permit.lock() = Some(instance);
    }

    /// Takes the permit back (the supervisor, before it acts on the
    /// running instance); a thread standing by for the next restart ends.
    pub(crate) fn close(&self) {
        *self.permit.lock() = None;
        // A standby placed after this sees the permit closed, and is not
        // kept.
        self.standby.lock().take();
    }

    /// The thread standing by to run `instance`, if one does.
    pub(crate) fn claim_standby(&self, instance: u64) -> Option<Claimed> {
        self.standby.lock().take()?.claim(instance)
    }

    /// Has a thread stand by for the instance after `running` (the child
    /// at `path`), which `running` may start when it ends: called by the
    /// thread that started `running`, once it has. The standby is kept
    /// only while the permit is `running`'s; otherwise (the supervisor
    /// took the permit back, or `running` already ended) it is dropped,
    /// and its thread ends.
    pub(crate) fn stand_by_after(&self, path: &str, running: u64) {
        let Some(standby) = Standby::spawn(path, running + 1) else {
            return;
        };
        let permit = self.permit.lock();
        if *permit == Some(running) {
            *self.standby.lock() = Some(standby);
        }
    }

    /// For `instance`, which ended with `outcome` and whose child's
    /// instances `source` makes: the successor to run, if it may start it.
    /// The restart is recorded in the supervisor's window.
    pub(crate) fn successor(
        &self,
        instance: u64,
        outcome: &Outcome,
        source: impl FnOnce() -> InstanceSource,
    ) -> Option<Started> {
        // A stop is the supervisor's; only a fault, or a permanent child's
        // normal end, restarts.
        if matches!(outcome, Outcome::Shutdown | Outcome::GaveUp(_))
            || !plan::restarts(self.restart, outcome.ending())
        {
            return None;
        }
        let source = source();
        {
            let mut permit = self.permit.lock();
            if *permit != Some(instance) {
                return None;
            }
            let now = source.tree.clock.now();
            if !self.intensity.lock().try_record(now) {
                // The supervisor's planner gives up on it.
                return None;
            }
            *permit = Some(instance + 1);
        }
        let next = instance + 1;
        let prepared = source.prepare(next, self.mode == RestartMode::InPlace, |revokers| {
            self.reissue.instance(revokers)
        });
        Some(Started {
            instance: next,
            prepared,
            mode: self.mode,
        })
    }
}

/// A successor, prepared: to run on the ending thread (in place) or on a
/// thread of its own.
pub(crate) struct Started {
    pub(crate) instance: u64,
    pub(crate) prepared: Result<Prepared, FaultKind>,
    pub(crate) mode: RestartMode,
}

impl Started {
    /// Splits the successor into what the supervisor keeps (its handle, or
    /// why it did not start) and what runs (`None` when nothing does).
    pub(crate) fn split(self) -> (Successor, Option<Box<InstanceRun>>) {
        match self.prepared {
            Ok(Prepared { run, handle }) => (
                Successor {
                    instance: self.instance,
                    started: Ok(handle),
                },
                Some(run),
            ),
            Err(kind) => (
                Successor {
                    instance: self.instance,
                    started: Err(kind),
                },
                None,
            ),
        }
    }
}
