//! Running one instance: its entry under the panic guard, its exit report
//! from a drop guard.

use std::sync::Arc;

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome};
use super::launch::{InstanceSource, spawn_successor};
use super::relaunch::Relaunch;
use super::slot::ChildId;
use super::tree::Tree;
use crate::component::{BoxError, Instance, RestartMode};
use crate::context::Context;
use crate::fault::{self, Fault, FaultKind};
use crate::limits::{Limits, Meter};
use crate::lockdown::{Enforcement, LockdownError, Policy};
use crate::mailbox::{self, InFlightCell, Mailbox};
use crate::revoke::Revoker;

/// Where an instance says whether its kernel policy is in force.
pub(crate) type LockdownReply = cb::Sender<Result<Enforcement, LockdownError>>;

/// Everything an instance thread needs, moved onto it.
pub(crate) struct InstanceRun {
    pub(crate) context: Context,
    pub(crate) body: Box<dyn Instance>,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) in_flight: Arc<InFlightCell>,
    pub(crate) poison_threshold: u32,
    pub(crate) forward_panics: bool,
    pub(crate) backtraces: bool,
    pub(crate) slot: ChildId,
    pub(crate) report_to: cb::Sender<Control>,
    /// The kernel policy to apply before the entry runs, and where to say
    /// whether it was.
    pub(crate) lockdown: Option<(Arc<Policy>, LockdownReply)>,
    /// Where the watchdog reads this instance's resource use.
    pub(crate) meter: Option<Arc<Meter>>,
    /// The instance's own revoker, revoked before a successor it starts
    /// itself runs.
    pub(crate) revoker: Revoker,
    /// The child's permit to restart itself, when it is eligible.
    pub(crate) relaunch: Option<Arc<Relaunch>>,
    /// The tree and the child's limits, for a successor it starts itself.
    pub(crate) tree: Arc<Tree>,
    pub(crate) limits: Limits,
}

/// Sends the instance's exit report when dropped — also when the thread
/// unwinds through crate code — so a supervisor never waits for a report
/// that cannot come.
struct ExitReporter {
    report_to: cb::Sender<Control>,
    slot: ChildId,
    instance: u64,
    path: Arc<str>,
    /// The report, once the instance has ended normally (boxed as the
    /// control message carries it: the reporter sits in the instance's
    /// frame, under its entry, for as long as it runs).
    report: Option<Box<ExitReport>>,
    /// `false` when nobody waits for a report (the start was refused).
    armed: bool,
}

impl Drop for ExitReporter {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let report = self.report.take().unwrap_or_else(|| {
            Box::new(ExitReport {
                outcome: Outcome::Failed(Fault::new(
                    &self.path,
                    self.instance,
                    FaultKind::Panic {
                        message: "the instance thread unwound outside its panic guard".to_owned(),
                        location: None,
                        backtrace: None,
                    },
                )),
                dead_letter: None,
                spec: None,
                successor: None,
            })
        });
        // The supervisor may be gone (this instance was detached after a
        // shutdown timeout); then nobody is waiting for the report.
        let _ = self.report_to.send(Control::Exited {
            slot: self.slot,
            instance: self.instance,
            report,
        });
    }
}

/// The body of every instance thread. The entry runs under the crate's
/// panic guard ([`fault::contain`]), and so does everything of the user's
/// that the thread touches afterwards: the returned error's `Display`,
/// `source` and `Drop`, the handled message's `Debug` and `Drop`, the
/// grant's `Drop`. The exit report goes out from a drop guard.
///
/// Returns the successor to run on this thread, when the instance started
/// one itself in place (see `relaunch`); a successor on a fresh thread is
/// started here, once the exit report is on its way.
///
/// What runs before and after the entry is kept out of this function's
/// frame: an idle component's stack is this frame and the entry's, and
/// every page of it counts.
pub(crate) fn run_instance(run: Box<InstanceRun>) -> Option<Box<InstanceRun>> {
    let mut begun = begin(run)?;
    let body = begun.body.take()?;
    let result = fault::contain(|| body.run(&begun.context));
    conclude(begun, result)
}

/// An instance about to run its entry: what the rest of its run needs.
struct Begun {
    context: Context,
    body: Option<Box<dyn Instance>>,
    mailbox: Arc<Mailbox>,
    in_flight: Arc<InFlightCell>,
    poison_threshold: u32,
    meter: Option<Arc<Meter>>,
    revoker: Revoker,
    relaunch: Option<Arc<Relaunch>>,
    tree: Arc<Tree>,
    limits: Limits,
    exit: ExitReporter,
}

/// Confines the thread when the instance is locked down and takes the
/// instance's parts apart; `None` when the entry must not run (its policy
/// was refused, and the supervisor reports the failed start).
#[inline(never)]
fn begin(run: Box<InstanceRun>) -> Option<Begun> {
    let InstanceRun {
        context,
        body,
        mailbox,
        in_flight,
        poison_threshold,
        forward_panics,
        backtraces,
        slot,
        report_to,
        lockdown,
        meter,
        revoker,
        relaunch,
        tree,
        limits,
    } = *run;
    let mut exit = ExitReporter {
        report_to,
        slot,
        instance: context.instance(),
        path: context.shared_path(),
        report: None,
        armed: true,
    };
    if let Some(meter) = &meter {
        meter.enter();
    }
    fault::mark_supervised(forward_panics, backtraces);
    if let Some((policy, ready)) = lockdown {
        // A grant whose `visit` panics leaves the policy unapplied: the
        // supervisor sees the reply channel close and fails the start.
        let applied = fault::contain(|| policy.apply(&body.inventory()));
        let refused = !matches!(applied, Ok(Ok(_)));
        if let Ok(applied) = applied {
            let _ = ready.send(applied);
        }
        if refused {
            // The supervisor reports the start as failed; the entry never runs.
            exit.armed = false;
            if let Some(meter) = &meter {
                meter.finish();
            }
            let _ = fault::drop_contained(body);
            return None;
        }
    }
    Some(Begun {
        context,
        body: Some(body),
        mailbox,
        in_flight,
        poison_threshold,
        meter,
        revoker,
        relaunch,
        tree,
        limits,
        exit,
    })
}

/// What the entry returned, made into the instance's exit report (and a
/// successor it starts itself, when it may).
#[inline(never)]
fn conclude(
    begun: Begun,
    result: Result<Result<(), BoxError>, fault::Caught>,
) -> Option<Box<InstanceRun>> {
    let Begun {
        context,
        body: _,
        mailbox,
        in_flight,
        poison_threshold,
        meter,
        revoker,
        relaunch,
        tree,
        limits,
        mut exit,
    } = begun;
    // The instance has ended once its own threads have; a panic in one that
    // nobody joined is its fault.
    let unclaimed = context.threads().finish();
    let cancelled = context.is_cancelled();
    let path = context.path();
    let instance = context.instance();
    let outcome = match result {
        Ok(Ok(())) if cancelled => Outcome::Shutdown,
        Ok(Ok(())) => Outcome::Normal,
        // Whatever a cancelled instance returns, it stopped because it was
        // asked to.
        Ok(Err(err)) if cancelled => {
            let _ = fault::drop_contained(err);
            Outcome::Shutdown
        }
        Ok(Err(err)) => Outcome::Failed(Fault::new(path, instance, error_kind(err))),
        Err(caught) => Outcome::Failed(Fault::new(path, instance, caught.into_kind())),
    };
    let outcome = match (outcome, unclaimed) {
        (Outcome::Normal, Some(panicked)) => Outcome::Failed(Fault::new(
            path,
            instance,
            FaultKind::Panic {
                message: panicked.to_string(),
                location: None,
                backtrace: None,
            },
        )),
        (outcome, _) => outcome,
    };
    // An instance cancelled for going over a budget failed, whatever it
    // returned.
    let outcome = match meter.as_ref().and_then(|meter| meter.exceeded()) {
        Some(budget) => Outcome::Failed(Fault::new(
            path,
            instance,
            FaultKind::BudgetExceeded {
                budget,
                runaway: false,
            },
        )),
        None => outcome,
    };
    if let Some(meter) = &meter {
        meter.finish();
    }
    let (outcome, dead_letter) = mailbox::settle(
        path,
        instance,
        in_flight.close(),
        &mailbox,
        outcome,
        poison_threshold,
    );
    drop(context);
    let started = relaunch.as_ref().and_then(|relaunch| {
        relaunch.successor(instance, &outcome, || InstanceSource {
            tree,
            path: Arc::clone(&exit.path),
            slot: exit.slot,
            control: exit.report_to.clone(),
            mailbox: Arc::clone(&mailbox),
            limits,
            poison_threshold,
        })
    });
    let Some(started) = started else {
        exit.report = Some(Box::new(ExitReport {
            outcome,
            dead_letter,
            spec: None,
            successor: None,
        }));
        return None;
    };
    // Nothing this instance kept of its grant outlives it into its
    // successor's run.
    revoker.revoke();
    let mode = started.mode;
    let (mut successor, next) = started.split();
    let mut gate = None;
    let mut stands_by = None;
    let next = match (mode, next, relaunch) {
        (RestartMode::InPlace, Some(mut next), relaunch) => {
            next.relaunch = relaunch;
            Some(next)
        }
        (RestartMode::FreshThread, Some(mut next), Some(relaunch)) => {
            next.relaunch = Some(Arc::clone(&relaunch));
            let (open, wait) = cb::bounded(1);
            let started = match relaunch.claim_standby(successor.instance) {
                Some(standby) => {
                    standby.start(next, wait);
                    Ok(())
                }
                None => spawn_successor(&exit.path, successor.instance, next, wait),
            };
            match started {
                Ok(()) => {
                    gate = Some(open);
                    stands_by = Some((relaunch, Arc::clone(&exit.path), successor.instance));
                }
                Err(kind) => {
                    if let Ok(handle) = std::mem::replace(&mut successor.started, Err(kind)) {
                        handle.abandon();
                    }
                }
            }
            None
        }
        _ => None,
    };
    exit.report = Some(Box::new(ExitReport {
        outcome,
        dead_letter,
        spec: None,
        successor: Some(successor),
    }));
    // The report reaches the supervisor before anything the successor does.
    drop(exit);
    if let Some(open) = gate {
        let _ = open.send(());
    }
    // The thread for the successor's own restart is spawned here, while
    // the successor runs, not when it ends.
    if let Some((relaunch, path, running)) = stands_by {
        relaunch.stand_by_after(&path, running);
    }
    next
}

/// An error a component returned, as a fault kind. Its `Display`, `source`
/// and `Drop` are user code: each runs under the panic guard.
fn error_kind(err: BoxError) -> FaultKind {
    let err = match err.downcast::<fault::Decided>() {
        Ok(decided) => return decided.0,
        Err(err) => err,
    };
    let message = fault::describe_contained("an error", || err.to_string());
    let mut sources = fault::contain(|| {
        fault::sources(&*err)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    })
    .unwrap_or_else(|caught| {
        vec![format!(
            "<a source chain whose formatting panicked: {}>",
            caught.message
        )]
    });
    if let Err(caught) = fault::drop_contained(err) {
        sources.push(format!("<dropping the error panicked: {}>", caught.message));
    }
    FaultKind::Error { message, sources }
}
