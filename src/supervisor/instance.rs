//! Running one instance: the crate's one panic boundary.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel as cb;

use super::control::{Control, ExitReport, Outcome};
use super::dead_letter::DeadLetter;
use crate::component::{BoxError, Instance};
use crate::context::{Context, Mailbox};
use crate::fault::{self, Fault, FaultKind, InFlight};
use crate::limits::Meter;
use crate::lockdown::{Enforcement, LockdownError, Policy};

/// Where an instance says whether its kernel policy is in force.
pub(crate) type LockdownReply = cb::Sender<Result<Enforcement, LockdownError>>;

/// Everything an instance thread needs, moved onto it.
pub(crate) struct InstanceRun {
    pub(crate) context: Context,
    pub(crate) body: Box<dyn Instance>,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) poison_threshold: u32,
    pub(crate) forward_panics: bool,
    pub(crate) backtraces: bool,
    pub(crate) slot: u64,
    pub(crate) report_to: cb::Sender<Control>,
    /// The kernel policy to apply before the entry runs, and where to say
    /// whether it was.
    pub(crate) lockdown: Option<(Arc<Policy>, LockdownReply)>,
    /// Where the watchdog reads this instance's resource use.
    pub(crate) meter: Option<Arc<Meter>>,
}

/// The body of every instance thread. This is the only function in the
/// crate that calls `catch_unwind`: a panic anywhere in a component (or in
/// the drop of its grant) becomes a [`Fault`] here and nowhere else.
pub(crate) fn run_instance(run: InstanceRun) {
    let InstanceRun {
        context,
        body,
        mailbox,
        poison_threshold,
        forward_panics,
        backtraces,
        slot,
        report_to,
        lockdown,
        meter,
    } = run;
    if let Some(meter) = &meter {
        meter.enter();
    }
    if let Some((policy, ready)) = lockdown {
        let applied = policy.apply(&body.inventory());
        let refused = applied.is_err();
        let _ = ready.send(applied);
        if refused {
            // The supervisor reports the start as failed; the entry never runs.
            if let Some(meter) = &meter {
                meter.finish();
            }
            return;
        }
    }
    fault::mark_supervised(forward_panics, backtraces);
    let result = catch_unwind(AssertUnwindSafe(|| body.run(&context)));
    let cancelled = context.is_cancelled();
    let outcome = match result {
        Ok(Ok(())) if cancelled => Outcome::Shutdown,
        Ok(Ok(())) => Outcome::Normal,
        // Whatever a cancelled instance returns, it stopped because it was
        // asked to.
        Ok(Err(_)) if cancelled => Outcome::Shutdown,
        Ok(Err(err)) => Outcome::Failed(fault_of(&context, error_kind(err))),
        Err(payload) => {
            let message = fault::payload_message(&*payload);
            // The payload's own `Drop` may panic; that second panic is caught
            // and its payload leaked, since dropping it could panic again.
            if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(second);
            }
            let report = fault::take_panic_report();
            Outcome::Failed(fault_of(
                &context,
                FaultKind::Panic {
                    message,
                    location: report.as_ref().and_then(|r| r.location.clone()),
                    backtrace: report.and_then(|r| r.backtrace),
                },
            ))
        }
    };
    // An instance cancelled for going over a budget failed, whatever it
    // returned.
    let outcome = match meter.as_ref().and_then(|meter| meter.exceeded()) {
        Some(budget) => Outcome::Failed(fault_of(
            &context,
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
    let (outcome, dead_letter) = settle_in_flight(&context, &mailbox, outcome, poison_threshold);
    let instance = context.instance();
    drop(context);
    // The supervisor may be gone (this instance was detached after a
    // shutdown timeout); then nobody is waiting for the report.
    let _ = report_to.send(Control::Exited {
        slot,
        instance,
        report: ExitReport {
            outcome,
            dead_letter,
        },
    });
}

fn fault_of(context: &Context, kind: FaultKind) -> Fault {
    Fault {
        path: context.path().to_owned(),
        instance: context.instance(),
        kind,
        in_flight: None,
    }
}

fn error_kind(err: BoxError) -> FaultKind {
    FaultKind::Error {
        message: err.to_string(),
        sources: fault::sources(&*err).map(ToString::to_string).collect(),
    }
}

/// Decides the fate of the message the instance was handling: after a crash
/// it is delivered again, or dead-lettered once it has crashed the component
/// `poison_threshold` times in a row; after a shutdown it is delivered again
/// without counting; after a normal exit it was handled.
fn settle_in_flight(
    context: &Context,
    mailbox: &Mailbox,
    mut outcome: Outcome,
    poison_threshold: u32,
) -> (Outcome, Option<DeadLetter>) {
    let Some(mut tracked) = mailbox.in_flight.lock().take() else {
        return (outcome, None);
    };
    match &mut outcome {
        Outcome::Normal => (outcome, None),
        Outcome::Shutdown => {
            *mailbox.redelivery.lock() = Some(tracked);
            (outcome, None)
        }
        Outcome::Failed(fault) => {
            tracked.attempts += 1;
            let description = (tracked.describe)(&*tracked.message);
            fault.in_flight = Some(InFlight {
                description: description.clone(),
                attempts: tracked.attempts,
            });
            if tracked.attempts >= poison_threshold {
                let letter = DeadLetter::new(
                    context.path().to_owned(),
                    tracked.channel,
                    description,
                    tracked.attempts,
                    tracked.message,
                );
                (outcome, Some(letter))
            } else {
                *mailbox.redelivery.lock() = Some(tracked);
                (outcome, None)
            }
        }
    }
}
