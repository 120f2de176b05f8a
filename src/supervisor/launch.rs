//! Spawning instance threads and supervisor threads.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel as cb;

use super::control::{Control, Outcome};
use super::error::StartError;
use super::instance::{InstanceRun, run_instance};
use super::node::{NodeStart, run};
use super::relaunch::Relaunch;
use super::slot::{ChildId, Handle};
use super::spec::Supervisor;
use super::status::StatusBoard;
use super::tree::{SupervisorHandle, Tree};
use crate::alloc::MemorySlot;
use crate::ceiling;
use crate::component::{Child, RestartMode};
use crate::context::Context;
use crate::fault::{self, FaultKind};
use crate::limits::Meter;
use crate::limits::watchdog::Watched;
use crate::lockdown::{Enforcement, Policy};
use crate::mailbox::{InFlightCell, Mailbox};
use crate::revoke::Revoker;
use crate::signal::Signal;
use crate::threads::{SpawnError, ThreadGroup};

/// A thread whose in-place instance ended, waiting for its next one. It
/// ends on its own once this (its resume channel) is dropped.
pub(crate) struct Parked {
    pub(crate) resume: cb::Sender<Box<InstanceRun>>,
    /// The kernel policy it already carries (a policy cannot be lifted).
    pub(crate) enforcement: Option<Enforcement>,
}

/// The body of an instance thread: one instance, then each successor it
/// starts itself in place, or — for in-place restarts the supervisor
/// decides — each next instance the supervisor hands over, until it stops
/// handing them.
pub(super) fn instance_thread(
    mut run: Box<InstanceRun>,
    resume: Option<cb::Receiver<Box<InstanceRun>>>,
) {
    loop {
        if let Some(next) = run_instance(run) {
            run = next;
            continue;
        }
        let Some(resume) = &resume else { return };
        match resume.recv() {
            Ok(next) => run = next,
            Err(_) => return,
        }
    }
}

/// What every instance of one child is made with: what does not change
/// from one instance to the next.
pub(crate) struct InstanceSource {
    pub(crate) tree: Arc<Tree>,
    pub(crate) path: Arc<str>,
    pub(crate) slot: ChildId,
    pub(crate) control: cb::Sender<Control>,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) limits: crate::limits::Limits,
    pub(crate) poison_threshold: u32,
}

/// An instance ready to run, and its supervisor's handle on it.
pub(crate) struct Prepared {
    pub(crate) run: Box<InstanceRun>,
    pub(crate) handle: Handle,
}

impl InstanceSource {
    pub(crate) fn of(
        tree: &Arc<Tree>,
        child: &Child,
        path: &Arc<str>,
        slot: ChildId,
        control: &cb::Sender<Control>,
        mailbox: Arc<Mailbox>,
    ) -> Self {
        Self {
            tree: Arc::clone(tree),
            path: Arc::clone(path),
            slot,
            control: control.clone(),
            mailbox,
            limits: child.settings.limits,
            poison_threshold: child.settings.poison_threshold,
        }
    }

    /// Makes instance `instance` with a grant from `reissue`: its revoker,
    /// cancellation, context, in-flight cell and meter (watched from here
    /// on). `continues` says it runs on a thread whose instance ended.
    pub(crate) fn prepare(
        &self,
        instance: u64,
        continues: bool,
        reissue: impl FnOnce(
            &[&Revoker],
        )
            -> Result<Box<dyn crate::component::Instance>, crate::grant::ReissueError>,
    ) -> Result<Prepared, FaultKind> {
        let failed = |message: String| FaultKind::StartFailed { message };
        let tree = &self.tree;
        let revoker = Revoker::new();
        let cancel = Arc::new(Signal::new());
        // Cancelling the instance also ends the blocking waits of its grant's
        // endpoints, so a raw `recv` (or `for m in inbox.iter()`) stops with it.
        let waker = Revoker::waker(Arc::clone(&cancel));
        // Re-issuing runs the grant's `reissue` and its data's `Clone`.
        let body = match fault::contain(|| reissue(&[&revoker, &tree.revoker, &waker])) {
            Ok(Ok(body)) => body,
            Ok(Err(err)) => {
                return Err(failed(fault::describe_contained("an error", || {
                    fault::with_sources(&err)
                })));
            }
            Err(caught) => return Err(caught.start_failed("re-issuing its grant")),
        };
        let in_flight = Arc::new(InFlightCell::default());
        let limits = self.limits;
        let meter = if !limits.is_watched() {
            None
        } else {
            let memory = MemorySlot::claim();
            if limits.memory_quota().is_some() && memory.is_none() {
                return Err(failed("a memory quota needs `compartment::alloc::Accounting` as the global allocator (or its table of 4096 instances is full)".to_owned()));
            }
            Some(Arc::new(Meter::new(limits, memory, continues)))
        };
        // Watched before the thread starts, so that nothing is left to undo
        // but the meter if the watchdog cannot run.
        if let Some(meter) = &meter {
            let (control, slot) = (self.control.clone(), self.slot);
            let watched = Watched::new(
                Arc::clone(meter),
                Arc::clone(&cancel),
                tree.clock.now(),
                Arc::new(move || {
                    // A supervisor that is gone has nobody left to tell.
                    let _ = control.send(Control::OverBudget { slot, instance });
                }),
            );
            let path = &*self.path;
            tree.watchdog
                .watch(watched, path.split('/').next().unwrap_or(path))
                .map_err(failed)?;
        }
        let threads = Arc::new(ThreadGroup::new(
            Arc::clone(&self.path),
            Arc::clone(&cancel),
            limits.thread_limit(),
            meter.clone(),
            tree.forward_panics,
            tree.backtraces,
        ));
        let context = Context::new(
            Arc::clone(&self.path),
            instance,
            Arc::clone(&cancel),
            tree.clock.clone(),
            Arc::clone(&self.mailbox),
            Arc::clone(&in_flight),
            Arc::clone(&threads),
        );
        let run = Box::new(InstanceRun {
            context,
            body,
            mailbox: Arc::clone(&self.mailbox),
            in_flight: Arc::clone(&in_flight),
            poison_threshold: self.poison_threshold,
            forward_panics: tree.forward_panics,
            backtraces: tree.backtraces,
            slot: self.slot,
            report_to: self.control.clone(),
            lockdown: None,
            meter: meter.clone(),
            revoker: revoker.clone(),
            relaunch: None,
            tree: Arc::clone(tree),
            limits,
        });
        Ok(Prepared {
            run,
            handle: Handle::Worker {
                cancel,
                revoker,
                in_flight,
                threads,
                resume: None,
                enforcement: None,
                meter,
            },
        })
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the slot's parts"
)]
pub(crate) fn spawn_worker(
    tree: &Arc<Tree>,
    child: &mut Child,
    path: &Arc<str>,
    instance: u64,
    mailbox: Arc<Mailbox>,
    slot: ChildId,
    control: &cb::Sender<Control>,
    parked: Option<Parked>,
    relaunch: Option<&Arc<Relaunch>>,
) -> Result<Handle, FaultKind> {
    let failed = |message: String| FaultKind::StartFailed { message };
    // A parked thread keeps the policy it was confined with. Compiling a
    // policy lists the grant: user code, under the panic guard.
    let policy = match parked {
        Some(_) => None,
        None => match fault::contain(|| child.policy().transpose()) {
            Ok(policy) => policy
                .map_err(|err| failed(format!("its kernel policy could not be built: {err}")))?,
            Err(caught) => return Err(caught.start_failed("listing its grant")),
        },
    };
    let source = InstanceSource::of(tree, child, path, slot, control, mailbox);
    let factory = &child.factory;
    let Prepared { mut run, handle } = source.prepare(instance, parked.is_some(), |revokers| {
        factory.instance(revokers)
    })?;
    let (ready_tx, ready) = cb::bounded(1);
    run.lockdown = policy.clone().map(|policy| (policy, ready_tx));
    run.relaunch = relaunch.cloned();
    let meter = run.meter.clone();
    // The watchdog forgets a finished meter; an instance that never ran
    // cannot finish its own.
    let unwatch = || {
        if let Some(meter) = &meter {
            meter.finish();
        }
    };
    let locked = run.lockdown.is_some();
    let mode = child.settings.restart_mode;
    // Instance threads are never joined: once an instance has reported its
    // exit, its thread only runs thread-local destructors.
    let spawned = match parked {
        Some(parked) => match parked.resume.send(run) {
            Ok(()) => Ok((Some(parked.resume), parked.enforcement)),
            // The parked thread is gone; start afresh.
            Err(cb::SendError(run)) => spawn_thread(path, instance, run, mode, policy.as_deref())
                .map(|resume| (resume, None)),
        },
        None => {
            spawn_thread(path, instance, run, mode, policy.as_deref()).map(|resume| (resume, None))
        }
    };
    let (resume, mut enforcement) = spawned.inspect_err(|_| unwatch())?;
    // A locked-down instance has started only once its policy is in force.
    if locked {
        let refused = match ready.recv() {
            Ok(Ok(applied)) => {
                enforcement = Some(applied);
                None
            }
            Ok(Err(err)) => Some(format!("lockdown refused: {err}")),
            Err(_) => Some("its thread ended before its kernel policy was applied".to_owned()),
        };
        if let Some(message) = refused {
            unwatch();
            // The thread has nothing left to run; it ends on its own.
            drop(resume);
            return Err(failed(message));
        }
    }
    let mut handle = handle;
    if let Handle::Worker {
        resume: handed_over,
        enforcement: enforced,
        ..
    } = &mut handle
    {
        *handed_over = resume;
        *enforced = enforcement;
    }
    Ok(handle)
}

/// Starts a successor an ending instance prepared on a thread of its own;
/// the thread waits for `gate` (until the ending instance's exit report is
/// on its way, which must reach the supervisor first).
pub(crate) fn spawn_successor(
    path: &str,
    instance: u64,
    run: Box<InstanceRun>,
    gate: cb::Receiver<()>,
) -> Result<(), FaultKind> {
    let name = format!("{path}#{instance}");
    let body = move || {
        let _ = gate.recv();
        instance_thread(run, None);
    };
    ceiling::spawn(name, body)
        .map(|_| ())
        .map_err(|err| match SpawnError::from(err) {
            SpawnError::Ceiling { ceiling } => FaultKind::CeilingReached { ceiling },
            other => FaultKind::StartFailed {
                message: format!(
                    "could not spawn its thread: {}",
                    fault::with_sources(&other)
                ),
            },
        })
}

/// Spawns a thread named after the path and first instance it runs, if the
/// process's ceilings leave room for it, from its policy's carrier when it
/// is locked down (so that it inherits the seccomp program), else directly;
/// for in-place restarts, returns where its next instance is handed over.
fn spawn_thread(
    path: &str,
    instance: u64,
    run: Box<InstanceRun>,
    mode: RestartMode,
    policy: Option<&Policy>,
) -> Result<Option<cb::Sender<Box<InstanceRun>>>, FaultKind> {
    let (resume, next) = match mode {
        RestartMode::InPlace => {
            let (resume, next) = cb::bounded(1);
            (Some(resume), Some(next))
        }
        RestartMode::FreshThread => (None, None),
    };
    let name = format!("{path}#{instance}");
    let body = move || instance_thread(run, next);
    let spawned = match policy {
        Some(policy) => policy.spawn(name, body),
        None => ceiling::spawn(name, body).map_err(SpawnError::from),
    };
    spawned.map_err(|err| match err {
        SpawnError::Ceiling { ceiling } => FaultKind::CeilingReached { ceiling },
        other => FaultKind::StartFailed {
            message: format!(
                "could not spawn its thread: {}",
                fault::with_sources(&other)
            ),
        },
    })?;
    Ok(resume)
}

/// A nested supervisor that did not start, and its specification back
/// (unless its thread could not even be spawned).
pub(crate) struct NestedStartFailure {
    pub(crate) spec: Option<Box<Supervisor>>,
    pub(crate) kind: FaultKind,
}

pub(crate) fn spawn_supervisor(
    tree: &Arc<Tree>,
    spec: Box<Supervisor>,
    path: &str,
    instance: u64,
    slot: ChildId,
    parent: &cb::Sender<Control>,
) -> Result<(Handle, Arc<StatusBoard>), NestedStartFailure> {
    let launched = launch(
        tree,
        *spec,
        path,
        instance,
        Some((parent.clone(), slot)),
        None,
    )
    .map_err(|err| NestedStartFailure {
        spec: None,
        kind: match err {
            StartError::Ceiling { ceiling, .. } => FaultKind::CeilingReached { ceiling },
            other => FaultKind::StartFailed {
                message: other.to_string(),
            },
        },
    })?;
    let Launched {
        started,
        join,
        control,
        board,
    } = launched;
    let message = match started.recv() {
        // The specification comes back in the exit report; the thread is
        // not joined.
        Ok(Ok(())) => return Ok((Handle::Supervisor { control }, board)),
        Ok(Err(err)) => error_text(&err),
        Err(_) => "its thread ended before starting".to_owned(),
    };
    // It is ending now and hands its specification back as it returns.
    Err(NestedStartFailure {
        spec: join.join().ok().flatten().map(Box::new),
        kind: FaultKind::StartFailed { message },
    })
}

fn error_text(err: &StartError) -> String {
    match err {
        StartError::ChildFailed { fault } => format!("{err}: {fault}"),
        other => other.to_string(),
    }
}

/// A supervisor thread just spawned.
pub(crate) struct Launched {
    /// Where it reports whether its children started.
    pub(crate) started: cb::Receiver<Result<(), StartError>>,
    pub(crate) join: JoinHandle<Option<Supervisor>>,
    pub(crate) control: cb::Sender<Control>,
    pub(crate) board: Arc<StatusBoard>,
}

/// Spawns a supervisor thread, registered under `path`.
pub(crate) fn launch(
    tree: &Arc<Tree>,
    spec: Supervisor,
    path: &str,
    instance: u64,
    parent: Option<(cb::Sender<Control>, ChildId)>,
    done: Option<cb::Sender<Outcome>>,
) -> Result<Launched, StartError> {
    // Unbounded: every sender is an instance reporting its end once, the
    // watchdog reporting an instance once, or a caller waiting for its
    // reply, so what is queued is bounded by the children and callers.
    // A bounded channel made them wait when a large pool stopped at once,
    // thousands of senders queued on its waker, each wake a scan of the
    // queue: the stop took time quadratic in the pool's size.
    let (control, inbox) = cb::unbounded();
    let board = Arc::new(StatusBoard::default());
    let (started_tx, started_rx) = cb::bounded(1);
    tree.supervisors.lock().insert(
        path.to_owned(),
        SupervisorHandle {
            control: control.clone(),
        },
    );
    let start = NodeStart {
        spec,
        path: path.to_owned(),
        instance,
        tree: Arc::clone(tree),
        parent,
        control: (control.clone(), inbox),
        board: Arc::clone(&board),
        started: started_tx,
        done,
    };
    let join =
        ceiling::spawn(format!("{path}#{instance}"), move || run(start)).map_err(|refused| {
            tree.supervisors.lock().remove(path);
            match refused {
                ceiling::Refused::Ceiling(ceiling) => StartError::Ceiling {
                    path: path.to_owned(),
                    ceiling,
                },
                ceiling::Refused::Spawn(source) => StartError::Spawn {
                    path: path.to_owned(),
                    source,
                },
            }
        })?;
    Ok(Launched {
        started: started_rx,
        join,
        control,
        board,
    })
}
