//! A supervisor's thread and its state machine.
//!
//! Each supervisor runs on its own thread and owns its children's slots;
//! nothing else mutates them. Instance threads and the outside world talk
//! to it only through its control channel ([`Control`]). While it waits for
//! one child to stop, other messages are kept in `deferred` and handled
//! afterwards in arrival order, so no exit report is lost or reordered.
//!
//! This file holds the state, the thread's body, starting children and the
//! loop; `exits.rs` reports ended instances and carries out the pure
//! [`plan`](super::plan::plan) (restarts are a loop over a queue of
//! endings, never a recursion, that stops at the first give-up); `stop.rs`
//! stops children; `dynamic.rs` adds and removes them at run time;
//! `board.rs` keeps the status board. Every call into user code made here — re-issuing and
//! listing grants, dropping specifications, messages and dead letters —
//! runs under the crate's panic guard, and the thread itself runs under it
//! too: a supervisor that dies anyway cancels and revokes its instances
//! (its state's `Drop`) and reports the failure to its parent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome, StartReply};
use super::error::StartError;
use super::intensity::Intensity;
use super::launch::{spawn_supervisor, spawn_worker};
use super::relaunch::Relaunch;
use super::slot::{ChildId, Handle, Slot, SlotState, Spec};
use super::spec::{AutoShutdown, Escalation, Node, Strategy, Supervisor};
use super::status::StatusBoard;
use super::tree::Tree;
use crate::component::{Child, ChildSettings};
use crate::event::EventKind;
use crate::fault::{self, Fault, FaultKind};
use crate::mailbox::Mailbox;

mod board;
mod dynamic;
mod exits;
mod stop;
mod timers;

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
    /// The restart window, shared with the instances that may restart
    /// themselves (see `relaunch`).
    intensity: Arc<parking_lot::Mutex<Intensity>>,
    pool: Option<Child>,
    as_child: ChildSettings,
    bus_of_spec: Arc<crate::event::EventBus>,
    tree_settings: super::spec::TreeSettings,
    control: cb::Sender<Control>,
    inbox: cb::Receiver<Control>,
    advances: Option<cb::Receiver<()>>,
    board: Arc<StatusBoard>,
    slots: Vec<Slot>,
    /// The children in the tree (not the retired ones) by path: adding
    /// and removing a child by name costs the same beside ten thousand.
    paths: HashMap<Arc<str>, ChildId>,
    next_slot: u64,
    next_member: usize,
    deferred: VecDeque<Control>,
    timers: timers::Timers,
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
                report: Box::new(ExitReport {
                    outcome,
                    dead_letter: None,
                    spec,
                    successor: None,
                }),
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
            if let Some(relaunch) = &slot.relaunch {
                relaunch.close();
            }
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
            intensity: Arc::new(parking_lot::Mutex::new(Intensity::new(
                max_restarts,
                period,
            ))),
            next_member: children.len(),
            pool,
            as_child,
            bus_of_spec: bus,
            tree_settings,
            control,
            inbox,
            advances,
            board,
            // Sized once: a pool's thousands of slots grown one by one would
            // leave the smaller arrays behind in the allocator.
            slots: Vec::with_capacity(children.len()),
            paths: HashMap::with_capacity(children.len()),
            next_slot: 1,
            deferred: VecDeque::new(),
            timers: timers::Timers::default(),
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
                    .map(Arc::from)
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
                Ok(Arc::from([])),
            ),
        };
        let id = ChildId(self.next_slot);
        let path: Arc<str> = path.into();
        self.paths.insert(Arc::clone(&path), id);
        self.slots.push(Slot {
            id,
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
            relaunch: None,
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
        let (max_restarts, period) = self.intensity.lock().bounds();
        Supervisor {
            strategy: self.strategy,
            max_restarts,
            period,
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

    /// Where slot `id` is. Slots are appended with ever larger ids and only
    /// ever taken out, never moved, so they stay sorted by id: a lookup is
    /// a binary search, which keeps a large pool's work per message small.
    fn index_of(&self, id: ChildId) -> Option<usize> {
        self.slots.binary_search_by_key(&id, |slot| slot.id).ok()
    }

    /// The child called `name`, unless it was retired.
    fn index_named(&self, name: &str) -> Option<usize> {
        let id = *self.paths.get(format!("{}/{name}", self.path).as_str())?;
        self.index_of(id)
    }

    /// Takes child `i` out of the slots, the paths and the board (its entry
    /// goes, the ones after it move up with the slots), so that taking a
    /// member out of a large pool does not rebuild the board.
    fn take_slot(&mut self, i: usize) -> Slot {
        self.unname(i);
        let slot = self.slots.remove(i);
        self.unlist(i);
        slot
    }

    /// Frees child `i`'s name for another child.
    fn unname(&mut self, i: usize) {
        let slot = &self.slots[i];
        if self.paths.get(&slot.path) == Some(&slot.id) {
            self.paths.remove(&slot.path);
        }
    }

    fn now(&self) -> Instant {
        self.tree.clock.now()
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

    /// [`emit`](Self::emit) for this supervisor's event about the children
    /// at `children` (a restart of them): only their entries need updating,
    /// which keeps a restart in a large pool from costing the pool's size.
    fn emit_about(&self, children: &[usize], kind: EventKind) {
        for &i in children {
            self.sync_slot(i);
        }
        self.tree.publish(&self.path, Some(self.instance), kind);
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
        let relaunch = self.relaunch_of(i);
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
                relaunch.as_ref(),
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
                    started_at: self.tree.clock.now(),
                };
                if let Some(relaunch) = &relaunch {
                    relaunch.open(instance);
                }
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
                slot.last_fault = Some(Arc::new(fault.clone()));
                Err(Box::new(fault))
            }
        }
    }

    /// Child `i`'s permit to restart itself on its own thread, if it may:
    /// a thread child of a one-for-one supervisor whose restart the planner
    /// would decide from the child alone — no backoff, no kernel policy
    /// (its threads come from a carrier), no limits (a watchdog's meter),
    /// not temporary — while the supervisor is not ending.
    fn relaunch_of(&mut self, i: usize) -> Option<Arc<Relaunch>> {
        if self.strategy != Strategy::OneForOne || self.exit.is_some() {
            return None;
        }
        let slot = &mut self.slots[i];
        let Spec::Worker(child) = &slot.spec else {
            return None;
        };
        let settings = &child.settings;
        let eligible = settings.backoff.is_none()
            && child.lockdown.is_none()
            && !settings.limits.is_watched()
            && settings.restart != crate::component::Restart::Temporary
            && !child.factory.runs_in_process();
        if !eligible {
            return None;
        }
        if slot.relaunch.is_none() {
            slot.relaunch = Some(Arc::new(Relaunch::new(
                child.factory.reissuer()?,
                settings.restart,
                settings.restart_mode,
                Arc::clone(&self.intensity),
            )));
        }
        slot.relaunch.clone()
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
        self.timers.next_due()
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        let mut failures = Vec::new();
        for ids in self.timers.take_due(now) {
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
            } => self.on_exit(slot, instance, *report),
            Control::OverBudget { slot, instance } => self.over_budget(slot, instance),
            Control::Shutdown => {
                self.stop_all();
                self.exit = Some(Outcome::Shutdown);
            }
            // Each reply goes out after the status board shows the change:
            // a child that starts is on it (`emit_child`), and one whose
            // start failed took its entry out with it (`take_slot`).
            Control::Add { node, reply } => {
                let result = self.add(*node);
                let _ = reply.send(result);
            }
            Control::Remove { name, reply } => {
                let result = self.remove(&name);
                let _ = reply.send(result);
            }
            Control::AddPoolMember { reply } => {
                let result = self.add_pool_member();
                let _ = reply.send(result);
            }
        }
    }
}
