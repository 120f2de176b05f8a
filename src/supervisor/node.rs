//! A supervisor's thread and its state machine.
//!
//! Each supervisor runs on its own thread and owns its children's slots;
//! nothing else mutates them. Instance threads and the outside world talk
//! to it only through its control channel ([`Control`]). While it waits for
//! one child to stop, other messages are kept in `deferred` and handled
//! afterwards in arrival order, so no exit report is lost or reordered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome, StartReply};
use super::error::{ControlError, StartError};
use super::instance::InstanceRun;
use super::intensity::Intensity;
use super::launch::{Parked, spawn_supervisor, spawn_worker};
use super::spec::{AutoShutdown, Node, Strategy, Supervisor, validate_child};
use super::status::{BoardEntry, ChildState, ChildStatus, NodeKind, StatusBoard};
use super::tree::Tree;
use crate::caps::Capability;
use crate::component::{Child, ChildSettings, Restart};
use crate::context::Mailbox;
use crate::event::{Disposal, EventKind, ExitReason};
use crate::fault::{Fault, FaultKind};
use crate::limits::Meter;
use crate::lockdown::Enforcement;
use crate::revoke::Revoker;
use crate::signal::Signal;

/// Everything a supervisor thread starts with.
pub(crate) struct NodeStart {
    pub(crate) spec: Supervisor,
    pub(crate) path: String,
    pub(crate) instance: u64,
    pub(crate) tree: Arc<Tree>,
    /// The parent's control channel and this supervisor's slot there; `None`
    /// for the root.
    pub(crate) parent: Option<(cb::Sender<Control>, u64)>,
    pub(crate) control: (cb::Sender<Control>, cb::Receiver<Control>),
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) started: StartReply,
    /// The root reports how the tree ended here.
    pub(crate) done: Option<cb::Sender<Outcome>>,
}

/// What a running instance is, seen from its supervisor.
pub(crate) enum Handle {
    Worker {
        cancel: Arc<Signal>,
        revoker: Revoker,
        join: JoinHandle<()>,
        /// What the kernel enforces for this instance, when locked down.
        enforcement: Option<Enforcement>,
        /// Its resource measurements, when it has limits.
        meter: Option<Arc<Meter>>,
        /// For in-place restarts: where the next instance is handed to this
        /// thread.
        resume: Option<cb::Sender<InstanceRun>>,
    },
    Supervisor {
        control: cb::Sender<Control>,
        join: JoinHandle<Supervisor>,
    },
}

enum SlotState {
    Running {
        instance: u64,
        handle: Handle,
        started_at: Instant,
    },
    Restarting,
    BackingOff,
    Stopped,
}

enum Spec {
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

struct Slot {
    id: u64,
    path: String,
    spec: Spec,
    state: SlotState,
    instance: u64,
    restarts: u64,
    failures_in_row: u32,
    last_fault: Option<Fault>,
    leaked: usize,
    /// What the kernel enforces for the current (or last) instance.
    enforcement: Option<Enforcement>,
    mailbox: Arc<Mailbox>,
    capabilities: Vec<(String, Capability)>,
    /// An in-place child's thread, waiting for its next instance.
    parked: Option<Parked>,
    /// The thread of an instance that ended, not yet joined.
    ended_thread: Option<JoinHandle<()>>,
    /// Part of the specification (restored when this supervisor restarts),
    /// as opposed to added at run time.
    initial: bool,
    /// An initial child that ended for good (temporary) or was removed: kept
    /// for the specification, invisible otherwise.
    retired: bool,
}

impl Slot {
    fn settings(&self) -> &ChildSettings {
        match &self.spec {
            Spec::Worker(child) => &child.settings,
            Spec::Supervisor { settings, .. } => settings,
        }
    }

    fn name(&self) -> &str {
        &self.settings().name
    }

    fn is_running(&self) -> bool {
        matches!(self.state, SlotState::Running { .. })
    }

    /// Whether the child is running or will run again on its own.
    fn is_active(&self) -> bool {
        matches!(
            self.state,
            SlotState::Running { .. } | SlotState::Restarting | SlotState::BackingOff
        )
    }
}

struct NodeState {
    path: String,
    instance: u64,
    tree: Arc<Tree>,
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
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
    timers: Vec<(Instant, Vec<u64>)>,
    exit: Option<Outcome>,
}

/// The body of every supervisor thread. Returns the specification so that
/// the parent can start this supervisor again.
pub(crate) fn run(start: NodeStart) -> Supervisor {
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
    let mut node = NodeState::new(spec, path, instance, tree, control, board);
    if let Err(err) = node.start_initial() {
        node.unregister();
        let _ = started.send(Err(err));
        return node.into_spec();
    }
    let _ = started.send(Ok(()));
    let outcome = node.serve();
    node.unregister();
    match (parent, done) {
        (Some((parent, slot)), _) => {
            let _ = parent.send(Control::Exited {
                slot,
                instance,
                report: ExitReport {
                    outcome,
                    dead_letter: None,
                },
            });
        }
        (None, Some(done)) => {
            let _ = done.send(outcome);
        }
        (None, None) => {}
    }
    node.into_spec()
}

/// Lets a parked in-place thread end, and joins it and any ended thread.
fn release(slot: &mut Slot) {
    if let Some(parked) = slot.parked.take() {
        drop(parked.resume);
        let _ = parked.join.join();
    }
    if let Some(ended) = slot.ended_thread.take() {
        let _ = ended.join();
    }
}

fn should_restart(restart: Restart, outcome: &Outcome) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => matches!(outcome, Outcome::Failed(_)),
        Restart::Temporary => false,
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
                let capabilities = child.factory.capabilities();
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
                Vec::new(),
            ),
        };
        self.slots.push(Slot {
            id: self.next_slot,
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
            ended_thread: None,
            initial,
            retired: false,
        });
        self.next_slot += 1;
        self.slots.len() - 1
    }

    fn into_spec(self) -> Supervisor {
        let children = self
            .slots
            .into_iter()
            .filter(|slot| slot.initial)
            .filter_map(|slot| match slot.spec {
                Spec::Worker(child) => Some(Node::Worker(child)),
                Spec::Supervisor { spec, .. } => spec.map(Node::Supervisor),
            })
            .collect();
        Supervisor {
            strategy: self.strategy,
            max_restarts: self.intensity.max_restarts(),
            period: self.intensity.period(),
            auto_shutdown: self.auto_shutdown,
            children,
            pool: self.pool,
            pool_error: None,
            as_child: self.as_child,
            tree: self.tree_settings,
            bus: self.bus_of_spec,
        }
    }

    fn unregister(&self) {
        let mut supervisors = self.tree.supervisors.lock();
        if supervisors
            .get(&self.path)
            .is_some_and(|handle| handle.control.same_channel(&self.control))
        {
            supervisors.remove(&self.path);
        }
    }

    fn index_of(&self, id: u64) -> Option<usize> {
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
        let handle = match &mut self.slots[i].spec {
            Spec::Worker(child) => spawn_worker(
                &self.tree,
                child,
                &path,
                instance,
                mailbox,
                id,
                &self.control,
                parked,
            ),
            Spec::Supervisor {
                spec,
                board: slot_board,
                ..
            } => match spec.take() {
                None => {
                    Err("its specification was lost with an instance that never stopped".to_owned())
                }
                Some(nested) => {
                    match spawn_supervisor(&self.tree, nested, &path, instance, id, &self.control) {
                        Ok((handle, board)) => {
                            *slot_board = Some(board);
                            Ok(handle)
                        }
                        Err(failure) => {
                            *spec = failure.spec;
                            Err(failure.message)
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
                if let Some(ended) = self.slots[i].ended_thread.take() {
                    let _ = ended.join();
                }
                Ok(())
            }
            Err(message) => {
                slot.state = SlotState::Stopped;
                let fault = Fault {
                    path,
                    instance,
                    kind: FaultKind::StartFailed { message },
                    in_flight: None,
                };
                slot.last_fault = Some(fault.clone());
                Err(Box::new(fault))
            }
        }
    }

    /// Starts the slots `ids` in order (a restart set). A start that fails
    /// is handled like a crash of that child, after the rest have started.
    fn start_set(&mut self, ids: &[u64]) {
        let mut failures = Vec::new();
        for &id in ids {
            let Some(i) = self.index_of(id) else { continue };
            if self.slots[i].is_running() {
                continue;
            }
            self.slots[i].restarts += 1;
            if let Err(fault) = self.start_slot(i) {
                failures.push((id, *fault));
            }
        }
        for (id, fault) in failures {
            if let Some(i) = self.index_of(id) {
                self.emit_child(
                    i,
                    Some(fault.instance),
                    EventKind::Faulted {
                        fault: fault.clone(),
                    },
                );
                self.after_exit(i, Outcome::Failed(fault));
            }
        }
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
            self.sync_status();
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
        for (_, ids) in due {
            let ids: Vec<u64> = ids
                .into_iter()
                .filter(|id| {
                    self.index_of(*id)
                        .is_some_and(|i| matches!(self.slots[i].state, SlotState::BackingOff))
                })
                .collect();
            self.start_set(&ids);
        }
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

    fn on_exit(&mut self, id: u64, instance: u64, report: ExitReport) {
        let Some(i) = self.index_of(id) else { return };
        let current = matches!(self.slots[i].state, SlotState::Running { instance: running, .. } if running == instance);
        if !current {
            // A detached instance finishing late: it was already reported.
            return;
        }
        let outcome = self.finish(i, report);
        self.after_exit(i, outcome);
    }

    /// Bookkeeping for an instance that ended: joins its thread, reports the
    /// exit, hands over a dead letter.
    fn finish(&mut self, i: usize, report: ExitReport) -> Outcome {
        let state = std::mem::replace(&mut self.slots[i].state, SlotState::Stopped);
        let slot = &mut self.slots[i];
        if let SlotState::Running {
            instance,
            handle,
            started_at,
        } = state
        {
            match handle {
                Handle::Worker {
                    join,
                    resume: Some(resume),
                    enforcement,
                    revoker,
                    ..
                } => {
                    // Whatever the ended instance left behind (in a
                    // thread-local, say) holds nothing any more.
                    revoker.revoke();
                    // The thread waits for its next instance.
                    slot.parked = Some(Parked {
                        resume,
                        join,
                        enforcement,
                    });
                }
                Handle::Worker { join, revoker, .. } => {
                    revoker.revoke();
                    // The instance has ended; its thread is only unwinding
                    // its thread-locals. Joined after the next instance has
                    // started, which keeps the join off the restart path.
                    slot.ended_thread = Some(join);
                }
                Handle::Supervisor { join, .. } => {
                    if let Ok(spec) = join.join()
                        && let Spec::Supervisor {
                            spec: slot_spec, ..
                        } = &mut slot.spec
                    {
                        *slot_spec = Some(Box::new(spec));
                    }
                }
            }
            let ran = self.tree.clock.read().saturating_duration_since(started_at);
            let reset_after = slot.settings().backoff.map_or(Duration::ZERO, |b| b.max);
            if ran >= reset_after || !matches!(report.outcome, Outcome::Failed(_)) {
                slot.failures_in_row = 0;
            }
            let kind = match &report.outcome {
                Outcome::Normal => EventKind::Exited {
                    reason: ExitReason::Normal,
                },
                Outcome::Shutdown => EventKind::Exited {
                    reason: ExitReason::Shutdown,
                },
                Outcome::Failed(fault) => {
                    slot.last_fault = Some(fault.clone());
                    EventKind::Faulted {
                        fault: fault.clone(),
                    }
                }
            };
            self.emit_child(i, Some(instance), kind);
        }
        if let Some(letter) = report.dead_letter {
            let description = letter.description.clone();
            let attempts = letter.attempts;
            let disposal = match &self.tree.dead_letters {
                None => Disposal::NoSink,
                Some(sink) => match sink.try_send(letter) {
                    Ok(()) => Disposal::Delivered,
                    Err(_) => Disposal::SinkFull,
                },
            };
            self.emit_child(
                i,
                Some(self.slots[i].instance),
                EventKind::DeadLettered {
                    description,
                    attempts,
                    disposal,
                },
            );
        }
        report.outcome
    }

    /// Applies the restart type and strategy to a child that ended on its
    /// own.
    fn after_exit(&mut self, i: usize, outcome: Outcome) {
        let ChildSettings {
            restart,
            significant,
            ..
        } = *self.slots[i].settings();
        let failed_id = self.slots[i].id;
        let failed_path = self.slots[i].path.clone();
        if !should_restart(restart, &outcome) {
            if restart == Restart::Temporary {
                self.retire(failed_id);
            }
            if significant && self.auto_shutdown_due() {
                self.emit(
                    &self.path,
                    Some(self.instance),
                    EventKind::AutoShutdown {
                        trigger: failed_path,
                    },
                );
                self.stop_all();
                self.exit = Some(Outcome::Normal);
            }
            return;
        }
        let now = self.now();
        if !self.intensity.record(now) {
            self.give_up(outcome);
            return;
        }
        let set: Vec<u64> = match self.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => (0..self.slots.len()).collect(),
            Strategy::RestForOne => (i..self.slots.len()).collect(),
        }
        .into_iter()
        .filter(|&j| !self.slots[j].retired)
        .map(|j| self.slots[j].id)
        .collect();
        let names = set
            .iter()
            .filter_map(|id| self.index_of(*id))
            .map(|j| self.slots[j].path.clone())
            .collect();
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::Restarting {
                cause: failed_path,
                children: names,
            },
        );
        // Stop the rest of the set in reverse start order.
        for &id in set.iter().rev() {
            if let Some(j) = self.index_of(id)
                && id != failed_id
                && self.slots[j].is_running()
            {
                self.stop_slot(j);
            }
        }
        // Temporary bystanders stopped for the restart are not restarted.
        let mut restart = Vec::new();
        for &id in &set {
            let Some(j) = self.index_of(id) else { continue };
            if id != failed_id && self.slots[j].settings().restart == Restart::Temporary {
                self.retire(id);
            } else {
                self.slots[j].state = SlotState::Restarting;
                restart.push(id);
            }
        }
        let Some(i) = self.index_of(failed_id) else {
            return;
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
                for id in &restart {
                    if let Some(j) = self.index_of(*id) {
                        self.slots[j].state = SlotState::BackingOff;
                    }
                }
                self.emit_child(
                    i,
                    Some(self.slots[i].instance),
                    EventKind::BackingOff { delay },
                );
                let due = now.checked_add(delay).unwrap_or(now);
                self.timers.push((due, restart));
            }
            None => self.start_set(&restart),
        }
    }

    fn auto_shutdown_due(&self) -> bool {
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .slots
                .iter()
                .any(|slot| !slot.retired && slot.settings().significant && slot.is_active()),
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
            Outcome::Failed(fault) => fault,
            // A permanent child that keeps ending normally also exhausts the
            // intensity; say so.
            other => Fault {
                path: self.path.clone(),
                instance: self.instance,
                kind: FaultKind::Error {
                    message: format!("a permanent child kept ending ({other:?})"),
                    sources: Vec::new(),
                },
                in_flight: None,
            },
        };
        let fault = Fault {
            path: self.path.clone(),
            instance: self.instance,
            kind: FaultKind::Escalated {
                cause: Box::new(cause),
            },
            in_flight: None,
        };
        self.emit(
            &self.path,
            Some(self.instance),
            EventKind::Escalated {
                fault: fault.clone(),
            },
        );
        self.exit = Some(Outcome::Failed(fault));
    }

    /// Takes a child out of the tree: an initial child is kept (hidden) for
    /// the specification, a dynamic one is forgotten.
    fn retire(&mut self, id: u64) {
        let Some(i) = self.index_of(id) else { return };
        self.slots[i].state = SlotState::Stopped;
        release(&mut self.slots[i]);
        if self.slots[i].initial {
            self.slots[i].retired = true;
        } else {
            self.slots.remove(i);
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
            release(&mut self.slots[i]);
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
                    match handle {
                        Handle::Worker { cancel, .. } => cancel.raise(),
                        Handle::Supervisor { control, .. } => {
                            let _ = control.send(Control::Shutdown);
                        }
                    }
                    let timeout = slot.settings().shutdown;
                    waiting.push((i, slot.id, *instance, now.checked_add(timeout), timeout));
                }
                SlotState::BackingOff | SlotState::Restarting => slot.state = SlotState::Stopped,
                SlotState::Stopped => {}
            }
        }
        for (i, id, instance, deadline, timeout) in waiting {
            match self.wait_exit(id, instance, deadline) {
                Some(report) => {
                    self.finish(i, report);
                }
                None => self.abandon(i, timeout),
            }
        }
    }

    /// Waits for the exit report of `instance` of slot `id`, keeping other
    /// messages for later.
    fn wait_exit(
        &mut self,
        id: u64,
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

    /// The instance ignored its shutdown request: revoke its grant, detach
    /// its thread, count it.
    fn abandon(&mut self, i: usize, timeout: Duration) {
        if let Some(instance) = self.detach(i) {
            self.emit_child(i, Some(instance), EventKind::ShutdownTimedOut { timeout });
        }
    }

    /// Revokes the running instance's grant, detaches its thread and counts
    /// it; returns which instance it was.
    fn detach(&mut self, i: usize) -> Option<u64> {
        let state = std::mem::replace(&mut self.slots[i].state, SlotState::Stopped);
        let SlotState::Running {
            instance, handle, ..
        } = state
        else {
            return None;
        };
        match handle {
            Handle::Worker { revoker, join, .. } => {
                revoker.revoke();
                drop(join);
            }
            Handle::Supervisor { join, .. } => drop(join),
        }
        self.slots[i].leaked += 1;
        self.tree.count_leak();
        Some(instance)
    }

    /// The watchdog cancelled an instance for going over a budget. It has
    /// its shutdown timeout to stop (its exit then reports the budget);
    /// otherwise it is a runaway: revoked, detached, and faulted. Either way
    /// its restart type and the strategy decide what comes next.
    fn over_budget(&mut self, id: u64, instance: u64) {
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
                self.detach(i);
                let Some(budget) = budget else { return };
                let fault = Fault {
                    path: self.slots[i].path.clone(),
                    instance,
                    kind: FaultKind::BudgetExceeded {
                        budget,
                        runaway: true,
                    },
                    in_flight: None,
                };
                self.slots[i].last_fault = Some(fault.clone());
                self.emit_child(
                    i,
                    Some(instance),
                    EventKind::Faulted {
                        fault: fault.clone(),
                    },
                );
                Outcome::Failed(fault)
            }
        };
        if let Some(i) = self.index_of(id) {
            self.after_exit(i, outcome);
        }
    }

    // ----- dynamic children -----------------------------------------------

    fn add(&mut self, node: Node) -> Result<(), ControlError> {
        let settings = node.settings().clone();
        validate_child(&self.path, &settings, self.auto_shutdown).map_err(StartError::from)?;
        if let Node::Supervisor(nested) = &node {
            nested.validate().map_err(StartError::from)?;
        }
        if self
            .slots
            .iter()
            .any(|slot| !slot.retired && slot.name() == settings.name)
        {
            return Err(StartError::from(super::error::SpecError::DuplicateName {
                supervisor: self.path.clone(),
                name: settings.name,
            })
            .into());
        }
        let i = self.push_slot(node, false);
        match self.start_slot(i) {
            Ok(()) => Ok(()),
            Err(fault) => {
                self.slots.remove(i);
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
        let member = template
            .duplicate(name.clone())
            .map_err(|err| StartError::ChildFailed {
                fault: Box::new(Fault {
                    path: format!("{}/{name}", self.path),
                    instance: 0,
                    kind: FaultKind::StartFailed {
                        message: crate::fault::with_sources(&err),
                    },
                    in_flight: None,
                }),
            })?;
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
        let meter = match &slot.state {
            SlotState::Running {
                handle: Handle::Worker { meter, .. },
                ..
            } => meter.clone(),
            _ => None,
        };
        Some(BoardEntry {
            meter,
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
                lockdown: slot.enforcement,
                usage: None,
                capabilities: slot.capabilities.clone(),
                children: Vec::new(),
            },
            nested,
        })
    }
}
