//! Running one instance: its entry under the panic guard, its exit report
//! from a drop guard.

use std::sync::Arc;

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome};
use super::slot::ChildId;
use crate::component::{BoxError, Instance};
use crate::context::Context;
use crate::fault::{self, Fault, FaultKind};
use crate::limits::Meter;
use crate::lockdown::{Enforcement, LockdownError, Policy};
use crate::mailbox::{self, InFlightCell, Mailbox};

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
}

/// Sends the instance's exit report when dropped — also when the thread
/// unwinds through crate code — so a supervisor never waits for a report
/// that cannot come.
struct ExitReporter {
    report_to: cb::Sender<Control>,
    slot: ChildId,
    instance: u64,
    path: Arc<str>,
    /// The report, once the instance has ended normally.
    report: Option<ExitReport>,
    /// `false` when nobody waits for a report (the start was refused).
    armed: bool,
}

impl Drop for ExitReporter {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let report = self.report.take().unwrap_or_else(|| ExitReport {
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
pub(crate) fn run_instance(run: InstanceRun) {
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
    } = run;
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
            return;
        }
    }
    let result = fault::contain(|| body.run(&context));
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
    exit.report = Some(ExitReport {
        outcome,
        dead_letter,
        spec: None,
    });
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
