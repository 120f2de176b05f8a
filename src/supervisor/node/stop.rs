//! Stopping children: in reverse start order or, for pools, in parallel,
//! each within its shutdown timeout; an instance that ignores it (or its
//! budget) is revoked, detached and counted, and its message settled.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    /// Asks every slot in `indices` to stop, then takes their exit reports
    /// in the order they come, each child until its own deadline. The
    /// work is linear in the number of slots: nothing is looked for by a
    /// scan of the slots or of the messages set aside.
    pub(super) fn stop_parallel(&mut self, indices: &[usize]) {
        let now = self.now();
        let mut stopping = Stopping::default();
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
                    stopping.wait_for(
                        slot.id,
                        Awaited {
                            instance: *instance,
                            timeout,
                            killed: false,
                        },
                        now.checked_add(timeout),
                    );
                }
                SlotState::BackingOff | SlotState::Restarting => {
                    slot.state = SlotState::Stopped;
                    self.sync_slot(i);
                }
                SlotState::Stopped => {}
            }
        }
        // Reports that came while the supervisor waited for something
        // else; the other messages keep their order.
        for message in std::mem::take(&mut self.deferred) {
            self.triage(message, &mut stopping);
        }
        while !stopping.is_empty() {
            let deadline = stopping.next_deadline();
            match self.receive(deadline) {
                Some(message) => self.triage(message, &mut stopping),
                // The earliest deadline passed (or, without one, nothing
                // more can come: every child still awaited is overdue).
                None => {
                    // What came by the deadline counts as in time.
                    for _ in 0..self.inbox.len() {
                        match self.inbox.try_recv() {
                            Ok(message) => self.triage(message, &mut stopping),
                            Err(_) => break,
                        }
                    }
                    for (id, awaited) in stopping.overdue(deadline.map(|_| self.now())) {
                        self.overdue(id, awaited, &mut stopping);
                    }
                }
            }
        }
    }

    /// A message that came during a parallel stop: an awaited exit report
    /// is taken, anything else set aside for later.
    fn triage(&mut self, message: Control, stopping: &mut Stopping) {
        match message {
            Control::Exited {
                slot,
                instance,
                report,
            } if stopping.awaits(slot, instance) => {
                if let Some(awaited) = stopping.take(slot) {
                    self.stopped(slot, awaited, *report, stopping);
                }
            }
            other => self.deferred.push_back(other),
        }
    }

    /// A child of a parallel stop reported its exit.
    fn stopped(
        &mut self,
        id: ChildId,
        awaited: Awaited,
        mut report: ExitReport,
        stopping: &mut Stopping,
    ) {
        let Some(i) = self.index_of(id) else {
            self.discard(report);
            return;
        };
        if awaited.killed {
            self.emit_child(
                i,
                Some(awaited.instance),
                EventKind::ShutdownTimedOut {
                    timeout: awaited.timeout,
                },
            );
            self.finish(i, report);
            return;
        }
        let successor = report.successor.take();
        self.finish(i, report);
        // It restarted itself before its permit was closed: the successor
        // is stopped in turn, with its own timeout.
        if let Some(successor) = successor
            && self.adopt(i, successor).is_none()
            && let SlotState::Running {
                instance, handle, ..
            } = &self.slots[i].state
        {
            handle.ask_to_stop();
            let successor = Awaited {
                instance: *instance,
                ..awaited
            };
            stopping.wait_for(id, successor, self.now().checked_add(awaited.timeout));
        }
    }

    /// A child of a parallel stop did not stop within its timeout: a
    /// process child is killed and its exit still awaited, any other
    /// instance detached.
    fn overdue(&mut self, id: ChildId, awaited: Awaited, stopping: &mut Stopping) {
        let Some(i) = self.index_of(id) else {
            return;
        };
        if !awaited.killed && self.kill_process(i) {
            let killed = Awaited {
                killed: true,
                ..awaited
            };
            // Revocation ends a process child for certain.
            stopping.wait_for(id, killed, None);
            return;
        }
        if let Some(instance) = self.detach(i, Outcome::Shutdown) {
            self.emit_child(
                i,
                Some(instance),
                EventKind::ShutdownTimedOut {
                    timeout: awaited.timeout,
                },
            );
        }
    }

    /// Revokes the running instance of slot `i` if revocation ends it for
    /// certain (a process child, which is killed); `false` for any other.
    fn kill_process(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        if !slot.runs_in_process() {
            return false;
        }
        match &slot.state {
            SlotState::Running {
                handle: Handle::Worker { revoker, .. },
                ..
            } => {
                revoker.revoke();
                true
            }
            _ => false,
        }
    }

    /// Kills an instance that revocation ends for certain (a process child)
    /// and waits for its exit report; `None` for any other instance, which
    /// can only be detached.
    fn kill(&mut self, id: ChildId, instance: u64) -> Option<ExitReport> {
        let i = self.index_of(id)?;
        if !self.kill_process(i) {
            return None;
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

/// The children a parallel stop still waits for, and their deadlines in
/// the order they fall.
#[derive(Default)]
struct Stopping {
    awaited: HashMap<ChildId, Awaited>,
    /// Every deadline set, earliest first; one whose child is no longer
    /// awaited for that instance (it reported, or was killed and waits
    /// without one) is dropped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, ChildId, u64)>>,
}

/// A child a parallel stop waits for.
#[derive(Clone, Copy)]
struct Awaited {
    instance: u64,
    timeout: Duration,
    /// Killed at its deadline (a process child): its exit is awaited
    /// without one, and reported as a timed-out shutdown.
    killed: bool,
}

impl Stopping {
    /// Waits for `awaited`'s instance of `id` until `deadline` (`None`:
    /// for as long as it takes).
    fn wait_for(&mut self, id: ChildId, awaited: Awaited, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            self.deadlines
                .push(Reverse((deadline, id, awaited.instance)));
        }
        self.awaited.insert(id, awaited);
    }

    fn is_empty(&self) -> bool {
        self.awaited.is_empty()
    }

    /// Whether the stop waits for `instance` of `id`.
    fn awaits(&self, id: ChildId, instance: u64) -> bool {
        self.awaited
            .get(&id)
            .is_some_and(|awaited| awaited.instance == instance)
    }

    /// Stops waiting for `id`.
    fn take(&mut self, id: ChildId) -> Option<Awaited> {
        self.awaited.remove(&id)
    }

    /// Whether the deadline set for `instance` of `id` still stands.
    fn stands(&self, id: ChildId, instance: u64) -> bool {
        self.awaited
            .get(&id)
            .is_some_and(|awaited| awaited.instance == instance && !awaited.killed)
    }

    /// The earliest deadline that still stands.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, id, instance))) = self.deadlines.peek() {
            if self.stands(id, instance) {
                return Some(deadline);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Takes out the children whose deadline has passed at `now`; every
    /// child still awaited when `now` is `None`.
    fn overdue(&mut self, now: Option<Instant>) -> Vec<(ChildId, Awaited)> {
        let Some(now) = now else {
            self.deadlines.clear();
            return self.awaited.drain().collect();
        };
        let mut overdue = Vec::new();
        while let Some(&Reverse((deadline, id, instance))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self.stands(id, instance)
                && let Some(awaited) = self.take(id)
            {
                overdue.push((id, awaited));
            }
        }
        overdue
    }
}
