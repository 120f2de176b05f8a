//! Exits and restarts: how a supervisor reports an instance that ended, and
//! carries out the restart planner's decision, as a loop over a queue of
//! endings (never a recursion) that stops at the first give-up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{Disposal, EventKind, ExitReason};
use crate::fault::{self, Fault, FaultKind};
use crate::supervisor::control::{ExitReport, Outcome};
use crate::supervisor::launch::Parked;
use crate::supervisor::plan::{self, Plan};
use crate::supervisor::relaunch::Successor;
use crate::supervisor::slot::{ChildId, Handle, SlotState, Spec};
use crate::supervisor::spec::Escalation;

use super::NodeState;

impl NodeState {
    pub(super) fn on_exit(&mut self, id: ChildId, instance: u64, mut report: ExitReport) {
        let Some(i) = self.index_of(id) else {
            self.discard(report);
            return;
        };
        if !self.slots[i].runs(instance) {
            // A detached instance finishing late: it was already reported.
            self.discard(report);
            return;
        }
        let successor = report.successor.take();
        let outcome = self.finish(i, report);
        match successor {
            // The instance restarted itself: what the planner would have
            // decided has happened; the tree hears of it in order.
            Some(successor) => {
                if let Some(failed) = self.adopt(i, successor) {
                    self.react(vec![(id, failed)]);
                }
            }
            None => self.react(vec![(id, outcome)]),
        }
    }

    /// Records the successor an ended instance of child `i` started itself:
    /// `Restarting`, then `Restarted` — or, if it could not start, its
    /// fault, returned for the planner as any failed start is.
    pub(super) fn adopt(&mut self, i: usize, successor: Successor) -> Option<Outcome> {
        let path = self.slots[i].path.clone();
        self.emit_about(
            &[i],
            EventKind::Restarting {
                cause: path.to_string(),
                children: vec![path.to_string()],
            },
        );
        let now = self.now();
        let slot = &mut self.slots[i];
        slot.failures_in_row = slot.failures_in_row.saturating_add(1);
        slot.restarts += 1;
        slot.instance = successor.instance;
        match successor.started {
            Ok(mut handle) => {
                // An in-place thread runs its successor itself; the channel
                // the supervisor hands it instances on stays with it.
                if let Handle::Worker { resume, .. } = &mut handle {
                    *resume = slot.parked.take().map(|parked| parked.resume);
                }
                slot.enforcement = None;
                slot.state = SlotState::Running {
                    instance: successor.instance,
                    handle,
                    started_at: now,
                };
                self.emit_child(i, Some(successor.instance), EventKind::Restarted);
                None
            }
            Err(kind) => {
                slot.state = SlotState::Stopped;
                let fault = Fault::new(&path, successor.instance, kind);
                slot.last_fault = Some(Arc::new(fault.clone()));
                self.emit_child(
                    i,
                    Some(successor.instance),
                    EventKind::Faulted {
                        fault: fault.clone(),
                    },
                );
                Some(Outcome::Failed(fault))
            }
        }
    }

    /// Drops what a stale exit report carries, under the panic guard; a
    /// successor it started is given up (revoked and cancelled).
    pub(super) fn discard(&self, mut report: ExitReport) {
        if let Some(Successor {
            started: Ok(handle),
            ..
        }) = report.successor.take()
        {
            handle.abandon();
        }
        let path = self.path.clone();
        if let Err(caught) = fault::drop_contained(report) {
            self.report_contained(&path, self.instance, caught, "dropping a late exit report");
        }
    }

    /// Bookkeeping for an instance that ended: reports the exit, hands over
    /// a dead letter, takes back a nested supervisor's specification.
    pub(super) fn finish(&mut self, i: usize, report: ExitReport) -> Outcome {
        let ExitReport {
            outcome,
            dead_letter,
            spec: returned_spec,
            successor,
        } = report;
        // A successor is the caller's to adopt or give up.
        if let Some(Successor {
            started: Ok(handle),
            ..
        }) = successor
        {
            handle.abandon();
        }
        let state = std::mem::replace(&mut self.slots[i].state, SlotState::Stopped);
        let slot = &mut self.slots[i];
        if let Spec::Supervisor { spec, .. } = &mut slot.spec
            && returned_spec.is_some()
        {
            *spec = returned_spec;
        }
        if let SlotState::Running {
            instance,
            handle,
            started_at,
        } = state
        {
            if let Handle::Worker {
                revoker,
                resume,
                enforcement,
                ..
            } = handle
            {
                // Whatever the ended instance left behind (in a thread-local,
                // say) holds nothing any more. Its thread is not joined: it
                // only runs thread-local destructors now, and one of those
                // that blocks must not wedge the supervisor.
                revoker.revoke();
                if let Some(resume) = resume {
                    slot.parked = Some(Parked {
                        resume,
                        enforcement,
                    });
                }
            }
            let ran = self.tree.clock.now().saturating_duration_since(started_at);
            let reset_after = slot.settings().backoff.map_or(Duration::ZERO, |b| b.max);
            if ran >= reset_after || !matches!(outcome, Outcome::Failed(_)) {
                slot.failures_in_row = 0;
            }
            if let Some(fault) = outcome.fault() {
                slot.last_fault = Some(Arc::new(fault.clone()));
            }
            let kind = match &outcome {
                Outcome::Normal => EventKind::Exited {
                    reason: ExitReason::Normal,
                },
                Outcome::Shutdown | Outcome::GaveUp(_) => EventKind::Exited {
                    reason: ExitReason::Shutdown,
                },
                Outcome::Failed(fault) => EventKind::Faulted {
                    fault: fault.clone(),
                },
            };
            self.emit_child(i, Some(instance), kind);
        }
        if let Some(letter) = dead_letter {
            self.dispose(i, letter);
        }
        outcome
    }

    /// Hands a dead letter to the sink, or drops it (under the panic guard)
    /// when there is none or it is full.
    pub(super) fn dispose(&mut self, i: usize, letter: crate::supervisor::DeadLetter) {
        let description = letter.description.clone();
        let attempts = letter.attempts;
        let (disposal, undelivered) = match &self.tree.dead_letters {
            None => (Disposal::NoSink, Some(letter)),
            Some(sink) => match sink.try_send(letter) {
                Ok(()) => (Disposal::Delivered, None),
                Err(err) => (Disposal::SinkFull, Some(err.into_inner())),
            },
        };
        let instance = self.slots[i].instance;
        self.emit_child(
            i,
            Some(instance),
            EventKind::DeadLettered {
                description,
                attempts,
                disposal,
            },
        );
        if let Some(letter) = undelivered
            && let Err(caught) = fault::drop_contained(letter)
        {
            let path = self.slots[i].path.clone();
            self.report_contained(&path, instance, caught, "dropping a dead letter");
        }
    }

    /// Applies the restart plans for children that ended, one after
    /// another: a restart whose starts fail queues those failures here
    /// instead of recursing. Stops at the first give-up or auto-shutdown.
    pub(super) fn react(&mut self, endings: Vec<(ChildId, Outcome)>) {
        let mut queue = VecDeque::from(endings);
        while let Some((id, outcome)) = queue.pop_front() {
            if self.exit.is_some() {
                // The supervisor is ending: what is left was reported, and
                // nothing is restarted any more.
                continue;
            }
            let Some(i) = self.index_of(id) else { continue };
            let now = self.now();
            let plan = plan::plan(
                self.strategy,
                self.auto_shutdown,
                &self.slots,
                i,
                outcome.ending(),
                &mut self.intensity.lock(),
                now,
            );
            match plan {
                Plan::Leave { retire } => {
                    if retire {
                        self.retire(id);
                    }
                }
                Plan::AutoShutdown { retire } => {
                    let trigger = self.slots[i].path.clone();
                    if retire {
                        self.retire(id);
                    }
                    self.emit(
                        &self.path,
                        Some(self.instance),
                        EventKind::AutoShutdown {
                            trigger: trigger.to_string(),
                        },
                    );
                    self.stop_all();
                    self.exit = Some(Outcome::Normal);
                }
                Plan::GiveUp => self.give_up(outcome),
                Plan::Restart {
                    stop,
                    retire,
                    start,
                } => {
                    let ids = |indices: &[usize]| -> Vec<ChildId> {
                        indices.iter().map(|&j| self.slots[j].id).collect()
                    };
                    let (stop, retire, start) = (ids(&stop), ids(&retire), ids(&start));
                    queue.extend(self.restart(id, &stop, &retire, &start));
                }
            }
        }
    }

    /// Carries out a restart plan for child `failed`; returns the starts
    /// that failed.
    pub(super) fn restart(
        &mut self,
        failed: ChildId,
        stop: &[ChildId],
        retire: &[ChildId],
        start: &[ChildId],
    ) -> Vec<(ChildId, Outcome)> {
        let Some(i) = self.index_of(failed) else {
            return Vec::new();
        };
        let named: Vec<usize> = start
            .iter()
            .chain(retire)
            .filter_map(|id| self.index_of(*id))
            .collect();
        let names = named
            .iter()
            .map(|&j| self.slots[j].path.to_string())
            .collect();
        let about: Vec<usize> = std::iter::once(i).chain(named).collect();
        self.emit_about(
            &about,
            EventKind::Restarting {
                cause: self.slots[i].path.to_string(),
                children: names,
            },
        );
        for &id in stop {
            if let Some(j) = self.index_of(id) {
                self.stop_slot(j);
            }
        }
        for &id in retire {
            self.retire(id);
        }
        for &id in start {
            if let Some(j) = self.index_of(id) {
                self.slots[j].state = SlotState::Restarting;
                self.sync_slot(j);
            }
        }
        let Some(i) = self.index_of(failed) else {
            return Vec::new();
        };
        let slot = &mut self.slots[i];
        slot.failures_in_row = slot.failures_in_row.saturating_add(1);
        let attempt = slot.failures_in_row;
        let delay = match &slot.spec {
            Spec::Worker(child) => child.backoff_delay(attempt, &self.tree.random),
            Spec::Supervisor { .. } => None,
        };
        match delay {
            Some(delay) => {
                for id in start {
                    if let Some(j) = self.index_of(*id) {
                        self.slots[j].state = SlotState::BackingOff;
                        self.sync_slot(j);
                    }
                }
                let instance = self.slots[i].instance;
                self.emit_child(i, Some(instance), EventKind::BackingOff { delay });
                let now = self.now();
                let due = now.checked_add(delay).unwrap_or(now);
                self.timers.push(due, start.to_vec());
                Vec::new()
            }
            None => self.start_set(start),
        }
    }

    pub(super) fn give_up(&mut self, outcome: Outcome) {
        let (max_restarts, period) = self.intensity.lock().bounds();
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::GaveUp {
                max_restarts,
                period,
            },
        );
        self.stop_all();
        let cause = match outcome {
            Outcome::Failed(fault) | Outcome::GaveUp(fault) => fault,
            // A permanent child that keeps ending normally also exhausts the
            // intensity; say so.
            other => Fault::new(
                &self.path,
                self.instance,
                FaultKind::Error {
                    message: format!("a permanent child kept ending ({other:?})"),
                    sources: Vec::new(),
                },
            ),
        };
        let fault = Fault::new(
            &self.path,
            self.instance,
            FaultKind::Escalated {
                cause: Box::new(cause),
            },
        );
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::Escalated {
                fault: fault.clone(),
            },
        );
        self.exit = Some(match self.escalation {
            Escalation::Shutdown => Outcome::GaveUp(fault),
            Escalation::Failure => Outcome::Failed(fault),
        });
    }

    /// Takes a child out of the tree: an initial child is kept (hidden) for
    /// the specification, a dynamic one is forgotten.
    pub(super) fn retire(&mut self, id: ChildId) {
        let Some(i) = self.index_of(id) else { return };
        self.slots[i].state = SlotState::Stopped;
        self.slots[i].parked = None;
        if self.slots[i].initial {
            self.slots[i].retired = true;
            self.unname(i);
            self.sync_slot(i);
        } else {
            let slot = self.take_slot(i);
            self.drop_slot(slot);
        }
    }
}
