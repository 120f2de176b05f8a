//! A supervisor's thread and its state machine.
//!
//! Each supervisor runs on its own thread and owns its children's slots;
//! nothing else mutates them. Instance threads and the outside world talk
//! to it only through its control channel ([`Control`]). While it waits for
//! one child to stop, other messages are kept in `deferred` and handled
//! afterwards in arrival order, so no exit report is lost or reordered.
//!
//! What to do when a child ends is decided by the pure
//! [`plan`](super::plan::plan); this file carries plans out. Restarts are a
//! loop over a queue of endings, never a recursion, and the loop stops at
//! the first give-up. Every call into user code made here — re-issuing and
//! listing grants, dropping specifications, messages and dead letters —
//! runs under the crate's panic guard, and the thread itself runs under it
//! too: a supervisor that dies anyway cancels and revokes its instances
//! (its state's `Drop`) and reports the failure to its parent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome, StartReply};
use super::error::{ControlError, StartError};
use super::intensity::Intensity;
use super::launch::{Parked, spawn_supervisor, spawn_worker};
use super::plan::{self, Plan};
use super::slot::{ChildId, Handle, Slot, SlotState, Spec};
use super::spec::{AutoShutdown, Escalation, Node, Strategy, Supervisor, validate_child};
use super::status::{BoardEntry, ChildState, ChildStatus, NodeKind, StatusBoard};
use super::tree::Tree;
use crate::component::{Child, ChildSettings};
use crate::event::{Disposal, EventKind, ExitReason};
use crate::fault::{self, Fault, FaultKind};
use crate::mailbox::{self, Mailbox};

/// Everything a supervisor thread starts with.
pub(crate) struct NodeStart {
    pub(crate) spec: Supervisor,
    pub(crate) path: String,
    pub(crate) instance: u64,
    pub(crate) tree: Arc<Tree>,
    /// The parent's control channel and this supervisor's slot there; `None`
    /// for the root.
    pub(crate) parent: Option<(cb::Sender<Control>, ChildId)>,
    pub(crate) control: (cb::Sender<Control>, cb::Receiver<Control>),
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) started: StartReply,
    /// The root reports how the tree ended here.
    pub(crate) done: Option<cb::Sender<Outcome>>,
}

struct NodeState {
    path: String,
    instance: u64,
    tree: Arc<Tree>,
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
    escalation: Escalation,
    intensity: Intensity,
    pool: Option<Child>,
    as_child: ChildSettings,
    bus_of_spec: Arc<crate::event::EventBus>,
    tree_settings: super::spec::TreeSettings,
    control: cb::Sender<Control>,
    inbox: cb::Receiver<Control>,
    advances: Option<cb::Receiver<()>>,
    board: Arc<StatusBoard>,
    slots: Vec<Slot>,
    next_slot: u64,
    next_member: usize,
    deferred: VecDeque<Control>,
    timers: Vec<(Instant, Vec<ChildId>)>,
    exit: Option<Outcome>,
}

/// The body of every supervisor thread. Returns the specification only when
/// the supervisor failed to start (its starter takes it back by joining);
/// otherwise the specification travels in the exit report to the parent.
pub(crate) fn run(start: NodeStart) -> Option<Supervisor> {
    let NodeStart {
        spec,
        path,
        instance,
        tree,
        parent,
        control,
        board,
        started,
        done,
    } = start;
    fault::mark_supervised(tree.forward_panics, tree.backtraces);
    let guarded_tree = Arc::clone(&tree);
    let guarded_control = control.0.clone();
    let mut acknowledged = false;
    let ran = fault::contain(|| {
        let mut node = NodeState::new(spec, path.clone(), instance, tree, control, board);
        if let Err(err) = node.start_initial() {
            node.unregister();
            let _ = started.send(Err(err));
            return Err(Box::new(node.into_spec()));
        }
        acknowledged = started.send(Ok(())).is_ok();
        let outcome = node.serve();
        node.unregister();
        Ok((outcome, node.into_spec()))
    });
    let (outcome, spec) = match ran {
        Ok(Err(spec)) => return Some(*spec),
        Ok(Ok((outcome, spec))) => (outcome, Some(Box::new(spec))),
        Err(caught) => {
            // The state's `Drop` has cancelled and revoked every instance.
            unregister(&guarded_tree, &path, &guarded_control);
            let kind = caught.while_("the supervisor's own thread");
            (Outcome::Failed(Fault::new(&path, instance, kind)), None)
        }
    };
    match (parent, done) {
        (Some((parent, slot)), _) if acknowledged => {
            let _ = parent.send(Control::Exited {
                slot,
                instance,
                report: ExitReport {
                    outcome,
                    dead_letter: None,
                    spec,
                },
            });
        }
        (None, Some(done)) => {
            if let Some(spec) = spec
                && let Err(caught) = fault::drop_contained(spec)
            {
                report_contained(
                    &guarded_tree,
                    &path,
                    instance,
                    caught,
                    "dropping the tree's specification",
                );
            }
            let _ = done.send(outcome);
        }
        _ => {}
    }
    None
}

/// Reports a panic in user code run for the node at `path` (dropping its
/// specification, a message or a dead letter) as a fault of that node.
fn report_contained(tree: &Tree, path: &str, instance: u64, caught: fault::Caught, doing: &str) {
    let fault = Fault::new(path, instance, caught.while_(doing));
    tree.publish(path, Some(instance), EventKind::Faulted { fault });
}

fn unregister(tree: &Tree, path: &str, control: &cb::Sender<Control>) {
    let mut supervisors = tree.supervisors.lock();
    if supervisors
        .get(path)
        .is_some_and(|handle| handle.control.same_channel(control))
    {
        supervisors.remove(path);
    }
}

/// A supervisor thread that unwinds (a bug in this crate, or a panic the
/// guards missed) still leaves no instance running with live capabilities.
impl Drop for NodeState {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let SlotState::Running { handle, .. } = &slot.state {
                handle.ask_to_stop();
                if let Handle::Worker { revoker, .. } = handle {
                    revoker.revoke();
                }
            }
        }
    }
}

impl NodeState {
    fn new(
        spec: Supervisor,
        path: String,
        instance: u64,
        tree: Arc<Tree>,
        (control, inbox): (cb::Sender<Control>, cb::Receiver<Control>),
        board: Arc<StatusBoard>,
    ) -> Self {
        let Supervisor {
            strategy,
            max_restarts,
            period,
            auto_shutdown,
            children,
            pool,
            pool_error: _,
            as_child,
            escalation,
            tree: tree_settings,
            bus,
        } = spec;
        let advances = tree.clock.advances();
        let mut node = Self {
            path,
            instance,
            tree,
            strategy,
            auto_shutdown,
            escalation,
            intensity: Intensity::new(max_restarts, period),
            next_member: children.len(),
            pool,
            as_child,
            bus_of_spec: bus,
            tree_settings,
            control,
            inbox,
            advances,
            board,
            slots: Vec::new(),
            next_slot: 1,
            deferred: VecDeque::new(),
            timers: Vec::new(),
            exit: None,
        };
        for child in children {
            node.push_slot(child, true);
        }
        node
    }

    fn push_slot(&mut self, node: Node, initial: bool) -> usize {
        let path = format!("{}/{}", self.path, node.settings().name);
        let (spec, capabilities) = match node {
            Node::Worker(child) => {
                let capabilities = fault::contain(|| child.factory.capabilities())
                    .map_err(|caught| caught.explain("listing its grant"));
                (Spec::Worker(child), capabilities)
            }
            Node::Supervisor(supervisor) => (
                Spec::Supervisor {
                    settings: supervisor.as_child.clone(),
                    strategy: supervisor.strategy,
                    pool: supervisor.pool.is_some(),
                    spec: Some(supervisor),
                    board: None,
                },
                Ok(Vec::new()),
            ),
        };
        self.slots.push(Slot {
            id: ChildId(self.next_slot),
            path,
            spec,
            state: SlotState::Stopped,
            instance: 0,
            restarts: 0,
            failures_in_row: 0,
            last_fault: None,
            leaked: 0,
            enforcement: None,
            mailbox: Arc::new(Mailbox::default()),
            capabilities,
            parked: None,
            initial,
            retired: false,
        });
        self.next_slot += 1;
        self.slots.len() - 1
    }

    /// The specification this supervisor was started from (initial children
    /// only); children added at run time are dropped here, under the panic
    /// guard.
    fn into_spec(mut self) -> Supervisor {
        let mut children = Vec::new();
        for slot in std::mem::take(&mut self.slots) {
            if slot.initial {
                match slot.spec {
                    Spec::Worker(child) => children.push(Node::Worker(child)),
                    Spec::Supervisor { spec, .. } => children.extend(spec.map(Node::Supervisor)),
                }
                self.drop_mailbox(&slot.path, slot.instance, &slot.mailbox);
            } else {
                self.drop_slot(slot);
            }
        }
        Supervisor {
            strategy: self.strategy,
            max_restarts: self.intensity.max_restarts(),
            period: self.intensity.period(),
            auto_shutdown: self.auto_shutdown,
            children,
            pool: self.pool.take(),
            pool_error: None,
            as_child: self.as_child.clone(),
            escalation: self.escalation,
            tree: self.tree_settings.clone(),
            bus: Arc::clone(&self.bus_of_spec),
        }
    }

    fn unregister(&self) {
        unregister(&self.tree, &self.path, &self.control);
    }

    fn index_of(&self, id: ChildId) -> Option<usize> {
        self.slots.iter().position(|slot| slot.id == id)
    }

    fn now(&self) -> Instant {
        self.tree.clock.read()
    }

    /// Publishes an event after updating the status board, so that whoever
    /// sees the event sees at least that state in `status()`.
    fn emit(&self, path: &str, instance: Option<u64>, kind: EventKind) {
        self.sync_status();
        self.tree.publish(path, instance, kind);
    }

    /// [`emit`](Self::emit) for an event about child `i`: only its entry on
    /// the board needs updating, which keeps starting a large pool linear.
    fn emit_child(&self, i: usize, instance: Option<u64>, kind: EventKind) {
        self.sync_slot(i);
        self.tree.publish(&self.slots[i].path, instance, kind);
    }

    fn report_contained(&self, path: &str, instance: u64, caught: fault::Caught, doing: &str) {
        report_contained(&self.tree, path, instance, caught, doing);
    }

    /// Drops a slot that leaves the tree, under the panic guard.
    fn drop_slot(&self, slot: Slot) {
        let (path, instance) = (slot.path.clone(), slot.instance);
        self.drop_mailbox(&path, instance, &slot.mailbox);
        if let Err(caught) = fault::drop_contained(slot) {
            self.report_contained(&path, instance, caught, "dropping its specification");
        }
    }

    /// Drops the messages waiting in a mailbox, under the panic guard.
    fn drop_mailbox(&self, path: &str, instance: u64, mailbox: &Mailbox) {
        for tracked in mailbox.take_all() {
            if let Err(caught) = fault::drop_contained(tracked) {
                self.report_contained(path, instance, caught, "dropping a kept message");
            }
        }
    }

    // ----- starting -------------------------------------------------------

    /// Starts the initial children in order; on the first failure stops the
    /// started ones in reverse order and fails.
    fn start_initial(&mut self) -> Result<(), StartError> {
        for i in 0..self.slots.len() {
            if let Err(fault) = self.start_slot(i) {
                self.emit_child(
                    i,
                    Some(fault.instance),
                    EventKind::Faulted {
                        fault: (*fault).clone(),
                    },
                );
                self.stop_all();
                self.sync_status();
                return Err(StartError::ChildFailed { fault });
            }
        }
        self.sync_status();
        Ok(())
    }

    /// Starts a new instance of slot `i`.
    fn start_slot(&mut self, i: usize) -> Result<(), Box<Fault>> {
        let instance = self.slots[i].instance + 1;
        let path = self.slots[i].path.clone();
        let id = self.slots[i].id;
        let mailbox = Arc::clone(&self.slots[i].mailbox);
        let parked = self.slots[i].parked.take();
        let slot = &mut self.slots[i];
        let handle = match (&slot.capabilities, &mut slot.spec) {
            (Err(message), _) => Err(FaultKind::StartFailed {
                message: message.clone(),
            }),
            (Ok(_), Spec::Worker(child)) => spawn_worker(
                &self.tree,
                child,
                &path,
                instance,
                mailbox,
                id,
                &self.control,
                parked,
            ),
            (
                Ok(_),
                Spec::Supervisor {
                    spec,
                    board: slot_board,
                    ..
                },
            ) => match spec.take() {
                None => Err(FaultKind::StartFailed {
                    message: "its specification was lost with an instance that never stopped"
                        .to_owned(),
                }),
                Some(nested) => {
                    match spawn_supervisor(&self.tree, nested, &path, instance, id, &self.control) {
                        Ok((handle, board)) => {
                            *slot_board = Some(board);
                            Ok(handle)
                        }
                        Err(failure) => {
                            *spec = failure.spec;
                            Err(failure.kind)
                        }
                    }
                }
            },
        };
        let slot = &mut self.slots[i];
        slot.instance = instance;
        match handle {
            Ok(handle) => {
                let enforcement = match &handle {
                    Handle::Worker { enforcement, .. } => *enforcement,
                    Handle::Supervisor { .. } => None,
                };
                slot.enforcement = enforcement;
                slot.state = SlotState::Running {
                    instance,
                    handle,
                    started_at: self.tree.clock.read(),
                };
                if let Some(enforcement) = enforcement {
                    self.emit_child(i, Some(instance), EventKind::LockedDown { enforcement });
                }
                let kind = if instance == 1 {
                    EventKind::Started
                } else {
                    EventKind::Restarted
                };
                self.emit_child(i, Some(instance), kind);
                Ok(())
            }
            Err(kind) => {
                slot.state = SlotState::Stopped;
                let fault = Fault::new(&path, instance, kind);
                slot.last_fault = Some(fault.clone());
                Err(Box::new(fault))
            }
        }
    }

    /// Starts the slots `ids` in order (a restart set); returns the starts
    /// that failed, as faults already reported, for the caller to react to
    /// after the rest have started.
    fn start_set(&mut self, ids: &[ChildId]) -> Vec<(ChildId, Outcome)> {
        let mut failures = Vec::new();
        for &id in ids {
            let Some(i) = self.index_of(id) else { continue };
            if self.slots[i].is_running() {
                continue;
            }
            self.slots[i].restarts += 1;
            if let Err(fault) = self.start_slot(i) {
                self.emit_child(
                    i,
                    Some(fault.instance),
                    EventKind::Faulted {
                        fault: (*fault).clone(),
                    },
                );
                failures.push((id, Outcome::Failed(*fault)));
            }
        }
        failures
    }

    // ----- the loop -------------------------------------------------------

    fn serve(&mut self) -> Outcome {
        loop {
            if let Some(outcome) = self.exit.take() {
                self.sync_status();
                return outcome;
            }
            let message = match self.deferred.pop_front() {
                Some(message) => Some(message),
                None => self.receive(self.next_timer()),
            };
            match message {
                Some(message) => self.handle(message),
                None => self.fire_timers(),
            }
        }
    }

    /// The next control message, or `None` once the clock reaches
    /// `deadline`.
    fn receive(&self, deadline: Option<Instant>) -> Option<Control> {
        loop {
            if deadline.is_some_and(|deadline| self.now() >= deadline) {
                return None;
            }
            match &self.advances {
                // The OS clock: its instants are real deadlines.
                None => {
                    return match deadline {
                        Some(deadline) => self.inbox.recv_deadline(deadline).ok(),
                        None => self.inbox.recv().ok(),
                    };
                }
                // A manual clock: wait for a message or for the clock to move.
                Some(advances) => {
                    cb::select! {
                        recv(self.inbox) -> message => return message.ok(),
                        recv(advances) -> _ => {}
                    }
                }
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.iter().map(|(due, _)| *due).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        let (due, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.timers = pending;
        let mut failures = Vec::new();
        for (_, ids) in due {
            let ids: Vec<ChildId> = ids
                .into_iter()
                .filter(|id| {
                    self.index_of(*id)
                        .is_some_and(|i| matches!(self.slots[i].state, SlotState::BackingOff))
                })
                .collect();
            failures.extend(self.start_set(&ids));
        }
        self.react(failures);
    }

    fn handle(&mut self, message: Control) {
        match message {
            Control::Exited {
                slot,
                instance,
                report,
            } => self.on_exit(slot, instance, report),
            Control::OverBudget { slot, instance } => self.over_budget(slot, instance),
            Control::Shutdown => {
                self.stop_all();
                self.exit = Some(Outcome::Shutdown);
            }
            // Each reply goes out after the status board shows the change.
            Control::Add { node, reply } => {
                let result = self.add(node);
                self.sync_status();
                let _ = reply.send(result);
            }
            Control::Remove { name, reply } => {
                let result = self.remove(&name);
                self.sync_status();
                let _ = reply.send(result);
            }
            Control::AddPoolMember { reply } => {
                let result = self.add_pool_member();
                self.sync_status();
                let _ = reply.send(result);
            }
        }
    }

    // ----- exits and restarts ----------------------------------------------

    fn on_exit(&mut self, id: ChildId, instance: u64, report: ExitReport) {
        let Some(i) = self.index_of(id) else {
            self.discard(report);
            return;
        };
        if !self.slots[i].runs(instance) {
            // A detached instance finishing late: it was already reported.
            self.discard(report);
            return;
        }
        let outcome = self.finish(i, report);
        self.react(vec![(id, outcome)]);
    }

    /// Drops what a stale exit report carries, under the panic guard.
    fn discard(&self, report: ExitReport) {
        let path = self.path.clone();
        if let Err(caught) = fault::drop_contained(report) {
            self.report_contained(&path, self.instance, caught, "dropping a late exit report");
        }
    }

    /// Bookkeeping for an instance that ended: reports the exit, hands over
    /// a dead letter, takes back a nested supervisor's specification.
    fn finish(&mut self, i: usize, report: ExitReport) -> Outcome {
        let ExitReport {
            outcome,
            dead_letter,
            spec: returned_spec,
        } = report;
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
            let ran = self.tree.clock.read().saturating_duration_since(started_at);
            let reset_after = slot.settings().backoff.map_or(Duration::ZERO, |b| b.max);
            if ran >= reset_after || !matches!(outcome, Outcome::Failed(_)) {
                slot.failures_in_row = 0;
            }
            if let Some(fault) = outcome.fault() {
                slot.last_fault = Some(fault.clone());
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
    fn dispose(&mut self, i: usize, letter: super::DeadLetter) {
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
    fn react(&mut self, endings: Vec<(ChildId, Outcome)>) {
        let mut queue = VecDeque::from(endings);
        while let Some((id, outcome)) = queue.pop_front() {
            if self.exit.is_some() {
                // The supervisor is ending: what is left was reported, and
                // nothing is restarted any more.
                continue;
            }
            let Some(i) = self.index_of(id) else { continue };
            let members: Vec<_> = self.slots.iter().map(Slot::member).collect();
            let now = self.now();
            let plan = plan::plan(
                self.strategy,
                self.auto_shutdown,
                &members,
                i,
                outcome.ending(),
                &mut self.intensity,
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
                        EventKind::AutoShutdown { trigger },
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
    fn restart(
        &mut self,
        failed: ChildId,
        stop: &[ChildId],
        retire: &[ChildId],
        start: &[ChildId],
    ) -> Vec<(ChildId, Outcome)> {
        let Some(i) = self.index_of(failed) else {
            return Vec::new();
        };
        let names = start
            .iter()
            .chain(retire)
            .filter_map(|id| self.index_of(*id))
            .map(|j| self.slots[j].path.clone())
            .collect();
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::Restarting {
                cause: self.slots[i].path.clone(),
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
                    }
                }
                let instance = self.slots[i].instance;
                self.emit_child(i, Some(instance), EventKind::BackingOff { delay });
                let now = self.now();
                let due = now.checked_add(delay).unwrap_or(now);
                self.timers.push((due, start.to_vec()));
                Vec::new()
            }
            None => self.start_set(start),
        }
    }

    fn give_up(&mut self, outcome: Outcome) {
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::GaveUp {
                max_restarts: self.intensity.max_restarts(),
                period: self.intensity.period(),
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
    fn retire(&mut self, id: ChildId) {
        let Some(i) = self.index_of(id) else { return };
        self.slots[i].state = SlotState::Stopped;
        self.slots[i].parked = None;
        if self.slots[i].initial {
            self.slots[i].retired = true;
            self.sync_slot(i);
        } else {
            let slot = self.slots.remove(i);
            self.sync_status();
            self.drop_slot(slot);
        }
    }

    // ----- stopping -------------------------------------------------------

    /// Stops every child in reverse start order; a pool stops its members in
    /// parallel.
    fn stop_all(&mut self) {
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

    fn stop_slot(&mut self, i: usize) {
        self.stop_parallel(&[i]);
    }

    /// Asks every slot in `indices` to stop, then waits for each in turn
    /// until its own deadline.
    fn stop_parallel(&mut self, indices: &[usize]) {
        let now = self.now();
        let mut waiting = Vec::new();
        for &i in indices {
            let slot = &mut self.slots[i];
            match &slot.state {
                SlotState::Running {
                    instance, handle, ..
                } => {
                    handle.ask_to_stop();
                    let timeout = slot.settings().shutdown;
                    waiting.push((slot.id, *instance, now.checked_add(timeout), timeout));
                }
                SlotState::BackingOff | SlotState::Restarting => slot.state = SlotState::Stopped,
                SlotState::Stopped => {}
            }
        }
        for (id, instance, deadline, timeout) in waiting {
            match self.wait_exit(id, instance, deadline) {
                Some(report) => {
                    if let Some(i) = self.index_of(id) {
                        self.finish(i, report);
                    }
                }
                None => {
                    if let Some(i) = self.index_of(id)
                        && let Some(instance) = self.detach(i, Outcome::Shutdown)
                    {
                        self.emit_child(i, Some(instance), EventKind::ShutdownTimedOut { timeout });
                    }
                }
            }
        }
    }

    /// Waits for the exit report of `instance` of slot `id`, keeping other
    /// messages for later.
    fn wait_exit(
        &mut self,
        id: ChildId,
        instance: u64,
        deadline: Option<Instant>,
    ) -> Option<ExitReport> {
        if let Some(position) = self.deferred.iter().position(|message| {
            matches!(message, Control::Exited { slot, instance: inst, .. } if *slot == id && *inst == instance)
        }) && let Some(Control::Exited { report, .. }) = self.deferred.remove(position)
        {
            return Some(report);
        }
        loop {
            match self.receive(deadline)? {
                Control::Exited {
                    slot,
                    instance: inst,
                    report,
                } if slot == id && inst == instance => return Some(report),
                other => self.deferred.push_back(other),
            }
        }
    }

    /// Revokes the running instance's grant, detaches its thread and counts
    /// it; settles the message it was handling as if it had ended with
    /// `outcome` (which comes back with the message named in its fault).
    /// Returns which instance it was.
    fn detach(&mut self, i: usize, outcome: Outcome) -> Option<u64> {
        self.detach_settling(i, outcome)
            .map(|(instance, _)| instance)
    }

    fn detach_settling(&mut self, i: usize, outcome: Outcome) -> Option<(u64, Outcome)> {
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
    fn over_budget(&mut self, id: ChildId, instance: u64) {
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
        let outcome = match self.wait_exit(id, instance, deadline) {
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
                    self.slots[i].last_fault = Some(fault.clone());
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

    // ----- dynamic children -----------------------------------------------

    fn add(&mut self, node: Node) -> Result<(), ControlError> {
        let settings = node.settings().clone();
        let invalid = validate_child(&self.path, &settings, self.auto_shutdown)
            .err()
            .or_else(|| match &node {
                Node::Supervisor(nested) => nested.validate().err(),
                Node::Worker(_) => None,
            })
            .or_else(|| {
                self.slots
                    .iter()
                    .any(|slot| !slot.retired && slot.name() == settings.name)
                    .then(|| super::error::SpecError::DuplicateName {
                        supervisor: self.path.clone(),
                        name: settings.name.clone(),
                    })
            });
        if let Some(err) = invalid {
            let path = format!("{}/{}", self.path, settings.name);
            if let Err(caught) = fault::drop_contained(node) {
                self.report_contained(&path, 0, caught, "dropping its specification");
            }
            return Err(StartError::from(err).into());
        }
        let i = self.push_slot(node, false);
        match self.start_slot(i) {
            Ok(()) => Ok(()),
            Err(fault) => {
                let slot = self.slots.remove(i);
                self.drop_slot(slot);
                Err(StartError::ChildFailed { fault }.into())
            }
        }
    }

    fn remove(&mut self, name: &str) -> Result<(), ControlError> {
        let Some(i) = self
            .slots
            .iter()
            .position(|slot| !slot.retired && slot.name() == name)
        else {
            return Err(ControlError::NotFound {
                path: format!("{}/{name}", self.path),
            });
        };
        let id = self.slots[i].id;
        for (_, ids) in &mut self.timers {
            ids.retain(|pending| *pending != id);
        }
        self.stop_slot(i);
        self.retire(id);
        Ok(())
    }

    fn add_pool_member(&mut self) -> Result<String, ControlError> {
        let Some(template) = &self.pool else {
            return Err(ControlError::NotAPool {
                path: self.path.clone(),
            });
        };
        let name = format!("{}-{}", template.name(), self.next_member);
        let failed = |kind| StartError::ChildFailed {
            fault: Box::new(Fault::new(&format!("{}/{name}", self.path), 0, kind)),
        };
        let member = match fault::contain(|| template.duplicate(name.clone())) {
            Ok(Ok(member)) => member,
            Ok(Err(err)) => {
                let message = fault::describe_contained("an error", || fault::with_sources(&err));
                return Err(failed(FaultKind::StartFailed { message }).into());
            }
            Err(caught) => return Err(failed(caught.start_failed("re-issuing its grant")).into()),
        };
        self.next_member += 1;
        self.add(Node::Worker(member))?;
        Ok(format!("{}/{name}", self.path))
    }

    // ----- status ---------------------------------------------------------

    /// Rebuilds the whole status board, one entry per slot (`None` for
    /// retired ones), in slot order.
    fn sync_status(&self) {
        *self.board.entries.lock() = self.board_entries();
    }

    /// Updates child `i`'s entry only; the board mirrors the slots, so a
    /// board of another length means the slots changed shape: rebuild.
    fn sync_slot(&self, i: usize) {
        let mut entries = self.board.entries.lock();
        if entries.len() == self.slots.len() {
            entries[i] = self.board_entry(&self.slots[i]);
        } else {
            *entries = self.board_entries();
        }
    }

    fn board_entries(&self) -> Vec<Option<BoardEntry>> {
        self.slots
            .iter()
            .map(|slot| self.board_entry(slot))
            .collect()
    }

    fn board_entry(&self, slot: &Slot) -> Option<BoardEntry> {
        if slot.retired {
            return None;
        }
        let (kind, nested) = match &slot.spec {
            Spec::Worker(_) => (NodeKind::Worker, None),
            Spec::Supervisor {
                strategy,
                pool,
                board,
                ..
            } => (
                NodeKind::Supervisor {
                    strategy: *strategy,
                    pool: *pool,
                },
                board.clone(),
            ),
        };
        let (meter, threads) = match &slot.state {
            SlotState::Running {
                handle: Handle::Worker { meter, threads, .. },
                ..
            } => (meter.clone(), Some(Arc::clone(threads))),
            _ => (None, None),
        };
        Some(BoardEntry {
            meter,
            threads,
            status: ChildStatus {
                path: slot.path.clone(),
                kind,
                state: match slot.state {
                    SlotState::Running { .. } => ChildState::Running,
                    SlotState::Restarting => ChildState::Restarting,
                    SlotState::BackingOff => ChildState::BackingOff,
                    SlotState::Stopped => ChildState::Stopped,
                },
                instance: slot.instance,
                restarts: slot.restarts,
                last_fault: slot.last_fault.clone(),
                leaked_threads: slot.leaked,
                threads: 0,
                lockdown: slot.enforcement,
                usage: None,
                capabilities: slot.capabilities.clone().unwrap_or_default(),
                children: Vec::new(),
            },
            nested,
        })
    }
}
