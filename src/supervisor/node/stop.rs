//! Stopping children: in reverse start order or, for pools, in parallel,
//! each within its shutdown timeout; an instance that ignores it (or its
//! budget) is revoked, detached and counted, and its message settled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::event::EventKind;
use crate::fault::{Fault, FaultKind};
use crate::mailbox;
use crate::supervisor::control::{Control, ExitReport, Outcome};
use crate::supervisor::slot::{ChildId, Handle, SlotState};

use super::NodeState;

impl NodeState {
    /// Stops every child in reverse start order; a pool stops its members in
    /// parallel.
    pub(super) fn stop_all(&mut self) {
        self.timers.clear();
        let order: Vec<usize> = (0..self.slots.len()).rev().collect();
        if self.pool.is_some() {
            self.stop_parallel(&order);
        } else {
            for &i in &order {
                self.stop_slot(i);
            }
        }
        for i in order {
            // A parked in-place thread ends once its resume channel closes.
            self.slots[i].parked = None;
        }
    }

    pub(super) fn stop_slot(&mut self, i: usize) {
        self.stop_parallel(&[i]);
    }

    /// Asks every slot in `indices` to stop, then waits for each in turn
    /// until its own deadline.
    pub(super) fn stop_parallel(&mut self, indices: &[usize]) {
        let now = self.now();
        let mut waiting = VecDeque::new();
        for &i in indices {
            let slot = &mut self.slots[i];
            // From here on every restart of it is the supervisor's.
            if let Some(relaunch) = &slot.relaunch {
                relaunch.close();
            }
            match &slot.state {
                SlotState::Running {
                    instance, handle, ..
                } => {
                    handle.ask_to_stop();
                    let timeout = slot.settings().shutdown;
                    waiting.push_back((slot.id, *instance, now.checked_add(timeout), timeout));
                }
                SlotState::BackingOff | SlotState::Restarting => slot.state = SlotState::Stopped,
                SlotState::Stopped => {}
            }
        }
        while let Some((id, instance, deadline, timeout)) = waiting.pop_front() {
            match self.wait_exit(id, instance, deadline) {
                Some(mut report) => {
                    let Some(i) = self.index_of(id) else {
                        self.discard(report);
                        continue;
                    };
                    let successor = report.successor.take();
                    self.finish(i, report);
                    // It restarted itself before its permit was closed: the
                    // successor is stopped in turn, with its own timeout.
                    if let Some(successor) = successor
                        && self.adopt(i, successor).is_none()
                        && let SlotState::Running {
                            instance, handle, ..
                        } = &self.slots[i].state
                    {
                        handle.ask_to_stop();
                        let deadline = self.now().checked_add(timeout);
                        waiting.push_back((id, *instance, deadline, timeout));
                    }
                }
                None => {
                    if let Some(report) = self.kill(id, instance) {
                        if let Some(i) = self.index_of(id) {
                            self.emit_child(
                                i,
                                Some(instance),
                                EventKind::ShutdownTimedOut { timeout },
                            );
                            self.finish(i, report);
                        }
                        continue;
                    }
                    if let Some(i) = self.index_of(id)
                        && let Some(instance) = self.detach(i, Outcome::Shutdown)
                    {
                        self.emit_child(i, Some(instance), EventKind::ShutdownTimedOut { timeout });
                    }
                }
            }
        }
    }

    /// Kills an instance that revocation ends for certain (a process child)
    /// and waits for its exit report; `None` for any other instance, which
    /// can only be detached.
    fn kill(&mut self, id: ChildId, instance: u64) -> Option<ExitReport> {
        let i = self.index_of(id)?;
        let slot = &self.slots[i];
        if !slot.runs_in_process() {
            return None;
        }
        match &slot.state {
            SlotState::Running {
                handle: Handle::Worker { revoker, .. },
                ..
            } => revoker.revoke(),
            _ => return None,
        }
        self.wait_exit(id, instance, None)
    }

    /// Waits for the exit report of `instance` of slot `id`, keeping other
    /// messages for later.
    pub(super) fn wait_exit(
        &mut self,
        id: ChildId,
        instance: u64,
        deadline: Option<Instant>,
    ) -> Option<ExitReport> {
        if let Some(position) = self.deferred.iter().position(|message| {
            matches!(message, Control::Exited { slot, instance: inst, .. } if *slot == id && *inst == instance)
        }) && let Some(Control::Exited { report, .. }) = self.deferred.remove(position)
        {
            return Some(*report);
        }
        loop {
            match self.receive(deadline)? {
                Control::Exited {
                    slot,
                    instance: inst,
                    report,
                } if slot == id && inst == instance => return Some(*report),
                other => self.deferred.push_back(other),
            }
        }
    }

    /// Revokes the running instance's grant, detaches its thread and counts
    /// it; settles the message it was handling as if it had ended with
    /// `outcome` (which comes back with the message named in its fault).
    /// Returns which instance it was.
    pub(super) fn detach(&mut self, i: usize, outcome: Outcome) -> Option<u64> {
        self.detach_settling(i, outcome)
            .map(|(instance, _)| instance)
    }

    pub(super) fn detach_settling(&mut self, i: usize, outcome: Outcome) -> Option<(u64, Outcome)> {
        let state = std::mem::replace(&mut self.slots[i].state, SlotState::Stopped);
        let SlotState::Running {
            instance, handle, ..
        } = state
        else {
            return None;
        };
        let (outcome, letter) = match &handle {
            Handle::Worker {
                revoker, in_flight, ..
            } => {
                revoker.revoke();
                let slot = &self.slots[i];
                let threshold = slot.settings().poison_threshold;
                mailbox::settle(
                    &slot.path,
                    instance,
                    in_flight.close(),
                    &slot.mailbox,
                    outcome,
                    threshold,
                )
            }
            Handle::Supervisor { .. } => (outcome, None),
        };
        if let Some(letter) = letter {
            self.dispose(i, letter);
        }
        self.slots[i].leaked += 1;
        self.tree.count_leak();
        Some((instance, outcome))
    }

    /// The watchdog cancelled an instance for going over a budget. It has
    /// its shutdown timeout to stop (its exit then reports the budget);
    /// otherwise it is a runaway: revoked, detached, and faulted with the
    /// message it was handling. Either way its restart type and the
    /// strategy decide what comes next.
    pub(super) fn over_budget(&mut self, id: ChildId, instance: u64) {
        let Some(i) = self.index_of(id) else { return };
        let budget = match &self.slots[i].state {
            SlotState::Running {
                instance: current,
                handle:
                    Handle::Worker {
                        meter: Some(meter), ..
                    },
                ..
            } if *current == instance => meter.exceeded(),
            _ => return,
        };
        let timeout = self.slots[i].settings().shutdown;
        let deadline = self.now().checked_add(timeout);
        let outcome = match self
            .wait_exit(id, instance, deadline)
            .or_else(|| self.kill(id, instance))
        {
            Some(report) => {
                let Some(i) = self.index_of(id) else { return };
                self.finish(i, report)
            }
            None => {
                let Some(i) = self.index_of(id) else { return };
                let Some(budget) = budget else { return };
                let fault = Fault::new(
                    &self.slots[i].path,
                    instance,
                    FaultKind::BudgetExceeded {
                        budget,
                        runaway: true,
                    },
                );
                let Some((_, outcome)) = self.detach_settling(i, Outcome::Failed(fault)) else {
                    return;
                };
                if let Some(fault) = outcome.fault() {
                    self.slots[i].last_fault = Some(Arc::new(fault.clone()));
                    self.emit_child(
                        i,
                        Some(instance),
                        EventKind::Faulted {
                            fault: fault.clone(),
                        },
                    );
                }
                outcome
            }
        };
        self.react(vec![(id, outcome)]);
    }
}
